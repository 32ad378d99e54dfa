//! `POST /agents/{name}/{id}/dispatch` (answered once the event is durably stored),
//! `GET /dispatches/{id}` (how its delivery went, and the agent's answer),
//! `GET /dispatches` (a list, e.g. the dead ones) and `POST /dispatches/{id}/retry`.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};

use super::request::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use super::wire;
use super::{App, admit, instance_path, read_body, request};
use crate::{DEFAULT_SESSION, DispatchFilter, DispatchRecord, DispatchStatus};

/// The header a client may set so a retried dispatch is accepted only once.
const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// `POST /agents/{name}/{id}/dispatch` with `{"session"?, "input", "idempotency_key"?}`.
#[utoipa::path(post, path = "/agents/{name}/{id}/dispatch", params(("name" = String, Path, description = "The agent"), ("id" = String, Path, description = "The instance id"), ("Idempotency-Key" = Option<String>, Header, description = "A repeat returns the first receipt; another event under the same key is 409")), request_body = wire::DispatchBody, responses((status = 202, description = "Durably stored", body = wire::DispatchReceipt), (status = 400, description = "Bad request", body = wire::ErrorEnvelope), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "Outside the key's scope", body = wire::ErrorEnvelope), (status = 404, description = "No such agent or instance", body = wire::ErrorEnvelope), (status = 409, description = "The idempotency key was used for another event", body = wire::ErrorEnvelope)))]
pub(super) async fn accept(
    State(app): State<App>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (name, id) = instance_path(path)?;
    let agent = admit(&app, &headers, None, &name, &id).await?;
    let body = read_body(&app, body).await?;
    let value = request::json_body(&headers, &body)?;
    let fields = value
        .as_object()
        .ok_or_else(|| ApiError::invalid_request("the body must be a JSON object"))?;
    let input = fields
        .get("input")
        .ok_or_else(|| ApiError::invalid_request("the body needs an \"input\" (any JSON value)"))?;
    let session = match fields.get("session") {
        None | Some(Value::Null) => DEFAULT_SESSION,
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(_) => {
            return Err(ApiError::invalid_request(
                "\"session\" must be a non-empty string",
            ));
        }
    };
    let key =
        match (
            headers.get(IDEMPOTENCY_HEADER),
            fields.get("idempotency_key"),
        ) {
            (Some(header), _) => Some(header.to_str().map_err(|_| {
                ApiError::invalid_request("the Idempotency-Key header is not text")
            })?),
            (None, None | Some(Value::Null)) => None,
            (None, Some(Value::String(k))) => Some(k.as_str()),
            (None, Some(_)) => {
                return Err(ApiError::invalid_request(
                    "\"idempotency_key\" must be a string",
                ));
            }
        };
    let receipt = app.host.dispatch(&agent, &id, session, input, key).await?;
    let accepted_at = iso8601(receipt.accepted_at_ms);
    let body = json!({
        "status": "accepted",
        "dispatch_id": receipt.id, "dispatchId": receipt.id,
        "accepted_at": accepted_at, "acceptedAt": accepted_at,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /dispatches/{id}`: the event's status, attempts and last error. A key that may
/// not reach the event's instance is told it does not exist.
#[utoipa::path(get, path = "/dispatches/{id}", params(("id" = String, Path, description = "The dispatch id")), responses((status = 200, description = "The event and its delivery", body = wire::DispatchRecord), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 404, description = "No such dispatch for this key", body = wire::ErrorEnvelope)))]
pub(super) async fn status(
    State(app): State<App>,
    Path(dispatch): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (record, agent) = reachable(&app, &headers, &dispatch).await?;
    Ok(Json(record_json(&record, &agent)))
}

/// The event `id` and its agent's name as the caller knows it, if the caller's key may
/// reach the event's instance; otherwise `404`, as if it did not exist.
async fn reachable(
    app: &App,
    headers: &HeaderMap,
    id: &str,
) -> Result<(DispatchRecord, String), ApiError> {
    let not_found = || ApiError::not_found(format!("no dispatch '{id}'"));
    let caller = app.auth.caller(headers, None)?;
    let record = app.host.dispatch_status(id).await?.ok_or_else(not_found)?;
    let agent = admitted(app, &caller, &record)
        .await?
        .ok_or_else(not_found)?;
    Ok((record, agent))
}

/// The agent's name as the caller knows it, if its key and the agent's `authorize`
/// let the caller reach the record's instance.
async fn admitted(
    app: &App,
    caller: &Caller<'_>,
    record: &DispatchRecord,
) -> Result<Option<String>, ApiError> {
    let instance = &record.session.instance;
    let Some(agent) = caller.local(&instance.agent) else {
        return Ok(None);
    };
    if caller.check(&instance.agent, &instance.id).is_err() {
        return Ok(None);
    }
    let identity = caller.identity();
    let lets_in = app
        .host
        .authorize(&instance.agent, &instance.id, &identity)
        .await?;
    Ok(lets_in.then(|| agent.to_string()))
}

/// `GET /dispatches?status=dead&agent=&limit=&offset=`: `{"dispatches": [record],
/// "next_offset"}`, oldest first, only events the caller may reach; `offset` counts
/// stored events (pass `next_offset` for the next page).
#[utoipa::path(get, path = "/dispatches", operation_id = "list_dispatches", params(("status" = Option<String>, Query, description = "`queued`, `running`, `done` or `dead`"), ("agent" = Option<String>, Query, description = "Only this agent's events"), ("limit" = Option<u64>, Query, description = "At most this many (1–1000, default 100)"), ("offset" = Option<u64>, Query, description = "Skip this many")), responses((status = 200, description = "The events", body = wire::DispatchList), (status = 400, description = "A bad status or number", body = wire::ErrorEnvelope), (status = 401, description = "No valid key", body = wire::ErrorEnvelope)))]
pub(super) async fn list(
    State(app): State<App>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = app.auth.caller(&headers, None)?;
    let status = match query.get("status") {
        None => None,
        Some(s) => Some(DispatchStatus::parse(s).map_err(|_| {
            ApiError::invalid_request("\"status\" is one of queued, running, done, dead")
        })?),
    };
    let filter = DispatchFilter {
        status,
        agent: query.get("agent").map(|a| caller.qualify(a)).transpose()?,
        limit: request::query_number(&query, "limit")?
            .unwrap_or(100)
            .clamp(1, 1000),
        offset: request::query_number(&query, "offset")?.unwrap_or(0),
    };
    // The key's checks run on stored pages until one full page passes them (or the
    // store runs out); `next_offset` is where the next page of stored events starts.
    let mut dispatches = Vec::new();
    let mut offset = filter.offset;
    'pages: loop {
        let page = DispatchFilter {
            offset,
            ..filter.clone()
        };
        let records = app.host.list_dispatches(&page).await?;
        let fetched = records.len() as u64;
        for record in records {
            offset += 1;
            if let Some(agent) = admitted(&app, &caller, &record).await? {
                dispatches.push(record_json(&record, &agent));
                if dispatches.len() as u64 == filter.limit {
                    break 'pages;
                }
            }
        }
        if fetched < filter.limit {
            break;
        }
    }
    Ok(Json(
        json!({ "dispatches": dispatches, "next_offset": offset }),
    ))
}

/// `POST /dispatches/{id}/retry`: queues a dead event again, for one more attempt.
#[utoipa::path(post, path = "/dispatches/{id}/retry", params(("id" = String, Path, description = "The dispatch id")), responses((status = 200, description = "Queued again", body = wire::DispatchRecord), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 404, description = "No such dispatch for this key", body = wire::ErrorEnvelope), (status = 409, description = "It is not dead", body = wire::ErrorEnvelope)))]
pub(super) async fn retry(
    State(app): State<App>,
    Path(dispatch): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (record, agent) = reachable(&app, &headers, &dispatch).await?;
    if !app.host.retry_dispatch(&dispatch).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "dispatch '{dispatch}' is {}, not dead: only dead events are retried",
                record.status.as_str()
            ),
        ));
    }
    let (record, _) = reachable(&app, &headers, &dispatch).await?;
    Ok(Json(record_json(&record, &agent)))
}

/// The wire record of a dispatch; `agent` is the agent's name as the caller knows it.
fn record_json(r: &DispatchRecord, agent: &str) -> Value {
    let instance = &r.session.instance;
    let accepted = iso8601(r.accepted_at_ms);
    let finished = r.finished_at_ms.map(iso8601);
    json!({
        "dispatch_id": r.id, "dispatchId": r.id,
        "agent": agent, "agentName": agent,
        "agent_id": instance.id, "instanceId": instance.id,
        "session": r.session.session,
        "status": r.status.as_str(),
        "attempts": r.attempts,
        "last_error": r.last_error, "lastError": r.last_error,
        "accepted_at": accepted, "acceptedAt": accepted,
        "finished_at": finished, "finishedAt": finished,
        "answer": r.answer,
    })
}

/// Milliseconds since the Unix epoch as an ISO 8601 UTC time, `2026-11-24T09:04:00.123Z`.
pub(super) fn iso8601(ms: i64) -> String {
    let (days, day_ms) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from a day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn times_print_as_iso_8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_795_511_040_123), "2026-11-24T09:04:00.123Z");
    }
}
