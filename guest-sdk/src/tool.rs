//! Tools an agent defines, and the per-instance table of their handlers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;

use crate::bindings::flue::agent::types::ToolDef;

type Handler = Rc<dyn Fn(Value) -> Result<String, String>>;

thread_local! {
    /// Handlers registered by the last `create`, by tool name.
    static HANDLERS: RefCell<HashMap<String, Handler>> = RefCell::new(HashMap::new());
}

/// A tool the model may call. Its handler runs inside the agent's own instance.
#[derive(Clone)]
pub struct Tool {
    name: String,
    description: String,
    parameters: Value,
    handler: Option<Handler>,
}

impl Tool {
    /// A tool with no parameters and no handler yet.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            parameters: serde_json::json!({"type": "object", "properties": {}}),
            handler: None,
        }
    }

    /// The JSON Schema of the arguments object.
    pub fn parameters(mut self, schema: Value) -> Self {
        self.parameters = schema;
        self
    }

    /// What runs when the model calls the tool: arguments in, text (or an error) out.
    pub fn handler(mut self, f: impl Fn(Value) -> Result<String, String> + 'static) -> Self {
        self.handler = Some(Rc::new(f));
        self
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Registers the handler and returns the definition the host sees.
    pub(crate) fn register(self) -> ToolDef {
        if let Some(handler) = self.handler {
            HANDLERS.with(|h| h.borrow_mut().insert(self.name.clone(), handler));
        }
        ToolDef {
            name: self.name,
            description: self.description,
            parameters: self.parameters.to_string(),
        }
    }
}

/// Forgets the handlers of an earlier `create`, before a new configuration registers its own.
pub(crate) fn clear() {
    HANDLERS.with(|h| h.borrow_mut().clear());
}

/// Runs the named tool with JSON arguments.
pub(crate) fn call(name: &str, args: &str) -> Result<String, String> {
    let handler = HANDLERS
        .with(|h| h.borrow().get(name).cloned())
        .ok_or_else(|| format!("this agent has no tool named '{name}'"))?;
    let args: Value = if args.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(args).map_err(|e| format!("tool arguments are not JSON: {e}"))?
    };
    handler(args)
}
