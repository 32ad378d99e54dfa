//! The agent model end to end against the scripted provider: skills loaded on demand,
//! subagent tasks with their events and depth bound, compaction, sandboxes and their
//! file tools, and guest-side model calls counted in usage.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flue_host::{Event, Host};
use flue_tests::{FakeProvider, Project, Reply, Turn, guest};
use serde_json::{Value, json};

fn features() -> PathBuf {
    guest("tests/guests/features")
}

/// A fake provider running `script`, and every turn it was asked.
async fn recorded(
    script: impl Fn(&Turn) -> Reply + Send + Sync + 'static,
) -> (FakeProvider, Arc<Mutex<Vec<Turn>>>) {
    let turns = Arc::new(Mutex::new(Vec::new()));
    let seen = turns.clone();
    let fake = FakeProvider::start(move |turn: &Turn| {
        seen.lock().unwrap().push(turn.clone());
        script(turn)
    })
    .await;
    (fake, turns)
}

fn call(name: &str, args: Value) -> Reply {
    Reply::ToolCall {
        name: name.into(),
        args,
    }
}

/// How many tool results the request carries after its last plain user message.
fn results_so_far(turn: &Turn) -> usize {
    let messages = turn.raw["messages"].as_array().cloned().unwrap_or_default();
    let is_plain_user = |m: &Value| m["role"] == "user" && m["content"].is_string();
    let start = messages.iter().rposition(is_plain_user).unwrap_or(0);
    messages[start..]
        .iter()
        .filter(|m| m["role"] == "assistant")
        .count()
}

/// Streams a prompt and returns its answer and the (name, is_error, result) of each tool.
async fn run_tools(
    host: &Host,
    agent: &str,
    session: &str,
    message: &str,
) -> (String, Vec<(String, bool, String)>) {
    let session = host.init_agent(agent, "i").await.unwrap().session(session);
    let mut tools = Vec::new();
    let result = session
        .stream(message, |e| {
            if let Event::ToolEnd {
                name,
                is_error,
                result,
                ..
            } = e
            {
                tools.push((name, is_error, result));
            }
        })
        .await
        .unwrap();
    (result.text, tools)
}

#[tokio::test]
async fn skills_are_listed_loaded_on_demand_and_run_by_name() {
    let (fake, turns) = recorded(|turn| match turn.last_tool_result.as_deref() {
        Some(body) => Reply::Text(format!("loaded: {body}")),
        None => match turn.last_user_text.as_deref() {
            Some(text) if text.starts_with("Follow the skill") => {
                Reply::Text(format!("ran: {text}"))
            }
            _ => call("skill", json!({"name": "code-review"})),
        },
    })
    .await;
    let project = Project::empty();
    project.add_agent("skilled", &features());
    let dir = project.path().join("skills/code-review");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("SKILL.md"),
        "---\nname: code-review\ndescription: Review a change carefully.\n---\nCheck the tests first.\n",
    )
    .unwrap();
    let host = project.host(&fake).await;
    let session = host
        .init_agent("skilled", "s1")
        .await
        .unwrap()
        .session("main");

    let answer = session.prompt("review my change").await.unwrap();
    assert_eq!(answer.text, "loaded: Check the tests first.");
    let first = turns.lock().unwrap()[0].clone();
    let system = first.system.unwrap();
    assert!(system.starts_with("Use your skills."), "{system}");
    assert!(
        system.contains("- code-review: Review a change carefully."),
        "{system}"
    );
    assert!(
        system.contains("- greeting: How to greet someone."),
        "{system}"
    );
    assert!(
        !system.contains("Check the tests first."),
        "bodies load on demand"
    );
    assert!(first.tool_names.contains(&"skill".to_string()));

    let ran = session
        .skill("greeting", json!({"name": "Ada"}))
        .await
        .unwrap();
    assert!(ran.text.contains("Say hello warmly."), "{}", ran.text);
    assert!(ran.text.contains("\"Ada\""), "{}", ran.text);
    let unknown = session.skill("nope", Value::Null).await.unwrap_err();
    assert!(
        unknown.to_string().contains("greeting, code-review"),
        "{unknown}"
    );

    let bare = Project::empty();
    bare.add_agent("skilled", &features());
    let host = bare.host(&fake).await;
    let missing = host
        .init_agent("skilled", "s1")
        .await
        .err()
        .expect("no SKILL.md");
    assert!(
        missing.to_string().contains("skills/code-review/SKILL.md"),
        "{missing}"
    );
}

