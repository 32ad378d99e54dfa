//! The host side of a guest's imports — model calls, history, durable state, logs —
//! for agent instances and workflow runs alike; workflows may also prompt agents.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Prompt, Shared};
use crate::Error;
use crate::access::Scope;
use crate::agent_config::AgentConfig;
use crate::models::{Message, ModelRequest, Usage};
use crate::runtime::{
    Completion, CompletionRequest, GuestHost, GuestLogLevel, HostError, TokenUsage,
};
use crate::store::runs::RunEvent;
use crate::store::{InstanceKey, SessionKey};

/// A workflow run's event log: numbers events in order and stores them. It carries
/// the scope of whoever started the run, which bounds the agents the run may prompt.
pub struct RunLog {
    pub id: String,
    next: AtomicU64,
    scope: Scope,
}

impl RunLog {
    /// The log of run `id`, started by a caller with `scope`. Events are numbered from
    /// 1, as PyFlue numbers them, so that `after=0` means every event.
    pub fn new(id: String, scope: Scope) -> Self {
        Self {
            id,
            next: AtomicU64::new(1),
            scope,
        }
    }

    /// Stores the next event; a storage failure is logged, not fatal to the run.
    pub async fn record(&self, shared: &Shared, kind: &str, data: Value) {
        let event = RunEvent {
            index: self.next.fetch_add(1, Ordering::Relaxed),
            kind: kind.to_string(),
            data: data.to_string(),
            at_ms: crate::store::now_millis(),
        };
        if let Err(e) = shared.runs.run_event(&self.id, event).await {
            tracing::warn!(run = %self.id, "cannot store a run event: {e}");
        }
    }
}

/// Answers one guest's imports: an agent instance's, or a workflow run's.
pub struct GuestImports {
    shared: Weak<Shared>,
    key: InstanceKey,
    /// What `create` returned, once it has: the default model for `model.complete`,
    /// and whether sessions and state persist.
    pub config: OnceLock<Arc<AgentConfig>>,
    /// Tokens the guest's own model calls used since the harness last looked.
    pub spent: Mutex<Usage>,
    /// For a workflow: its run, which may prompt agents and records each prompt.
    run: Option<Arc<RunLog>>,
}

impl GuestImports {
    /// The imports of the guest `key` names; `run` only for a workflow run.
    pub fn new(shared: &Arc<Shared>, key: InstanceKey, run: Option<Arc<RunLog>>) -> Self {
        Self {
            shared: Arc::downgrade(shared),
            key,
            config: OnceLock::new(),
            spent: Mutex::default(),
            run,
        }
    }

    /// The instance's store; durable until `create` has said otherwise.
    fn store<'a>(&self, shared: &'a Shared) -> &'a dyn crate::store::Store {
        match self.config.get() {
            Some(config) => shared.store_for(config),
            None => shared.store.as_ref(),
        }
    }

    fn shared(&self) -> Result<Arc<Shared>, HostError> {
        self.shared
            .upgrade()
            .ok_or_else(|| HostError::Unavailable("the host is shutting down".into()))
    }
}

#[async_trait]
impl GuestHost for GuestImports {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, HostError> {
        let shared = self.shared()?;
        let model = match request.model {
            Some(model) => model,
            None => self
                .config
                .get()
                .and_then(|c| c.model.clone())
                .ok_or_else(|| HostError::Invalid("the agent sets no model; pass one".into()))?,
        };
        let (model_ref, provider) =
            (shared.providers.resolve(&model)).map_err(|e| HostError::Invalid(e.to_string()))?;
        let call = ModelRequest {
            model: model_ref.model.clone(),
            system: request.system,
            thinking: None,
            messages: vec![Message::User {
                content: request.prompt,
            }],
            tools: Vec::new(),
            max_tokens: super::MAX_OUTPUT_TOKENS,
        };
        let answer = shared
            .policies
            .metered(
                &self.key.agent,
                &model_ref.to_string(),
                provider.complete(&call),
            )
            .await
            .map_err(host_error)?;
        self.spent.lock().expect("usage lock").add(answer.usage);
        Ok(Completion {
            text: answer.text,
            model: model_ref.to_string(),
            usage: TokenUsage {
                input_tokens: answer.usage.input,
                output_tokens: answer.usage.output,
            },
        })
    }

