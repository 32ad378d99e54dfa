//! Core-path figures: cold start from the compile cache, instantiate + `create`, a guest
//! tool call, and one prompt turn against an instant fake provider; then, for a Rust, a
//! Python and a TypeScript agent side by side: compile time, a new instance, a tool call
//! and the resident memory of an idle instance.
//!
//! Run with `cargo run --release -p flue-bench --bin bench-core`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flue_host::models::Message;
use flue_host::runtime::{
    Completion, CompletionRequest, GuestHost, GuestLogLevel, HostError, Limits, Runtime,
};
use flue_tests::{FakeProvider, Project, Reply, guest};

/// Imports that answer instantly, so a tool call measures the guest boundary alone.
struct NoHost;

#[async_trait]
impl GuestHost for NoHost {
    async fn complete(&self, _: CompletionRequest) -> Result<Completion, HostError> {
        Err(HostError::Refused("not in benchmarks".into()))
    }
    async fn history(&self, _: String) -> Result<Vec<Message>, HostError> {
        Ok(Vec::new())
    }
    async fn state_get(&self, _: String) -> Result<Option<String>, HostError> {
        Ok(None)
    }
    async fn state_set(&self, _: String, _: String) -> Result<(), HostError> {
        Ok(())
    }
    fn log(&self, _: Option<&str>, _: GuestLogLevel, _: &str) {}
    async fn prompt_agent(
        &self,
        _: String,
        _: String,
        _: String,
        _: String,
    ) -> Result<String, HostError> {
        Err(HostError::Refused("none".into()))
    }
}

/// Prints the median and p99 of `samples` under `label`.
fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{label:<48} median {:>10.1?}  p99 {:>10.1?}  (n={})",
        at(0.5),
        at(0.99),
        samples.len()
    );
}

async fn time<F: Future<Output = ()>>(n: usize, mut f: impl FnMut(usize) -> F) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        samples.push(t.elapsed());
    }
    samples
}

#[tokio::main]
async fn main() {
    let wasm = std::fs::read(guest("agents/support_assistant")).expect("the example agent builds");
    let cache = tempfile::tempdir().expect("a temp dir");
    let runtime =
        Runtime::new(Limits::default(), cache.path().to_path_buf()).expect("the engine starts");

    let t = Instant::now();
    let compiled = runtime.compile(&wasm).expect("the example compiles");
    println!(
        "{:<48} {:>10.1?}",
        "first load (compile with Cranelift)",
        t.elapsed()
    );
    let cold = time(50, |_| async {
        assert!(runtime.compile(&wasm).expect("cached load").from_cache);
    })
    .await;
    report("cold start from cached artifact", cold);

    let host: Arc<dyn GuestHost> = Arc::new(NoHost);
    let create = time(2000, |i| {
        let host = host.clone();
        let compiled = &compiled;
        let runtime = &runtime;
        async move {
            let mut instance = runtime
                .instantiate(compiled, host, runtime.limits())
                .await
                .expect("instantiates");
            instance
                .create("support_assistant", &format!("id-{i}"), Vec::new(), None)
                .await
                .expect("creates");
        }
    })
    .await;
    report("instantiate + create (new instance id)", create);

    let mut instance = runtime
        .instantiate(&compiled, host.clone(), runtime.limits())
        .await
        .expect("instantiates");
    instance
        .create("support_assistant", "ticket-1", Vec::new(), None)
        .await
        .expect("creates");
    let mut calls = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let t = Instant::now();
        instance
            .call_tool("s", "ticket_status", "{}")
            .await
            .expect("no trap")
            .expect("tool ok");
        calls.push(t.elapsed());
    }
    report("guest tool call (ticket_status)", calls);

    let fake = FakeProvider::instant(Reply::Text("ok".into())).await;
    let http = time(2000, |_| {
        let url = format!("{}/v1/messages", fake.anthropic_url());
        async move {
            let body = serde_json::json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
            reqwest_post(&url, &body).await;
        }
    })
    .await;
    let http_median = median(&http);
    report("fake provider round trip alone (loopback HTTP)", http);

    let project = Project::empty();
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    let flue = project.host(&fake).await;
    let harness = flue
        .init_agent("support_assistant", "ticket-1")
        .await
        .expect("instance");
    // A new session per turn, so every turn carries the same (empty) history.
    let turns = time(2000, |i| {
        let session = harness.session(&format!("bench-{i}"));
        async move {
            session.prompt("hello").await.expect("prompt answers");
        }
    })
    .await;
    let overhead = turns
        .iter()
        .map(|t| t.saturating_sub(http_median))
        .collect();
    report("prompt turn, end to end (incl. HTTP + SQLite)", turns);
    report("prompt turn, host overhead (minus HTTP median)", overhead);

    for (label, source, tool) in LANGUAGES {
        language(label, source, tool).await;
    }
}

