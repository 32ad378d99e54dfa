//! The agent loop: instructions + session history + prompt → model → tool calls → … →
//! final text, with a bound on tool rounds, events for streaming, and the usage summed.

mod arguments;
mod backoff;
mod compaction;
mod conversation;
pub(crate) mod dispatcher;
mod imports;
mod instances;
mod persona;
mod policy;
mod run_log;
mod sandbox;
pub(crate) mod skills;
mod tasks;
mod toolbox;
pub(crate) mod workflows;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::json;

use crate::agent_config::AgentConfig;
use crate::models::{Providers, Usage};
use crate::project::HostOptions;
use crate::registry::{AgentVersion, Registry, local_name, tenant_of};
use crate::runtime::Runtime;
use crate::store::{MemoryStore, Queue, Runs, SessionKey, Store};
use crate::tools::{FETCH_TOOL, Fetch};
use crate::{Error, Limit};

pub(crate) use instances::Instances;
use persona::Persona;
use workflows::Workflows;

/// The longest instance id or session name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The longest prompt message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 << 10;

/// Refuses an instance id or session name that is empty, over-long, only blanks, `.`
/// or `..` (which read as paths), or holds a control character such as NUL (which
/// PostgreSQL cannot keep in text): the same refusal whatever the store.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), Error> {
    let refuse = |why: String| Err(Error::InvalidRequest(format!("the {what} {why}")));
    if name.trim().is_empty() {
        return refuse(if name.is_empty() {
            "is empty".into()
        } else {
            "is only blanks".into()
        });
    }
    if name.len() > MAX_NAME_BYTES {
        return refuse(format!(
            "is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return refuse(format!("may not be '{name}'"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return refuse(format!(
            "holds the control character U+{:04X}; names are printable text",
            c as u32
        ));
    }
    Ok(())
}

/// Refuses text holding NUL (U+0000), which PostgreSQL cannot keep in a text value.
pub(crate) fn check_text(what: &str, text: &str) -> Result<(), Error> {
    match text.contains('\0') {
        true => Err(Error::InvalidRequest(format!(
            "the {what} holds NUL (U+0000), which cannot be stored"
        ))),
        false => Ok(()),
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_that_no_store_keeps_alike_are_refused() {
        for good in ["T-1", "a b", "ticket/7", "é"] {
            assert!(check_name("id", good).is_ok(), "{good:?}");
        }
        for bad in ["", " ", "\t", ".", "..", "x\0y", "a\nb", "\u{7f}"] {
            assert!(check_name("id", bad).is_err(), "{bad:?}");
        }
        assert!(check_text("value", "a\0b").is_err());
        assert!(check_text("value", "ab").is_ok());
    }
}

/// The most output tokens one model call may produce.
pub(crate) const MAX_OUTPUT_TOKENS: u32 = 4096;

/// Everything the host shares between requests.
pub(crate) struct Shared {
    pub options: HostOptions,
    pub runtime: Arc<Runtime>,
    pub registry: Registry,
    pub store: Arc<dyn Store>,
    /// Dispatched events waiting for delivery.
    pub queue: Arc<dyn Queue>,
    /// Workflow runs and their events.
    pub runs: Arc<dyn Runs>,
    /// The compiled workflows.
    pub workflows: Workflows,
    /// Delivery of dispatched events: started once, woken when an event is enqueued.
    pub(crate) dispatcher: dispatcher::Dispatcher,
    /// Where agents with `persist = false` keep their sessions.
    pub memory: Arc<MemoryStore>,
    pub providers: Arc<Providers>,
    pub instances: Instances,
    /// Tenants' policies and what each has used.
    pub policies: Arc<policy::Policies>,
    /// The HTTP client of the `fetch` tool.
    fetch_client: reqwest::Client,
    pub stats: Stats,
    /// One lock per session, so prompts to a session run one at a time, in order.
    session_locks: SessionLocks,
}

/// Where an agent's sessions and state live: in `memory` when its configuration says
/// `persist = false`, else in the `durable` store (also before `create` has returned).
pub(crate) fn store_of<'a>(
    config: Option<&AgentConfig>,
    durable: &'a dyn Store,
    memory: &'a MemoryStore,
) -> &'a dyn Store {
    match config.and_then(|c| c.persist) {
        Some(false) => memory,
        _ => durable,
    }
}

