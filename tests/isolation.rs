//! Misbehaving guests fail their own call only: the host carries on, other agents keep
//! answering, and a failed instance is re-created on next use.

use std::time::{Duration, Instant};

use flue_host::{Error, Host};
use flue_tests::{FakeProvider, Project, Reply, Turn, ticket_script};

/// The model calls the tool named by the prompt ("call spin"), then repeats its result.
fn tool_by_prompt(turn: &Turn) -> Reply {
    if let Some(result) = &turn.last_tool_result {
        return Reply::Text(format!("tool said: {result}"));
    }
    match turn
        .last_user_text
        .as_deref()
        .and_then(|t| t.strip_prefix("call "))
    {
        Some(tool) => Reply::ToolCall {
            name: tool.to_string(),
            args: serde_json::json!({}),
        },
        None => ticket_script(turn),
    }
}

async fn call(host: &Host, id: &str, tool: &str) -> Result<String, Error> {
    let harness = host.init_agent("hostile", id).await?;
    Ok(harness
        .session("s")
        .prompt(&format!("call {tool}"))
        .await?
        .text)
}

async fn healthy_answer(host: &Host) -> String {
    let session = host
        .init_agent("support_assistant", "ticket-1")
        .await
        .unwrap()
        .session("s");
    session
        .prompt("status?")
        .await
        .expect("the healthy agent answers")
        .text
}

fn guest_error(result: Result<String, Error>) -> String {
    match result {
        Err(e @ Error::Guest { .. }) => e.to_string(),
        other => panic!("expected a guest error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_interrupted_while_others_keep_answering() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;

    let started = Instant::now();
    let spinning = tokio::spawn({
        let host = host.clone();
        async move { call(&host, "a", "spin").await }
    });
    // While the guest spins, a healthy agent answers promptly, more than once.
    for _ in 0..3 {
        let t = Instant::now();
        assert!(healthy_answer(&host).await.contains("ticket-1"));
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "healthy prompt took {:?}",
            t.elapsed()
        );
    }
    let error = guest_error(spinning.await.unwrap());
    assert!(error.contains("CPU limit"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "interrupted after {:?}",
        started.elapsed()
    );

    // The trapped instance was discarded; the same id works again with a fresh one.
    assert_eq!(call(&host, "a", "whoami").await.unwrap(), "tool said: a");
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_cap() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let error = guest_error(call(&host, "b", "hog").await);
    assert!(error.contains("memory limit of 32 MiB"), "{error}");
    assert_eq!(call(&host, "b", "whoami").await.unwrap(), "tool said: b");
    assert!(healthy_answer(&host).await.contains("ticket-1"));
}

#[tokio::test]
async fn a_panic_reports_the_guest_message() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let error = guest_error(call(&host, "c", "boom").await);
    assert!(error.contains("boom from the guest"), "{error}");
    assert!(healthy_answer(&host).await.contains("ticket-1"));
}

#[tokio::test]
async fn a_create_that_never_returns_fails_that_instance_only() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let error = match host.init_agent("hostile", "loop-in-create").await {
        Err(e @ Error::Guest { .. }) => e.to_string(),
        Err(e) => panic!("expected a guest error, got {e}"),
        Ok(_) => panic!("create should have been interrupted"),
    };
    assert!(error.contains("CPU limit"), "{error}");
    assert_eq!(call(&host, "d", "whoami").await.unwrap(), "tool said: d");
}

#[tokio::test]
async fn files_that_are_not_agents_are_reported_and_skipped() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    project.add_bytes("random", &[0x13, 0x37, 0xca, 0xfe, 0x00, 0x01, 0x02]);
    project.add_bytes("truncated", b"\0asm\x0d\x00\x01\x00\x01\xff");
    project.add_bytes("core_module", b"\0asm\x01\x00\x00\x00");
    project.add_bytes("empty_component", b"\0asm\x0d\x00\x01\x00");
    project.add_bytes("bad name!", b"\0asm\x0d\x00\x01\x00");
    let host = project.host(&fake).await;

    let mut problems: Vec<String> = host
        .load_problems()
        .iter()
        .map(|p| p.file.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    problems.sort();
    assert_eq!(
        problems,
        [
            "bad name!",
            "core_module",
            "empty_component",
            "random",
            "truncated"
        ]
    );
    for problem in host.load_problems() {
        assert!(!problem.reason.is_empty());
    }
    let names: Vec<String> = host.agents().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["hostile", "support_assistant"]);
    assert!(healthy_answer(&host).await.contains("ticket-1"));
}