#[tokio::test]
async fn a_subagent_task_runs_in_a_child_session_and_reports_events() {
    let (fake, turns) = recorded(|turn| {
        let system = turn.system.clone().unwrap_or_default();
        let done = turn.last_tool_result.clone();
        if system == "You research facts." {
            return match done {
                Some(fact) => Reply::Text(format!("found {fact}")),
                None => call("lookup", json!({})),
            };
        }
        match (done, turn.last_user_text.as_deref()) {
            (Some(result), _) => Reply::Text(format!("parent got: {result}")),
            (None, Some("research")) => call(
                "task",
                json!({"subagent": "researcher", "prompt": "find the fact"}),
            ),
            (None, _) if turn.tool_names.contains(&"task".to_string()) => {
                call("task", json!({"subagent": "nested", "prompt": "go deep"}))
            }
            (None, _) => Reply::Text("bottom".into()),
        }
    })
    .await;
    let project = Project::empty();
    project.add_agent("delegator", &features());
    let host = project.host(&fake).await;
    let harness = host.init_agent("delegator", "t1").await.unwrap();

    let mut events = Vec::new();
    let result = harness
        .session("main")
        .stream("research", |e| events.push(e))
        .await
        .unwrap();
    assert_eq!(result.text, "parent got: found fact-42");
    let child = match &events[..] {
        [
            Event::Start { .. },
            Event::ToolStart { name, .. },
            Event::TaskStart {
                subagent,
                prompt,
                session,
                ..
            },
            Event::TaskEnd {
                result,
                is_error: false,
                ..
            },
            Event::ToolEnd {
                result: tool_result,
                ..
            },
            ..,
        ] => {
            assert_eq!(
                (name.as_str(), subagent.as_str(), prompt.as_str()),
                ("task", "researcher", "find the fact")
            );
            assert_eq!(
                (result.as_str(), tool_result.as_str()),
                ("found fact-42", "found fact-42")
            );
            session.clone()
        }
        other => panic!("unexpected events {other:?}"),
    };
    let child_history = harness.session(&child).history().await.unwrap();
    assert_eq!(
        child_history.len(),
        4,
        "the task, the lookup call and result, the answer"
    );
    assert_eq!(harness.session("main").history().await.unwrap().len(), 4);
    let child_turn = turns
        .lock()
        .unwrap()
        .iter()
        .find(|t| t.system.as_deref() == Some("You research facts."))
        .cloned()
        .unwrap();
    assert_eq!(
        child_turn.tool_names,
        ["lookup"],
        "the helper has its own tools"
    );
    assert_eq!(
        child_turn.model, "claude-haiku-4-5",
        "and inherits the model"
    );
    // Counted: the parent's two calls and the helper's two.
    assert!(result.usage.output >= 4);

    let deep = harness.session("deep").prompt("go deep").await.unwrap();
    assert_eq!(deep.text, "parent got: parent got: parent got: bottom");
    let without_task = turns
        .lock()
        .unwrap()
        .iter()
        .filter(|t| {
            t.last_user_text.as_deref() == Some("go deep")
                && !t.tool_names.contains(&"task".to_string())
        })
        .count();
    assert_eq!(
        without_task, 1,
        "at the depth bound the task tool is not offered"
    );
}

