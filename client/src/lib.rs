//! A client for Flue agent servers: prompt an agent instance over HTTP, stream its
//! events over Server-Sent Events, or hold a WebSocket open for many prompts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flue_client::ClientError> {
//! let client = flue_client::Client::new("http://127.0.0.1:2024");
//! let reply = client.agent("support_assistant", "ticket-8472").prompt("Where is my refund?", Some("billing")).await?;
//! println!("{}", reply.text);
//! # Ok(()) }
//! ```

mod ws;

use eventsource_stream::Eventsource;
use flue_wire::{self as wire, ErrorBody};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Deserialize;
use serde_json::Value;

pub use ws::Connection;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the connection broke.
    #[error("transport: {0}")]
    Transport(String),
    /// The server answered with an error envelope.
    #[error("{status} {kind}: {message}")]
    Api {
        /// The HTTP status code; 500 for an `error` event in a stream.
        status: u16,
        /// The envelope's `error.type`, such as `not_found`; `unknown` when missing.
        kind: String,
        /// The envelope's `error.message`.
        message: String,
        /// The whole `error` object.
        error: Value,
    },
    /// The server's answer is not what the protocol says.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ClientError {
    /// The error a status and body say: the wire's error envelope when the body is one,
    /// else an `unknown` error carrying the body.
    fn from_envelope(status: u16, body: &Value) -> Self {
        let error = body.get("error").cloned().unwrap_or(Value::Null);
        // Every field reads leniently: only a body that is no object at all fails.
        let (kind, message) = match ErrorBody::deserialize(&error) {
            Ok(read) if !read.kind.is_empty() => (read.kind, read.message),
            Ok(read) => ("unknown".to_string(), read.message),
            Err(_) => ("unknown".to_string(), String::new()),
        };
        ClientError::Api {
            status,
            kind,
            message,
            error,
        }
    }
}

/// Token counts of one prompt, as the wire carries them.
pub use flue_wire::Usage;

/// The result of one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptResult {
    /// The model's final answer.
    pub text: String,
    /// Tokens used by every model call of the prompt.
    pub usage: Usage,
    /// The model that answered, as `provider/model`.
    pub model: String,
    /// The result object as sent.
    pub raw: Value,
}

impl PromptResult {
    fn from_wire(result: &Value) -> Result<Self, ClientError> {
        let read = wire::PromptResult::deserialize(result)
            .map_err(|e| ClientError::Decode(format!("{e}: {result}")))?;
        Ok(Self {
            text: read.text,
            usage: read.usage,
            model: read.model.id,
            raw: result.clone(),
        })
    }
}

/// One step of a streamed prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The prompt started on this session.
    Start {
        /// The session's name (the event's `session_id`).
        session: String,
    },
    /// A chunk of answer text.
    Delta {
        /// The text, as the server streamed it.
        text: String,
    },
    /// A tool call is about to run.
    ToolStart {
        /// The tool's name (`toolName`).
        name: String,
        /// The provider's id of the call (`toolCallId`).
        call_id: String,
        /// The arguments the model gave, a JSON object.
        args: Value,
    },
    /// A tool call finished.
    ToolEnd {
        /// The tool's name (`toolName`).
        name: String,
        /// The provider's id of the call (`toolCallId`).
        call_id: String,
        /// Whether the tool failed, so `result` is its error message (`isError`).
        is_error: bool,
        /// What the tool returned to the model, as text.
        result: String,
    },
    /// The prompt finished with this result.
    End(PromptResult),
}

impl StreamEvent {
    /// The event named `kind` with `data`, read as `flue_wire::StreamEvent` reads it;
    /// `None` for the kinds this enum leaves out (tasks, compaction, kinds added later).
    fn from_wire(kind: &str, data: &Value) -> Result<Option<Self>, ClientError> {
        if kind == "error" {
            return Err(ClientError::from_envelope(500, data));
        }
        let Some(read) = wire::StreamEvent::from_json(kind, data) else {
            return Ok(None);
        };
        let read = read.map_err(|e| ClientError::Decode(format!("{e}: {data}")))?;
        Ok(match read {
            wire::StreamEvent::Start { session_id } => Some(StreamEvent::Start {
                session: session_id,
            }),
            wire::StreamEvent::Delta { text } => Some(StreamEvent::Delta { text }),
            wire::StreamEvent::ToolStart {
                tool_name,
                tool_call_id,
                args,
            } => Some(StreamEvent::ToolStart {
                name: tool_name,
                call_id: tool_call_id,
                args,
            }),
            wire::StreamEvent::ToolEnd {
                tool_name,
                tool_call_id,
                is_error,
                result,
            } => Some(StreamEvent::ToolEnd {
                name: tool_name,
                call_id: tool_call_id,
                is_error,
                result,
            }),
            wire::StreamEvent::End { .. } => {
                Some(StreamEvent::End(PromptResult::from_wire(&data["result"])?))
            }
            wire::StreamEvent::TaskStart { .. }
            | wire::StreamEvent::TaskEnd { .. }
            | wire::StreamEvent::Compaction { .. } => None,
        })
    }
}

