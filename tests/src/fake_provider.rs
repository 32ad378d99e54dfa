//! A scripted model provider on loopback that speaks the real Anthropic Messages and
//! OpenAI Chat Completions wire formats, whole and streamed, so the host's real client
//! code runs in tests. A script turns each request into a [`Reply`].

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
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
    Delayed(std::time::Duration, Box<Reply>),
}

impl Reply {
    /// Waits out any delay and returns the reply to send.
    async fn settle(self) -> Reply {
        match self {
            Reply::Delayed(pause, inner) => {
                tokio::time::sleep(pause).await;
                Box::pin(inner.settle()).await
            }
            other => other,
        }
    }
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub format: Format,
    pub body: Value,
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
    pub raw: Value,
}

type Script = dyn Fn(&Turn) -> Reply + Send + Sync;

struct Shared {
    script: Box<Script>,
    seen: Mutex<Vec<Seen>>,
    ids: AtomicU64,
}

/// The running fake; the server stops when this is dropped.
pub struct FakeProvider {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    /// Starts a server whose replies are computed from each request by `script`.
    pub async fn start(script: impl Fn(&Turn) -> Reply + Send + Sync + 'static) -> FakeProvider {
        let shared = Arc::new(Shared {
            script: Box::new(script),
            seen: Mutex::new(Vec::new()),
            ids: AtomicU64::new(1),
        });
        let app = Router::new()
            .route("/v1/messages", post(anthropic))
            .route("/v1/chat/completions", post(openai))
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

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("seen lock").clone()
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

fn turn(format: Format, body: &Value) -> Turn {
    let all = body["messages"].as_array().cloned().unwrap_or_default();
    let (system, messages): (Option<String>, Vec<Value>) = match format {
        Format::Anthropic => (body["system"].as_str().map(str::to_string), all),
        Format::OpenAi => (
            all.iter()
                .find(|m| m["role"] == "system")
                .map(|m| text_of(&m["content"])),
            all.into_iter().filter(|m| m["role"] != "system").collect(),
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

/// Records the request and runs the script.
fn handle(
    shared: &Shared,
    format: Format,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Value, Reply), String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let api_key = header("x-api-key")
        .or_else(|| header("authorization").map(|a| a.trim_start_matches("Bearer ").to_string()));
    shared.seen.lock().expect("seen lock").push(Seen {
        format,
        body: body.clone(),
        api_key,
    });
    let reply = (shared.script)(&turn(format, &body));
    Ok((body, reply))
}

/// Splits text into three pieces (on character boundaries) to stream as deltas.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(3).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn tokens(len: usize) -> u64 {
    (len as u64 / 4).max(1)
}

fn sse(events: Vec<String>) -> Response {
    let stream = futures_util::stream::iter(
        events
            .into_iter()
            .map(|e| Ok::<_, Infallible>(Bytes::from(e))),
    );
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn anthropic(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, reply) = match handle(&shared, Format::Anthropic, &headers, &body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let input = tokens(body.len());
    let (block, output, stop) = match reply.settle().await {
        Reply::Error { status, message } => {
            let body = json!({"type": "error", "error": {"type": "api_error", "message": message}});
            return (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                axum::Json(body),
            )
                .into_response();
        }
        Reply::Text(text) => (
            json!({"type": "text", "text": text}),
            tokens(text.len()),
            "end_turn",
        ),
        Reply::Delayed(..) => unreachable!("settled above"),
        Reply::ToolCall { name, args } => {
            let id = format!("toolu_{}", shared.ids.fetch_add(1, Ordering::Relaxed));
            (
                json!({"type": "tool_use", "id": id, "name": name, "input": args}),
                5,
                "tool_use",
            )
        }
    };
    let usage = json!({"input_tokens": input, "output_tokens": output, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0});
    if request["stream"] != true {
        return axum::Json(json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": request["model"],
            "content": [block], "stop_reason": stop, "usage": usage
        }))
        .into_response();
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": request["model"], "content": [],
            "usage": {"input_tokens": input, "output_tokens": 1}}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    let (start, deltas): (Value, Vec<Value>) = if block["type"] == "text" {
        let text = block["text"].as_str().unwrap_or_default();
        let deltas = pieces(text)
            .into_iter()
            .map(|t| json!({"type": "text_delta", "text": t}))
            .collect();
        (json!({"type": "text", "text": ""}), deltas)
    } else {
        let args = block["input"].to_string();
        let deltas = pieces(&args)
            .into_iter()
            .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
            .collect();
        (
            json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
            deltas,
        )
    };
    events.push(event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": start}),
    ));
    for delta in deltas {
        events.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ));
    }
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": output}})));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    sse(events)
}

async fn openai(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (request, reply) = match handle(&shared, Format::OpenAi, &headers, &body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let input = tokens(body.len());
    let (content, call, output) = match reply.settle().await {
        Reply::Error { status, message } => {
            let body = json!({"error": {"message": message, "type": "server_error"}});
            return (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                axum::Json(body),
            )
                .into_response();
        }
        Reply::Text(text) => {
            let output = tokens(text.len());
            (Some(text), None, output)
        }
        Reply::Delayed(..) => unreachable!("settled above"),
        Reply::ToolCall { name, args } => {
            let id = format!("call_{}", shared.ids.fetch_add(1, Ordering::Relaxed));
            (None, Some((id, name, args.to_string())), 5)
        }
    };
    let usage = json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
    let finish = if call.is_some() { "tool_calls" } else { "stop" };
    if request["stream"] != true {
        let mut message = json!({"role": "assistant", "content": content});
        if let Some((id, name, args)) = &call {
            message["tool_calls"] = json!([{"id": id, "type": "function", "function": {"name": name, "arguments": args}}]);
        }
        return axum::Json(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "model": request["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        let data = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": request["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {data}\n\n")
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if let Some(text) = &content {
        events.extend(
            pieces(text)
                .into_iter()
                .map(|t| chunk(json!({"content": t}), Value::Null)),
        );
    }
    if let Some((id, name, args)) = &call {
        let head = json!({"tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
        events.push(chunk(head, Value::Null));
        for piece in pieces(args) {
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    events.push(chunk(json!({}), json!(finish)));
    events.push(format!("data: {}\n\n", json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [], "usage": usage})));
    events.push("data: [DONE]\n\n".to_string());
    sse(events)
}
