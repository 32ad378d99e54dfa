//! The Anthropic Messages API: `POST /v1/messages`, whole or streamed
//! (<https://docs.anthropic.com/en/api/messages>, <https://docs.anthropic.com/en/api/messages-streaming>).
//! With thinking on, the signed thinking blocks of an answer are kept and sent back at
//! the head of its assistant turn, as a tool loop requires.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::client::{Endpoint, Wire, bad_response, event_json, reported};
use super::sse::SseEvent;
use super::{
    Message, ModelError, ModelRequest, ModelResponse, Reasoning, StreamEvent, ThinkingLevel,
    ToolCall, Usage, new_tool_call_id,
};

const API_VERSION: &str = "2023-06-01";

/// The Anthropic Messages wire format.
pub(super) struct Anthropic;

impl Wire for Anthropic {
    const PATH: &'static str = "/v1/messages";
    type Stream = StreamState;

    fn headers(endpoint: &Endpoint) -> Vec<(&'static str, String)> {
        let key = endpoint.api_key.iter().map(|k| ("x-api-key", k.clone()));
        key.chain([("anthropic-version", API_VERSION.to_string())])
            .collect()
    }

    type Body<'a> = Body<'a>;

    fn request_body<'a>(_: &'a Endpoint, request: &'a ModelRequest, stream: bool) -> Body<'a> {
        request_body(request, stream)
    }

    fn parse_response(endpoint: &Endpoint, body: &Value) -> Result<ModelResponse, ModelError> {
        parse_response(endpoint, body)
    }

    fn on_event(
        state: &mut StreamState,
        endpoint: &Endpoint,
        event: &SseEvent,
        sink: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<(), ModelError> {
        state.apply(endpoint, &event_json(endpoint, event)?, sink)
    }

    fn finish(state: StreamState, endpoint: &Endpoint) -> Result<ModelResponse, ModelError> {
        state.finish(endpoint)
    }
}

/// Extended-thinking token budget for a thinking level (`None` for off).
fn thinking_budget(level: ThinkingLevel) -> Option<u32> {
    match level {
        ThinkingLevel::Off => None,
        ThinkingLevel::Minimal => Some(1024),
        ThinkingLevel::Low => Some(2048),
        ThinkingLevel::Medium => Some(8192),
        ThinkingLevel::High => Some(16384),
    }
}

/// The request body of the Messages API, borrowed from a [`ModelRequest`].
#[derive(Serialize)]
pub(super) struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Serialize)]
struct Thinking {
    r#type: &'static str,
    budget_tokens: u32,
}

#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
}

/// One message of the request: a user turn as text, or blocks.
#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Content<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
        is_error: bool,
    },
}

/// The request body for a [`ModelRequest`].
fn request_body(request: &ModelRequest, stream: bool) -> Body<'_> {
    let budget = request.thinking.and_then(thinking_budget);
    Body {
        model: &request.model,
        // The answer's own budget comes on top of the thinking budget.
        max_tokens: request.max_tokens + budget.unwrap_or(0),
        messages: messages(&request.messages, budget.is_some()),
        thinking: budget.map(|budget_tokens| Thinking {
            r#type: "enabled",
            budget_tokens,
        }),
        system: request.system.as_deref(),
        tools: request
            .tools
            .iter()
            .map(|t| Tool {
                name: &t.name,
                description: &t.description,
                input_schema: &t.parameters,
            })
            .collect(),
        stream,
    }
}

