//! The HTTP, SSE and WebSocket surface (PyFlue's agent-server protocol). It only
//! translates requests into library calls and results into wire shapes.

mod admin;
mod admin_reads;
pub mod auth;
mod dispatch;
mod error;
mod events;
mod metrics;
pub mod openapi;
mod request;
mod runs;
mod sessions;
mod stream;
#[cfg(test)]
mod tests;
mod wire;
mod ws;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{MethodRouter, get, post};
use axum::serve::ListenerExt;
use request::Path;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::Host;
use auth::Auth;
use error::ApiError;
pub use error::status_of;

/// The framework name reported by `/health`.
pub const FRAMEWORK: &str = "flue-wasm";

/// Default largest request body, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// What the router needs besides the host.
#[derive(Clone)]
struct App {
    host: Host,
    auth: Arc<Auth>,
    body_limit: usize,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<metrics::Metrics>,
    /// Held by every open WebSocket; the server waits for all of them to close.
    sockets: mpsc::Sender<()>,
}

impl App {
    /// The router's state for `host`: `shutdown` turns true when the server stops;
    /// every open WebSocket holds a clone of `sockets`.
    fn new(
        host: Host,
        options: ServerOptions,
        shutdown: watch::Receiver<bool>,
        sockets: mpsc::Sender<()>,
    ) -> Self {
        Self {
            metrics: Arc::new(metrics::Metrics::new(&host)),
            host,
            auth: Arc::new(options.auth),
            body_limit: options.body_limit,
            shutdown,
            sockets,
        }
    }
}

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Who may reach which instance.
    pub auth: Auth,
    /// Largest request body, in bytes.
    pub body_limit: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            auth: Auth::default(),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// Serves `host` on `listener` until `shutdown` resolves; then stops accepting, lets
/// prompts in flight finish and closes WebSockets cleanly.
pub async fn serve(
    host: Host,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    host.start_dispatcher();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (sockets, mut all_closed) = mpsc::channel(1);
    let app = App::new(host, options, stop_rx, sockets);
    // Answers and stream events are small writes: send each at once.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a connection: {e}");
        }
    });
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await?;
    // Upgraded connections outlive the HTTP server: wait until each socket has
    // answered its prompt in flight and closed.
    let _ = all_closed.recv().await;
    Ok(())
}

fn router(app: App) -> Router {
    Router::new()
        .route("/health", only_get(get(health)))
        .route("/agents", only_get(get(list_agents)))
        .route(
            "/agents/{name}/{id}",
            post(prompt)
                .get(connect)
                .fallback(|| async { ApiError::method_not_allowed(&["GET", "POST"]) }),
        )
        .route(
            "/agents/{name}/{id}/dispatch",
            post(dispatch::accept).fallback(|| async { ApiError::method_not_allowed(&["POST"]) }),
        )
        .route(
            "/agents/{name}/{id}/sessions",
            only_get(get(sessions::list)),
        )
        .route(
            "/agents/{name}/{id}/sessions/{session}",
            get(sessions::history)
                .delete(sessions::reset)
                .fallback(|| async { ApiError::method_not_allowed(&["GET", "DELETE"]) }),
        )
        .route("/dispatches", only_get(get(dispatch::list)))
        .route("/dispatches/{id}", only_get(get(dispatch::status)))
        .route(
            "/dispatches/{id}/retry",
            post(dispatch::retry).fallback(|| async { ApiError::method_not_allowed(&["POST"]) }),
        )
        .route("/workflows", only_get(get(runs::list_workflows)))
        .route(
            "/workflows/{name}",
            post(runs::start)
                .get(runs::connect)
                .fallback(|| async { ApiError::method_not_allowed(&["GET", "POST"]) }),
        )
        .route("/runs/{id}", only_get(get(runs::record)))
        .route("/runs/{id}/events", only_get(get(runs::events)))
        .route("/runs/{id}/stream", only_get(get(runs::stream)))
        .route(
            "/runs/{id}/cancel",
            post(runs::cancel).fallback(|| async { ApiError::method_not_allowed(&["POST"]) }),
        )
        .route(
            "/admin/tenants/{tenant}/agents/{name}",
            axum::routing::put(admin::install)
                .delete(admin::uninstall)
                .fallback(|| async { ApiError::method_not_allowed(&["PUT", "DELETE"]) }),
        )
        .route("/admin/agents", only_get(get(admin_reads::agents)))
        .route(
            "/admin/agents/{name}/instances",
            only_get(get(admin_reads::instances)),
        )
        .route(
            "/admin/agents/{name}/instances/{id}/runs",
            only_get(get(admin_reads::instance_runs)),
        )
        .route("/admin/runs", only_get(get(admin_reads::runs)))
        .route("/admin/runs/{id}", only_get(get(admin_reads::run)))
        .route("/metrics", only_get(get(metrics_text)))
        .route("/openapi.json", only_get(get(openapi_document)))
        .fallback(unknown_route)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .with_state(app)
}

