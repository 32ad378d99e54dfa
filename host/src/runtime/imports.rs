//! The `flue:agent` imports a guest may call, answered by a [`GuestHost`] the harness
//! supplies, and the linker that offers them (plus a WASI that grants nothing).

use async_trait::async_trait;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::workflow::{Workflow, flue::agent::agents};
use super::bindings::{Agent, flue::agent as wit};
use super::convert;
use super::instance::InstanceState;
use crate::models::Message;

/// A guest's question for the model (`model.complete`) and its answer.
pub use wit::model::{Completion, CompletionRequest};
/// Why a host call a guest made failed, as the guest sees it.
pub use wit::types::HostError;
/// Severity of a guest's log line.
pub use wit::types::LogLevel as GuestLogLevel;
/// Tokens one guest model call used.
pub use wit::types::Usage as TokenUsage;

/// What a running guest can ask of the host. One value per instance; `session` is the
/// session whose prompt is running, if any.
#[async_trait]
pub trait GuestHost: Send + Sync {
    /// A model completion on the guest's behalf (`model.complete`).
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, HostError>;
    /// A session's history, oldest message first (`session.history`).
    async fn history(&self, session: String) -> Result<Vec<Message>, HostError>;
    /// A durable per-instance value (`session.state-get`).
    async fn state_get(&self, key: String) -> Result<Option<String>, HostError>;
    /// Stores a durable per-instance value (`session.state-set`).
    async fn state_set(&self, key: String, value: String) -> Result<(), HostError>;
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
    ) -> Result<String, HostError>;
}

impl HostError {
    /// The failure's text, whatever its kind.
    pub fn message(&self) -> &str {
        match self {
            HostError::Invalid(m) | HostError::Refused(m) | HostError::Unavailable(m) => m,
        }
    }
}

/// The linker for agent components: WASI p2 (denying everything) and `flue:agent`.
pub(super) fn linker(engine: &Engine) -> wasmtime::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Agent::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// The linker for workflow components: the agent imports plus `agents`.
pub(super) fn workflow_linker(engine: &Engine) -> wasmtime::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Workflow::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

impl wit::types::Host for InstanceState {}

impl wit::model::Host for InstanceState {
    async fn complete(
        &mut self,
        request: CompletionRequest,
    ) -> wasmtime::Result<Result<Completion, HostError>> {
        Ok(self.host.complete(request).await)
    }
}

impl wit::session::Host for InstanceState {
    async fn history(
        &mut self,
        session: String,
    ) -> wasmtime::Result<Result<Vec<wit::types::Message>, HostError>> {
        let history = self.host.history(session).await;
        Ok(history.map(|messages| messages.into_iter().map(convert::message).collect()))
    }

    async fn state_get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, HostError>> {
        Ok(self.host.state_get(key).await)
    }

    async fn state_set(
        &mut self,
        key: String,
        value: String,
    ) -> wasmtime::Result<Result<(), HostError>> {
        Ok(self.host.state_set(key, value).await)
    }
}

impl agents::Host for InstanceState {
    async fn prompt(
        &mut self,
        agent: String,
        id: String,
        session: String,
        message: String,
    ) -> wasmtime::Result<Result<String, HostError>> {
        Ok(self.host.prompt_agent(agent, id, session, message).await)
    }
}

impl wit::log::Host for InstanceState {
    async fn log(&mut self, level: GuestLogLevel, message: String) -> wasmtime::Result<()> {
        self.host.log(self.session.as_deref(), level, &message);
        Ok(())
    }
}
