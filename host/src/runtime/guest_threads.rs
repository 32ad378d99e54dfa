//! The threads guest code runs on: a Tokio runtime of its own whose threads the OS
//! schedules below the host's. Each guest call is driven on a blocking thread of its own,
//! so the kernel, not a shared run queue, shares the cores between guests: a short call
//! never waits behind a long one's time slice. A guest that burns its whole CPU budget
//! slows other guests, not the serving path (HTTP, the store, model calls).

use std::future::Future;

use tokio::task::JoinHandle;

/// How much lower than the host the guest threads run (a nice value; 19 is lowest).
const GUEST_NICENESS: i32 = 10;
/// The time slice a guest thread asks for: the shortest Linux grants.
const GUEST_SLICE_NS: u64 = 100_000;

/// A Tokio runtime for guest calls, shut down without waiting when dropped.
pub(super) struct GuestThreads {
    runtime: Option<tokio::runtime::Runtime>,
}

impl GuestThreads {
    /// A runtime whose one worker drives the guest calls' timers and I/O; the calls
    /// themselves run on its blocking threads. All its threads run at a low priority.
    pub(super) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("flue-guest")
            .enable_all()
            .on_thread_start(lower_priority)
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `task` on a guest thread of its own.
    pub(super) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
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
            // A kernel without custom slices: at least the lower priority.
            // SAFETY: setpriority on the calling thread's own id.
            let outcome = unsafe {
                libc::setpriority(
                    libc::PRIO_PROCESS,
                    libc::gettid() as libc::id_t,
                    GUEST_NICENESS,
                )
            };
            if outcome != 0 {
                tracing::debug!("guest threads keep the host's priority: setpriority failed");
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn guest_calls_run_below_the_hosts_priority() {
        let threads = GuestThreads::start().unwrap();
        let nice = threads.spawn(async {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            // Fields after the command's closing parenthesis; nice is the 19th field.
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            fields[16].parse::<i32>().unwrap()
        });
        let nice = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(nice)
            .unwrap();
        assert_eq!(nice, GUEST_NICENESS);
    }
}
