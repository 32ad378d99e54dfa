//! Workflow runs through a real `flue serve`: a run that prompts an agent twice, its
//! record and numbered events, waiting for the result, SSE with resume, WebSocket,
//! cancelling, and a failing run.

use std::time::{Duration, Instant};

use flue_tests::{FakeProvider, Project, Reply, Server, Turn, get_json, guest};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The `type` of each event in a page of `/runs/{id}/events`.
fn kinds_of(page: &Value) -> Vec<String> {
    let events = page["events"].as_array().expect("a page of events");
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_workflow_run_prompts_agents_and_records_its_events() {
    let fake = FakeProvider::start(|turn: &Turn| {
        let text = turn.last_user_text.clone().unwrap_or_default();
        let answer = Reply::Text(format!("re: {text}"));
        if text == "slow question" {
            Reply::Delayed(Duration::from_secs(20), Box::new(answer))
        } else {
            answer
        }
    })
    .await;
    let project = Project::new();
    project.add_workflow("release_flow", &guest("tests/guests/release_flow"));
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url);

    let waited = client
        .post(url("/workflows/release_flow?wait=result"))
        .json(&json!({"payload": {"ticket": "ticket-8472"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(waited.status(), 200);
    let run_header = waited.headers()["x-flue-run-id"]
        .to_str()
        .unwrap()
        .to_string();
    let waited: Value = waited.json().await.unwrap();
    assert_eq!(waited["status"], "completed");
    assert_eq!(waited["run_id"], run_header.as_str());
    assert_eq!(waited["result"]["status"], "re: What is the status?");
    assert_eq!(
        waited["result"]["summary"],
        "re: Summarize: re: What is the status?"
    );

    let accepted = client
        .post(url("/workflows/release_flow"))
        .json(&json!({"ticket": "ticket-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.unwrap();
    let run_id = accepted["runId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let record: Value = loop {
        let record: Value = get_json(&client, url(&format!("/runs/{run_id}"))).await;
        if record["status"] != "running" {
            break record;
        }
        assert!(Instant::now() < deadline, "the run ends");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(record["status"], "completed");
    assert_eq!(record["isError"], false);
    assert_eq!(record["agent"], "release_flow");
    assert_eq!(record["event_count"], 6);
    assert!(record["durationMs"].as_i64().is_some_and(|d| d >= 0));
    assert!(
        record["startedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let page: Value = get_json(
        &client,
        url(&format!("/runs/{run_id}/events?after=1&limit=2")),
    )
    .await;
    let kinds = kinds_of(&page);
    assert_eq!(kinds, ["prompt_start", "prompt_end"]);
    assert_eq!(
        page["events"][0]["eventIndex"], 2,
        "numbered from 1, as PyFlue does"
    );
    assert_eq!(page["events"][0]["data"]["target"]["id"], "ticket-9");
    assert_eq!(page["next_after"], 3);
    assert!(
        page["events"][0]["timestamp"].as_f64().is_some(),
        "epoch seconds"
    );
    // PyFlue's `types=` filter; `after=0` is every event.
    let ends: Value = get_json(
        &client,
        url(&format!(
            "/runs/{run_id}/events?after=0&types=run_start,run_end"
        )),
    )
    .await;
    let kinds = kinds_of(&ends);
    assert_eq!(kinds, ["run_start", "run_end"]);
    assert_eq!(ends["next_after"], 6);
    let all: Value = get_json(&client, url(&format!("/runs/{run_id}/events"))).await;
    let kinds = kinds_of(&all);
    assert_eq!(
        kinds,
        [
            "run_start",
            "prompt_start",
            "prompt_end",
            "prompt_start",
            "prompt_end",
            "run_end"
        ]
    );

    let failed = client
        .post(url("/workflows/release_flow?wait=result"))
        .json(&json!({"fail": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 500);
    let failed: Value = failed.json().await.unwrap();
    assert_eq!(failed["error"]["type"], "workflow_error");
    let failed_id = failed["error"]["meta"]["run_id"].as_str().unwrap();
    let record: Value = get_json(&client, url(&format!("/runs/{failed_id}"))).await;
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error"], "asked to fail");

    // SSE: every event with its index, ending with run_end; then a resumed stream.
    let streamed = client
        .post(url("/workflows/release_flow"))
        .header("accept", "text/event-stream")
        .json(&json!({"ticket": "t-sse"}))
        .send()
        .await
        .unwrap();
    let sse_run = streamed.headers()["x-flue-run-id"]
        .to_str()
        .unwrap()
        .to_string();
    let (ids, kinds) = sse_fields(&streamed.text().await.unwrap());
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6"]);
    assert_eq!(
        kinds,
        [
            "run_start",
            "prompt_start",
            "prompt_end",
            "prompt_start",
            "prompt_end",
            "run_end"
        ]
    );
    let resumed = client
        .get(url(&format!("/runs/{sse_run}/stream")))
        .header("last-event-id", "4")
        .send()
        .await
        .unwrap();
    let (ids, kinds) = sse_fields(&resumed.text().await.unwrap());
    assert_eq!(ids, ["5", "6"]);
    assert_eq!(kinds, ["prompt_end", "run_end"]);

    // WebSocket: the payload in, the events and the result out, then a close.
    let ws_url = format!(
        "{}/workflows/release_flow",
        server.url.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    socket
        .send(Message::text(
            json!({"payload": {"ticket": "t-ws"}}).to_string(),
        ))
        .await
        .unwrap();
    let mut received = Vec::new();
    while let Some(Ok(Message::Text(text))) = socket.next().await {
        received.push(serde_json::from_str::<Value>(text.as_str()).unwrap());
    }
    let kinds: Vec<&str> = received
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "run_start",
            "prompt_start",
            "prompt_end",
            "prompt_start",
            "prompt_end",
            "run_end",
            "result"
        ]
    );
    assert_eq!(received[6]["result"]["status"], "re: What is the status?");

    // Cancel: a run waiting on a slow model is stopped and recorded as cancelled.
    let slow: Value = client
        .post(url("/workflows/release_flow"))
        .json(&json!({"ticket": "t-slow", "slow": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slow_id = slow["run_id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let record: Value = get_json(&client, url(&format!("/runs/{slow_id}"))).await;
        if record["event_count"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow run starts its prompt: {record}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancelled = client
        .post(url(&format!("/runs/{slow_id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let record: Value = get_json(&client, url(&format!("/runs/{slow_id}"))).await;
    assert_eq!(record["status"], "cancelled");
    assert_eq!(record["event_count"], 3);
    let again = client
        .post(url(&format!("/runs/{slow_id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    let unknown = client
        .post(url("/workflows/nope"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let missing = client.get(url("/runs/run_nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    server.terminate().await;
}

/// The `id:` and `event:` fields of an SSE body, in order.
fn sse_fields(body: &str) -> (Vec<String>, Vec<String>) {
    let field = |name: &str| -> Vec<String> {
        body.lines()
            .filter_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .collect()
    };
    (field("id:"), field("event:"))
}

/// A run acts with the scope of the key that started it: a key limited to some instance
/// ids cannot reach others through a workflow, and a tenant's key cannot start one.
#[tokio::test]
async fn a_run_prompts_only_what_the_key_that_started_it_reaches() {
    let fake = FakeProvider::start(|turn: &Turn| {
        Reply::Text(format!(
            "re: {}",
            turn.last_user_text.clone().unwrap_or_default()
        ))
    })
    .await;
    let project = Project::new();
    project.add_workflow("release_flow", &guest("tests/guests/release_flow"));
    let hash = flue_host::access::hash_key;
    std::fs::write(
        project.path().join("flue.toml"),
        format!(
            "[tenants.acme]\n\n\
             [[keys]]\nname = \"tickets\"\nsha256 = \"{}\"\nagents = [\"support_assistant\"]\nids = \"ticket-*\"\n\n\
             [[keys]]\nname = \"ops\"\nsha256 = \"{}\"\n\n\
             [[keys]]\nname = \"acme\"\nsha256 = \"{}\"\ntenant = \"acme\"\n",
            hash("tickets-key"),
            hash("ops-key"),
            hash("acme-key")
        ),
    )
    .unwrap();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = reqwest::Client::new();
    let run = async |key: &str, ticket: &str| {
        let response = client
            .post(format!("{}/workflows/release_flow?wait=result", server.url))
            .bearer_auth(key)
            .json(&json!({"payload": {"ticket": ticket}}))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };

    let (status, body) = run("tickets-key", "ticket-1").await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("completed")),
        "{body}"
    );

    let (status, body) = run("tickets-key", "other-99").await;
    assert_eq!(status, 500, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("may not reach instance 'other-99'"),
        "{message}"
    );
    let run_id = body["error"]["meta"]["runId"].as_str().unwrap();
    let events = client
        .get(format!("{}/runs/{run_id}/events", server.url))
        .bearer_auth("tickets-key")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let prompt_end = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "prompt_end")
        .unwrap();
    assert_eq!(prompt_end["data"]["is_error"], true, "{prompt_end}");

    // The operator's unrestricted key reaches that instance through the same workflow;
    // the limited key cannot read that run, which reached beyond it.
    let (status, body) = run("ops-key", "other-99").await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("completed")),
        "{body}"
    );
    let ops_run = body["run_id"].as_str().unwrap();
    for path in ["", "/events", "/stream"] {
        let read = client
            .get(format!("{}/runs/{ops_run}{path}", server.url))
            .bearer_auth("tickets-key")
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 404, "{path}");
    }

    // A tenant's key may start no workflow, over HTTP or WebSocket.
    let (status, _) = run("acme-key", "ticket-1").await;
    assert_eq!(status, 403);
    let ws_url = format!(
        "{}/workflows/release_flow?token=acme-key",
        server.url.replace("http://", "ws://")
    );
    let refused = tokio_tungstenite::connect_async(ws_url).await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
}
