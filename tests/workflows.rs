//! Workflow runs through a real `flue serve`: a run that prompts an agent twice, its
//! record and numbered events, waiting for the result, and a failing run.

use std::time::{Duration, Instant};

use flue_tests::{FakeProvider, Project, Reply, Server, Turn, guest};
use serde_json::{Value, json};

#[tokio::test]
async fn a_workflow_run_prompts_agents_and_records_its_events() {
    let fake = FakeProvider::start(|turn: &Turn| {
        Reply::Text(format!(
            "re: {}",
            turn.last_user_text.clone().unwrap_or_default()
        ))
    })
    .await;
    let project = Project::new();
    std::fs::create_dir_all(project.path().join("workflows")).unwrap();
    std::fs::copy(
        guest("tests/guests/release_flow"),
        project.path().join("workflows/release_flow.wasm"),
    )
    .unwrap();
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
        let record: Value = client
            .get(url(&format!("/runs/{run_id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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

    let page: Value = client
        .get(url(&format!("/runs/{run_id}/events?after=0&limit=2")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["prompt_start", "prompt_end"]);
    assert_eq!(page["events"][0]["eventIndex"], 1);
    assert_eq!(page["events"][0]["data"]["target"]["id"], "ticket-9");
    assert_eq!(page["next_after"], 2);
    let all: Value = client
        .get(url(&format!("/runs/{run_id}/events")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
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
    let record: Value = client
        .get(url(&format!("/runs/{failed_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error"], "asked to fail");

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
