//! Workflow runs in SQLite: the statements the writer runs, and the `Runs`
//! implementation.

use async_trait::async_trait;
use rusqlite::Connection;

use super::write::Write;
use super::{SqliteStore, execute, parsed};
use crate::store::StoreError;
use crate::store::runs::{RunEnd, RunEvent, RunFilter, RunRecord, RunStatus, Runs};

/// Records a run as started.
pub(super) fn started(
    conn: &Connection,
    id: &str,
    workflow: &str,
    started_by: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    execute(
        conn,
        "INSERT INTO runs (id, workflow, status, started_at, started_by)
         VALUES (?1, ?2, 'running', ?3, ?4)",
        (id, workflow, at, started_by),
    )
    .map(drop)
}

/// Appends one event.
pub(super) fn event(conn: &Connection, id: &str, e: &RunEvent) -> Result<(), StoreError> {
    execute(
        conn,
        "INSERT INTO run_events (run_id, idx, kind, data, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        (id, e.index as i64, &e.kind, &e.data, e.at_ms),
    )
    .map(drop)
}

/// Records how a run ended.
pub(super) fn ended(conn: &Connection, id: &str, end: &RunEnd, at: i64) -> Result<(), StoreError> {
    let (status, result, error) = end.columns();
    execute(
        conn,
        "UPDATE runs SET status = ?1, result = ?2, error = ?3, ended_at = ?4 WHERE id = ?5",
        (status.as_str(), result, error, at, id),
    )
    .map(drop)
}

#[async_trait]
impl Runs for SqliteStore {
    async fn run_started(
        &self,
        id: &str,
        workflow: &str,
        started_by: Option<&str>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let write = Write::RunStarted {
            id: id.to_string(),
            workflow: workflow.to_string(),
            started_by: started_by.map(str::to_string),
            at: at_ms,
        };
        self.write(write).await.map(drop)
    }

    async fn run_event(&self, id: &str, event: RunEvent) -> Result<(), StoreError> {
        let write = Write::RunEvent {
            id: id.to_string(),
            event,
        };
        self.write(write).await.map(drop)
    }

    async fn run_ended(&self, id: &str, end: &RunEnd, at_ms: i64) -> Result<(), StoreError> {
        let write = Write::RunEnded {
            id: id.to_string(),
            end: end.clone(),
            at: at_ms,
        };
        self.write(write).await.map(drop)
    }

    async fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.read_row(
            "SELECT id, workflow, status, result, error, started_at, ended_at,
                    (SELECT COUNT(*) FROM run_events WHERE run_id = runs.id), started_by
             FROM runs WHERE id = ?1",
            [id.to_string()],
            record,
        )
        .await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let params = (
            filter.workflow.clone(),
            filter.status.map(RunStatus::as_str),
            filter.limit.min(i64::MAX as u64) as i64,
            filter.offset.min(i64::MAX as u64) as i64,
        );
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, workflow, status, result, error, started_at, ended_at,
                        (SELECT COUNT(*) FROM run_events WHERE run_id = runs.id), started_by
                 FROM runs WHERE (?1 IS NULL OR workflow = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY started_at DESC, id DESC LIMIT ?3 OFFSET ?4",
            )?
            .query_map(params, record)?
            .collect()
        })
        .await
    }

    async fn run_events(
        &self,
        id: &str,
        after: Option<u64>,
        limit: u64,
    ) -> Result<Vec<RunEvent>, StoreError> {
        let id = id.to_string();
        let after = after.map_or(-1, |a| a as i64);
        let limit = limit.min(i64::MAX as u64) as i64;
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT idx, kind, data, at FROM run_events WHERE run_id = ?1 AND idx > ?2 ORDER BY idx LIMIT ?3",
            )?
            .query_map((id, after, limit), |row| {
                Ok(RunEvent {
                    index: row.get::<_, i64>(0)? as u64,
                    kind: row.get(1)?,
                    data: row.get(2)?,
                    at_ms: row.get(3)?,
                })
            })?
            .collect()
        })
        .await
    }
}

/// A run record from a row of `id, workflow, status, result, error, started_at,
/// ended_at, event count, started_by`.
fn record(row: &rusqlite::Row) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        workflow: row.get(1)?,
        status: parsed(row, 2, RunStatus::parse)?,
        result: row.get(3)?,
        error: row.get(4)?,
        started_at_ms: row.get(5)?,
        ended_at_ms: row.get(6)?,
        event_count: row.get::<_, i64>(7)? as u64,
        started_by: row.get(8)?,
    })
}
