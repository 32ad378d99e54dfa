//! Flue for WebAssembly: run AI agents compiled to WebAssembly components.
//!
//! The embedding API:
//!
//! ```no_run
//! # async fn demo() -> Result<(), flue_host::Error> {
//! let host = flue_host::Host::open(flue_host::HostOptions::for_project(".".as_ref()).unwrap()).await?;
//! let harness = host.init_agent("support_assistant", "ticket-8472").await?;
//! let session = harness.session("billing");
//! let result = session.prompt("Where is my refund?").await?;
//! println!("{}", result.text);
//! # Ok(()) }
//! ```
//!
//! The crate root is the embedding API: [`Host`] and what it hands out, [`HostOptions`],
//! [`Error`] with its [`ErrorKind`] and [`Limit`], and the records of dispatches and
//! runs. [`server::serve`] serves a host over HTTP, SSE and WebSocket; [`project`],
//! [`access`] and [`models`] hold the settings those take. [`store`], [`runtime`],
//! [`build`], [`weights`] and [`cli`] are public for the `flue` binary, the integration
//! suite and the benchmarks; everything else is private to the crate.

pub mod access;
mod agent_config;
pub mod build;
pub mod cli;
mod dev;
mod error;
mod harness;
mod limit;
pub mod models;
pub mod project;
mod registry;
pub mod runtime;
pub mod server;
pub mod store;
mod tools;
mod user_tools;
pub mod weights;

use std::sync::Arc;
use std::time::Duration;

pub use agent_config::AgentConfig;
pub use error::{Error, ErrorKind};
pub use harness::{Event, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, PromptResult, Stats};
pub use limit::Limit;
pub use project::{HostOptions, ProjectConfig};

pub use harness::workflows::RunHandle;
use harness::workflows::Workflows;
use harness::{Prompt, Shared};
use registry::{LoadProblem, Registry};
use runtime::Runtime;
use store::queue::NewDispatch;
pub use store::queue::{DispatchFilter, DispatchRecord, DispatchStatus, Receipt};
pub use store::runs::{RunEvent, RunFilter, RunRecord, RunStatus};
use store::{Database, InstanceKey, SessionKey};

/// Who asks to reach an instance, as the host authenticated them: what an agent's
/// `authorize` export is told (as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// The tenant of the caller's key; `None` for the operator's keys, or without keys.
    pub tenant: Option<String>,
    /// The name of the caller's key; `None` when no keys are configured.
    pub key: Option<String>,
    /// The claims `flue.toml` gives the key (`[[keys]] claims = { … }`).
    pub claims: std::collections::BTreeMap<String, String>,
}

/// The session a prompt uses when none is named.
pub const DEFAULT_SESSION: &str = "default";

/// A running host: the engine, the loaded agents, the store and the live instances.
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
}

impl Host {
    /// Starts a host: opens the store, builds the engine and loads every agent.
    pub async fn open(options: HostOptions) -> Result<Self, Error> {
        let limits = options.config.runtime_limits();
        let runtime = Arc::new(
            Runtime::new(limits, options.compile_cache_dir())
                .map_err(|e| Error::Startup(e.to_string()))?,
        );
        let sqlite_path = options.sqlite_path();
        let store = store::open(match &options.database_url {
            Some(url) => Database::Postgres { url },
            None => Database::Sqlite {
                path: &sqlite_path,
                cache_bytes: options.config.history_cache_bytes(),
            },
        })
        .await?;
        let tenants = options.config.tenant_names();
        let registry = Registry::scan(runtime.clone(), &options.agents_dir, &tenants).await;
        let workflows = Workflows::scan(&runtime, &options.workflows_dir).await;
        let shared = Arc::new(Shared::new(
            options,
            runtime,
            registry,
            store.clone(),
            store.clone(),
            store,
            workflows,
        ));
        tokio::spawn(evict_idle_instances(Arc::downgrade(&shared)));
        Ok(Self { shared })
    }

