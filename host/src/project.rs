//! A project on disk: `flue.toml`, the `agents/` folder and the data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::models::ProviderSettings;
use crate::runtime::Limits;

/// The contents of `flue.toml`; every section is optional.
#[derive(Debug, Clone, Default, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Model aliases: `fast = "ollama/llama3.2"`.
    #[serde(default)]
    #[garde(skip)]
    pub models: BTreeMap<String, String>,
    /// Provider endpoints: `[providers.anthropic] base_url = "…"`.
    #[serde(default)]
    #[garde(skip)]
    pub providers: BTreeMap<String, ProviderSettings>,
    /// Guest resource limits.
    #[serde(default)]
    #[garde(dive)]
    pub limits: LimitSettings,
    /// Per-agent settings: `[agents.support_assistant] env = { REGION = "eu" }`.
    #[serde(default)]
    #[garde(skip)]
    pub agents: BTreeMap<String, AgentSettings>,
    /// Tenants, each with its agents in `agents/<tenant>/` and its own namespace of
    /// instances; its keys name it (`[[keys]] tenant = "<name>"`).
    #[serde(default)]
    #[garde(dive)]
    pub tenants: BTreeMap<String, TenantSettings>,
    /// Policies of single agents, with a tenant's settings
    /// (`[policies."acme/support"] max_tool_rounds = 4`): they bind on top of the
    /// agent's tenant's, the tighter value winning.
    #[serde(default)]
    #[garde(dive)]
    pub policies: BTreeMap<String, TenantSettings>,
    /// API keys for the server: `[[keys]] name, sha256, agents, ids, tenant`.
    #[serde(default)]
    #[garde(skip)]
    pub keys: Vec<crate::access::ApiKey>,
    /// Delivery of dispatched events.
    #[serde(default)]
    #[garde(dive)]
    pub dispatch: DispatchSettings,
    /// The embedded local model: `[local] fallback = false`, `threads = 1`.
    #[serde(default)]
    #[garde(dive)]
    pub local: crate::models::local::LocalSettings,
}

/// `[dispatch]` in `flue.toml`: how dispatched events are delivered.
#[derive(Debug, Clone, Default, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct DispatchSettings {
    /// Events processed at once (default 16).
    #[garde(range(min = 1, max = 1024))]
    pub workers: Option<usize>,
    /// Attempts before an event is declared dead (default 5).
    #[garde(range(min = 1, max = 1000))]
    pub max_attempts: Option<u32>,
    /// Delay before the first retry, doubled for each further one (default 1000).
    #[garde(skip)]
    pub backoff_ms: Option<u64>,
    /// How long a claimed event stays claimed without a renewal (default 30000).
    #[garde(range(min = 100))]
    pub lease_ms: Option<u64>,
}

impl DispatchSettings {
    /// Events processed at once.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or(16).max(1)
    }

    /// Attempts before an event is dead.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(5).max(1)
    }

    /// Delay before the first retry.
    pub fn backoff(&self) -> Duration {
        Duration::from_millis(self.backoff_ms.unwrap_or(1000))
    }

    /// How long a claim lasts without renewal.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms.unwrap_or(30_000).max(100))
    }
}

/// `[limits]` in `flue.toml`.
#[derive(Debug, Clone, Default, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Linear memory one instance may grow to, in MiB (default 64; 1–4096).
    #[garde(range(min = 1, max = 4096))]
    pub memory_mb: Option<usize>,
    /// CPU time one guest call may use, in milliseconds (default 2000).
    #[garde(range(min = 1))]
    pub cpu_ms_per_call: Option<u64>,
    /// Wall time one guest call may take, host calls included, in milliseconds (default 30000).
    #[garde(range(min = 1))]
    pub wall_ms_per_call: Option<u64>,
    /// Instances live at once, across all agents (default 1000; at most 100000).
    #[garde(range(min = 1, max = 100000))]
    pub max_instances: Option<u32>,
    /// Model ↔ tool rounds per prompt (default 16; at most 1000).
    #[garde(range(min = 1, max = 1000))]
    pub max_tool_rounds: Option<u32>,
    /// Live instances unused this long are dropped from memory (default 300000).
    #[garde(range(min = 1))]
    pub instance_idle_ms: Option<u64>,
    /// Wall time of one workflow run, prompts included (default 600000).
    #[garde(range(min = 1))]
    pub run_ms: Option<u64>,
    /// Wall time of one prompt, model calls and tools included (default 600000).
    #[garde(range(min = 1))]
    pub wall_ms_per_prompt: Option<u64>,
    /// Session histories kept in memory, by stored size in MiB (default 64).
    #[garde(skip)]
    pub history_cache_mb: Option<usize>,
}

