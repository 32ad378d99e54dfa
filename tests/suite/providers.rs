//! The provider conformance corpus: responses recorded as real providers and
//! OpenAI-compatible servers send them (`tests/corpus/<kind>/{stream,whole}/resp-N.raw`),
//! replayed byte for byte to the host's real clients. Each kind runs through every
//! transport it can reach (a streamed response through SSE, a whole one through JSON and
//! WebSocket) and asserts what the caller sees, what the host sent back to the provider,
//! and the stored history.

use std::collections::BTreeMap;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use flue_host::ErrorKind;
use flue_tests::replay::{Recorded, Replay, corpus};
use flue_tests::{InProcessServer, Project, flue_binary, guest};

/// How a prompt reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Json,
    Sse,
    WebSocket,
}

use Transport::{Json, Sse, WebSocket};

/// What the caller saw of one prompt.
#[derive(Debug, Default)]
struct Seen {
    status: u16,
    retry_after: Option<String>,
    /// The answer's text, if it succeeded.
    text: Option<String>,
    /// The result object (`text`, `usage`, `model`), if it succeeded.
    result: Option<Value>,
    /// The error object of the envelope, if it failed.
    error: Option<Value>,
    /// SSE events, `(type, data)`, in order.
    events: Vec<(String, Value)>,
}

/// One run of a corpus kind: what each prompt gave, the requests the provider got, and
/// the session's stored messages.
struct Run {
    seen: Vec<Seen>,
    requests: Vec<Recorded>,
    history: Vec<Value>,
}

impl Run {
    /// The roles of the stored messages, oldest first.
    fn roles(&self) -> Vec<&str> {
        self.history
            .iter()
            .map(|m| m["role"].as_str().expect("a role"))
            .collect()
    }
}

/// A corpus kind and the agent it runs on.
struct Case<'a> {
    kind: &'a str,
    agent: &'a str,
    /// `flue.toml` of the project.
    toml: &'a str,
    /// A model for each prompt (the request's `model` field), if not the agent's own.
    model: Option<&'a str>,
}

