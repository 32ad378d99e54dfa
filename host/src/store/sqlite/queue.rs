//! The dispatch queue in SQLite: the statements the writer runs, and the `Queue`
//! implementation that sends them to it.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, Row};

use super::write::{Done, Write};
use super::{SqliteStore, execute, parsed};
use crate::store::queue::{
    Claimed, DispatchFilter, DispatchRecord, DispatchStatus, NewDispatch, Queue, Receipt, Settle,
    lease_end, new_dispatch_id,
};
use crate::store::{InstanceKey, SessionKey, StoreError, now_millis};

/// Inserts an event, or finds the one stored earlier under the same idempotency key.
pub(super) fn enqueue(
    conn: &Connection,
    event: &NewDispatch,
    id: &str,
    at: i64,
) -> Result<Receipt, StoreError> {
    let key = &event.session;
    let inserted = execute(
        conn,
        "INSERT INTO dispatches (id, agent, instance_id, session, input, idempotency_key, status, accepted_at, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7)
         ON CONFLICT (agent, instance_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
        (
            id,
            &key.instance.agent,
            &key.instance.id,
            &key.session,
            &event.input,
            &event.idempotency_key,
            at,
        ),
    )?;
    if inserted == 1 {
        return Ok(Receipt {
            id: id.to_string(),
            accepted_at_ms: at,
            same_request: true,
        });
    }
    conn.query_row(
        "SELECT id, accepted_at, session = ?4 AND input = ?5 FROM dispatches
         WHERE agent = ?1 AND instance_id = ?2 AND idempotency_key = ?3",
        (
            &key.instance.agent,
            &key.instance.id,
            &event.idempotency_key,
            &key.session,
            &event.input,
        ),
        |row| {
            Ok(Receipt {
                id: row.get(0)?,
                accepted_at_ms: row.get(1)?,
                same_request: row.get(2)?,
            })
        },
    )
    .map_err(StoreError::from_display)
}

/// Claims the events whose turn it is: each the oldest unfinished event of its session,
/// and either queued and due or running on an expired lease.
pub(super) fn claim(
    conn: &Connection,
    limit: usize,
    now: i64,
    lease_until: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let due: Vec<Claimed> = conn
        .prepare_cached(
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
        .and_then(|mut select| {
            select
                .query_map((now, limit as i64), |row| {
                    Ok(Claimed {
                        id: row.get(0)?,
                        session: session_of(row)?,
                        input: row.get(4)?,
                        attempt: row.get::<_, u32>(5)? + 1,
                    })
                })?
                .collect()
        })
        .map_err(StoreError::from_display)?;
    for event in &due {
        execute(
            conn,
            "UPDATE dispatches SET status = 'running', attempts = attempts + 1, lease_until = ?1 WHERE id = ?2",
            (lease_until, &event.id),
        )?;
    }
    Ok(due)
}

/// Extends the leases of events still running.
pub(super) fn renew(conn: &Connection, ids: &[String], until: i64) -> Result<(), StoreError> {
    for id in ids {
        execute(
            conn,
            "UPDATE dispatches SET lease_until = ?1 WHERE id = ?2 AND status = 'running'",
            (until, id),
        )?;
    }
    Ok(())
}

/// Records how an attempt ended, unless the event was claimed again since.
pub(super) fn settle(
    conn: &Connection,
    id: &str,
    attempt: u32,
    outcome: &Settle,
    now: i64,
) -> Result<(), StoreError> {
    match outcome {
        Settle::Done { answer } => execute(
            conn,
            "UPDATE dispatches SET status = 'done', lease_until = NULL, last_error = NULL, finished_at = ?1, answer = ?4
             WHERE id = ?2 AND attempts = ?3 AND status = 'running'",
            (now, id, attempt, answer),
        ),
        Settle::Retry { error, after } => execute(
            conn,
            "UPDATE dispatches SET status = 'queued', lease_until = NULL, last_error = ?1, due_at = ?2
             WHERE id = ?3 AND attempts = ?4 AND status = 'running'",
            (error, now + after.as_millis() as i64, id, attempt),
        ),
        Settle::Dead { error } => execute(
            conn,
            "UPDATE dispatches SET status = 'dead', lease_until = NULL, last_error = ?1, finished_at = ?2
             WHERE id = ?3 AND attempts = ?4 AND status = 'running'",
            (error, now, id, attempt),
        ),
    }
    .map(drop)
}

fn session_of(row: &Row) -> rusqlite::Result<SessionKey> {
    Ok(SessionKey {
        instance: InstanceKey {
            agent: row.get(1)?,
            id: row.get(2)?,
        },
        session: row.get(3)?,
    })
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
        self.read_row(
            "SELECT id, agent, instance_id, session, input, status, attempts, last_error,
                    accepted_at, finished_at, answer
             FROM dispatches WHERE id = ?1",
            [id.to_string()],
            record,
        )
        .await
    }

    async fn list_dispatches(
        &self,
        filter: &DispatchFilter,
    ) -> Result<Vec<DispatchRecord>, StoreError> {
        let params = (
            filter.status.map(DispatchStatus::as_str),
            filter.agent.clone(),
            filter.limit.min(i64::MAX as u64) as i64,
            filter.offset.min(i64::MAX as u64) as i64,
        );
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, agent, instance_id, session, input, status, attempts, last_error,
                        accepted_at, finished_at, answer
                 FROM dispatches WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR agent = ?2)
                 ORDER BY seq LIMIT ?3 OFFSET ?4",
            )?
            .query_map(params, record)?
            .collect()
        })
        .await
    }

    async fn retry(&self, id: &str) -> Result<bool, StoreError> {
        let write = Write::Retry {
            id: id.to_string(),
            now: now_millis(),
        };
        match self.write(write).await? {
            Done::Changed(changed) => Ok(changed),
            _ => Err(StoreError(
                "the writer answered a retry with nothing".into(),
            )),
        }
    }
}

/// Queues a dead event again; whether there was one.
pub(super) fn retry(conn: &Connection, id: &str, now: i64) -> Result<bool, StoreError> {
    execute(
        conn,
        "UPDATE dispatches SET status = 'queued', due_at = ?1, finished_at = NULL
         WHERE id = ?2 AND status = 'dead'",
        (now, id),
    )
    .map(|changed| changed == 1)
}

/// A dispatch record from a row of `id, agent, instance_id, session, input, status,
/// attempts, last_error, accepted_at, finished_at, answer`.
fn record(row: &Row) -> rusqlite::Result<DispatchRecord> {
    Ok(DispatchRecord {
        id: row.get(0)?,
        session: session_of(row)?,
        input: row.get(4)?,
        status: parsed(row, 5, DispatchStatus::parse)?,
        attempts: row.get(6)?,
        last_error: row.get(7)?,
        accepted_at_ms: row.get(8)?,
        finished_at_ms: row.get(9)?,
        answer: row.get(10)?,
    })
}
