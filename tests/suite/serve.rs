//! `flue serve` as a real process on loopback, exercised through the client crate and
//! raw HTTP: prompts, the error envelopes a loaded agent gives, sessions, WebSocket and
//! API keys. Errors that need no agent are answered by the router in process
//! (`host/src/server/tests.rs`).

use std::time::Duration;

use flue_client::{Client, ClientError, StreamEvent};
use flue_tests::{FakeProvider, Project, Reply, Server, Turn, ticket_script};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The ticket script, except that a message naming a failure makes the model fail or
/// call a tool that traps, and "slow" answers after a pause.
fn script(turn: &Turn) -> Reply {
    match turn.last_user_text.as_deref() {
        Some("provider down") => Reply::Error {
            status: 503,
            message: "provider down".into(),
        },
        Some("slow") => Reply::Delayed(
            Duration::from_millis(1500),
            Box::new(Reply::Text("finally".into())),
        ),
        Some(text) if text.starts_with("count") => {
            Reply::Text(format!("seen {} messages", turn.messages))
        }
        Some(text) if text.starts_with("call ") && turn.last_tool_result.is_none() => {
            Reply::ToolCall {
                name: text["call ".len()..].to_string(),
                args: json!({}),
            }
        }
        _ => ticket_script(turn),
    }
}

async fn raw(method: &str, url: &str, content_type: Option<&str>, body: &str) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method.parse().unwrap(), url)
        .body(body.to_string());
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The HTTP status a client call ended with.
fn status<T>(r: Result<T, ClientError>) -> u16 {
    match r {
        Err(ClientError::Api { status, .. }) => status,
        Ok(_) => 200,
        Err(e) => panic!("{e}"),
    }
}

/// Method, path, content type, body, expected status and error type.
type ErrorCase = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    u16,
    &'static str,
);