/// One agent per language: (label, source, tool that answers at once).
const LANGUAGES: [(&str, &str, &str); 3] = [
    ("Rust", "agents/support_assistant", "ticket_status"),
    ("Python", "tests/agents/py_agent.py", "whoami"),
    ("TypeScript", "tests/agents/ts_agent.ts", "whoami"),
];

/// How many idle instances the resident-memory figure is taken over.
const IDLE_INSTANCES: usize = 1000;

/// Compile time, new instance, tool call and idle resident memory of one agent.
async fn language(label: &str, source: &str, tool: &str) {
    let wasm = std::fs::read(guest(source)).expect("the agent builds");
    let cache = tempfile::tempdir().expect("a temp dir");
    let limits = Limits {
        max_instances: IDLE_INSTANCES as u32 + 1,
        ..Limits::default()
    };
    let runtime = Runtime::new(limits, cache.path().to_path_buf()).expect("the engine starts");
    let t = Instant::now();
    let compiled = runtime.compile(&wasm).expect("the agent compiles");
    let compile = t.elapsed();
    let t = Instant::now();
    runtime.compile(&wasm).expect("cached load");
    println!(
        "{label:<11} component {:>6.1} MiB, compile {compile:>8.1?}, cached load {:>8.1?}",
        wasm.len() as f64 / (1 << 20) as f64,
        t.elapsed()
    );
    let host: Arc<dyn GuestHost> = Arc::new(NoHost);
    let start = async |i: usize| {
        let mut instance = runtime
            .instantiate(&compiled, host.clone(), runtime.limits())
            .await
            .expect("instantiates");
        instance
            .create("agent", &format!("id-{i}"), Vec::new(), None)
            .await
            .expect("creates");
        instance
    };
    let instantiate = time(300, |_| async {
        (runtime
            .instantiate(&compiled, host.clone(), runtime.limits())
            .await)
            .expect("instantiates");
    })
    .await;
    report(&format!("{label}: instantiate"), instantiate);
    let new = time(300, |i| async move {
        start(i).await;
    })
    .await;
    report(&format!("{label}: instantiate + create"), new);

    let mut instance = start(0).await;
    let mut calls = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let t = Instant::now();
        let answer = instance.call_tool("s", tool, "{}").await.expect("no trap");
        answer.expect("tool ok");
        calls.push(t.elapsed());
    }
    report(&format!("{label}: guest tool call ({tool})"), calls);
    drop(instance);

    let before = memory();
    let mut idle = Vec::with_capacity(IDLE_INSTANCES);
    for i in 0..IDLE_INSTANCES {
        idle.push(start(i).await);
    }
    let after = memory();
    for (name, (was, is)) in ["resident (RSS)", "proportional (PSS)", "private dirty"]
        .iter()
        .zip(before.iter().zip(after))
    {
        println!(
            "{:<48} {:>10.1} KiB  (over {IDLE_INSTANCES} instances)",
            format!("{label}: {name} memory per idle instance"),
            is.saturating_sub(*was) as f64 / IDLE_INSTANCES as f64
        );
    }
}

/// This process's resident, proportional and private dirty memory in KiB, from
/// `/proc/self/smaps_rollup` (zeros where there is none). The resident set counts a
/// page shared by many instances (a copy-on-write memory image) once per instance;
/// the proportional set counts it once.
fn memory() -> [usize; 3] {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        let line = rollup.lines().find(|l| l.starts_with(name));
        let kib = line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
        kib.unwrap_or(0)
    };
    [field("Rss:"), field("Pss:"), field("Private_Dirty:")]
}

fn median(samples: &[Duration]) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    v[v.len() / 2]
}

async fn reqwest_post(url: &str, body: &serde_json::Value) {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(reqwest::Client::new);
    let response = client
        .post(url)
        .header("x-api-key", "k")
        .json(body)
        .send()
        .await
        .expect("the fake answers");
    assert!(response.status().is_success());
    response.bytes().await.expect("a body");
}
