//! Write Flue agents in Rust.
//!
//! An agent is a function from a [`CreateContext`] to an [`AgentConfig`], exported with
//! [`export_agent!`] and compiled with `cargo build --target wasm32-wasip2 --release`:
//!
//! ```no_run
//! use flue_sdk::prelude::*;
//!
//! fn build(ctx: &CreateContext) -> AgentConfig {
//!     let ticket = ctx.id.clone();
//!     AgentConfig::new("anthropic/claude-haiku-4-5")
//!         .instructions("Help the customer resolve their support ticket.")
//!         .tool(Tool::new("ticket_status", "Return the status of the current ticket.")
//!             .handler(move |_args| Ok(format!("ticket {ticket}: open"))))
//! }
//! flue_sdk::export_agent!(build);
//! ```

mod config;
pub mod host;
mod tool;

pub use bindings::flue::agent::types::LogLevel;
pub use config::{AgentConfig, Compaction, Profile, Sandbox, Skill, Subagent, ThinkingLevel};
pub use serde_json::{Value, json};
pub use tool::Tool;

/// Bindings generated from `wit/agent.wit`; used by [`export_agent!`].
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "flue:agent/agent",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "flue_sdk::bindings",
    });
}

/// Everything an agent usually needs.
pub mod prelude {
    pub use crate::{
        AgentConfig, Compaction, CreateContext, Profile, Sandbox, Subagent, ThinkingLevel, Tool,
        Value, host, json,
    };
}

/// What the host tells the agent about the instance being created.
#[derive(Debug, Clone)]
pub struct CreateContext {
    /// The agent's name.
    pub agent: String,
    /// The caller-chosen instance id (a ticket, a customer, a repository).
    pub id: String,
    /// Values the host configuration gives this agent.
    pub env: Vec<(String, String)>,
    /// An optional JSON payload given at creation.
    pub payload: Option<String>,
}

impl CreateContext {
    /// The value of one `env` entry.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Bindings of the workflow world, sharing the agent world's interfaces; used by
/// [`export_workflow!`].
#[doc(hidden)]
pub mod workflow_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "flue:agent/workflow",
        pub_export_macro: true,
        export_macro_name: "export_workflow_bindings",
        default_bindings_module: "flue_sdk::workflow_bindings",
        with: {
            "flue:agent/types@0.1.0": crate::bindings::flue::agent::types,
            "flue:agent/model@0.1.0": crate::bindings::flue::agent::model,
            "flue:agent/session@0.1.0": crate::bindings::flue::agent::session,
            "flue:agent/tools@0.1.0": crate::bindings::flue::agent::tools,
            "flue:agent/log@0.1.0": crate::bindings::flue::agent::log,
        },
    });
}

/// Sends a message to a session of an agent instance and returns its answer. Only
/// workflows may call it.
pub fn prompt_agent(agent: &str, id: &str, session: &str, message: &str) -> Result<String, String> {
    workflow_bindings::flue::agent::agents::prompt(agent, id, session, message)
}

/// Runs a workflow for the host's `run` call: the payload as JSON in, the result as
/// JSON out. Used by [`export_workflow!`].
#[doc(hidden)]
pub fn __run(payload: String, run: fn(Value) -> Result<Value, String>) -> Result<String, String> {
    let payload =
        serde_json::from_str(&payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    run(payload).map(|result| result.to_string())
}

/// Exports a workflow: `run(payload: Value) -> Result<Value, String>`, which may prompt
/// agents with [`prompt_agent`].
#[macro_export]
macro_rules! export_workflow {
    ($run:path) => {
        struct FlueWorkflow;

        impl $crate::workflow_bindings::Guest for FlueWorkflow {
            fn run(
                payload: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                $crate::__run(payload, $run)
            }
        }

        $crate::workflow_bindings::export_workflow_bindings!(FlueWorkflow with_types_in $crate::workflow_bindings);
    };
}

/// Runs the agent's builder for the host's `create` call. Used by [`export_agent!`].
#[doc(hidden)]
pub fn __create(
    ctx: bindings::flue::agent::types::CreateContext,
    build: fn(&CreateContext) -> AgentConfig,
) -> Result<bindings::AgentConfig, String> {
    let ctx = CreateContext {
        agent: ctx.agent,
        id: ctx.id,
        env: ctx.env,
        payload: ctx.payload,
    };
    let config = build(&ctx);
    tool::clear();
    Ok(config.into_wit())
}

/// Runs a registered tool for the host's `call-tool` call. Used by [`export_agent!`].
#[doc(hidden)]
pub fn __call_tool(name: String, args: String) -> Result<String, String> {
    tool::call(&name, &args)
}

/// Exports an agent whose configuration `build(&CreateContext) -> AgentConfig` returns.
#[macro_export]
macro_rules! export_agent {
    ($build:path) => {
        struct FlueAgent;

        impl $crate::bindings::Guest for FlueAgent {
            fn create(
                ctx: $crate::bindings::flue::agent::types::CreateContext,
            ) -> ::core::result::Result<$crate::bindings::AgentConfig, ::std::string::String> {
                $crate::__create(ctx, $build)
            }

            fn call_tool(
                name: ::std::string::String,
                args: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                $crate::__call_tool(name, args)
            }
        }

        $crate::bindings::export_bindings!(FlueAgent with_types_in $crate::bindings);
    };
}
