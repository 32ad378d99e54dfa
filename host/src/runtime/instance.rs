//! One live guest instance: its own store with a memory cap, a CPU budget checked on
//! every epoch tick (with an async yield), and a wall-clock bound on every call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{ResourceTable, TypedFunc};
use wasmtime::{
    Engine, PoolConcurrencyLimitError, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::workflow::WorkflowPre;
use super::bindings::{
    Agent,
    flue::agent::types::{Caller, CreateContext},
};
use super::stderr::StderrTail;
use super::{CompiledAgent, GuestError, GuestHost, Limits, convert, engine};
use crate::Limit;
use crate::agent_config::AgentConfig;

/// The largest configuration `create` may return, measured as JSON.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;
/// The largest result (or error text) one guest tool call may return.
pub const MAX_TOOL_RESULT_BYTES: usize = 1 << 20;
/// The longest error text `create` may return: it goes into error messages.
const MAX_ERROR_BYTES: usize = 16 << 10;

/// The data of one instance's store.
pub(super) struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    stderr: StderrTail,
    pub(super) host: Arc<dyn GuestHost>,
    /// The session whose prompt is running, for log tags.
    pub(super) session: Option<String>,
    /// The CPU time the current call has used.
    cpu: CpuMeter,
}

/// Counts the CPU time of one guest call on the thread it runs on. A call driven on the
/// guest threads stays on one thread; one that moves (a workflow run on the host's
/// workers) is charged one tick for each move.
struct CpuMeter {
    used: Duration,
    thread: std::thread::ThreadId,
    mark: Duration,
}

impl CpuMeter {
    /// A meter starting at zero on the calling thread.
    fn start() -> Self {
        Self {
            used: Duration::ZERO,
            thread: std::thread::current().id(),
            mark: thread_cpu_time(),
        }
    }

