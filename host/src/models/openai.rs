//! OpenAI Chat Completions (`POST {base}/chat/completions`), which OpenAI-compatible
//! servers such as Ollama speak too; whole or streamed.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::client::{Wire, bad_response, event_json};
use super::resolve::Endpoint;
use super::sse::SseEvent;
use super::{
    Message, ModelError, ModelRequest, ModelResponse, StreamEvent, ThinkingLevel, ToolCall, Usage,
};

/// The OpenAI Chat Completions wire format.
pub struct OpenAi;

impl Wire for OpenAi {
    const PATH: &'static str = "/chat/completions";
    type Stream = StreamState;

    fn headers(endpoint: &Endpoint) -> Vec<(&'static str, String)> {
        let key = endpoint.api_key.iter();
        key.map(|k| ("authorization", format!("Bearer {k}")))
            .collect()
    }

    type Body<'a> = Body<'a>;

    fn request_body(request: &ModelRequest, stream: bool) -> Body<'_> {
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
        if event.data.trim() == "[DONE]" {
            state.done = true;
        } else {
            let chunk = event_json(endpoint, event)?;
            reported_error(endpoint, &chunk)?;
            state.apply(&chunk, sink);
        }
        Ok(())
    }

    fn finish(state: StreamState, endpoint: &Endpoint) -> Result<ModelResponse, ModelError> {
        state.finish(endpoint)
    }
}

/// The `reasoning_effort` for a thinking level (`None` for off).
fn reasoning_effort(level: ThinkingLevel) -> Option<&'static str> {
    match level {
        ThinkingLevel::Off => None,
        ThinkingLevel::Minimal => Some("minimal"),
        ThinkingLevel::Low => Some("low"),
        ThinkingLevel::Medium => Some("medium"),
        ThinkingLevel::High => Some("high"),
    }
}

/// The request body of Chat Completions, borrowed from a [`ModelRequest`].
#[derive(Serialize)]
pub struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
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

/// The request body for a [`ModelRequest`].
fn request_body(request: &ModelRequest, stream: bool) -> Body<'_> {
    let system = request
        .system
        .iter()
        .map(|content| Turn::System { content });
    Body {
        model: &request.model,
        max_tokens: request.max_tokens,
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
        reasoning_effort: request.thinking.and_then(reasoning_effort),
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

/// Usage, with cached prompt tokens counted as cache reads rather than input.
fn usage(u: &Value) -> Usage {
    let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
    let cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0)
        .min(prompt);
    Usage {
        input: prompt - cached,
        output: u["completion_tokens"].as_u64().unwrap_or(0),
        cache_read: cached,
        cache_write: 0,
    }
}

fn parse_arguments(endpoint: &Endpoint, name: &str, text: &str) -> Result<Value, ModelError> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(text).map_err(|e| {
        bad_response(
            endpoint,
            format!("arguments of tool call '{name}' are not JSON: {e}"),
        )
    })
}

/// Fails on an `{"error": ...}` body, which OpenAI sends mid-stream and some compatible
/// servers send with a success status.
fn reported_error(endpoint: &Endpoint, body: &Value) -> Result<(), ModelError> {
    let error = &body["error"];
    if error.is_null() {
        return Ok(());
    }
    let message = error["message"].as_str().or(error.as_str());
    let message = message.map_or_else(|| error.to_string(), str::to_string);
    Err(bad_response(
        endpoint,
        format!("the server reported an error: {message}"),
    ))
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
        .map(|c| {
            let name = c["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let arguments = parse_arguments(
                endpoint,
                &name,
                c["function"]["arguments"].as_str().unwrap_or_default(),
            )?;
            Ok(ToolCall {
                id: c["id"].as_str().unwrap_or_default().to_string(),
                name,
                arguments,
            })
        })
        .collect::<Result<_, ModelError>>()?;
    Ok(ModelResponse {
        text: message["content"].as_str().unwrap_or_default().to_string(),
        tool_calls,
        usage: usage(&body["usage"]),
    })
}

/// A tool call being streamed: id, name and argument text so far.
#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// What a stream has said so far.
#[derive(Default)]
pub struct StreamState {
    response: ModelResponse,
    calls: BTreeMap<u64, PartialCall>,
    done: bool,
}

impl StreamState {
    fn apply(&mut self, chunk: &Value, sink: &mut (dyn FnMut(StreamEvent) + Send)) {
        if chunk["usage"].is_object() {
            self.response.usage = usage(&chunk["usage"]);
        }
        let delta = &chunk["choices"][0]["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.response.text.push_str(text);
            sink(StreamEvent::TextDelta(text.to_string()));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let partial = self
                .calls
                .entry(call["index"].as_u64().unwrap_or(0))
                .or_default();
            if let Some(id) = call["id"].as_str() {
                partial.id = id.to_string();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                partial.name.push_str(name);
            }
            if let Some(args) = call["function"]["arguments"].as_str() {
                partial.arguments.push_str(args);
            }
        }
    }

    fn finish(mut self, endpoint: &Endpoint) -> Result<ModelResponse, ModelError> {
        if !self.done {
            return Err(bad_response(endpoint, "the stream ended before [DONE]"));
        }
        self.response.tool_calls = self
            .calls
            .into_values()
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
    use crate::models::sse::replay;

    fn endpoint() -> Endpoint {
        Endpoint {
            provider: "openai".into(),
            base_url: "http://x/v1".into(),
            base_url_var: "OPENAI_BASE_URL".into(),
            api_key: None,
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
        let body = serde_json::to_value(request_body(&request, false)).unwrap();
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

    fn delta(delta: Value) -> Value {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    }

    #[test]
    fn streams_accumulate_text_tool_calls_and_usage() {
        let call = |index: u64, function: Value| {
            delta(json!({"tool_calls": [{"index": index, "function": function}]}))
        };
        let mut first_call = call(0, json!({"name": "t", "arguments": ""}));
        first_call["choices"][0]["delta"]["tool_calls"][0]["id"] = json!("call_1");
        let raw = sse(
            &[
                delta(json!({"role": "assistant", "content": ""})),
                delta(json!({"content": "Let me "})),
                delta(json!({"content": "check."})),
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
        let cut = sse(&[delta(json!({"content": "hi"}))], false);
        assert!(replay::<OpenAi>(&endpoint(), &cut).0.is_err());
        let bad_args = sse(
            &[delta(
                json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "t", "arguments": "{"}}]}),
            )],
            true,
        );
        assert!(replay::<OpenAi>(&endpoint(), &bad_args).0.is_err());
        let whole_error = json!({"error": "model not found"});
        let err = parse_response(&endpoint(), &whole_error).unwrap_err();
        assert!(err.to_string().contains("model not found"), "{err}");
    }
}