/// One lock per session, so prompts to a session run one at a time, in order. A lock
/// lives while a prompt holds or waits for it; the map keeps only weak references.
#[derive(Default)]
struct SessionLocks(Mutex<HashMap<SessionKey, Weak<tokio::sync::Mutex<()>>>>);

impl SessionLocks {
    /// The lock of session `key`, shared with every prompt that holds or awaits it.
    fn of(&self, key: &SessionKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().expect("session locks");
        if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        locks.retain(|_, w| w.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key.clone(), Arc::downgrade(&lock));
        lock
    }
}

/// Running totals since the host started, by agent (and its tenant), as Prometheus
/// counters; `GET /metrics` exposes them.
#[derive(Debug, Default)]
pub struct Stats {
    /// Prompts run, failed ones included (`flue_prompts`).
    pub prompts: Family<AgentLabels, Counter>,
    /// Prompts that ended in an error (`flue_prompt_failures`).
    pub failed_prompts: Family<AgentLabels, Counter>,
    /// Input tokens of successful prompts, cache reads and writes not counted
    /// (`flue_input_tokens`).
    pub input_tokens: Family<AgentLabels, Counter>,
    /// Output tokens of successful prompts (`flue_output_tokens`).
    pub output_tokens: Family<AgentLabels, Counter>,
    /// Guest calls that trapped or passed a limit (`flue_guest_traps`).
    pub guest_traps: Family<AgentLabels, Counter>,
}

/// The labels of the per-agent counters: the agent's host name, and its tenant (empty
/// for the operator's agents). Instance ids are never labels: they are unbounded.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabels {
    pub agent: String,
    pub tenant: String,
}

impl AgentLabels {
    fn of(agent: &str) -> Self {
        Self {
            agent: agent.to_string(),
            tenant: tenant_of(agent).unwrap_or_default().to_string(),
        }
    }
}

impl Stats {
    fn record(&self, agent: &str, outcome: &Result<PromptResult, Error>) {
        let labels = AgentLabels::of(agent);
        self.prompts.get_or_create(&labels).inc();
        match outcome {
            Ok(r) => {
                self.input_tokens
                    .get_or_create(&labels)
                    .inc_by(r.usage.input);
                self.output_tokens
                    .get_or_create(&labels)
                    .inc_by(r.usage.output);
            }
            Err(_) => {
                self.failed_prompts.get_or_create(&labels).inc();
            }
        }
    }

    /// Counts a guest call that trapped or passed a limit.
    pub fn guest_trapped(&self, agent: &str) {
        self.guest_traps
            .get_or_create(&AgentLabels::of(agent))
            .inc();
    }

    /// Registers the counters in `registry`; it reads the same counts.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        let families = [
            ("flue_prompts", "Prompts run", &self.prompts),
            (
                "flue_prompt_failures",
                "Prompts that failed",
                &self.failed_prompts,
            ),
            (
                "flue_input_tokens",
                "Input tokens the prompts used",
                &self.input_tokens,
            ),
            (
                "flue_output_tokens",
                "Output tokens the prompts used",
                &self.output_tokens,
            ),
            (
                "flue_guest_traps",
                "Guest calls that trapped or passed a limit",
                &self.guest_traps,
            ),
        ];
        for (name, help, family) in families {
            registry.register(name, help, family.clone());
        }
    }
}

