//! The management API's reads, in the shapes of PyFlue's admin client
//! (`PyFlueClient.admin`): the agents that have runs (here, the workflows), their
//! instances (a workflow run is its own instance, as in PyFlue), and the runs, each list
//! paged with PyFlue's `cursor` (base64url of `{"offset": n}`, or plain digits) and
//! `limit` (1–1000, default 100). Admin keys only, when keys are configured.

use std::collections::HashMap;

use axum::extract::{Query, State};

use super::request::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Json;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::App;
use super::error::ApiError;
use super::runs::record_json;
use super::wire;
use crate::{RunFilter, RunRecord, RunStatus};

type Params = Query<HashMap<String, String>>;

/// `GET /admin/agents`: `{"agents": [{"name"}], "items", "nextCursor"}`.
#[utoipa::path(get, path = "/admin/agents", params(("cursor" = Option<String>, Query, description = "Where the page starts"), ("limit" = Option<u64>, Query, description = "1–1000, default 100")), responses((status = 200, description = "The workflows, as PyFlue's agents with runs", body = wire::AdminPage), (status = 400, description = "A bad cursor or limit", body = wire::ErrorEnvelope), (status = 403, description = "Not an admin key", body = wire::ErrorEnvelope)))]
pub(super) async fn agents(
    State(app): State<App>,
    Query(query): Params,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.auth.caller(&headers, None)?.admin_reader()?;
    let page = Page::from_query(&query)?;
    let names = app.host.workflows();
    let chosen = names
        .iter()
        .skip(page.offset as usize)
        .take(page.limit as usize);
    let agents: Vec<Value> = chosen.map(|name| json!({ "name": name })).collect();
    let next = page.next(
        agents.len(),
        names.len() as u64 > page.offset.saturating_add(page.limit),
    );
    Ok(Json(
        json!({"agents": agents, "items": agents, "nextCursor": next}),
    ))
}

/// `GET /admin/agents/{name}/instances`: the workflow's runs as instances,
/// `{"agent", "agentName", "instances": [{"agent_id", "instanceId"}], "items", "nextCursor"}`.
#[utoipa::path(get, path = "/admin/agents/{name}/instances", params(("name" = String, Path, description = "The workflow"), ("cursor" = Option<String>, Query, description = "Where the page starts"), ("limit" = Option<u64>, Query, description = "1–1000, default 100")), responses((status = 200, description = "Its runs, as instances", body = wire::AdminPage), (status = 403, description = "Not an admin key", body = wire::ErrorEnvelope), (status = 404, description = "No such workflow", body = wire::ErrorEnvelope)))]
pub(super) async fn instances(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(query): Params,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.auth.caller(&headers, None)?.admin_reader()?;
    let page = Page::from_query(&query)?;
    let filter = RunFilter {
        workflow: Some(name.clone()),
        ..page.filter()
    };
    let (runs, more) = page.fetch(&app, filter).await?;
    if runs.is_empty() && page.offset == 0 && !app.host.workflows().contains(&name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "agent_not_found",
            format!("no agent '{name}' has runs"),
        ));
    }
    let instances: Vec<Value> = runs
        .iter()
        .map(|r| json!({"agent_id": r.id, "instanceId": r.id}))
        .collect();
    let next = page.next(instances.len(), more);
    Ok(Json(json!({
        "agent": name, "agentName": name,
        "instances": instances, "items": instances, "nextCursor": next,
    })))
}

/// `GET /admin/agents/{name}/instances/{id}/runs?status=`: the runs of one instance.
#[utoipa::path(get, path = "/admin/agents/{name}/instances/{id}/runs", params(("name" = String, Path, description = "The workflow"), ("id" = String, Path, description = "The run id"), ("status" = Option<String>, Query, description = "`active`, `completed`, `errored` (or `running`, `succeeded`, `failed`, `cancelled`)")), responses((status = 200, description = "The instance's runs", body = wire::AdminPage), (status = 403, description = "Not an admin key", body = wire::ErrorEnvelope), (status = 404, description = "No such instance", body = wire::ErrorEnvelope)))]
pub(super) async fn instance_runs(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    Query(query): Params,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.auth.caller(&headers, None)?.admin_reader()?;
    let page = Page::from_query(&query)?;
    let status = run_status_filter(&query)?;
    let run = app.host.run(&id).await?.filter(|r| r.workflow == name);
    let Some(run) = run else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "instance_not_found",
            format!("agent '{name}' has no instance '{id}'"),
        ));
    };
    let runs: Vec<Value> = std::iter::once(run)
        .filter(|r| status.is_none_or(|s| r.status == s))
        .skip(page.offset as usize)
        .map(|r| record_json(&r))
        .collect();
    Ok(Json(json!({
        "agent": name, "agentName": name, "agent_id": id, "instanceId": id,
        "runs": runs, "items": runs, "nextCursor": null,
    })))
}

