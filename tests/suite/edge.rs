//! Bad input at the edge: a seeded stream of random requests (paths, methods, headers,
//! bodies) against a real `flue serve` finds no 5xx and leaves the server healthy; the
//! size limits on bodies, messages, ids and session names answer with clear 4xx errors.

use flue_tests::{FakeProvider, Project, Reply, Server, Turn, get_json, guest};
use serde_json::{Value, json};

const REQUESTS: usize = 1500;
const SEED: u64 = 0x5eed_f10e;

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

fn segment(rng: &mut fastrand::Rng) -> String {
    match rng.u8(..6) {
        0 => String::new(),
        1 => "x".repeat(rng.usize(200..400)),
        2 => "%2e%2e".into(),
        3 => "ünï-cødé".into(),
        4 => format!("id-{}", rng.u32(..1000)),
        _ => (0..rng.usize(1..12)).map(|_| rng.alphanumeric()).collect(),
    }
}

fn path(rng: &mut fastrand::Rng) -> String {
    let (a, b) = (segment(rng), segment(rng));
    match rng.u8(..12) {
        0 => "/".into(),
        1 => "/health".into(),
        2 => "/agents".into(),
        3 | 4 => format!("/agents/support_assistant/{a}"),
        5 => format!("/agents/{a}/{b}"),
        6 => format!("/agents/support_assistant/{a}/dispatch"),
        7 => format!("/dispatches/{a}"),
        8 => format!("/workflows/{a}"),
        9 => format!("/runs/{a}/events?after={}&limit={b}", rng.i32(-5..50)),
        10 => format!("/runs/{a}/{}", pick(rng, &["stream", "cancel", "x"])),
        _ => format!("/{a}/../{b}?{a}={b}"),
    }
}

