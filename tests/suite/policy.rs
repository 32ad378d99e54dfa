//! Tenant policies: each limit, when exceeded, fails the call with `limit_exceeded`
//! naming it, before the model provider is called; other tenants and the operator's
//! agents are not affected.

use std::time::Duration;

use flue_host::project::TenantSettings;
use flue_host::{Error, Host, Limit};
use flue_tests::{FakeProvider, Project, Reply, Turn, guest, ticket_script};
use serde_json::json;

/// A host whose tenant `acme` has `policy` and the support agent as `acme/support`;
/// the operator's `support_assistant` is the same agent without a policy.
async fn host(fake: &FakeProvider, policy: TenantSettings) -> (Project, Host) {
    let project = Project::empty();
    let agent = guest("agents/support_assistant");
    std::fs::create_dir_all(project.path().join("agents/acme")).unwrap();
    project.add_agent("acme/support", &agent);
    project.add_agent("support_assistant", &agent);
    let mut options = project.options(fake);
    options.config.tenants.insert("acme".into(), policy);
    let host = Host::open(options).await.expect("the host starts");
    (project, host)
}

async fn prompt(host: &Host, agent: &str, session: &str) -> Result<String, Error> {
    Ok(host
        .init_agent(agent, "t-1")
        .await?
        .session(session)
        .prompt("status?")
        .await?
        .text)
}

/// The limit a result was refused by.
fn limit(result: Result<String, Error>) -> String {
    match result {
        Err(Error::LimitExceeded { limit, .. }) => limit.name().to_string(),
        other => panic!("expected limit_exceeded, got {other:?}"),
    }
}

#[tokio::test]
async fn a_model_outside_the_allowed_list_is_refused_before_any_request() {
    let fake = FakeProvider::start(ticket_script).await;
    let policy = TenantSettings {
        allowed_models: Some(vec!["openai/*".into()]),
        ..Default::default()
    };
    let (_project, host) = host(&fake, policy).await;
    assert_eq!(
        limit(prompt(&host, "acme/support", "s").await),
        "allowed_models"
    );
    assert!(fake.requests().is_empty(), "the provider was called");
    assert!(
        prompt(&host, "support_assistant", "s")
            .await
            .unwrap()
            .contains("t-1")
    );
}

#[tokio::test]
async fn a_spent_token_budget_stops_the_next_model_call() {
    let fake = FakeProvider::start(ticket_script).await;
    let policy = TenantSettings {
        tokens_per_hour: Some(1),
        ..Default::default()
    };
    let (_project, host) = host(&fake, policy).await;
    // The first model call is within the budget; it spends past it, so the second
    // (after the tool round) is refused before it is sent.
    assert_eq!(
        limit(prompt(&host, "acme/support", "s").await),
        "tokens_per_hour"
    );
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(
        limit(prompt(&host, "acme/support", "s2").await),
        "tokens_per_hour"
    );
    assert_eq!(fake.requests().len(), 1);
    assert!(
        prompt(&host, "support_assistant", "s")
            .await
            .unwrap()
            .contains("t-1")
    );
}

#[tokio::test]
async fn a_tenant_bound_on_tool_rounds_stops_the_loop() {
    let fake = FakeProvider::start(ticket_script).await;
    let policy = TenantSettings {
        max_tool_rounds: Some(0),
        ..Default::default()
    };
    let (_project, host) = host(&fake, policy).await;
    assert_eq!(
        limit(prompt(&host, "acme/support", "s").await),
        "max_tool_rounds"
    );
    assert!(
        prompt(&host, "support_assistant", "s")
            .await
            .unwrap()
            .contains("t-1")
    );
}

#[tokio::test]
async fn prompts_past_the_rate_are_refused() {
    let fake = FakeProvider::start(ticket_script).await;
    let policy = TenantSettings {
        prompts_per_minute: Some(2),
        ..Default::default()
    };
    let (_project, host) = host(&fake, policy).await;
    for session in ["a", "b"] {
        assert!(prompt(&host, "acme/support", session).await.is_ok());
    }
    let before = fake.requests().len();
    assert_eq!(
        limit(prompt(&host, "acme/support", "c").await),
        "prompts_per_minute"
    );
    assert_eq!(fake.requests().len(), before);
    assert!(prompt(&host, "support_assistant", "c").await.is_ok());
}

