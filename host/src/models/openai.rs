//! OpenAI Chat Completions (`POST {base}/chat/completions`,
//! <https://platform.openai.com/docs/api-reference/chat>), which OpenAI-compatible servers
//! (Ollama, llama.cpp, vLLM, LiteLLM-style gateways) speak too, each with its own quirks:
//! a stream may end without `[DONE]`, tool calls may share an `index` or carry none,
//! `arguments` may be an object rather than a JSON text, ids may be missing, and usage
//! may come in any chunk. All of those are read here.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

use super::capabilities::{Capabilities, TokenLimitField};
use super::client::{Endpoint, Wire, bad_response, event_json, reported};
use super::sse::SseEvent;
use super::{
    Message, ModelError, ModelRequest, ModelResponse, StreamEvent, ThinkingLevel, ToolCall, Usage,
    new_tool_call_id,
};

/// The OpenAI Chat Completions wire format.
pub(super) struct OpenAi;

impl Wire for OpenAi {
    const PATH: &'static str = "/chat/completions";
    type Stream = StreamState;

    fn headers(endpoint: &Endpoint) -> Vec<(&'static str, String)> {
        let key = endpoint.api_key.iter();
        key.map(|k| ("authorization", format!("Bearer {k}")))
            .collect()
    }

    type Body<'a> = Body<'a>;

    fn request_body<'a>(
        endpoint: &'a Endpoint,
        request: &'a ModelRequest,
        stream: bool,
    ) -> Body<'a> {
        request_body(endpoint, request, stream)
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
        if event.data.trim() == "[DONE]" {
            state.done = true;
        } else {
            let chunk = event_json(endpoint, event)?;
            reported_error(endpoint, &chunk)?;
            state.apply(endpoint, &chunk, sink)?;
        }
        Ok(())
    }

    fn finish(state: StreamState, endpoint: &Endpoint) -> Result<ModelResponse, ModelError> {
        state.finish(endpoint)
    }
}

/// The `reasoning_effort` for a thinking level (`None` for off); `minimal` where the
/// model takes no `minimal` becomes `low`.
fn reasoning_effort(level: ThinkingLevel, capabilities: Capabilities) -> Option<&'static str> {
    match level {
        ThinkingLevel::Off => None,
        ThinkingLevel::Minimal if !capabilities.minimal_effort => Some("low"),
        ThinkingLevel::Minimal => Some("minimal"),
        ThinkingLevel::Low => Some("low"),
        ThinkingLevel::Medium => Some("medium"),
        ThinkingLevel::High => Some("high"),
    }
}

/// The request body of Chat Completions, borrowed from a [`ModelRequest`].
#[derive(Serialize)]
pub(super) struct Body<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct Tool<'a> {
    r#type: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

/// One message of the request.
#[derive(Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
enum Turn<'a> {
    System {
        content: &'a str,
    },
    User {
        content: Cow<'a, str>,
    },
    Assistant {
        /// `null` when the turn is only tool calls.
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        tool_calls: Vec<Call<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
struct Call<'a> {
    id: &'a str,
    r#type: &'static str,
    function: CallFunction<'a>,
}

#[derive(Serialize)]
struct CallFunction<'a> {
    name: &'a str,
    /// The arguments as a JSON text, as the API takes them.
    arguments: String,
}

/// The request body for a [`ModelRequest`], fitted to what the model accepts.
fn request_body<'a>(endpoint: &Endpoint, request: &'a ModelRequest, stream: bool) -> Body<'a> {
    let system = request
        .system
        .iter()
        .map(|content| Turn::System { content });
    let capabilities = endpoint.capabilities.of(&request.model);
    let limit = Some(request.max_tokens);
    let completion_limit = capabilities.token_limit_field == TokenLimitField::MaxCompletionTokens;
    Body {
        model: &request.model,
        max_tokens: limit.filter(|_| !completion_limit),
        max_completion_tokens: limit.filter(|_| completion_limit),
        messages: system.chain(request.messages.iter().map(message)).collect(),
        tools: request
            .tools
            .iter()
            .map(|t| Tool {
                r#type: "function",
                function: Function {
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                },
            })
            .collect(),
        reasoning_effort: request
            .thinking
            .and_then(|level| reasoning_effort(level, capabilities))
            .filter(|_| capabilities.reasoning_effort),
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
    }
}

