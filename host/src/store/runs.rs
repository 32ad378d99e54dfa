//! Workflow runs and their events, as stored.

use async_trait::async_trait;

use super::StoreError;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Started and not yet ended.
    Running,
    /// Ended with a result.
    Completed,
    /// Ended with an error.
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl RunStatus {
    /// The status as stored and shown: `running`, `completed`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// The status named by [`Self::as_str`], as read back from a database.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        [
            Self::Running,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| StoreError(format!("unknown run status '{text}'")))
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// With a result (JSON text).
    Completed(String),
    /// With an error.
    Failed(String),
    /// Stopped on request.
    Cancelled,
}

impl RunEnd {
    /// The status, result and error a run that ended this way is stored with.
    pub fn columns(&self) -> (RunStatus, Option<&str>, Option<&str>) {
        match self {
            RunEnd::Completed(result) => (RunStatus::Completed, Some(result.as_str()), None),
            RunEnd::Failed(error) => (RunStatus::Failed, None, Some(error.as_str())),
            RunEnd::Cancelled => (RunStatus::Cancelled, None, Some("cancelled")),
        }
    }
}

/// One run of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run's id, `run_` and hex digits of its start time and a random part.
    pub id: String,
    /// The workflow's name, as in `workflows/<name>.wasm`.
    pub workflow: String,
    /// Where the run is in its life.
    pub status: RunStatus,
    /// The result (JSON text) of a completed run.
    pub result: Option<String>,
    /// Why a failed run failed.
    pub error: Option<String>,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// The name of the API key that started it; `None` without keys (or from the
    /// command line).
    pub started_by: Option<String>,
    /// When it ended, in milliseconds since the Unix epoch; `None` while running.
    pub ended_at_ms: Option<i64>,
    /// How many events it has recorded so far.
    pub event_count: u64,
}

/// One event of a run, numbered from 1 in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    /// Its number in the run's log; the run's first event is 1.
    pub index: u64,
    /// What happened, such as `run_start`, `prompt_end` or `run_end`.
    pub kind: String,
    /// The event's data, JSON text.
    pub data: String,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// Which runs [`Runs::list_runs`] returns: newest first, `limit` of them after
/// skipping `offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// How many matching runs to skip first.
    pub offset: u64,
    /// The most runs to return.
    pub limit: u64,
}

/// Stored runs.
#[async_trait]
pub trait Runs: Send + Sync {
    /// Records a run as started, by the key named `started_by` if any.
    async fn run_started(
        &self,
        id: &str,
        workflow: &str,
        started_by: Option<&str>,
        at_ms: i64,
    ) -> Result<(), StoreError>;
    /// Appends an event to a run; events are numbered in the order they are recorded.
    async fn run_event(&self, id: &str, event: RunEvent) -> Result<(), StoreError>;
    /// Records how a run ended.
    async fn run_ended(&self, id: &str, end: &RunEnd, at_ms: i64) -> Result<(), StoreError>;
    /// A run, if it exists.
    async fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// The runs `filter` picks, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;
    /// Up to `limit` events of a run with an index above `after` (all with `None`).
    async fn run_events(
        &self,
        id: &str,
        after: Option<u64>,
        limit: u64,
    ) -> Result<Vec<RunEvent>, StoreError>;
}
