//! Per-instance authorization by the agent: an agent that exports `authorize` is asked,
//! in the instance the URL names, before every prompt, WebSocket connection and
//! dispatch, and a `false` is a 403. Agents without the export are not asked.

use flue_tests::{FakeProvider, Project, Reply, Server, Turn, guest};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const RED: &str = "red-key";
const BLUE: &str = "blue-key";
const OPS: &str = "ops-key";

/// `gatekeeper` decides: `public-*` ids are open, `<team>-*` ids need the key's
/// `team` claim, the key named `ops` reaches all; `support_assistant` does not decide.
fn project() -> Project {
    let project = Project::empty();
    project.add_agent("gatekeeper", &guest("tests/guests/gatekeeper"));
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    let hash = flue_host::access::hash_key;
    std::fs::write(
        project.path().join("flue.toml"),
        format!(
            "[[keys]]\nname = \"red\"\nsha256 = \"{}\"\nclaims = {{ team = \"red\" }}\n\n\
             [[keys]]\nname = \"blue\"\nsha256 = \"{}\"\nclaims = {{ team = \"blue\" }}\n\n\
             [[keys]]\nname = \"ops\"\nsha256 = \"{}\"\n",
            hash(RED),
            hash(BLUE),
            hash(OPS)
        ),
    )
    .unwrap();
    project
}

async fn post(client: &Client, url: String, key: &str, body: Value) -> (StatusCode, Value) {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn the_agent_decides_who_reaches_each_instance() {
    let fake = FakeProvider::start(|turn: &Turn| {
        Reply::Text(format!(
            "answered: {}",
            turn.system.clone().unwrap_or_default()
        ))
    })
    .await;
    let project = project();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = Client::new();
    let prompt = json!({"message": "hi"});
    let url = |agent: &str, id: &str| format!("{}/agents/{agent}/{id}", server.url);

    let cases = [
        (RED, "red-1", true),
        (RED, "blue-1", false),
        (BLUE, "blue-1", true),
        (BLUE, "red-1", false),
        (RED, "public-1", true),
        (BLUE, "public-1", true),
        (OPS, "red-1", true),
        (OPS, "blue-7", true),
    ];
    for (key, id, allowed) in cases {
        let (status, body) = post(&client, url("gatekeeper", id), key, prompt.clone()).await;
        if allowed {
            assert_eq!(status, 200, "{key} → {id}: {body}");
            let text = body["result"]["text"].as_str().unwrap();
            assert!(text.contains(&format!("Serve {id}.")), "{text}");
        } else {
            assert_eq!(status, 403, "{key} → {id}: {body}");
            assert_eq!(body["error"]["type"], "forbidden");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("does not let"), "{message}");
        }
    }
    // Refused prompts never reached the model: one request per allowed prompt.
    assert_eq!(fake.requests().len(), 6);
    // A dispatch is refused the same way, before it is stored.
    for (key, id, allowed) in cases {
        let dispatch = format!("{}/dispatch", url("gatekeeper", id));
        let (status, body) = post(&client, dispatch, key, json!({"input": {"n": 1}})).await;
        let expected = if allowed { 202 } else { 403 };
        assert_eq!(status, expected, "dispatch {key} → {id}: {body}");
    }

    // A WebSocket connection is refused before the upgrade.
    let ws = |id: &str, key: &str| {
        format!(
            "{}/agents/gatekeeper/{id}?token={key}",
            server.url.replace("http://", "ws://")
        )
    };
    let refused = tokio_tungstenite::connect_async(ws("blue-1", RED)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    assert!(
        tokio_tungstenite::connect_async(ws("red-1", RED))
            .await
            .is_ok()
    );

    // An agent without the export is not asked: every key reaches every id.
    let (status, _) = post(
        &client,
        url("support_assistant", "blue-1"),
        RED,
        prompt.clone(),
    )
    .await;
    assert_eq!(status, 200);

    // A guest that fails while deciding fails that request only, and lets nobody in.
    let (status, body) = post(&client, url("gatekeeper", "boom"), OPS, prompt.clone()).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["type"], "agent_error");
    // The guest's own output (its panic message) is for the host's log, not the caller.
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("trapped") && !message.contains("cannot decide"),
        "{body}"
    );
    let (status, _) = post(&client, url("gatekeeper", "red-2"), RED, prompt).await;
    assert_eq!(status, 200);
}
