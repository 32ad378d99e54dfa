//! PyFlue's own Python client, unchanged, against a real `flue serve`: the wire protocol
//! is PyFlue's. Needs `pip install pyflue websockets` (done by `.ci/run`).

use flue_tests::{FakeProvider, Project, Server, guest, ticket_script, workspace};
use serde_json::{Value, json};

/// Runs one of the Python scripts in `tests/pyflue/` against `url` and returns what it
/// printed.
async fn pyflue(script: &str, url: &str, args: &[&str]) -> Value {
    let output = tokio::process::Command::new("python3")
        .arg(workspace().join("tests/pyflue").join(script))
        .arg(url)
        .args(args)
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the PyFlue client failed (is `pyflue` installed?): {stderr}"
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

#[tokio::test]
async fn the_pyflue_client_works_unchanged() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let seen = pyflue("client_check.py", &server.url, &[]).await;
    assert_eq!(
        seen["agents"],
        serde_json::json!(["hostile", "support_assistant"])
    );
    check_client_session(&seen, &fake);
}

/// The same client against the Python and TypeScript versions of the support example.
#[tokio::test]
async fn the_pyflue_client_talks_to_python_and_typescript_agents_unchanged() {
    let _turn = flue_tests::heavy_turn().await;
    let project = Project::empty();
    for example in ["support_python", "support_typescript"] {
        let source = match example {
            "support_python" => "agents/support_python.py",
            _ => "agents/support_typescript.ts",
        };
        project.add_agent(example, &guest(source));
    }
    let fake = FakeProvider::start(ticket_script).await;
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    for example in ["support_python", "support_typescript"] {
        let fake_before = fake.requests().len();
        let seen = pyflue("client_check.py", &server.url, &[example]).await;
        assert_eq!(
            seen["agents"],
            json!(["support_python", "support_typescript"])
        );
        assert!(fake.requests().len() > fake_before);
        check_client_session(&seen, &fake);
        let text = seen["invoked"]["result"]["text"].as_str().unwrap();
        assert!(text.contains("refund approved"), "{example}: {text}");
    }
}

/// What `client_check.py` saw of one agent: a prompt, a stream and two WebSocket
/// prompts of instance `ticket-8472`, whose tool knows its ticket.
fn check_client_session(seen: &Value, fake: &FakeProvider) {
    assert_eq!(seen["health"]["ok"], true);
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

/// With API keys configured, the same client (the key in the URL, sent as Basic
/// credentials over HTTP and WebSocket alike) reaches agents, workflows, runs (with
/// PyFlue's event numbering and `types=` filter) and the admin reads.
#[tokio::test]
async fn the_pyflue_client_works_with_keys_workflows_runs_and_admin() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    project.add_workflow("release_flow", &guest("tests/guests/release_flow"));
    std::fs::write(
        project.path().join("flue.toml"),
        format!(
            "[[keys]]\nname = \"admin\"\nsha256 = \"{}\"\nadmin = true\n",
            flue_host::access::hash_key("admin-key")
        ),
    )
    .unwrap();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let anonymous = reqwest::get(format!("{}/agents", server.url))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "keys are required");
    let url = server.url.replace("http://", "http://admin:admin-key@");
    let seen = pyflue("client_keys_check.py", &url, &[]).await;

    assert!(
        seen["invoked"]["result"]["text"]
            .as_str()
            .unwrap()
            .contains("ticket-1")
    );
    assert_eq!(
        seen["over_socket"]["type"], "result",
        "{}",
        seen["over_socket"]
    );
    assert_eq!(seen["waited"]["status"], "completed");
    let kinds = json!([
        "run_start",
        "prompt_start",
        "prompt_end",
        "prompt_start",
        "prompt_end",
        "run_end"
    ]);
    assert_eq!(seen["streamed"], kinds);
    let mut with_result = kinds.as_array().unwrap().clone();
    with_result.push(json!("result"));
    assert_eq!(seen["over_socket_run"], json!(with_result));
    let run_id = seen["waited"]["run_id"].as_str().unwrap();
    assert_eq!(seen["record"]["status"], "completed");
    assert!(seen["record"]["started_at"].is_f64());
    let ends: Vec<&str> = seen["ends"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(ends, ["run_start", "run_end"]);
    assert_eq!(seen["resumed"], json!(["prompt_end", "run_end"]));

    assert_eq!(
        seen["admin_agents"]["agents"],
        json!([{"name": "release_flow"}])
    );
    let instances = seen["admin_instances"]["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "a page of two of the three runs");
    assert!(seen["admin_instances"]["nextCursor"].is_string());
    let completed = seen["admin_completed"]["runs"].as_array().unwrap();
    // The waited run surely has its end stored; the two followed ones may lag by a hair.
    assert!(!completed.is_empty());
    assert!(completed.iter().all(|r| r["status"] == "completed"));
    assert_eq!(seen["admin_for_instance"]["runs"][0]["run_id"], run_id);
    assert_eq!(seen["admin_run"]["run_id"], run_id);
}
