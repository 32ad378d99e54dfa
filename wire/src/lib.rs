//! The wire shapes of Flue's agent-server protocol (PyFlue's, as `PROTOCOL.md` in the
//! design notes writes it down), shared by the host's server, which writes them, and
//! `flue-client`, which reads them. With the `openapi` feature each shape also derives
//! utoipa's `ToSchema`, so the server's OpenAPI document describes these very types.
//!
//! Readers are lenient where PyFlue's servers differ: optional fields default.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The error envelope every failure answers with: `{"error": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    /// What went wrong.
    pub error: ErrorBody,
}

/// What went wrong: `type` is machine-readable (`invalid_request`, `forbidden`, …),
/// `message` is for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The kind of failure, e.g. `agent_not_found`, `limit_exceeded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What happened, for a person to read.
    pub message: String,
    /// More about it; PyFlue always sends the key, often empty.
    #[serde(default)]
    pub details: String,
    /// Detail for the developer (a parse error, a list of names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Structured detail: `limit`, `retry_after_ms`, `allowed`, `param`, `run_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

impl ErrorEnvelope {
    /// An error of `kind` with `message`, no details.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorBody {
                kind: kind.into(),
                message: message.into(),
                details: String::new(),
                dev: None,
                meta: None,
            },
        }
    }
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always `true` when the server answers.
    pub ok: bool,
    /// The server's framework name (`flue-wasm`; PyFlue's servers say their own).
    pub framework: String,
}

/// A prompt as a client sends it (`POST /agents/{name}/{id}`). The server also reads
/// `prompt` for `message` and the same fields wrapped in `payload`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromptBody {
    /// The user's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Alias of `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The session (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Another model for this prompt: `provider/model` or a `flue.toml` alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The same fields, wrapped (PyFlue's clients send this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

/// `{"result": …}`: a prompt's JSON answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultEnvelope {
    /// The prompt's outcome.
    pub result: PromptResult,
}

/// A prompt's outcome: `{"text", "metadata", "usage", "model": {"id"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromptResult {
    /// The model's final answer.
    pub text: String,
    /// Free-form metadata; this host sends `{}`.
    #[serde(default)]
    pub metadata: Value,
    /// Tokens the prompt used.
    #[serde(default)]
    pub usage: Usage,
    /// The model that answered.
    #[serde(default)]
    pub model: ModelId,
}

/// Tokens a prompt used, the agent's own model calls included. No `cost`: PyFlue's
/// client takes a missing cost as 0, and this host keeps no price list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Tokens read, not counting those read from the provider's cache.
    #[serde(default)]
    pub input: u64,
    /// Tokens written.
    #[serde(default)]
    pub output: u64,
    /// Tokens read from the provider's prompt cache.
    #[serde(default)]
    pub cache_read: u64,
    /// Tokens written to the provider's prompt cache.
    #[serde(default)]
    pub cache_write: u64,
    /// All of the above.
    #[serde(default)]
    pub total_tokens: u64,
}

/// The model that answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelId {
    /// `provider/model`, e.g. `anthropic/claude-haiku-4-5`.
    #[serde(default)]
    pub id: String,
}

/// `GET /agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentList {
    /// The agents the caller may use.
    pub agents: Vec<AgentEntry>,
}

/// One agent, named as the caller's namespace knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentEntry {
    /// The agent's name (without the tenant, for a tenant's key).
    pub name: String,
    /// Its component's file name, never a path on the server.
    #[serde(default)]
    pub path: String,
    /// What starts it besides prompts; this host sends `{}`.
    #[serde(default)]
    pub triggers: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_read_what_they_write_and_leave_out_absent_fields() {
        let mut envelope = ErrorEnvelope::new("not_found", "no such run");
        assert_eq!(
            serde_json::to_value(&envelope).unwrap(),
            json!({"error": {"type": "not_found", "message": "no such run", "details": ""}})
        );
        envelope.error.meta = Some(json!({"limit": "tokens_per_hour"}));
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(
            serde_json::from_str::<ErrorEnvelope>(&text).unwrap(),
            envelope
        );

        let result: PromptResult =
            serde_json::from_value(json!({"text": "hi", "usage": {"input": 3}})).unwrap();
        assert_eq!((result.usage.input, result.usage.output), (3, 0));
        assert_eq!(result.model.id, "");
    }
}
