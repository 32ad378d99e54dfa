//! The WebAssembly runtime: one wasmtime engine, compiled agents, and live instances with
//! memory, CPU and wall-clock limits. The only module that names wasmtime types.

mod bindings;
mod cache;
mod contract;
mod convert;
mod engine;
mod guest_threads;
mod imports;
mod instance;
mod stderr;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Limit;
use wasmtime::Engine;
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, Linker};

pub use cache::digest;
pub use contract::WIT_VERSION;
pub use imports::{Completion, CompletionRequest, GuestHost, GuestLogLevel, HostError, TokenUsage};
pub use instance::{Instance, MAX_CONFIG_BYTES, MAX_TOOL_RESULT_BYTES};

use bindings::AgentPre;
use bindings::workflow::WorkflowPre;
use instance::InstanceState;

/// Resource limits applied to every guest instance.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// CPU time one guest call may use before it is interrupted.
    pub cpu_per_call: Duration,
    /// Wall-clock time one guest call may take, host calls included.
    pub wall_per_call: Duration,
    /// How many instances may be live at once.
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            cpu_per_call: Duration::from_secs(2),
            wall_per_call: Duration::from_secs(30),
            max_instances: 1000,
        }
    }
}

/// Why loading or running a guest failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuestError {
    /// The file is not a component of the `flue:agent/agent` world.
    #[error("not a valid agent component: {0}")]
    Invalid(String),
    /// The guest trapped: a panic, an out-of-bounds access.
    #[error("the agent trapped: {0}")]
    Trap(String),
    /// The guest call passed one of its limits ([`Limit::MemoryMb`],
    /// [`Limit::CpuMsPerCall`] or [`Limit::WallMsPerCall`]).
    #[error("the agent {message}")]
    Limit {
        /// Which limit it passed.
        limit: Limit,
        /// What happened, worded to follow "the agent " ("did not answer within 30s").
        message: String,
    },
    /// The guest's `create` returned an error of its own.
    #[error("the agent's create failed: {0}")]
    Create(String),
    /// The guest answered with more than the host accepts.
    #[error("the agent's answer was refused: {0}")]
    Oversized(String),
    /// Every instance slot of the pool is taken.
    #[error("too many live instances (limit {0}; raise [limits] max_instances)")]
    TooManyInstances(u32),
    /// Host-side failure around the guest (compile cache I/O).
    #[error("{0}")]
    Host(String),
    /// The instance failed to start `failures` times in a row and is not started again
    /// for `retry_in`; `last` is how its last attempt failed.
    #[error("{last} (start failures in a row: {failures}; next attempt in {retry_in:.1?})")]
    BackingOff {
        /// How the last attempt to start failed.
        last: Box<GuestError>,
        /// How many attempts in a row have failed.
        failures: u32,
        /// How long until the next attempt is allowed.
        retry_in: Duration,
    },
}

impl GuestError {
    /// The limit the call passed, if that is why it failed.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            GuestError::Limit { limit, .. } => Some(*limit),
            GuestError::BackingOff { last, .. } => last.limit(),
            _ => None,
        }
    }
}

/// A compiled agent, ready to be instantiated many times.
pub struct CompiledAgent {
    pre: AgentPre<InstanceState>,
    /// Its `authorize` export, if it decides who may reach its instances.
    authorize: Option<ComponentExportIndex>,
    /// The SHA-256 of the component bytes.
    pub digest: String,
    /// Whether the machine code came from the on-disk cache.
    pub from_cache: bool,
}

impl CompiledAgent {
    /// Whether the agent decides who may reach its instances (it exports `authorize`).
    pub fn authorizes(&self) -> bool {
        self.authorize.is_some()
    }
}

/// The component's `authorize` export, checked to be `func(string, string) -> bool`.
fn authorize_export(component: &Component) -> Result<Option<ComponentExportIndex>, GuestError> {
    let Some((item, index)) = component.get_export(None, "authorize") else {
        return Ok(None);
    };
    let fits = match &item {
        ComponentItem::ComponentFunc(func) => {
            let params: Vec<Type> = func.params().map(|(_, ty)| ty).collect();
            let results: Vec<Type> = func.results().collect();
            matches!(params.as_slice(), [Type::Record(_), Type::String])
                && matches!(results.as_slice(), [Type::Bool])
        }
        _ => false,
    };
    match fits {
        true => Ok(Some(index)),
        false => Err(GuestError::Invalid(
            "its `authorize` export must be func(caller: caller, id: string) -> bool".into(),
        )),
    }
}

/// A compiled workflow, ready to run many times.
pub struct CompiledWorkflow {
    pre: WorkflowPre<InstanceState>,
}

/// The engine, the linkers and the limits: everything shared by all instances.
pub struct Runtime {
    engine: Engine,
    linker: Linker<InstanceState>,
    workflow_linker: Linker<InstanceState>,
    limits: Limits,
    cache_dir: PathBuf,
    guests: guest_threads::GuestThreads,
    _ticker: engine::EpochTicker,
}

