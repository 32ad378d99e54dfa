//! The host side of a guest's imports, one module per interface of `wit/agent.wit`:
//! [`model`] (`model.complete`), [`session`] (history and durable state), [`agents`]
//! (a workflow prompting agents) and [`log`]. Each is built from only what its
//! interface needs; [`Shared::guest_imports`] is where they are put together.

mod agents;
mod log;
mod model;
mod session;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use super::Shared;
use super::run_log::RunLog;
use crate::agent_config::AgentConfig;
use crate::models::{Message, Usage};
use crate::runtime::{Completion, CompletionRequest, GuestHost, GuestLogLevel, HostError};
use crate::store::{InstanceKey, SessionKey};
use crate::{Error, ErrorKind};
use agents::AgentsImport;
use log::LogImport;
use model::ModelImport;
use session::{InstanceStore, SessionImport};

/// What a guest's `create` returned, once it has: shared by the imports that depend
/// on it (the default model; whether sessions persist).
pub(super) type Created = Arc<OnceLock<Arc<AgentConfig>>>;

/// Answers one guest's imports: an agent instance's, or a workflow run's.
pub(super) struct GuestImports {
    created: Created,
    model: ModelImport,
    session: SessionImport,
    /// Only a workflow run's guest may prompt agents.
    agents: Option<AgentsImport>,
    log: LogImport,
}

impl Shared {
    /// The imports of guest `key`; `run` only for a workflow run. The model import
    /// sees the providers and the agent's policies; the session import, the stores
    /// under `key` only; the agents import, the harness through the run's scope.
    pub(super) fn guest_imports(
        self: &Arc<Self>,
        key: InstanceKey,
        run: Option<Arc<RunLog>>,
    ) -> GuestImports {
        let created = Created::default();
        let store = InstanceStore::new(self.store.clone(), self.memory.clone(), created.clone());
        GuestImports {
            model: ModelImport::new(
                self.providers.clone(),
                self.policies.clone(),
                key.agent.clone(),
                created.clone(),
            ),
            session: SessionImport::new(store, key.clone()),
            agents: run.map(|run| AgentsImport::new(Arc::downgrade(self), run)),
            log: LogImport::new(key),
            created,
        }
    }
}

impl GuestImports {
    /// Records what the guest's `create` returned.
    pub(super) fn created(&self, config: Arc<AgentConfig>) {
        let _ = self.created.set(config);
    }

    /// Tokens the guest's own model calls used since the last look, and zero after.
    pub(super) fn take_spent(&self) -> Usage {
        self.model.take_spent()
    }
}

#[async_trait]
impl GuestHost for GuestImports {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, HostError> {
        self.model.complete(request).await
    }

    async fn history(&self, session: String) -> Result<Vec<Message>, HostError> {
        self.session.history(session).await
    }

    async fn state_get(&self, key: String) -> Result<Option<String>, HostError> {
        self.session.state_get(key).await
    }

    async fn state_set(&self, key: String, value: String) -> Result<(), HostError> {
        self.session.state_set(key, value).await
    }

    async fn prompt_agent(
        &self,
        agent: String,
        id: String,
        session: String,
        message: String,
    ) -> Result<String, HostError> {
        match &self.agents {
            Some(agents) => {
                let key = SessionKey {
                    instance: InstanceKey { agent, id },
                    session,
                };
                agents.prompt(key, message).await
            }
            None => Err(HostError::Refused(
                "only workflows may prompt agents".into(),
            )),
        }
    }

    fn log(&self, session: Option<&str>, level: GuestLogLevel, message: &str) {
        self.log.log(session, level, message);
    }
}

/// How a guest sees a host call's failure: what the caller got wrong (the kinds a
/// caller of the server is told are its own mistake, and a bad agent configuration),
/// what policy refuses, and what may pass later.
// By value so callers write `.map_err(host_error)`; a reference needs a closure at each.
#[allow(clippy::needless_pass_by_value)]
fn host_error(error: Error) -> HostError {
    let message = error.public_message();
    match (&error, error.kind()) {
        (Error::LimitExceeded { .. }, _) => HostError::Refused(message),
        (Error::Config { .. }, _)
        | (
            _,
            ErrorKind::InvalidRequest
            | ErrorKind::AgentNotFound
            | ErrorKind::NotFound
            | ErrorKind::Conflict,
        ) => HostError::Invalid(message),
        _ => HostError::Unavailable(message),
    }
}
