//! The core path end to end: a real guest component in a real host, prompted through the
//! library API against a fake provider speaking the real wire formats.

use flue_host::models::Message;
use flue_host::{Error, Event};
use flue_tests::{FakeProvider, Format, Project, Reply, Turn, ticket_script};

/// Every combination of wire format and streaming runs the ticket tool round trip; the
/// tool sees the instance id and its answer reaches the model and the final text.
#[tokio::test]
async fn tool_round_trip_sees_the_instance_id_in_every_wire_format() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    for (model, format) in [
        ("anthropic/claude-haiku-4-5", Format::Anthropic),
        ("openai/gpt-4o-mini", Format::OpenAi),
    ] {
        for streaming in [false, true] {
            let session_name = format!("{model}-{streaming}");
            let before = fake.requests().len();
            let harness = host
                .init_agent("support_assistant", "ticket-8472")
                .await
                .unwrap()
                .with_model(model);
            let session = harness.session(&session_name);
            let mut events = Vec::new();
            let result = if streaming {
                session
                    .stream("Where is my refund?", |e| events.push(e))
                    .await
            } else {
                session.prompt("Where is my refund?").await
            }
            .unwrap_or_else(|e| panic!("{model} streaming={streaming}: {e}"));

            assert!(
                result.text.contains("Ticket ticket-8472: open"),
                "{}",
                result.text
            );
            assert!(
                result.text.contains("refund approved"),
                "the tool saw detail=true: {}",
                result.text
            );
            assert_eq!(result.model, model);
            assert!(result.usage.input > 0 && result.usage.output > 0);

            let seen = &fake.requests()[before..];
            assert_eq!(seen.len(), 2, "one call for the tool, one for the answer");
            assert!(
                seen.iter().all(|s| s.format == format
                    && s.body["stream"].as_bool().unwrap_or(false) == streaming)
            );
            let system = seen[0].body.to_string();
            assert!(
                system.contains("support assistant for ticket ticket-8472"),
                "instructions are scoped: {system}"
            );
            assert!(
                seen[0].body.to_string().contains("ticket_status"),
                "the tool is offered"
            );
            let key = seen[0].api_key.clone().unwrap_or_default();
            assert!(
                key.starts_with("test-"),
                "the configured key is sent: {key}"
            );

            let stored = session.history().await.unwrap();
            assert!(
                matches!(&stored[0], Message::User { content } if content == "Where is my refund?")
            );
            assert!(stored.iter().any(
                |m| matches!(m, Message::Tool { content, .. } if content.contains("ticket-8472"))
            ));
            assert!(
                matches!(stored.last(), Some(Message::Assistant { content, .. }) if *content == result.text)
            );

            if streaming {
                assert!(matches!(&events[0], Event::Start { session } if *session == session_name));
                assert!(events.iter().any(
                    |e| matches!(e, Event::ToolStart { name, .. } if name == "ticket_status")
                ));
                assert!(events.iter().any(
                    |e| matches!(e, Event::ToolEnd { result, is_error: false, .. } if result.contains("ticket-8472"))
                ));
                let deltas: Vec<&str> = events
                    .iter()
                    .filter_map(|e| match e {
                        Event::TextDelta { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                assert!(deltas.len() > 1, "text arrives in several deltas");
                assert_eq!(deltas.concat(), result.text);
            }
        }
    }
}

/// Two sessions of one instance keep separate histories; each sees only its own turns.
#[tokio::test]
async fn sessions_of_one_instance_are_independent() {
    let fake =
        FakeProvider::start(|turn: &Turn| Reply::Text(format!("seen {} messages", turn.messages)))
            .await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let harness = host
        .init_agent("support_assistant", "ticket-1")
        .await
        .unwrap();
    let billing = harness.session("billing");
    let shipping = harness.session("shipping");

    billing.prompt("billing secret 1").await.unwrap();
    shipping.prompt("shipping question").await.unwrap();
    let reply = billing.prompt("billing follow-up").await.unwrap();

    assert_eq!(
        reply.text, "seen 3 messages",
        "two earlier billing messages plus the new one"
    );
    let seen = fake.requests();
    let shipping_request = seen[1].body.to_string();
    assert!(
        !shipping_request.contains("billing secret"),
        "{shipping_request}"
    );
    assert!(seen[2].body.to_string().contains("billing secret 1"));
    assert!(!seen[2].body.to_string().contains("shipping question"));
    assert_eq!(billing.history().await.unwrap().len(), 4);
    assert_eq!(shipping.history().await.unwrap().len(), 2);

    let other = host
        .init_agent("support_assistant", "ticket-2")
        .await
        .unwrap()
        .session("billing");
    assert!(
        other.history().await.unwrap().is_empty(),
        "instances do not share sessions"
    );
}

/// History lives in the store: a new host on the same data directory continues the
/// session, and loads the agent from the compile cache instead of recompiling.
#[tokio::test]
async fn history_survives_a_restart_and_the_compile_cache_is_reused() {
    let fake =
        FakeProvider::start(|turn: &Turn| Reply::Text(format!("seen {} messages", turn.messages)))
            .await;
    let project = Project::new();
    let mut options = project.options(&fake);
    options.compile_cache = None;
    {
        let host = project.host_with(options.clone()).await;
        assert_eq!(host.loaded_from_cache("support_assistant"), Some(false));
        let session = host
            .init_agent("support_assistant", "ticket-9")
            .await
            .unwrap()
            .session("default");
        session
            .prompt("remember the code word: heliotrope")
            .await
            .unwrap();
    }
    let host = project.host_with(options).await;
    assert_eq!(
        host.loaded_from_cache("support_assistant"),
        Some(true),
        "a second start does not recompile"
    );
    let session = host
        .init_agent("support_assistant", "ticket-9")
        .await
        .unwrap()
        .session("default");
    let reply = session.prompt("what was the code word?").await.unwrap();
    assert_eq!(reply.text, "seen 3 messages");
    assert!(
        fake.requests()
            .last()
            .unwrap()
            .body
            .to_string()
            .contains("heliotrope")
    );
}

/// Bad requests and provider failures are clear errors, not panics.
#[tokio::test]
async fn unknown_agents_empty_messages_and_provider_errors_are_clear() {
    let fake = FakeProvider::start(|_: &Turn| Reply::Error {
        status: 529,
        message: "overloaded".into(),
    })
    .await;
    let project = Project::new();
    let host = project.host(&fake).await;

    let missing = host.init_agent("nope", "x").await.err().unwrap();
    assert!(
        matches!(&missing, Error::AgentNotFound { available, .. } if available.contains(&"support_assistant".to_string()))
    );
    assert_eq!(flue_host::server::status_of(missing.kind()).as_u16(), 404);

    let session = host
        .init_agent("support_assistant", "t")
        .await
        .unwrap()
        .session("s");
    let empty = session.prompt("  ").await.err().unwrap();
    assert_eq!(flue_host::server::status_of(empty.kind()).as_u16(), 400);

    let failed = session.prompt("hello").await.err().unwrap();
    assert!(
        failed.to_string().contains("529") && failed.to_string().contains("overloaded"),
        "{failed}"
    );
    assert_eq!(
        session.history().await.unwrap(),
        [Message::User {
            content: "hello".into()
        }],
        "a failed prompt keeps the user's message and nothing the model did not say"
    );

    let mut options = project.options(&fake);
    options.env.remove("ANTHROPIC_API_KEY");
    options.config.local.fallback = Some(false);
    let err = first_prompt_error(options, project.path().join("keyless")).await;
    assert!(err.contains("ANTHROPIC_API_KEY"), "{err}");

    let mut options = project.options(&fake);
    let closed_port = "http://127.0.0.1:9".to_string();
    options.env.insert("ANTHROPIC_BASE_URL".into(), closed_port);
    let err = first_prompt_error(options, project.path().join("unreachable")).await;
    assert!(err.contains("ANTHROPIC_BASE_URL"), "{err}");
}

/// Starts a host with `options` and returns the error of its first prompt.
/// A model whose provider has no key is answered by `[models] default` when that
/// provider has one.
#[tokio::test]
async fn a_keyless_provider_falls_back_to_the_default_model() {
    let fake = FakeProvider::start(ticket_script).await;
    let project = Project::new();
    let mut options = project.options(&fake);
    options.env.remove("ANTHROPIC_API_KEY");
    options
        .config
        .models
        .insert("default".into(), "openai/gpt-4o-mini".into());
    let host = project.host_with(options).await;
    let session = host
        .init_agent("support_assistant", "t-1")
        .await
        .unwrap()
        .session("s");
    let result = session.prompt("status?").await.unwrap();
    assert_eq!(result.model, "openai/gpt-4o-mini");
    assert!(result.text.contains("Ticket t-1: open"), "{}", result.text);
}

async fn first_prompt_error(
    mut options: flue_host::HostOptions,
    data_dir: std::path::PathBuf,
) -> String {
    options.data_dir = data_dir;
    let host = flue_host::Host::open(options).await.unwrap();
    let session = host
        .init_agent("support_assistant", "t")
        .await
        .unwrap()
        .session("s");
    session
        .prompt("hi")
        .await
        .expect_err("the prompt fails")
        .to_string()
}

/// Instances unused past the idle time leave memory and come back on the next prompt;
/// a full instance pool makes room by dropping the least recently used idle instance.
#[tokio::test]
async fn idle_instances_are_evicted_and_the_pool_makes_room() {
    let fake =
        FakeProvider::start(|turn: &Turn| Reply::Text(format!("seen {} messages", turn.messages)))
            .await;
    let project = Project::new();
    let mut options = project.options(&fake);
    options.config.limits.instance_idle_ms = Some(200);
    options.config.limits.max_instances = Some(2);
    let host = flue_host::Host::open(options).await.unwrap();

    for id in ["a", "b", "c"] {
        let session = host
            .init_agent("support_assistant", id)
            .await
            .expect("the pool makes room")
            .session("s");
        assert_eq!(
            session.prompt("hello").await.unwrap().text,
            "seen 1 messages"
        );
        assert!(host.live_instances() <= 2, "{} live", host.live_instances());
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(host.live_instances(), 0, "idle instances were evicted");

    let session = host
        .init_agent("support_assistant", "a")
        .await
        .unwrap()
        .session("s");
    assert_eq!(
        session.prompt("again").await.unwrap().text,
        "seen 3 messages",
        "history outlives the instance"
    );
    assert_eq!(host.live_instances(), 1);
}

/// A profile under the config: set fields replace the profile's, tool lists merge with
/// the config winning a name clash, and the thinking level reaches each provider in its
/// own parameters.
#[tokio::test]
async fn profiles_merge_and_thinking_reaches_the_provider() {
    let fake = FakeProvider::start(|turn: &Turn| match &turn.last_tool_result {
        Some(result) => Reply::Text(format!("tool said {result}")),
        None => Reply::ToolCall {
            name: "clash".into(),
            args: serde_json::json!({}),
        },
    })
    .await;
    let project = Project::empty();
    project.add_agent("profiled", &flue_tests::guest("tests/guests/profiled"));
    let host = project.host(&fake).await;
    let harness = host.init_agent("profiled", "p").await.unwrap();

    let config = harness.config().await.unwrap();
    assert_eq!(
        config.model.as_deref(),
        Some("openai/o4-mini"),
        "from the profile"
    );
    assert_eq!(
        config.instructions.as_deref(),
        Some("config instructions"),
        "the config's wins"
    );
    let tools: Vec<(&str, &str)> = config
        .tools
        .iter()
        .map(|t| (t.name.as_str(), t.description.as_str()))
        .collect();
    assert_eq!(
        tools,
        [
            ("shared", "From the profile."),
            ("clash", "Config version."),
            ("own", "Config only.")
        ]
    );
    assert_eq!(config.skills.len(), 1);

    let reply = harness.session("s").prompt("go").await.unwrap();
    assert_eq!(
        reply.text, "tool said config clash",
        "the config's handler runs"
    );
    let openai = &fake.requests()[0].body;
    assert_eq!(openai["reasoning_effort"], "high");
    let system = openai["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("config instructions\n\n## Skills\n"),
        "{system}"
    );
    assert!(
        system.contains("- style: How to write answers."),
        "the profile's skill is listed: {system}"
    );

    let before = fake.requests().len();
    let on_anthropic = harness.clone().with_model("anthropic/claude-haiku-4-5");
    on_anthropic.session("t").prompt("go").await.unwrap();
    let anthropic = &fake.requests()[before].body;
    assert_eq!(anthropic["thinking"]["type"], "enabled");
    assert_eq!(anthropic["thinking"]["budget_tokens"], 16384);
}

/// Guest tools call back into the host: durable per-instance state (kept across a
/// restart), session history, and model completions of their own.
#[tokio::test]
async fn guest_tools_use_state_history_and_the_model() {
    let fake = FakeProvider::start(|turn: &Turn| {
        if let Some(result) = &turn.last_tool_result {
            return Reply::Text(format!("tool said {result}"));
        }
        let text = turn.last_user_text.clone().unwrap_or_default();
        match text.split_once(' ') {
            Some((tool, args)) if tool.starts_with("call:") => Reply::ToolCall {
                name: tool["call:".len()..].to_string(),
                args: serde_json::from_str(args).unwrap(),
            },
            _ if turn.system.as_deref() == Some("Answer briefly.") => {
                Reply::Text(format!("guest asked: {text}"))
            }
            _ => Reply::Text("plain".into()),
        }
    })
    .await;
    let project = Project::empty();
    project.add_agent("host_calls", &flue_tests::guest("tests/guests/host_calls"));
    let ask_as = async |host: &flue_host::Host, id: &str, message: &str| {
        let session = host
            .init_agent("host_calls", id)
            .await
            .unwrap()
            .session("main");
        session.prompt(message).await.unwrap().text
    };
    let ask = async |host: &flue_host::Host, message: &str| ask_as(host, "i", message).await;
    {
        let host = project.host(&fake).await;
        assert_eq!(
            ask(&host, r#"call:recall {"key": "colour"}"#).await,
            "tool said nothing"
        );
        assert_eq!(
            ask(&host, r#"call:remember {"key": "colour", "value": "teal"}"#).await,
            "tool said stored"
        );
        assert_eq!(
            ask(&host, r#"call:ask {"question": "what is 2+2?"}"#).await,
            "tool said guest asked: what is 2+2?"
        );
        // Three finished prompts of four messages each, before this one is stored.
        assert_eq!(
            ask(&host, r#"call:history {"session": "main"}"#).await,
            "tool said 12"
        );
    }
    {
        // persist = false: the same tools work, but only in memory.
        let host = project.host(&fake).await;
        let remember = r#"call:remember {"key": "colour", "value": "red"}"#;
        assert_eq!(
            ask_as(&host, "ephemeral-1", remember).await,
            "tool said stored"
        );
        let recall = r#"call:recall {"key": "colour"}"#;
        assert_eq!(ask_as(&host, "ephemeral-1", recall).await, "tool said red");
        let history = r#"call:history {"session": "main"}"#;
        assert_eq!(ask_as(&host, "ephemeral-1", history).await, "tool said 8");
    }
    let host = project.host(&fake).await;
    let recall = r#"call:recall {"key": "colour"}"#;
    assert_eq!(
        ask(&host, recall).await,
        "tool said teal",
        "state outlives a restart"
    );
    assert_eq!(
        ask_as(&host, "ephemeral-1", recall).await,
        "tool said nothing",
        "nothing was stored"
    );
    let session = host
        .init_agent("host_calls", "ephemeral-1")
        .await
        .unwrap()
        .session("main");
    assert_eq!(
        session.history().await.unwrap().len(),
        4,
        "only this host's one prompt"
    );
}

/// Arguments that do not fit a tool's JSON Schema never reach the guest: the model is
/// told what is wrong, and can try again.
#[tokio::test]
async fn tool_arguments_are_checked_against_the_tools_schema() {
    let fake = FakeProvider::start(|turn: &Turn| match &turn.last_tool_result {
        Some(result) => Reply::Text(format!("tool said: {result}")),
        None => Reply::ToolCall {
            name: "ticket_status".into(),
            args: serde_json::json!({"detail": "yes please"}),
        },
    })
    .await;
    let project = Project::new();
    let host = project.host(&fake).await;
    let mut ends = Vec::new();
    let result = host
        .init_agent("support_assistant", "ticket-1")
        .await
        .unwrap()
        .session("s")
        .stream("status?", |e| {
            if let Event::ToolEnd {
                is_error, result, ..
            } = e
            {
                ends.push((is_error, result));
            }
        })
        .await
        .unwrap();
    let (is_error, told) = &ends[0];
    assert!(is_error);
    assert!(
        told.contains("do not fit the tool's parameters") && told.contains("/detail"),
        "{told}"
    );
    assert!(
        !result.text.contains("Ticket ticket-1"),
        "the guest never ran: {}",
        result.text
    );
}