/// Maps messages; consecutive tool results become one user message of `tool_result` blocks.
/// With thinking on, an assistant turn starts with its thinking blocks, unchanged. An
/// assistant turn with nothing to send is left out: the API rejects it.
fn messages(messages: &[Message], thinking: bool) -> Vec<Turn<'_>> {
    let mut out: Vec<Turn> = Vec::with_capacity(messages.len());
    for message in messages {
        match message {
            Message::User { .. } | Message::Summary { .. } => out.push(Turn {
                role: "user",
                content: Content::Text(message.user_text().unwrap_or_default()),
            }),
            Message::Assistant {
                content,
                tool_calls,
                reasoning,
            } => {
                let reasoning = reasoning.iter().filter(|_| thinking).map(|r| match r {
                    Reasoning::Thinking {
                        thinking,
                        signature,
                    } => Block::Thinking {
                        thinking,
                        signature,
                    },
                    Reasoning::RedactedThinking { data } => Block::RedactedThinking { data },
                });
                let text = (!content.is_empty()).then_some(Block::Text { text: content });
                let calls = tool_calls.iter().map(|c| Block::ToolUse {
                    id: &c.id,
                    name: &c.name,
                    input: &c.arguments,
                });
                let blocks: Vec<Block> = reasoning.chain(text).chain(calls).collect();
                if !blocks.is_empty() {
                    out.push(Turn {
                        role: "assistant",
                        content: Content::Blocks(blocks),
                    });
                }
            }
            Message::Tool {
                tool_call_id,
                content,
                is_error,
                ..
            } => {
                let block = Block::ToolResult {
                    tool_use_id: tool_call_id,
                    content,
                    is_error: *is_error,
                };
                match out.last_mut().and_then(tool_results) {
                    Some(results) => results.push(block),
                    None => out.push(Turn {
                        role: "user",
                        content: Content::Blocks(vec![block]),
                    }),
                }
            }
        }
    }
    out
}

/// The blocks of `turn` if it is a user message made only of tool results.
fn tool_results<'t, 'a>(turn: &'t mut Turn<'a>) -> Option<&'t mut Vec<Block<'a>>> {
    match &mut turn.content {
        Content::Blocks(blocks)
            if turn.role == "user"
                && blocks.iter().all(|b| matches!(b, Block::ToolResult { .. })) =>
        {
            Some(blocks)
        }
        _ => None,
    }
}

/// Reads a `usage` object; counts it does not give keep their value in `base`.
fn usage(u: &Value, base: Usage) -> Usage {
    let n = |k: &str, old: u64| u[k].as_u64().unwrap_or(old);
    Usage {
        input: n("input_tokens", base.input),
        output: n("output_tokens", base.output),
        cache_read: n("cache_read_input_tokens", base.cache_read),
        cache_write: n("cache_creation_input_tokens", base.cache_write),
    }
}

/// Reads a whole (non-streamed) response.
fn parse_response(endpoint: &Endpoint, body: &Value) -> Result<ModelResponse, ModelError> {
    if body["type"] == "error" {
        return Err(reported(endpoint, &body["error"]));
    }
    let blocks = body["content"]
        .as_array()
        .ok_or_else(|| bad_response(endpoint, "the response has no content array"))?;
    let mut response = ModelResponse {
        usage: usage(&body["usage"], Usage::default()),
        ..Default::default()
    };
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => response
                .text
                .push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => {
                let input = match &block["input"] {
                    Value::Null => json!({}),
                    input => input.clone(),
                };
                response.tool_calls.push(tool_call(endpoint, block, input)?);
            }
            _ => response.reasoning.extend(reasoning(block)),
        }
    }
    Ok(response)
}

/// A whole thinking or redacted-thinking block as [`Reasoning`]; `None` for other blocks.
fn reasoning(block: &Value) -> Option<Reasoning> {
    let text = |k: &str| block[k].as_str().unwrap_or_default().to_string();
    match block["type"].as_str()? {
        "thinking" => Some(Reasoning::Thinking {
            thinking: text("thinking"),
            signature: text("signature"),
        }),
        "redacted_thinking" => Some(Reasoning::RedactedThinking { data: text("data") }),
        _ => None,
    }
}

/// A tool call from a `tool_use` block; an id is made up if a compatible server sent none.
fn tool_call(endpoint: &Endpoint, block: &Value, arguments: Value) -> Result<ToolCall, ModelError> {
    let name = block["name"]
        .as_str()
        .ok_or_else(|| bad_response(endpoint, "a tool_use block has no name"))?;
    let id = block["id"].as_str().filter(|id| !id.is_empty());
    Ok(ToolCall {
        id: id.map_or_else(new_tool_call_id, str::to_string),
        name: name.to_string(),
        arguments,
    })
}

/// A content block being streamed.
enum PartialBlock {
    /// A `tool_use` block and its input JSON so far.
    ToolUse(Value, String),
    /// A thinking block (or a redacted one, whole at its start).
    Reasoning(Reasoning),
}

