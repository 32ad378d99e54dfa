//! Misbehaving guests fail their own call only: the host carries on, other agents keep
//! answering, and a failed instance is re-created on next use.

use std::time::{Duration, Instant};

use flue_host::{Error, Host};
use flue_tests::hostile::{ATTACKS, Attack, TOOL_FAILED, call, healthy_answer, tool_by_prompt};
use flue_tests::{FakeProvider, Project, ticket_script};

/// The error of a prompt whose guest passed a limit or could not start.
fn guest_error(result: Result<String, Error>) -> String {
    match result {
        Err(e @ Error::Guest { .. }) => e.to_string(),
        other => panic!("expected a guest error, got {other:?}"),
    }
}

/// What the model was told when the guest trapped in its tool: the prompt went on, and
/// the instance is replaced.
fn tool_trap(result: Result<String, Error>) -> String {
    match result {
        Ok(text) if text.starts_with(TOOL_FAILED) => text,
        other => panic!("expected the tool's trap as its result, got {other:?}"),
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
        started.elapsed() < Duration::from_secs(6),
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
    let error = tool_trap(call(&host, "c", "boom").await);
    assert!(error.contains("boom from the guest"), "{error}");
    assert!(
        !error.contains(".rs:") && !error.contains("RUST_BACKTRACE"),
        "no source path or backtrace hint reaches the caller: {error}"
    );
    assert!(healthy_answer(&host).await.contains("ticket-1"));
}

/// A guest may write to stderr on every call, past what is kept of it (16 KiB), and a
/// later panic is still reported with its message.
#[tokio::test]
async fn stderr_written_on_every_call_never_fills_up() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    for _ in 0..4 {
        assert_eq!(
            call(&host, "e", "chatter").await.unwrap(),
            "tool said: chattered"
        );
    }
    let error = tool_trap(call(&host, "e", "boom").await);
    assert!(error.contains("boom from the guest"), "{error}");
}

/// Starts the hostile instance whose `create` loops, and returns the guest error it
/// fails with.
async fn looping_create_error(host: &Host) -> Error {
    match host.init_agent("hostile", "loop-in-create").await {
        Err(e @ Error::Guest { .. }) => e,
        Err(e) => panic!("expected a guest error, got {e}"),
        Ok(_) => panic!("create should have been interrupted"),
    }
}

#[tokio::test]
async fn a_create_that_never_returns_fails_that_instance_only() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let error = looping_create_error(&host).await.to_string();
    assert!(error.contains("CPU limit"), "{error}");
    assert_eq!(call(&host, "d", "whoami").await.unwrap(), "tool said: d");
}

#[tokio::test]
async fn an_instance_that_keeps_failing_to_start_is_backed_off() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let start = || async {
        let error = looping_create_error(&host).await;
        assert_eq!(
            error.limit(),
            Some(flue_host::Limit::CpuMsPerCall),
            "{error}"
        );
        error.to_string()
    };
    let backed_off = |error: &str, failures: u32| {
        error.contains(&format!(
            "start failures in a row: {failures}; next attempt in"
        ))
    };

    // The first failure is the guest's own; right after it, the instance is not started
    // again: the caller gets the same failure at once, with when the next attempt is due.
    let error = start().await;
    assert!(
        error.contains("CPU limit") && !error.contains("start failures"),
        "{error}"
    );
    let error = start().await;
    assert!(
        error.contains("CPU limit") && backed_off(&error, 1),
        "{error}"
    );

    // Once the pause is over the guest runs again, and its next failure doubles the pause.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let error = start().await;
    assert!(!error.contains("start failures"), "{error}");
    assert!(backed_off(&start().await, 2));

    // A new version of the agent is started at once; other instances were never held up.
    let path = project.path().join("agents/hostile.wasm");
    let mut bytes = std::fs::read(&path).unwrap();
    // A custom section named "v" holding "2": the same agent, as a new version.
    bytes.extend_from_slice(&[0, 3, 1, b'v', b'2']);
    std::fs::write(&path, bytes).unwrap();
    host.reload_agent(&path).await.unwrap();
    assert!(!start().await.contains("start failures"));
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

#[tokio::test]
async fn a_stack_overflow_traps_that_call_only() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let error = tool_trap(call(&host, "e", "recurse").await);
    // Rust keeps its frames in linear memory, so the overflow shows as an access out of
    // bounds; a guest whose frames are on the wasm stack sees "call stack exhausted".
    assert!(
        error.contains("out of bounds memory access") || error.contains("call stack exhausted"),
        "{error}"
    );
    assert_eq!(call(&host, "e", "whoami").await.unwrap(), "tool said: e");
    assert!(healthy_answer(&host).await.contains("ticket-1"));
}

