//! Workflows and runs: `POST /workflows/{name}` (202 with the run id, the result with
//! `?wait=result`, or the run's events over SSE), the same route as a WebSocket, and
//! `GET /runs/{id}`, `/runs/{id}/events`, `/runs/{id}/stream` (SSE, resumable with
//! `Last-Event-ID`), `POST /runs/{id}/cancel`.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};

use super::request::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::dispatch::iso8601;
use super::error::ApiError;
use super::wire;
use super::{App, read_body, request};
use crate::access::Scope;
use crate::harness::workflows::parse_json;
use crate::{RunEvent, RunRecord, RunStatus};

/// The most events one page of `/runs/{id}/events` holds.
const MAX_PAGE: u64 = 1000;

/// `GET /workflows`: `{"workflows": [{"name"}]}`, for the operator's keys.
#[utoipa::path(get, path = "/workflows", responses((status = 200, description = "The loaded workflows", body = wire::WorkflowList), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "A tenant's key", body = wire::ErrorEnvelope)))]
pub(super) async fn list_workflows(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.auth.caller(&headers, None)?.operator()?;
    let names = app.host.workflows().into_iter();
    let workflows: Vec<Value> = names.map(|name| json!({ "name": name })).collect();
    Ok(Json(json!({ "workflows": workflows })))
}

/// `POST /workflows/{name}`: the body (or its `payload` field) is the payload.
#[utoipa::path(post, path = "/workflows/{name}", params(("name" = String, Path, description = "The workflow"), ("wait" = Option<String>, Query, description = "`result`: answer when the run ends")), request_body = Object, responses((status = 202, description = "The run started; with `Accept: text/event-stream`, its events as SSE", body = wire::RunAccepted), (status = 200, description = "With `?wait=result`: the run's result", body = Object), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "A tenant's key", body = wire::ErrorEnvelope), (status = 404, description = "No such workflow", body = wire::ErrorEnvelope), (status = 500, description = "With `?wait=result`: the run failed", body = wire::ErrorEnvelope)))]
pub(super) async fn start(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = app.auth.caller(&headers, None)?;
    caller.operator()?;
    let body = read_body(&app, body).await?;
    let payload = payload_of(request::json_body(&headers, &body)?);
    let run = app
        .host
        .run_workflow(&name, &payload, caller.scope())
        .await?;
    let run_id = run.id.clone();
    let mut response = if request::wants_sse(&headers) {
        sse(&app, &run_id, None)
    } else if query.get("wait").map(String::as_str) == Some("result") {
        match run.result().await {
            Ok(result) => Json(json!({"status": "completed", "run_id": run_id, "runId": run_id, "result": parse_json(&result)}))
                .into_response(),
            Err(error) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "workflow_error", error)
                .meta(json!({"run_id": run_id, "runId": run_id}))
                .into_response(),
        }
    } else {
        (
            StatusCode::ACCEPTED,
            Json(json!({"status": "accepted", "run_id": run_id, "runId": run_id})),
        )
            .into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&run_id) {
        response.headers_mut().insert("x-flue-run-id", value);
    }
    Ok(response)
}

/// `{"payload": …}` is unwrapped; any other body is the payload itself.
fn payload_of(body: Value) -> Value {
    match body {
        Value::Object(mut fields) if fields.contains_key("payload") => {
            fields.remove("payload").unwrap_or_default()
        }
        other => other,
    }
}

/// The run's events after `after` as SSE (`id: <index>`, `event: <type>`), ending with
/// `run_end`.
fn sse(app: &App, run_id: &str, after: Option<u64>) -> Response {
    let id = run_id.to_string();
    let events = app.host.follow_run(run_id, after).map(move |event| {
        Ok::<_, Infallible>(match event {
            Ok(e) => SseEvent::default()
                .id(e.index.to_string())
                .event(e.kind.clone())
                .data(event_json(&id, &e).to_string()),
            Err(e) => SseEvent::default()
                .event("error")
                .data(json!(ApiError::from(e).body).to_string()),
        })
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `GET /runs/{id}/stream`: the run's events as SSE, after `Last-Event-ID` if given.
#[utoipa::path(get, path = "/runs/{id}/stream", params(("id" = String, Path, description = "The run id"), ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event")), responses((status = 200, description = "The run's events as SSE, ending with `run_end`", body = String, content_type = "text/event-stream"), (status = 404, description = "No such run", body = wire::ErrorEnvelope)))]
pub(super) async fn stream(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    followed(&app, &headers, &id).await?;
    let after = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| ApiError::invalid_request("Last-Event-ID must be an event index"))?,
        ),
    };
    Ok(sse(&app, &id, after))
}

