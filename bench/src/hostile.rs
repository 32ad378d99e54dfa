//! A healthy agent's latency while other guests misbehave: p99 of prompts to
//! `support_assistant` (one tool call each) alone and while each kind of hostile guest
//! runs (the failing attacks, and a guest trying to escape its sandbox), then alone and
//! while all of them do. Limits as in the tests (300 ms CPU, 6 s wall and 32 MiB per
//! call).
//!
//! Run with `cargo run --release -p flue-bench --bin bench-hostile`; name phases (`hog`,
//! `all`) after `--` to run only those.

use std::time::Duration;

use flue_tests::hostile::{ATTACKS, Attack, ESCAPE, healthy_latencies, p99, tool_by_prompt};
use flue_tests::{FakeProvider, Project};

/// Prompts measured in each phase alone, then as many under attack: each phase has a
/// baseline of its own because the machine's speed drifts within minutes.
const SAMPLES: usize = 3000;

fn report(label: &str, alone: &[Duration], attacked: &[Duration]) {
    println!(
        "{label:<14} alone p99 {:>9.2?}   attacked p50 {:>9.2?}   p99 {:>9.2?}   p99 ×{:.2} of alone",
        p99(alone),
        attacked[attacked.len() / 2],
        p99(attacked),
        p99(attacked).as_secs_f64() / p99(alone).as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let fake = FakeProvider::unrecorded(tool_by_prompt).await;
    let project = Project::new();
    let host = project.host(&fake).await;
    healthy_latencies(&host, 100).await; // warm-up
    let chosen: Vec<String> = std::env::args().skip(1).collect();
    let attacks: Vec<&'static str> = ATTACKS.iter().copied().chain([ESCAPE]).collect();
    let phases = attacks.iter().map(|attack| (*attack, vec![*attack]));
    let phases = phases.chain([("all at once", attacks.clone())]);
    let phases = phases.filter(|(label, _)| {
        chosen.is_empty() || chosen.iter().any(|c| label.starts_with(c.as_str()))
    });
    for (label, attacks) in phases {
        let alone = healthy_latencies(&host, SAMPLES).await;
        let attack = Attack::start(&host, &attacks);
        let attacked = healthy_latencies(&host, SAMPLES).await;
        attack.stop().await;
        report(label, &alone, &attacked);
    }
}
