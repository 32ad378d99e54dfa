//! A scripted model provider on loopback that speaks the real Anthropic Messages and
//! OpenAI Chat Completions wire formats, whole and streamed, so the host's real client
//! code runs in tests. A script turns each request into a [`Reply`].

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Which wire format a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Anthropic,
    OpenAi,
}

/// What the scripted model answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A final text answer.
    Text(String),
    /// A request to call one tool.
    ToolCall { name: String, args: Value },
    /// An HTTP error from the provider.
    Error { status: u16, message: String },
    /// Another reply, sent after a pause.
    Delayed(Duration, Box<Reply>),
}

/// A reply ready to send.
enum Answer {
    Text(String),
    Call {
        id: String,
        name: String,
        args: Value,
    },
}

impl Reply {
    /// Waits out any delays; then the answer, or the error's status and message.
    /// `id` names a tool call.
    async fn settle(mut self, id: impl FnOnce() -> String) -> Result<Answer, (u16, String)> {
        loop {
            match self {
                Reply::Delayed(pause, inner) => {
                    tokio::time::sleep(pause).await;
                    self = *inner;
                }
                Reply::Text(text) => return Ok(Answer::Text(text)),
                Reply::ToolCall { name, args } => {
                    return Ok(Answer::Call {
                        id: id(),
                        name,
                        args,
                    });
                }
                Reply::Error { status, message } => return Err((status, message)),
            }
        }
    }
}

impl Answer {
    /// What is streamed in pieces: the text, or the tool arguments as JSON.
    fn streamed(&self) -> String {
        match self {
            Answer::Text(text) => text.clone(),
            Answer::Call { args, .. } => args.to_string(),
        }
    }
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub format: Format,
    pub body: Arc<Value>,
    pub api_key: Option<String>,
}

/// A request, normalized so one script serves both formats.
#[derive(Debug, Clone)]
pub struct Turn {
    pub format: Format,
    pub model: String,
    pub system: Option<String>,
    /// Text of the last plain user message.
    pub last_user_text: Option<String>,
    /// Content of the final message, if it is a tool result.
    pub last_tool_result: Option<String>,
    pub tool_names: Vec<String>,
    /// Conversation messages (system prompt excluded).
    pub messages: usize,
    pub raw: Arc<Value>,
}

/// How the fake chooses its replies.
enum Script {
    /// Computed from each request.
    PerTurn(Box<dyn Fn(&Turn) -> Reply + Send + Sync>),
    /// The same for every request, which is read no further than its model and whether
    /// it asks for a stream.
    Same(Reply),
}

/// The only fields a [`Script::Same`] fake reads from a request.
#[derive(serde::Deserialize)]
struct Head {
    model: Value,
    #[serde(default)]
    stream: bool,
}

struct Shared {
    script: Script,
    /// `None` when requests are not recorded.
    seen: Option<Mutex<Vec<Seen>>>,
    ids: AtomicU64,
}

/// The running fake; the server stops when this is dropped.
pub struct FakeProvider {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    /// Starts a server whose replies are computed from each request by `script`; every
    /// request is recorded for [`Self::requests`].
    pub async fn start(script: impl Fn(&Turn) -> Reply + Send + Sync + 'static) -> FakeProvider {
        Self::serve(Script::PerTurn(Box::new(script)), Some(Mutex::default())).await
    }

    /// Like [`Self::start`], but keeps no record of requests, so that a benchmark's
    /// memory does not grow with every request.
    pub async fn unrecorded(
        script: impl Fn(&Turn) -> Reply + Send + Sync + 'static,
    ) -> FakeProvider {
        Self::serve(Script::PerTurn(Box::new(script)), None).await
    }

    /// A provider that answers every request at once with `reply`, reading only its
    /// model and stream flag and keeping no record: the serving benchmarks measure the
    /// host, not the fake.
    pub async fn instant(reply: Reply) -> FakeProvider {
        Self::serve(Script::Same(reply), None).await
    }