fn error_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn every_route_and_error_envelope() {
    let fake = FakeProvider::start(script).await;
    let project = Project::new();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = Client::new(&server.url);
    let url = |path: &str| format!("{}{path}", server.url);

    let health = client.health().await.unwrap();
    assert!(health.ok);
    let names: Vec<String> = client
        .agents()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["hostile", "support_assistant"]);

    let reply = client
        .agent("support_assistant", "ticket-8472")
        .prompt("Where is my refund?", Some("billing"))
        .await
        .unwrap();
    assert!(
        reply.text.contains("Ticket ticket-8472: open"),
        "{}",
        reply.text
    );
    assert_eq!(reply.model, "anthropic/claude-haiku-4-5");
    assert!(reply.usage.total_tokens > 0);

    let (status, body) = raw(
        "POST",
        &url("/agents/support_assistant/t"),
        Some("application/json"),
        r#"{"payload": {"prompt": "hi", "session": "p"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"]["text"]
            .as_str()
            .unwrap()
            .contains("Ticket t: open")
    );

    let cases: &[ErrorCase] = &[
        (
            "POST",
            "/agents/support_assistant/1",
            Some("text/plain"),
            "hi",
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/agents/support_assistant/1",
            Some("application/json"),
            "{not json",
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/agents/support_assistant/1",
            Some("application/json"),
            "[1,2]",
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/agents/support_assistant/1",
            Some("application/json"),
            r#"{"session":"s"}"#,
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/agents/support_assistant/1",
            Some("application/json"),
            r#"{"message":"provider down"}"#,
            503,
            "model_unavailable",
        ),
    ];
    for (method, path, content_type, body, want_status, want_type) in cases {
        let (status, got) = raw(method, &url(path), *content_type, body).await;
        assert_eq!(
            (status, error_type(&got)),
            (*want_status, *want_type),
            "{method} {path}: {got}"
        );
        assert!(
            got["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{got}"
        );
    }
    let (status, missing) = raw(
        "POST",
        &url("/agents/nope/1"),
        Some("application/json"),
        r#"{"message":"hi"}"#,
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        missing["error"]["dev"]
            .as_str()
            .unwrap()
            .contains("support_assistant"),
        "the loaded agents are listed: {missing}"
    );
    let (_, bad_json) = raw(
        "POST",
        &url("/agents/support_assistant/1"),
        Some("application/json"),
        "{not json",
    )
    .await;
    assert!(bad_json["error"]["dev"].as_str().is_some());

    let huge = json!({"message": "x".repeat(2 << 20)}).to_string();
    let (status, got) = raw(
        "POST",
        &url("/agents/support_assistant/1"),
        Some("application/json"),
        &huge,
    )
    .await;
    assert_eq!((status, error_type(&got)), (413, "payload_too_large"));

    // A guest that traps in a tool gives the model the tool's failure (its instance is
    // replaced); a guest over its CPU limit is an error in the envelope; the server
    // carries on.
    let trapped = client
        .agent("hostile", "h")
        .prompt("call boom", None)
        .await
        .unwrap();
    assert!(
        trapped.text.contains("the tool failed") && trapped.text.contains("boom from the guest"),
        "{trapped:?}"
    );
    let spun = client.agent("hostile", "h").prompt("call spin", None).await;
    assert!(
        matches!(&spun, Err(ClientError::Api { status: 422, kind, error, .. })
            if kind == "limit_exceeded" && error["meta"]["limit"] == "cpu_ms_per_call"),
        "{spun:?}"
    );
    assert!(client.health().await.unwrap().ok);

    let (status, openapi) = raw("GET", &url("/openapi.json"), None, "").await;
    assert_eq!(status, 200);
    assert!(openapi["paths"]["/agents/{name}/{id}"]["post"].is_object());
    assert!(openapi["paths"]["/runs/{id}/events"]["get"].is_object());
    // The document validates against the OpenAPI specification, by the reference
    // validator (openapi-spec-validator, installed by .ci/run).
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), openapi.to_string()).unwrap();
    let validated = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(file.path())
        .output()
        .expect("python3 runs");
    assert!(
        validated.status.success(),
        "the OpenAPI document does not validate: {}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    let metrics = reqwest::get(url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // A metric's value, summed over its labels (agents and tenants).
    let value = |name: &str| -> f64 {
        let lines: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
            .collect();
        assert!(!lines.is_empty(), "{name} in {metrics}");
        lines
            .iter()
            .map(|l| l.split_whitespace().last().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert!(value("flue_prompts_total") >= 3.0);
    assert!(value("flue_prompt_failures_total") >= 1.0);
    assert!(value("flue_guest_traps_total") >= 1.0);
    assert!(value("flue_input_tokens_total") > 0.0);
    assert!(value("flue_live_instances") >= 1.0);
    assert!(
        metrics.contains(
            r#"flue_http_requests_total{method="POST",route="/agents/{name}/{id}",status="404"}"#
        ),
        "{metrics}"
    );
    assert!(value("flue_http_request_duration_seconds_count") >= 10.0);
    assert!(
        metrics.contains(r#"flue_prompts_total{agent="support_assistant",tenant=""}"#),
        "prompts are counted by agent: {metrics}"
    );
}

#[tokio::test]
async fn sse_streams_events_as_they_happen() {
    let fake = FakeProvider::start(script).await;
    let project = Project::new();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = Client::new(&server.url);

    let events: Vec<StreamEvent> = client
        .agent("support_assistant", "ticket-8472")
        .stream("Where is my refund?", Some("billing"))
        .await
        .unwrap()
        .map(|e| e.expect("no stream error"))
        .collect()
        .await;
    assert!(matches!(&events[0], StreamEvent::Start { session } if session == "billing"));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StreamEvent::ToolStart { name, .. } if name == "ticket_status"))
    );
    assert!(events.iter().any(
        |e| matches!(e, StreamEvent::ToolEnd { result, .. } if result.contains("ticket-8472"))
    ));
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let Some(StreamEvent::End(result)) = events.last() else {
        panic!("the stream ends with end: {events:?}")
    };
    assert_eq!(text, result.text);
    assert!(result.text.contains("ticket-8472"));

    // Events leave as they happen: `start` arrives long before a slow model answers.
    let sent = std::time::Instant::now();
    let mut slow = client
        .agent("support_assistant", "t")
        .stream("slow", None)
        .await
        .unwrap();
    assert!(matches!(
        slow.next().await,
        Some(Ok(StreamEvent::Start { .. }))
    ));
    assert!(
        sent.elapsed() < Duration::from_millis(1000),
        "start took {:?}",
        sent.elapsed()
    );
    let rest: Vec<_> = slow.collect().await;
    assert!(matches!(rest.last(), Some(Ok(StreamEvent::End(r))) if r.text == "finally"));
    assert!(sent.elapsed() >= Duration::from_millis(1500));

    // A failure mid-stream is an error event carrying the envelope.
    let mut failing = client
        .agent("support_assistant", "t")
        .stream("provider down", None)
        .await
        .unwrap();
    let mut saw_error = false;
    while let Some(event) = failing.next().await {
        if let Err(ClientError::Api { kind, .. }) = event {
            assert_eq!(kind, "model_unavailable");
            saw_error = true;
        }
    }
    assert!(saw_error);
}

