//! The threads guest code runs on: a Tokio runtime of its own whose threads the OS
//! schedules below the host's. A guest that burns its whole CPU budget then slows other
//! guests, not the serving path (HTTP, the store, model calls), which the kernel runs
//! first whenever it has work.

use std::future::Future;

use tokio::task::JoinHandle;

/// How much lower than the host the guest threads run (a nice value; 19 is lowest).
const GUEST_NICENESS: i32 = 10;
/// The time slice a guest thread asks for: the shortest Linux grants.
const GUEST_SLICE_NS: u64 = 100_000;

/// A Tokio runtime for guest calls, shut down without waiting when dropped.
pub struct GuestThreads {
    runtime: Option<tokio::runtime::Runtime>,
}

impl GuestThreads {
    /// One low-priority worker thread per core.
    pub fn start() -> std::io::Result<Self> {
        let threads = 1;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("flue-guest")
            .enable_all()
            .on_thread_start(lower_priority)
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `task` on the guest threads.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the guest runtime lives until drop");
        let handle = runtime.handle().clone();
        runtime.spawn_blocking(move || handle.block_on(task))
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        // Dropping a runtime from async code would block; the calls still running are
        // bounded by their own limits and are simply abandoned.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's scheduling priority and shortens its time slice, so a
/// host thread that wakes on the same core takes over at once (Linux keeps both per
/// thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let attr = libc::sched_attr {
            size: std::mem::size_of::<libc::sched_attr>() as u32,
            sched_policy: libc::SCHED_OTHER as u32,
            sched_flags: 0,
            sched_nice: GUEST_NICENESS,
            sched_priority: 0,
            sched_runtime: GUEST_SLICE_NS,
            sched_deadline: 0,
            sched_period: 0,
        };
        // SAFETY: sched_setattr on the calling thread (0) with a fully initialised
        // attribute of the size it states; the kernel only reads it.
        let outcome = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) };
        if outcome != 0 {
            tracing::debug!("guest threads keep the host's scheduling: sched_setattr failed");
        }
    }
}
