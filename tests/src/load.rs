//! The load generator the serving benchmarks share: concurrent clients prompting over
//! HTTP, and latency percentiles.

use std::time::{Duration, Instant};

/// Prompts each client task sends.
pub const PROMPTS_PER_TASK: usize = 1000;
/// Prompts per session before a task opens a new one: histories stay short (a real
/// model's time would dwarf the cost of a long one) and one prompt in ten opens a session.
pub const PROMPTS_PER_SESSION: usize = 10;

/// CPU time this process has used so far (user and system, all threads).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc is readable");
    // After the command name (which may hold spaces) come the state, then 10 fields,
    // then utime and stime, in clock ticks of 1/100 s.
    let ticks: u64 = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse::<u64>().expect("a tick count"))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// The `q` quantile (0.0..=1.0) of sorted latencies.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

/// Sends [`PROMPTS_PER_TASK`] prompts from each of `concurrency` tasks to
/// `support_assistant` over 100 instance ids, spread over `servers` in turn (like a
/// round-robin load balancer, so one session's prompts reach every server), and prints
/// prompts per second and latency percentiles under `label`.
pub async fn prompts(label: &str, servers: &[String], concurrency: usize) {
    let client = reqwest::Client::new();
    // The URL of every instance on every server, parsed once: `urls[server][id]`.
    let urls: Vec<Vec<reqwest::Url>> = servers
        .iter()
        .map(|server| {
            (0..100)
                .map(|id| {
                    reqwest::Url::parse(&format!("{server}/agents/support_assistant/id-{id}"))
                        .expect("a URL")
                })
                .collect()
        })
        .collect();
    let (started, cpu_before) = (Instant::now(), cpu_time());
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (client, urls) = (client.clone(), urls.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PROMPTS_PER_TASK);
                for i in 0..PROMPTS_PER_TASK {
                    // At any moment the tasks address distinct ids.
                    let id = (i * concurrency + t) % 100;
                    // Tasks open sessions at their own offsets, so new sessions
                    // arrive evenly rather than all at once.
                    let session = format!("s{t}-{}", (i + t) / PROMPTS_PER_SESSION);
                    let body = serde_json::json!({"message": "hello", "session": session});
                    let url = urls[(t + i) % urls.len()][id].clone();
                    let sent = Instant::now();
                    let response = client
                        .post(url)
                        .json(&body)
                        .send()
                        .await
                        .expect("the server answers");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("a body");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("the load task finishes"));
    }
    let elapsed = started.elapsed();
    let cores = (cpu_time() - cpu_before).as_secs_f64() / elapsed.as_secs_f64();
    latencies.sort();
    println!(
        "{label} concurrency {concurrency:>2}: {:>7.0} prompts/s   p50 {:>8.2?}   p90 {:>8.2?}   p99 {:>8.2?}   max {:>8.2?}   ({} prompts, {cores:.2} cores busy)",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len()
    );
}
