//! `flue:agent/agents`: a workflow run prompting agents, within the scope of whoever
//! started the run, each prompt recorded in the run's event log.

use std::sync::{Arc, Weak};

use serde_json::json;

use super::host_error;
use crate::access::Scope;
use crate::harness::run_log::RunLog;
use crate::harness::{Prompt, Shared};
use crate::runtime::HostError;
use crate::store::SessionKey;

/// Answers `agents.prompt` for one workflow run. Prompting an agent runs a whole
/// prompt, so this import alone reaches the harness.
pub(super) struct AgentsImport {
    harness: Weak<Shared>,
    run: Arc<RunLog>,
}

impl AgentsImport {
    /// Prompts through `harness` for `run`, bounded by the run's scope.
    pub(super) fn new(harness: Weak<Shared>, run: Arc<RunLog>) -> Self {
        Self { harness, run }
    }

    /// Prompts session `key` with `message` and answers the final text.
    pub(super) async fn prompt(
        &self,
        key: SessionKey,
        message: String,
    ) -> Result<String, HostError> {
        let harness = self
            .harness
            .upgrade()
            .ok_or_else(|| HostError::Unavailable("the host is shutting down".into()))?;
        let target =
            json!({"agent": key.instance.agent, "id": key.instance.id, "session": key.session});
        let run = &self.run;
        run.record(
            "prompt_start",
            json!({"target": target, "message": message}),
        )
        .await;
        let outcome = prompt_within_scope(&harness, run.scope(), &key, &message).await;
        let data = match &outcome {
            Ok(text) => json!({"target": target, "text": text, "is_error": false}),
            Err(error) => json!({"target": target, "error": error.message(), "is_error": true}),
        };
        run.record("prompt_end", data).await;
        outcome
    }
}

/// Prompts a session for a workflow run, if the run's scope reaches its instance and the
/// agent (its `authorize` export) lets the run's starter in.
async fn prompt_within_scope(
    harness: &Arc<Shared>,
    scope: &Scope,
    key: &SessionKey,
    message: &str,
) -> Result<String, HostError> {
    let instance = &key.instance;
    scope
        .check(&instance.agent, &instance.id)
        .map_err(HostError::Refused)?;
    let admitted = harness
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
    let answer = harness.run_prompt(prompt, None).await;
    answer.map(|r| r.text).map_err(host_error)
}
