//! The durable queue of dispatched events: what is stored, claimed with a lease,
//! and settled. Events of one session are claimed in order, one at a time.

use std::time::Duration;

use async_trait::async_trait;

use super::{SessionKey, StoreError, now_millis};

/// An event to enqueue for an instance's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDispatch {
    /// The session the event is delivered to, as one turn.
    pub session: SessionKey,
    /// The event as JSON text.
    pub input: String,
    /// A caller's key: enqueueing the same key for the same instance again returns the
    /// first receipt instead of a second event.
    pub idempotency_key: Option<String>,
}

/// Proof that an event is stored and will be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The event's id, `dsp_` and hex digits (see [`new_dispatch_id`]).
    pub id: String,
    /// When it was first accepted, in milliseconds since the Unix epoch.
    pub accepted_at_ms: i64,
    /// Whether the stored event is the one asked for: `false` when an earlier event
    /// holds the idempotency key with another session or input (the key was reused for
    /// a different request).
    pub same_request: bool,
}

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchStatus {
    /// Waiting for its turn, or for the backoff after a failed attempt.
    Queued,
    /// Claimed by a worker that holds a lease on it.
    Running,
    /// Processed; its answer is stored.
    Done,
    /// Failed on its last allowed attempt; only [`Queue::retry`] queues it again.
    Dead,
}

impl DispatchStatus {
    /// The status as stored and shown: `queued`, `running`, `done`, `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchStatus::Queued => "queued",
            DispatchStatus::Running => "running",
            DispatchStatus::Done => "done",
            DispatchStatus::Dead => "dead",
        }
    }

    /// The status named by [`Self::as_str`], as read back from a database.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        [Self::Queued, Self::Running, Self::Done, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| StoreError(format!("unknown dispatch status '{text}'")))
    }
}

/// A stored event and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchRecord {
    /// The event's id, as in its [`Receipt`].
    pub id: String,
    /// The session the event is delivered to.
    pub session: SessionKey,
    /// The event as JSON text.
    pub input: String,
    /// Where the event is in its life.
    pub status: DispatchStatus,
    /// Delivery attempts started so far.
    pub attempts: u32,
    /// Why the latest failed attempt failed; cleared once the event is done.
    pub last_error: Option<String>,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub accepted_at_ms: i64,
    /// When it was done or declared dead, in milliseconds since the Unix epoch.
    pub finished_at_ms: Option<i64>,
    /// What the agent answered the event with, once it is done.
    pub answer: Option<String>,
}

/// Which events [`Queue::list_dispatches`] returns: oldest first, `limit` of them after
/// skipping `offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchFilter {
    /// Only events in this state.
    pub status: Option<DispatchStatus>,
    /// Only events of this agent (its host name).
    pub agent: Option<String>,
    /// How many matching stored events to skip first.
    pub offset: u64,
    /// The most events to return.
    pub limit: u64,
}

/// An event a worker claimed and now holds a lease on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The event's id.
    pub id: String,
    /// The session to deliver it to.
    pub session: SessionKey,
    /// The event as JSON text.
    pub input: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Processed; the agent answered this.
    Done {
        /// The agent's final answer text.
        answer: String,
    },
    /// Failed; try again no sooner than `after`.
    Retry {
        /// Why the attempt failed, stored as the event's last error.
        error: String,
        /// The backoff before the event is due again.
        after: Duration,
    },
    /// Failed for the last time.
    Dead {
        /// Why the last attempt failed, stored as the event's last error.
        error: String,
    },
}

/// The durable dispatch queue.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Stores an event (durably, before returning) and returns its receipt.
    async fn enqueue(&self, event: NewDispatch) -> Result<Receipt, StoreError>;
    /// Claims up to `limit` events whose turn it is: the oldest unfinished event of its
    /// session, queued and due, or running with an expired lease.
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError>;
    /// Extends the leases on events still being processed.
    async fn renew(&self, ids: &[String], lease: Duration) -> Result<(), StoreError>;
    /// Records how attempt number `attempt` ended. An attempt whose lease ran out and
    /// whose event was claimed again (by this host or another) changes nothing.
    async fn settle(&self, id: &str, attempt: u32, outcome: Settle) -> Result<(), StoreError>;
    /// One event, if it exists.
    async fn dispatch(&self, id: &str) -> Result<Option<DispatchRecord>, StoreError>;
    /// The events `filter` picks, oldest first.
    async fn list_dispatches(
        &self,
        filter: &DispatchFilter,
    ) -> Result<Vec<DispatchRecord>, StoreError>;
    /// Queues a dead event again, due now, for one more attempt (attempts go on
    /// counting, so a late outcome of an earlier attempt changes nothing); `false` if it
    /// is not dead (or does not exist).
    async fn retry(&self, id: &str) -> Result<bool, StoreError>;
}

/// A dispatch id: time-ordered and random enough to never collide in one database.
pub fn new_dispatch_id(now: i64) -> String {
    format!("dsp_{now:011x}{:016x}", fastrand::u64(..))
}

/// When a lease of `lease` taken now runs out, in milliseconds since the Unix epoch.
pub fn lease_end(lease: Duration) -> i64 {
    now_millis() + lease.as_millis() as i64
}
