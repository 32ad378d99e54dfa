//! What the host offers a running agent: model calls, session history, durable state
//! and logging. Callable from tool handlers.

use crate::bindings::flue::agent::model::{self, Completion, CompletionRequest};
use crate::bindings::flue::agent::types::{HostError, LogLevel, Message};
use crate::bindings::flue::agent::{log as wit_log, session};

/// Asks the model one question from inside a tool; counted in the instance's usage.
/// `model_name` is `provider/model`, the agent's own model when `None`.
pub fn complete(
    prompt: &str,
    system: Option<&str>,
    model_name: Option<&str>,
) -> Result<Completion, HostError> {
    model::complete(&CompletionRequest {
        model: model_name.map(str::to_string),
        system: system.map(str::to_string),
        prompt: prompt.to_string(),
    })
}

/// The named session's history, oldest message first.
pub fn history(session_name: &str) -> Result<Vec<Message>, HostError> {
    session::history(session_name)
}

/// A value this instance stored with [`state_set`].
pub fn state_get(key: &str) -> Result<Option<String>, HostError> {
    session::state_get(key)
}

/// Stores a value for this instance; it outlives restarts unless the agent says
/// `persist(false)`.
pub fn state_set(key: &str, value: &str) -> Result<(), HostError> {
    session::state_set(key, value)
}

/// Writes a line to the host's log, tagged with agent, instance and session.
pub fn log(level: LogLevel, message: &str) {
    wit_log::log(level, message);
}

/// Writes an info line to the host's log.
pub fn info(message: &str) {
    log(LogLevel::Info, message);
}

/// The text a tool returns as its error: the failure's kind and message.
impl From<HostError> for String {
    fn from(error: HostError) -> Self {
        match error {
            HostError::Invalid(m) => format!("invalid request: {m}"),
            HostError::Refused(m) => format!("refused: {m}"),
            HostError::Unavailable(m) => format!("unavailable: {m}"),
        }
    }
}