    /// Stores an event for a session of an instance and returns its receipt once it is
    /// durably committed; the dispatcher ([`Host::start_dispatcher`]) then runs it as a
    /// turn of that session. With an idempotency key, repeating the call returns the
    /// first receipt.
    pub async fn dispatch(
        &self,
        agent: &str,
        id: &str,
        session: &str,
        input: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Result<Receipt, Error> {
        self.shared.agent(agent)?;
        harness::check_name("instance id", id)?;
        harness::check_name("session name", session)?;
        let event = NewDispatch {
            session: SessionKey {
                instance: InstanceKey {
                    agent: agent.to_string(),
                    id: id.to_string(),
                },
                session: session.to_string(),
            },
            input: input.to_string(),
            idempotency_key: idempotency_key.map(str::to_string),
        };
        let receipt = self.shared.queue.enqueue(event).await?;
        if !receipt.same_request {
            return Err(Error::Conflict(format!(
                "the idempotency key was used for another event (dispatch {}) with a \
                 different session or input; use a new key for a new event",
                receipt.id
            )));
        }
        self.shared.dispatcher.wake();
        Ok(receipt)
    }

    /// Starts delivering dispatched events (once; later calls do nothing). `flue serve`
    /// and `flue dev` do this; a host that only answers prompts need not.
    pub fn start_dispatcher(&self) {
        self.shared.dispatcher.start(&self.shared);
    }

    /// Whether `caller` may reach instance `id` of `agent`, as the agent decides: its
    /// `authorize` export runs in that instance. `true` for agents without one.
    pub async fn authorize(&self, agent: &str, id: &str, caller: &Identity) -> Result<bool, Error> {
        harness::check_name("instance id", id)?;
        let key = InstanceKey {
            agent: agent.to_string(),
            id: id.to_string(),
        };
        self.shared.guest_authorizes(&key, caller).await
    }

    /// A dispatched event and how its delivery went, if it exists.
    pub async fn dispatch_status(&self, id: &str) -> Result<Option<DispatchRecord>, Error> {
        Ok(self.shared.queue.dispatch(id).await?)
    }

    /// The dispatched events `filter` picks, oldest first.
    pub async fn list_dispatches(
        &self,
        filter: &DispatchFilter,
    ) -> Result<Vec<DispatchRecord>, Error> {
        Ok(self.shared.queue.list_dispatches(filter).await?)
    }

    /// Queues a dead event again, due now, for one more attempt (a failure makes it
    /// dead again); `false` if it is not dead.
    pub async fn retry_dispatch(&self, id: &str) -> Result<bool, Error> {
        let queued = self.shared.queue.retry(id).await?;
        if queued {
            self.shared.dispatcher.wake();
        }
        Ok(queued)
    }

    /// Starts a run of a workflow from `workflows/` with a JSON payload, on behalf of a
    /// caller with `scope`: the run may prompt only the instances that scope reaches
    /// (and whose agent's `authorize` admits it); a prompt outside it fails.
    pub async fn run_workflow(
        &self,
        name: &str,
        payload: &serde_json::Value,
        scope: access::Scope,
    ) -> Result<RunHandle, Error> {
        self.shared.start_run(name, payload, scope).await
    }

    /// A workflow run's record, if it exists.
    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>, Error> {
        Ok(self.shared.runs.run(id).await?)
    }

    /// The stored runs `filter` picks, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, Error> {
        Ok(self.shared.runs.list_runs(filter).await?)
    }

    /// Up to `limit` events of a run after event `after` (from the first with `None`).
    pub async fn run_events(
        &self,
        id: &str,
        after: Option<u64>,
        limit: u64,
    ) -> Result<Vec<RunEvent>, Error> {
        Ok(self.shared.runs.run_events(id, after, limit).await?)
    }

    /// Stops a run in progress and records it as cancelled; `false` if it is not running.
    pub async fn cancel_run(&self, id: &str) -> bool {
        self.shared.cancel_run(id).await
    }

