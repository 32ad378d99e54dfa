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

use std::collections::BTreeMap;

pub use bindings::flue::agent::types::{HostError, LogLevel, Message};
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
        AgentConfig, Caller, Compaction, CreateContext, HostError, Profile, Sandbox, Subagent,
        ThinkingLevel, Tool, Value, host, json,
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
            "flue:agent/types@0.2.0": crate::bindings::flue::agent::types,
            "flue:agent/model@0.2.0": crate::bindings::flue::agent::model,
            "flue:agent/session@0.2.0": crate::bindings::flue::agent::session,
            "flue:agent/log@0.2.0": crate::bindings::flue::agent::log,
        },
    });
}

/// Bindings of the agent world with an `authorize` export, sharing the agent world's
/// interfaces; used by [`export_agent!`] when the agent decides who may reach it.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod authorizing_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "flue:agent/authorizing-agent",
        pub_export_macro: true,
        export_macro_name: "export_authorizing_bindings",
        default_bindings_module: "flue_sdk::authorizing_bindings",
        with: {
            "flue:agent/types@0.2.0": crate::bindings::flue::agent::types,
            "flue:agent/model@0.2.0": crate::bindings::flue::agent::model,
            "flue:agent/session@0.2.0": crate::bindings::flue::agent::session,
            "flue:agent/log@0.2.0": crate::bindings::flue::agent::log,
        },
    });
}

/// Who asks to reach an instance, as the host authenticated them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The tenant of the caller's key; `None` for the operator's keys or without keys.
    pub tenant: Option<String>,
    /// The name of the caller's key; `None` when the host has no keys.
    pub key: Option<String>,
    /// The claims the host's configuration gives the key.
    pub claims: BTreeMap<String, String>,
}

/// Runs the agent's decision for the host's `authorize` call. Used by [`export_agent!`].
#[doc(hidden)]
pub fn __authorize(
    caller: bindings::flue::agent::types::Caller,
    id: &str,
    decide: fn(&Caller, &str) -> bool,
) -> bool {
    let caller = Caller {
        tenant: caller.tenant,
        key: caller.key,
        claims: caller.claims.into_iter().collect(),
    };
    decide(&caller, id)
}

/// Sends a message to a session of an agent instance and returns its answer. Only
/// workflows may call it.
pub fn prompt_agent(
    agent: &str,
    id: &str,
    session: &str,
    message: &str,
) -> Result<String, HostError> {
    workflow_bindings::flue::agent::agents::prompt(agent, id, session, message)
}

/// Runs a workflow for the host's `run` call: the payload as JSON in, the result as
/// JSON out. Used by [`export_workflow!`].
#[doc(hidden)]
pub fn __run(payload: &str, run: fn(Value) -> Result<Value, String>) -> Result<String, String> {
    let payload =
        serde_json::from_str(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
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
                $crate::__run(&payload, $run)
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
pub fn __call_tool(name: &str, args: &str) -> Result<String, String> {
    tool::call(name, args)
}

/// Exports an agent whose configuration `build(&CreateContext) -> AgentConfig` returns.
///
/// With `authorize = decide`, the agent also decides who may reach which of its
/// instances: the host calls `decide(&Caller, id) -> bool` in the instance `id` names
/// before every prompt, connection and dispatch, and refuses the caller on `false`.
#[macro_export]
macro_rules! export_agent {
    ($build:path) => {
        struct FlueAgent;

        impl $crate::bindings::Guest for FlueAgent {
            $crate::__agent_exports!($build);
        }

        $crate::bindings::export_bindings!(FlueAgent with_types_in $crate::bindings);
    };
    ($build:path, authorize = $decide:path) => {
        struct FlueAgent;

        impl $crate::authorizing_bindings::Guest for FlueAgent {
            $crate::__agent_exports!($build);

            fn authorize(
                caller: $crate::bindings::flue::agent::types::Caller,
                id: ::std::string::String,
            ) -> bool {
                $crate::__authorize(caller, &id, $decide)
            }
        }

        $crate::authorizing_bindings::export_authorizing_bindings!(FlueAgent with_types_in $crate::authorizing_bindings);
    };
}

/// The exports every agent has: `create` and `call-tool`. Used by [`export_agent!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __agent_exports {
    ($build:path) => {
        fn create(
            ctx: $crate::bindings::flue::agent::types::CreateContext,
        ) -> ::core::result::Result<$crate::bindings::AgentConfig, ::std::string::String> {
            $crate::__create(ctx, $build)
        }

        fn call_tool(
            name: ::std::string::String,
            args: ::std::string::String,
        ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
            $crate::__call_tool(&name, &args)
        }
    };
}
