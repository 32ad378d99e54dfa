//! Dispatch figures: accepted dispatches per second through the HTTP server (each
//! answered only once durably committed), and the latency from a 202 to the model
//! call that processes the event (instant fake provider, all on loopback).
//!
//! Run with `cargo run --release -p flue-bench --bin bench-dispatch`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flue_tests::load::percentile;
use flue_tests::{FakeProvider, InProcessServer, Project, Reply, Turn, guest};

const CLIENTS: usize = 64;
const PER_CLIENT: usize = 300;

#[tokio::main]
async fn main() {
    let processed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let record = processed.clone();
    let fake = FakeProvider::unrecorded(move |turn: &Turn| {
        let text = turn.last_user_text.clone().unwrap_or_default();
        if let Some(token) = text.split('"').nth(3) {
            record
                .lock()
                .unwrap()
                .entry(token.to_string())
                .or_insert_with(Instant::now);
        }
        Reply::Text("noted".into())
    })
    .await;
    let project = Project::empty();
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    let mut options = project.options(&fake);
    options.config.dispatch.workers = Some(32);
    let host = flue_host::Host::open(options)
        .await
        .expect("the host starts");
    let server = InProcessServer::start(host).await;
    let url = server.url.clone();

    let client = reqwest::Client::new();
    let started = Instant::now();
    let senders: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut accepted = Vec::with_capacity(PER_CLIENT);
                for n in 0..PER_CLIENT {
                    let token = format!("c{c}-{n}");
                    let session = format!("s{c}-{}", n / 10);
                    let body = serde_json::json!({"session": session, "input": {"token": token}});
                    let response = client
                        .post(format!(
                            "{url}/agents/support_assistant/id-{}/dispatch",
                            c % 8
                        ))
                        .json(&body)
                        .send()
                        .await
                        .expect("the server answers");
                    assert_eq!(response.status(), 202);
                    response.bytes().await.expect("a body");
                    accepted.push((token, Instant::now()));
                }
                accepted
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for sender in senders {
        accepted.extend(sender.await.expect("a sender finishes"));
    }
    let elapsed = started.elapsed();
    println!(
        "accepted {} dispatches in {:.2?} with {CLIENTS} clients: {:.0} dispatches/s (durable)",
        accepted.len(),
        elapsed,
        accepted.len() as f64 / elapsed.as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while processed.lock().unwrap().len() < accepted.len() {
        assert!(Instant::now() < deadline, "every event is processed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    let mut latencies: Vec<Duration> = {
        let seen = processed.lock().unwrap();
        accepted
            .iter()
            .map(|(token, at)| seen[token].saturating_duration_since(*at))
            .collect()
    };
    latencies.sort();
    println!(
        "processed all in {:.2?}: {:.0} events/s; accept → model call p50 {:.2?}, p99 {:.2?}",
        drained,
        accepted.len() as f64 / drained.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );

    // Unloaded: one event at a time, each waited for, so no queue forms.
    let mut unloaded = Vec::new();
    for n in 0..500 {
        let token = format!("solo-{n}");
        let body =
            serde_json::json!({"session": format!("solo-{}", n % 10), "input": {"token": token}});
        let response = client
            .post(format!("{url}/agents/support_assistant/solo/dispatch"))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 202);
        let at = Instant::now();
        loop {
            if let Some(seen) = processed.lock().unwrap().get(&token) {
                unloaded.push(seen.saturating_duration_since(at));
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    unloaded.sort();
    println!(
        "one at a time: accept → model call p50 {:.2?}, p99 {:.2?}",
        percentile(&unloaded, 0.5),
        percentile(&unloaded, 0.99)
    );
    server.stop().await;
}