    /// A run's events after event `after` (from the first with `None`), as they are
    /// recorded, ending with its `run_end`.
    pub fn follow_run(
        &self,
        id: &str,
        after: Option<u64>,
    ) -> impl futures_util::Stream<Item = Result<RunEvent, Error>> + Send + 'static {
        self.shared.follow_run(id.to_string(), after)
    }

    /// The loaded workflows, by name.
    pub fn workflows(&self) -> Vec<String> {
        self.shared.workflows.names()
    }

    /// The loaded agents, by name.
    pub fn agents(&self) -> Vec<AgentInfo> {
        let agents = self.shared.registry.list();
        let info = |a: &Arc<registry::AgentVersion>| AgentInfo {
            name: a.name.clone(),
            path: a.path.clone(),
        };
        agents.iter().map(info).collect()
    }

    /// Loads (or reloads) one component file and swaps it in: prompts in flight finish
    /// on the version they started with. A file holding the version already serving
    /// changes nothing. On failure the previous version keeps serving.
    pub async fn reload_agent(&self, path: &std::path::Path) -> Result<registry::Loaded, String> {
        self.shared.registry.load(&self.shared.runtime, path).await
    }

    /// Installs a component as agent `name` of `tenant` (`agents/<tenant>/<name>.wasm`):
    /// it is compiled and checked first, and written and swapped in only if it is an
    /// agent. Returns whether it replaced a version.
    pub async fn install_agent(
        &self,
        tenant: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<bool, Error> {
        let folder = self.tenant_folder(tenant)?;
        if !registry::valid_name(name) {
            return Err(Error::InvalidRequest(
                "agent names may hold only letters, digits, '_' and '-'".into(),
            ));
        }
        let path = folder.join(format!("{name}.wasm"));
        let (_, replaced) = self
            .shared
            .registry
            .install(&self.shared.runtime, &path, bytes)
            .await
            .map_err(|reason| {
                Error::InvalidRequest(format!("the component was refused: {reason}"))
            })?;
        Ok(replaced)
    }

    /// Removes agent `name` of `tenant`, its file included; `false` if there was none.
    pub fn uninstall_agent(&self, tenant: &str, name: &str) -> Result<bool, Error> {
        let path = self.tenant_folder(tenant)?.join(format!("{name}.wasm"));
        let path = path.canonicalize().unwrap_or(path);
        let removed = self.shared.registry.remove(&path).is_some();
        if removed {
            std::fs::remove_file(&path)
                .map_err(|e| Error::Io(format!("cannot remove {}: {e}", path.display())))?;
        }
        Ok(removed)
    }

    /// The agents folder of a declared tenant.
    fn tenant_folder(&self, tenant: &str) -> Result<std::path::PathBuf, Error> {
        let options = &self.shared.options;
        if !options.config.tenants.contains_key(tenant) {
            return Err(Error::NotFound(format!("no tenant '{tenant}'")));
        }
        Ok(options.agents_dir.join(tenant))
    }

    /// Loads (or reloads) one workflow file; runs in progress finish on the version they
    /// started with. On failure the previous version keeps serving. Returns its name.
    pub async fn reload_workflow(&self, path: &std::path::Path) -> Result<String, String> {
        self.shared.workflows.load(&self.shared.runtime, path).await
    }

    /// Unloads the workflow that came from `path`; returns its name if there was one.
    pub fn remove_workflow(&self, path: &std::path::Path) -> Option<String> {
        self.shared.workflows.remove(path)
    }

    /// Unloads the agent that came from `path`; returns its name if there was one.
    pub fn remove_agent(&self, path: &std::path::Path) -> Option<String> {
        self.shared.registry.remove(path)
    }

    /// Running totals: prompts, tokens, guest traps.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// How many instances are live in memory.
    pub fn live_instances(&self) -> usize {
        self.shared.instances.live()
    }

    /// The options (folders and `flue.toml`) this host runs with.
    pub fn options(&self) -> &HostOptions {
        &self.shared.options
    }

    /// Component files (agents and workflows) that were skipped, with reasons.
    pub fn load_problems(&self) -> Vec<LoadProblem> {
        let workflows = self.shared.workflows.problems().into_iter();
        let workflows = workflows.map(|(file, reason)| LoadProblem { file, reason });
        let mut problems = self.shared.registry.problems();
        problems.extend(workflows);
        problems
    }

    /// Whether an agent's machine code came from the compile cache at load.
    pub fn loaded_from_cache(&self, agent: &str) -> Option<bool> {
        self.shared
            .registry
            .get(agent)
            .map(|a| a.compiled.from_cache)
    }

    /// The instance `id` of `agent`, created (its `create` run) if it is not live.
    pub async fn init_agent(&self, agent: &str, id: &str) -> Result<Harness, Error> {
        harness::check_name("instance id", id)?;
        let key = InstanceKey {
            agent: agent.to_string(),
            id: id.to_string(),
        };
        self.shared.instance_config(&key).await?;
        Ok(Harness {
            shared: self.shared.clone(),
            key,
            model: None,
        })
    }
}