    /// The CPU time used so far.
    fn read(&mut self) -> Duration {
        let (thread, now) = (std::thread::current().id(), thread_cpu_time());
        self.used += match thread == self.thread {
            true => now.saturating_sub(self.mark),
            false => engine::TICK,
        };
        (self.thread, self.mark) = (thread, now);
        self.used
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A live guest instance. Any error from a call other than the guest's own `Err` leaves
/// it unusable: drop it and start a new one.
pub struct Instance {
    store: Store<InstanceState>,
    agent: Agent,
    /// The guest's `authorize`, if it exports one.
    authorize: Option<TypedFunc<(Caller, String), (bool,)>>,
    limits: Limits,
}

impl Instance {
    /// Instantiates a compiled agent in a fresh store.
    pub(super) async fn start(
        engine: &Engine,
        limits: &Limits,
        compiled: &CompiledAgent,
        host: Arc<dyn GuestHost>,
    ) -> Result<Self, GuestError> {
        let mut store = new_store(engine, limits, host);
        let pre = compiled.pre.instance_pre();
        let instance = guarded(&mut store, limits, |s| pre.instantiate_async(s)).await?;
        let invalid = |e: wasmtime::Error| GuestError::Invalid(format!("{e}"));
        let agent = Agent::new(&mut store, &instance).map_err(invalid)?;
        let authorize = match &compiled.authorize {
            Some(index) => Some(
                instance
                    .get_typed_func(&mut store, index)
                    .map_err(invalid)?,
            ),
            None => None,
        };
        Ok(Self {
            store,
            agent,
            authorize,
            limits: limits.clone(),
        })
    }
}

/// A fresh store with the memory cap, the stderr capture and the per-call CPU budget.
fn new_store(engine: &Engine, limits: &Limits, host: Arc<dyn GuestHost>) -> Store<InstanceState> {
    let stderr = StderrTail::default();
    let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
    let state = InstanceState {
        wasi,
        table: ResourceTable::new(),
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build(),
        stderr,
        host,
        session: None,
        cpu: CpuMeter::start(),
    };
    let budget = limits.cpu_per_call;
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut ctx| {
        if ctx.data_mut().cpu.read() > budget {
            return Ok(UpdateDeadline::Interrupt);
        }
        engine::guest_running();
        // Hand the core to any thread waiting for it. Left alone, the kernel may keep a
        // woken host thread queued behind a running guest until its next scheduler tick
        // (4 ms at HZ=250), which is what a busy guest costs the serving path.
        std::thread::yield_now();
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// Runs a workflow's `run` once, in a store of its own; `limits.wall_per_call` bounds
/// the whole run.
pub(super) async fn run_workflow(
    engine: &Engine,
    limits: &Limits,
    pre: &WorkflowPre<InstanceState>,
    host: Arc<dyn GuestHost>,
    payload: &str,
) -> Result<Result<String, String>, GuestError> {
    let mut store = new_store(engine, limits, host);
    let workflow = guarded(&mut store, limits, |s| pre.instantiate_async(s)).await?;
    guarded(&mut store, limits, |s| workflow.call_run(s, payload)).await
}

impl Instance {
    /// Calls the guest's `create` and returns its configuration.
    pub async fn create(
        &mut self,
        agent: &str,
        id: &str,
        env: Vec<(String, String)>,
        payload: Option<String>,
    ) -> Result<AgentConfig, GuestError> {
        let ctx = CreateContext {
            agent: agent.to_string(),
            id: id.to_string(),
            env,
            payload,
        };
        let agent = &self.agent;
        let answer = guarded(&mut self.store, &self.limits, |s| {
            agent.call_create(s, &ctx)
        })
        .await?;
        let config = match answer {
            Ok(config) => config,
            Err(text) => {
                at_most("its create error text is", text.len(), MAX_ERROR_BYTES)?;
                return Err(GuestError::Create(text));
            }
        };
        let config = convert::agent_config(config).map_err(GuestError::Create)?;
        if !json_fits(&config, MAX_CONFIG_BYTES) {
            return Err(GuestError::Oversized(format!(
                "its configuration (as JSON) is over {}, the most allowed",
                readable_size(MAX_CONFIG_BYTES)
            )));
        }
        Ok(config)
    }

    /// Asks the guest whether `caller` may reach instance `id`; `true` when the agent
    /// leaves that to the host.
    pub async fn authorize(
        &mut self,
        caller: &crate::Identity,
        id: &str,
    ) -> Result<bool, GuestError> {
        let Some(authorize) = self.authorize else {
            return Ok(true);
        };
        let args = (convert::caller(caller), id.to_string());
        let (allowed,) = guarded(&mut self.store, &self.limits, |s| {
            authorize.call_async(s, args)
        })
        .await?;
        Ok(allowed)
    }

    /// Calls the guest's `call-tool` during a prompt of `session`. The inner `Err` is the
    /// tool's own error, which the model sees.
    pub async fn call_tool(
        &mut self,
        session: &str,
        name: &str,
        args: &str,
    ) -> Result<Result<String, String>, GuestError> {
        self.store.data_mut().session = Some(session.to_string());
        let agent = &self.agent;
        let answer = guarded(&mut self.store, &self.limits, |s| {
            agent.call_call_tool(s, name, args)
        })
        .await;
        self.store.data_mut().session = None;
        let answer = answer?;
        let size = match &answer {
            Ok(text) | Err(text) => text.len(),
        };
        at_most(
            &format!("tool '{name}' returned"),
            size,
            MAX_TOOL_RESULT_BYTES,
        )?;
        Ok(answer)
    }
}

/// Runs one guest call with a fresh CPU budget and the wall-clock bound, and turns
/// traps into [`GuestError`]s.
async fn guarded<'a, T, F>(
    store: &'a mut Store<InstanceState>,
    limits: &Limits,
    call: impl FnOnce(&'a mut Store<InstanceState>) -> F,
) -> Result<T, GuestError>
where
    F: Future<Output = wasmtime::Result<T>> + 'a,
{
    store.data_mut().cpu = CpuMeter::start();
    store.set_epoch_deadline(1);
    let stderr = store.data().stderr.clone();
    // Only what this call writes is reported: earlier calls' output may be other
    // sessions'.
    let mark = stderr.mark();
    match tokio::time::timeout(limits.wall_per_call, call(store)).await {
        Err(_) => Err(GuestError::Limit {
            limit: Limit::WallMsPerCall,
            message: format!("did not answer within {:?}", limits.wall_per_call),
        }),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            let output = stderr.since(mark);
            Err(describe_trap(&e, limits, &output))
        }
    }
}

/// Turns a wasmtime error into a short, clear reason, with the panic message the guest
/// wrote to stderr during the call, if any.
fn describe_trap(e: &wasmtime::Error, limits: &Limits, stderr: &[u8]) -> GuestError {
    let (cpu, memory) = (limits.cpu_per_call, limits.memory_bytes);
    if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return GuestError::TooManyInstances(limits.max_instances);
    }
    let root = e.root_cause().to_string();
    let (limit, reason) = match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (
            Some(Limit::CpuMsPerCall),
            format!("used more than its CPU limit of {cpu:?} in one call"),
        ),
        _ if root.contains("growing memory") => (
            Some(Limit::MemoryMb),
            format!("exceeded its memory limit of {} MiB", memory >> 20),
        ),
        Some(trap) => (None, format!("{trap}")),
        None => (None, root),
    };
    let output = guest_output(&String::from_utf8_lossy(stderr));
    let message = match output.is_empty() {
        true => reason,
        false => format!("{reason}; guest stderr: {output}"),
    };
    match limit {
        Some(limit) => GuestError::Limit { limit, message },
        None => GuestError::Trap(message),
    }
}

/// Whether `value` as JSON fits in `most` bytes: it is written to a counter that gives
/// up at the first byte too many, so a huge value costs no more than `most` bytes' work.
fn json_fits(value: &impl serde::Serialize, most: usize) -> bool {
    struct Room(usize);
    impl std::io::Write for Room {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 = (self.0.checked_sub(bytes.len()))
                .ok_or_else(|| std::io::Error::other("no room left"))?;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Room(most), value).is_ok()
}

/// A size for messages: in MiB from 1 MiB up, in KiB below.
fn readable_size(bytes: usize) -> String {
    match bytes >= 1 << 20 {
        true => format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64),
        false => format!("{:.1} KiB", bytes as f64 / (1 << 10) as f64),
    }
}

