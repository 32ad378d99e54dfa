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
    User {
        /// The user's text.
        content: String,
    },
    /// What the model answered: text, tool calls, or both, and the provider's own record
    /// of its reasoning, which is sent back unchanged and never shown as text.
    Assistant {
        /// The answer text; empty when the turn only calls tools.
        #[serde(default)]
        content: String,
        /// The tools the model asked to call, in its order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
        /// The provider's reasoning blocks for this turn, to send back verbatim.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reasoning: Vec<Reasoning>,
    },
    /// The outcome of one tool call.
    Tool {
        /// The [`ToolCall::id`] this answers.
        tool_call_id: String,
        /// The tool's name, as the model called it.
        name: String,
        /// What the tool returned, or its error message, as text.
        content: String,
        /// Whether the call failed, so `content` is an error message.
        #[serde(default)]
        is_error: bool,
    },
    /// A summary of the turns before it, written when the session was compacted; the
    /// `kept` messages stored just before it stay verbatim. The model sees it as a user
    /// message.
    Summary {
        /// The summary text the model wrote of the earlier turns.
        content: String,
        /// How many messages just before this one were kept verbatim.
        kept: u32,
    },
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
    Thinking {
        /// The thinking text, as the provider gave it.
        thinking: String,
        /// Anthropic's signature over `thinking`, sent back unchanged.
        signature: String,
    },
    /// Thinking the provider encrypted; `data` is opaque.
    RedactedThinking {
        /// The encrypted thinking, sent back unchanged.
        data: String,
    },
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call, echoed back with the result.
    pub id: String,
    /// The name of the tool to call, one of the request's [`ToolSpec::name`]s.
    pub name: String,
    /// The arguments, a JSON value (normally an object).
    pub arguments: serde_json::Value,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The name the model calls the tool by.
    pub name: String,
    /// What the tool does, for the model to read.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A provider-neutral completion request.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The provider's own model name (without the `provider/` prefix).
    pub model: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// The tools the model may call; empty for none.
    pub tools: Vec<ToolSpec>,
    /// The most tokens the answer may take (the provider's `max_tokens` or its equivalent).
    pub max_tokens: u32,
    /// How much the model may think first; thinking is counted in usage, never in text.
    pub thinking: Option<ThinkingLevel>,
}

/// Token counts of one or more model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens read fresh, not from the provider's prompt cache.
    pub input: u64,
    /// Tokens the model wrote, thinking included.
    pub output: u64,
    /// Prompt tokens read from the prompt cache (Anthropic's `cache_read_input_tokens`,
    /// OpenAI's `cached_tokens`).
    pub cache_read: u64,
    /// Prompt tokens written to the prompt cache (Anthropic's `cache_creation_input_tokens`).
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
    /// The answer text; empty when the model only called tools.
    pub text: String,
    /// The tools the model asked to call, in its order.
    pub tool_calls: Vec<ToolCall>,
    /// Reasoning to send back with this turn (see [`Reasoning`]).
    pub reasoning: Vec<Reasoning>,
    /// The tokens this call took.
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
    /// A model name without the `provider/` prefix; holds the name as given.
    #[error(
        "model '{0}' is not of the form provider/model (for example anthropic/claude-haiku-4-5)"
    )]
    BadModelName(String),
    /// A provider that is neither built in nor named in `flue.toml [providers]`; holds
    /// its name, with why when the table names it but leaves it unusable.
    #[error(
        "unknown model provider '{0}': use anthropic, openai, ollama, local or one named in flue.toml [providers]"
    )]
    UnknownProvider(String),
    /// A model name of a known provider that names no model this host has (an unknown
    /// local model, a file not in the model cache).
    #[error("{0}")]
    UnknownModel(String),
    /// The provider needs an API key and none is set.
    #[error("no API key for {provider}: set {env_var}")]
    MissingKey {
        /// The provider's name, as in `provider/model`.
        provider: String,
        /// The environment variable that should hold the key.
        env_var: String,
    },
    /// The request could not be sent: a bad address, DNS, a refused connection, TLS.
    #[error(
        "cannot reach {provider} at {url}: {reason} (set {base_url_var} to change the address)"
    )]
    Unreachable {
        /// The provider's name, as in `provider/model`.
        provider: String,
        /// The URL the request was sent to.
        url: String,
        /// The innermost cause the HTTP client gave.
        reason: String,
        /// The setting that changes the address: an environment variable such as
        /// `OPENAI_BASE_URL`, or `base_url` in `flue.toml [providers.<name>]`.
        base_url_var: String,
    },
    /// The provider refused the request (a status it will answer again the same way).
    #[error("{provider} answered {status}: {body}")]
    Status {
        /// The provider's name, as in `provider/model`.
        provider: String,
        /// The HTTP status code.
        status: u16,
        /// The response body, cut to its first 2000 bytes.
        body: String,
    },
    /// The provider is overloaded, failing (HTTP 5xx, 529) or rate-limiting this host
    /// (HTTP 429), or said so in an error event before any content; it was tried
    /// `attempts` times. `retry_after` is when the provider said to come back.
    #[error("{provider} is {} after {attempts} attempt(s): {detail}", if *rate_limited { "rate-limiting this host" } else { "unavailable" })]
    Busy {
        /// The provider's name, as in `provider/model`.
        provider: String,
        /// Whether it was a rate limit (HTTP 429 or a `rate_limit` error) rather than an outage.
        rate_limited: bool,
        /// What the provider said: the HTTP status and body, or the error's kind and message.
        detail: String,
        /// How long to wait: the provider's `retry-after`, or else the last back-off
        /// once retries ran out.
        retry_after: Option<Duration>,
        /// How many times the request was sent, the first included.
        attempts: u32,
    },
    /// The provider reported an error of its own kind in a stream or a success body.
    #[error("{provider} reported {kind}: {message}")]
    Reported {
        /// The provider's name, as in `provider/model`.
        provider: String,
        /// The error's `type` (or `code`), such as `invalid_request_error`.
        kind: String,
        /// The error's `message`.
        message: String,
    },
    /// The answer stopped before it was complete (no finish reason, a broken connection).
    #[error("{provider}'s answer broke off: {reason}")]
    Incomplete {
        /// The provider's name, as in `provider/model`.
        provider: String,
        /// What was missing or broke.
        reason: String,
    },
    /// The embedded model cannot answer: its weights cannot be fetched or loaded, or the
    /// conversation does not fit its context.
    #[error("the local model cannot answer: {0}")]
    Local(String),
    /// The answer is not in the provider's format (not JSON, a field of the wrong type).
    #[error("{provider} sent a response this host cannot read: {reason}")]
    BadResponse {
        /// The provider's name, as in `provider/model`.
        provider: String,
        /// What in the answer could not be read.
        reason: String,
    },
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
