//! The prompt a local model reads: a conversation in ChatML, with tools offered and tool
//! turns written the way Qwen2.5's chat template (in its GGUF file) writes them — tools
//! as JSON lines inside `<tools>`, calls inside `<tool_call>`, results inside
//! `<tool_response>` in a user turn. JSON is written with Python's `json.dumps`
//! separators (`", "`, `": "`), as the template's `tojson` does.

use std::io;

use serde::Serialize;
use serde_json::{Value, json};

use super::super::{Message, ModelRequest, ToolSpec};

/// The system prompt when the agent gives none.
const DEFAULT_SYSTEM: &str = "You are a helpful assistant.";

/// `request` as one ChatML prompt, ending where the assistant's answer starts; tools
/// are offered only if `offer_tools`.
pub(super) fn prompt(request: &ModelRequest, offer_tools: bool) -> String {
    let mut out = String::from("<|im_start|>system\n");
    out.push_str(request.system.as_deref().unwrap_or(DEFAULT_SYSTEM));
    if offer_tools && !request.tools.is_empty() {
        push_tools(&mut out, &request.tools);
    }
    out.push_str("<|im_end|>\n");
    let mut in_tool_turn = false;
    for message in &request.messages {
        let tool_result = matches!(message, Message::Tool { .. });
        if in_tool_turn && !tool_result {
            out.push_str("<|im_end|>\n");
        }
        match message {
            Message::Assistant {
                content,
                tool_calls,
                ..
            } => {
                out.push_str("<|im_start|>assistant\n");
                out.push_str(content);
                for call in tool_calls {
                    if !out.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str("<tool_call>\n");
                    out.push_str(&format!(
                        "{{\"name\": {}, \"arguments\": {}}}",
                        python_json(&json!(call.name)),
                        python_json(&call.arguments)
                    ));
                    out.push_str("\n</tool_call>");
                }
                out.push_str("<|im_end|>\n");
            }
            Message::Tool { content, .. } => {
                if !in_tool_turn {
                    out.push_str("<|im_start|>user");
                }
                out.push_str("\n<tool_response>\n");
                out.push_str(content);
                out.push_str("\n</tool_response>");
            }
            Message::User { .. } | Message::Summary { .. } => {
                let text = message.user_text().unwrap_or_default();
                out.push_str("<|im_start|>user\n");
                out.push_str(&text);
                out.push_str("<|im_end|>\n");
            }
        }
        in_tool_turn = tool_result;
    }
    if in_tool_turn {
        out.push_str("<|im_end|>\n");
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

fn push_tools(out: &mut String, tools: &[ToolSpec]) {
    out.push_str(
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for tool in tools {
        out.push_str(&format!(
            "\n{{\"type\": \"function\", \"function\": {{\"name\": {}, \"description\": {}, \"parameters\": {}}}}}",
            python_json(&json!(tool.name)),
            python_json(&json!(tool.description)),
            python_json(&tool.parameters)
        ));
    }
    out.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and \
         arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
         {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
    );
}

/// JSON on one line with `", "` and `": "` between items, as Python writes it.
fn python_json(value: &Value) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonSeparators);
    value
        .serialize(&mut serializer)
        .expect("a JSON value serializes into memory");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

struct PythonSeparators;

impl serde_json::ser::Formatter for PythonSeparators {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.begin_array_value(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ToolCall;

    #[test]
    fn a_tool_round_is_written_as_qwen_writes_it() {
        let request = ModelRequest {
            model: "m".into(),
            system: Some("Be brief.".into()),
            messages: vec![
                Message::User {
                    content: "status?".into(),
                },
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "ticket_status".into(),
                        arguments: json!({"detail": true}),
                    }],
                    reasoning: vec![],
                },
                Message::Tool {
                    tool_call_id: "call_1".into(),
                    name: "ticket_status".into(),
                    content: "open".into(),
                    is_error: false,
                },
            ],
            tools: vec![ToolSpec {
                name: "ticket_status".into(),
                description: "The status.".into(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: 10,
            thinking: None,
        };
        let with_tools = prompt(&request, true);
        assert!(
            with_tools.starts_with("<|im_start|>system\nBe brief.\n\n# Tools\n"),
            "{with_tools}"
        );
        assert!(with_tools.contains(
            "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"ticket_status\", \"description\": \"The status.\", \"parameters\": {\"type\": \"object\"}}}\n</tools>"
        ), "{with_tools}");
        assert!(with_tools.ends_with(
            "<|im_start|>user\nstatus?<|im_end|>\n\
             <|im_start|>assistant\n<tool_call>\n{\"name\": \"ticket_status\", \"arguments\": {\"detail\": true}}\n</tool_call><|im_end|>\n\
             <|im_start|>user\n<tool_response>\nopen\n</tool_response><|im_end|>\n\
             <|im_start|>assistant\n"
        ), "{with_tools}");
        let without = prompt(&request, false);
        assert!(
            without.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n"),
            "{without}"
        );
    }
}