#[tokio::test]
async fn compaction_keeps_requests_under_the_threshold() {
    let (fake, turns) = recorded(|turn| {
        if turn
            .system
            .as_deref()
            .is_some_and(|s| s.starts_with("You compress conversations"))
        {
            let transcript = turn.last_user_text.clone().unwrap_or_default();
            let topics: Vec<&str> = transcript
                .split_whitespace()
                .filter(|w| w.starts_with("topic-"))
                .collect();
            Reply::Text(format!("SUMMARY of {}", topics.join(" ")))
        } else {
            Reply::Text(format!("ok {}", turn.messages))
        }
    })
    .await;
    let project = Project::empty();
    project.add_agent("compacting", &features());
    let host = project.host(&fake).await;
    let session = host
        .init_agent("compacting", "c1")
        .await
        .unwrap()
        .session("long");
    for i in 0..8 {
        let message = format!("topic-{i} {}", "x".repeat(600));
        let answer = session.prompt(&message).await.unwrap();
        assert!(answer.text.starts_with("ok "), "{}", answer.text);
    }
    let turns = turns.lock().unwrap().clone();
    let (summaries, chats): (Vec<&Turn>, Vec<&Turn>) = turns.iter().partition(|t| {
        t.system
            .as_deref()
            .is_some_and(|s| s.starts_with("You compress"))
    });
    assert!(summaries.len() >= 2, "{} summaries", summaries.len());
    for chat in &chats {
        let chars: usize = chat.raw["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().map_or(0, str::len))
            .sum();
        assert!(chars / 4 <= 400, "a request of ~{} tokens", chars / 4);
    }
    let last = chats.last().unwrap();
    let first_message = last.raw["messages"][0]["content"].as_str().unwrap();
    assert!(first_message.contains("SUMMARY of"), "{first_message}");
    assert!(
        first_message.contains("topic-5"),
        "the latest summary covers recent topics: {first_message}"
    );
    let history = session.history().await.unwrap();
    let users = history
        .iter()
        .filter(|m| matches!(m, flue_host::models::Message::User { .. }))
        .count();
    assert_eq!(users, 8, "the full history stays in the store");
}

#[tokio::test]
async fn a_virtual_sandbox_keeps_files_with_the_session() {
    let steps = [
        call(
            "write",
            json!({"path": "notes/a.txt", "content": "hello world\nsecond line\n"}),
        ),
        call(
            "edit",
            json!({"path": "/workspace/notes/a.txt", "old_string": "hello", "new_string": "goodbye"}),
        ),
        call("read", json!({"path": "notes/a.txt"})),
        call("ls", json!({})),
        call("glob", json!({"pattern": "**/*.txt"})),
        call("grep", json!({"pattern": "good"})),
        call(
            "edit",
            json!({"path": "notes/a.txt", "old_string": "absent", "new_string": "x"}),
        ),
        call("read", json!({"path": "../../etc/passwd"})),
        call("read", json!({"path": "/etc/passwd"})),
    ];
    let (fake, _) = recorded(move |turn| {
        if turn.last_user_text.as_deref() == Some("read it") {
            return match turn.last_tool_result.clone() {
                Some(text) => Reply::Text(text),
                None => call("read", json!({"path": "notes/a.txt"})),
            };
        }
        steps
            .get(results_so_far(turn))
            .cloned()
            .unwrap_or(Reply::Text("done".into()))
    })
    .await;
    let project = Project::empty();
    project.add_agent("virtual_fs", &features());
    {
        let host = project.host(&fake).await;
        let (text, tools) = run_tools(&host, "virtual_fs", "main", "do files").await;
        assert_eq!(text, "done");
        let expect = [
            ("write", false, "wrote 24 bytes to notes/a.txt"),
            ("edit", false, "replaced 1 occurrence(s) in notes/a.txt"),
            ("read", false, "     1\tgoodbye world\n     2\tsecond line"),
            ("ls", false, "notes/"),
            ("glob", false, "notes/a.txt"),
            ("grep", false, "notes/a.txt:1: goodbye world"),
            ("edit", true, "old_string does not occur in notes/a.txt"),
            ("read", true, "'../../etc/passwd' escapes the sandbox"),
            (
                "read",
                true,
                "'/etc/passwd' is outside the sandbox (its root is /workspace)",
            ),
        ];
        let got: Vec<(&str, bool, &str)> = tools
            .iter()
            .map(|(n, e, r)| (n.as_str(), *e, r.as_str()))
            .collect();
        assert_eq!(got, expect);
    }
    let host = project.host(&fake).await;
    let (text, _) = run_tools(&host, "virtual_fs", "main", "read it").await;
    assert_eq!(
        text, "     1\tgoodbye world\n     2\tsecond line",
        "kept across a restart"
    );
    let (text, _) = run_tools(&host, "virtual_fs", "other", "read it").await;
    assert_eq!(
        text, "'notes/a.txt' does not exist",
        "each session has its own tree"
    );
}

fn local_project(allow: bool) -> (Project, PathBuf) {
    let project = Project::empty();
    project.add_agent("local_fs", &features());
    project.add_agent("plain", &features());
    let root = project.path().join("repo");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "fn answer() -> u32 { 41 }\n").unwrap();
    let outside = project.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    let mut toml = String::from("[agents.local_fs]\ncommands = [\"ls\", \"cat\"]\n");
    if allow {
        toml.push_str(&format!(
            "local_dirs = [{:?}]\n",
            root.display().to_string()
        ));
    }
    std::fs::write(project.path().join("flue.toml"), toml).unwrap();
    (project, root)
}