fn only_get(route: MethodRouter<App>) -> MethodRouter<App> {
    route.fallback(|| async { ApiError::method_not_allowed(&["GET"]) })
}

#[utoipa::path(get, path = "/health", security(()), responses((status = 200, description = "The server is up", body = wire::Health)))]
async fn health() -> Json<wire::Health> {
    Json(wire::Health {
        ok: true,
        framework: FRAMEWORK.into(),
    })
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "A tenant's key", body = wire::ErrorEnvelope)))]
async fn metrics_text(State(app): State<App>, headers: HeaderMap) -> Result<String, ApiError> {
    app.auth.caller(&headers, None)?.operator()?;
    Ok(app.metrics.render())
}

/// `GET /openapi.json`: like every route but `/health`, for callers with a key.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "This document", body = Object), (status = 401, description = "No valid key", body = wire::ErrorEnvelope)))]
async fn openapi_document(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    app.auth.caller(&headers, None)?;
    Ok(Json(openapi::document()))
}

#[utoipa::path(get, path = "/agents", responses((status = 200, description = "The agents the caller may use", body = wire::AgentList), (status = 401, description = "No valid key", body = wire::ErrorEnvelope)))]
async fn list_agents(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<wire::AgentList>, ApiError> {
    let caller = app.auth.caller(&headers, None)?;
    let agents: Vec<_> = app
        .host
        .agents()
        .into_iter()
        .filter_map(|a| {
            let name = caller.sees(&a.name)?;
            // The file as the caller's namespace holds it, never a path on the server.
            let path = format!("{name}.wasm");
            Some(wire::AgentEntry {
                name,
                path,
                triggers: json!({}),
            })
        })
        .collect();
    Ok(Json(wire::AgentList { agents }))
}

/// `POST /agents/{name}/{id}`: a JSON result, or SSE with `Accept: text/event-stream`.
#[utoipa::path(post, path = "/agents/{name}/{id}", params(("name" = String, Path, description = "The agent"), ("id" = String, Path, description = "The instance id")), request_body = wire::PromptBody, responses((status = 200, description = "The result; with `Accept: text/event-stream`, SSE events `start`, `delta`, `tool_start`, `tool_end`, `task_start`, `task_end`, `compaction`, then `end` or `error`", body = wire::ResultEnvelope), (status = 400, description = "Bad request", body = wire::ErrorEnvelope), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "Outside the key's scope", body = wire::ErrorEnvelope), (status = 404, description = "No such agent or instance", body = wire::ErrorEnvelope), (status = 413, description = "Body over 1 MiB", body = wire::ErrorEnvelope), (status = 415, description = "Not JSON", body = wire::ErrorEnvelope), (status = 422, description = "A limit was passed", body = wire::ErrorEnvelope), (status = 429, description = "A rate or budget, or the model provider rate-limits this host; see Retry-After", body = wire::ErrorEnvelope), (status = 500, description = "The agent failed", body = wire::ErrorEnvelope), (status = 502, description = "The model provider refused the request or sent what cannot be read", body = wire::ErrorEnvelope), (status = 503, description = "The model provider stayed busy through the retries; see Retry-After", body = wire::ErrorEnvelope)))]
async fn prompt(
    State(app): State<App>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (name, id) = instance_path(path)?;
    let agent = admit(&app, &headers, None, &name, &id).await?;
    let body = read_body(&app, body).await?;
    let request = request::from_http(&headers, &body)?;
    let session = request.session_on(app.host.init_agent(&agent, &id).await?);
    if request::wants_sse(&headers) {
        return Ok(stream::respond(session, request.message));
    }
    let result = session.prompt(&request.message).await?;
    let result = wire::ResultEnvelope {
        result: result.to_wire(),
    };
    Ok(Json(result).into_response())
}

/// Lets a caller reach instance `id` of agent `name` (as the URL names it) if its key
/// may, and then the agent, if it decides (its `authorize` export); returns the agent's
/// name on the host. Every route that prompts an instance or connects to it asks here.
async fn admit(
    app: &App,
    headers: &HeaderMap,
    token: Option<&str>,
    name: &str,
    id: &str,
) -> Result<String, ApiError> {
    let (caller, agent) = app.auth.authorize(headers, token, name, id)?;
    if !app.host.authorize(&agent, id, &caller.identity()).await? {
        return Err(auth::forbidden(format!(
            "agent '{name}' does not let this caller reach instance '{id}'"
        )));
    }
    Ok(agent)
}

/// The request body, up to the configured limit.
async fn read_body(app: &App, body: Body) -> Result<axum::body::Bytes, ApiError> {
    to_bytes(body, app.body_limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {} bytes", app.body_limit),
        )
    })
}

