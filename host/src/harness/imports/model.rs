//! `flue:agent/model`: a guest's own model calls, under its agent's policies.

use std::sync::{Arc, Mutex};

use super::{Created, host_error};
use crate::harness::MAX_OUTPUT_TOKENS;
use crate::harness::policy::Policies;
use crate::models::{Message, ModelRequest, Providers, Usage};
use crate::runtime::{Completion, CompletionRequest, HostError, TokenUsage};

/// Answers `model.complete` for one agent's guest.
pub(super) struct ModelImport {
    providers: Arc<Providers>,
    policies: Arc<Policies>,
    agent: String,
    created: Created,
    /// Tokens the guest's model calls used since the harness last looked.
    spent: Mutex<Usage>,
}

impl ModelImport {
    /// Model calls through `providers`, metered by `policies` as `agent`'s; the model
    /// is the one asked for, else the one `create` set.
    pub(super) fn new(
        providers: Arc<Providers>,
        policies: Arc<Policies>,
        agent: String,
        created: Created,
    ) -> Self {
        Self {
            providers,
            policies,
            agent,
            created,
            spent: Mutex::default(),
        }
    }

    /// Tokens used since the last look, and zero after.
    pub(super) fn take_spent(&self) -> Usage {
        std::mem::take(&mut *self.spent.lock().expect("usage lock"))
    }

    pub(super) async fn complete(
        &self,
        request: CompletionRequest,
    ) -> Result<Completion, HostError> {
        let model = match request.model {
            Some(model) => model,
            None => self
                .created
                .get()
                .and_then(|c| c.model.clone())
                .ok_or_else(|| HostError::Invalid("the agent sets no model; pass one".into()))?,
        };
        let (model_ref, provider) = self
            .providers
            .resolve(&model)
            .map_err(|e| HostError::Invalid(e.to_string()))?;
        let call = ModelRequest {
            model: model_ref.model.clone(),
            system: request.system,
            thinking: None,
            messages: vec![Message::User {
                content: request.prompt,
            }],
            tools: Vec::new(),
            max_tokens: MAX_OUTPUT_TOKENS,
        };
        let answer = self
            .policies
            .metered(
                &self.agent,
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
}
