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

/// Polls until `check` holds, for up to five seconds.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
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

    // A broken file leaves the previous version serving.
    swap_in(&project, "support_assistant", b"\0asm broken");
    tokio::time::sleep(Duration::from_millis(500)).await;
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

/// `flue dev` rebuilds an agent crate when its source changes and serves the new build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_crate_is_rebuilt_and_served() {
    let fake = FakeProvider::start(instructions).await;
    let project = Project::empty();
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
    assert!(flue(&["build"]).success());
    let server = Server::start(project.path(), &fake, "dev", &[]).await;
    let client = Client::new(&server.url);
    let ask = async || {
        client
            .agent("helper", "acme")
            .prompt("who are you?", None)
            .await
            .unwrap()
            .text
    };
    assert!(ask().await.starts_with("You are a helpful assistant"));

    let source = project.path().join("agents/helper/src/lib.rs");
    let edited = std::fs::read_to_string(&source)
        .unwrap()
        .replace("You are a helpful assistant", "You are a rebuilt assistant");
    std::fs::write(&source, edited).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ask().await.starts_with("You are a rebuilt assistant") {
        assert!(
            Instant::now() < deadline,
            "the edited crate was not rebuilt and reloaded"
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
            flue_host::server::auth::hash_key(key)
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
