//! WebSocket: one connection to an instance, many prompts, each with its own session.
//! Replies come in the order the prompts were sent.

use axum::extract::ws::{Message, WebSocket};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::error::ApiError;
use super::request;
use crate::Harness;

/// Serves one upgraded connection until the client closes it or the server shuts down;
/// a prompt already running is answered before the socket closes.
pub(super) async fn serve(
    mut socket: WebSocket,
    harness: Harness,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let message = tokio::select! {
            m = socket.recv() => m,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let reply = match message {
            Some(Ok(Message::Text(text))) => answer(&harness, text.as_str()).await,
            // A client that sends bytes (a Buffer, `ws.send(msg.encode())`) means the same
            // JSON text; bytes that are not UTF-8 get an error reply.
            Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => answer(&harness, text).await,
                Err(_) => json!({"type": "error", "error": ApiError::invalid_request(
                    "a binary message must hold the prompt's JSON as UTF-8 text"
                ).body.error}),
            },
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
            Some(Ok(_)) => continue, // pings are answered by the library
        };
        if socket
            .send(Message::Text(reply.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// Runs one client message and returns the reply object.
async fn answer(harness: &Harness, text: &str) -> Value {
    let parsed: Result<Value, ApiError> = serde_json::from_str(text).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_json",
            "the message is not valid JSON",
        )
        .dev(e.to_string())
    });
    let id = parsed.as_ref().ok().and_then(|v| v.get("id").cloned());
    let outcome = async {
        let value = parsed?;
        if !matches!(
            value.get("type").and_then(Value::as_str),
            None | Some("prompt")
        ) {
            return Err(ApiError::invalid_request(
                "only {\"type\": \"prompt\"} messages are understood",
            ));
        }
        let prompt = request::from_value(&value)?;
        let result = prompt
            .session_on(harness.clone())
            .prompt(&prompt.message)
            .await?;
        Ok(json!({"type": "result", "result": result.to_wire()}))
    }
    .await;
    let mut reply =
        outcome.unwrap_or_else(|e: ApiError| json!({"type": "error", "error": e.body.error}));
    if let Some(id) = id {
        reply["id"] = id;
    }
    reply
}
