//! What the host offers a running agent: model calls, session history, durable state,
//! host tools and logging. Callable from tool handlers.

use crate::bindings::flue::agent::{log as wit_log, model, session, tools, types::LogLevel};
use serde_json::Value;

/// Asks the model one question from inside a tool; counted in the instance's usage.
/// Returns the answer text.
pub fn complete(
    prompt: &str,
    system: Option<&str>,
    model_name: Option<&str>,
) -> Result<String, String> {
    let request = serde_json::json!({"prompt": prompt, "system": system, "model": model_name});
    let answer: Value = serde_json::from_str(&model::complete(&request.to_string())?)
        .map_err(|e| format!("the host answered with invalid JSON: {e}"))?;
    Ok(answer["text"].as_str().unwrap_or_default().to_string())
}

/// The named session's history, as a JSON array of messages.
pub fn history(session_name: &str) -> Value {
    serde_json::from_str(&session::history(session_name)).unwrap_or(Value::Array(Vec::new()))
}

/// A value this instance stored with [`state_set`].
pub fn state_get(key: &str) -> Option<String> {
    session::state_get(key)
}

/// Stores a value for this instance; it outlives restarts.
pub fn state_set(key: &str, value: &str) {
    session::state_set(key, value)
}

/// Runs one of the host's built-in tools, if this agent's policy allows it.
pub fn call_tool(name: &str, args: &Value) -> Result<String, String> {
    tools::call(name, &args.to_string())
}

/// Writes a line to the host's log, tagged with agent, instance and session.
pub fn log(level: LogLevel, message: &str) {
    wit_log::log(level, message)
}

/// Writes an info line to the host's log.
pub fn info(message: &str) {
    log(LogLevel::Info, message)
}