    async fn serve(script: Script, seen: Option<Mutex<Vec<Seen>>>) -> FakeProvider {
        let shared = Arc::new(Shared {
            script,
            seen,
            ids: AtomicU64::new(1),
        });
        let route = |format| post(move |state, headers, body| answer(format, state, headers, body));
        let app = Router::new()
            .route("/v1/messages", route(Format::Anthropic))
            .route("/v1/chat/completions", route(Format::OpenAi))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the fake provider serves");
        });
        FakeProvider {
            addr,
            shared,
            server,
        }
    }

    /// Base URL for the Anthropic client: `http://127.0.0.1:PORT`.
    pub fn anthropic_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL for the OpenAI client: `http://127.0.0.1:PORT/v1`.
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received, in order (none for an unrecorded fake).
    pub fn requests(&self) -> Vec<Seen> {
        self.shared
            .seen
            .as_ref()
            .map(|seen| seen.lock().expect("seen lock").clone())
            .unwrap_or_default()
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn turn(format: Format, body: &Arc<Value>) -> Turn {
    let all = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let (system, messages): (Option<String>, Vec<&Value>) = match format {
        Format::Anthropic => (
            body["system"].as_str().map(str::to_string),
            all.iter().collect(),
        ),
        Format::OpenAi => (
            all.iter()
                .find(|m| m["role"] == "system")
                .map(|m| text_of(&m["content"])),
            all.iter().filter(|m| m["role"] != "system").collect(),
        ),
    };
    let is_tool_result = |m: &Value| match format {
        Format::Anthropic => m["content"]
            .as_array()
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result")),
        Format::OpenAi => m["role"] == "tool",
    };
    let last_tool_result = messages
        .last()
        .filter(|m| is_tool_result(m))
        .map(|m| match format {
            Format::Anthropic => m["content"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| text_of(&b["content"]))
                .collect(),
            Format::OpenAi => text_of(&m["content"]),
        });
    let last_user_text = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user" && !is_tool_result(m))
        .map(|m| text_of(&m["content"]));
    let tool_names = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            t["name"]
                .as_str()
                .or(t["function"]["name"].as_str())
                .map(str::to_string)
        })
        .collect();
    Turn {
        format,
        model: body["model"].as_str().unwrap_or_default().to_string(),
        system,
        last_user_text,
        last_tool_result,
        tool_names,
        messages: messages.len(),
        raw: body.clone(),
    }
}

