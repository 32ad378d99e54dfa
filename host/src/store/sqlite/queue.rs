//! The dispatch queue in SQLite: the statements the writer runs, and the `Queue`
//! implementation that sends them to it.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use super::SqliteStore;
use super::writer::{Done, Write};
use crate::store::queue::{
    Claimed, DispatchRecord, DispatchStatus, NewDispatch, Queue, Receipt, Settle, lease_end,
    new_dispatch_id,
};
use crate::store::{InstanceKey, SessionKey, StoreError, now_millis};

/// Inserts an event, or finds the one stored earlier under the same idempotency key.
pub async fn enqueue(
    conn: &mut SqliteConnection,
    event: &NewDispatch,
    id: &str,
    at: i64,
) -> Result<Receipt, StoreError> {
    let key = &event.session;
    let inserted = sqlx::query(
        "INSERT INTO dispatches (id, agent, instance_id, session, input, idempotency_key, status, accepted_at, due_at)
         VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)
         ON CONFLICT (agent, instance_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
    )
    .bind(id)
    .bind(&key.instance.agent)
    .bind(&key.instance.id)
    .bind(&key.session)
    .bind(&event.input)
    .bind(&event.idempotency_key)
    .bind(at)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from_display)?;
    if inserted.rows_affected() == 1 {
        return Ok(Receipt {
            id: id.to_string(),
            accepted_at_ms: at,
        });
    }
    let row = sqlx::query(
        "SELECT id, accepted_at FROM dispatches WHERE agent = ? AND instance_id = ? AND idempotency_key = ?",
    )
    .bind(&key.instance.agent)
    .bind(&key.instance.id)
    .bind(&event.idempotency_key)
    .fetch_one(conn)
    .await
    .map_err(StoreError::from_display)?;
    Ok(Receipt {
        id: row.get(0),
        accepted_at_ms: row.get(1),
    })
}

/// Claims the events whose turn it is: each the oldest unfinished event of its session,
/// and either queued and due or running on an expired lease.
pub async fn claim(
    conn: &mut SqliteConnection,
    limit: usize,
    now: i64,
    lease_until: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.id, d.agent, d.instance_id, d.session, d.input, d.attempts
         FROM dispatches d INDEXED BY dispatches_pending
         WHERE d.status IN ('queued', 'running')
           AND ((d.status = 'queued' AND d.due_at <= ?1) OR (d.status = 'running' AND d.lease_until <= ?1))
           AND NOT EXISTS (
             SELECT 1 FROM dispatches e
             WHERE e.agent = d.agent AND e.instance_id = d.instance_id AND e.session = d.session
               AND e.status IN ('queued', 'running') AND e.seq < d.seq)
         ORDER BY d.seq LIMIT ?2",
    )
    .bind(now)
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::from_display)?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.get(0);
        sqlx::query(
            "UPDATE dispatches SET status = 'running', attempts = attempts + 1, lease_until = ? WHERE id = ?",
        )
        .bind(lease_until)
        .bind(&id)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from_display)?;
        claimed.push(Claimed {
            id,
            session: session_of(&row),
            input: row.get(4),
            attempt: row.get::<u32, _>(5) + 1,
        });
    }
    Ok(claimed)
}

/// Extends the leases of events still running.
pub async fn renew(
    conn: &mut SqliteConnection,
    ids: &[String],
    until: i64,
) -> Result<(), StoreError> {
    for id in ids {
        sqlx::query("UPDATE dispatches SET lease_until = ? WHERE id = ? AND status = 'running'")
            .bind(until)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_display)?;
    }
    Ok(())
}

/// Records how an attempt ended, unless the event was claimed again since.
pub async fn settle(
    conn: &mut SqliteConnection,
    id: &str,
    attempt: u32,
    outcome: &Settle,
    now: i64,
) -> Result<(), StoreError> {
    let query = match outcome {
        Settle::Done => sqlx::query(
            "UPDATE dispatches SET status = 'done', lease_until = NULL, finished_at = ? WHERE id = ? AND attempts = ? AND status = 'running'",
        )
        .bind(now),
        Settle::Retry { error, after } => sqlx::query(
            "UPDATE dispatches SET status = 'queued', lease_until = NULL, last_error = ?, due_at = ? WHERE id = ? AND attempts = ? AND status = 'running'",
        )
        .bind(error)
        .bind(now + after.as_millis() as i64),
        Settle::Dead { error } => sqlx::query(
            "UPDATE dispatches SET status = 'dead', lease_until = NULL, last_error = ?, finished_at = ? WHERE id = ? AND attempts = ? AND status = 'running'",
        )
        .bind(error)
        .bind(now),
    };
    query
        .bind(id)
        .bind(attempt)
        .execute(conn)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
}

fn session_of(row: &SqliteRow) -> SessionKey {
    SessionKey {
        instance: InstanceKey {
            agent: row.get(1),
            id: row.get(2),
        },
        session: row.get(3),
    }
}

#[async_trait]
impl Queue for SqliteStore {
    async fn enqueue(&self, event: NewDispatch) -> Result<Receipt, StoreError> {
        let at = now_millis();
        match self
            .write(Write::Enqueue {
                id: new_dispatch_id(at),
                event,
                at,
            })
            .await?
        {
            Done::Receipt(receipt) => Ok(receipt),
            _ => Err(StoreError(
                "the writer answered an enqueue with no receipt".into(),
            )),
        }
    }

    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        let write = Write::Claim {
            limit,
            now: now_millis(),
            lease_until: lease_end(lease),
        };
        match self.write(write).await? {
            Done::Claimed(claimed) => Ok(claimed),
            _ => Err(StoreError(
                "the writer answered a claim with no events".into(),
            )),
        }
    }

    async fn renew(&self, ids: &[String], lease: Duration) -> Result<(), StoreError> {
        let write = Write::Renew {
            ids: ids.to_vec(),
            until: lease_end(lease),
        };
        self.write(write).await.map(drop)
    }

    async fn settle(&self, id: &str, attempt: u32, outcome: Settle) -> Result<(), StoreError> {
        let write = Write::Settle {
            id: id.to_string(),
            attempt,
            outcome,
            now: now_millis(),
        };
        self.write(write).await.map(drop)
    }

    async fn dispatch(&self, id: &str) -> Result<Option<DispatchRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, agent, instance_id, session, input, status, attempts, last_error, accepted_at, finished_at
             FROM dispatches WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reads)
        .await
        .map_err(StoreError::from_display)?;
        row.map(|row| {
            let status: String = row.get(5);
            Ok(DispatchRecord {
                id: row.get(0),
                session: session_of(&row),
                input: row.get(4),
                status: DispatchStatus::parse(&status)?,
                attempts: row.get(6),
                last_error: row.get(7),
                accepted_at_ms: row.get(8),
                finished_at_ms: row.get(9),
            })
        })
        .transpose()
    }
}