#[tokio::test]
async fn answers_too_large_or_not_text_are_refused() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let error = guest_error(call(&host, "f", "flood").await);
    assert!(
        error.contains("tool 'flood' returned 8.0 MiB; at most 1.0 MiB is allowed"),
        "{error}"
    );
    let error = tool_trap(call(&host, "f", "garbage").await);
    assert!(error.contains("utf-8"), "{error}");
    let error = guest_error(call(&host, "huge-config", "whoami").await);
    assert!(
        error.contains("configuration (as JSON) is over 1.0 MiB, the most allowed"),
        "{error}"
    );
    let error = guest_error(call(&host, "long-create-error", "whoami").await);
    assert!(
        error.contains("its create error text is 1.0 MiB; at most 16.0 KiB is allowed"),
        "{error}"
    );
    let error = guest_error(call(&host, "bad-schema", "whoami").await);
    assert!(
        error.contains("tool 'broken' has parameters that are not a JSON Schema object"),
        "{error}"
    );
    // The model never saw the refused answers: no request carries them.
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.body.to_string().contains("yyyyyyyy"))
    );
    assert_eq!(call(&host, "f", "whoami").await.unwrap(), "tool said: f");
    assert!(healthy_answer(&host).await.contains("ticket-1"));
}

#[tokio::test]
async fn sleeping_past_every_bound_is_cut_off_by_the_wall_clock() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let started = Instant::now();
    // Sleeping uses no CPU, so only the wall-clock bound (6 s in these tests) can stop it.
    let error = guest_error(call(&host, "g", "nap").await);
    assert!(error.contains("did not answer within 6s"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(call(&host, "g", "whoami").await.unwrap(), "tool said: g");
}

#[tokio::test]
async fn a_guest_reaches_no_files_environment_or_sockets() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    // A listener the guest is told about: nothing may connect to it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let text = call(&host, "h", &format!("escape {{\"port\": {port}}}"))
        .await
        .expect("the probe itself runs");
    let report: serde_json::Value =
        serde_json::from_str(text.strip_prefix("tool said: ").unwrap()).unwrap();
    let host_dir = std::env::current_dir().unwrap().display().to_string();
    assert_ne!(report["cwd"]["ok"], host_dir.as_str(), "{report}");
    for reached in ["file", "listing", "socket", "lookup"] {
        assert!(
            report[reached]["error"].is_string(),
            "{reached} was reachable: {report}"
        );
    }
    assert_eq!(report["env"], serde_json::json!([]), "{report}");
    assert!(
        listener.accept().is_err(),
        "the guest connected to a socket"
    );
}

#[tokio::test]
async fn a_component_of_another_world_is_not_an_agent() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    project.add_agent(
        "a_workflow",
        &flue_tests::guest("tests/guests/release_flow"),
    );
    let host = project.host(&fake).await;
    let problems = host.load_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].reason.contains("not a valid agent component")
            && problems[0].reason.contains("flue:agent/agents"),
        "{}",
        problems[0].reason
    );
    assert!(healthy_answer(&host).await.contains("ticket-1"));
}

#[tokio::test]
async fn a_component_of_the_old_contract_is_refused_once_and_told_to_rebuild() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    let old = flue_tests::guest("tests/guests/old_contract");
    project.add_agent("old", &old);
    let refusal = |host: &Host| {
        let problems = host.load_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems[0].reason.clone()
    };
    let first = refusal(&project.host(&fake).await);
    assert!(
        first.contains("flue:agent@0.1.0") && first.contains("rebuild"),
        "{first}"
    );
    let digest = flue_host::runtime::digest(&std::fs::read(&old).unwrap());
    // Kept per world, memory cap (the test hosts' 32 MiB), host and WIT version.
    let name = format!(
        "{digest}.refused-agent-32mib-{}-wit{}",
        env!("CARGO_PKG_VERSION"),
        flue_host::runtime::WIT_VERSION
    );
    let remembered = walkdir(&flue_tests::compile_cache())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == name))
        .count();
    assert_eq!(
        remembered, 1,
        "the refusal is kept in the compile cache: {name}"
    );
    assert_eq!(refusal(&project.host(&fake).await), first);
}

/// Every file under `dir`, at any depth.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type().is_ok_and(|t| t.is_dir()) {
            true => files.extend(walkdir(&entry.path())),
            false => files.push(entry.path()),
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_agent_answers_while_every_kind_of_guest_misbehaves() {
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let attack = Attack::start(&host, &ATTACKS);
    // `nap` sleeps until the wall bound (6 s) stops it; stopping the attack waits for that.
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_secs(4) {
        assert!(healthy_answer(&host).await.contains("ticket-1"));
        answered += 1;
    }
    for (tool, (calls, failures)) in ATTACKS.iter().zip(attack.stop().await) {
        assert!(
            calls > 0 && failures == calls,
            "{tool}: {failures} of {calls} calls failed"
        );
    }
    assert!(answered > 100, "only {answered} healthy answers");
}
