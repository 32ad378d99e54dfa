//! The wasmtime engine configuration and the epoch ticker that bounds guest CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::Limits;

/// How often the engine's epoch advances while no guest call runs across a tick. A
/// call's CPU budget is checked on every tick it runs across.
pub(super) const TICK: Duration = Duration::from_micros(500);
/// How often it advances while a guest call does: how long a guest runs before it hands
/// its core to any thread waiting for one. Faster ticks cost the host a wake-up each, so
/// they are kept for the time guests run long.
const BUSY_TICK: Duration = Duration::from_micros(250);

/// Whether a guest call ran across a tick since the ticker's last one (set by guest
/// calls, cleared by the ticker). One flag for all engines in the process: at worst, an
/// idle engine ticks fast while another's guest runs.
static GUEST_RUNNING: AtomicBool = AtomicBool::new(false);

/// Tells the ticker that a guest call is running across its ticks.
pub(super) fn guest_running() {
    GUEST_RUNNING.store(true, Ordering::Relaxed);
}

/// Core wasm instances per component instance, as many as the largest component of the
/// supported toolchains instantiates (counted with `wasm-tools print`): a Rust agent of
/// wit-bindgen 0.61 3, a JavaScript agent of componentize-js 0.23 3, a Python agent of
/// componentize-py 0.25 14 (CPython, its libc and runtime libraries, the WASI adapter
/// and their shims). Each needs at most 2 memories and 4 tables.
const CORE_INSTANCES_PER_COMPONENT: u32 = 14;

/// The one engine of the host: epoch interruption, pooling allocator, no concurrency features.
pub(super) fn build(limits: &Limits) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(limits.max_instances)
        .total_core_instances(limits.max_instances * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(limits.max_instances * 2)
        .total_tables(limits.max_instances * 2)
        .total_stacks(limits.max_instances)
        .max_memory_size(limits.memory_bytes)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(2)
        .max_tables_per_component(4);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .concurrency_support(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// A thread that advances the engine's epoch every [`TICK`], or every [`BUSY_TICK`]
/// while guest calls run across ticks; stops when dropped.
pub(super) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub(super) fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("flue-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let busy = GUEST_RUNNING.swap(false, Ordering::Relaxed);
                    std::thread::sleep(if busy { BUSY_TICK } else { TICK });
                    engine.increment_epoch();
                }
            })
            .expect("the epoch thread can be spawned");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
