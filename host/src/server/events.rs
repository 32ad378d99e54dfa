//! Harness events and results in the wire's shapes (PyFlue's SSE event objects).

use serde_json::{Value, json};

use crate::{Event, PromptResult};

/// The event's `type` and its data object, with both key spellings where PyFlue has two.
pub(super) fn event(e: &Event) -> (&'static str, Value) {
    match e {
        Event::Start { session } => (
            "start",
            json!({"type": "start", "session_id": session, "sessionId": session}),
        ),
        Event::TextDelta { text } => ("delta", json!({"type": "delta", "text": text})),
        Event::ToolStart {
            name,
            call_id,
            args,
        } => (
            "tool_start",
            json!({"type": "tool_start", "toolName": name, "toolCallId": call_id, "args": args,
                   "tool_name": name, "tool_call_id": call_id}),
        ),
        Event::ToolEnd {
            name,
            call_id,
            is_error,
            result,
        } => (
            "tool_end",
            json!({"type": "tool_end", "toolName": name, "toolCallId": call_id, "isError": is_error,
                   "result": result, "tool_name": name, "tool_call_id": call_id, "is_error": is_error}),
        ),
        Event::TaskStart {
            task_id,
            subagent,
            session,
            parent_session,
            prompt,
        } => (
            "task_start",
            json!({"type": "task_start", "taskId": task_id, "task_id": task_id, "prompt": prompt,
                   "role": subagent, "subagent": subagent, "sessionId": session, "session_id": session,
                   "parentSessionId": parent_session, "parent_session_id": parent_session}),
        ),
        Event::TaskEnd {
            task_id,
            subagent,
            is_error,
            result,
        } => (
            "task_end",
            json!({"type": "task_end", "taskId": task_id, "task_id": task_id, "subagent": subagent,
                   "isError": is_error, "is_error": is_error, "result": result}),
        ),
        Event::Compacted {
            tokens_before,
            tokens_after,
        } => (
            "compaction",
            json!({"type": "compaction", "tokensBefore": tokens_before, "tokens_before": tokens_before,
                   "tokensAfter": tokens_after, "tokens_after": tokens_after}),
        ),
    }
}

/// The last event of a stream: the final text and the same result object the JSON
/// response carries.
pub(super) fn end(result: &PromptResult) -> Value {
    json!({"type": "end", "text": result.text, "result": result.to_wire()})
}