/// A connection to one Flue server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for the server at `url` (e.g. `http://127.0.0.1:2024`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: url.into().trim_end_matches('/').to_string(),
            token: None,
        }
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The agents of the server.
    pub fn agents(&self) -> Agents<'_> {
        Agents { client: self }
    }

    /// One agent instance.
    pub fn agent(&self, name: &str, id: &str) -> Agent<'_> {
        Agent {
            client: self,
            path: format!("/agents/{name}/{id}"),
        }
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<wire::Health, ClientError> {
        let body = self.send(self.http.get(self.url("/health"))).await?;
        wire::Health::deserialize(&body).map_err(|e| ClientError::Decode(format!("{e}: {body}")))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn response(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = self
            .authorized(request)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Err(ClientError::from_envelope(status, &body))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let response = self.response(request).await?;
        response
            .json()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// The agents of a server.
pub struct Agents<'a> {
    client: &'a Client,
}

/// A loaded agent, as `GET /agents` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    /// The agent's name, as the caller's namespace holds it.
    pub name: String,
    /// Its component file, `<name>.wasm` (never a path on the server).
    pub path: String,
}

impl Agents<'_> {
    /// `GET /agents`.
    pub async fn list(&self) -> Result<Vec<AgentSummary>, ClientError> {
        let body = self
            .client
            .send(self.client.http.get(self.client.url("/agents")))
            .await?;
        let list = wire::AgentList::deserialize(&body)
            .map_err(|e| ClientError::Decode(format!("{e}: {body}")))?;
        Ok(list
            .agents
            .into_iter()
            .map(|a| AgentSummary {
                name: a.name,
                path: a.path,
            })
            .collect())
    }

    /// Opens a WebSocket to instance `id` of agent `name`.
    pub async fn connect(&self, name: &str, id: &str) -> Result<Connection, ClientError> {
        Connection::open(self.client, &format!("/agents/{name}/{id}")).await
    }
}

/// One agent instance on a server.
pub struct Agent<'a> {
    client: &'a Client,
    path: String,
}

impl Agent<'_> {
    /// Sends a prompt (to `session`, or `"default"`) and waits for the result.
    pub async fn prompt(
        &self,
        message: &str,
        session: Option<&str>,
    ) -> Result<PromptResult, ClientError> {
        let request = self
            .client
            .http
            .post(self.client.url(&self.path))
            .json(&body(message, session));
        let body = self.client.send(request).await?;
        PromptResult::from_wire(&body["result"])
    }

    /// Sends a prompt and yields its events as they arrive, ending with
    /// [`StreamEvent::End`] (or an error).
    pub async fn stream(
        &self,
        message: &str,
        session: Option<&str>,
    ) -> Result<BoxStream<'static, Result<StreamEvent, ClientError>>, ClientError> {
        let request = self
            .client
            .http
            .post(self.client.url(&self.path))
            .header("accept", "text/event-stream")
            .json(&body(message, session));
        let response = self.client.response(request).await?;
        Ok(response
            .bytes_stream()
            .eventsource()
            .filter_map(|event| async move {
                match event {
                    Err(e) => Some(Err(ClientError::Transport(e.to_string()))),
                    Ok(event) => {
                        let data: Value = match serde_json::from_str(&event.data) {
                            Ok(d) => d,
                            Err(e) => return Some(Err(ClientError::Decode(e.to_string()))),
                        };
                        StreamEvent::from_wire(&event.event, &data).transpose()
                    }
                }
            })
            .boxed())
    }
}

fn body(message: &str, session: Option<&str>) -> wire::PromptBody {
    wire::PromptBody {
        message: Some(message.to_string()),
        session: session.map(str::to_string),
        ..Default::default()
    }
}
