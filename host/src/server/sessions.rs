//! An instance's sessions: `GET /agents/{name}/{id}/sessions` lists those that hold
//! messages, `GET …/sessions/{session}` returns one's history, `DELETE …/sessions/{session}`
//! resets it (its next prompt starts a new conversation). The same keys and the agent's
//! `authorize` decide as for prompting the instance.

use axum::extract::State;

use super::request::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Json;
use serde_json::{Value, json};

use super::error::ApiError;
use super::wire;
use super::{App, admit};

/// `GET /agents/{name}/{id}/sessions`: `{"agent", "instanceId", "sessions": [names]}`.
#[utoipa::path(get, path = "/agents/{name}/{id}/sessions", operation_id = "list_sessions", params(("name" = String, Path, description = "The agent"), ("id" = String, Path, description = "The instance id")), responses((status = 200, description = "The sessions that hold messages", body = wire::SessionList), (status = 400, description = "Bad request", body = wire::ErrorEnvelope), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "Outside the key's scope", body = wire::ErrorEnvelope), (status = 404, description = "No such agent or instance", body = wire::ErrorEnvelope)))]
pub(super) async fn list(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let agent = admit(&app, &headers, None, &name, &id).await?;
    let sessions = app.host.init_agent(&agent, &id).await?.sessions().await?;
    Ok(Json(
        json!({"agent": name, "instanceId": id, "sessions": sessions}),
    ))
}

/// `GET /agents/{name}/{id}/sessions/{session}`: `{"session", "messages": [...]}`, the
/// stored messages oldest first (an unknown session has none).
#[utoipa::path(get, path = "/agents/{name}/{id}/sessions/{session}", params(("name" = String, Path, description = "The agent"), ("id" = String, Path, description = "The instance id"), ("session" = String, Path, description = "The session")), responses((status = 200, description = "Its stored messages", body = wire::History), (status = 400, description = "Bad request", body = wire::ErrorEnvelope), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "Outside the key's scope", body = wire::ErrorEnvelope), (status = 404, description = "No such agent or instance", body = wire::ErrorEnvelope)))]
pub(super) async fn history(
    State(app): State<App>,
    Path((name, id, session)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let agent = admit(&app, &headers, None, &name, &id).await?;
    let harness = app.host.init_agent(&agent, &id).await?;
    let messages = harness.session(&session).history().await?;
    Ok(Json(json!({"session": session, "messages": messages})))
}

/// `DELETE /agents/{name}/{id}/sessions/{session}`: `204` once its messages are gone.
#[utoipa::path(delete, path = "/agents/{name}/{id}/sessions/{session}", params(("name" = String, Path, description = "The agent"), ("id" = String, Path, description = "The instance id"), ("session" = String, Path, description = "The session")), responses((status = 204, description = "Its messages are gone"), (status = 400, description = "Bad request", body = wire::ErrorEnvelope), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "Outside the key's scope", body = wire::ErrorEnvelope), (status = 404, description = "No such agent or instance", body = wire::ErrorEnvelope)))]
pub(super) async fn reset(
    State(app): State<App>,
    Path((name, id, session)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let agent = admit(&app, &headers, None, &name, &id).await?;
    let harness = app.host.init_agent(&agent, &id).await?;
    harness.session(&session).reset().await?;
    Ok(StatusCode::NO_CONTENT)
}