    async fn history(&self, session: String) -> Result<Vec<Message>, HostError> {
        super::check_name("session name", &session).map_err(host_error)?;
        let key = SessionKey {
            instance: self.key.clone(),
            session,
        };
        let shared = self.shared()?;
        let history = self.store(&shared).history(&key).await;
        history.map_err(|e| host_error(e.into()))
    }

    async fn state_get(&self, key: String) -> Result<Option<String>, HostError> {
        super::check_text("state key", &key).map_err(host_error)?;
        let shared = self.shared()?;
        let value = self.store(&shared).state_get(&self.key, &key).await;
        value.map_err(|e| host_error(e.into()))
    }

    async fn state_set(&self, key: String, value: String) -> Result<(), HostError> {
        super::check_text("state key", &key).map_err(host_error)?;
        super::check_text("state value", &value).map_err(host_error)?;
        let shared = self.shared()?;
        let stored = self.store(&shared).state_set(&self.key, &key, &value).await;
        stored.map_err(|e| host_error(e.into()))
    }

    async fn prompt_agent(
        &self,
        agent: String,
        id: String,
        session: String,
        message: String,
    ) -> Result<String, HostError> {
        let run = self
            .run
            .as_ref()
            .ok_or_else(|| HostError::Refused("only workflows may prompt agents".into()))?;
        let shared = self.shared()?;
        let key = SessionKey {
            instance: InstanceKey { agent, id },
            session,
        };
        let target =
            json!({"agent": key.instance.agent, "id": key.instance.id, "session": key.session});
        run.record(
            &shared,
            "prompt_start",
            json!({"target": target, "message": message}),
        )
        .await;
        let outcome = prompt_within_scope(&shared, &run.scope, &key, &message).await;
        let data = match &outcome {
            Ok(text) => json!({"target": target, "text": text, "is_error": false}),
            Err(error) => json!({"target": target, "error": error.message(), "is_error": true}),
        };
        run.record(&shared, "prompt_end", data).await;
        outcome
    }

    fn log(&self, session: Option<&str>, level: GuestLogLevel, message: &str) {
        let (agent, id, session) = (&self.key.agent, &self.key.id, session.unwrap_or("-"));
        match level {
            GuestLogLevel::Trace => {
                tracing::trace!(target: "flue::guest", agent, id, session, "{message}")
            }
            GuestLogLevel::Debug => {
                tracing::debug!(target: "flue::guest", agent, id, session, "{message}")
            }
            GuestLogLevel::Info => {
                tracing::info!(target: "flue::guest", agent, id, session, "{message}")
            }
            GuestLogLevel::Warn => {
                tracing::warn!(target: "flue::guest", agent, id, session, "{message}")
            }
            GuestLogLevel::Error => {
                tracing::error!(target: "flue::guest", agent, id, session, "{message}")
            }
        }
    }
}

/// Prompts a session for a workflow run, if the run's scope reaches its instance and the
/// agent (its `authorize` export) lets the run's starter in.
async fn prompt_within_scope(
    shared: &Arc<Shared>,
    scope: &Scope,
    key: &SessionKey,
    message: &str,
) -> Result<String, HostError> {
    let instance = &key.instance;
    scope
        .check(&instance.agent, &instance.id)
        .map_err(HostError::Refused)?;
    let admitted = shared
        .guest_authorizes(instance, &scope.identity())
        .await
        .map_err(host_error)?;
    if !admitted {
        return Err(HostError::Refused(format!(
            "agent '{}' does not let this run's caller reach instance '{}'",
            instance.agent, instance.id
        )));
    }
    let prompt = Prompt {
        session: key,
        message,
        model_override: None,
    };
    let answer = shared.run_prompt(prompt, None).await;
    answer.map(|r| r.text).map_err(host_error)
}

/// How a guest sees a host call's failure: what the caller got wrong, what policy
/// refuses, and what may pass later.
fn host_error(error: Error) -> HostError {
    let message = error.public_message();
    match error {
        Error::LimitExceeded { .. } => HostError::Refused(message),
        Error::AgentNotFound { .. }
        | Error::NotFound(_)
        | Error::InvalidRequest(_)
        | Error::Conflict(_)
        | Error::Config { .. } => HostError::Invalid(message),
        Error::Guest { .. }
        | Error::Model(_)
        | Error::Store(_)
        | Error::Startup(_)
        | Error::Io(_) => HostError::Unavailable(message),
    }
}