/// `[tenants.<name>]` in `flue.toml`: the tenant's policy. Every limit is optional.
#[derive(Debug, Clone, Default, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Models its agents may use, as `provider/model` globs (`anthropic/*`).
    #[garde(skip)]
    pub allowed_models: Option<Vec<String>>,
    /// Model ↔ tool rounds per prompt (at most the host's `max_tool_rounds`).
    #[garde(range(min = 1, max = 1000))]
    pub max_tool_rounds: Option<u32>,
    /// Tokens (input + output) its agents may spend per hour.
    #[garde(skip)]
    pub tokens_per_hour: Option<u64>,
    /// Prompts it may run at once.
    #[garde(range(min = 1))]
    pub max_concurrent_prompts: Option<u64>,
    /// Prompts it may start per minute.
    #[garde(range(min = 1))]
    pub prompts_per_minute: Option<u64>,
    /// Linear memory of each of its instances, in MiB (at most the host's `memory_mb`).
    #[garde(range(min = 1, max = 4096))]
    pub memory_mb: Option<usize>,
    /// CPU time per guest call, in ms (at most the host's).
    #[garde(range(min = 1))]
    pub cpu_ms_per_call: Option<u64>,
    /// Wall time per guest call, in ms (at most the host's).
    #[garde(range(min = 1))]
    pub wall_ms_per_call: Option<u64>,
    /// Wall time per prompt, in ms (at most the host's).
    #[garde(range(min = 1))]
    pub wall_ms_per_prompt: Option<u64>,
    /// Sandbox kinds its agents may use: `virtual`, `local` (default: both; a `local`
    /// one also needs the agent's `local_dirs`).
    #[garde(skip)]
    pub sandboxes: Option<Vec<String>>,
    /// Built-in sandbox tools its agents' models are offered (`read`, `write`, `edit`,
    /// `ls`, `glob`, `grep`, `bash`; default: all the sandbox has).
    #[garde(skip)]
    pub builtin_tools: Option<Vec<String>>,
    /// Values handed to `create` as `ctx.env` for each of its agents; an agent's own
    /// `[agents."<tenant>/<name>"] env` wins over a value of the same name.
    #[serde(default)]
    #[garde(skip)]
    pub env: BTreeMap<String, String>,
    /// Hosts (`host` or `host:port` globs) its agents' `fetch` tool may reach.
    #[serde(default)]
    #[garde(skip)]
    pub fetch_hosts: Vec<String>,
}

/// `[agents.<name>]` in `flue.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Values handed to the agent's `create` as `ctx.env`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Host folders a `local` sandbox of this agent may be bound to (its `cwd` must lie
    /// inside one); relative paths are taken from the project folder. Empty: none.
    #[serde(default)]
    pub local_dirs: Vec<PathBuf>,
    /// Programs the model may run with `bash` in a `local` sandbox. Empty: no `bash`.
    #[serde(default)]
    pub commands: Vec<String>,
    /// How long one `bash` command may run (default 10000).
    pub command_timeout_ms: Option<u64>,
    /// Hosts (`host` or `host:port` globs) its `fetch` tool may reach. Empty (and none
    /// for its tenant): no `fetch`.
    #[serde(default)]
    pub fetch_hosts: Vec<String>,
}

/// Default bound on model ↔ tool rounds in one prompt.
pub const DEFAULT_MAX_TOOL_ROUNDS: u32 = 16;