fn random_json(rng: &mut fastrand::Rng, depth: u32) -> Value {
    match if depth > 3 { rng.u8(..4) } else { rng.u8(..7) } {
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(rng.i64(..)),
        3 => json!(segment(rng)),
        4 => Value::Array(
            (0..rng.usize(..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "message",
                "prompt",
                "session",
                "input",
                "payload",
                "type",
                "idempotency_key",
            ];
            let object = (0..rng.usize(..4))
                .map(|_| (pick(rng, &keys).to_string(), random_json(rng, depth + 1)))
                .collect();
            Value::Object(object)
        }
    }
}

fn body(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(..8) {
        0 => Vec::new(),
        1 => (0..rng.usize(1..200)).map(|_| rng.u8(..)).collect(),
        2 => "[".repeat(rng.usize(100..400)).into_bytes(),
        3 => json!({"message": "x".repeat(300 << 10)})
            .to_string()
            .into_bytes(),
        4 | 5 => json!({"message": "hello", "session": segment(rng), "input": random_json(rng, 0)})
            .to_string()
            .into_bytes(),
        _ => random_json(rng, 0).to_string().into_bytes(),
    }
}

#[tokio::test]
async fn random_requests_find_no_server_error() {
    let fake = FakeProvider::start(|_: &Turn| Reply::Text("ok".into())).await;
    let project = Project::empty();
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = reqwest::Client::new();
    let mut rng = fastrand::Rng::with_seed(SEED);
    let methods = [
        "GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
    ];
    let content_types = [
        "application/json",
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
    ];
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..REQUESTS {
        let method = pick(&mut rng, &methods);
        let path = path(&mut rng);
        let mut request = client
            .request(method.parse().unwrap(), format!("{}{path}", server.url))
            .body(body(&mut rng));
        let content_type = pick(&mut rng, &content_types);
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        if rng.u8(..4) == 0 {
            request = request.header("accept", "text/event-stream");
        }
        if rng.u8(..6) == 0 {
            request = request.header(
                "idempotency-key",
                segment(&mut rng).replace('ü', "u").replace(['ï', 'ø'], "o"),
            );
        }
        if rng.u8(..8) == 0 {
            request = request.header("authorization", format!("Bearer {}", segment(&mut rng)));
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                // The server may answer (405, 413…) before reading a large body and close
                // the connection while the client still sends; it must still be up.
                let health = get_json(&client, format!("{}/health", server.url)).await;
                assert_eq!(
                    health["ok"], true,
                    "alive after request {n} {method} {path}: {e}"
                );
                continue;
            }
        };
        let status = response.status();
        *seen.entry(status.as_u16()).or_default() += 1;
        let text = response.text().await.unwrap_or_default();
        if status.is_server_error() {
            failures.push(format!("{method} {path} → {status}: {text}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} server errors, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let answered: usize = seen.values().sum();
    assert!(answered > REQUESTS * 3 / 4, "{answered} answered: {seen:?}");
    for status in [200, 202, 400, 404, 405, 415] {
        assert!(seen.contains_key(&status), "no {status} among {seen:?}");
    }
    assert_eq!(
        get_json(&client, format!("{}/health", server.url)).await["ok"],
        true
    );
    assert!(
        server.terminate().await,
        "a clean shutdown after the barrage"
    );
}

#[tokio::test]
async fn size_limits_answer_with_clear_errors() {
    let fake = FakeProvider::start(|_: &Turn| Reply::Text("ok".into())).await;
    let project = Project::empty();
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = reqwest::Client::new();
    let post = async |path: &str, body: Value| {
        let response = client
            .post(format!("{}{path}", server.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (
            status,
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let long = "i".repeat(flue_host::MAX_NAME_BYTES + 1);
    let (status, message) = post(
        &format!("/agents/support_assistant/{long}"),
        json!({"message": "hi"}),
    )
    .await;
    assert_eq!(
        (
            status,
            message.contains("instance id") && message.contains("at most 256")
        ),
        (400, true),
        "{message}"
    );
    let (status, message) = post(
        "/agents/support_assistant/a",
        json!({"message": "hi", "session": long}),
    )
    .await;
    assert_eq!(
        (status, message.contains("session name")),
        (400, true),
        "{message}"
    );
    let big = "m".repeat(flue_host::MAX_MESSAGE_BYTES + 1);
    let (status, message) = post("/agents/support_assistant/a", json!({"message": big})).await;
    assert_eq!(
        (status, message.contains("message is")),
        (400, true),
        "{message}"
    );
    let (status, _) = post(
        "/agents/support_assistant/a",
        json!({"message": "x".repeat(2 << 20)}),
    )
    .await;
    assert_eq!(status, 413);
    let (status, message) = post(
        "/agents/support_assistant/a/dispatch",
        json!({"input": 1, "session": long}),
    )
    .await;
    assert_eq!(
        (status, message.contains("session name")),
        (400, true),
        "{message}"
    );
    let (status, _) = post("/agents/support_assistant/a", json!({"message": "hi"})).await;
    assert_eq!(status, 200, "within the limits all is well");
    server.terminate().await;
}

/// What each store answers to names it cannot keep alike, and to frames and paths that
/// are not what a route expects: the same 4xx, in the error envelope, on SQLite and on
/// PostgreSQL.
#[tokio::test]
async fn names_no_store_keeps_alike_are_refused_the_same_on_both_stores() {
    let fake = FakeProvider::start(flue_tests::ticket_script).await;
    let mut answers = Vec::new();
    for database_url in [None, Some(flue_tests::postgres::fresh_database().await)] {
        let project = Project::empty();
        project.add_agent("support_assistant", &guest("agents/support_assistant"));
        let mut options = project.options(&fake);
        options.database_url = database_url;
        let host = project.host_with(options).await;
        let server = flue_tests::InProcessServer::start(host).await;
        let client = reqwest::Client::new();
        let post = async |path: &str, body: &str| {
            let response = client
                .post(format!("{}/agents/support_assistant/{path}", server.url))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("the error envelope");
            (status, body["error"]["type"].as_str().map(str::to_string))
        };
        let mut seen = vec![
            post("T-1", r#"{"message":"a\u0000b","session":"s1"}"#).await,
            post("T-1", r#"{"message":"hi","session":"n\u0000ul"}"#).await,
            post("x%00y", r#"{"message":"status?"}"#).await,
            post("%20", r#"{"message":"hi"}"#).await,
            post("%2E%2E", r#"{"message":"hi"}"#).await,
            post("%FF", r#"{"message":"hi"}"#).await,
            post(
                "T-1/dispatch",
                r#"{"input":{"t":"a\u0000b"},"session":"s4"}"#,
            )
            .await,
            post("T-1/dispatch", r#"{"input":1,"session":"d\u0000"}"#).await,
        ];
        let history = get_json(
            &client,
            format!("{}/agents/support_assistant/T-1/sessions/s1", server.url),
        )
        .await;
        seen.push((
            200,
            history["messages"][0]["content"]
                .as_str()
                .map(str::to_string),
        ));
        answers.push(seen);
        server.stop().await;
    }
    let refused = (400, Some("invalid_request".to_string()));
    let [sqlite, postgres] = &answers[..] else {
        unreachable!()
    };
    assert_eq!(sqlite, postgres, "both stores answer alike");
    assert_eq!(sqlite[0].0, 200, "NUL in a message is kept (as JSON text)");
    for (at, what) in [
        (1, "session"),
        (2, "id"),
        (3, "blank id"),
        (4, "'..' id"),
        (5, "non-UTF-8 id"),
        (7, "dispatch session"),
    ] {
        assert_eq!(sqlite[at], refused, "{what}");
    }
    assert_eq!(sqlite[6].0, 202, "NUL in a dispatch input is kept");
    assert_eq!(
        sqlite[8].1.as_deref(),
        Some("a\0b"),
        "and read back as sent"
    );
}

/// A WebSocket client that sends its prompt as a binary frame gets an answer, and one
/// whose bytes are not text gets an error reply.
#[tokio::test]
async fn binary_websocket_frames_are_answered() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let fake = FakeProvider::start(flue_tests::ticket_script).await;
    let project = Project::empty();
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    let server = flue_tests::InProcessServer::start(project.host(&fake).await).await;
    let url = format!(
        "{}/agents/support_assistant/T-1",
        server.url.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let prompt = json!({"type": "prompt", "message": "status?", "session": "s1", "id": 1});
    let mut reply = async |frame: Message| {
        socket.send(frame).await.unwrap();
        loop {
            if let Message::Text(text) = socket.next().await.expect("a reply").unwrap() {
                return serde_json::from_str::<Value>(&text).unwrap();
            }
        }
    };
    let answer = reply(Message::Binary(prompt.to_string().into_bytes().into())).await;
    assert_eq!(
        (answer["type"].as_str(), answer["id"].as_i64()),
        (Some("result"), Some(1)),
        "{answer}"
    );
    assert!(answer["result"]["text"].as_str().unwrap().contains("T-1"));
    let refused = reply(Message::Binary(vec![0xff, 0xfe].into())).await;
    assert_eq!(refused["error"]["type"], "invalid_request", "{refused}");
    let again = reply(Message::Text(prompt.to_string().into())).await;
    assert_eq!(again["type"], "result", "the socket stays open");
    server.stop().await;
}