/// Refuses an answer of `size` bytes over `most`; `what` leads the message.
fn at_most(what: &str, size: usize, most: usize) -> Result<(), GuestError> {
    if size > most {
        return Err(GuestError::Oversized(format!(
            "{what} {}; at most {} is allowed",
            readable_size(size),
            readable_size(most)
        )));
    }
    Ok(())
}

/// The CPU time the calling thread has used.
#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    let outcome = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(outcome, 0, "every thread has a CPU-time clock");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Without a per-thread CPU clock, the time since the process started stands in: a
/// call's budget then bounds its wall time.
#[cfg(not(unix))]
fn thread_cpu_time() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// What a guest wrote on stderr, for an error its caller reads: a Rust panic's
/// location (a path on the machine that built the guest) and the hint about
/// `RUST_BACKTRACE` are left out, the message kept.
fn guest_output(stderr: &str) -> String {
    let lines = stderr
        .lines()
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"));
    let lines = lines.map(|line| {
        let location = line.starts_with("thread '") && line.contains(" panicked at ");
        if location { "panicked:" } else { line }
    });
    lines.collect::<Vec<_>>().join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_panic_is_told_without_its_source_path() {
        let stderr = "thread '<unnamed>' (1) panicked at /home/dev/agent/src/lib.rs:12:5:\nboom\n\
                      note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(guest_output(stderr), "panicked:\nboom");
        assert_eq!(guest_output("plain text\n"), "plain text");
    }

    #[cfg(unix)]
    #[test]
    fn a_call_is_charged_the_cpu_time_its_thread_used_not_wall_time() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time() - before;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(started.elapsed());
        }
        let spun = thread_cpu_time() - before - slept;
        assert!(slept < Duration::from_millis(10), "{slept:?}");
        assert!(spun > Duration::from_millis(10), "{spun:?}");
    }

    #[test]
    fn a_call_that_moves_to_another_thread_is_charged_a_tick_for_the_move() {
        let mut meter = CpuMeter::start();
        let used = std::thread::spawn(move || meter.read()).join().unwrap();
        assert_eq!(used, engine::TICK);
    }

    #[test]
    fn json_fits_counts_the_json_bytes() {
        // "xxxxxxxxxx" with its quotes is 12 bytes, {"a":[1,2]} is 11.
        let ten = "x".repeat(10);
        assert!(json_fits(&ten, 12));
        assert!(!json_fits(&ten, 11));
        assert!(json_fits(&serde_json::json!({"a": [1, 2]}), 11));
        assert!(!json_fits(&serde_json::json!({"a": [1, 2]}), 10));
    }
}