/// `POST /runs/{id}/cancel`: stops a run in progress.
#[utoipa::path(post, path = "/runs/{id}/cancel", params(("id" = String, Path, description = "The run id")), responses((status = 200, description = "Cancelled", body = Object), (status = 404, description = "No such run", body = wire::ErrorEnvelope), (status = 409, description = "It already ended", body = wire::ErrorEnvelope)))]
pub(super) async fn cancel(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let run = followed(&app, &headers, &id).await?;
    if !app.host.cancel_run(&id).await {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("run '{id}' already ended ({})", run.status.as_str()),
        ));
    }
    Ok(Json(
        json!({"status": "cancelled", "run_id": id, "runId": id}),
    ))
}

/// `GET /workflows/{name}` upgraded to a WebSocket: the client sends `{"payload": …}`,
/// the server sends the run's events, then `{"type": "result", …}`, and closes.
#[utoipa::path(get, path = "/workflows/{name}", operation_id = "connect_workflow", params(("name" = String, Path, description = "The workflow")), responses((status = 101, description = "WebSocket: send {\"payload\": …}, receive each event, then {\"type\": \"result\"}"), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "A tenant's key", body = wire::ErrorEnvelope), (status = 405, description = "GET without an upgrade", body = wire::ErrorEnvelope)))]
pub(super) async fn connect(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Ok(upgrade) = upgrade else {
        return Err(
            ApiError::method_not_allowed(&["POST"]).dev("GET is only for WebSocket upgrades")
        );
    };
    let caller = app
        .auth
        .caller(&headers, query.get("token").map(String::as_str))?;
    caller.operator()?;
    let scope = caller.scope();
    let open = app.sockets.clone();
    Ok(upgrade.on_upgrade(move |mut socket| async move {
        run_over_socket(&app, &name, scope, &mut socket).await;
        let _ = socket.send(Message::Close(None)).await;
        drop(open);
    }))
}

async fn run_over_socket(app: &App, name: &str, scope: Scope, socket: &mut WebSocket) {
    let Some(Ok(Message::Text(text))) = socket.recv().await else {
        return;
    };
    let send = async |socket: &mut WebSocket, value: Value| {
        socket
            .send(Message::Text(value.to_string().into()))
            .await
            .is_ok()
    };
    let payload = match serde_json::from_str::<Value>(text.as_str()) {
        Ok(body) => payload_of(body),
        Err(e) => {
            let error = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the message is not valid JSON",
            )
            .dev(e.to_string());
            send(socket, json!({"type": "error", "error": error.body.error})).await;
            return;
        }
    };
    let run = match app.host.run_workflow(name, &payload, scope).await {
        Ok(run) => run,
        Err(e) => {
            send(
                socket,
                json!({"type": "error", "error": ApiError::from(e).body.error}),
            )
            .await;
            return;
        }
    };
    let run_id = run.id.clone();
    let mut events = std::pin::pin!(app.host.follow_run(&run_id, None));
    while let Some(Ok(event)) = events.next().await {
        if !send(socket, event_json(&run_id, &event)).await {
            return;
        }
    }
    let last = match run.result().await {
        Ok(result) => {
            json!({"type": "result", "run_id": run_id, "runId": run_id, "result": parse_json(&result)})
        }
        Err(error) => json!({"type": "error", "run_id": run_id, "runId": run_id,
                              "error": {"type": "workflow_error", "message": error, "details": ""}}),
    };
    send(socket, last).await;
}