impl ProjectConfig {
    /// Reads `flue.toml` in `dir`; a missing file is the default config.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join("flue.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, dir).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Decodes the text of a `flue.toml` whose project folder is `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Self, String> {
        let mut config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        garde::Validate::validate(&config).map_err(|report| {
            let problems: Vec<String> = report
                .iter()
                .map(|(key, error)| format!("{key} is {}", out_of_range(error.message())))
                .collect();
            problems.join("; ")
        })?;
        config.check_tighter_than_host()?;
        if let Some(bad) = config
            .tenants
            .keys()
            .find(|t| !crate::registry::valid_name(t))
        {
            return Err(format!(
                "tenant '{bad}' may hold only letters, digits, '_' and '-'"
            ));
        }
        for settings in config.agents.values_mut() {
            for local in &mut settings.local_dirs {
                *local = dir.join(&*local);
            }
        }
        config.local.resolve_model(dir)?;
        Ok(config)
    }

    /// Refuses a tenant's or an agent's policy that would allow more than the host:
    /// a policy may only tighten the host's `[limits]`.
    fn check_tighter_than_host(&self) -> Result<(), String> {
        let host = self.runtime_limits();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let bounds = |p: &TenantSettings| {
            [
                (
                    "memory_mb",
                    p.memory_mb.map(|m| m as u64),
                    (host.memory_bytes >> 20) as u64,
                ),
                (
                    "cpu_ms_per_call",
                    p.cpu_ms_per_call,
                    millis(host.cpu_per_call),
                ),
                (
                    "wall_ms_per_call",
                    p.wall_ms_per_call,
                    millis(host.wall_per_call),
                ),
                (
                    "wall_ms_per_prompt",
                    p.wall_ms_per_prompt,
                    millis(self.prompt_limit()),
                ),
                (
                    "max_tool_rounds",
                    p.max_tool_rounds.map(u64::from),
                    u64::from(self.max_tool_rounds()),
                ),
            ]
        };
        let sections = self
            .tenants
            .iter()
            .map(|(name, p)| (format!("tenants.{name}"), p))
            .chain(
                self.policies
                    .iter()
                    .map(|(name, p)| (format!("policies.\"{name}\""), p)),
            );
        for (section, policy) in sections {
            for (key, value, limit) in bounds(policy) {
                if let Some(value) = value.filter(|v| *v > limit) {
                    return Err(format!(
                        "{section}.{key} = {value} is above the host's limit {limit} \
                         ([limits] {key}, or its default): a policy may only tighten it"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The sections that name no agent in `loaded` (`[agents."x"]`, `[policies."x"]`):
    /// a misspelt name, or an agent not built yet. As messages for a warning.
    pub fn unknown_agents(&self, loaded: &[String]) -> Vec<String> {
        let known = if loaded.is_empty() {
            "none".to_string()
        } else {
            loaded.join(", ")
        };
        let agents = self.agents.keys().map(|name| ("agents", name));
        agents
            .chain(self.policies.keys().map(|name| ("policies", name)))
            .filter(|(_, name)| !loaded.contains(name))
            .map(|(section, name)| {
                format!("[{section}.\"{name}\"] names no loaded agent (agents: {known})")
            })
            .collect()
    }

    /// The guest limits, defaults filled in.
    pub fn runtime_limits(&self) -> Limits {
        let d = Limits::default();
        let l = &self.limits;
        Limits {
            memory_bytes: l.memory_mb.map(|m| m << 20).unwrap_or(d.memory_bytes),
            cpu_per_call: l
                .cpu_ms_per_call
                .map(Duration::from_millis)
                .unwrap_or(d.cpu_per_call),
            wall_per_call: l
                .wall_ms_per_call
                .map(Duration::from_millis)
                .unwrap_or(d.wall_per_call),
            max_instances: l.max_instances.unwrap_or(d.max_instances),
        }
    }

    /// The declared tenants' names.
    pub fn tenant_names(&self) -> Vec<String> {
        self.tenants.keys().cloned().collect()
    }

    /// How many bytes of session histories the store keeps in memory.
    pub fn history_cache_bytes(&self) -> usize {
        self.limits
            .history_cache_mb
            .map_or(crate::store::DEFAULT_HISTORY_CACHE_BYTES, |mb| mb << 20)
    }

    /// How long an unused instance stays in memory.
    pub fn instance_idle(&self) -> Duration {
        Duration::from_millis(self.limits.instance_idle_ms.unwrap_or(300_000))
    }

    /// How long one workflow run may take.
    pub fn run_limit(&self) -> Duration {
        Duration::from_millis(self.limits.run_ms.unwrap_or(600_000))
    }

    /// How long one prompt may take.
    pub fn prompt_limit(&self) -> Duration {
        Duration::from_millis(self.limits.wall_ms_per_prompt.unwrap_or(600_000))
    }

    /// The bound on tool rounds per prompt.
    pub fn max_tool_rounds(&self) -> u32 {
        self.limits
            .max_tool_rounds
            .unwrap_or(DEFAULT_MAX_TOOL_ROUNDS)
    }

    /// The settings of one agent (defaults if `flue.toml` names none).
    pub fn agent(&self, agent: &str) -> AgentSettings {
        self.agents.get(agent).cloned().unwrap_or_default()
    }
}

/// Where a host finds its agents, keeps its data, and reads its settings.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The folder of `<name>.wasm` agents.
    pub agents_dir: PathBuf,
    /// Where the compile cache and the SQLite database live (default `.flue`).
    pub data_dir: PathBuf,
    /// Where compiled machine code is kept, and the components this host refused
    /// (`FLUE_COMPILE_CACHE`; `None`: `<data_dir>/cache`). Hosts may share one: a Python
    /// or JavaScript agent takes seconds to compile.
    pub compile_cache: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://…`) to keep state in instead of SQLite, so
    /// that several hosts can share it (`FLUE_DATABASE_URL`).
    pub database_url: Option<String>,
    /// The folder of `<name>.wasm` workflows.
    pub workflows_dir: PathBuf,
    /// The folder of `<name>/SKILL.md` skills agents may name.
    pub skills_dir: PathBuf,
    /// The parsed `flue.toml`.
    pub config: ProjectConfig,
    /// Environment the model providers read (API keys, base URLs).
    pub env: BTreeMap<String, String>,
}

impl HostOptions {
    /// The options for a project folder: its `flue.toml`, `agents/`, and `.flue/`
    /// (or `FLUE_DATA_DIR`), with provider keys and `FLUE_DATABASE_URL` from this
    /// process's environment.
    pub fn for_project(dir: &Path) -> Result<Self, String> {
        let data_dir = std::env::var_os("FLUE_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join(".flue"));
        let config = ProjectConfig::load(dir)?;
        Ok(Self {
            env: crate::models::process_env(&config.providers),
            agents_dir: dir.join("agents"),
            compile_cache: std::env::var_os("FLUE_COMPILE_CACHE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            data_dir,
            database_url: std::env::var("FLUE_DATABASE_URL")
                .ok()
                .filter(|url| !url.is_empty()),
            skills_dir: dir.join("skills"),
            workflows_dir: dir.join("workflows"),
            config,
        })
    }

    /// The project folder: the one holding `agents/` (and `flue.toml`); relative
    /// sandbox folders start there.
    pub fn project_dir(&self) -> &Path {
        self.agents_dir.parent().unwrap_or(Path::new("."))
    }

    /// The project's crates, built into `target/` beside `agents/` unless
    /// `CARGO_TARGET_DIR` says otherwise.
    pub fn build_project(&self) -> crate::build::Project {
        crate::build::Project {
            agents_dir: self.agents_dir.clone(),
            workflows_dir: self.workflows_dir.clone(),
            target_dir: self.project_dir().join("target"),
        }
    }

    /// The host's own files, which no sandbox may reach: the data directory (SQLite
    /// database, compile cache), `flue.toml` (API key hashes, provider settings), and the
    /// folders it loads code and skills from (`agents/`, `workflows/`, `skills/`: a
    /// sandbox writing there would change what other agents run). As canonical paths;
    /// those that do not exist (yet) are left out.
    pub fn host_files(&self) -> Vec<PathBuf> {
        let files = [
            &self.data_dir,
            &self.compile_cache_dir(),
            &self.project_dir().join("flue.toml"),
            &self.agents_dir,
            &self.workflows_dir,
            &self.skills_dir,
        ];
        files.iter().filter_map(|p| p.canonicalize().ok()).collect()
    }

    /// Where compiled machine code is kept: [`Self::compile_cache`], else
    /// `<data_dir>/cache`.
    pub fn compile_cache_dir(&self) -> PathBuf {
        (self.compile_cache.clone()).unwrap_or_else(|| self.data_dir.join("cache"))
    }

    /// The SQLite database file, used when no PostgreSQL URL is given.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("flue.db")
    }

    /// Where the state lives, for people: the SQLite file, or the PostgreSQL server and
    /// database (never the password).
    pub fn state_location(&self) -> String {
        let Some(url) = &self.database_url else {
            return format!("SQLite at {}", self.sqlite_path().display());
        };
        match reqwest::Url::parse(url) {
            Ok(url) => format!(
                "PostgreSQL at {}:{}{}",
                url.host_str().unwrap_or("localhost"),
                url.port().unwrap_or(5432),
                url.path()
            ),
            Err(_) => "PostgreSQL".into(),
        }
    }
}

/// A range rule's message as the allowed range: garde says "lower than 1" or
/// "greater than 4096"; a user reads "out of range: at least 1".
fn out_of_range(message: &str) -> String {
    if let Some(min) = message.strip_prefix("lower than ") {
        format!("out of range: at least {min}")
    } else if let Some(max) = message.strip_prefix("greater than ") {
        format!("out of range: at most {max}")
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProjectConfig, String> {
        ProjectConfig::parse(text, Path::new("/project"))
    }

    #[test]
    fn settings_out_of_range_are_refused_with_their_key_and_range() {
        let error = parse("[limits]\nmemory_mb = 0\n").unwrap_err();
        assert_eq!(error, "limits.memory_mb is out of range: at least 1");
        let error = parse("[limits]\nmemory_mb = 4097\n").unwrap_err();
        assert_eq!(error, "limits.memory_mb is out of range: at most 4096");
        let error = parse("[tenants.acme]\nmax_tool_rounds = 0\n").unwrap_err();
        assert!(error.contains("tenants.acme.max_tool_rounds"), "{error}");
        let error = parse("[dispatch]\nworkers = 0\n").unwrap_err();
        assert!(error.contains("dispatch.workers"), "{error}");
        assert!(parse("[limits]\nmemory_mb = 4096\n").is_ok());
    }

    #[test]
    fn a_policy_may_only_tighten_the_hosts_limits() {
        let error = parse("[tenants.acme]\nmemory_mb = 128\n").unwrap_err();
        assert!(
            error.contains("tenants.acme.memory_mb = 128 is above the host's limit 64"),
            "{error}"
        );
        let error = parse(
            "[limits]\ncpu_ms_per_call = 100\n[policies.\"acme/x\"]\ncpu_ms_per_call = 200\n",
        )
        .unwrap_err();
        assert!(
            error.contains("policies.\"acme/x\".cpu_ms_per_call = 200"),
            "{error}"
        );
        assert!(parse("[limits]\nmemory_mb = 256\n[tenants.acme]\nmemory_mb = 128\n").is_ok());
    }

    #[test]
    fn sections_for_no_loaded_agent_are_named() {
        let config = parse("[agents.reviewr]\n[agents.support]\n[policies.\"acme/x\"]\n").unwrap();
        let unknown = config.unknown_agents(&["support".into(), "reviewer".into()]);
        assert_eq!(
            unknown,
            [
                "[agents.\"reviewr\"] names no loaded agent (agents: support, reviewer)",
                "[policies.\"acme/x\"] names no loaded agent (agents: support, reviewer)",
            ]
        );
    }

    #[test]
    fn a_mistake_names_the_file() {
        let dir = std::env::temp_dir().join(format!("flue-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("flue.toml"), "[limits]\nmemory_mb = 0\n").unwrap();
        let error = ProjectConfig::load(&dir).unwrap_err();
        assert!(
            error.starts_with(&format!("{}:", dir.join("flue.toml").display())),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_state_location_names_the_database_but_never_its_password() {
        let mut options = HostOptions {
            agents_dir: "agents".into(),
            data_dir: "/data".into(),
            compile_cache: None,
            database_url: None,
            workflows_dir: "workflows".into(),
            skills_dir: "skills".into(),
            config: ProjectConfig::default(),
            env: BTreeMap::new(),
        };
        assert_eq!(options.state_location(), "SQLite at /data/flue.db");
        options.database_url = Some("postgres://flue:s3cret@db.internal:6543/flue".into());
        assert_eq!(
            options.state_location(),
            "PostgreSQL at db.internal:6543/flue"
        );
    }
}