/// What a stream has said so far.
#[derive(Default)]
pub(super) struct StreamState {
    response: ModelResponse,
    /// Blocks being streamed, by block index.
    pending: BTreeMap<u64, PartialBlock>,
    /// Completed tool calls and reasoning, by block index (so they keep the provider's
    /// order).
    calls: BTreeMap<u64, ToolCall>,
    reasoning: BTreeMap<u64, Reasoning>,
    /// The answer said why it stopped (`message_delta` with a `stop_reason`).
    stop_reason: bool,
    stopped: bool,
}

impl StreamState {
    fn apply(
        &mut self,
        endpoint: &Endpoint,
        event: &Value,
        sink: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<(), ModelError> {
        let index = event["index"].as_u64().unwrap_or(0);
        match event["type"].as_str().unwrap_or_default() {
            "message_start" => {
                self.response.usage = usage(&event["message"]["usage"], Usage::default());
            }
            "content_block_start" => {
                let block = &event["content_block"];
                let partial = match block["type"].as_str() {
                    Some("tool_use") => Some(PartialBlock::ToolUse(block.clone(), String::new())),
                    _ => reasoning(block).map(PartialBlock::Reasoning),
                };
                if let Some(partial) = partial {
                    self.pending.insert(index, partial);
                }
            }
            "content_block_delta" => self.delta(index, &event["delta"], sink),
            "content_block_stop" => match self.pending.remove(&index) {
                Some(PartialBlock::ToolUse(block, json)) => {
                    let arguments = if !json.trim().is_empty() {
                        serde_json::from_str(&json).map_err(|e| {
                            bad_response(
                                endpoint,
                                format!("the input of a tool_use block is not JSON ({e}): {json}"),
                            )
                        })?
                    } else if block["input"].is_object() {
                        // Sent whole at the start, as some compatible servers do.
                        block["input"].clone()
                    } else {
                        json!({})
                    };
                    self.calls
                        .insert(index, tool_call(endpoint, &block, arguments)?);
                }
                Some(PartialBlock::Reasoning(reasoning)) => {
                    self.reasoning.insert(index, reasoning);
                }
                None => {}
            },
            "message_delta" => {
                self.stop_reason |= event["delta"]["stop_reason"].is_string();
                self.response.usage = usage(&event["usage"], self.response.usage);
            }
            "message_stop" => self.stopped = true,
            "error" => return Err(reported(endpoint, &event["error"])),
            _ => {} // ping, and event types added later
        }
        Ok(())
    }

    /// Takes in a `content_block_delta`.
    fn delta(&mut self, index: u64, delta: &Value, sink: &mut (dyn FnMut(StreamEvent) + Send)) {
        let piece = |k: &str| delta[k].as_str().unwrap_or_default();
        match (delta["type"].as_str(), self.pending.get_mut(&index)) {
            (Some("text_delta"), _) if !piece("text").is_empty() => {
                self.response.text.push_str(piece("text"));
                sink(StreamEvent::TextDelta(piece("text").to_string()));
            }
            (Some("input_json_delta"), Some(PartialBlock::ToolUse(_, json))) => {
                json.push_str(piece("partial_json"));
            }
            (
                Some("thinking_delta"),
                Some(PartialBlock::Reasoning(Reasoning::Thinking { thinking, .. })),
            ) => thinking.push_str(piece("thinking")),
            (
                Some("signature_delta"),
                Some(PartialBlock::Reasoning(Reasoning::Thinking { signature, .. })),
            ) => signature.push_str(piece("signature")),
            _ => {}
        }
    }

    /// The answer, once the stream has ended: whole if it ended with `message_stop`, or
    /// said why it stopped (some servers end there), and left no block open.
    fn finish(mut self, endpoint: &Endpoint) -> Result<ModelResponse, ModelError> {
        let whole = (self.stopped || self.stop_reason) && self.pending.is_empty();
        if !whole {
            return Err(ModelError::Incomplete {
                provider: endpoint.provider.clone(),
                reason: "the stream ended before message_stop".into(),
            });
        }
        self.response.tool_calls = self.calls.into_values().collect();
        self.response.reasoning = self.reasoning.into_values().collect();
        Ok(self.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ToolSpec;
    use crate::models::client::replay;

    fn endpoint() -> Endpoint {
        Endpoint {
            provider: "anthropic".into(),
            base_url: "http://x".into(),
            base_url_var: "ANTHROPIC_BASE_URL".into(),
            api_key: None,
            retry: Default::default(),
            capabilities: Default::default(),
        }
    }

    #[test]
    fn tool_results_merge_into_one_user_message() {
        let request = ModelRequest {
            model: "m".into(),
            system: Some("sys".into()),
            messages: vec![
                Message::User {
                    content: "hi".into(),
                },
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![
                        ToolCall {
                            id: "a".into(),
                            name: "t".into(),
                            arguments: json!({}),
                        },
                        ToolCall {
                            id: "b".into(),
                            name: "t".into(),
                            arguments: json!({"x": 1}),
                        },
                    ],
                    reasoning: Vec::new(),
                },
                Message::Tool {
                    tool_call_id: "a".into(),
                    name: "t".into(),
                    content: "1".into(),
                    is_error: false,
                },
                Message::Tool {
                    tool_call_id: "b".into(),
                    name: "t".into(),
                    content: "2".into(),
                    is_error: true,
                },
            ],
            tools: vec![ToolSpec {
                name: "t".into(),
                description: "d".into(),
                parameters: json!({"type": "object"}),
            }],
            max_tokens: 100,
            thinking: Some(ThinkingLevel::High),
        };
        let body = serde_json::to_value(request_body(&request, true)).unwrap();
        assert_eq!(body["system"], "sys");
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": 16384})
        );
        assert_eq!(
            body["max_tokens"],
            100 + 16384,
            "the answer keeps its own budget"
        );
        assert_eq!(body["stream"], true);
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[1]["content"].as_array().unwrap().len(),
            2,
            "no empty text block"
        );
        assert_eq!(messages[2]["content"][1]["tool_use_id"], "b");
        assert_eq!(messages[2]["content"][1]["is_error"], true);
        let empty_turn = Message::Assistant {
            content: String::new(),
            tool_calls: Vec::new(),
            reasoning: Vec::new(),
        };
        assert!(super::messages(&[empty_turn], true).is_empty());
    }