/// `GET /agents/{name}/{id}` with a WebSocket upgrade.
#[utoipa::path(get, path = "/agents/{name}/{id}", operation_id = "connect_agent", params(("name" = String, Path, description = "The agent"), ("id" = String, Path, description = "The instance id")), responses((status = 101, description = "WebSocket: send {\"type\": \"prompt\", \"message\", \"session\"?, \"model\"?}, receive {\"type\": \"result\", \"result\"} or {\"type\": \"error\", \"error\"}"), (status = 400, description = "Bad request", body = wire::ErrorEnvelope), (status = 401, description = "No valid key", body = wire::ErrorEnvelope), (status = 403, description = "Outside the key's scope", body = wire::ErrorEnvelope), (status = 404, description = "No such agent or instance", body = wire::ErrorEnvelope), (status = 405, description = "GET without an upgrade", body = wire::ErrorEnvelope)))]
async fn connect(
    State(app): State<App>,
    path: Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let (name, id) = instance_path(path)?;
    let Ok(upgrade) = upgrade else {
        return Err(
            ApiError::method_not_allowed(&["POST"]).dev("GET is only for WebSocket upgrades")
        );
    };
    let token = query.get("token").map(String::as_str);
    let agent = admit(&app, &headers, token, &name, &id).await?;
    let harness = app.host.init_agent(&agent, &id).await?;
    let (shutdown, open) = (app.shutdown.clone(), app.sockets.clone());
    Ok(upgrade.on_upgrade(move |socket| async move {
        ws::serve(socket, harness, shutdown).await;
        drop(open);
    }))
}

/// Routes that match nothing; `/agents/{name}/` (an empty id) is a bad request.
async fn unknown_route(uri: Uri) -> ApiError {
    let path = uri.path();
    if path.starts_with("/agents/") && path.split('/').skip(2).any(str::is_empty) {
        return empty_segment();
    }
    ApiError::not_found(format!("no route {path}"))
}

fn empty_segment() -> ApiError {
    ApiError::invalid_request("the path has an empty segment: use /agents/{name}/{id}")
}

/// An agent name and an instance id from the path; neither may be empty.
fn instance_path(Path((name, id)): Path<(String, String)>) -> Result<(String, String), ApiError> {
    if name.is_empty() || id.is_empty() {
        return Err(empty_segment());
    }
    Ok((name, id))
}
