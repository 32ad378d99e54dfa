//! Tenants: each has its own agents (`agents/<tenant>/`) and its own namespace of
//! instances, sessions and dispatches. Every route, called with one tenant's key about
//! another tenant's resources, finds nothing to read, prompt or dispatch.

use flue_tests::{FakeProvider, Project, Server, guest, ticket_script};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const ACME: &str = "acme-key";
const GLOBEX: &str = "globex-key";
const OPERATOR: &str = "operator-key";

/// A project with the same agent as `support` for tenants acme and globex, and as
/// `support_assistant` for the operator; a key for each.
fn project() -> Project {
    let project = Project::empty();
    let agent = guest("agents/support_assistant");
    for tenant in ["acme", "globex"] {
        std::fs::create_dir_all(project.path().join("agents").join(tenant)).unwrap();
        project.add_agent(&format!("{tenant}/support"), &agent);
    }
    project.add_agent("support_assistant", &agent);
    let hash = flue_host::access::hash_key;
    std::fs::write(
        project.path().join("flue.toml"),
        format!(
            "[tenants.acme]\n[tenants.globex]\n\n\
             [[keys]]\nname = \"acme\"\nsha256 = \"{}\"\ntenant = \"acme\"\n\n\
             [[keys]]\nname = \"globex\"\nsha256 = \"{}\"\ntenant = \"globex\"\n\n\
             [[keys]]\nname = \"operator\"\nsha256 = \"{}\"\n",
            hash(ACME),
            hash(GLOBEX),
            hash(OPERATOR)
        ),
    )
    .unwrap();
    project
}

async fn send(
    client: &Client,
    method: Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = client.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}