#[tokio::test]
async fn sessions_stay_independent_over_http_and_websocket() {
    let fake = FakeProvider::start(script).await;
    let project = Project::new();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = Client::new(&server.url);
    let agent = client.agent("support_assistant", "ticket-1");

    for (message, session, seen) in [
        ("count a", "one", 1),
        ("count b", "two", 1),
        ("count c", "one", 3),
    ] {
        let reply = agent.prompt(message, Some(session)).await.unwrap();
        assert_eq!(
            reply.text,
            format!("seen {seen} messages"),
            "HTTP {session}"
        );
    }
    let mut conn = client
        .agents()
        .connect("support_assistant", "ticket-1")
        .await
        .unwrap();
    for (message, session, seen) in [
        ("count d", "two", 3),
        ("count e", "three", 1),
        ("count f", "one", 5),
    ] {
        let reply = conn.prompt(message, Some(session)).await.unwrap();
        assert_eq!(
            reply.text,
            format!("seen {seen} messages"),
            "WebSocket {session}"
        );
    }
    let bad = conn.exchange(&json!({"type": "prompt"})).await.unwrap();
    assert_eq!(bad["type"], "error");
    assert_eq!(bad["error"]["type"], "invalid_request");
    assert_eq!(
        conn.prompt("count g", Some("three")).await.unwrap().text,
        "seen 3 messages",
        "the socket stays open"
    );
    conn.close().await.unwrap();

    // Sessions are listed, read and reset over HTTP.
    let http = reqwest::Client::new();
    let base = format!("{}/agents/support_assistant/ticket-1/sessions", server.url);
    let listed: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["sessions"], json!(["one", "three", "two"]));
    let one: Value = http
        .get(format!("{base}/one"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["messages"].as_array().unwrap().len(), 6, "{one}");
    assert_eq!(one["messages"][0]["content"], "count a", "{one}");
    let reset = http.delete(format!("{base}/one")).send().await.unwrap();
    assert_eq!(reset.status(), 204);
    let listed: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["sessions"], json!(["three", "two"]));
    assert_eq!(
        agent.prompt("count h", Some("one")).await.unwrap().text,
        "seen 1 messages",
        "a reset session starts over"
    );
    // A model chosen per request, within what the agent may use.
    let (status, body) = raw(
        "POST",
        &format!("{}/agents/support_assistant/ticket-1", server.url),
        Some("application/json"),
        r#"{"message": "count i", "session": "four", "model": "openai/gpt-4o-mini"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["model"]["id"], "openai/gpt-4o-mini");
    assert_eq!(
        fake.requests().last().unwrap().format,
        flue_tests::Format::OpenAi
    );

    let missing = client
        .agents()
        .connect("nope", "x")
        .await
        .err()
        .expect("no such agent");
    assert!(
        matches!(missing, ClientError::Api { status: 404, .. }),
        "{missing:?}"
    );
}

