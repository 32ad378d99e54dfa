//! A WebSocket to one agent instance: many prompts, one connection.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{Client, ClientError, PromptResult};

/// An open WebSocket to one agent instance.
pub struct Connection {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Connection {
    pub(crate) async fn open(client: &Client, path: &str) -> Result<Self, ClientError> {
        let url = format!("{}{path}", client.base.replacen("http", "ws", 1));
        let mut request = url
            .into_client_request()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if let Some(token) = &client.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| ClientError::Transport("the token is not a valid header".into()))?;
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    let status = response.status().as_u16();
                    let body = response
                        .body()
                        .as_deref()
                        .and_then(|b| serde_json::from_slice(b).ok())
                        .unwrap_or(Value::Null);
                    ClientError::from_envelope(status, &body)
                }
                other => ClientError::Transport(other.to_string()),
            })?;
        Ok(Self { socket })
    }

    /// Sends a prompt (to `session`, or `"default"`) and waits for its result.
    pub async fn prompt(
        &mut self,
        message: &str,
        session: Option<&str>,
    ) -> Result<PromptResult, ClientError> {
        let mut request = json!({"type": "prompt", "message": message});
        if let Some(session) = session {
            request["session"] = json!(session);
        }
        let reply = self.exchange(&request).await?;
        match reply["type"].as_str() {
            Some("result") => PromptResult::from_wire(&reply["result"]),
            Some("error") => Err(ClientError::from_envelope(0, &reply)),
            _ => Err(ClientError::Decode(reply.to_string())),
        }
    }

    /// Sends any JSON message and returns the next reply object.
    pub async fn exchange(&mut self, message: &Value) -> Result<Value, ClientError> {
        let transport =
            |e: tokio_tungstenite::tungstenite::Error| ClientError::Transport(e.to_string());
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .map_err(transport)?;
        while let Some(frame) = self.socket.next().await {
            match frame.map_err(transport)? {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str())
                        .map_err(|e| ClientError::Decode(e.to_string()));
                }
                Message::Close(_) => break,
                _ => continue,
            }
        }
        Err(ClientError::Transport(
            "the server closed the connection".into(),
        ))
    }

    /// Closes the connection cleanly.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.socket
            .close(None)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }
}
