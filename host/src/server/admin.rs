//! The management API (admin keys only): `PUT /admin/tenants/{tenant}/agents/{name}`
//! with a component's bytes installs or replaces a tenant's agent once it is checked;
//! `DELETE` on the same path removes it.

use axum::body::{Body, to_bytes};
use axum::extract::State;

use super::request::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use futures_util::StreamExt;
use serde_json::json;

use super::App;
use super::error::ApiError;
use super::wire;

/// The largest component the API accepts.
pub(super) const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// `PUT /admin/tenants/{tenant}/agents/{name}`: `201` for a new agent, `200` for a
/// replaced one, `400` (nothing changed) for bytes that are not an agent component.
#[utoipa::path(put, path = "/admin/tenants/{tenant}/agents/{name}", params(("tenant" = String, Path, description = "The tenant"), ("name" = String, Path, description = "The agent")), request_body(content = Vec<u8>, content_type = "application/wasm", description = "The component"), responses((status = 201, description = "Installed", body = wire::Installed), (status = 200, description = "Replaced", body = wire::Installed), (status = 400, description = "Not an agent component", body = wire::ErrorEnvelope), (status = 403, description = "Not an admin key", body = wire::ErrorEnvelope), (status = 404, description = "No such tenant", body = wire::ErrorEnvelope), (status = 413, description = "Over 64 MiB", body = wire::ErrorEnvelope)))]
pub(super) async fn install(
    State(app): State<App>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Err(refused) = app.auth.caller(&headers, None).and_then(|c| c.admin()) {
        // Read what the client is sending, so that it receives the answer rather than
        // a connection reset in the middle of its upload.
        let mut rest = body.into_data_stream();
        let mut read = 0;
        while let Some(Ok(chunk)) = rest.next().await {
            read += chunk.len();
            if read > MAX_COMPONENT_BYTES {
                break;
            }
        }
        return Err(refused);
    }
    let bytes = to_bytes(body, MAX_COMPONENT_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("a component may be at most {MAX_COMPONENT_BYTES} bytes"),
        )
    })?;
    let replaced = app
        .host
        .install_agent(&tenant, &name, bytes.to_vec())
        .await?;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = json!({"tenant": tenant, "agent": name, "replaced": replaced});
    Ok((status, Json(body)).into_response())
}

/// `DELETE /admin/tenants/{tenant}/agents/{name}`: `204`, or `404` if there is none.
#[utoipa::path(delete, path = "/admin/tenants/{tenant}/agents/{name}", params(("tenant" = String, Path, description = "The tenant"), ("name" = String, Path, description = "The agent")), responses((status = 204, description = "Removed"), (status = 403, description = "Not an admin key", body = wire::ErrorEnvelope), (status = 404, description = "No such agent", body = wire::ErrorEnvelope)))]
pub(super) async fn uninstall(
    State(app): State<App>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    app.auth.caller(&headers, None)?.admin()?;
    if app.host.uninstall_agent(&tenant, &name)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "tenant '{tenant}' has no agent '{name}'"
        )))
    }
}
