//! Model providers: the provider-neutral request and response, and the clients that speak
//! each provider's wire format. This is the only module that knows those formats.

mod anthropic;
mod capabilities;
mod client;
pub mod local;
mod openai;
mod resolve;
mod retry;
mod sse;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::agent_config::ThinkingLevel;

pub use capabilities::{ModelSettings, TokenLimitField};
pub use resolve::{ModelRef, ProviderKind, ProviderSettings, Providers, process_env};

/// One message of a conversation, as the harness stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// What the user (or an event) said.
    User { content: String },
    /// What the model answered: text, tool calls, or both, and the provider's own record
    /// of its reasoning, which is sent back unchanged and never shown as text.
    Assistant {
        #[serde(default)]
        content: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reasoning: Vec<Reasoning>,
    },
    /// The outcome of one tool call.
    Tool {
        tool_call_id: String,
        name: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
    /// A summary of the turns before it, written when the session was compacted; the
    /// `kept` messages stored just before it stay verbatim. The model sees it as a user
    /// message.
    Summary { content: String, kept: u32 },
}

impl Message {
    /// The text the model sees for a user-side message (a user turn or a summary).
    pub fn user_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Message::User { content } => Some(content.into()),
            Message::Summary { content, .. } => {
                Some(format!("[Summary of the earlier conversation]\n{content}").into())
            }
            _ => None,
        }
    }
}

/// Reasoning a provider asks to get back verbatim on later turns: Anthropic's extended
/// thinking blocks (`thinking` with its `signature`, or `redacted_thinking`), which must
/// lead the assistant turn of a tool loop when thinking is on
/// (<https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reasoning {
    /// A summary of the model's thinking and the signature that vouches for it.
    Thinking { thinking: String, signature: String },
    /// Thinking the provider encrypted; `data` is opaque.
    RedactedThinking { data: String },
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call, echoed back with the result.
    pub id: String,
    pub name: String,
    /// The arguments, a JSON value (normally an object).
    pub arguments: serde_json::Value,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A provider-neutral completion request.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The provider's own model name (without the `provider/` prefix).
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
    /// How much the model may think first; thinking is counted in usage, never in text.
    pub thinking: Option<ThinkingLevel>,
}

/// Token counts of one or more model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Usage {
    /// Adds another call's counts to these.
    pub fn add(&mut self, other: Usage) {
        self.input += other.input;
        self.output += other.output;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
    }

    /// Every token counted, in and out.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_write
    }
}

/// A provider-neutral completion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// Reasoning to send back with this turn (see [`Reasoning`]).
    pub reasoning: Vec<Reasoning>,
    pub usage: Usage,
}

impl ModelResponse {
    /// The assistant message that records this answer in a conversation.
    pub fn to_message(&self) -> Message {
        Message::Assistant {
            content: self.text.clone(),
            tool_calls: self.tool_calls.clone(),
            reasoning: self.reasoning.clone(),
        }
    }
}

/// A tool-call id for a call the provider sent without one: unique, so that two calls
/// (and the child sessions of two tasks) never share one.
pub fn new_tool_call_id() -> String {
    format!("call_{:016x}", fastrand::u64(..))
}

/// What a streaming call reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A chunk of answer text, as the provider sent it.
    TextDelta(String),
}

/// Receives stream events; called in order, on the task making the call.
pub type EventSink<'a> = &'a mut (dyn FnMut(StreamEvent) + Send);

/// Why a model call failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "model '{0}' is not of the form provider/model (for example anthropic/claude-haiku-4-5)"
    )]
    BadModelName(String),
    #[error(
        "unknown model provider '{0}': use anthropic, openai, ollama, local or one named in flue.toml [providers]"
    )]
    UnknownProvider(String),
    /// A model name of a known provider that names no model this host has (an unknown
    /// local model, a file not in the model cache).
    #[error("{0}")]
    UnknownModel(String),
    #[error("no API key for {provider}: set {env_var}")]
    MissingKey { provider: String, env_var: String },
    #[error(
        "cannot reach {provider} at {url}: {reason} (set {base_url_var} to change the address)"
    )]
    Unreachable {
        provider: String,
        url: String,
        reason: String,
        base_url_var: String,
    },
    /// The provider refused the request (a status it will answer again the same way).
    #[error("{provider} answered {status}: {body}")]
    Status {
        provider: String,
        status: u16,
        body: String,
    },
    /// The provider is overloaded, failing (HTTP 5xx, 529) or rate-limiting this host
    /// (HTTP 429), or said so in an error event before any content; it was tried
    /// `attempts` times. `retry_after` is when the provider said to come back.
    #[error("{provider} is {} after {attempts} attempt(s): {detail}", if *rate_limited { "rate-limiting this host" } else { "unavailable" })]
    Busy {
        provider: String,
        rate_limited: bool,
        detail: String,
        retry_after: Option<Duration>,
        attempts: u32,
    },
    /// The provider reported an error of its own kind in a stream or a success body.
    #[error("{provider} reported {kind}: {message}")]
    Reported {
        provider: String,
        kind: String,
        message: String,
    },
    /// The answer stopped before it was complete (no finish reason, a broken connection).
    #[error("{provider}'s answer broke off: {reason}")]
    Incomplete { provider: String, reason: String },
    /// The embedded model cannot answer: its weights cannot be fetched or loaded, or the
    /// conversation does not fit its context.
    #[error("the local model cannot answer: {0}")]
    Local(String),
    /// The answer is not in the provider's format (not JSON, a field of the wrong type).
    #[error("{provider} sent a response this host cannot read: {reason}")]
    BadResponse { provider: String, reason: String },
}

impl ModelError {
    /// Whether the same request may succeed if sent again: the provider was busy, or the
    /// answer broke off.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ModelError::Busy { .. } | ModelError::Incomplete { .. }
        )
    }

    /// When the provider said the same request may be sent again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::Busy { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A boxed future, so providers can sit behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A client for one provider's wire format.
pub trait Provider: Send + Sync {
    /// One completion, answered whole.
    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>>;

    /// One completion, streamed: text deltas go to `sink` as they arrive.
    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        sink: EventSink<'a>,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>>;
}