/// Records a request, runs the script and sends its reply in the request's format.
async fn answer(
    format: Format,
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = match &shared.script {
        Script::PerTurn(_) => serde_json::from_slice(&body),
        Script::Same(_) => serde_json::from_slice(&body)
            .map(|head: Head| json!({"model": head.model, "stream": head.stream})),
    };
    let request: Arc<Value> = match parsed {
        Ok(request) => Arc::new(request),
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header("authorization").map(|a| a.trim_start_matches("Bearer "));
    if let Some(seen) = &shared.seen {
        seen.lock().expect("seen lock").push(Seen {
            format,
            body: request.clone(),
            api_key: header("x-api-key").or(bearer).map(str::to_string),
        });
    }
    let prefix = match format {
        Format::Anthropic => "toolu",
        Format::OpenAi => "call",
    };
    let id = || format!("{prefix}_{}", shared.ids.fetch_add(1, Ordering::Relaxed));
    let reply = match &shared.script {
        Script::PerTurn(script) => script(&turn(format, &request)),
        Script::Same(reply) => reply.clone(),
    };
    let answer = match reply.settle(id).await {
        Ok(answer) => answer,
        Err((status, message)) => return error(format, status, message),
    };
    let (input, output) = (tokens(body.len()), tokens(answer.streamed().len()));
    match format {
        Format::Anthropic => anthropic(&request, &answer, input, output),
        Format::OpenAi => openai(&request, &answer, input, output),
    }
}

/// Deterministic token counts: a quarter of the length, at least one.
fn tokens(len: usize) -> u64 {
    (len as u64 / 4).max(1)
}

/// Splits text into three pieces (on character boundaries) to stream as deltas.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(3).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// An error response with the format's error body.
fn error(format: Format, status: u16, message: String) -> Response {
    let body = match format {
        Format::Anthropic => {
            json!({"type": "error", "error": {"type": "api_error", "message": message}})
        }
        Format::OpenAi => json!({"error": {"message": message, "type": "server_error"}}),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

/// A `text/event-stream` response of already-framed events.
fn sse(events: Vec<String>) -> Response {
    let stream = futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>));
    let content_type = [(header::CONTENT_TYPE, "text/event-stream")];
    (content_type, Body::from_stream(stream)).into_response()
}

/// The answer as an Anthropic message, or as its event stream.
fn anthropic(request: &Value, answer: &Answer, input: u64, output: u64) -> Response {
    let (block, start, delta_type, delta_field, stop) = match answer {
        Answer::Text(text) => (
            json!({"type": "text", "text": text}),
            json!({"type": "text", "text": ""}),
            "text_delta",
            "text",
            "end_turn",
        ),
        Answer::Call { id, name, args } => (
            json!({"type": "tool_use", "id": id, "name": name, "input": args}),
            json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
            "input_json_delta",
            "partial_json",
            "tool_use",
        ),
    };
    let message = |content: Value, stop: Value, output: u64| {
        json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": request["model"],
            "content": content, "stop_reason": stop,
            "usage": {"input_tokens": input, "output_tokens": output,
                "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}})
    };
    if request["stream"] != true {
        return Json(message(json!([block]), json!(stop), output)).into_response();
    }
    let event = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        format!("event: {name}\ndata: {data}\n\n")
    };
    let mut events = vec![
        event(
            "message_start",
            json!({"message": message(json!([]), Value::Null, 1)}),
        ),
        event("ping", json!({})),
        event(
            "content_block_start",
            json!({"index": 0, "content_block": start}),
        ),
    ];
    for piece in pieces(&answer.streamed()) {
        let mut delta = json!({"type": delta_type});
        delta[delta_field] = json!(piece);
        events.push(event(
            "content_block_delta",
            json!({"index": 0, "delta": delta}),
        ));
    }
    events.push(event("content_block_stop", json!({"index": 0})));
    let delta = json!({"delta": {"stop_reason": stop}, "usage": {"output_tokens": output}});
    events.push(event("message_delta", delta));
    events.push(event("message_stop", json!({})));
    sse(events)
}

/// The answer as an OpenAI chat completion, or as its chunk stream.
fn openai(request: &Value, answer: &Answer, input: u64, output: u64) -> Response {
    let usage = json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
    let (content, finish) = match answer {
        Answer::Text(text) => (json!(text), "stop"),
        Answer::Call { .. } => (Value::Null, "tool_calls"),
    };
    let completion = |object: &str, choice: Value, usage: Value| {
        json!({"id": "chatcmpl-fake", "object": object, "model": request["model"],
            "choices": [choice], "usage": usage})
    };
    if request["stream"] != true {
        let mut message = json!({"role": "assistant", "content": content});
        if let Answer::Call { id, name, args } = answer {
            let function = json!({"name": name, "arguments": args.to_string()});
            message["tool_calls"] = json!([{"id": id, "type": "function", "function": function}]);
        }
        let choice = json!({"index": 0, "message": message, "finish_reason": finish});
        return Json(completion("chat.completion", choice, usage)).into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        let choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
        completion("chat.completion.chunk", choice, Value::Null)
    };
    let role = json!({"role": "assistant", "content": ""});
    let mut chunks = vec![chunk(role, Value::Null)];
    if let Answer::Call { id, name, .. } = answer {
        let function = json!({"name": name, "arguments": ""});
        let call = json!({"index": 0, "id": id, "type": "function", "function": function});
        chunks.push(chunk(json!({"tool_calls": [call]}), Value::Null));
    }
    for piece in pieces(&answer.streamed()) {
        let delta = match answer {
            Answer::Text(_) => json!({"content": piece}),
            Answer::Call { .. } => {
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            }
        };
        chunks.push(chunk(delta, Value::Null));
    }
    chunks.push(chunk(json!({}), json!(finish)));
    let mut last = completion("chat.completion.chunk", Value::Null, usage);
    last["choices"] = json!([]);
    chunks.push(last);
    let data = chunks.iter().map(|c| format!("data: {c}\n\n"));
    sse(data.chain(["data: [DONE]\n\n".to_string()]).collect())
}
