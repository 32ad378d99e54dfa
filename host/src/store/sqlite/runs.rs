//! Workflow runs in SQLite: the statements the writer runs, and the `Runs`
//! implementation.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use super::SqliteStore;
use super::writer::Write;
use crate::store::StoreError;
use crate::store::runs::{RunEnd, RunEvent, RunRecord, RunStatus, Runs};

/// Records a run as started.
pub async fn started(
    conn: &mut SqliteConnection,
    id: &str,
    workflow: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO runs (id, workflow, status, started_at) VALUES (?, ?, 'running', ?)")
        .bind(id)
        .bind(workflow)
        .bind(at)
        .execute(conn)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
}

/// Appends one event.
pub async fn event(conn: &mut SqliteConnection, id: &str, e: &RunEvent) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO run_events (run_id, idx, kind, data, at) VALUES (?, ?, ?, ?, ?)")
        .bind(id)
        .bind(e.index as i64)
        .bind(&e.kind)
        .bind(&e.data)
        .bind(e.at_ms)
        .execute(conn)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
}

/// Records how a run ended.
pub async fn ended(
    conn: &mut SqliteConnection,
    id: &str,
    end: &RunEnd,
    at: i64,
) -> Result<(), StoreError> {
    let (status, result, error) = end.columns();
    sqlx::query("UPDATE runs SET status = ?, result = ?, error = ?, ended_at = ? WHERE id = ?")
        .bind(status.as_str())
        .bind(result)
        .bind(error)
        .bind(at)
        .bind(id)
        .execute(conn)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
}

#[async_trait]
impl Runs for SqliteStore {
    async fn run_started(&self, id: &str, workflow: &str, at_ms: i64) -> Result<(), StoreError> {
        let write = Write::RunStarted {
            id: id.to_string(),
            workflow: workflow.to_string(),
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
        let row = sqlx::query(
            "SELECT id, workflow, status, result, error, started_at, ended_at,
                    (SELECT COUNT(*) FROM run_events WHERE run_id = runs.id)
             FROM runs WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reads)
        .await
        .map_err(StoreError::from_display)?;
        row.map(|row| {
            let status: String = row.get(2);
            Ok(RunRecord {
                id: row.get(0),
                workflow: row.get(1),
                status: RunStatus::parse(&status)?,
                result: row.get(3),
                error: row.get(4),
                started_at_ms: row.get(5),
                ended_at_ms: row.get(6),
                event_count: row.get::<i64, _>(7) as u64,
            })
        })
        .transpose()
    }

    async fn run_events(
        &self,
        id: &str,
        after: Option<u64>,
        limit: u64,
    ) -> Result<Vec<RunEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, kind, data, at FROM run_events WHERE run_id = ? AND idx > ? ORDER BY idx LIMIT ?",
        )
        .bind(id)
        .bind(after.map_or(-1, |a| a as i64))
        .bind(limit.min(i64::MAX as u64) as i64)
        .fetch_all(&self.reads)
        .await
        .map_err(StoreError::from_display)?;
        Ok(rows
            .iter()
            .map(|row| RunEvent {
                index: row.get::<i64, _>(0) as u64,
                kind: row.get(1),
                data: row.get(2),
                at_ms: row.get(3),
            })
            .collect())
    }
}
