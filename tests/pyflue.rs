//! PyFlue's own Python client, unchanged, against a real `flue serve`: the wire protocol
//! is PyFlue's. Needs `pip install pyflue websockets` (done by `.ci/run`).

use flue_tests::{FakeProvider, Project, Server, ticket_script, workspace};
use serde_json::Value;

#[tokio::test]
async fn the_pyflue_client_works_unchanged() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let output = tokio::process::Command::new("python3")
        .arg(workspace().join("tests/pyflue/client_check.py"))
        .arg(&server.url)
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the PyFlue client failed (is `pyflue` installed?): {stderr}"
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");

    assert_eq!(seen["health"]["ok"], true);
    assert_eq!(
        seen["agents"],
        serde_json::json!(["hostile", "support_assistant"])
    );
    let text = seen["invoked"]["result"]["text"].as_str().unwrap();
    assert!(text.contains("Ticket ticket-8472: open"), "{text}");

    let events = seen["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"start"));
    assert_eq!(types.last(), Some(&"end"));
    assert!(
        types.contains(&"delta") && types.contains(&"tool_start") && types.contains(&"tool_end"),
        "{types:?}"
    );
    assert_eq!(events[0]["data"]["session_id"], "billing");
    let end = &events.last().unwrap()["data"];
    assert!(
        end["result"]["text"]
            .as_str()
            .unwrap()
            .contains("ticket-8472")
    );

    for reply in seen["ws"].as_array().unwrap() {
        assert_eq!(reply["type"], "result", "{reply}");
        assert!(
            reply["result"]["text"]
                .as_str()
                .unwrap()
                .contains("ticket-8472")
        );
    }
    let billing_requests = fake
        .requests()
        .iter()
        .filter(|r| r.body.to_string().contains("Where is my refund?"))
        .count();
    assert!(
        billing_requests >= 4,
        "the socket's billing prompt continued the HTTP session"
    );
}
