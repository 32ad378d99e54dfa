//! Serving figures: prompts per second and latency through the HTTP server at
//! concurrency 1 and 32 over 100 instance ids (instant fake provider, all on loopback),
//! and resident memory per idle live instance after 10,000 distinct ids. Each task starts
//! a new session every [`PROMPTS_PER_SESSION`] prompts, so histories stay short (a real
//! model's time would dwarf the cost of a long one) and one prompt in ten opens a session.
//!
//! Run with `cargo run --release -p flue-tests --bin bench-serve`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flue_tests::{FakeProvider, InProcessServer, Project, Reply, Turn, guest};

const PROMPTS_PER_TASK: usize = 1000;
const PROMPTS_PER_SESSION: usize = 10;

/// Resident set size of this process, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc is readable");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm has a resident field");
    pages * 4096
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

async fn load(url: &str, concurrency: usize) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (client, url) = (client.clone(), url.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PROMPTS_PER_TASK);
                for i in 0..PROMPTS_PER_TASK {
                    // At any moment the tasks address distinct ids.
                    let id = (i * concurrency + t) % 100;
                    let session = format!("s{t}-{}", i / PROMPTS_PER_SESSION);
                    let body = serde_json::json!({"message": "hello", "session": session});
                    let sent = Instant::now();
                    let response = client
                        .post(format!("{url}/agents/support_assistant/id-{id}"))
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
    latencies.sort();
    println!(
        "concurrency {concurrency:>2}: {:>7.0} prompts/s   p50 {:>8.2?}   p90 {:>8.2?}   p99 {:>8.2?}   max {:>8.2?}   ({} prompts)",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len()
    );
}

#[tokio::main]
async fn main() {
    let fake = FakeProvider::unrecorded(|_: &Turn| Reply::Text("ok".into())).await;
    let project = Project::empty();
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    let mut options = project.options(&fake);
    options.config.limits.max_instances = Some(10_100);
    let host = flue_host::Host::open(options)
        .await
        .expect("the host starts");

    let server = InProcessServer::start(host.clone()).await;
    let url = server.url.clone();

    load(&url, 1).await; // warm-up: instances created, caches filled
    for concurrency in [1, 32] {
        load(&url, concurrency).await;
    }

    let host = Arc::new(host);
    let before = resident_bytes();
    let live_before = host.live_instances();
    for i in 0..10_000 {
        host.init_agent("support_assistant", &format!("idle-{i}"))
            .await
            .expect("an instance");
    }
    let added = host.live_instances() - live_before;
    let grown = resident_bytes().saturating_sub(before);
    println!(
        "idle instances: {added} created, resident memory +{:.1} MiB, {:.1} KiB per idle instance",
        grown as f64 / (1 << 20) as f64,
        grown as f64 / 1024.0 / added as f64
    );
    server.stop().await;
}