/// The run, or a 404.
/// The run, if the caller may follow it (the key that started it, a key that reaches
/// every agent and id, or an admin key); otherwise `404`, as if it did not exist.
async fn followed(app: &App, headers: &HeaderMap, id: &str) -> Result<RunRecord, ApiError> {
    let caller = app.auth.caller(headers, None)?;
    caller.operator()?;
    let not_found = || ApiError::not_found(format!("no run '{id}'"));
    let run = app.host.run(id).await?.ok_or_else(not_found)?;
    match caller.follows(run.started_by.as_deref()) {
        true => Ok(run),
        false => Err(not_found()),
    }
}

/// `GET /runs/{id}`: the run record.
#[utoipa::path(get, path = "/runs/{id}", params(("id" = String, Path, description = "The run id")), responses((status = 200, description = "The run", body = wire::RunRecord), (status = 404, description = "No such run", body = wire::ErrorEnvelope)))]
pub(super) async fn record(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(record_json(&followed(&app, &headers, &id).await?)))
}

/// `GET /runs/{id}/events?after=N&limit=M&types=a,b`: a page of the run's events
/// (numbered from 1, so `after=0` is all), only those of the listed types if given;
/// `next_after` is where the next page starts, whatever the filter left out.
#[utoipa::path(get, path = "/runs/{id}/events", params(("id" = String, Path, description = "The run id"), ("after" = Option<u64>, Query, description = "Events after this index (0: all)"), ("limit" = Option<u64>, Query, description = "At most this many (1–1000)"), ("types" = Option<String>, Query, description = "Only these event types, comma-separated")), responses((status = 200, description = "A page of events", body = wire::RunEvents), (status = 400, description = "A bad number", body = wire::ErrorEnvelope), (status = 404, description = "No such run", body = wire::ErrorEnvelope)))]
pub(super) async fn events(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    followed(&app, &headers, &id).await?;
    let (after, limit) = (
        request::query_number(&query, "after")?,
        request::query_number(&query, "limit")?
            .unwrap_or(MAX_PAGE)
            .clamp(1, MAX_PAGE),
    );
    let types: Option<Vec<&str>> = query
        .get("types")
        .map(|t| t.split(',').map(str::trim).collect());
    let page = app.host.run_events(&id, after, limit).await?;
    let next = page.last().map(|e| e.index).or(after).unwrap_or(0);
    let wanted = |e: &&RunEvent| types.as_ref().is_none_or(|t| t.contains(&e.kind.as_str()));
    let events: Vec<Value> = page
        .iter()
        .filter(wanted)
        .map(|e| event_json(&id, e))
        .collect();
    Ok(Json(
        json!({"run_id": id, "runId": id, "events": events, "next_after": next, "nextAfter": next}),
    ))
}

/// A run record in PyFlue's shape (times as epoch seconds and as ISO 8601).
pub(super) fn record_json(r: &RunRecord) -> Value {
    let failed = r.status == RunStatus::Failed;
    json!({
        "run_id": r.id, "runId": r.id,
        "agent": r.workflow, "agentName": r.workflow,
        "agent_id": r.id, "instanceId": r.id,
        "started_at": seconds(r.started_at_ms), "startedAt": iso8601(r.started_at_ms),
        "ended_at": r.ended_at_ms.map(seconds), "endedAt": r.ended_at_ms.map(iso8601),
        "durationMs": r.ended_at_ms.map(|t| t - r.started_at_ms),
        "status": r.status.as_str(),
        "is_error": failed, "isError": failed,
        "error": r.error,
        "result": r.result.as_deref().map(parse_json),
        "event_count": r.event_count,
    })
}

fn event_json(run: &str, e: &RunEvent) -> Value {
    json!({
        "run_id": run, "runId": run,
        "event_index": e.index, "eventIndex": e.index,
        "type": e.kind,
        "timestamp": seconds(e.at_ms),
        "data": parse_json(&e.data),
    })
}

/// Milliseconds since the epoch as seconds, with the milliseconds as a fraction
/// (PyFlue's `started_at`, `timestamp`).
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}
