//! Server-Sent Events for one prompt: events are sent as the harness reports them.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::error::ApiError;
use super::events;
use crate::Session;

fn sse_event(kind: &str, data: &Value) -> SseEvent {
    SseEvent::default().event(kind).data(data.to_string())
}

/// Runs the prompt on its own task and streams its events; the prompt finishes (and is
/// stored) even if the client goes away.
pub(super) fn respond(session: Session, message: String) -> Response {
    let (tx, rx) = mpsc::unbounded_channel::<SseEvent>();
    tokio::spawn(async move {
        let events_tx = tx.clone();
        let outcome = session
            .stream(&message, move |e| {
                let event = events::event(e);
                let _ = events_tx.send(sse_event(event.kind(), &event.to_json()));
            })
            .await;
        let last = match outcome {
            Ok(result) => sse_event("end", &events::end(&result).to_json()),
            Err(e) => sse_event("error", &json!(ApiError::from(e).body)),
        };
        let _ = tx.send(last);
    });
    let events = stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