/// `GET /admin/runs?status=&agentName=`: `{"runs": [record], "items", "nextCursor"}`.
#[utoipa::path(get, path = "/admin/runs", params(("status" = Option<String>, Query, description = "`active`, `completed`, `errored` (or `running`, `succeeded`, `failed`, `cancelled`)"), ("agentName" = Option<String>, Query, description = "Only this workflow's runs"), ("cursor" = Option<String>, Query, description = "Where the page starts"), ("limit" = Option<u64>, Query, description = "1–1000, default 100")), responses((status = 200, description = "Runs, newest first", body = wire::AdminPage), (status = 400, description = "A bad status, cursor or limit", body = wire::ErrorEnvelope), (status = 403, description = "Not an admin key", body = wire::ErrorEnvelope)))]
pub(super) async fn runs(
    State(app): State<App>,
    Query(query): Params,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.auth.caller(&headers, None)?.admin_reader()?;
    let page = Page::from_query(&query)?;
    let filter = RunFilter {
        workflow: query.get("agentName").cloned(),
        status: run_status_filter(&query)?,
        ..page.filter()
    };
    let (runs, more) = page.fetch(&app, filter).await?;
    let runs: Vec<Value> = runs.iter().map(record_json).collect();
    let next = page.next(runs.len(), more);
    Ok(Json(
        json!({"runs": runs, "items": runs, "nextCursor": next}),
    ))
}

/// `GET /admin/runs/{id}`: the run record.
#[utoipa::path(get, path = "/admin/runs/{id}", params(("id" = String, Path, description = "The run id")), responses((status = 200, description = "The run", body = wire::RunRecord), (status = 403, description = "Not an admin key", body = wire::ErrorEnvelope), (status = 404, description = "No such run", body = wire::ErrorEnvelope)))]
pub(super) async fn run(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    app.auth.caller(&headers, None)?.admin_reader()?;
    let run = app.host.run(&id).await?;
    let run = run.ok_or_else(|| ApiError::not_found(format!("no run '{id}'")))?;
    Ok(Json(record_json(&run)))
}

/// One page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Page {
    offset: u64,
    limit: u64,
}

impl Page {
    const DEFAULT_LIMIT: u64 = 100;
    const MAX_LIMIT: u64 = 1000;

    /// The page `cursor` and `limit` ask for; `400 invalid_query_param` (with
    /// `meta.param` and `meta.value`) for values PyFlue would refuse.
    fn from_query(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let offset = match query.get("cursor") {
            None => 0,
            Some(raw) => decode_cursor(raw).ok_or_else(|| invalid("cursor", raw))?,
        };
        let limit = match query.get("limit") {
            None => Self::DEFAULT_LIMIT,
            Some(raw) => raw
                .parse()
                .ok()
                .filter(|l| (1..=Self::MAX_LIMIT).contains(l))
                .ok_or_else(|| invalid("limit", raw))?,
        };
        Ok(Self { offset, limit })
    }

    /// The store filter for this page, one run more than asked (to know if more follow).
    fn filter(self) -> RunFilter {
        RunFilter {
            offset: self.offset,
            limit: self.limit.saturating_add(1),
            ..RunFilter::default()
        }
    }

    /// The page's runs, and whether more follow.
    async fn fetch(self, app: &App, filter: RunFilter) -> Result<(Vec<RunRecord>, bool), ApiError> {
        let mut runs = app.host.list_runs(&filter).await?;
        let more = runs.len() as u64 > self.limit;
        runs.truncate(self.limit as usize);
        Ok((runs, more))
    }

    /// The cursor of the page after this one, if `more` follow.
    fn next(self, got: usize, more: bool) -> Option<String> {
        more.then(|| encode_cursor(self.offset.saturating_add(got as u64)))
    }
}

fn encode_cursor(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(json!({ "offset": offset }).to_string())
}

fn decode_cursor(raw: &str) -> Option<u64> {
    if let Ok(offset) = raw.parse() {
        return Some(offset);
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value["offset"].as_u64()
}

/// A run status as PyFlue's admin names it (`active`, `completed`, `errored`, or
/// `running`, `succeeded`, `failed`), or ours (`cancelled`).
fn run_status_filter(query: &HashMap<String, String>) -> Result<Option<RunStatus>, ApiError> {
    let Some(raw) = query.get("status") else {
        return Ok(None);
    };
    let status = match raw.as_str() {
        "active" | "running" => RunStatus::Running,
        "completed" | "succeeded" => RunStatus::Completed,
        "errored" | "failed" => RunStatus::Failed,
        "cancelled" => RunStatus::Cancelled,
        _ => return Err(invalid("status", raw)),
    };
    Ok(Some(status))
}

fn invalid(param: &str, value: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query_param",
        format!("the query parameter '{param}' has an invalid value"),
    )
    .meta(json!({"param": param, "value": value}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_pyflues() {
        assert_eq!(decode_cursor(&encode_cursor(40)), Some(40));
        assert_eq!(decode_cursor("7"), Some(7));
        assert_eq!(decode_cursor("eyJvZmZzZXQiOiAzfQ"), Some(3)); // {"offset": 3}
        assert_eq!(decode_cursor("not a cursor"), None);
        let query = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
        assert!(Page::from_query(&query("limit", "0")).is_err());
        assert!(Page::from_query(&query("limit", "1001")).is_err());
        assert_eq!(
            Page::from_query(&query("limit", "5")).unwrap(),
            Page {
                offset: 0,
                limit: 5
            }
        );
    }
}
