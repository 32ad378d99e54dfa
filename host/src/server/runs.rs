//! Workflows and runs: `POST /workflows/{name}` (202 with the run id, or the result with
//! `?wait=result`), `GET /runs/{id}` and `GET /runs/{id}/events`.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::dispatch::iso8601;
use super::error::ApiError;
use super::{App, read_body, request};
use crate::{RunEvent, RunRecord, RunStatus};

/// The most events one page of `/runs/{id}/events` holds.
const MAX_PAGE: u64 = 1000;

/// `POST /workflows/{name}`: the body (or its `payload` field) is the payload.
pub async fn start(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    app.auth.authenticate(&headers, None)?;
    let body = read_body(&app, body).await?;
    let payload = match request::json_body(&headers, &body)? {
        Value::Object(mut fields) if fields.contains_key("payload") => {
            fields.remove("payload").unwrap_or_default()
        }
        other => other,
    };
    let run = app.host.run_workflow(&name, &payload).await?;
    let run_id = run.id.clone();
    let mut response = if query.get("wait").map(String::as_str) == Some("result") {
        match run.result().await {
            Ok(result) => Json(json!({"status": "completed", "run_id": run_id, "runId": run_id, "result": parse(&result)}))
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

/// `GET /runs/{id}`: the run record.
pub async fn record(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.auth.authenticate(&headers, None)?;
    let run = app
        .host
        .run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run '{id}'")))?;
    Ok(Json(record_json(&run)))
}

/// `GET /runs/{id}/events?after=N&limit=M`: a page of the run's events.
pub async fn events(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.auth.authenticate(&headers, None)?;
    let number = |key: &str| -> Result<Option<u64>, ApiError> {
        query
            .get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::invalid_request(format!("\"{key}\" must be a whole number"))
                })
            })
            .transpose()
    };
    let (after, limit) = (
        number("after")?,
        number("limit")?.unwrap_or(100).clamp(1, MAX_PAGE),
    );
    if app.host.run(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no run '{id}'")));
    }
    let page = app.host.run_events(&id, after, limit).await?;
    let next = page.last().map(|e| e.index).or(after);
    let events: Vec<Value> = page.iter().map(|e| event_json(&id, e)).collect();
    Ok(Json(
        json!({"run_id": id, "runId": id, "events": events, "next_after": next, "nextAfter": next}),
    ))
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn record_json(r: &RunRecord) -> Value {
    let failed = r.status == RunStatus::Failed;
    json!({
        "run_id": r.id, "runId": r.id,
        "agent": r.workflow, "agentName": r.workflow,
        "agent_id": r.id, "instanceId": r.id,
        "started_at": r.started_at_ms / 1000, "startedAt": iso8601(r.started_at_ms),
        "ended_at": r.ended_at_ms.map(|t| t / 1000), "endedAt": r.ended_at_ms.map(iso8601),
        "durationMs": r.ended_at_ms.map(|t| t - r.started_at_ms),
        "status": r.status.as_str(),
        "is_error": failed, "isError": failed,
        "error": r.error,
        "result": r.result.as_deref().map(parse),
        "event_count": r.event_count,
    })
}

fn event_json(run: &str, e: &RunEvent) -> Value {
    json!({
        "run_id": run, "runId": run,
        "event_index": e.index, "eventIndex": e.index,
        "type": e.kind,
        "timestamp": iso8601(e.at_ms),
        "data": parse(&e.data),
    })
}