    #[test]
    fn whole_responses_parse_text_tools_and_usage() {
        let body = json!({
            "content": [
                {"type": "thinking", "thinking": "hidden"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "ticket_status", "input": {"detail": true}}
            ],
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2}
        });
        let r = parse_response(&endpoint(), &body).unwrap();
        assert_eq!(r.text, "Let me check.");
        assert_eq!(r.tool_calls[0].arguments, json!({"detail": true}));
        assert_eq!(
            r.usage,
            Usage {
                input: 10,
                output: 5,
                cache_read: 3,
                cache_write: 2
            }
        );
        assert!(parse_response(&endpoint(), &json!({"nope": 1})).is_err());
    }

    /// An SSE stream of `(event, data)` pairs.
    fn sse(events: &[(&str, Value)]) -> String {
        let event = |(name, data): &(&str, Value)| format!("event: {name}\ndata: {data}\n\n");
        events.iter().map(event).collect()
    }

    #[test]
    fn streams_accumulate_text_tool_json_and_usage() {
        let delta = |index: u64, delta: Value| {
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": delta}),
            )
        };
        let raw = sse(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1, "cache_read_input_tokens": 4}}}),
            ),
            ("ping", json!({"type": "ping"})),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            delta(0, json!({"type": "text_delta", "text": "Let me "})),
            delta(0, json!({"type": "text_delta", "text": "check."})),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}}),
            ),
            delta(
                1,
                json!({"type": "input_json_delta", "partial_json": "{\"detail\""}),
            ),
            delta(
                1,
                json!({"type": "input_json_delta", "partial_json": ": true}"}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "u", "input": {}}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 2}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ]);
        let (response, sent) = replay::<Anthropic>(&endpoint(), &raw);
        let response = response.unwrap();
        assert_eq!(response.text, "Let me check.");
        assert_eq!(
            sent,
            ["Let me ", "check."].map(|t| StreamEvent::TextDelta(t.into()))
        );
        let calls: Vec<_> = response
            .tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.arguments.clone()))
            .collect();
        assert_eq!(
            calls,
            [("toolu_1", json!({"detail": true})), ("toolu_2", json!({}))]
        );
        assert_eq!(
            response.usage,
            Usage {
                input: 9,
                output: 12,
                cache_read: 4,
                cache_write: 0
            }
        );
    }

    #[test]
    fn stream_errors_and_cut_streams_fail() {
        let error = sse(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"usage": {}}}),
            ),
            (
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ),
        ]);
        let err = replay::<Anthropic>(&endpoint(), &error).0.unwrap_err();
        assert!(
            err.to_string().contains("overloaded_error: Overloaded"),
            "{err}"
        );
        let cut = sse(&[(
            "message_start",
            json!({"type": "message_start", "message": {"usage": {}}}),
        )]);
        assert!(replay::<Anthropic>(&endpoint(), &cut).0.is_err());
        assert!(
            replay::<Anthropic>(&endpoint(), "data: {not json\n\n")
                .0
                .is_err()
        );
    }

    /// The events of a signed thinking block, then a tool call, ended by `message_delta`
    /// and, if `stop`, `message_stop`.
    fn thinking_then_tool(stop: bool) -> String {
        let mut events = vec![
            (
                "message_start",
                json!({"type": "message_start", "message": {"usage": {"input_tokens": 20}}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "List first."}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBsig"}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "opaque"}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {"path": "."}}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 2}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            ),
        ];
        if stop {
            events.push(("message_stop", json!({"type": "message_stop"})));
        }
        sse(&events)
    }

    #[test]
    fn thinking_is_kept_apart_from_text_and_sent_back_first() {
        for stop in [true, false] {
            let (response, sent) = replay::<Anthropic>(&endpoint(), &thinking_then_tool(stop));
            let response = response.unwrap();
            assert!(
                sent.is_empty() && response.text.is_empty(),
                "thinking is never text"
            );
            assert_eq!(
                response.reasoning,
                [
                    Reasoning::Thinking {
                        thinking: "List first.".into(),
                        signature: "EqQBsig".into()
                    },
                    Reasoning::RedactedThinking {
                        data: "opaque".into()
                    }
                ]
            );
            assert_eq!(
                response.tool_calls[0].arguments,
                json!({"path": "."}),
                "input sent whole at the start"
            );
            let mut request = ModelRequest {
                model: "m".into(),
                system: None,
                messages: vec![
                    Message::User {
                        content: "review".into(),
                    },
                    response.to_message(),
                ],
                tools: Vec::new(),
                max_tokens: 100,
                thinking: Some(ThinkingLevel::Medium),
            };
            let body = serde_json::to_value(request_body(&request, false)).unwrap();
            let blocks = &body["messages"][1]["content"];
            assert_eq!(
                blocks[0],
                json!({"type": "thinking", "thinking": "List first.", "signature": "EqQBsig"})
            );
            assert_eq!(
                blocks[1],
                json!({"type": "redacted_thinking", "data": "opaque"})
            );
            assert_eq!(blocks[2]["type"], "tool_use");
            request.thinking = None;
            let body = serde_json::to_value(request_body(&request, false)).unwrap();
            assert_eq!(
                body["messages"][1]["content"][0]["type"], "tool_use",
                "only with thinking on"
            );
        }
        let body = json!({"content": [
            {"type": "thinking", "thinking": "t", "signature": "s"},
            {"type": "tool_use", "name": "ls", "input": {}}
        ]});
        let whole = parse_response(&endpoint(), &body).unwrap();
        assert_eq!(whole.reasoning.len(), 1);
        assert!(
            whole.tool_calls[0].id.starts_with("call_"),
            "an id is made up"
        );
    }

    #[test]
    fn overload_before_content_is_busy_and_a_cut_stream_is_incomplete() {
        let overloaded = sse(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"usage": {}}}),
            ),
            ("ping", json!({"type": "ping"})),
            (
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ),
        ]);
        let err = replay::<Anthropic>(&endpoint(), &overloaded).0.unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::Busy {
                    rate_limited: false,
                    ..
                }
            ),
            "{err:?}"
        );
        let invalid = sse(&[(
            "error",
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}),
        )]);
        let err = replay::<Anthropic>(&endpoint(), &invalid).0.unwrap_err();
        assert!(matches!(err, ModelError::Reported { .. }), "{err:?}");
        let cut = sse(&[(
            "message_start",
            json!({"type": "message_start", "message": {"usage": {}}}),
        )]);
        let err = replay::<Anthropic>(&endpoint(), &cut).0.unwrap_err();
        assert!(matches!(err, ModelError::Incomplete { .. }), "{err:?}");
    }
}
