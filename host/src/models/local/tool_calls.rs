//! Tool calls in the text a small model writes. Models of a billion or two parameters
//! know their chat template's `<tool_call>` tags but often write the call as a fenced
//! ```` ```json ```` block or a bare JSON object instead; all three are read here, and a
//! list of calls too. A JSON value counts as a call only if it names a tool the agent
//! offers: `{"name": …, "arguments": …}` (also `parameters`, `args` or `input` for the
//! arguments, `tool` for the name, or OpenAI's `{"function": {"name", "arguments"}}`),
//! arguments written as an object or as JSON text. Anything else stays answer text.

use std::ops::Range;

use serde_json::{Map, Value};

use super::super::{Message, ToolCall, ToolSpec};

/// What may open a call written in text, and what may close it.
const OPENINGS: [&str; 4] = ["<tool_call>", "```json", "```JSON", "```"];
const CLOSINGS: [&str; 2] = ["</tool_call>", "```"];

/// The keys a call object's arguments may go under, in the order they are looked for.
const ARGUMENT_KEYS: [&str; 4] = ["arguments", "parameters", "args", "input"];

/// A tool call read from the model's text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Call {
    pub name: String,
    pub arguments: Value,
}

/// The model's text split into tool calls and the answer text around them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Parsed {
    pub text: String,
    pub calls: Vec<Call>,
}

/// Reads the tool calls of `offered` tools in `output`.
pub(super) fn parse(output: &str, offered: &[ToolSpec]) -> Parsed {
    let mut calls = Vec::new();
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut from = 0;
    while let Some(found) = output[from..].find(['{', '[']) {
        let start = from + found;
        let mut values = serde_json::Deserializer::from_str(&output[start..]).into_iter::<Value>();
        let Some(Ok(value)) = values.next() else {
            from = start + 1;
            continue;
        };
        let end = start + values.byte_offset();
        if let Some(found) = calls_in(&value, offered) {
            calls.extend(found);
            spans.push(widen(output, start..end));
        }
        from = end;
    }
    let mut text = String::new();
    let mut kept = 0;
    for span in spans {
        text.push_str(&output[kept..span.start]);
        kept = span.end;
    }
    text.push_str(&output[kept..]);
    Parsed {
        text: text.trim().to_string(),
        calls,
    }
}

/// Where in `text` a tool call could begin (a JSON value, a fence or a tag): text before
/// it can be shown as it comes, text after it waits until the answer is whole.
pub(super) fn possible_start(text: &str) -> Option<usize> {
    text.find(['{', '[', '`', '<'])
}

/// Whether one of `calls` repeats, with the same arguments, a call made since the
/// user's last message: small models tend to call a tool again after reading its
/// result instead of answering with it.
pub(super) fn repeats_earlier(calls: &[ToolCall], messages: &[Message]) -> bool {
    let since_user = messages
        .iter()
        .rposition(|m| matches!(m, Message::User { .. }))
        .map_or(messages, |i| &messages[i..]);
    since_user.iter().any(|m| match m {
        Message::Assistant { tool_calls, .. } => tool_calls.iter().any(|made| {
            calls
                .iter()
                .any(|c| c.name == made.name && c.arguments == made.arguments)
        }),
        _ => false,
    })
}

/// Whether the whole of `answer` (tags or a fence aside) is one call-shaped JSON object,
/// `{"name": …, "arguments": …}` or the like: a call to a tool the agent does not offer,
/// since a call to an offered one would have been read as such.
pub(super) fn only_a_call(answer: &str) -> bool {
    let inner = OPENINGS
        .iter()
        .find_map(|o| answer.trim().strip_prefix(o))
        .unwrap_or(answer.trim());
    let inner = CLOSINGS
        .iter()
        .find_map(|c| inner.trim_end().strip_suffix(c))
        .unwrap_or(inner);
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(inner.trim()) else {
        return false;
    };
    let named = ["name", "tool", "function"]
        .iter()
        .any(|key| object.contains_key(*key));
    let with_arguments = ARGUMENT_KEYS.iter().any(|key| object.contains_key(*key));
    named && with_arguments
}

/// The calls a JSON value holds: one call object, or a list of them.
fn calls_in(value: &Value, offered: &[ToolSpec]) -> Option<Vec<Call>> {
    match value {
        Value::Object(object) => Some(vec![call(object, offered)?]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| call(item.as_object()?, offered))
            .collect(),
        _ => None,
    }
}

fn call(object: &Map<String, Value>, offered: &[ToolSpec]) -> Option<Call> {
    let function = object.get("function");
    let name = object
        .get("name")
        .or(object.get("tool"))
        .or(function.and_then(|f| f.get("name")))
        .or(function)?
        .as_str()?;
    if !offered.iter().any(|tool| tool.name == name) {
        return None;
    }
    let arguments = ARGUMENT_KEYS
        .iter()
        .find_map(|key| object.get(*key))
        .or(function.and_then(|f| f.get("arguments")))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let arguments = match arguments {
        Value::String(text) => serde_json::from_str(&text).ok()?,
        Value::Null => Value::Object(Map::new()),
        other => other,
    };
    Some(Call {
        name: name.to_string(),
        arguments,
    })
}

