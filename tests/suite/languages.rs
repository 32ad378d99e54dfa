//! Python and TypeScript agents, compiled by the real toolchains (componentize-py;
//! esbuild and componentize-js) from `tests/agents/`, driven through the real host
//! against the fake provider: the same guarantees as for Rust agents.

use std::time::{Duration, Instant};

use flue_host::{Error, Host};
use flue_tests::hostile::{healthy_answer, tool_by_prompt};
use flue_tests::{FakeProvider, Project, Reply, Turn, guest};

/// The agents under test: a PyFlue-style module and a Flue-style TypeScript module.
const AGENTS: [(&str, &str); 2] = [
    ("py_agent", "tests/agents/py_agent.py"),
    ("ts_agent", "tests/agents/ts_agent.ts"),
];

fn project() -> Project {
    let project = Project::new();
    for (name, source) in AGENTS {
        project.add_agent(name, &guest(source));
    }
    project
}

/// Has instance `id` of `agent` call `tool` (JSON arguments may follow a space) in
/// session `s`, and returns the final text: `tool said: <result>`.
async fn call(host: &Host, agent: &str, id: &str, tool: &str) -> Result<String, Error> {
    let harness = host.init_agent(agent, id).await?;
    let answer = harness.session("s").prompt(&format!("call {tool}")).await?;
    Ok(answer.text)
}

#[tokio::test]
async fn tools_see_their_own_instance_and_profiles_merge() {
    let _turn = flue_tests::heavy_turn().await;
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = project();
    let host = project.host(&fake).await;
    for (agent, _) in AGENTS {
        for id in ["ticket-1", "ticket-2"] {
            let said = call(&host, agent, id, "whoami").await.unwrap();
            assert_eq!(said, format!("tool said: {id}"), "{agent}");
        }
        let said = call(&host, agent, "ticket-1", r#"forecast {"city": "Oslo"}"#).await;
        let said = said.unwrap();
        assert!(
            said.contains(r#""forecast""#) && said.contains("Oslo"),
            "{agent}: {said}"
        );
        assert_eq!(
            call(&host, agent, "ticket-1", "shared").await.unwrap(),
            "tool said: from the profile",
            "{agent}: a profile's tool runs"
        );

        let config = host.init_agent(agent, "ticket-1").await.unwrap();
        let config = config.config().await.unwrap();
        assert_eq!(
            config.instructions.as_deref(),
            Some("Answer from the profile.")
        );
        let tools: Vec<&str> = config.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            tools[..2],
            ["shared", "whoami"],
            "{agent}: profile first: {tools:?}"
        );
        assert!(
            config.model.as_deref().unwrap().starts_with("anthropic"),
            "{agent}: {:?}",
            config.model
        );
    }
}

#[tokio::test]
async fn a_tool_that_raises_is_an_error_the_model_sees() {
    let _turn = flue_tests::heavy_turn().await;
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = project();
    let host = project.host(&fake).await;
    let said = call(&host, "py_agent", "t", "fail").await.unwrap();
    assert!(
        said.contains("ValueError: the ticket system is down (at py_agent.py line"),
        "{said}"
    );
    let said = call(&host, "ts_agent", "t", "fail").await.unwrap();
    assert!(said.contains("Error: the ticket system is down"), "{said}");
    for (agent, _) in AGENTS {
        let said = call(&host, agent, "t", "whoami").await.unwrap();
        assert_eq!(said, "tool said: t", "{agent}: the instance lives on");
    }
    for (agent, _) in AGENTS {
        let said = call(&host, agent, "t", "bad_model").await.unwrap();
        assert!(
            said.starts_with("tool said: invalid") && said.contains("nowhere"),
            "{agent}: a failed host call is a HostError of its kind: {said}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_or_a_memory_bomb_fails_its_own_call_only() {
    let _turn = flue_tests::heavy_turn().await;
    let fake = FakeProvider::start(tool_by_prompt).await;
    let project = project();
    let host = project.host(&fake).await;
    for agent in ["py_agent", "ts_agent"] {
        let started = Instant::now();
        let error = call(&host, agent, "a", "spin")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("CPU limit"), "{agent}: {error}");
        assert!(started.elapsed() < Duration::from_secs(10), "{agent}");
        assert!(healthy_answer(&host).await.contains("ticket-1"));
        let said = call(&host, agent, "a", "whoami").await.unwrap();
        assert_eq!(
            said, "tool said: a",
            "{agent}: a new instance serves the id"
        );
    }
    let error = call(&host, "py_agent", "b", "hog")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("memory limit"), "{error}");
    assert_eq!(
        call(&host, "py_agent", "b", "whoami").await.unwrap(),
        "tool said: b"
    );
    assert!(healthy_answer(&host).await.contains("ticket-1"));
}

/// [`tool_by_prompt`], and a short answer to a tool's own question (`host.complete`).
fn answering_tools(turn: &Turn) -> Reply {
    match turn.system.as_deref() {
        Some("Answer briefly.") => Reply::Text(format!(
            "guest asked: {}",
            turn.last_user_text.clone().unwrap_or_default()
        )),
        _ => tool_by_prompt(turn),
    }
}

#[tokio::test]
async fn host_calls_state_and_sessions_persist() {
    let _turn = flue_tests::heavy_turn().await;
    let fake = FakeProvider::start(answering_tools).await;
    let project = project();
    {
        let host = project.host(&fake).await;
        for (agent, _) in AGENTS {
            let stored = call(
                &host,
                agent,
                "k-1",
                r#"remember {"key": "color", "value": "teal"}"#,
            );
            assert_eq!(stored.await.unwrap(), "tool said: stored", "{agent}");
            let other = call(&host, agent, "k-2", r#"recall {"key": "color"}"#).await;
            assert_eq!(
                other.unwrap(),
                "tool said: nothing",
                "{agent}: state is per instance"
            );
        }
        let count = call(&host, "py_agent", "k-1", r#"history {"session": "s"}"#).await;
        // The `remember` turn's four messages; this turn's are stored when it ends.
        assert_eq!(count.unwrap(), "tool said: 4");
    }
    let host = project.host(&fake).await;
    for (agent, _) in AGENTS {
        let recalled = call(&host, agent, "k-1", r#"recall {"key": "color"}"#).await;
        assert_eq!(
            recalled.unwrap(),
            "tool said: teal",
            "{agent}: state outlives the host"
        );
        let session = host.init_agent(agent, "k-1").await.unwrap().session("s");
        assert!(session.history().await.unwrap().len() >= 8, "{agent}");
    }
}