#[tokio::test]
async fn prompts_past_the_concurrency_bound_are_refused() {
    // The first prompt's model answer takes a while, so it is still running.
    let fake = FakeProvider::start(|turn: &Turn| match turn.last_user_text.as_deref() {
        Some("slow") => Reply::Delayed(
            Duration::from_millis(800),
            Box::new(Reply::Text("done".into())),
        ),
        _ => ticket_script(turn),
    })
    .await;
    let policy = TenantSettings {
        max_concurrent_prompts: Some(1),
        ..Default::default()
    };
    let (_project, host) = host(&fake, policy).await;
    let slow = {
        let host = host.clone();
        tokio::spawn(async move {
            host.init_agent("acme/support", "t-2")
                .await?
                .session("s")
                .prompt("slow")
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        limit(prompt(&host, "acme/support", "s").await),
        "max_concurrent_prompts"
    );
    assert_eq!(slow.await.unwrap().unwrap().text, "done");
    // Once it finished, the tenant may prompt again.
    assert!(prompt(&host, "acme/support", "s").await.is_ok());
}

#[tokio::test]
async fn a_tenant_runs_its_guests_under_tighter_limits() {
    let fake = FakeProvider::start(flue_tests::hostile::tool_by_prompt).await;
    let project = Project::empty();
    let hostile = guest("tests/guests/hostile");
    for tenant in ["acme", "brisk"] {
        std::fs::create_dir_all(project.path().join("agents").join(tenant)).unwrap();
        project.add_agent(&format!("{tenant}/hostile"), &hostile);
    }
    project.add_agent("hostile", &hostile);
    let mut options = project.options(&fake);
    options.config.limits.memory_mb = Some(32);
    // A looping guest hands its core to others on every tick, so on a busy machine its
    // 100 ms of CPU can take seconds: acme's wall bound is far from its CPU limit, and
    // `brisk` has the short wall bound.
    options.config.tenants.insert(
        "acme".into(),
        TenantSettings {
            memory_mb: Some(8),
            cpu_ms_per_call: Some(100),
            wall_ms_per_call: Some(20_000),
            ..Default::default()
        },
    );
    options.config.tenants.insert(
        "brisk".into(),
        TenantSettings {
            wall_ms_per_call: Some(1000),
            ..Default::default()
        },
    );
    let host = Host::open(options).await.expect("the host starts");
    // The error names the limit passed, and the wire calls it `limit_exceeded`.
    let call = async |agent: &str, tool: &str| -> (String, String) {
        let outcome = host
            .init_agent(agent, "t-1")
            .await
            .unwrap()
            .session("s")
            .prompt(&format!("call {tool}"))
            .await;
        match outcome {
            Err(e @ Error::Guest { .. }) => {
                let (status, body) = (
                    flue_host::server::status_of(e.kind()).as_u16(),
                    json!(e.envelope()),
                );
                assert_eq!(
                    (status, &body["error"]["type"]),
                    (422, &json!("limit_exceeded"))
                );
                (e.to_string(), body["error"]["meta"]["limit"].to_string())
            }
            other => panic!("expected a guest error, got {other:?}"),
        }
    };
    let (message, limit) = call("acme/hostile", "hog").await;
    assert!(message.contains("memory limit of 8 MiB"), "{message}");
    assert_eq!(limit, "\"memory_mb\"");
    let (message, _) = call("hostile", "hog").await;
    assert!(message.contains("memory limit of 32 MiB"), "{message}");
    let (message, limit) = call("acme/hostile", "spin").await;
    assert!(message.contains("CPU limit of 100ms"), "{message}");
    assert_eq!(limit, "\"cpu_ms_per_call\"");
    // A guest that sleeps uses no CPU: the tenant's wall bound stops it.
    let started = std::time::Instant::now();
    let (message, limit) = call("brisk/hostile", "nap").await;
    assert!(message.contains("did not answer within 1s"), "{message}");
    assert_eq!(limit, "\"wall_ms_per_call\"");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_tenant_chooses_sandboxes_built_in_tools_and_env() {
    // The model tries `write`, then reports what it was offered, what the tool call
    // gave, and its instructions.
    let fake = FakeProvider::start(|turn: &Turn| match &turn.last_tool_result {
        None if !turn.tool_names.is_empty() => Reply::ToolCall {
            name: "write".into(),
            args: json!({"path": "a.txt", "content": "x"}),
        },
        result => Reply::Text(format!(
            "tools: {} | result: {} | {}",
            turn.tool_names.join(","),
            result.clone().unwrap_or_default(),
            turn.system.clone().unwrap_or_default()
        )),
    })
    .await;
    let project = Project::empty();
    let features = guest("tests/guests/features");
    for tenant in ["acme", "globex"] {
        std::fs::create_dir_all(project.path().join("agents").join(tenant)).unwrap();
        project.add_agent(&format!("{tenant}/virtual_fs"), &features);
    }
    project.add_agent("acme/env_echo", &features);
    project.add_agent("virtual_fs", &features);
    let mut options = project.options(&fake);
    options.config.tenants.insert(
        "acme".into(),
        TenantSettings {
            builtin_tools: Some(vec!["read".into(), "ls".into()]),
            env: [("REGION", "eu"), ("TIER", "gold")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            ..Default::default()
        },
    );
    options.config.tenants.insert(
        "globex".into(),
        TenantSettings {
            sandboxes: Some(vec!["local".into()]),
            ..Default::default()
        },
    );
    options
        .config
        .agents
        .insert("acme/env_echo".into(), toml_agent(&[("TIER", "platinum")]));
    let host = Host::open(options).await.expect("the host starts");

    // acme's model is offered only the built-ins its tenant allows, and a call to
    // another one is refused.
    let answer = prompt(&host, "acme/virtual_fs", "s").await.unwrap();
    assert!(answer.starts_with("tools: read,ls | "), "{answer}");
    assert!(answer.contains("no tool named 'write'"), "{answer}");
    // The operator's agent of the same component has them all, and writes.
    let answer = prompt(&host, "virtual_fs", "s").await.unwrap();
    assert!(answer.contains("write,edit"), "{answer}");
    assert!(!answer.contains("no tool named"), "{answer}");
    // globex may not use a virtual sandbox at all: the prompt fails before the model.
    let before = fake.requests().len();
    let refused = prompt(&host, "globex/virtual_fs", "s").await;
    let Err(error @ Error::LimitExceeded { .. }) = refused else {
        panic!("expected limit_exceeded, got {refused:?}");
    };
    assert_eq!(error.limit(), Some(Limit::Sandboxes));
    assert_eq!(flue_host::server::status_of(error.kind()).as_u16(), 403);
    assert_eq!(fake.requests().len(), before, "the provider was called");
    // The tenant's env reaches create; the agent's own value wins.
    let answer = prompt(&host, "acme/env_echo", "s").await.unwrap();
    assert!(answer.contains("env: REGION=eu TIER=platinum"), "{answer}");
}

/// `[agents.<name>]` settings with only `env`.
fn toml_agent(env: &[(&str, &str)]) -> flue_host::project::AgentSettings {
    flue_host::project::AgentSettings {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// A server on a loopback port answering `GET /` with `body` and `GET /away` with a
/// redirect to `away`; returns its address and a count of the requests it served.
async fn upstream(
    body: &'static str,
    away: Option<String>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::response::Redirect;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let (root_hits, away_hits) = (hits.clone(), hits.clone());
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || async move {
                root_hits.fetch_add(1, Ordering::SeqCst);
                body
            }),
        )
        .route(
            "/away",
            axum::routing::get(move || async move {
                away_hits.fetch_add(1, Ordering::SeqCst);
                Redirect::temporary(&away.unwrap_or_default())
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

#[tokio::test]
async fn fetch_reaches_only_the_hosts_allowed() {
    use std::sync::atomic::Ordering;
    let (denied, denied_hits) = upstream("a secret", None).await;
    let (allowed, _) = upstream("hello from upstream", Some(format!("http://{denied}/"))).await;
    // The model fetches the URL its prompt names, then reports what it got.
    let fake = FakeProvider::start(|turn: &Turn| match &turn.last_tool_result {
        Some(result) => Reply::Text(format!("got: {result}")),
        None if turn.tool_names.iter().any(|t| t == "fetch") => Reply::ToolCall {
            name: "fetch".into(),
            args: json!({"url": turn.last_user_text.clone().unwrap_or_default()}),
        },
        None => Reply::Text("no fetch tool".into()),
    })
    .await;
    let policy = TenantSettings {
        fetch_hosts: vec![allowed.clone()],
        ..Default::default()
    };
    let (_project, host) = host(&fake, policy).await;
    let ask = async |agent: &str, url: &str| {
        host.init_agent(agent, "t-1")
            .await
            .unwrap()
            .session("s")
            .prompt(url)
            .await
            .unwrap()
            .text
    };
    let answer = ask("acme/support", &format!("http://{allowed}/")).await;
    assert_eq!(answer, "got: HTTP 200\nhello from upstream");
    let answer = ask("acme/support", &format!("http://{denied}/")).await;
    assert!(
        answer.contains("not a host this agent may reach"),
        "{answer}"
    );
    // A redirect is reported, not followed to a host outside the list.
    let answer = ask("acme/support", &format!("http://{allowed}/away")).await;
    assert!(answer.starts_with("got: HTTP 307"), "{answer}");
    let answer = ask("acme/support", "file:///etc/passwd").await;
    assert!(answer.contains("only http and https"), "{answer}");
    assert_eq!(
        denied_hits.load(Ordering::SeqCst),
        0,
        "the denied host was reached"
    );
    // Agents with no hosts are not offered the tool.
    assert_eq!(
        ask("support_assistant", &format!("http://{allowed}/")).await,
        "no fetch tool"
    );
}

#[tokio::test]
async fn a_prompt_past_its_wall_time_is_stopped() {
    let fake = FakeProvider::start(|turn: &Turn| {
        Reply::Delayed(Duration::from_millis(700), Box::new(ticket_script(turn)))
    })
    .await;
    let policy = TenantSettings {
        wall_ms_per_prompt: Some(300),
        ..Default::default()
    };
    let (_project, host) = host(&fake, policy).await;
    let started = std::time::Instant::now();
    let refused = prompt(&host, "acme/support", "s").await;
    assert!(
        started.elapsed() < Duration::from_millis(650),
        "{:?}",
        started.elapsed()
    );
    let Err(error @ Error::LimitExceeded { .. }) = refused else {
        panic!("expected limit_exceeded, got {refused:?}");
    };
    assert_eq!(error.limit(), Some(Limit::WallMsPerPrompt));
    assert_eq!(flue_host::server::status_of(error.kind()).as_u16(), 422);
    // The operator's agent, under the host's default, takes its two model calls.
    let answer = prompt(&host, "support_assistant", "s").await.unwrap();
    assert!(answer.contains("t-1"), "{answer}");
}

#[tokio::test]
async fn an_agents_own_policy_binds_on_top_of_its_tenants() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::empty();
    let agent = guest("agents/support_assistant");
    std::fs::create_dir_all(project.path().join("agents/acme")).unwrap();
    for name in ["acme/support", "acme/other", "support_assistant"] {
        project.add_agent(name, &agent);
    }
    std::fs::write(
        project.path().join("flue.toml"),
        "[tenants.acme]\nprompts_per_minute = 100\n\n\
         [policies.\"acme/support\"]\nprompts_per_minute = 1\n\n\
         [policies.support_assistant]\nallowed_models = [\"openai/*\"]\n",
    )
    .unwrap();
    let mut options = project.options(&fake);
    options.config = flue_host::ProjectConfig::load(project.path()).unwrap();
    let host = Host::open(options).await.expect("the host starts");

    // acme/support's own rate is tighter than its tenant's.
    prompt(&host, "acme/support", "a").await.unwrap();
    let refused = prompt(&host, "acme/support", "b").await;
    let Err(Error::LimitExceeded {
        limit: which,
        message,
        retry_after,
    }) = refused
    else {
        panic!("expected limit_exceeded, got {refused:?}");
    };
    assert_eq!(which, Limit::PromptsPerMinute);
    let wait = retry_after.expect("a rate refusal says when to retry");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    assert!(message.contains("agent 'acme/support'"), "{message}");
    // Another agent of the tenant has only the tenant's.
    for session in ["a", "b", "c"] {
        prompt(&host, "acme/other", session).await.unwrap();
    }
    // An operator's agent can have a policy too.
    assert_eq!(
        limit(prompt(&host, "support_assistant", "s").await),
        "allowed_models"
    );
}
