//! Harness events and results as the wire's stream events (`flue_wire::StreamEvent`,
//! PyFlue's SSE event objects).

use flue_wire::StreamEvent;

use crate::{Event, PromptResult};

/// The stream event of a harness event.
pub(super) fn event(e: Event) -> StreamEvent {
    match e {
        Event::Start { session } => StreamEvent::Start {
            session_id: session,
        },
        Event::TextDelta { text } => StreamEvent::Delta { text },
        Event::ToolStart {
            name,
            call_id,
            args,
        } => StreamEvent::ToolStart {
            tool_name: name,
            tool_call_id: call_id,
            args,
        },
        Event::ToolEnd {
            name,
            call_id,
            is_error,
            result,
        } => StreamEvent::ToolEnd {
            tool_name: name,
            tool_call_id: call_id,
            is_error,
            result,
        },
        Event::TaskStart {
            task_id,
            subagent,
            session,
            parent_session,
            prompt,
        } => StreamEvent::TaskStart {
            task_id,
            subagent,
            session_id: session,
            parent_session_id: parent_session,
            prompt,
        },
        Event::TaskEnd {
            task_id,
            subagent,
            is_error,
            result,
        } => StreamEvent::TaskEnd {
            task_id,
            subagent,
            is_error,
            result,
        },
        Event::Compacted {
            tokens_before,
            tokens_after,
        } => StreamEvent::Compaction {
            tokens_before: tokens_before as u64,
            tokens_after: tokens_after as u64,
        },
    }
}

/// The last event of a stream: the final text and the same result object the JSON
/// response carries.
pub(super) fn end(result: &PromptResult) -> StreamEvent {
    StreamEvent::End {
        text: result.text.clone(),
        result: result.to_wire(),
    }
}