impl Runtime {
    /// Builds the engine and linker; compiled artifacts are cached under `cache_dir`.
    pub fn new(limits: Limits, cache_dir: PathBuf) -> Result<Self, GuestError> {
        let engine = engine::build(&limits)
            .map_err(|e| GuestError::Host(format!("cannot start the wasm engine: {e}")))?;
        let link_error =
            |e: wasmtime::Error| GuestError::Host(format!("cannot link host imports: {e}"));
        let linker = imports::linker(&engine).map_err(link_error)?;
        let workflow_linker = imports::workflow_linker(&engine).map_err(link_error)?;
        let guests = guest_threads::GuestThreads::start()
            .map_err(|e| GuestError::Host(format!("cannot start the guest threads: {e}")))?;
        let ticker = engine::EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            workflow_linker,
            limits,
            cache_dir,
            guests,
            _ticker: ticker,
        })
    }

    /// Runs `task`, which calls into guests, on the low-priority guest threads and
    /// waits for it there.
    pub async fn on_guest_threads<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, GuestError> {
        self.guests
            .spawn(task)
            .await
            .map_err(|e| GuestError::Host(format!("a guest call was lost: {e}")))
    }

    /// The limits every instance gets.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles (or loads from cache) a component and checks it is an agent.
    /// Blocking: compiling takes a fraction of a second (seconds for a Python or
    /// JavaScript agent); call it off the async workers. A refused component is
    /// remembered, so the same bytes are refused again without compiling.
    pub fn compile(&self, wasm: &[u8]) -> Result<CompiledAgent, GuestError> {
        let (component, digest, from_cache) = self.load(wasm, "agent")?;
        let checked = contract::check(&self.engine, &component).and_then(|()| {
            let pre = self
                .linker
                .instantiate_pre(&component)
                .and_then(AgentPre::new)
                .map_err(|e| GuestError::Invalid(format!("{e}")))?;
            Ok((pre, authorize_export(&component)?))
        });
        let (pre, authorize) = checked.inspect_err(|e| self.refuse(&digest, "agent", e))?;
        Ok(CompiledAgent {
            pre,
            authorize,
            digest,
            from_cache,
        })
    }

    /// Compiles (or loads from cache) a component and checks it is a workflow.
    /// Blocking, like [`Self::compile`].
    pub fn compile_workflow(&self, wasm: &[u8]) -> Result<CompiledWorkflow, GuestError> {
        let (component, digest, _) = self.load(wasm, "workflow")?;
        let pre = contract::check(&self.engine, &component)
            .and_then(|()| {
                self.workflow_linker
                    .instantiate_pre(&component)
                    .and_then(WorkflowPre::new)
                    .map_err(|e| GuestError::Invalid(format!("{e}")))
            })
            .inspect_err(|e| self.refuse(&digest, "workflow", e))?;
        Ok(CompiledWorkflow { pre })
    }

    fn load(&self, wasm: &[u8], world: &str) -> Result<(Component, String, bool), GuestError> {
        cache::load_or_compile(&self.engine, &self.cache_dir, wasm, &self.verdict(world))
    }

    /// Remembers that the component `digest` names was refused as a `world`, and why.
    fn refuse(&self, digest: &str, world: &str, error: &GuestError) {
        if let GuestError::Invalid(reason) = error {
            let verdict = self.verdict(world);
            cache::remember_refusal(&self.engine, &self.cache_dir, digest, &verdict, reason);
        }
    }

    /// What a refusal depends on besides the component and the host's version: the world
    /// it was loaded as and the memory cap (a component whose memory starts above the cap
    /// is refused, and loads once the cap is raised).
    fn verdict(&self, world: &str) -> String {
        format!("{world}-{}mib", self.limits.memory_bytes >> 20)
    }

    /// Runs a compiled workflow once with `payload`, bounded by `wall` in all; `host`
    /// answers its imports. The inner `Err` is the workflow's own error.
    pub async fn run_workflow(
        &self,
        workflow: &CompiledWorkflow,
        host: Arc<dyn GuestHost>,
        payload: &str,
        wall: Duration,
    ) -> Result<Result<String, String>, GuestError> {
        let limits = Limits {
            wall_per_call: wall,
            ..self.limits.clone()
        };
        instance::run_workflow(&self.engine, &limits, &workflow.pre, host, payload).await
    }

    /// Starts a new instance of a compiled agent; `host` answers its imports.
    /// `limits` may only be tighter than the runtime's own: memory, CPU and wall time
    /// are capped at [`Self::limits`].
    pub async fn instantiate(
        &self,
        agent: &CompiledAgent,
        host: Arc<dyn GuestHost>,
        limits: &Limits,
    ) -> Result<Instance, GuestError> {
        let limits = Limits {
            memory_bytes: limits.memory_bytes.min(self.limits.memory_bytes),
            cpu_per_call: limits.cpu_per_call.min(self.limits.cpu_per_call),
            wall_per_call: limits.wall_per_call.min(self.limits.wall_per_call),
            max_instances: self.limits.max_instances,
        };
        Instance::start(&self.engine, &limits, agent, host).await
    }
}
