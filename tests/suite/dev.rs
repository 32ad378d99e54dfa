//! `flue dev` hot reload: components swapped, added and removed while requests run.

use std::time::{Duration, Instant};

use flue_client::Client;
use flue_tests::{FakeProvider, Project, Reply, Server, Turn, guest};

/// Answers with the agent's instructions, which tell the two versions apart.
fn instructions(turn: &Turn) -> Reply {
    Reply::Text(turn.system.clone().unwrap_or_default())
}

/// Replaces a component the way `flue build` does: a temporary file, then a rename.
fn swap_in(project: &Project, name: &str, bytes: &[u8]) {
    let dest = project.path().join("agents").join(format!("{name}.wasm"));
    let tmp = dest.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, &dest).unwrap();
}

async fn agent_names(client: &Client) -> Vec<String> {
    client
        .agents()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect()
}

/// Polls until `check` holds, for up to two minutes (a debug build of the host takes
/// seconds to compile a component, and a Python agent's rebuild tens of seconds, on a
/// machine the rest of the suite keeps busy).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_component_serves_new_prompts_and_no_request_fails() {
    let fake = FakeProvider::start(instructions).await;
    let project = Project::new();
    let server = Server::start(project.path(), &fake, "dev", &[]).await;
    let client = Client::new(&server.url);
    let new_version = std::fs::read(guest("tests/guests/hostile")).unwrap();

    let workers: Vec<_> = (0..3)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(4) {
                    let agent = client.agent("support_assistant", "ticket-1");
                    let reply = agent.prompt("which version?", Some(&format!("w{w}"))).await;
                    answers.push(reply.expect("no request fails during the swap").text);
                }
                answers
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = server.stderr().len();
    swap_in(&project, "support_assistant", &new_version);

    for worker in workers {
        let answers = worker.await.unwrap();
        let is_new: Vec<bool> = answers
            .iter()
            .map(|a| a.starts_with("A test agent"))
            .collect();
        assert!(!is_new[0], "the first answers come from the old version");
        assert!(
            is_new[is_new.len() - 1],
            "the last answers come from the new version"
        );
        let switched = is_new.iter().position(|n| *n).unwrap();
        assert!(
            is_new[switched..].iter().all(|n| *n),
            "no answer from the old version after the swap"
        );
    }

    // One new file, one reload: reading it to load it is no change.
    let reloads = || {
        server.stderr()[before..]
            .matches("Reloaded agent support_assistant")
            .count()
    };
    eventually("the new version is reloaded", async || reloads() > 0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reloads(), 1, "{}", server.stderr());

    // A broken file leaves the previous version serving, and says so.
    swap_in(&project, "support_assistant", b"\0asm broken");
    eventually("the broken file is reported", async || {
        server.stderr().contains("was not loaded")
    })
    .await;
    assert!(
        server
            .stderr()
            .contains("the previous version keeps serving"),
        "{}",
        server.stderr()
    );
    // A new file that fails to load had no previous version to keep.
    swap_in(&project, "newcomer", b"\0asm broken too");
    let reported = || {
        let log = server.stderr();
        log.lines()
            .find(|l| l.contains("newcomer.wasm was not loaded"))
            .map(str::to_string)
    };
    eventually("the new broken file is reported", async || {
        reported().is_some()
    })
    .await;
    let line = reported().unwrap();
    assert!(!line.contains("keeps serving"), "{line}");
    let reply = client
        .agent("support_assistant", "ticket-2")
        .prompt("still there?", None)
        .await
        .unwrap();
    assert!(reply.text.starts_with("A test agent"), "{}", reply.text);

    // New and removed files show in the listing.
    swap_in(&project, "extra", &new_version);
    eventually("the new agent is listed", async || {
        agent_names(&client).await.contains(&"extra".to_string())
    })
    .await;
    std::fs::remove_file(project.path().join("agents/extra.wasm")).unwrap();
    eventually("the removed agent is gone", async || {
        !agent_names(&client).await.contains(&"extra".to_string())
    })
    .await;
}

/// A workflow crate written against the SDK that `flue new` puts in the project.
const FLOW_MANIFEST: &str = r#"[package]
name = "flow"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
flue-sdk = { path = "../../guest-sdk" }