#[tokio::test]
async fn no_tenant_reaches_another_tenants_instances() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = project();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = Client::new();
    let url = &server.url;

    // acme talks to its agent and leaves a dispatch and a secret in its history.
    let (status, body) = send(
        &client,
        Method::POST,
        format!("{url}/agents/support/t-1"),
        ACME,
        Some(json!({"message": "acme secret", "session": "s"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("t-1"), "{body}");
    let (status, body) = send(
        &client,
        Method::POST,
        format!("{url}/agents/support/t-1/dispatch"),
        ACME,
        Some(json!({"input": {"acme": "event"}, "session": "later"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let dispatch = serde_json::from_str::<Value>(&body).unwrap()["dispatch_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Each key lists its own agents by its own names.
    for (key, expected) in [
        (ACME, json!(["support"])),
        (GLOBEX, json!(["support"])),
        (OPERATOR, json!(["support_assistant"])),
    ] {
        let (_, body) = send(&client, Method::GET, format!("{url}/agents"), key, None).await;
        let names: Vec<Value> = serde_json::from_str::<Value>(&body).unwrap()["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].clone())
            .collect();
        assert_eq!(Value::Array(names), expected, "{key}");
    }

    // Every route, with a foreign key, about acme's resources.
    let foreign = "acme%2Fsupport";
    let routes = [
        (
            Method::POST,
            format!("/agents/{foreign}/t-1"),
            Some(json!({"message": "hi", "session": "s"})),
        ),
        (Method::GET, format!("/agents/{foreign}/t-1"), None),
        (
            Method::POST,
            format!("/agents/{foreign}/t-1/dispatch"),
            Some(json!({"input": 1})),
        ),
        (Method::GET, format!("/dispatches/{dispatch}"), None),
        (Method::POST, "/workflows/any".to_string(), Some(json!({}))),
        (Method::GET, "/runs/any".to_string(), None),
        (Method::GET, "/runs/any/events".to_string(), None),
        (Method::GET, "/runs/any/stream".to_string(), None),
        (Method::POST, "/runs/any/cancel".to_string(), None),
        (Method::GET, "/metrics".to_string(), None),
    ];
    let mut checked = 0;
    for key in [GLOBEX, OPERATOR] {
        for (method, path, body) in &routes {
            let operator_route =
                path.starts_with("/workflows") || path.starts_with("/runs") || path == "/metrics";
            if key == OPERATOR && operator_route {
                continue; // the operator's own routes, not a tenant's resources
            }
            let (status, text) = send(
                &client,
                method.clone(),
                format!("{url}{path}"),
                key,
                body.clone(),
            )
            .await;
            assert!(
                (403..=405).contains(&status.as_u16()),
                "{key} {method} {path}: {status} {text}"
            );
            assert!(
                !text.contains("acme secret") && !text.contains("acme/"),
                "{path}: {text}"
            );
            checked += 1;
        }
    }
    // SSE and WebSocket upgrades of a foreign agent are refused before they start.
    let (status, _) = {
        let response = client
            .post(format!("{url}/agents/{foreign}/t-1"))
            .bearer_auth(GLOBEX)
            .header("accept", "text/event-stream")
            .json(&json!({"message": "hi"}))
            .send()
            .await
            .unwrap();
        (response.status(), ())
    };
    assert_eq!(status, 404);
    let ws = format!(
        "{}/agents/{foreign}/t-1?token={GLOBEX}",
        url.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404)
        }
        other => panic!(
            "a foreign WebSocket was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    assert!(checked >= 14, "{checked} routes checked");

    // The same name and id in another tenant is another instance: globex's session "s"
    // of support/t-1 starts empty, and its unknown-agent error lists only its agents.
    let before = fake.requests().len();
    let (status, _) = send(
        &client,
        Method::POST,
        format!("{url}/agents/support/t-1"),
        GLOBEX,
        Some(json!({"message": "globex question", "session": "s"})),
    )
    .await;
    assert_eq!(status, 200);
    let seen = fake.requests();
    assert!(seen.len() > before);
    for request in &seen[before..] {
        let body = request.body.to_string();
        assert!(
            body.contains("globex question") && !body.contains("acme secret"),
            "{body}"
        );
    }
    let (status, body) = send(
        &client,
        Method::POST,
        format!("{url}/agents/nosuch/t-1"),
        GLOBEX,
        Some(json!({"message": "hi"})),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        !body.contains("acme") && !body.contains("support_assistant"),
        "{body}"
    );

    // acme still sees its own dispatch, under its own name for the agent.
    let (status, body) = send(
        &client,
        Method::GET,
        format!("{url}/dispatches/{dispatch}"),
        ACME,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["agent"],
        "support"
    );
}

#[tokio::test]
async fn an_admin_installs_a_tenants_agent_only_when_it_is_valid() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = project();
    let hash = flue_host::access::hash_key;
    let toml = std::fs::read_to_string(project.path().join("flue.toml")).unwrap();
    std::fs::write(
        project.path().join("flue.toml"),
        format!(
            "{toml}\n[[keys]]\nname = \"admin\"\nsha256 = \"{}\"\nadmin = true\n",
            hash("admin-key")
        ),
    )
    .unwrap();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = Client::new();
    let url = &server.url;
    let component = std::fs::read(guest("agents/support_assistant")).unwrap();
    let ask = async |key: &str| {
        let prompt = Some(json!({"message": "status?"}));
        send(
            &client,
            Method::POST,
            format!("{url}/agents/helper/t-9"),
            key,
            prompt,
        )
        .await
    };
    let upload = async |key: &str, tenant: &str, name: &str, bytes: Vec<u8>| {
        let response = client
            .put(format!("{url}/admin/tenants/{tenant}/agents/{name}"))
            .bearer_auth(key)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };

    // Only an admin key may install, and only into a declared tenant.
    for key in [ACME, OPERATOR] {
        assert_eq!(
            upload(key, "acme", "helper", component.clone()).await.0,
            403
        );
    }
    assert_eq!(
        upload("admin-key", "nobody", "helper", component.clone())
            .await
            .0,
        404
    );
    let (status, body) = upload("admin-key", "acme", "helper", component.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert!(project.path().join("agents/acme/helper.wasm").is_file());

    // acme can use it at once; globex cannot see it.
    let (status, body) = ask(ACME).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("t-9"), "{body}");
    let (status, _) = ask(GLOBEX).await;
    assert_eq!(status, 404);

    // Bytes that are not an agent are refused and change nothing.
    let (status, body) = upload("admin-key", "acme", "helper", b"\0asm\x01\0\0\0".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("refused"), "{body}");
    assert_eq!(
        std::fs::read(project.path().join("agents/acme/helper.wasm")).unwrap(),
        component
    );
    let (status, _) = ask(ACME).await;
    assert_eq!(status, 200, "the valid version keeps serving");

    // Replacing answers 200; removing takes it away.
    assert_eq!(
        upload("admin-key", "acme", "helper", component.clone())
            .await
            .0,
        200
    );
    let removed = client
        .delete(format!("{url}/admin/tenants/acme/agents/helper"))
        .bearer_auth("admin-key")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert!(!project.path().join("agents/acme/helper.wasm").exists());
    let (status, _) = ask(ACME).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_tenants_agent_cannot_delegate_to_another_namespace() {
    // The coordinator delegates to an agent named "reviewer"; only the operator has one.
    let fake = FakeProvider::start(|turn: &flue_tests::Turn| {
        match (
            &turn.last_tool_result,
            turn.tool_names.iter().any(|t| t == "task"),
        ) {
            (Some(result), _) => flue_tests::Reply::Text(format!("got: {result}")),
            (None, true) => flue_tests::Reply::ToolCall {
                name: "task".into(),
                args: json!({"subagent": "reviewer", "prompt": "review"}),
            },
            (None, false) => flue_tests::Reply::Text("the operator's reviewer ran".into()),
        }
    })
    .await;
    let project = Project::empty();
    std::fs::create_dir_all(project.path().join("agents/acme")).unwrap();
    project.add_agent("acme/coordinator", &guest("agents/coordinator"));
    project.add_agent("reviewer", &guest("agents/reviewer"));
    let mut options = project.options(&fake);
    options
        .config
        .tenants
        .insert("acme".into(), Default::default());
    let host = flue_host::Host::open(options).await.unwrap();
    let text = host
        .init_agent("acme/coordinator", "t")
        .await
        .unwrap()
        .session("s")
        .prompt("release it")
        .await
        .unwrap()
        .text;
    assert!(
        text.starts_with("got: ") && text.contains("not found"),
        "{text}"
    );
    assert_eq!(
        fake.requests().len(),
        2,
        "the operator's reviewer never ran"
    );
}

/// A refusal that lifts by itself (a rate window) says when to retry, in `Retry-After`
/// and in the envelope; the key's scheme may be written in any case.
#[tokio::test]
async fn a_rate_refusal_says_when_to_retry() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = project();
    let toml = project.path().join("flue.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace(
            "[tenants.acme]\n",
            "[tenants.acme]\nprompts_per_minute = 1\n",
        ),
    )
    .unwrap();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = Client::new();
    let prompt = async || {
        client
            .post(format!("{}/agents/support/t-1", server.url))
            .header("authorization", format!("bearer {ACME}"))
            .json(&json!({"message": "hi"}))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(prompt().await.status(), StatusCode::OK);
    let refused = prompt().await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let seconds: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["meta"]["limit"], "prompts_per_minute");
    assert!(body["error"]["meta"]["retry_after_ms"].as_u64().unwrap() <= 60_000);

    // The operator's metrics count the tenant's prompts under its agent and tenant.
    let (status, metrics) = send(
        &client,
        Method::GET,
        format!("{}/metrics", server.url),
        OPERATOR,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains(r#"flue_prompts_total{agent="acme/support",tenant="acme"}"#),
        "{metrics}"
    );
}
