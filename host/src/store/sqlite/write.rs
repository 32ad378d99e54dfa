//! The writes the writer commits, what each gives back, and a queued write's reply
//! channel: what the store's methods send to the writer.

use tokio::sync::oneshot;

use crate::models::Message;
use crate::store::queue::{Claimed, NewDispatch, Receipt, Settle};
use crate::store::runs::{RunEnd, RunEvent};
use crate::store::{InstanceKey, SessionKey, StoreError};

/// One write the writer has not committed yet.
pub(super) enum Write {
    Append {
        key: SessionKey,
        messages: Vec<Message>,
        bodies: Vec<String>,
        at: i64,
    },
    /// Reads a session's history (and caches it), in order with the writes around it.
    Load {
        key: SessionKey,
    },
    /// Deletes a session's messages (and empties its cached history). A batch inserts
    /// its appends before its other writes, so the caller holds the session's turn: no
    /// append to that session is in flight.
    Clear {
        key: SessionKey,
    },
    State {
        instance: InstanceKey,
        key: String,
        value: String,
    },
    Enqueue {
        event: NewDispatch,
        id: String,
        at: i64,
    },
    Claim {
        limit: usize,
        now: i64,
        lease_until: i64,
    },
    Renew {
        ids: Vec<String>,
        until: i64,
    },
    Settle {
        id: String,
        attempt: u32,
        outcome: Settle,
        now: i64,
    },
    /// Queues a dead event again.
    Retry {
        id: String,
        now: i64,
    },
    RunStarted {
        id: String,
        workflow: String,
        started_by: Option<String>,
        at: i64,
    },
    RunEvent {
        id: String,
        event: RunEvent,
    },
    RunEnded {
        id: String,
        end: RunEnd,
        at: i64,
    },
}

/// What a committed write gives back.
pub(super) enum Done {
    Nothing,
    /// Whether a conditional update found its row.
    Changed(bool),
    Receipt(Receipt),
    Claimed(Vec<Claimed>),
    /// A history and its stored size in bytes.
    History(Vec<Message>, usize),
}

/// A queued write and where to report its outcome.
pub(super) struct Pending {
    pub write: Write,
    pub done: oneshot::Sender<Result<Done, StoreError>>,
}
