//! The `flue:agent` imports a guest may call, answered by a [`GuestHost`] the harness
//! supplies, and the linker that offers them (plus a WASI that grants nothing).

use async_trait::async_trait;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::workflow::{Workflow, flue::agent::agents};
use super::bindings::{Agent, flue::agent as wit};
use super::instance::InstanceState;

/// Severity of a guest's log line.
pub use wit::types::LogLevel as GuestLogLevel;

/// What a running guest can ask of the host. One value per instance; `session` is the
/// session whose prompt is running, if any.
#[async_trait]
pub trait GuestHost: Send + Sync {
    /// A model completion on the guest's behalf (`model.complete`), JSON in and out.
    async fn complete(&self, request: String) -> Result<String, String>;
    /// A session's history as a JSON array (`session.history`).
    async fn history(&self, session: String) -> anyhow::Result<String>;
    /// A durable per-instance value (`session.state-get`).
    async fn state_get(&self, key: String) -> anyhow::Result<Option<String>>;
    /// Stores a durable per-instance value (`session.state-set`).
    async fn state_set(&self, key: String, value: String) -> anyhow::Result<()>;
    /// A host-provided tool (`tools.call`).
    async fn call_tool(&self, name: String, args: String) -> Result<String, String>;
    /// A log line from the guest.
    fn log(&self, session: Option<&str>, level: GuestLogLevel, message: &str);
    /// A prompt to an agent instance on a workflow's behalf (`agents.prompt`); only
    /// workflows import it.
    async fn prompt_agent(
        &self,
        agent: String,
        id: String,
        session: String,
        message: String,
    ) -> Result<String, String>;
}

/// The linker for agent components: WASI p2 (denying everything) and `flue:agent`.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Agent::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// The linker for workflow components: the agent imports plus `agents`.
pub fn workflow_linker(engine: &Engine) -> wasmtime::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Workflow::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

fn trap(e: anyhow::Error) -> wasmtime::Error {
    wasmtime::Error::msg(format!("{e:#}"))
}

impl wit::types::Host for InstanceState {}

impl wit::model::Host for InstanceState {
    async fn complete(&mut self, request: String) -> wasmtime::Result<Result<String, String>> {
        Ok(self.host.complete(request).await)
    }
}

impl wit::session::Host for InstanceState {
    async fn history(&mut self, session: String) -> wasmtime::Result<String> {
        self.host.history(session).await.map_err(trap)
    }

    async fn state_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.host.state_get(key).await.map_err(trap)
    }

    async fn state_set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.host.state_set(key, value).await.map_err(trap)
    }
}

impl wit::tools::Host for InstanceState {
    async fn call(
        &mut self,
        name: String,
        args: String,
    ) -> wasmtime::Result<Result<String, String>> {
        Ok(self.host.call_tool(name, args).await)
    }
}

impl agents::Host for InstanceState {
    async fn prompt(
        &mut self,
        agent: String,
        id: String,
        session: String,
        message: String,
    ) -> wasmtime::Result<Result<String, String>> {
        Ok(self.host.prompt_agent(agent, id, session, message).await)
    }
}

impl wit::log::Host for InstanceState {
    async fn log(&mut self, level: GuestLogLevel, message: String) -> wasmtime::Result<()> {
        self.host.log(self.session.as_deref(), level, &message);
        Ok(())
    }
}
