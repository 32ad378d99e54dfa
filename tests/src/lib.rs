//! Support for the integration tests and benchmarks: real guest components built from
//! their crates, throwaway projects, and a scripted fake model provider on loopback.

pub mod fake_provider;
pub mod hostile;
pub mod load;
pub mod postgres;
pub mod replay;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use flue_host::{Host, HostOptions, ProjectConfig};

pub use fake_provider::{FakeProvider, Format, Reply, Turn};

/// The allocator the `flue` binary uses, so that tests and benchmarks run the host as
/// it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Builds a guest (path relative to the workspace: a crate such as
/// `agents/support_assistant`, or a Python, TypeScript or JavaScript agent file) once per
/// process with the real toolchain and returns its component file. Different guests
/// build side by side; a second caller of the same guest waits for the first build.
pub fn guest(source: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let entry = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(source.to_string())
        .or_default()
        .clone();
    entry
        .get_or_init(|| {
            flue_host::build::ensure_target().expect("the wasm32-wasip2 target is available");
            let target = workspace().join("target");
            flue_host::build::component(&workspace().join(source), &target)
                .unwrap_or_else(|e| panic!("{source} builds: {e}"))
        })
        .clone()
}

/// A turn among the tests that keep the machine's cores busy for long (building Python
/// and JavaScript components, running the embedded model): they take turns, so that on a
/// machine of two cores one does not stretch another's waits past their bounds, while
/// the light tests run beside them.
pub async fn heavy_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// The compile cache every test host shares (`target/flue-test-compile-cache`), so that
/// each Python or JavaScript component is compiled once per machine, not per test.
pub fn compile_cache() -> PathBuf {
    workspace().join("target").join("flue-test-compile-cache")
}

/// A throwaway project folder: `agents/` with chosen components, and a data directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A project whose `agents/` holds `support_assistant` and `hostile`.
    pub fn new() -> Self {
        let project = Self::empty();
        project.add_agent("support_assistant", &guest("agents/support_assistant"));
        project.add_agent("hostile", &guest("tests/guests/hostile"));
        project
    }

    /// A project with an empty `agents/`.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir_all(dir.path().join("agents")).expect("agents/ can be created");
        Self { dir }
    }

    /// The project folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies a component into `agents/<name>.wasm`.
    pub fn add_agent(&self, name: &str, wasm: &Path) {
        std::fs::copy(
            wasm,
            self.path().join("agents").join(format!("{name}.wasm")),
        )
        .expect("the component copies");
    }

    /// Copies a workflow component into `workflows/<name>.wasm`.
    pub fn add_workflow(&self, name: &str, wasm: &Path) {
        let folder = self.path().join("workflows");
        std::fs::create_dir_all(&folder).expect("workflows/ can be created");
        std::fs::copy(wasm, folder.join(format!("{name}.wasm"))).expect("the component copies");
    }

    /// Writes raw bytes as `agents/<name>.wasm`.
    pub fn add_bytes(&self, name: &str, bytes: &[u8]) {
        std::fs::write(
            self.path().join("agents").join(format!("{name}.wasm")),
            bytes,
        )
        .expect("the file writes");
    }

    /// Host options for this project, with providers pointed at `fake`.
    pub fn options(&self, fake: &FakeProvider) -> HostOptions {
        self.options_with_env(provider_env(fake))
    }

    /// Host options for this project, with `env` as the provider environment.
    pub fn options_with_env(&self, env: BTreeMap<String, String>) -> HostOptions {
        HostOptions {
            agents_dir: self.path().join("agents"),
            data_dir: self.path().join(".flue"),
            compile_cache: Some(compile_cache()),
            database_url: None,
            skills_dir: self.path().join("skills"),
            workflows_dir: self.path().join("workflows"),
            config: ProjectConfig::default(),
            env,
        }
    }

    /// Starts a host on this project with test-sized limits.
    pub async fn host(&self, fake: &FakeProvider) -> Host {
        self.host_with(self.options(fake)).await
    }

    /// Starts a host with `options` and test-sized limits.
    pub async fn host_with(&self, mut options: HostOptions) -> Host {
        options.config.limits.cpu_ms_per_call = Some(300);
        // Far above the CPU limit: a looping guest gives its core away on every tick, so
        // on a busy machine its 300 ms of CPU can take seconds.
        options.config.limits.wall_ms_per_call = Some(6000);
        options.config.limits.memory_mb = Some(32);
        options.config.limits.max_instances = Some(64);
        // A provider failure is retried after milliseconds, not the half second and more
        // a real provider is given.
        for provider in ["anthropic", "openai", "ollama"] {
            let settings = options.config.providers.entry(provider.into()).or_default();
            settings.retry_delay_ms.get_or_insert(5);
        }
        Host::open(options).await.expect("the host starts")
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

/// The environment that points both providers at the fake, with test keys.
pub fn provider_env(fake: &FakeProvider) -> BTreeMap<String, String> {
    [
        ("ANTHROPIC_API_KEY", "test-anthropic-key".to_string()),
        ("ANTHROPIC_BASE_URL", fake.anthropic_url()),
        ("OPENAI_API_KEY", "test-openai-key".to_string()),
        ("OPENAI_BASE_URL", fake.openai_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A script for the support example: ask for `ticket_status` first, then answer with
/// what the tool returned.
pub fn ticket_script(turn: &Turn) -> Reply {
    match &turn.last_tool_result {
        Some(result) => Reply::Text(format!("Here is the status. {result}")),
        None => Reply::ToolCall {
            name: "ticket_status".into(),
            args: serde_json::json!({"detail": true}),
        },
    }
}

/// The `flue` binary, built once per process.
pub fn flue_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let output = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "flue-host",
                "--bin",
                "flue",
                "--message-format=json",
            ])
            .current_dir(workspace())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(output.status.success(), "the flue binary builds");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the flue executable")
    })
    .clone()
}

