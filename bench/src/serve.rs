//! Serving figures: prompts per second and latency through the HTTP server at
//! concurrency 1 and 32 over 100 instance ids (instant fake provider, all on loopback),
//! and resident memory per idle live instance after 10,000 distinct ids. Each task starts
//! a new session every ten prompts (see `flue_tests::load`).
//!
//! Run with `cargo run --release -p flue-bench --bin bench-serve`.

use std::sync::Arc;

use flue_tests::{FakeProvider, InProcessServer, Project, Reply, guest, load};

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

#[tokio::main]
async fn main() {
    let fake = FakeProvider::instant(Reply::Text("ok".into())).await;
    let project = Project::empty();
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    let mut options = project.options(&fake);
    options.config.limits.max_instances = Some(10_100);
    let host = flue_host::Host::open(options)
        .await
        .expect("the host starts");

    let server = InProcessServer::start(host.clone()).await;

    let servers = [server.url.clone()];
    load::prompts("warm-up", &servers, 1).await; // instances created, caches filled
    for concurrency in [1, 32] {
        load::prompts("one host, SQLite:", &servers, concurrency).await;
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