impl Case<'_> {
    fn new<'a>(kind: &'a str, agent: &'a str, toml: &'a str) -> Case<'a> {
        Case {
            kind,
            agent,
            toml,
            model: None,
        }
    }

    /// The folder of recorded responses a transport reads: `stream/` for SSE, `whole/`
    /// for the others, or the kind's own folder when it serves both alike.
    fn responses(&self, transport: Transport) -> std::path::PathBuf {
        let dir = corpus(self.kind);
        let sub = dir.join(if transport == Sse { "stream" } else { "whole" });
        if sub.is_dir() { sub } else { dir }
    }

    /// Runs `prompts` in order on one session through `transport`.
    async fn run(&self, transport: Transport, prompts: &[&str]) -> Run {
        let replay = Replay::from_dir(&self.responses(transport)).await;
        let project = self.project();
        let mut options = project.options_with_env(replay_env(&replay));
        options.config = flue_host::ProjectConfig::load(project.path()).unwrap();
        let server = InProcessServer::start(project.host_with(options).await).await;
        let url = format!("{}/agents/{}/case-1", server.url, self.agent);
        let mut seen = Vec::new();
        for prompt in prompts {
            let mut body = json!({"message": prompt, "session": "s"});
            if let Some(model) = self.model {
                body["model"] = json!(model);
            }
            seen.push(match transport {
                Json => json_prompt(&url, &body).await,
                Sse => sse_prompt(&url, &body).await,
                WebSocket => ws_prompt(&url, &body).await,
            });
        }
        let history =
            flue_tests::get_json(&reqwest::Client::new(), format!("{url}/sessions/s")).await;
        server.stop().await;
        Run {
            seen,
            requests: replay.requests(),
            history: history["messages"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// A project with the case's agent and `flue.toml`; the reviewer also gets its skill
    /// and a folder to review.
    fn project(&self) -> Project {
        let project = Project::empty();
        project.add_agent(self.agent, &guest(&format!("agents/{}", self.agent)));
        if self.agent == "coordinator" {
            project.add_agent("reviewer", &guest("agents/reviewer"));
        }
        std::fs::write(project.path().join("flue.toml"), self.toml).unwrap();
        let skill = flue_tests::workspace().join("skills/code-review/SKILL.md");
        std::fs::create_dir_all(project.path().join("skills/code-review")).unwrap();
        std::fs::copy(skill, project.path().join("skills/code-review/SKILL.md")).unwrap();
        std::fs::create_dir_all(project.path().join("repo/src")).unwrap();
        std::fs::write(project.path().join("repo/src/lib.rs"), "fn main() {}\n").unwrap();
        project
    }
}

/// Every provider pointed at the replay, with test keys.
fn replay_env(replay: &Replay) -> BTreeMap<String, String> {
    [
        ("ANTHROPIC_API_KEY", "test-key".to_string()),
        ("ANTHROPIC_BASE_URL", replay.anthropic_url()),
        ("OPENAI_API_KEY", "test-key".to_string()),
        ("OPENAI_BASE_URL", replay.openai_url()),
        ("OLLAMA_BASE_URL", replay.openai_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn json_prompt(url: &str, body: &Value) -> Seen {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = response.json().await.unwrap();
    Seen {
        status,
        retry_after,
        text: body["result"]["text"].as_str().map(str::to_string),
        result: body.get("result").cloned(),
        error: body.get("error").cloned(),
        events: Vec::new(),
    }
}

async fn sse_prompt(url: &str, body: &Value) -> Seen {
    let response = reqwest::Client::new()
        .post(url)
        .header("accept", "text/event-stream")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(str::trim).map(str::to_string))
            };
            Some((
                field("event:")?,
                serde_json::from_str(&field("data:")?).ok()?,
            ))
        })
        .collect();
    let end = events
        .iter()
        .find(|(kind, _)| kind == "end")
        .map(|(_, d)| d);
    let error = events
        .iter()
        .find(|(kind, _)| kind == "error")
        .map(|(_, d)| d);
    Seen {
        status,
        retry_after: None,
        text: end.and_then(|d| d["text"].as_str()).map(str::to_string),
        result: end.map(|d| d["result"].clone()),
        error: error.map(|d| d["error"].clone()),
        events,
    }
}

async fn ws_prompt(url: &str, body: &Value) -> Seen {
    let (mut socket, _) = tokio_tungstenite::connect_async(url.replacen("http", "ws", 1))
        .await
        .unwrap();
    let mut message = body.clone();
    message["type"] = json!("prompt");
    socket
        .send(WsMessage::Text(message.to_string().into()))
        .await
        .unwrap();
    let reply = loop {
        match socket.next().await.expect("a reply").unwrap() {
            WsMessage::Text(text) => break serde_json::from_str::<Value>(&text).unwrap(),
            _ => continue,
        }
    };
    Seen {
        status: 101,
        retry_after: None,
        text: reply["result"]["text"].as_str().map(str::to_string),
        result: reply.get("result").cloned(),
        error: reply.get("error").cloned(),
        events: Vec::new(),
    }
}

/// The messages a request sent (OpenAI includes the system prompt among them).
fn messages(request: &Recorded) -> &Vec<Value> {
    request.body["messages"].as_array().expect("messages")
}

/// The tool results a request carries, as `(id, content)`, in either wire format.
fn tool_results(request: &Recorded) -> Vec<(String, String)> {
    let mut results = Vec::new();
    for m in messages(request) {
        if m["role"] == "tool" {
            results.push((
                m["tool_call_id"].as_str().unwrap().into(),
                m["content"].as_str().unwrap().into(),
            ));
        }
        for block in m["content"].as_array().into_iter().flatten() {
            if block["type"] == "tool_result" {
                results.push((
                    block["tool_use_id"].as_str().unwrap().into(),
                    block["content"].as_str().unwrap().into(),
                ));
            }
        }
    }
    results
}

const OPENAI_COMPATIBLE: &str =
    "[models]\n\"anthropic/claude-haiku-4-5\" = \"openai/MiniMax-M2\"\n";
const OLLAMA: &str = "[models]\n\"anthropic/claude-haiku-4-5\" = \"ollama/qwen2.5\"\n";

#[tokio::test]
async fn a_stream_that_finished_without_its_end_marker_is_answered_and_stored() {
    let case = Case::new(
        "openai-finish-without-done",
        "support_assistant",
        OPENAI_COMPATIBLE,
    );
    let run = case.run(Sse, &["hi", "and now?"]).await;
    assert_eq!(
        run.seen[0].text.as_deref(),
        Some("Complete answer."),
        "{:?}",
        run.seen[0]
    );
    assert_eq!(run.seen[1].text.as_deref(), Some("Second answer."));
    let second = messages(&run.requests[1]);
    assert!(
        second.contains(&json!({"role": "assistant", "content": "Complete answer."})),
        "the second call saw the first answer: {second:?}"
    );
    assert_eq!(run.history.len(), 4, "{:?}", run.history);
}

#[tokio::test]
async fn tool_arguments_sent_as_an_object_reach_the_tool() {
    let case = Case::new("openai-object-arguments", "support_assistant", OLLAMA);
    for transport in [Json, Sse, WebSocket] {
        let run = case.run(transport, &["status with detail"]).await;
        assert_eq!(
            run.seen[0].text.as_deref(),
            Some("done"),
            "{transport:?}: {:?}",
            run.seen[0]
        );
        let results = tool_results(&run.requests[1]);
        assert_eq!(results.len(), 1, "{transport:?}");
        assert!(
            results[0].1.contains("refund approved"),
            "{transport:?}: the tool got detail=true: {results:?}"
        );
        assert_eq!(
            run.history[1]["tool_calls"][0]["arguments"],
            json!({"detail": true})
        );
    }
}

#[tokio::test]
async fn tool_calls_that_share_an_index_or_carry_none_stay_apart() {
    for kind in ["openai-calls-share-index", "openai-calls-without-index"] {
        let run = Case::new(kind, "support_assistant", OLLAMA)
            .run(Sse, &["status twice"])
            .await;
        let results = tool_results(&run.requests[1]);
        let ids: Vec<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["call_a", "call_b"], "{kind}");
        assert!(
            results[0].1.contains("refund approved"),
            "{kind}: {results:?}"
        );
        assert!(
            !results[1].1.contains("refund approved"),
            "{kind}: {results:?}"
        );
        let started: Vec<&str> = run.seen[0]
            .events
            .iter()
            .filter(|(k, _)| k == "tool_start")
            .map(|(_, data)| data["toolCallId"].as_str().unwrap())
            .collect();
        assert_eq!(started, ["call_a", "call_b"], "{kind}");
        let stored: Vec<&str> = run.history[1]["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(stored, started, "{kind}");
        assert_eq!(run.seen[0].text.as_deref(), Some("done"));
    }
}

#[tokio::test]
async fn tool_calls_without_ids_get_their_own_and_tasks_stay_apart() {
    let case = Case {
        model: Some("ollama/llama3.2"),
        ..Case::new("openai-calls-without-id", "coordinator", "")
    };
    for transport in [Json, WebSocket] {
        let run = case.run(transport, &["release 1", "release 2"]).await;
        assert_eq!(
            run.seen[1].text.as_deref(),
            Some("release notes 2"),
            "{transport:?}"
        );
        let call_id = |request: &Recorded| {
            let calls = messages(request)
                .iter()
                .rev()
                .find_map(|m| m["tool_calls"].as_array())
                .expect("an assistant turn with a tool call");
            calls[0]["id"].as_str().unwrap().to_string()
        };
        let (first, second) = (call_id(&run.requests[2]), call_id(&run.requests[5]));
        assert!(!first.is_empty() && first != second, "{first} {second}");
        assert_eq!(
            tool_results(&run.requests[2])[0].0,
            first,
            "the result names its call"
        );
        let helper = serde_json::to_string(messages(&run.requests[4])).unwrap();
        assert!(helper.contains("mk-BRAVO"), "{helper}");
        assert!(
            !helper.contains("ALPHA"),
            "the second task saw the first one's conversation: {helper}"
        );
    }
}

/// An overloaded provider (an `overloaded_error` event, HTTP 529) and one that closed
/// the connection before any answer are each tried again, and the second answer is the
/// prompt's.
#[tokio::test]
async fn a_provider_that_fails_once_is_retried_and_then_answers() {
    let toml = "[providers.anthropic]\nretry_delay_ms = 10\n";
    for kind in ["anthropic-overloaded", "anthropic-hung-up"] {
        let case = Case::new(kind, "support_assistant", toml);
        for transport in [Json, Sse, WebSocket] {
            let run = case.run(transport, &["hi"]).await;
            assert_eq!(
                run.seen[0].text.as_deref(),
                Some("Second attempt worked."),
                "{kind} {transport:?}: {:?}",
                run.seen[0]
            );
            assert_eq!(run.requests.len(), 2, "{kind} {transport:?}: one retry");
            assert_eq!(run.history.len(), 2, "{kind} {transport:?}");
        }
    }
}

#[tokio::test]
async fn when_retries_run_out_the_caller_is_told_to_come_back_later() {
    let toml = "[providers.anthropic]\nretry_delay_ms = 10\nmax_retries = 2\n";
    let overloaded = Case::new("anthropic-always-overloaded", "support_assistant", toml);
    for transport in [Json, Sse, WebSocket] {
        let run = overloaded.run(transport, &["hi"]).await;
        let seen = &run.seen[0];
        assert_eq!(
            seen.error.as_ref().unwrap()["type"],
            "model_unavailable",
            "{transport:?}: {seen:?}"
        );
        assert_eq!(
            run.requests.len(),
            3,
            "{transport:?}: the first attempt and two retries"
        );
        let roles = run.roles();
        assert_eq!(roles, ["user"], "{transport:?}: the user's message is kept");
        if transport == Json {
            assert_eq!(seen.status, 503);
            assert!(
                seen.retry_after.is_some(),
                "the caller learns when to come back"
            );
        }
    }
    let limited = Case::new("anthropic-rate-limited", "support_assistant", toml);
    let run = limited.run(Json, &["hi"]).await;
    let seen = &run.seen[0];
    assert_eq!(
        (seen.status, seen.retry_after.as_deref()),
        (429, Some("45")),
        "{seen:?}"
    );
    assert_eq!(seen.error.as_ref().unwrap()["type"], "model_rate_limited");
    assert_eq!(
        run.requests.len(),
        1,
        "a wait longer than the host's goes to the caller"
    );
}

#[tokio::test]
async fn thinking_blocks_go_back_unchanged_and_the_reviewers_tool_round_finishes() {
    let toml = "[agents.reviewer]\nlocal_dirs = [\"repo\"]\ncommands = [\"ls\"]\nenv = { REPO = \"repo\" }\n";
    let case = Case::new("anthropic-thinking-tool-round", "reviewer", toml);
    for transport in [Json, Sse, WebSocket] {
        let run = case.run(transport, &["review the project"]).await;
        assert_eq!(
            run.seen[0].text.as_deref(),
            Some("No blocking issues."),
            "{transport:?}: {:?}",
            run.seen[0]
        );
        assert_eq!(run.requests[0].body["thinking"]["type"], "enabled");
        // Anthropic's rule: with thinking on, the assistant turn before the tool results
        // starts with its thinking block, signature and all.
        let second = messages(&run.requests[1]);
        let turn = &second[second.len() - 2]["content"];
        assert_eq!(
            turn[0],
            json!({"type": "thinking", "thinking": "I should list the files first.", "signature": "EqQBCkYIBxgCKkBsig"}),
            "{transport:?}"
        );
        assert_eq!(turn[1]["type"], "tool_use");
        assert!(tool_results(&run.requests[1])[0].1.contains("src"));
        for (kind, data) in &run.seen[0].events {
            assert!(
                !data.to_string().contains("I should list"),
                "thinking reached the caller as {kind}"
            );
        }
        assert_eq!(
            run.history[1]["reasoning"][0]["signature"],
            "EqQBCkYIBxgCKkBsig"
        );
    }
}

#[tokio::test]
async fn requests_fit_what_the_model_accepts() {
    let sent = |model: &'static str, toml: &'static str| async move {
        let case = Case {
            model: Some(model),
            ..Case::new("openai-reasoning-model", "support_assistant", toml)
        };
        let run = case.run(Json, &["hi"]).await;
        assert_eq!(run.seen[0].text.as_deref(), Some("ok"), "{model}");
        run.requests[0].body.clone()
    };
    let reasoning = sent("openai/o3-mini", "").await;
    assert_eq!(reasoning["max_completion_tokens"], 4096);
    assert!(reasoning.get("max_tokens").is_none());
    let gpt5 = sent("openai/gpt-5-mini", "").await;
    assert!(gpt5.get("max_tokens").is_none() && gpt5["max_completion_tokens"].is_u64());
    let chat = sent("openai/gpt-4o-mini", "").await;
    assert_eq!(chat["max_tokens"], 4096);
    assert!(chat.get("max_completion_tokens").is_none());
    let table =
        "[providers.ollama.models.\"qwen3-*\"]\ntoken_limit_field = \"max_completion_tokens\"\n";
    let configured = sent("ollama/qwen3-8b", table).await;
    assert!(configured.get("max_tokens").is_none() && configured["max_completion_tokens"].is_u64());
}

#[tokio::test]
async fn crlf_pings_comments_and_empty_tool_input_pass() {
    let run = Case::new("anthropic-crlf-pings-empty-input", "support_assistant", "")
        .run(Sse, &["status?"])
        .await;
    assert_eq!(
        run.seen[0].text.as_deref(),
        Some("Ticket is open."),
        "{:?}",
        run.seen[0]
    );
    let results = tool_results(&run.requests[1]);
    assert_eq!(results[0].0, "toolu_02");
    assert!(
        results[0].1.contains("open") && !results[0].1.contains("refund"),
        "{results:?}"
    );
    assert_eq!(run.history[1]["tool_calls"][0]["arguments"], json!({}));
}

#[tokio::test]
async fn usage_in_a_last_chunk_is_counted_and_reasoning_text_is_not_the_answer() {
    let run = Case::new(
        "openai-usage-final-chunk",
        "support_assistant",
        OPENAI_COMPATIBLE,
    )
    .run(Sse, &["hi"])
    .await;
    assert_eq!(run.seen[0].text.as_deref(), Some("Usage counted."));
    let usage = &run.seen[0].result.as_ref().unwrap()["usage"];
    assert_eq!(
        (usage["input"].as_u64(), usage["cache_read"].as_u64()),
        (Some(2), Some(40))
    );
    assert_eq!(usage["output"], 3);
}

#[tokio::test]
async fn a_turn_that_fails_after_a_tool_round_keeps_what_happened() {
    let case = Case::new("anthropic-fails-after-tool-round", "support_assistant", "");
    for transport in [Json, WebSocket] {
        let run = case.run(transport, &["status?", "and now?"]).await;
        let failed = &run.seen[0];
        assert_eq!(
            failed.error.as_ref().unwrap()["type"],
            "model_error",
            "{transport:?}: {failed:?}"
        );
        assert_eq!(run.requests.len(), 3, "a refusal is not retried");
        assert_eq!(run.seen[1].text.as_deref(), Some("Back again."));
        // The user's message, the tool call and its result were kept; the next prompt
        // carried them.
        let roles = run.roles();
        assert_eq!(
            roles,
            ["user", "assistant", "tool", "user", "assistant"],
            "{transport:?}"
        );
        assert!(
            tool_results(&run.requests[2])[0]
                .1
                .contains("refund approved")
        );
    }
}

#[tokio::test]
async fn flue_run_gives_each_task_of_id_less_tool_calls_its_own_session() {
    let replay = Replay::from_dir(&corpus("openai-calls-without-id").join("whole")).await;
    let project = Project::empty();
    project.add_agent("coordinator", &guest("agents/coordinator"));
    project.add_agent("reviewer", &guest("agents/reviewer"));
    for prompt in ["release 1", "release 2"] {
        let output = tokio::process::Command::new(flue_binary())
            .current_dir(project.path())
            .envs(replay_env(&replay))
            .env("FLUE_COMPILE_CACHE", flue_tests::compile_cache())
            .args([
                "run",
                "coordinator",
                "--no-build",
                "--id",
                "rel-1",
                "--session",
                "s",
            ])
            .args(["--model", "ollama/llama3.2", "--prompt", prompt, "--json"])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let requests = replay.requests();
    let helper = serde_json::to_string(messages(&requests[4])).unwrap();
    assert!(
        helper.contains("mk-BRAVO") && !helper.contains("ALPHA"),
        "{helper}"
    );
}

#[tokio::test]
async fn a_failure_after_text_reached_the_caller_is_not_retried() {
    let toml = "[providers.anthropic]\nretry_delay_ms = 10\n";
    let run = Case::new("anthropic-error-after-text", "support_assistant", toml)
        .run(Sse, &["hi"])
        .await;
    let seen = &run.seen[0];
    let deltas: Vec<&str> = seen
        .events
        .iter()
        .filter(|(k, _)| k == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        deltas.concat(),
        "Partial answ",
        "the text arrived once: {seen:?}"
    );
    assert_eq!(seen.error.as_ref().unwrap()["type"], "model_unavailable");
    assert_eq!(run.requests.len(), 1, "no second call once text was shown");
}

#[tokio::test]
async fn a_server_that_ignores_stream_and_answers_whole_is_understood() {
    let run = Case::new(
        "openai-whole-answer-to-a-stream",
        "support_assistant",
        OPENAI_COMPATIBLE,
    )
    .run(Sse, &["hi"])
    .await;
    assert_eq!(run.requests[0].body["stream"], true);
    assert_eq!(
        run.seen[0].text.as_deref(),
        Some("Whole anyway."),
        "{:?}",
        run.seen[0]
    );
}

/// The embedded provider through the real engine, on the small pinned model (fetched
/// into the model cache if need be) named by the path `[local] model` gives: an answer
/// streamed in deltas that add up to it, counted in tokens, the same answer again for
/// the same prompt (greedy decoding), the next round reading only what is new, the same
/// file by its pinned name, no other path opened for a model an agent or a caller
/// names, and the model unloaded when idle.
#[tokio::test]
async fn the_embedded_model_streams_counts_and_reuses_what_it_read() {
    let _turn = flue_tests::heavy_turn().await;
    use flue_host::Event;
    use flue_host::weights::{self, ModelCache};

    let small = weights::pinned("smollm2-135m-instruct").unwrap();
    let path = weights::ensure(&ModelCache::default(), small).unwrap();
    let project = Project::new();
    let mut options = project.options_with_env(BTreeMap::new());
    options.config.local.model = Some(path.display().to_string());
    let host = project.host_with(options).await;
    let agent = host.init_agent("support_assistant", "t-7").await.unwrap();

    let first = agent.session("one");
    let mut deltas = String::new();
    let result = first
        .stream("Say hello.", |event| {
            if let Event::TextDelta { text } = event {
                deltas.push_str(&text);
            }
        })
        .await
        .unwrap();
    assert_eq!(result.model, format!("local/{}", path.display()));
    assert!(!result.text.is_empty());
    assert_eq!(
        deltas.trim(),
        result.text,
        "the deltas add up to the answer"
    );
    assert!(
        result.usage.input > 50 && result.usage.output > 0,
        "{:?}",
        result.usage
    );

    let again = agent.session("two").prompt("Say hello.").await.unwrap();
    assert_eq!(again.text, result.text, "greedy decoding answers alike");

    let next = first.prompt("And goodbye?").await.unwrap();
    assert!(
        next.usage.cache_read > next.usage.input,
        "the second round reads only what is new: {:?}",
        next.usage
    );

    let by_name = host
        .init_agent("support_assistant", "t-8")
        .await
        .unwrap()
        .with_model("local/smollm2-135m-instruct");
    let answered = by_name.session("s").prompt("Say hello.").await.unwrap();
    assert_eq!(
        answered.text, result.text,
        "the same file by its pinned name"
    );

    for model in [
        "local//etc/passwd.gguf",
        "local/../x.gguf",
        "local/absent.gguf",
    ] {
        let agent = host
            .init_agent("support_assistant", "t-9")
            .await
            .unwrap()
            .with_model(model);
        let err = agent.session("s").prompt("hi").await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("unknown local model")
                || message.contains("no 'absent.gguf' in the model cache"),
            "{model}: {message}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{model}");
        assert_eq!(
            flue_host::server::status_of(err.kind()).as_u16(),
            400,
            "{model}"
        );
    }

    // Unloaded when idle: the next round, loaded afresh, has nothing to reuse.
    let project = Project::new();
    let mut options = project.options_with_env(BTreeMap::new());
    options.config.local.model = Some(path.display().to_string());
    options.config.local.idle_unload_secs = Some(1);
    let host = project.host_with(options).await;
    let agent = host.init_agent("support_assistant", "t-10").await.unwrap();
    agent.session("s").prompt("Say hello.").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let after_idle = agent.session("s").prompt("And goodbye?").await.unwrap();
    assert_eq!(
        after_idle.usage.cache_read, 0,
        "an idle model is unloaded: {:?}",
        after_idle.usage
    );
}