/// Drops instances left unused past the configured idle time, until the host is gone.
async fn evict_idle_instances(shared: std::sync::Weak<Shared>) {
    let Some(idle) = shared.upgrade().map(|s| s.options.config.instance_idle()) else {
        return;
    };
    let mut every =
        tokio::time::interval((idle / 2).clamp(Duration::from_millis(10), Duration::from_secs(1)));
    loop {
        every.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.instances.evict_idle(idle, usize::MAX);
    }
}

/// A loaded agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The agent's name (its file name without `.wasm`).
    pub name: String,
    /// The component file it was loaded from.
    pub path: std::path::PathBuf,
}

/// One agent instance: the handle sessions are opened on.
#[derive(Clone)]
pub struct Harness {
    shared: Arc<Shared>,
    key: InstanceKey,
    model: Option<String>,
}

impl Harness {
    /// Uses another model (`provider/model` or a `flue.toml` alias) for this handle's prompts.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The configuration the agent's `create` returned.
    pub async fn config(&self) -> Result<AgentConfig, Error> {
        Ok((*self.shared.instance_config(&self.key).await?.0).clone())
    }

    /// The sessions of this instance that hold messages, by name.
    pub async fn sessions(&self) -> Result<Vec<String>, Error> {
        let (config, _) = self.shared.instance_config(&self.key).await?;
        Ok(self.shared.store_for(&config).sessions(&self.key).await?)
    }

    /// A named session of this instance; each has its own history.
    pub fn session(&self, name: &str) -> Session {
        Session {
            harness: self.clone(),
            key: SessionKey {
                instance: self.key.clone(),
                session: name.to_string(),
            },
        }
    }
}

/// A named conversation of one instance.
pub struct Session {
    harness: Harness,
    key: SessionKey,
}

impl Session {
    /// Sends a message and waits for the final answer.
    pub async fn prompt(&self, message: &str) -> Result<PromptResult, Error> {
        self.harness
            .shared
            .run_prompt(self.prompt_of(message), None)
            .await
    }

    /// Sends a message, streaming the model, and reports each step to `on_event`.
    pub async fn stream(
        &self,
        message: &str,
        mut on_event: impl FnMut(Event) + Send,
    ) -> Result<PromptResult, Error> {
        self.harness
            .shared
            .run_prompt(self.prompt_of(message), Some(&mut on_event))
            .await
    }

    /// Runs one of the agent's skills as a prompt: the skill's body, then `args`.
    pub async fn skill(&self, name: &str, args: serde_json::Value) -> Result<PromptResult, Error> {
        let config = self.harness.config().await?;
        let skill = config
            .skills
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = config.skills.iter().map(|s| s.name.as_str()).collect();
                Error::InvalidRequest(format!(
                    "agent '{}' has no skill '{name}' (skills: {})",
                    self.key.instance.agent,
                    names.join(", ")
                ))
            })?;
        self.prompt(&harness::skills::prompt(skill, &args)).await
    }

    /// The session's stored messages, oldest first.
    pub async fn history(&self) -> Result<Vec<models::Message>, Error> {
        let shared = &self.harness.shared;
        let (config, _) = shared.instance_config(&self.key.instance).await?;
        Ok(shared.store_for(&config).history(&self.key).await?)
    }

    /// Forgets the session's messages; its next prompt starts a new conversation.
    pub async fn reset(&self) -> Result<(), Error> {
        harness::check_name("session name", &self.key.session)?;
        self.harness.shared.reset_session(&self.key).await
    }

    fn prompt_of<'a>(&'a self, message: &'a str) -> Prompt<'a> {
        Prompt {
            session: &self.key,
            message,
            model_override: self.harness.model.as_deref(),
        }
    }
}
