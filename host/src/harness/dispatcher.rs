//! Delivery of dispatched events: a loop claims the events whose turn it is (at most
//! one in flight per session, in order), runs each as a turn of its session, renews
//! its lease while it runs, and settles it: done, retried with exponential backoff and
//! jitter, or dead after the last attempt.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use super::{Prompt, Shared};
use crate::store::queue::{Claimed, Settle};

/// How often the queue is checked when nothing wakes the dispatcher.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The text the model sees for an event: a header, then the input JSON.
pub(crate) fn event_message(id: &str, input: &str) -> String {
    format!("[Event {id}, dispatched to this session; it is not a message from a person]\n{input}")
}

/// The dispatcher's own state: whether its loop runs, and the signal that wakes it.
#[derive(Default)]
pub(crate) struct Dispatcher {
    wake: Arc<Notify>,
    started: AtomicBool,
}

impl Dispatcher {
    /// Wakes the loop: an event was enqueued or queued again.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts the delivery loop for `shared`, once; later calls do nothing.
    pub(crate) fn start(&self, shared: &Arc<Shared>) {
        if !self.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(run(Arc::downgrade(shared), self.wake.clone()));
        }
    }
}

/// Claims and delivers events until the host is gone.
async fn run(shared: Weak<Shared>, wake: Arc<Notify>) {
    let Some(settings) = shared.upgrade().map(|s| s.options.config.dispatch.clone()) else {
        return;
    };
    let slots = Arc::new(Semaphore::new(settings.workers()));
    loop {
        let Some(host) = shared.upgrade() else {
            return;
        };
        let free = slots.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            host.queue
                .claim(free, settings.lease())
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!("cannot claim dispatched events: {e}");
                    Vec::new()
                })
        };
        let busy = !claimed.is_empty();
        for event in claimed {
            let permit = slots
                .clone()
                .try_acquire_owned()
                .expect("a free slot was counted");
            let (host, wake) = (host.clone(), wake.clone());
            tokio::spawn(async move {
                deliver(&host, event).await;
                drop(permit);
                wake.notify_one();
            });
        }
        drop(host);
        if !busy || slots.available_permits() == 0 {
            let _ = tokio::time::timeout(POLL, wake.notified()).await;
        }
    }
}

/// Runs one event as a turn of its session and settles it.
async fn deliver(shared: &Arc<Shared>, event: Claimed) {
    let settings = &shared.options.config.dispatch;
    let message = event_message(&event.id, &event.input);
    let prompt = Prompt {
        session: &event.session,
        message: &message,
        model_override: None,
    };
    let renew = async {
        let ids = [event.id.clone()];
        loop {
            tokio::time::sleep(settings.lease() / 3).await;
            if let Err(e) = shared.queue.renew(&ids, settings.lease()).await {
                tracing::warn!(dispatch = %event.id, "cannot renew a lease: {e}");
            }
        }
    };
    let outcome = tokio::select! {
        outcome = shared.run_prompt(prompt, None) => outcome,
        () = renew => unreachable!("lease renewal never ends"),
    };
    let settle = match outcome {
        Ok(result) => Settle::Done {
            answer: result.text,
        },
        Err(e) if event.attempt >= settings.max_attempts() => {
            tracing::warn!(dispatch = %event.id, attempts = event.attempt, "event is dead: {e}");
            Settle::Dead {
                error: e.to_string(),
            }
        }
        Err(e) => Settle::Retry {
            error: e.to_string(),
            after: backoff(settings.backoff(), event.attempt),
        },
    };
    if let Err(e) = shared.queue.settle(&event.id, event.attempt, settle).await {
        tracing::error!(dispatch = %event.id, "cannot record an attempt; it will run again: {e}");
    }
}

/// The pause after failed attempt `attempt` (from 1): backon's exponential back-off from
/// `base`, doubled for each attempt after the first and capped at [`MAX_BACKOFF`], plus
/// a jitter of up to as much again.
fn backoff(base: Duration, attempt: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(base.min(MAX_BACKOFF))
        .with_max_delay(MAX_BACKOFF)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .expect("a back-off without a most number of times never ends")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let base = Duration::from_millis(100);
        for _ in 0..100 {
            let third = backoff(base, 3);
            assert!(third >= Duration::from_millis(400) && third < Duration::from_millis(800));
            assert!(backoff(base, 40) < MAX_BACKOFF * 2);
            assert!(
                backoff(MAX_BACKOFF * 10, 1) < MAX_BACKOFF * 2,
                "the first is capped too"
            );
        }
    }
}
