//! Local-model figures, on the pinned default model (fetched into the model cache first
//! if need be): load time, prompt reading and writing in tokens/s, time to the first
//! token, the README's turn (the support agent asked for its ticket's status, with no
//! API key, so the host falls back to the embedded model: a tool call and an answer)
//! with 1 and with 4 sessions at once, and resident memory.
//!
//! Run with `cargo run --release -p flue-bench --bin bench-local [threads]`
//! (threads default to the host's own choice for this machine).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flue_host::models::local::{Engine, LocalSettings};
use flue_host::weights::{self, ModelCache};
use flue_tests::Project;

const README_PROMPT: &str = "What is the status of my ticket?";

/// Resident memory now and at its peak, in MiB.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    format!("RSS {} MiB, peak {} MiB", field("VmRSS:"), field("VmHWM:"))
}

fn per_second(tokens: usize, took: Duration) -> f64 {
    tokens as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let threads = std::env::args()
        .nth(1)
        .map(|t| t.parse().expect("threads is a number"));
    let settings = LocalSettings {
        threads,
        ..LocalSettings::default()
    };
    let threads = settings.threads();
    let model = weights::pinned(weights::DEFAULT_MODEL).expect("the default is pinned");
    let path = weights::ensure(&ModelCache::default(), model).expect("the weights are there");
    println!("model {} on {threads} thread(s)", model.name);

    let started = Instant::now();
    let mut engine = Engine::load(&path, threads, 4096).expect("the model loads");
    println!("{:<44} {:>8.2?}  ({})", "load", started.elapsed(), memory());

    let prompt = format!(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
        "Explain in a few sentences what a WebAssembly component is and why one would \
         run untrusted code in one. "
            .repeat(6)
    );
    let tokens = engine.tokenize(&prompt).expect("the prompt tokenizes");
    let mut first_text = None;
    let writing_started = Instant::now();
    let mut on_text = |_: &str| {
        first_text.get_or_insert_with(|| writing_started.elapsed());
    };
    let done = engine
        .generate(&tokens, 64, false, &mut on_text, &|| false)
        .expect("the model writes");
    println!(
        "{:<44} {:>8.1} tokens/s  ({} tokens in {:.2?})",
        "prompt reading",
        per_second(done.prompt_read, done.reading),
        done.prompt_read,
        done.reading
    );
    println!(
        "{:<44} {:>8.2?}",
        "time to first token (prompt read + 1 token)",
        first_text.unwrap_or_default()
    );
    println!(
        "{:<44} {:>8.1} tokens/s  ({} tokens in {:.2?})",
        "writing",
        per_second(done.output_tokens, done.writing),
        done.output_tokens,
        done.writing
    );
    println!("{:<44} {}", "after one generation", memory());
    engine.clear();
    let again = engine
        .generate(&tokens, 1, false, &mut |_| {}, &|| false)
        .expect("the model reads");
    println!(
        "{:<44} {:>8.1} tokens/s  ({} tokens in {:.2?})",
        "prompt reading, weights warm",
        per_second(again.prompt_read, again.reading),
        again.prompt_read,
        again.reading
    );
    drop(engine);

    let project = Project::new();
    let mut options = project.options_with_env(BTreeMap::new());
    options.config.local = settings;
    let host = project.host_with(options).await;
    for sessions in [1, 4] {
        let started = Instant::now();
        let turns = (0..sessions).map(|i| {
            let host = &host;
            async move {
                let started = Instant::now();
                let harness = host
                    .init_agent("support_assistant", &format!("ticket-{sessions}-{i}"))
                    .await
                    .expect("the agent starts");
                let session = harness.session("default");
                let result = session
                    .prompt(README_PROMPT)
                    .await
                    .expect("the turn is answered");
                let took = started.elapsed();
                let history = session.history().await.expect("the history reads");
                (took, result, history)
            }
        });
        let results = futures_util::future::join_all(turns).await;
        let wall = started.elapsed();
        for (took, result, history) in &results {
            let called = history
                .iter()
                .any(|m| matches!(m, flue_host::models::Message::Tool { .. }));
            println!(
                "{:<44} {:>8.2?}  tool called: {called}; {} tokens in, {} out: {}",
                format!("README turn, {sessions} session(s) at once"),
                took,
                result.usage.input + result.usage.cache_read,
                result.usage.output,
                result.text.replace('\n', " ")
            );
        }
        println!("{:<44} {:>8.2?}", format!("all {sessions} turn(s)"), wall);
    }
    println!("{:<44} {}", "end", memory());
}