/// What happens during a prompt, in order; the streaming surface reports these.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The prompt started on this session.
    Start {
        /// The session's name within its instance.
        session: String,
    },
    /// A chunk of the model's answer text.
    TextDelta {
        /// The text, as the provider streamed it.
        text: String,
    },
    /// A tool call is about to run.
    ToolStart {
        /// The tool's name.
        name: String,
        /// The provider's id of the call.
        call_id: String,
        /// The arguments the model gave, a JSON object.
        args: serde_json::Value,
    },
    /// A tool call finished.
    ToolEnd {
        /// The tool's name.
        name: String,
        /// The provider's id of the call.
        call_id: String,
        /// Whether the tool failed, so `result` is its error message.
        is_error: bool,
        /// What the tool returned to the model, as text.
        result: String,
    },
    /// The model delegated a task to a helper, which works in its own child session.
    TaskStart {
        /// The id of the model's `task` call, which names the task.
        task_id: String,
        /// The helper's name, as the agent's subagents list it.
        subagent: String,
        /// The child session the helper works in.
        session: String,
        /// The session that delegated.
        parent_session: String,
        /// What the model asked the helper to do.
        prompt: String,
    },
    /// A helper finished its task; its answer (or error) goes back to the model.
    TaskEnd {
        /// The id of the model's `task` call, as in [`Event::TaskStart`].
        task_id: String,
        /// The helper's name, as the agent's subagents list it.
        subagent: String,
        /// Whether the helper failed, so `result` is the error.
        is_error: bool,
        /// The helper's final answer, or why it failed.
        result: String,
    },
    /// Older turns were summarized to keep the request under the session's threshold.
    Compacted {
        /// The request's estimated size in tokens before the summary.
        tokens_before: usize,
        /// The request's estimated size in tokens with the summary.
        tokens_after: usize,
    },
}

/// The outcome of one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptResult {
    /// The model's final answer.
    pub text: String,
    /// Tokens used by every model call of the prompt.
    pub usage: Usage,
    /// The model that answered, as `provider/model`.
    pub model: String,
}

impl PromptResult {
    /// The wire's result object: `{"text", "metadata", "usage", "model": {"id"}}`.
    /// `usage` counts tokens; it carries no `cost`, which PyFlue's client takes as 0 when
    /// absent: the host keeps no price list, and a made-up 0 would mislead.
    pub fn to_wire(&self) -> flue_wire::PromptResult {
        let u = &self.usage;
        flue_wire::PromptResult {
            text: self.text.clone(),
            metadata: json!({}),
            usage: flue_wire::Usage {
                input: u.input,
                output: u.output,
                cache_read: u.cache_read,
                cache_write: u.cache_write,
                total_tokens: u.total(),
            },
            model: flue_wire::ModelId {
                id: self.model.clone(),
            },
        }
    }
}

/// One prompt to run: where, what, and with which model override.
pub(crate) struct Prompt<'a> {
    pub session: &'a SessionKey,
    pub message: &'a str,
    pub model_override: Option<&'a str>,
}

impl Shared {
    /// Builds the shared state.
    pub(crate) fn new(
        options: HostOptions,
        runtime: Arc<Runtime>,
        registry: Registry,
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        runs: Arc<dyn Runs>,
        workflows: Workflows,
    ) -> Self {
        let providers = Providers::new(
            options.config.providers.clone(),
            options.config.models.clone(),
            options.env.clone(),
            options.config.local.clone(),
            crate::weights::ModelCache::default(),
        );
        let policies = policy::Policies::new(
            options.config.tenants.clone(),
            options.config.policies.clone(),
        );
        Self {
            options,
            runtime,
            registry,
            store,
            queue,
            runs,
            workflows,
            dispatcher: dispatcher::Dispatcher::default(),
            memory: Arc::default(),
            providers: Arc::new(providers),
            instances: Instances::default(),
            policies: Arc::new(policies),
            fetch_client: crate::tools::fetch_client(),
            stats: Stats::default(),
            session_locks: SessionLocks::default(),
        }
    }

    /// The current version of an agent, or a not-found error listing the others.
    /// Names and lists only agents of the same namespace (a tenant's, or the operator's),
    /// as that namespace knows them.
    pub(crate) fn agent(&self, name: &str) -> Result<Arc<AgentVersion>, Error> {
        self.registry.get(name).ok_or_else(|| {
            let tenant = tenant_of(name);
            Error::AgentNotFound {
                name: local_name(tenant, name).unwrap_or(name).to_string(),
                available: self
                    .registry
                    .list()
                    .iter()
                    .filter_map(|a| local_name(tenant, &a.name).map(str::to_string))
                    .collect(),
            }
        })
    }

