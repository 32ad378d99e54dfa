//! The tools a conversation offers the model, each name once, and what answers a call
//! to each: one table for the specs sent to the model and for the tool loop.

use std::sync::Arc;

use serde_json::{Value, json};

use super::persona::Persona;
use super::skills;
use crate::agent_config::Subagent;
use crate::models::ToolSpec;
use crate::tools::{Fetch, Sandbox};

/// The tool the model delegates to a helper with.
pub(super) const TASK_TOOL: &str = "task";
/// How deep tasks may nest: a helper at this depth cannot delegate further.
pub(super) const MAX_DEPTH: u32 = 3;

/// What answers a call to a tool.
#[derive(Clone)]
pub(super) enum Tool {
    /// One of the agent's own tools, run in its instance; its arguments must fit
    /// `parameters` (a JSON Schema).
    Guest { parameters: Value },
    /// `skill`: a skill's body.
    Skill,
    /// `task`: a helper's answer, from a child conversation.
    Task,
    /// `fetch`: an HTTP GET to an allowed host.
    Fetch(Arc<Fetch>),
    /// A built-in tool of the session's sandbox (`read`, `write`, `bash`, …).
    Builtin,
}

/// The tools offered in one conversation, in the order the model sees them: the
/// agent's own, `skill`, `task`, then the sandbox's built-ins and `fetch`. A name
/// offered twice keeps its first meaning.
#[derive(Default)]
pub(super) struct Toolbox {
    tools: Vec<(ToolSpec, Tool)>,
}

impl Toolbox {
    /// The tools `persona` may use at task depth `depth`, with the session's sandbox
    /// and `fetch`, if it has them.
    pub(super) fn new(
        persona: &Persona,
        depth: u32,
        sandbox: Option<&Sandbox>,
        fetch: Option<&Arc<Fetch>>,
    ) -> Self {
        let mut toolbox = Self::default();
        for tool in &persona.tools {
            let spec = ToolSpec {
                name: tool.name.clone(),
                description: tool.description.clone(),
                parameters: tool.parameters.clone(),
            };
            let parameters = tool.parameters.clone();
            toolbox.offer(spec, Tool::Guest { parameters });
        }
        if !persona.skills.is_empty() {
            toolbox.offer(skills::tool(&persona.skills), Tool::Skill);
        }
        if !persona.subagents.is_empty() && depth < MAX_DEPTH {
            toolbox.offer(task_spec(&persona.subagents), Tool::Task);
        }
        for spec in sandbox.iter().flat_map(|s| s.specs()) {
            toolbox.offer(spec, Tool::Builtin);
        }
        if let Some(fetch) = fetch {
            toolbox.offer(fetch.spec(), Tool::Fetch(fetch.clone()));
        }
        toolbox
    }

    /// Offers `tool` under its spec's name, unless an earlier tool has that name. An
    /// agent's own tool may replace a built-in; two meanings the agent gave one name
    /// (a tool called `skill` or `task`, or the same name twice) are logged.
    fn offer(&mut self, spec: ToolSpec, tool: Tool) {
        match self.tools.iter().find(|(s, _)| s.name == spec.name) {
            None => self.tools.push((spec, tool)),
            Some((_, Tool::Guest { .. })) if !matches!(tool, Tool::Builtin | Tool::Fetch(_)) => {
                tracing::warn!(
                    tool = %spec.name,
                    "two tools of the agent have this name; the model is offered the first"
                );
            }
            Some(_) => {}
        }
    }

    /// The specs to send the model.
    pub(super) fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|(spec, _)| spec.clone()).collect()
    }

    /// What answers a call to `name`, if it is offered.
    pub(super) fn get(&self, name: &str) -> Option<&Tool> {
        self.tools
            .iter()
            .find(|(spec, _)| spec.name == name)
            .map(|(_, tool)| tool)
    }
}

/// The `task` tool, offering the given helpers by name.
fn task_spec(helpers: &[Subagent]) -> ToolSpec {
    let names: Vec<&str> = helpers.iter().map(|h| h.name.as_str()).collect();
    let list: Vec<String> = helpers
        .iter()
        .map(|h| format!("- {}: {}", h.name, h.description))
        .collect();
    ToolSpec {
        name: TASK_TOOL.into(),
        description: format!(
            "Delegate a task to a helper, who works on it alone and returns its answer. Helpers:\n{}",
            list.join("\n")
        ),
        parameters: json!({
            "type": "object",
            "properties": {
                "subagent": {"type": "string", "enum": names},
                "prompt": {"type": "string", "description": "The task, with everything the helper needs to know."}
            },
            "required": ["subagent", "prompt"]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persona(value: Value) -> Persona {
        let config: crate::AgentConfig = serde_json::from_value(value).unwrap();
        Persona::of_agent(&config, "a", None).unwrap()
    }

    #[test]
    fn each_name_is_offered_once_with_its_first_meaning_and_tasks_stop_at_the_depth_bound() {
        let persona = persona(json!({
            "model": "anthropic/claude-haiku-4-5",
            "tools": [
                {"name": "skill", "description": "the agent's own", "parameters": {"type": "object"}},
                {"name": "lookup", "description": "", "parameters": {"type": "object"}}
            ],
            "skills": [{"name": "refunds", "description": "how", "body": "steps"}],
            "subagents": [{"name": "helper", "description": "helps", "tools": [], "skills": []}]
        }));
        let toolbox = Toolbox::new(&persona, 0, None, None);
        let names: Vec<String> = toolbox.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["skill", "lookup", "task"]);
        assert!(matches!(toolbox.get("skill"), Some(Tool::Guest { .. })));
        assert!(matches!(toolbox.get("task"), Some(Tool::Task)));
        assert!(toolbox.get("bash").is_none());

        let deepest = Toolbox::new(&persona, MAX_DEPTH, None, None);
        assert!(
            deepest.get("task").is_none(),
            "a helper at the bound cannot delegate"
        );
        assert_eq!(deepest.specs().len(), 2);
    }
}
