//! The wire shapes of the HTTP API, as the OpenAPI document describes them: PyFlue's
//! agent-server protocol (`PROTOCOL.md`) and this host's additions. The shapes a
//! client reads too are `flue-wire`'s, shared with `flue-client`; the rest are
//! described here.

pub(super) use flue_wire::{
    AgentEntry, AgentList, ErrorEnvelope, Health, PromptBody, ResultEnvelope,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A dispatched event.
#[derive(ToSchema, Serialize)]
pub(super) struct DispatchBody {
    input: Value,
    session: Option<String>,
    /// Like the `Idempotency-Key` header.
    idempotency_key: Option<String>,
}

/// `202`: the event is durably stored.
#[derive(ToSchema, Serialize)]
pub(super) struct DispatchReceipt {
    status: String,
    dispatch_id: String,
    accepted_at: String,
}

/// A dispatched event and how its delivery went.
#[derive(ToSchema, Serialize)]
pub(super) struct DispatchRecord {
    dispatch_id: String,
    agent: String,
    /// The instance id (PyFlue's `agent_id`).
    #[serde(rename = "instanceId")]
    instance_id: String,
    session: String,
    /// `queued`, `running`, `done` or `dead`.
    status: String,
    attempts: u32,
    last_error: Option<String>,
    accepted_at: String,
    finished_at: Option<String>,
    /// What the agent answered, once it is done.
    answer: Option<String>,
}

/// `GET /dispatches`.
#[derive(ToSchema, Serialize)]
pub(super) struct DispatchList {
    dispatches: Vec<DispatchRecord>,
    /// Where the next page of stored events starts.
    next_offset: u64,
}

/// `GET /workflows`.
#[derive(ToSchema, Serialize)]
pub(super) struct WorkflowList {
    workflows: Vec<Named>,
}

/// Something by name.
#[derive(ToSchema, Serialize)]
pub(super) struct Named {
    name: String,
}

/// `202`: the run started.
#[derive(ToSchema, Serialize)]
pub(super) struct RunAccepted {
    status: String,
    run_id: String,
    #[serde(rename = "runId")]
    run_id_camel: String,
}

/// A workflow run, in PyFlue's shape: `agent` is the workflow and `agent_id` the run
/// itself (a run is its own instance, as in PyFlue).
#[derive(ToSchema, Serialize)]
pub(super) struct RunRecord {
    run_id: String,
    agent: String,
    agent_id: String,
    /// Seconds since the epoch.
    started_at: f64,
    #[serde(rename = "startedAt")]
    started_at_iso: String,
    ended_at: Option<f64>,
    #[serde(rename = "durationMs")]
    duration_ms: Option<i64>,
    /// `running`, `completed`, `failed` or `cancelled`.
    status: String,
    is_error: bool,
    error: Option<String>,
    result: Option<Value>,
    event_count: u64,
}

/// A page of a run's events.
#[derive(ToSchema, Serialize)]
pub(super) struct RunEvents {
    run_id: String,
    events: Vec<RunEvent>,
    /// Where the next page starts.
    next_after: u64,
}

/// One event of a run, numbered from 1.
#[derive(ToSchema, Serialize)]
pub(super) struct RunEvent {
    run_id: String,
    event_index: u64,
    #[serde(rename = "type")]
    kind: String,
    /// Seconds since the epoch.
    timestamp: f64,
    data: Value,
}

/// `GET /agents/{name}/{id}/sessions`.
#[derive(ToSchema, Serialize)]
pub(super) struct SessionList {
    agent: String,
    #[serde(rename = "instanceId")]
    instance_id: String,
    sessions: Vec<String>,
}

/// A session's stored messages, oldest first.
#[derive(ToSchema, Serialize)]
pub(super) struct History {
    session: String,
    /// `{"role": "user" | "assistant" | "tool" | "summary", …}`.
    messages: Vec<Value>,
}

/// A page of an admin list; `nextCursor` is absent on the last page.
#[derive(ToSchema, Serialize)]
pub(super) struct AdminPage {
    items: Vec<Value>,
    #[serde(rename = "nextCursor")]
    next_cursor: Option<String>,
}

/// `PUT /admin/tenants/{tenant}/agents/{name}`.
#[derive(ToSchema, Serialize)]
pub(super) struct Installed {
    tenant: String,
    agent: String,
    replaced: bool,
}
