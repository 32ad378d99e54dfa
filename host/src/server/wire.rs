//! The wire shapes of the HTTP API, as the OpenAPI document describes them: PyFlue's
//! agent-server protocol (`PROTOCOL.md`) and this host's additions.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The error envelope every failure answers with.
#[derive(ToSchema, Serialize)]
pub(super) struct ErrorEnvelope {
    error: ErrorBody,
}

/// What went wrong: `type` is machine-readable (`invalid_request`, `forbidden`, …).
#[derive(ToSchema, Serialize)]
pub(super) struct ErrorBody {
    #[serde(rename = "type")]
    kind: String,
    message: String,
    details: String,
    /// Detail for the developer (a parse error, a list of names).
    dev: Option<String>,
    /// Structured detail: `limit`, `retry_after_ms`, `allowed`, `param`, `run_id`.
    meta: Option<Value>,
}

/// `GET /health`.
#[derive(ToSchema, Serialize)]
pub(super) struct Health {
    ok: bool,
    framework: String,
}

/// A prompt: `message` (or its alias `prompt`), possibly wrapped in `payload`.
#[derive(ToSchema, Serialize)]
pub(super) struct PromptBody {
    message: Option<String>,
    /// Alias of `message`.
    prompt: Option<String>,
    /// The session (default `default`).
    session: Option<String>,
    /// Another model for this prompt: `provider/model` or a `flue.toml` alias.
    model: Option<String>,
    /// The same fields, wrapped (PyFlue's clients send this).
    payload: Option<Value>,
}

/// `{"result": …}`.
#[derive(ToSchema, Serialize)]
pub(super) struct ResultEnvelope {
    result: PromptResult,
}

/// A prompt's outcome.
#[derive(ToSchema, Serialize)]
pub(super) struct PromptResult {
    text: String,
    metadata: Value,
    usage: Usage,
    model: ModelId,
}

/// Tokens a prompt used, the agent's own model calls included.
#[derive(ToSchema, Serialize)]
pub(super) struct Usage {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
    total_tokens: u64,
}

/// The model that answered, `provider/model`.
#[derive(ToSchema, Serialize)]
pub(super) struct ModelId {
    id: String,
}

/// `GET /agents`.
#[derive(ToSchema, Serialize)]
pub(super) struct AgentList {
    agents: Vec<AgentEntry>,
}

/// One agent, named as the caller's namespace knows it.
#[derive(ToSchema, Serialize)]
pub(super) struct AgentEntry {
    name: String,
    /// Its component's file name.
    path: String,
    triggers: Value,
}

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