fn message(m: &Message) -> Turn<'_> {
    match m {
        Message::User { .. } | Message::Summary { .. } => Turn::User {
            content: m.user_text().unwrap_or_default(),
        },
        Message::Assistant {
            content,
            tool_calls,
            ..
        } => Turn::Assistant {
            content: (!content.is_empty()).then_some(content.as_str()),
            tool_calls: tool_calls
                .iter()
                .map(|c| Call {
                    id: &c.id,
                    r#type: "function",
                    function: CallFunction {
                        name: &c.name,
                        arguments: c.arguments.to_string(),
                    },
                })
                .collect(),
        },
        Message::Tool {
            tool_call_id,
            content,
            ..
        } => Turn::Tool {
            tool_call_id,
            content,
        },
    }
}

/// Usage, with cached prompt tokens counted as cache reads rather than input. Reads
/// OpenAI's names and the `input_tokens`/`output_tokens` some gateways use instead.
fn usage(u: &Value) -> Usage {
    let count = |names: [&str; 2]| names.iter().find_map(|n| u[n].as_u64()).unwrap_or(0);
    let prompt = count(["prompt_tokens", "input_tokens"]);
    let cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0)
        .min(prompt);
    Usage {
        input: prompt - cached,
        output: count(["completion_tokens", "output_tokens"]),
        cache_read: cached,
        cache_write: 0,
    }
}

/// The usage a body or chunk carries, wherever the server put it: at the top (OpenAI),
/// in the choice (some compatible servers) or under `x_groq`.
fn usage_in(body: &Value) -> Option<Usage> {
    [
        &body["usage"],
        &body["choices"][0]["usage"],
        &body["x_groq"]["usage"],
    ]
    .into_iter()
    .find(|u| u.is_object())
    .map(usage)
}

/// A tool call's arguments from what the server sent: a JSON text (OpenAI), an object
/// (Ollama and others), or nothing.
fn parse_arguments(
    endpoint: &Endpoint,
    name: &str,
    arguments: &Value,
) -> Result<Value, ModelError> {
    match arguments {
        Value::Null => Ok(json!({})),
        Value::String(text) if text.trim().is_empty() => Ok(json!({})),
        Value::String(text) => serde_json::from_str(text).map_err(|e| {
            bad_response(
                endpoint,
                format!("the arguments of tool call '{name}' are not JSON ({e}): {text}"),
            )
        }),
        other => Ok(other.clone()),
    }
}

/// Fails on an `{"error": ...}` body, which OpenAI sends mid-stream and some compatible
/// servers send with a success status.
fn reported_error(endpoint: &Endpoint, body: &Value) -> Result<(), ModelError> {
    match &body["error"] {
        Value::Null => Ok(()),
        error => Err(reported(endpoint, error)),
    }
}

/// A tool call's name and id, with an id made up when the server sent none.
fn named_call(call: &Value) -> (String, String) {
    let id = call["id"].as_str().filter(|id| !id.is_empty());
    let name = call["function"]["name"].as_str().unwrap_or_default();
    (
        id.map_or_else(new_tool_call_id, str::to_string),
        name.to_string(),
    )
}

/// Reads a whole (non-streamed) response.
fn parse_response(endpoint: &Endpoint, body: &Value) -> Result<ModelResponse, ModelError> {
    reported_error(endpoint, body)?;
    let message = &body["choices"][0]["message"];
    if !message.is_object() {
        return Err(bad_response(
            endpoint,
            "the response has no choices[0].message",
        ));
    }
    let tool_calls = message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|call| {
            let (id, name) = named_call(call);
            let arguments = parse_arguments(endpoint, &name, &call["function"]["arguments"])?;
            Ok(ToolCall {
                id,
                name,
                arguments,
            })
        })
        .collect::<Result<_, ModelError>>()?;
    Ok(ModelResponse {
        text: message["content"].as_str().unwrap_or_default().to_string(),
        tool_calls,
        reasoning: Vec::new(),
        usage: usage_in(body).unwrap_or_default(),
    })
}

/// A tool call being streamed.
struct PartialCall {
    /// The server's id, or one made up if it sent none.
    id: String,
    /// Whether the id came from the server (a later fragment may still bring it).
    id_given: bool,
    /// The `index` the server gave it, if any.
    index: Option<u64>,
    name: String,
    /// The argument text so far, or the whole arguments when sent as an object.
    arguments: Value,
}

impl PartialCall {
    /// Whether the call has its name and arguments that are complete JSON.
    fn is_whole(&self) -> bool {
        !self.name.is_empty()
            && match &self.arguments {
                Value::String(text) => serde_json::from_str::<Value>(text).is_ok(),
                other => other.is_object(),
            }
    }
}

