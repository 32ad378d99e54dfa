//! The HTTP, SSE and WebSocket surface (PyFlue's agent-server protocol). It only
//! translates requests into library calls and results into wire shapes.

mod admin;
pub mod auth;
mod dispatch;
mod error;
mod events;
mod metrics;
mod openapi;
mod request;
mod runs;
mod stream;
mod ws;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{MethodRouter, get, post};
use axum::serve::ListenerExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::Host;
use auth::Auth;
use error::ApiError;

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
    let app = App {
        host,
        auth: Arc::new(options.auth),
        body_limit: options.body_limit,
        shutdown: stop_rx,
        metrics: Arc::default(),
        sockets,
    };
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
        .route("/dispatches/{id}", only_get(get(dispatch::status)))
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
        .route("/metrics", only_get(get(metrics_text)))
        .route(
            "/openapi.json",
            only_get(get(|| async { Json(openapi::document()) })),
        )
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

async fn health() -> Json<serde_json::Value> {
    Json(json!({"ok": true, "framework": FRAMEWORK}))
}

async fn metrics_text(State(app): State<App>, headers: HeaderMap) -> Result<String, ApiError> {
    app.auth.caller(&headers, None)?.operator()?;
    Ok(app.metrics.render(&app.host))
}

async fn list_agents(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = app.auth.caller(&headers, None)?;
    let agents: Vec<_> = app
        .host
        .agents()
        .into_iter()
        .filter_map(|a| {
            let name = caller.sees(&a.name)?;
            Some(json!({"name": name, "path": a.path.display().to_string(), "triggers": {}}))
        })
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `POST /agents/{name}/{id}`: a JSON result, or SSE with `Accept: text/event-stream`.
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
    let session = app
        .host
        .init_agent(&agent, &id)
        .await?
        .session(&request.session);
    if request::wants_sse(&headers) {
        return Ok(stream::respond(session, request.message));
    }
    let result = session.prompt(&request.message).await?;
    Ok(Json(json!({"result": result.to_wire()})).into_response())
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
