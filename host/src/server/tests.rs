//! The router answered in process, without a socket: routes, methods, bodies and the
//! error envelope, where a port adds nothing. `tests/suite/serve.rs` runs the real
//! `flue serve` for what needs one (prompts, streams, WebSockets, keys, shutdown).

use axum::body::{Body, to_bytes};
use axum::http::{Request, header};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use super::{App, ServerOptions, router};
use crate::{Host, HostOptions};

/// The router of a host with no agents, in a project of its own, and the project.
async fn app() -> (axum::Router, tempfile::TempDir) {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("agents")).unwrap();
    let mut options = HostOptions::for_project(project.path()).unwrap();
    options.data_dir = project.path().join(".flue");
    let host = Host::open(options).await.unwrap();
    let (_, shutdown) = watch::channel(false);
    let (sockets, _) = mpsc::channel(1);
    let app = App::new(host, ServerOptions::default(), shutdown, sockets);
    (router(app), project)
}

/// The status, the headers and the JSON body `request` is answered with.
async fn answer(
    router: &axum::Router,
    request: Request<Body>,
) -> (u16, axum::http::HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status.as_u16(), parts.headers, body)
}

fn request(method: &str, path: &str, content_type: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn every_error_is_an_envelope_with_its_status_and_type() {
    let (router, _project) = app().await;
    let json = Some("application/json");
    let cases = [
        (
            "POST",
            "/agents/nope/1",
            json,
            r#"{"message":"hi"}"#,
            404,
            "agent_not_found",
        ),
        (
            "POST",
            "/agents//1",
            json,
            r#"{"message":"hi"}"#,
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/agents/nope/",
            json,
            r#"{"message":"hi"}"#,
            400,
            "invalid_request",
        ),
        (
            "PUT",
            "/agents/nope/1",
            json,
            r#"{"message":"hi"}"#,
            405,
            "method_not_allowed",
        ),
        ("DELETE", "/health", None, "", 405, "method_not_allowed"),
        ("GET", "/nowhere", None, "", 404, "not_found"),
        ("GET", "/runs/run_nope", None, "", 404, "not_found"),
        ("POST", "/workflows/nope", json, "{}", 404, "not_found"),
        ("GET", "/dispatches/dsp_nope", None, "", 404, "not_found"),
    ];
    for (method, path, content_type, body, status, kind) in cases {
        let (got, _, envelope) = answer(&router, request(method, path, content_type, body)).await;
        let error = &envelope["error"];
        assert_eq!(
            (got, error["type"].as_str()),
            (status, Some(kind)),
            "{method} {path}: {envelope}"
        );
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{envelope}"
        );
        assert_eq!(
            error["details"], "",
            "PyFlue always sends details: {envelope}"
        );
    }

    let (_, _, not_allowed) = answer(&router, request("PUT", "/agents/a/1", None, "")).await;
    assert_eq!(
        not_allowed["error"]["meta"]["allowed"],
        json!(["GET", "POST"])
    );
    let missing = request("POST", "/agents/nope/1", json, r#"{"message":"hi"}"#);
    let (_, _, missing) = answer(&router, missing).await;
    assert!(missing["error"]["dev"].as_str().is_some(), "{missing}");
}

#[tokio::test]
async fn health_agents_and_the_openapi_document_answer_in_their_shapes() {
    let (router, _project) = app().await;
    let (status, _, health) = answer(&router, request("GET", "/health", None, "")).await;
    assert_eq!(
        (status, health),
        (200, json!({"ok": true, "framework": "flue-wasm"}))
    );
    let (status, _, agents) = answer(&router, request("GET", "/agents", None, "")).await;
    assert_eq!((status, agents), (200, json!({"agents": []})));
    let (status, _, openapi) = answer(&router, request("GET", "/openapi.json", None, "")).await;
    assert_eq!(status, 200);
    let envelope = &openapi["components"]["schemas"]["ErrorEnvelope"];
    assert_eq!(envelope["required"], json!(["error"]), "{envelope}");
    assert!(openapi["paths"]["/agents/{name}/{id}"]["post"].is_object());
}