/// What a stream has said so far.
#[derive(Default)]
pub(super) struct StreamState {
    response: ModelResponse,
    /// Tool calls in the order they started.
    calls: Vec<PartialCall>,
    /// A choice said why it finished (`stop`, `tool_calls`, `length`).
    finished: bool,
    done: bool,
}

impl StreamState {
    fn apply(
        &mut self,
        endpoint: &Endpoint,
        chunk: &Value,
        sink: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<(), ModelError> {
        if let Some(usage) = usage_in(chunk) {
            self.response.usage = usage;
        }
        let choice = &chunk["choices"][0];
        if choice["finish_reason"].is_string() {
            self.finished = true;
        }
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.response.text.push_str(text);
            sink(StreamEvent::TextDelta(text.to_string()));
        }
        for fragment in delta["tool_calls"].as_array().into_iter().flatten() {
            self.take_fragment(endpoint, fragment)?;
        }
        Ok(())
    }

    /// Adds a fragment of a tool call to the call it continues: the call with its id if
    /// it has one, else the latest call with its index, else the latest call; a new id,
    /// or a tool's name after a whole call, starts a new call even at an index already
    /// used.
    fn take_fragment(&mut self, endpoint: &Endpoint, fragment: &Value) -> Result<(), ModelError> {
        let id = fragment["id"].as_str().filter(|id| !id.is_empty());
        let index = fragment["index"].as_u64();
        let position = match id {
            Some(id) => self
                .calls
                .iter()
                .position(|c| c.id_given && c.id == id)
                .or_else(|| {
                    // The first fragment at this index that carries the id of a call started
                    // without one.
                    self.calls
                        .iter()
                        .rposition(|c| !c.id_given && index.is_some() && c.index == index)
                }),
            None => {
                let latest = match index {
                    Some(_) => self.calls.iter().rposition(|c| c.index == index),
                    None => self.calls.len().checked_sub(1),
                };
                // Without an id, a fragment that names a tool after a call that is
                // already whole (named, its arguments complete JSON) starts another.
                let names_a_tool = fragment["function"]["name"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty());
                latest.filter(|&at| !(names_a_tool && self.calls[at].is_whole()))
            }
        };
        let call = match position {
            Some(at) => &mut self.calls[at],
            None => {
                self.calls.push(PartialCall {
                    id: id.map_or_else(new_tool_call_id, str::to_string),
                    id_given: id.is_some(),
                    index,
                    name: String::new(),
                    arguments: Value::String(String::new()),
                });
                self.calls.last_mut().expect("just pushed")
            }
        };
        if let Some(id) = id.filter(|_| !call.id_given) {
            call.id = id.to_string();
            call.id_given = true;
        }
        if let Some(name) = fragment["function"]["name"].as_str() {
            // Some servers repeat the whole name in every fragment.
            if call.name != name {
                call.name.push_str(name);
            }
        }
        match (&mut call.arguments, &fragment["function"]["arguments"]) {
            (_, Value::Null) => {}
            (Value::String(so_far), Value::String(more)) => so_far.push_str(more),
            (slot, whole) if whole.is_object() => *slot = whole.clone(),
            (_, other) => {
                return Err(bad_response(
                    endpoint,
                    format!(
                        "tool call '{}' has arguments of an unknown shape: {other}",
                        call.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn finish(mut self, endpoint: &Endpoint) -> Result<ModelResponse, ModelError> {
        if !self.done && !self.finished {
            return Err(ModelError::Incomplete {
                provider: endpoint.provider.clone(),
                reason: "the stream ended before a finish_reason or data: [DONE]".into(),
            });
        }
        self.response.tool_calls = self
            .calls
            .into_iter()
            .map(|c| {
                Ok(ToolCall {
                    arguments: parse_arguments(endpoint, &c.name, &c.arguments)?,
                    id: c.id,
                    name: c.name,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(self.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::client::replay;

    fn endpoint() -> Endpoint {
        Endpoint {
            provider: "openai".into(),
            base_url: "http://x/v1".into(),
            base_url_var: "OPENAI_BASE_URL".into(),
            api_key: None,
            retry: Default::default(),
            capabilities: Default::default(),
        }
    }

    #[test]
    fn request_maps_system_tools_and_tool_results() {
        let request = ModelRequest {
            model: "gpt".into(),
            system: Some("sys".into()),
            messages: vec![
                Message::User {
                    content: "hi".into(),
                },
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "t".into(),
                        arguments: json!({"a": 1}),
                    }],
                    reasoning: Vec::new(),
                },
                Message::Tool {
                    tool_call_id: "call_1".into(),
                    name: "t".into(),
                    content: "ok".into(),
                    is_error: false,
                },
            ],
            tools: Vec::new(),
            max_tokens: 50,
            thinking: Some(ThinkingLevel::Low),
        };
        let body = serde_json::to_value(request_body(&endpoint(), &request, false)).unwrap();
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["reasoning_effort"], "low");
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(body["messages"][3]["tool_call_id"], "call_1");
        assert!(body.get("tools").is_none() && body.get("stream").is_none());
    }

    #[test]
    fn whole_responses_parse_and_bad_arguments_are_errors() {
        let body = json!({
            "choices": [{"message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "t", "arguments": "{\"x\":2}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 6}}
        });
        let r = parse_response(&endpoint(), &body).unwrap();
        assert_eq!(r.tool_calls[0].arguments, json!({"x": 2}));
        assert_eq!(
            r.usage,
            Usage {
                input: 4,
                output: 4,
                cache_read: 6,
                cache_write: 0
            }
        );
        let mut bad = body.clone();
        bad["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = json!("{not json");
        assert!(parse_response(&endpoint(), &bad).is_err());
    }

    /// An SSE stream of `data:` chunks, ended by `[DONE]` if `done`.
    fn sse(chunks: &[Value], done: bool) -> String {
        let data = chunks.iter().map(|c| format!("data: {c}\n\n"));
        data.chain(done.then(|| "data: [DONE]\n\n".to_string()))
            .collect()
    }

    fn delta(delta: &Value) -> Value {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    }

    #[test]
    fn streams_accumulate_text_tool_calls_and_usage() {
        let call = |index: u64, function: Value| {
            delta(&json!({"tool_calls": [{"index": index, "function": function}]}))
        };
        let mut first_call = call(0, json!({"name": "t", "arguments": ""}));
        first_call["choices"][0]["delta"]["tool_calls"][0]["id"] = json!("call_1");
        let raw = sse(
            &[
                delta(&json!({"role": "assistant", "content": ""})),
                delta(&json!({"content": "Let me "})),
                delta(&json!({"content": "check."})),
                first_call,
                call(0, json!({"arguments": "{\"x\""})),
                call(0, json!({"arguments": ": 2}"})),
                call(1, json!({"name": "u"})),
                json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 3}}}),
            ],
            true,
        );
        let (response, sent) = replay::<OpenAi>(&endpoint(), &raw);
        let response = response.unwrap();
        assert_eq!(response.text, "Let me check.");
        assert_eq!(
            sent,
            ["Let me ", "check."].map(|t| StreamEvent::TextDelta(t.into()))
        );
        let calls: Vec<_> = response
            .tool_calls
            .iter()
            .map(|c| (c.name.as_str(), c.arguments.clone()))
            .collect();
        assert_eq!(calls, [("t", json!({"x": 2})), ("u", json!({}))]);
        assert_eq!(response.tool_calls[0].id, "call_1");
        assert_eq!(
            response.usage,
            Usage {
                input: 7,
                output: 7,
                cache_read: 3,
                cache_write: 0
            }
        );
    }

    #[test]
    fn stream_errors_and_cut_streams_fail() {
        let error = sse(&[json!({"error": {"message": "rate limited"}})], true);
        let err = replay::<OpenAi>(&endpoint(), &error).0.unwrap_err();
        assert!(err.to_string().contains("rate limited"), "{err}");
        let cut = sse(&[delta(&json!({"content": "hi"}))], false);
        assert!(replay::<OpenAi>(&endpoint(), &cut).0.is_err());
        let bad_args = sse(
            &[delta(
                &json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "t", "arguments": "{"}}]}),
            )],
            true,
        );
        assert!(replay::<OpenAi>(&endpoint(), &bad_args).0.is_err());
        let whole_error = json!({"error": "model not found"});
        let err = parse_response(&endpoint(), &whole_error).unwrap_err();
        assert!(err.to_string().contains("model not found"), "{err}");
    }

    #[test]
    fn a_stream_that_finished_counts_without_done() {
        let finished = sse(
            &[
                delta(&json!({"content": "Complete answer."})),
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
            ],
            false,
        );
        let response = replay::<OpenAi>(&endpoint(), &finished).0.unwrap();
        assert_eq!(response.text, "Complete answer.");
        assert_eq!(response.usage.output, 5);
        let cut = sse(&[delta(&json!({"content": "Compl"}))], false);
        let err = replay::<OpenAi>(&endpoint(), &cut).0.unwrap_err();
        assert!(matches!(err, ModelError::Incomplete { .. }), "{err:?}");
    }

    #[test]
    fn tool_calls_are_told_apart_by_id_and_keep_object_arguments() {
        let call = |id: &str, args: Value, index: Option<u64>| {
            let mut call = json!({"id": id, "type": "function", "function": {"name": "ticket_status", "arguments": args}});
            if let Some(index) = index {
                call["index"] = json!(index);
            }
            delta(&json!({"tool_calls": [call]}))
        };
        for index in [Some(0), None] {
            let raw = sse(
                &[
                    call("call_a", json!("{\"detail\": true}"), index),
                    call("call_b", json!({"detail": false}), index),
                    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
                ],
                true,
            );
            let response = replay::<OpenAi>(&endpoint(), &raw).0.unwrap();
            let calls: Vec<_> = response
                .tool_calls
                .iter()
                .map(|c| (c.id.as_str(), c.arguments.clone()))
                .collect();
            assert_eq!(
                calls,
                [
                    ("call_a", json!({"detail": true})),
                    ("call_b", json!({"detail": false}))
                ],
                "index {index:?}"
            );
        }
        let repeated_name = sse(
            &[
                delta(
                    &json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "t", "arguments": "{\"a\""}}]}),
                ),
                delta(
                    &json!({"tool_calls": [{"index": 0, "function": {"name": "t", "arguments": ": 1}"}}]}),
                ),
            ],
            true,
        );
        let response = replay::<OpenAi>(&endpoint(), &repeated_name).0.unwrap();
        assert_eq!(response.tool_calls[0].name, "t");
        assert_eq!(response.tool_calls[0].arguments, json!({"a": 1}));
    }

    #[test]
    fn id_less_calls_without_an_index_stay_two() {
        let call = |args: Value| {
            delta(
                &json!({"tool_calls": [{"function": {"name": "ticket_status", "arguments": args}}]}),
            )
        };
        for (first, second) in [
            (json!({"detail": true}), json!({"detail": false})),
            (json!("{\"detail\": true}"), json!("{\"detail\": false}")),
        ] {
            let raw = sse(&[call(first), call(second)], true);
            let response = replay::<OpenAi>(&endpoint(), &raw).0.unwrap();
            let args: Vec<Value> = response
                .tool_calls
                .iter()
                .map(|c| c.arguments.clone())
                .collect();
            assert_eq!(args, [json!({"detail": true}), json!({"detail": false})]);
            assert_ne!(response.tool_calls[0].id, response.tool_calls[1].id);
        }
    }

    #[test]
    fn missing_ids_are_made_up_uniquely_and_usage_is_found() {
        let call = json!({"type": "function", "function": {"name": "task", "arguments": {"x": 1}}});
        let body = json!({
            "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [call, call]},
                "usage": {"prompt_tokens": 3, "completion_tokens": 2}}]
        });
        let response = parse_response(&endpoint(), &body).unwrap();
        let [first, second] = &response.tool_calls[..] else {
            panic!("two calls: {response:?}");
        };
        assert!(
            !first.id.is_empty() && first.id != second.id,
            "{first:?} {second:?}"
        );
        assert_eq!(first.arguments, json!({"x": 1}));
        assert_eq!(response.usage.input, 3, "usage inside the choice");
    }

    #[test]
    fn requests_fit_reasoning_models() {
        let request = |model: &str| ModelRequest {
            model: model.into(),
            system: None,
            messages: Vec::new(),
            tools: Vec::new(),
            max_tokens: 64,
            thinking: Some(ThinkingLevel::Low),
        };
        let o3 = request("o3-mini");
        let body = serde_json::to_value(request_body(&endpoint(), &o3, false)).unwrap();
        assert_eq!(body["max_completion_tokens"], 64);
        assert!(body.get("max_tokens").is_none());
        assert_eq!(body["reasoning_effort"], "low");
        let mut minimal = request("o3-mini");
        minimal.thinking = Some(ThinkingLevel::Minimal);
        let body = serde_json::to_value(request_body(&endpoint(), &minimal, false)).unwrap();
        assert_eq!(
            body["reasoning_effort"], "low",
            "the o-series takes no minimal"
        );
        let gpt4o = request("gpt-4o-mini");
        let body = serde_json::to_value(request_body(&endpoint(), &gpt4o, false)).unwrap();
        assert_eq!(body["max_tokens"], 64);
        assert!(body.get("max_completion_tokens").is_none());
        assert!(
            body.get("reasoning_effort").is_none(),
            "chat models refuse it"
        );
    }
}