/// `span` with the `<tool_call>` tags or the code fence around it.
fn widen(text: &str, span: Range<usize>) -> Range<usize> {
    let before = text[..span.start].trim_end();
    let after = text[span.end..].trim_start();
    let opening = OPENINGS.iter().find(|o| before.ends_with(*o));
    let closing = CLOSINGS.iter().find(|c| after.starts_with(*c));
    let start = opening.map_or(span.start, |o| before.len() - o.len());
    let end = closing.map_or(span.end, |c| text.len() - after.len() + c.len());
    start..end
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn offered() -> Vec<ToolSpec> {
        ["ticket_status", "search"]
            .iter()
            .map(|name| ToolSpec {
                name: name.to_string(),
                description: String::new(),
                parameters: json!({"type": "object"}),
            })
            .collect()
    }

    fn status(arguments: Value) -> Call {
        Call {
            name: "ticket_status".into(),
            arguments,
        }
    }

    fn tool_call(id: &str, call: Call) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: call.name,
            arguments: call.arguments,
        }
    }

    /// Answers Qwen2.5-Coder-1.5B-Instruct Q4_K_M wrote to the README's support agent
    /// ("Is my refund approved? Give me the details." gave the fenced one, the README's
    /// question the bare one), verbatim; then the tagged forms its template asks for.
    #[test]
    fn the_forms_the_real_model_writes_are_read() {
        let fenced = "```json\n{\n  \"name\": \"ticket_status\",\n  \"arguments\": {\n    \"detail\": true\n  }\n}\n```";
        assert_eq!(
            parse(fenced, &offered()),
            Parsed {
                text: String::new(),
                calls: vec![status(json!({"detail": true}))]
            }
        );
        let bare = "{\"name\": \"ticket_status\", \"arguments\": {\"detail\": true}}";
        assert_eq!(
            parse(bare, &offered()).calls,
            vec![status(json!({"detail": true}))]
        );
        let tagged = "<tool_call>\n{\"name\": \"ticket_status\", \"arguments\": {}}\n</tool_call>";
        assert_eq!(parse(tagged, &offered()).calls, vec![status(json!({}))]);
        let with_text = "Let me check.\n<tool_call>\n{\"name\": \"search\", \"arguments\": \"{\\\"q\\\": \\\"x\\\"}\"}";
        let parsed = parse(with_text, &offered());
        assert_eq!(parsed.text, "Let me check.");
        assert_eq!(parsed.calls[0].arguments, json!({"q": "x"}));
    }

    #[test]
    fn lists_and_other_shapes_of_a_call_are_read() {
        let list = "```json\n[{\"name\": \"search\", \"parameters\": {\"q\": \"a\"}}, {\"function\": {\"name\": \"ticket_status\", \"arguments\": \"{}\"}}]\n```";
        let calls = parse(list, &offered()).calls;
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, json!({"q": "a"}));
        assert_eq!(calls[1], status(json!({})));
    }

    #[test]
    fn json_that_names_no_offered_tool_stays_text() {
        for text in [
            "{\"name\": \"rm_rf\", \"arguments\": {}}",
            "The config is {\"name\": \"alice\"}.",
            "Use [1, 2] and {\"a\": 1}",
            "{ not json",
            "a < b and `code`",
        ] {
            let parsed = parse(text, &offered());
            assert!(parsed.calls.is_empty(), "{text}");
            assert_eq!(parsed.text, text.trim(), "{text}");
        }
    }

    /// The turn the real model wrote for "Hello, who are you?": two calls with other
    /// arguments, then the second again, which is the repeat.
    #[test]
    fn the_real_models_repeat_is_seen_and_its_first_calls_are_not() {
        let written = [
            "{\"name\": \"ticket_status\", \"arguments\": {\"detail\": false}}",
            "{\"name\": \"ticket_status\", \"arguments\": {\"detail\": true}}",
            "{\"name\": \"ticket_status\", \"arguments\": {\"detail\": true}}",
        ];
        let mut messages = vec![Message::User {
            content: "Hello, who are you?".into(),
        }];
        let mut repeats = Vec::new();
        for (i, output) in written.iter().enumerate() {
            let id = format!("call_{i}");
            let calls = parse(output, &offered()).calls;
            let made = [tool_call(&id, calls[0].clone())];
            repeats.push(repeats_earlier(&made, &messages));
            messages.push(Message::Assistant {
                content: String::new(),
                tool_calls: made.to_vec(),
                reasoning: vec![],
            });
            messages.push(Message::Tool {
                tool_call_id: id,
                name: "ticket_status".into(),
                content: "Ticket ticket-8472: open, assigned to billing".into(),
                is_error: false,
            });
        }
        assert_eq!(repeats, [false, false, true]);
    }

    #[test]
    fn a_repeated_call_since_the_users_message_is_seen() {
        let made = |arguments: Value| Message::Assistant {
            content: String::new(),
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "ticket_status".into(),
                arguments,
            }],
            reasoning: vec![],
        };
        let user = |content: &str| Message::User {
            content: content.into(),
        };
        let again = [tool_call("call_2", status(json!({"detail": true})))];
        let turn = [user("status?"), made(json!({"detail": true}))];
        assert!(repeats_earlier(&again, &turn));
        let other_args = [user("status?"), made(json!({"detail": false}))];
        assert!(!repeats_earlier(&again, &other_args));
        let earlier_turn = [made(json!({"detail": true})), user("and now?")];
        assert!(!repeats_earlier(&again, &earlier_turn));
    }

    /// The real model answered "Say hello." with a call to a tool it was not offered.
    #[test]
    fn an_answer_that_is_only_a_call_is_seen_and_prose_with_json_is_not() {
        assert!(only_a_call("{\"name\": \"hello\", \"arguments\": null}"));
        assert!(only_a_call(
            "```json\n{\"tool\": \"greet\", \"input\": {}}\n```"
        ));
        assert!(only_a_call(
            "<tool_call>\n{\"name\": \"x\", \"args\": {}}\n</tool_call>"
        ));
        assert!(!only_a_call("{\"name\": \"alice\"}"), "not call-shaped");
        assert!(!only_a_call("Here: {\"name\": \"x\", \"arguments\": {}}"));
        assert!(!only_a_call("Hello! How can I help?"));
    }
}
