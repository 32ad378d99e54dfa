//! Workflow runs in PostgreSQL.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresStore;
use crate::store::StoreError;
use crate::store::runs::{RunEnd, RunEvent, RunFilter, RunRecord, RunStatus, Runs};

#[async_trait]
impl Runs for PostgresStore {
    async fn run_started(
        &self,
        id: &str,
        workflow: &str,
        started_by: Option<&str>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (id, workflow, status, started_at, started_by)
             VALUES ($1, $2, 'running', $3, $4)",
        )
        .bind(id)
        .bind(workflow)
        .bind(at_ms)
        .bind(started_by)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
    }

    async fn run_event(&self, id: &str, event: RunEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO run_events (run_id, idx, kind, data, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(event.index as i64)
        .bind(&event.kind)
        .bind(&event.data)
        .bind(event.at_ms)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
    }

    async fn run_ended(&self, id: &str, end: &RunEnd, at_ms: i64) -> Result<(), StoreError> {
        let (status, result, error) = end.columns();
        sqlx::query(
            "UPDATE runs SET status = $1, result = $2, error = $3, ended_at = $4 WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(result)
        .bind(error)
        .bind(at_ms)
        .bind(id)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
    }

    async fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, workflow, status, result, error, started_at, ended_at,
                    (SELECT COUNT(*) FROM run_events WHERE run_id = runs.id) AS events,
                    started_by
             FROM runs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        row.as_ref().map(record).transpose()
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, workflow, status, result, error, started_at, ended_at,
                    (SELECT COUNT(*) FROM run_events WHERE run_id = runs.id) AS events,
                    started_by
             FROM runs
             WHERE ($1::text IS NULL OR workflow = $1) AND ($2::text IS NULL OR status = $2)
             ORDER BY started_at DESC, id DESC LIMIT $3 OFFSET $4",
        )
        .bind(filter.workflow.as_deref())
        .bind(filter.status.map(RunStatus::as_str))
        .bind(filter.limit.min(i64::MAX as u64) as i64)
        .bind(filter.offset.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        rows.iter().map(record).collect()
    }

    async fn run_events(
        &self,
        id: &str,
        after: Option<u64>,
        limit: u64,
    ) -> Result<Vec<RunEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, kind, data, at FROM run_events WHERE run_id = $1 AND idx > $2
             ORDER BY idx LIMIT $3",
        )
        .bind(id)
        .bind(after.map_or(-1, |a| a as i64))
        .bind(limit.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        Ok(rows
            .iter()
            .map(|row| RunEvent {
                index: row.get::<i64, _>("idx") as u64,
                kind: row.get("kind"),
                data: row.get("data"),
                at_ms: row.get("at"),
            })
            .collect())
    }
}

/// A run record from a row of `id, workflow, status, result, error, started_at,
/// ended_at, events`.
fn record(row: &sqlx::postgres::PgRow) -> Result<RunRecord, StoreError> {
    let status: String = row.get("status");
    Ok(RunRecord {
        id: row.get("id"),
        workflow: row.get("workflow"),
        status: RunStatus::parse(&status)?,
        result: row.get("result"),
        error: row.get("error"),
        started_at_ms: row.get("started_at"),
        ended_at_ms: row.get("ended_at"),
        event_count: row.get::<i64, _>("events") as u64,
        started_by: row.get("started_by"),
    })
}
