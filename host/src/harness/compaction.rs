//! Compaction: when a request would pass a session's token threshold, the older turns
//! are summarized by the model into one summary message and the recent turns kept. The
//! store keeps every message; the summary is stored after them and marks where the
//! model's view of the session starts.

use crate::agent_config::AgentConfig;
use crate::models::{Message, ModelRef, ModelRequest};

/// Recent turns kept verbatim unless the agent says otherwise.
pub(super) const DEFAULT_KEEP_RECENT: u32 = 2;

/// What the summarizing call is asked to do.
const SUMMARIZE: &str = "You compress conversations. Summarize the conversation you are given so \
that it can be continued from the summary alone: keep every fact, decision, name, number, file \
and open question that matters, and drop pleasantries. Answer with the summary only.";

/// When a session is compacted and how much of it stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Policy {
    /// Estimated request tokens past which older turns are summarized.
    pub threshold: usize,
    /// Turns (a user message and what followed it) kept verbatim.
    pub keep_recent: usize,
}

impl Policy {
    /// The agent's compaction policy for `model`; `None` when it turned compaction off.
    /// The default threshold is three quarters of the model's context window.
    pub(super) fn of(config: &AgentConfig, model: &ModelRef) -> Option<Self> {
        let settings = config.compaction;
        if settings.is_some_and(|c| !c.enabled) {
            return None;
        }
        let threshold = settings
            .and_then(|c| c.max_tokens)
            .map_or(model.context_window() / 4 * 3, |t| t as usize);
        let keep_recent = settings
            .and_then(|c| c.keep_recent)
            .unwrap_or(DEFAULT_KEEP_RECENT) as usize;
        Some(Self {
            threshold,
            keep_recent,
        })
    }

    /// Where to cut `messages` so that the last `keep_recent` turns stay, looking only
    /// at the first `limit` messages; `None` if nothing before that can be summarized.
    pub(super) fn cut(&self, messages: &[Message], limit: usize) -> Option<usize> {
        let turn_starts: Vec<usize> = messages[..limit]
            .iter()
            .enumerate()
            .filter(|(_, m)| matches!(m, Message::User { .. }))
            .map(|(i, _)| i)
            .collect();
        let cut = if self.keep_recent == 0 {
            limit
        } else {
            *turn_starts.iter().rev().nth(self.keep_recent - 1)?
        };
        (cut > 0 && !matches!(messages[..cut], [Message::Summary { .. }])).then_some(cut)
    }
}

/// A rough token count of a request: about four characters per token.
pub(super) fn estimate_tokens(request: &ModelRequest) -> usize {
    let messages: usize = request.messages.iter().map(text_len).sum();
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
        .sum();
    (request.system.as_ref().map_or(0, String::len) + messages + tools) / 4
}

/// How many characters of text a message carries.
fn text_len(message: &Message) -> usize {
    match message {
        Message::Assistant {
            content,
            tool_calls,
            ..
        } => {
            let calls: usize = tool_calls
                .iter()
                .map(|c| c.name.len() + c.arguments.to_string().len())
                .sum();
            content.len() + calls
        }
        Message::Tool { content, .. } => content.len(),
        user => user.user_text().map_or(0, |t| t.len()),
    }
}

/// The messages the model sees of a stored history: everything after the last
/// summary, preceded by that summary and the messages it kept.
pub(super) fn view(mut history: Vec<Message>) -> Vec<Message> {
    let Some(at) = history
        .iter()
        .rposition(|m| matches!(m, Message::Summary { .. }))
    else {
        return history;
    };
    let kept = match &history[at] {
        Message::Summary { kept, .. } => *kept as usize,
        _ => 0,
    };
    let after = history.split_off(at + 1);
    let summary = history.pop().expect("the summary is there");
    let before: Vec<Message> = history
        .into_iter()
        .filter(|m| !matches!(m, Message::Summary { .. }))
        .collect();
    let mut view = vec![summary];
    view.extend_from_slice(&before[before.len().saturating_sub(kept)..]);
    view.extend(after);
    view
}

/// The request that asks the model to summarize `messages`.
pub(super) fn summary_request(model: &str, messages: &[Message]) -> ModelRequest {
    let mut transcript = String::new();
    for message in messages {
        let line = match message {
            Message::User { content } => format!("User: {content}"),
            Message::Summary { content, .. } => format!("Summary of what came before: {content}"),
            Message::Assistant {
                content,
                tool_calls,
                ..
            } => {
                let mut line = format!("Assistant: {content}");
                for call in tool_calls {
                    line.push_str(&format!("\n[called {} with {}]", call.name, call.arguments));
                }
                line
            }
            Message::Tool { name, content, .. } => format!("[{name} returned] {content}"),
        };
        transcript.push_str(&line);
        transcript.push_str("\n\n");
    }
    ModelRequest {
        model: model.to_string(),
        system: Some(SUMMARIZE.into()),
        messages: vec![Message::User {
            content: format!("<conversation>\n{transcript}</conversation>"),
        }],
        tools: Vec::new(),
        max_tokens: super::MAX_OUTPUT_TOKENS,
        thinking: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Message {
        Message::User {
            content: text.into(),
        }
    }

    fn answer(text: &str) -> Message {
        Message::Assistant {
            content: text.into(),
            tool_calls: Vec::new(),
            reasoning: Vec::new(),
        }
    }

    #[test]
    fn the_view_starts_at_the_last_summary_with_what_it_kept() {
        let history = vec![
            user("1"),
            answer("a1"),
            user("2"),
            answer("a2"),
            Message::Summary {
                content: "s".into(),
                kept: 2,
            },
            user("3"),
        ];
        assert_eq!(
            view(history),
            vec![
                Message::Summary {
                    content: "s".into(),
                    kept: 2
                },
                user("2"),
                answer("a2"),
                user("3")
            ]
        );
    }

    #[test]
    fn the_cut_keeps_recent_turns_whole() {
        let policy = Policy {
            threshold: 0,
            keep_recent: 1,
        };
        let messages = vec![user("1"), answer("a1"), user("2"), answer("a2"), user("3")];
        assert_eq!(policy.cut(&messages, 4), Some(2));
        assert_eq!(policy.cut(&messages, 2), None);
        let summarized = vec![
            Message::Summary {
                content: "s".into(),
                kept: 0,
            },
            user("2"),
        ];
        assert_eq!(policy.cut(&summarized, 2), None);
    }
}