#[tokio::test]
async fn api_keys_guard_agents_and_ids() {
    let fake = FakeProvider::start(script).await;
    let project = Project::new();
    let hash = |key: &str| flue_host::access::hash_key(key);
    std::fs::write(
        project.path().join("flue.toml"),
        format!(
            "[[keys]]\nname = \"support\"\nsha256 = \"{}\"\nagents = [\"support_assistant\"]\nids = \"ticket-*\"\n\n\
             [[keys]]\nname = \"admin\"\nsha256 = \"{}\"\n",
            hash("support-key"),
            hash("admin-key")
        ),
    )
    .unwrap();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let (openapi_status, _) = raw("GET", &format!("{}/openapi.json", server.url), None, "").await;
    assert_eq!(openapi_status, 401, "like every route but /health");

    let anonymous = Client::new(&server.url);
    assert_eq!(
        status(
            anonymous
                .agent("support_assistant", "ticket-1")
                .prompt("hi", None)
                .await
        ),
        401
    );
    assert_eq!(status(anonymous.agents().list().await), 401);
    assert!(anonymous.health().await.unwrap().ok, "health stays open");
    let wrong = Client::new(&server.url).with_token("guess");
    assert_eq!(
        status(
            wrong
                .agent("support_assistant", "ticket-1")
                .prompt("hi", None)
                .await
        ),
        401
    );

    let support = Client::new(&server.url).with_token("support-key");
    assert_eq!(
        status(
            support
                .agent("support_assistant", "ticket-1")
                .prompt("hi", None)
                .await
        ),
        200
    );
    assert_eq!(
        status(
            support
                .agent("hostile", "ticket-1")
                .prompt("hi", None)
                .await
        ),
        403
    );
    assert_eq!(
        status(
            support
                .agent("support_assistant", "order-1")
                .prompt("hi", None)
                .await
        ),
        403
    );
    let listed: Vec<String> = support
        .agents()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(listed, ["support_assistant"]);
    assert_eq!(
        status(support.agents().connect("hostile", "ticket-1").await),
        403
    );
    let mut conn = support
        .agents()
        .connect("support_assistant", "ticket-2")
        .await
        .unwrap();
    assert!(
        conn.prompt("hi", None)
            .await
            .unwrap()
            .text
            .contains("ticket-2")
    );

    let admin = Client::new(&server.url).with_token("admin-key");
    assert_eq!(
        status(
            admin
                .agent("hostile", "anything")
                .prompt("count", None)
                .await
        ),
        200
    );

    // WebSocket clients that cannot set headers pass the key as ?token=.
    let ws_url = format!(
        "{}/agents/support_assistant/ticket-3?token=support-key",
        server.url.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("the query token is accepted");
    use futures_util::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            json!({"type": "prompt", "message": "count"}).to_string(),
        ))
        .await
        .unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert!(reply.to_text().unwrap().contains("seen 1 messages"));
    let ws_anonymous = format!(
        "{}/agents/support_assistant/ticket-3",
        server.url.replacen("http", "ws", 1)
    );
    assert!(
        tokio_tungstenite::connect_async(ws_anonymous)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn serve_refuses_open_non_loopback_and_shuts_down_gracefully() {
    let fake = FakeProvider::start(script).await;
    let project = Project::new();
    let refused = tokio::process::Command::new(flue_tests::flue_binary())
        .arg("--project")
        .arg(project.path())
        .args(["serve", "--host", "0.0.0.0", "--port", "0", "--no-build"])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("without API keys"));

    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = Client::new(&server.url);
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .agent("support_assistant", "t")
                .prompt("slow", None)
                .await
        }
    });
    // The socket's prompt ends well after the HTTP one, so only a server that waits for
    // open sockets delivers it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut conn = client
        .agents()
        .connect("support_assistant", "u")
        .await
        .unwrap();
    let socket_in_flight = tokio::spawn(async move { conn.prompt("slow", Some("ws")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.terminate().await, "the server exits cleanly");
    let over_socket = socket_in_flight
        .await
        .unwrap()
        .expect("the socket's prompt finishes");
    assert_eq!(over_socket.text, "finally");
    assert_eq!(
        in_flight
            .await
            .unwrap()
            .expect("the prompt in flight finishes")
            .text,
        "finally"
    );
}