async fn local_host(project: &Project, fake: &FakeProvider) -> Host {
    let mut options = project.options(fake);
    options.config = flue_host::ProjectConfig::load(project.path()).unwrap();
    Host::open(options).await.unwrap()
}

#[tokio::test]
async fn a_local_sandbox_works_in_its_folder_and_refuses_escapes() {
    let steps = [
        call("read", json!({"path": "src/lib.rs"})),
        call(
            "edit",
            json!({"path": "src/lib.rs", "old_string": "41", "new_string": "42"}),
        ),
        call("grep", json!({"pattern": "4\\d", "glob": "**/*.rs"})),
        call("bash", json!({"command": "ls src"})),
        call("bash", json!({"command": "cat link/secret.txt"})),
        call("bash", json!({"command": "cat ../outside/secret.txt"})),
        call("bash", json!({"command": "rm -rf src"})),
        call("read", json!({"path": "link/secret.txt"})),
        call("write", json!({"path": "link/planted.txt", "content": "x"})),
        call("read", json!({"path": "../outside/secret.txt"})),
    ];
    let (fake, turns) = recorded(move |turn| {
        steps
            .get(results_so_far(turn))
            .cloned()
            .unwrap_or(Reply::Text("done".into()))
    })
    .await;
    let (project, root) = local_project(true);
    let host = local_host(&project, &fake).await;
    let (text, tools) = run_tools(&host, "local_fs", "main", "fix it").await;
    assert_eq!(text, "done");
    let got: Vec<(&str, bool, &str)> = tools
        .iter()
        .map(|(n, e, r)| (n.as_str(), *e, r.as_str()))
        .collect();
    assert_eq!(got[0], ("read", false, "     1\tfn answer() -> u32 { 41 }"));
    assert_eq!(
        got[1],
        ("edit", false, "replaced 1 occurrence(s) in src/lib.rs")
    );
    assert_eq!(
        got[2],
        ("grep", false, "src/lib.rs:1: fn answer() -> u32 { 42 }")
    );
    assert_eq!(got[3], ("bash", false, "lib.rs\n"));
    for (i, needle) in [
        (4, "outside"),
        (5, "escapes"),
        (6, "'rm' is not allowed"),
        (7, "outside"),
        (8, "outside"),
        (9, "escapes"),
    ] {
        assert!(
            got[i].1 && got[i].2.contains(needle),
            "step {i}: {:?}",
            got[i]
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).unwrap(),
        "fn answer() -> u32 { 42 }\n"
    );
    assert!(root.join("src").exists());
    assert!(!project.path().join("outside/planted.txt").exists());
    let offered = turns.lock().unwrap()[0].tool_names.clone();
    for tool in ["read", "write", "edit", "ls", "glob", "grep", "bash"] {
        assert!(offered.contains(&tool.to_string()), "{tool} in {offered:?}");
    }

    // No sandbox: no file tools at all.
    run_tools(&host, "plain", "main", "hello").await;
    let plain = turns.lock().unwrap().last().unwrap().tool_names.clone();
    assert!(plain.is_empty(), "{plain:?}");

    // A folder flue.toml does not list is refused with the setting to change.
    let (project, _) = local_project(false);
    let host = local_host(&project, &fake).await;
    let session = host
        .init_agent("local_fs", "i")
        .await
        .unwrap()
        .session("main");
    let refused = session.prompt("fix it").await.unwrap_err().to_string();
    assert!(
        refused.contains("[agents.local_fs] local_dirs"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_guest_model_call_counts_in_the_prompt_usage() {
    let fake =
        FakeProvider::start(
            |turn: &Turn| match (&turn.last_tool_result, turn.system.as_deref()) {
                (_, Some("Answer briefly.")) => Reply::Text("x".repeat(400)),
                (Some(_), _) => Reply::Text("done".into()),
                (None, _) if turn.last_user_text.as_deref() == Some("ask") => {
                    call("ask", json!({"question": "q"}))
                }
                (None, _) => call("recall", json!({"key": "k"})),
            },
        )
        .await;
    let project = Project::empty();
    project.add_agent("host_calls", &guest("tests/guests/host_calls"));
    let host = project.host(&fake).await;
    let session = host
        .init_agent("host_calls", "u")
        .await
        .unwrap()
        .session("main");
    let plain = session.prompt("recall").await.unwrap().usage;
    let asked = session.prompt("ask").await.unwrap().usage;
    assert!(
        asked.output >= plain.output + 100,
        "the guest's 400-character answer is counted: {asked:?} vs {plain:?}"
    );
}

#[tokio::test]
async fn the_example_agents_review_and_delegate() {
    let (fake, turns) = recorded(|turn| {
        let system = turn.system.clone().unwrap_or_default();
        let last = turn.last_tool_result.clone().unwrap_or_default();
        let step = results_so_far(turn);
        if system.starts_with("You coordinate") {
            match step {
                0 => call(
                    "task",
                    json!({"subagent": "reviewer", "prompt": "review the repository"}),
                ),
                1 => call("task", json!({"subagent": "summarizer", "prompt": last})),
                _ => Reply::Text(format!("report: {last}")),
            }
        } else if system.starts_with("You review code changes") {
            match step {
                0 => call("skill", json!({"name": "code-review"})),
                1 => call("read", json!({"path": "src/lib.rs"})),
                _ => Reply::Text(format!("finding:{last}")),
            }
        } else {
            Reply::Text(format!(
                "notes: {}",
                turn.last_user_text.clone().unwrap_or_default()
            ))
        }
    })
    .await;
    let project = Project::empty();
    project.add_agent("reviewer", &guest("agents/reviewer"));
    project.add_agent("coordinator", &guest("agents/coordinator"));
    let skill = flue_tests::workspace().join("skills/code-review/SKILL.md");
    std::fs::create_dir_all(project.path().join("skills/code-review")).unwrap();
    std::fs::copy(skill, project.path().join("skills/code-review/SKILL.md")).unwrap();
    std::fs::create_dir_all(project.path().join("repo/src")).unwrap();
    std::fs::write(
        project.path().join("repo/src/lib.rs"),
        "fn divide(a: u32, b: u32) -> u32 { a / b }\n",
    )
    .unwrap();
    std::fs::write(
        project.path().join("flue.toml"),
        "[agents.reviewer]\nlocal_dirs = [\"repo\"]\nenv = { REPO = \"repo\" }\n",
    )
    .unwrap();
    let host = local_host(&project, &fake).await;

    let config = host
        .init_agent("reviewer", "r")
        .await
        .unwrap()
        .config()
        .await
        .unwrap();
    assert_eq!(
        config.model.as_deref(),
        Some("anthropic/claude-sonnet-4-5"),
        "from the profile"
    );
    assert!(config.skills[0].body.contains("Reviewing a change"));
    assert_eq!(
        config.subagents[0].model.as_deref(),
        Some("anthropic/claude-haiku-4-5")
    );

    let answer = host
        .init_agent("coordinator", "release-1")
        .await
        .unwrap()
        .session("main")
        .prompt("prepare the release")
        .await
        .unwrap();
    assert_eq!(
        answer.text,
        "report: notes: finding:     1\tfn divide(a: u32, b: u32) -> u32 { a / b }"
    );
    let reviewer_turns = turns
        .lock()
        .unwrap()
        .iter()
        .filter(|t| {
            t.system
                .as_deref()
                .is_some_and(|s| s.starts_with("You review"))
        })
        .count();
    assert_eq!(reviewer_turns, 3, "skill, read, answer");
}

/// No sandbox reaches the host's own files: a local sandbox whose folder holds the data
/// directory or `flue.toml` is refused, and from a folder beside them, no tool (`read`,
/// `ls`, `grep`, `glob`, `bash`) gets at them, even through symbolic links.
#[tokio::test]
async fn a_sandbox_never_reaches_the_hosts_own_files() {
    let steps = [
        call("read", json!({"path": "db"})),
        call("read", json!({"path": "settings.toml"})),
        call("ls", json!({"path": "data"})),
        call("grep", json!({"pattern": "marker|SQLite"})),
        call("glob", json!({"pattern": "**/*"})),
        call("bash", json!({"command": "cat settings.toml"})),
        call("bash", json!({"command": "grep -r marker ."})),
        call("bash", json!({"command": "ls data"})),
    ];
    let (fake, _) = recorded(move |turn| {
        steps
            .get(results_so_far(turn))
            .cloned()
            .unwrap_or(Reply::Text("done".into()))
    })
    .await;
    let toml = "# marker: the host's own settings\n[agents.reviewer]\nlocal_dirs = [\".\"]\n\
                commands = [\"ls\", \"cat\", \"grep\"]\n";

    // Bound to the project folder itself, which holds `.flue/` and `flue.toml`: refused.
    let project = reviewer_project(toml);
    let host = local_host(&project, &fake).await;
    let session = host.init_agent("reviewer", "r").await.unwrap().session("s");
    let refused = session.prompt("review").await.unwrap_err().to_string();
    assert!(refused.contains("the host's own files"), "{refused}");

    // Bound beside them: every way in is closed.
    let project = reviewer_project(&format!("{toml}env = {{ REPO = \"repo\" }}\n"));
    let host = local_host(&project, &fake).await;
    let (text, tools) = run_tools(&host, "reviewer", "s", "review").await;
    assert_eq!(text, "done");
    assert_eq!(tools.len(), 8);
    for (name, is_error, result) in &tools {
        assert!(
            !result.contains("marker") && !result.contains("SQLite") && !result.contains("flue.db"),
            "{name} reached the host's files: {result}"
        );
        if ["read", "ls"].contains(&name.as_str()) || result.contains("settings.toml") {
            assert!(is_error, "{name}: {result}");
        }
    }
}

/// A project with the reviewer example, its skill, `flue.toml` as given, and a folder
/// `repo/` beside `.flue/` with symbolic links into the host's own files.
fn reviewer_project(toml: &str) -> Project {
    let project = Project::empty();
    project.add_agent("reviewer", &guest("agents/reviewer"));
    let skill = flue_tests::workspace().join("skills/code-review/SKILL.md");
    std::fs::create_dir_all(project.path().join("skills/code-review")).unwrap();
    std::fs::copy(skill, project.path().join("skills/code-review/SKILL.md")).unwrap();
    std::fs::write(project.path().join("flue.toml"), toml).unwrap();
    let repo = project.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("notes.txt"), "nothing to see\n").unwrap();
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(project.path().join(target), repo.join(name)).unwrap()
    };
    link(".flue/flue.db", "db");
    link("flue.toml", "settings.toml");
    link(".flue", "data");
    project
}
