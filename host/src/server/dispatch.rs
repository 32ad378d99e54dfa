//! `POST /agents/{name}/{id}/dispatch` (answered once the event is durably stored) and
//! `GET /dispatches/{id}` (how its delivery went).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::error::ApiError;
use super::{App, admit, instance_path, read_body, request};
use crate::{DEFAULT_SESSION, DispatchRecord};

/// The header a client may set so a retried dispatch is accepted only once.
const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// `POST /agents/{name}/{id}/dispatch` with `{"session"?, "input", "idempotency_key"?}`.
pub async fn accept(
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
pub async fn status(
    State(app): State<App>,
    Path(dispatch): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::not_found(format!("no dispatch '{dispatch}'"));
    let record = app
        .host
        .dispatch_status(&dispatch)
        .await?
        .ok_or_else(not_found)?;
    let instance = &record.session.instance;
    let caller = app.auth.caller(&headers, None)?;
    caller
        .check(&instance.agent, &instance.id)
        .map_err(|_| not_found())?;
    let agent = caller.local(&instance.agent).ok_or_else(not_found)?;
    Ok(Json(record_json(&record, agent)))
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
    })
}

/// Milliseconds since the Unix epoch as an ISO 8601 UTC time, `2026-11-24T09:04:00.123Z`.
pub fn iso8601(ms: i64) -> String {
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
