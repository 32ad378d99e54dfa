//! The wire shapes of Flue's agent-server protocol (PyFlue's, as `PROTOCOL.md` in the
//! design notes writes it down), shared by the host's server, which writes them, and
//! `flue-client`, which reads them. With the `openapi` feature each shape also derives
//! utoipa's `ToSchema`, so the server's OpenAPI document describes these very types.
//!
//! Readers are lenient, as a client of servers it does not control must be: a field
//! that is missing, `null` or of another type than this host sends reads as its
//! default, except the few a shape cannot do without (a result's `text`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Reads any JSON value; one that does not fit `T` (missing, `null`, another type)
/// reads as `T::default()`.
fn lenient<'de, D: Deserializer<'de>, T: Default + for<'a> Deserialize<'a>>(
    deserializer: D,
) -> Result<T, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).unwrap_or_default())
}

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
    #[serde(rename = "type", default, deserialize_with = "lenient")]
    pub kind: String,
    /// What happened, for a person to read.
    #[serde(default, deserialize_with = "lenient")]
    pub message: String,
    /// More about it; PyFlue always sends the key, often empty.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub details: String,
    /// Detail for the developer (a parse error, a list of names).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
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
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub ok: bool,
    /// The server's framework name (`flue-wasm`; PyFlue's servers say their own).
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
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
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub metadata: Value,
    /// Tokens the prompt used.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub usage: Usage,
    /// The model that answered.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub model: ModelId,
}

/// Tokens a prompt used, the agent's own model calls included. No `cost`: PyFlue's
/// client takes a missing cost as 0, and this host keeps no price list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Tokens read, not counting those read from the provider's cache.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub input: u64,
    /// Tokens written.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub output: u64,
    /// Tokens read from the provider's prompt cache.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cache_read: u64,
    /// Tokens written to the provider's prompt cache.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cache_write: u64,
    /// All of the above.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub total_tokens: u64,
}

/// The model that answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelId {
    /// `provider/model`, e.g. `anthropic/claude-haiku-4-5`.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
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
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub name: String,
    /// Its component's file name, never a path on the server.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub path: String,
    /// What starts it besides prompts; this host sends `{}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
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

    #[test]
    fn a_field_of_another_type_reads_as_its_default() {
        let odd = json!({"text": "hi", "usage": {"input": 2.5, "output": 4}, "model": "x"});
        let result: PromptResult = serde_json::from_value(odd).unwrap();
        assert_eq!((result.usage.input, result.usage.output), (0, 4));
        assert_eq!(result.model.id, "");
        let error: ErrorBody =
            serde_json::from_value(json!({"type": "conflict", "details": {"a": 1}, "dev": null}))
                .unwrap();
        assert_eq!(
            (error.kind.as_str(), error.message.as_str()),
            ("conflict", "")
        );
        assert!(serde_json::from_value::<PromptResult>(json!({"usage": {}})).is_err());
    }
}