/// A server on a loopback port inside this process (for benchmarks).
pub struct InProcessServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl InProcessServer {
    /// Serves `host` with default server options on a free loopback port.
    pub async fn start(host: Host) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = flue_host::server::ServerOptions::default();
        let task = tokio::spawn(flue_host::server::serve(host, listener, options, async {
            let _ = stopped.await;
        }));
        Self { url, stop, task }
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// GETs `url` and returns its JSON body.
pub async fn get_json(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON body")
}

/// A `flue serve` (or `flue dev`) process on a loopback port; killed when dropped.
pub struct Server {
    child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// What it printed on stderr so far (also passed on to the test's stderr).
    stderr: std::sync::Arc<Mutex<String>>,
}

impl Server {
    /// Starts `flue <command> --port 0` on `project` with providers pointed at `fake`,
    /// and waits until it listens.
    pub async fn start(
        project: &Path,
        fake: &FakeProvider,
        command: &str,
        extra: &[&str],
    ) -> Server {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(flue_binary())
            .args(["--project"])
            .arg(project)
            .args([command, "--port", "0", "--no-build"])
            .args(extra)
            .envs(provider_env(fake))
            .env("CARGO_TARGET_DIR", workspace().join("target"))
            .env("FLUE_COMPILE_CACHE", compile_cache())
            .env_remove("FLUE_DATA_DIR")
            .env_remove("FLUE_DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("flue starts");
        let stderr = std::sync::Arc::new(Mutex::new(String::new()));
        let mut err_lines =
            tokio::io::BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
        let log = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                eprintln!("{line}");
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        // Starting builds every agent, Python and TypeScript ones included, while the
        // rest of the suite keeps the machine busy.
        let listening =
            tokio::time::timeout(std::time::Duration::from_secs(180), lines.next_line())
                .await
                .expect("flue listens within three minutes")
                .expect("stdout is readable")
                .expect("flue prints its address");
        let url = listening
            .strip_prefix("Listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {listening}"))
            .to_string();
        // Keep reading, so that a restarted `flue dev` can print its address again.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { child, url, stderr }
    }

    /// What the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Kills the process with SIGKILL, as a crash would, and waits until it is gone.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("the server can be killed");
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub async fn terminate(mut self) -> bool {
        let pid = self.child.id().expect("the server is running");
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        let status = tokio::time::timeout(std::time::Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server exits after SIGTERM")
            .expect("wait works");
        status.success()
    }
}
