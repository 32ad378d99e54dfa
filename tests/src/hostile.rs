//! Driving the `hostile` test agent: a model script that calls the tool a prompt names,
//! attackers that keep its misbehaving tools running, and the healthy agent's prompts
//! whose latency is compared with and without them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flue_host::{Error, Host};

use crate::{Reply, Turn, ticket_script};

/// The hostile agent's ways to fail on purpose: its tools (a CPU loop, a memory bomb, a
/// stack overflow, a panic, 8 MiB of text, bytes that are not UTF-8, a sleep past the wall
/// bound) and the instances whose `create` misbehaves (a CPU loop, a 4 MiB configuration).
pub const ATTACKS: [&str; 9] = [
    "spin",
    "hog",
    "recurse",
    "boom",
    "flood",
    "garbage",
    "nap",
    "loop-in-create",
    "huge-config",
];

/// The hostile agent's tool that tries to reach files, environment variables and
/// sockets: it answers with what it found (nothing), so its calls do not fail.
pub const ESCAPE: &str = "escape";

/// The attacks that happen in `create`: each names the instance ids that set it off
/// (the name, or the name, `#` and anything).
const CREATE_ATTACKS: [&str; 2] = ["loop-in-create", "huge-config"];

/// The model calls the tool named by the prompt ("call spin", or "call escape {json
/// args}"), then repeats its result; other prompts get [`ticket_script`].
pub fn tool_by_prompt(turn: &Turn) -> Reply {
    if let Some(result) = &turn.last_tool_result {
        return Reply::Text(format!("tool said: {result}"));
    }
    match turn
        .last_user_text
        .as_deref()
        .and_then(|t| t.strip_prefix("call "))
    {
        Some(call) => {
            let (name, args) = call.split_once(' ').unwrap_or((call, "{}"));
            Reply::ToolCall {
                name: name.to_string(),
                args: serde_json::from_str(args).expect("JSON tool arguments"),
            }
        }
        None => ticket_script(turn),
    }
}

/// How the answer starts when the hostile tool failed (a trap, a limit, an answer
/// refused): the host gave the model the failure as the tool's error result, and the
/// script repeats it.
pub const TOOL_FAILED: &str = "tool said: the tool failed: ";

/// The failure a hostile call met: its instance's start (an error), or its tool (the
/// failure the model was told of). `None` if it did not fail.
pub fn failure(outcome: Result<String, Error>) -> Option<String> {
    match outcome {
        Err(e) => Some(e.to_string()),
        Ok(text) => text.starts_with(TOOL_FAILED).then_some(text),
    }
}

/// Has the hostile agent's instance `id` call `tool` (with optional JSON arguments
/// after a space) and returns the final text.
pub async fn call(host: &Host, id: &str, tool: &str) -> Result<String, Error> {
    let harness = host.init_agent("hostile", id).await?;
    Ok(harness
        .session("s")
        .prompt(&format!("call {tool}"))
        .await?
        .text)
}

/// One prompt to the healthy agent (`support_assistant`, which calls its own tool), each
/// in a new session so that every one does the same work.
pub async fn healthy_answer(host: &Host) -> String {
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
    host.init_agent("support_assistant", "ticket-1")
        .await
        .expect("the healthy agent starts")
        .session(&format!("s{n}"))
        .prompt("status?")
        .await
        .expect("the healthy agent answers")
        .text
}

/// Latencies of `n` healthy prompts, one after another, sorted.
pub async fn healthy_latencies(host: &Host, n: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        assert!(healthy_answer(host).await.contains("ticket-1"));
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies
}

/// Attackers, one per attack, each calling again 20 ms after its last call ended: the
/// guests misbehave, their callers are no flood of requests. An attack in `create`
/// starts a new instance each time, which the host's back-off for an instance that keeps
/// failing to start does not hold up.
pub struct Attack {
    stop: Arc<AtomicBool>,
    attackers: Vec<tokio::task::JoinHandle<(u32, u32)>>,
}

impl Attack {
    /// Starts one attacker per attack, each on its own instance.
    pub fn start(host: &Host, attacks: &[&'static str]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let attackers = attacks
            .iter()
            .map(|&attack| {
                let (host, stop) = (host.clone(), stop.clone());
                let in_create = CREATE_ATTACKS.contains(&attack);
                tokio::spawn(async move {
                    let (mut calls, mut failures) = (0, 0);
                    while !stop.load(Ordering::Relaxed) {
                        calls += 1;
                        let id = match in_create {
                            true => format!("{attack}#{calls}"),
                            false => format!("attack-{attack}"),
                        };
                        failures += failure(call(&host, &id, attack).await).is_some() as u32;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    (calls, failures)
                })
            })
            .collect();
        Self { stop, attackers }
    }

    /// Stops the attackers and returns, for each, how many calls it made and how many
    /// of them failed.
    pub async fn stop(self) -> Vec<(u32, u32)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for attacker in self.attackers {
            outcomes.push(attacker.await.expect("the attacker finishes"));
        }
        outcomes
    }
}

/// The 99th percentile of sorted latencies.
pub fn p99(sorted: &[Duration]) -> Duration {
    crate::load::percentile(sorted, 0.99)
}
