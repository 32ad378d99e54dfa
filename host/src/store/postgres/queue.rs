//! The dispatch queue in PostgreSQL. Hosts claim with `FOR UPDATE SKIP LOCKED`, so two
//! never take the same event, and with a lease, so the events of a host that dies are
//! claimed again once their leases run out.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use crate::store::queue::{
    Claimed, DispatchFilter, DispatchRecord, DispatchStatus, NewDispatch, Queue, Receipt, Settle,
    lease_end, new_dispatch_id,
};
use crate::store::{InstanceKey, SessionKey, StoreError, now_millis};

fn session_of(row: &PgRow) -> SessionKey {
    SessionKey {
        instance: InstanceKey {
            agent: row.get("agent"),
            id: row.get("instance_id"),
        },
        session: row.get("session"),
    }
}

#[async_trait]
impl Queue for PostgresStore {
    async fn enqueue(&self, event: NewDispatch) -> Result<Receipt, StoreError> {
        let at = now_millis();
        let key = &event.session;
        let inserted: Option<(String, i64, bool)> = sqlx::query_as(
            "INSERT INTO dispatches
                (id, agent, instance_id, session, input, idempotency_key, status, accepted_at, due_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7)
             ON CONFLICT (agent, instance_id, idempotency_key) WHERE idempotency_key IS NOT NULL
             DO NOTHING
             RETURNING id, accepted_at, true",
        )
        .bind(new_dispatch_id(at))
        .bind(&key.instance.agent)
        .bind(&key.instance.id)
        .bind(&key.session)
        .bind(&event.input)
        .bind(&event.idempotency_key)
        .bind(at)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        let (id, accepted_at_ms, same_request) = match inserted {
            Some(first) => first,
            None => sqlx::query_as(
                "SELECT id, accepted_at, session = $4 AND input = $5 FROM dispatches
                 WHERE agent = $1 AND instance_id = $2 AND idempotency_key = $3",
            )
            .bind(&key.instance.agent)
            .bind(&key.instance.id)
            .bind(&event.idempotency_key)
            .bind(&key.session)
            .bind(&event.input)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_display)?,
        };
        Ok(Receipt {
            id,
            accepted_at_ms,
            same_request,
        })
    }

    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        let rows = sqlx::query(
            "UPDATE dispatches SET status = 'running', attempts = attempts + 1, lease_until = $3
             WHERE seq IN (
               SELECT d.seq FROM dispatches d
               WHERE d.status IN ('queued', 'running')
                 AND ((d.status = 'queued' AND d.due_at <= $1)
                   OR (d.status = 'running' AND d.lease_until <= $1))
                 AND NOT EXISTS (
                   SELECT 1 FROM dispatches e
                   WHERE e.agent = d.agent AND e.instance_id = d.instance_id
                     AND e.session = d.session AND e.status IN ('queued', 'running')
                     AND e.seq < d.seq)
               ORDER BY d.seq LIMIT $2
               FOR UPDATE SKIP LOCKED)
             RETURNING seq, id, agent, instance_id, session, input, attempts",
        )
        .bind(now_millis())
        .bind(limit.min(i64::MAX as usize) as i64)
        .bind(lease_end(lease))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        let mut claimed: Vec<(i64, Claimed)> = rows
            .iter()
            .map(|row| {
                let claim = Claimed {
                    id: row.get("id"),
                    session: session_of(row),
                    input: row.get("input"),
                    attempt: row.get::<i32, _>("attempts") as u32,
                };
                (row.get("seq"), claim)
            })
            .collect();
        claimed.sort_by_key(|(seq, _)| *seq);
        Ok(claimed.into_iter().map(|(_, claim)| claim).collect())
    }

    async fn renew(&self, ids: &[String], lease: Duration) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE dispatches SET lease_until = $1 WHERE id = ANY($2) AND status = 'running'",
        )
        .bind(lease_end(lease))
        .bind(ids)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
    }

    async fn settle(&self, id: &str, attempt: u32, outcome: Settle) -> Result<(), StoreError> {
        let now = now_millis();
        let query = match &outcome {
            Settle::Done { answer } => sqlx::query(
                "UPDATE dispatches SET status = 'done', lease_until = NULL, last_error = NULL, finished_at = $1,
                 answer = $2 WHERE id = $3 AND attempts = $4 AND status = 'running'",
            )
            .bind(now)
            .bind(answer),
            Settle::Retry { error, after } => sqlx::query(
                "UPDATE dispatches SET status = 'queued', lease_until = NULL, last_error = $1,
                 due_at = $2 WHERE id = $3 AND attempts = $4 AND status = 'running'",
            )
            .bind(error)
            .bind(now + after.as_millis() as i64),
            Settle::Dead { error } => sqlx::query(
                "UPDATE dispatches SET status = 'dead', lease_until = NULL, last_error = $1,
                 finished_at = $2 WHERE id = $3 AND attempts = $4 AND status = 'running'",
            )
            .bind(error)
            .bind(now),
        };
        query
            .bind(id)
            .bind(attempt as i32)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::from_display)
    }

    async fn dispatch(&self, id: &str) -> Result<Option<DispatchRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, agent, instance_id, session, input, status, attempts, last_error,
                    accepted_at, finished_at, answer
             FROM dispatches WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        row.as_ref().map(record).transpose()
    }

    async fn list_dispatches(
        &self,
        filter: &DispatchFilter,
    ) -> Result<Vec<DispatchRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, agent, instance_id, session, input, status, attempts, last_error,
                    accepted_at, finished_at, answer
             FROM dispatches
             WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR agent = $2)
             ORDER BY seq LIMIT $3 OFFSET $4",
        )
        .bind(filter.status.map(DispatchStatus::as_str))
        .bind(filter.agent.as_deref())
        .bind(filter.limit.min(i64::MAX as u64) as i64)
        .bind(filter.offset.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        rows.iter().map(record).collect()
    }

    async fn retry(&self, id: &str) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE dispatches SET status = 'queued', due_at = $1, finished_at = NULL
             WHERE id = $2 AND status = 'dead'",
        )
        .bind(now_millis())
        .bind(id)
        .execute(&self.pool)
        .await
        .map(|done| done.rows_affected() == 1)
        .map_err(StoreError::from_display)
    }
}

/// A dispatch record from a row of `id, agent, instance_id, session, input, status,
/// attempts, last_error, accepted_at, finished_at, answer`.
fn record(row: &PgRow) -> Result<DispatchRecord, StoreError> {
    let status: String = row.get("status");
    Ok(DispatchRecord {
        id: row.get("id"),
        session: session_of(row),
        input: row.get("input"),
        status: DispatchStatus::parse(&status)?,
        attempts: row.get::<i32, _>("attempts") as u32,
        last_error: row.get("last_error"),
        accepted_at_ms: row.get("accepted_at"),
        finished_at_ms: row.get("finished_at"),
        answer: row.get("answer"),
    })
}