[workspace]
"#;

const FLOW_LIB: &str = r#"use flue_sdk::prelude::*;

fn run(_payload: Value) -> Result<Value, String> {
    let answer = flue_sdk::prompt_agent("helper", "wf", "main", "hi")?;
    Ok(json!({"version": 1, "answer": answer}))
}

flue_sdk::export_workflow!(run);
"#;

/// Replaces `from` with `to` in a file.
fn edit(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// `flue new` scaffolds build outside this repository (an agent, a tenant's agent) beside
/// a workflow crate; `flue dev` serves all three, and one edit of a crate makes exactly
/// one build and one reload of it, after which the loop rests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_edit_is_one_build_and_one_reload_and_then_dev_rests() {
    let fake = FakeProvider::start(instructions).await;
    let project = Project::empty();
    let key = "acme-key";
    std::fs::write(
        project.path().join("flue.toml"),
        format!(
            "[tenants.acme]\n\n[[keys]]\nname = \"ops\"\nsha256 = \"{}\"\n\n\
             [[keys]]\nname = \"acme\"\nsha256 = \"{}\"\ntenant = \"acme\"\n",
            flue_host::access::hash_key("ops-key"),
            flue_host::access::hash_key(key)
        ),
    )
    .unwrap();
    let flue = |args: &[&str]| {
        std::process::Command::new(flue_tests::flue_binary())
            .arg("--project")
            .arg(project.path())
            .args(args)
            .env("CARGO_TARGET_DIR", flue_tests::workspace().join("target"))
            .status()
            .expect("flue runs")
    };
    assert!(flue(&["new", "helper"]).success());
    assert!(flue(&["new", "acme/support"]).success());
    let manifest =
        std::fs::read_to_string(project.path().join("agents/helper/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("path = \"../../guest-sdk\""),
        "the scaffold uses the project's own SDK: {manifest}"
    );
    let flow = project.path().join("workflows/flow");
    std::fs::create_dir_all(flow.join("src")).unwrap();
    std::fs::write(flow.join("Cargo.toml"), FLOW_MANIFEST).unwrap();
    std::fs::write(flow.join("src/lib.rs"), FLOW_LIB).unwrap();
    assert!(flue(&["build"]).success());
    for built in [
        "agents/helper.wasm",
        "agents/acme/support.wasm",
        "workflows/flow.wasm",
    ] {
        assert!(project.path().join(built).is_file(), "{built}");
    }

    let server = Server::start(project.path(), &fake, "dev", &[]).await;
    eventually("the workflow is listed at start", async || {
        server.stderr().contains("1 workflow(s): flow")
    })
    .await;
    let ops = Client::new(&server.url).with_token("ops-key");
    let ask = async || {
        ops.agent("helper", "acme")
            .prompt("who are you?", None)
            .await
            .unwrap()
            .text
    };
    assert!(ask().await.starts_with("You are a helpful assistant"));
    let tenant = Client::new(&server.url).with_token(key);
    let reply = tenant
        .agent("support", "t-1")
        .prompt("hi", None)
        .await
        .unwrap();
    assert!(reply.text.contains("assistant for t-1"), "{}", reply.text);
    let http = reqwest::Client::new();
    let listed: serde_json::Value = http
        .get(format!("{}/workflows", server.url))
        .bearer_auth("ops-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["workflows"][0]["name"], "flow", "{listed}");
    let run_flow = async || -> serde_json::Value {
        let response = http
            .post(format!("{}/workflows/flow?wait=result", server.url))
            .bearer_auth("ops-key")
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        response.json::<serde_json::Value>().await.unwrap()["result"].clone()
    };
    assert_eq!(run_flow().await["version"], 1);

    // One edit: one build, one reload, and nothing more while nothing changes.
    let before = server.stderr().len();
    let edited = Instant::now();
    edit(
        &project.path().join("agents/helper/src/lib.rs"),
        "You are a helpful assistant",
        "You are a rebuilt assistant",
    );
    while !ask().await.starts_with("You are a rebuilt assistant") {
        assert!(
            edited.elapsed() < Duration::from_secs(120),
            "the edited crate was not rebuilt and reloaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rest = Duration::from_secs(10).saturating_sub(edited.elapsed());
    tokio::time::sleep(rest.max(Duration::from_secs(3))).await;
    let log = server.stderr()[before..].to_string();
    assert_eq!(log.matches("Building").count(), 1, "{log}");
    assert_eq!(log.matches("Building helper").count(), 1, "{log}");
    assert_eq!(log.matches("Reloaded").count(), 1, "{log}");
    assert_eq!(log.matches("Reloaded agent helper").count(), 1, "{log}");

    // A workflow crate is rebuilt and reloaded the same way.
    edit(&flow.join("src/lib.rs"), "\"version\": 1", "\"version\": 2");
    let deadline = Instant::now() + Duration::from_secs(120);
    while run_flow().await["version"] != 2 {
        assert!(Instant::now() < deadline, "the workflow was not rebuilt");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.stderr().contains("Reloaded workflow flow"));

    // A crate `flue new` writes while `flue dev` runs is built and served, in a tenant's
    // folder too.
    assert!(flue(&["new", "later"]).success());
    assert!(flue(&["new", "acme/later"]).success());
    let deadline = Instant::now() + Duration::from_secs(120);
    let later = || "later".to_string();
    while !(agent_names(&ops).await.contains(&later())
        && agent_names(&tenant).await.contains(&later()))
    {
        assert!(
            Instant::now() < deadline,
            "the new crates were not built: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_tenants_folder_is_watched_too() {
    let fake = FakeProvider::start(instructions).await;
    let project = Project::empty();
    let key = "acme-key";
    std::fs::write(
        project.path().join("flue.toml"),
        format!(
            "[tenants.acme]\n\n[[keys]]\nname = \"acme\"\nsha256 = \"{}\"\ntenant = \"acme\"\n",
            flue_host::access::hash_key(key)
        ),
    )
    .unwrap();
    let server = Server::start(project.path(), &fake, "dev", &[]).await;
    let client = Client::new(&server.url).with_token(key);
    assert!(agent_names(&client).await.is_empty());

    // The folder exists once `flue dev` runs; a component dropped in it is served.
    swap_in(
        &project,
        "acme/support",
        &std::fs::read(guest("agents/support_assistant")).unwrap(),
    );
    eventually("acme's new agent is listed", async || {
        agent_names(&client).await == ["support"]
    })
    .await;
    let reply = client
        .agent("support", "t-1")
        .prompt("hi", None)
        .await
        .unwrap();
    assert!(reply.text.contains("support"), "{}", reply.text);

    std::fs::remove_file(project.path().join("agents/acme/support.wasm")).unwrap();
    eventually("acme's agent is gone", async || {
        agent_names(&client).await.is_empty()
    })
    .await;
}

/// `flue dev` applies a changed `flue.toml` by restarting in place with its socket kept
/// open, so that requests sent meanwhile are answered; a `flue.toml` with a mistake is
/// reported and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_flue_toml_is_applied_and_no_request_fails() {
    let fake = FakeProvider::start(instructions).await;
    let project = Project::new();
    let key = |name: &str| {
        format!(
            "[[keys]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
            flue_host::access::hash_key(&format!("{name}-key"))
        )
    };
    let toml = project.path().join("flue.toml");
    std::fs::write(&toml, key("first")).unwrap();
    let server = Server::start(project.path(), &fake, "dev", &[]).await;
    let first = Client::new(&server.url).with_token("first-key");
    let second = Client::new(&server.url).with_token("second-key");
    let ask = async |client: &Client| {
        client
            .agent("support_assistant", "t-1")
            .prompt("hi", None)
            .await
    };
    ask(&first).await.unwrap();
    assert!(ask(&second).await.is_err(), "no such key yet");

    std::fs::write(&toml, format!("[limits]\nmemory_mb = 0\n{}", key("first"))).unwrap();
    eventually("the mistake is reported", async || {
        server
            .stderr()
            .contains("limits.memory_mb is out of range: at least 1")
    })
    .await;
    ask(&first).await.unwrap();

    // A new connection for each request: one kept alive and idle when the restart comes
    // is closed, as on any server restart (a client retries on a new one). The worker
    // runs from before the change until after the new settings serve.
    let applied = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let url = format!("{}/agents/support_assistant/t-2", server.url);
        let applied = applied.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let send = || {
                http.post(&url)
                    .bearer_auth("first-key")
                    .json(&serde_json::json!({"message": "hi"}))
                    .send()
            };
            let mut answered = 0;
            while !applied.load(std::sync::atomic::Ordering::SeqCst) {
                // A connection accepted in the instant the old process stops, before its
                // request was read, is closed unanswered; the request never ran, and a
                // client sends it again on a new connection.
                let reply = match send().await {
                    Ok(reply) => reply,
                    Err(e) if e.status().is_none() => send().await.expect("the retry is answered"),
                    Err(e) => panic!("{e}"),
                };
                assert_eq!(
                    reply.status(),
                    200,
                    "no request fails while flue dev restarts"
                );
                answered += 1;
            }
            answered
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(&toml, format!("{}{}", key("first"), key("second"))).unwrap();
    eventually("the new key is accepted", async || {
        ask(&second).await.is_ok()
    })
    .await;
    applied.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(worker.await.unwrap() > 0);
    assert!(
        server.stderr().contains("flue.toml changed: restarting"),
        "{}",
        server.stderr()
    );
}

/// In `flue dev`, what agents log with `host::info` shows on the terminal without
/// `RUST_LOG`.
#[tokio::test]
async fn agent_logs_show_in_flue_dev() {
    let fake = FakeProvider::start(|turn: &Turn| match &turn.last_tool_result {
        Some(_) => Reply::Text("done".into()),
        None => Reply::ToolCall {
            name: "remember".into(),
            args: serde_json::json!({"key": "k", "value": "v"}),
        },
    })
    .await;
    let project = Project::empty();
    project.add_agent("host_calls", &guest("tests/guests/host_calls"));
    let server = Server::start(project.path(), &fake, "dev", &[]).await;
    let client = Client::new(&server.url);
    let reply = client
        .agent("host_calls", "i")
        .prompt("store it", None)
        .await
        .unwrap();
    assert_eq!(reply.text, "done");
    eventually("the agent's log line shows", async || {
        server.stderr().contains("stored a value")
    })
    .await;
}

const PY_HELPER: &str = r#"from flue import create_agent

default = create_agent(lambda ctx: {
    "model": "anthropic/claude-haiku-4-5",
    "instructions": "version one",
})
"#;

/// A Python agent file is rebuilt and swapped in as it is edited, while requests run
/// and none fails; a syntax error is reported with the file and line, and the version
/// serving keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_python_agent_is_served_and_a_syntax_error_keeps_the_old_one() {
    let _turn = flue_tests::heavy_turn().await;
    let fake = FakeProvider::start(instructions).await;
    let project = Project::new();
    let source = project.path().join("agents/helper.py");
    std::fs::write(&source, PY_HELPER).unwrap();
    let target = flue_tests::workspace().join("target");
    let built = flue_host::build::component(&source, &target).expect("the agent builds");
    std::fs::copy(built, project.path().join("agents/helper.wasm")).unwrap();
    let server = Server::start(project.path(), &fake, "dev", &[]).await;
    let client = Client::new(&server.url);
    let ask = async || {
        let reply = client.agent("helper", "t").prompt("which?", None).await;
        reply
            .expect("no request fails while the agent is rebuilt")
            .text
    };
    assert_eq!(ask().await, "version one");

    let edited = Instant::now();
    edit(&source, "version one", "version two");
    while ask().await != "version two" {
        assert!(
            edited.elapsed() < Duration::from_secs(120),
            "{}",
            server.stderr()
        );
    }
    eprintln!("edit -> served: {:?}", edited.elapsed());

    let before = server.stderr().len();
    edit(
        &source,
        "create_agent(lambda ctx: {",
        "create_agent(lambda ctx {",
    );
    eventually("the syntax error is reported", async || {
        server.stderr()[before..].contains("failed")
    })
    .await;
    let log = server.stderr()[before..].to_string();
    assert!(
        log.contains(&format!("{}\", line 3", source.display())) && log.contains("SyntaxError"),
        "the error names the file and line: {log}"
    );
    assert_eq!(ask().await, "version two", "the old version keeps serving");
}