    /// The store for an agent's sessions and state: durable unless it says `persist = false`.
    pub(crate) fn store_for(&self, config: &AgentConfig) -> &dyn Store {
        store_of(Some(config), self.store.as_ref(), &self.memory)
    }

    /// The `fetch` tool of an agent: on the hosts its `[agents.<name>]` settings and
    /// its policies let it reach, unless none, or a policy's `builtin_tools` leaves
    /// `fetch` out.
    pub(crate) fn fetch_for(&self, agent: &str) -> Option<Arc<Fetch>> {
        let mut hosts = self.policies.fetch_hosts(agent);
        if let Some(own) = self.options.config.agents.get(agent) {
            hosts.extend(own.fetch_hosts.iter().cloned());
        }
        let allowed = !hosts.is_empty()
            && self
                .policies
                .builtin_tools(agent)
                .is_none_or(|tools| tools.iter().any(|t| t == FETCH_TOOL));
        allowed.then(|| Arc::new(Fetch::new(self.fetch_client.clone(), hosts)))
    }

    /// Forgets a session's messages and its virtual sandbox's files, in turn with its
    /// prompts (none runs meanwhile, on this host or, on PostgreSQL, another).
    pub(crate) async fn reset_session(self: &Arc<Self>, key: &SessionKey) -> Result<(), Error> {
        let (config, _) = self.instance_config(&key.instance).await?;
        let store = self.store_for(&config);
        let lock = self.session_locks.of(key);
        let _turn = lock.lock().await;
        let _hold = store.hold_session(key).await?;
        store.clear_session(key).await?;
        sandbox::forget(store, key).await
    }

    /// Runs one prompt to its final answer, within its wall-time limit. With `events`,
    /// the model is streamed and every step is reported; without, each model call is
    /// answered whole.
    pub(crate) async fn run_prompt(
        self: &Arc<Self>,
        prompt: Prompt<'_>,
        events: Option<&mut (dyn FnMut(Event) + Send)>,
    ) -> Result<PromptResult, Error> {
        let agent = &prompt.session.instance.agent;
        let limit = self
            .policies
            .prompt_limit(agent, self.options.config.prompt_limit());
        let outcome = tokio::time::timeout(limit, self.prompt_loop(prompt, events))
            .await
            .unwrap_or_else(|_| {
                Err(Error::LimitExceeded {
                    limit: Limit::WallMsPerPrompt,
                    message: format!("the prompt did not finish within {limit:?}"),
                    retry_after: None,
                })
            });
        self.stats.record(agent, &outcome);
        outcome
    }

    async fn prompt_loop(
        self: &Arc<Self>,
        prompt: Prompt<'_>,
        events: Option<&mut (dyn FnMut(Event) + Send)>,
    ) -> Result<PromptResult, Error> {
        if prompt.message.trim().is_empty() {
            return Err(Error::InvalidRequest("the message is empty".into()));
        }
        if prompt.message.len() > MAX_MESSAGE_BYTES {
            return Err(Error::InvalidRequest(format!(
                "the message is {} bytes long; at most {MAX_MESSAGE_BYTES} are allowed",
                prompt.message.len()
            )));
        }
        let key = prompt.session;
        check_name("session name", &key.session)?;
        let _admitted = self.policies.admit(&key.instance.agent)?;
        let lock = self.session_locks.of(key);
        let _turn = lock.lock().await;
        let (config, version) = self.instance_config(&key.instance).await?;
        let _held = self.store_for(&config).hold_session(key).await?;
        let persona = Persona::of_agent(&config, &key.instance.agent, prompt.model_override)?;
        self.converse(key, (config, version), persona, 0, events, prompt.message)
            .await
    }
}
