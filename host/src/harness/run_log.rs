//! A workflow run's event log: numbers events in order and stores them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::access::Scope;
use crate::store::Runs;
use crate::store::runs::RunEvent;

/// The event log of one run. It carries the scope of whoever started the run, which
/// bounds the agents the run may prompt.
pub(super) struct RunLog {
    pub id: String,
    next: AtomicU64,
    scope: Scope,
    runs: Arc<dyn Runs>,
}

impl RunLog {
    /// The log of run `id` in `runs`, started by a caller with `scope`. Events are
    /// numbered from 1, as PyFlue numbers them, so that `after=0` means every event.
    pub(super) fn new(id: String, scope: Scope, runs: Arc<dyn Runs>) -> Self {
        Self {
            id,
            next: AtomicU64::new(1),
            scope,
            runs,
        }
    }

    /// The scope of whoever started the run.
    pub(super) fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Stores the next event; a storage failure is logged, not fatal to the run.
    pub(super) async fn record(&self, kind: &str, data: Value) {
        let event = RunEvent {
            index: self.next.fetch_add(1, Ordering::Relaxed),
            kind: kind.to_string(),
            data: data.to_string(),
            at_ms: crate::store::now_millis(),
        };
        if let Err(e) = self.runs.run_event(&self.id, event).await {
            tracing::warn!(run = %self.id, "cannot store a run event: {e}");
        }
    }
}
