//! The writer task: the only connection that writes. It takes every write queued
//! since its last commit and applies them in one transaction (group commit), so
//! concurrent callers share a commit instead of queueing for SQLite's write lock.
//! A batch that enqueues dispatched events commits with full synchronous durability.
//! After each commit it brings the history cache up to date, so the cache follows the
//! commit order exactly.

use std::sync::Arc;

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use tokio::sync::{mpsc, oneshot};

use super::cache::HistoryCache;
use super::{queue, runs};
use crate::models::Message;
use crate::store::queue::{Claimed, NewDispatch, Receipt, Settle};
use crate::store::runs::{RunEnd, RunEvent};
use crate::store::{InstanceKey, SessionKey, StoreError};

/// The most writes one group commit takes.
const MAX_BATCH: usize = 512;
/// Rows per `INSERT` statement, well under SQLite's bound on bound parameters.
const ROWS_PER_INSERT: usize = 1000;
/// Commits between two nudges to the checkpointer.
const COMMITS_PER_CHECKPOINT: u32 = 100;

/// One write the writer task has not committed yet.
pub enum Write {
    Append {
        key: SessionKey,
        messages: Vec<Message>,
        bodies: Vec<String>,
        at: i64,
    },
    /// Reads a session's history (and caches it), in order with the writes around it.
    Load {
        key: SessionKey,
    },
    State {
        instance: InstanceKey,
        key: String,
        value: String,
    },
    Enqueue {
        event: NewDispatch,
        id: String,
        at: i64,
    },
    Claim {
        limit: usize,
        now: i64,
        lease_until: i64,
    },
    Renew {
        ids: Vec<String>,
        until: i64,
    },
    Settle {
        id: String,
        attempt: u32,
        outcome: Settle,
        now: i64,
    },
    RunStarted {
        id: String,
        workflow: String,
        at: i64,
    },
    RunEvent {
        id: String,
        event: RunEvent,
    },
    RunEnded {
        id: String,
        end: RunEnd,
        at: i64,
    },
}

/// What a committed write gives back.
pub enum Done {
    Nothing,
    Receipt(Receipt),
    Claimed(Vec<Claimed>),
    /// A history and its stored size in bytes.
    History(Vec<Message>, usize),
}

/// A queued write and where to report its outcome.
pub struct Pending {
    pub write: Write,
    pub done: oneshot::Sender<Result<Done, StoreError>>,
}

/// Commits queued writes in batches until every sender is gone. If a batch fails, its
/// writes are retried one by one so each gets its own outcome.
/// Every [`COMMITS_PER_CHECKPOINT`] commits it nudges `checkpoints`, so that the write-
/// ahead log is copied back into the database off this task.
pub async fn run(
    mut conn: SqliteConnection,
    mut queue: mpsc::UnboundedReceiver<Pending>,
    cache: Arc<HistoryCache>,
    checkpoints: mpsc::Sender<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut commits = 0;
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commits += 1;
        if commits % COMMITS_PER_CHECKPOINT == 0 {
            let _ = checkpoints.try_send(());
        }
        let writes: Vec<&Write> = batch.iter().map(|p| &p.write).collect();
        if let Ok(outcomes) = commit(&mut conn, &writes).await {
            update_cache(&cache, &writes, &outcomes);
            for (pending, outcome) in batch.drain(..).zip(outcomes) {
                let _ = pending.done.send(Ok(outcome));
            }
            continue;
        }
        for pending in batch.drain(..) {
            let outcome = commit(&mut conn, &[&pending.write]).await;
            if let Ok(done) = &outcome {
                update_cache(&cache, &[&pending.write], done);
            }
            let _ = pending
                .done
                .send(outcome.map(|mut done| done.pop().unwrap_or(Done::Nothing)));
        }
    }
}

/// Brings the cache up to a committed batch: appended messages extend cached histories,
/// then histories loaded in the batch (which already hold its appends) replace theirs.
fn update_cache(cache: &HistoryCache, writes: &[&Write], outcomes: &[Done]) {
    for write in writes {
        if let Write::Append {
            key,
            messages,
            bodies,
            ..
        } = write
        {
            cache.extend(key, messages, bodies.iter().map(String::len).sum());
        }
    }
    for (write, outcome) in writes.iter().zip(outcomes) {
        if let (Write::Load { key }, Done::History(messages, bytes)) = (write, outcome) {
            cache.insert(key, messages.clone(), *bytes);
        }
    }
}

/// Applies writes in one transaction, all or none; fsyncs the commit when it stores
/// accepted events.
async fn commit(conn: &mut SqliteConnection, writes: &[&Write]) -> Result<Vec<Done>, StoreError> {
    let durable = writes.iter().any(|w| matches!(w, Write::Enqueue { .. }));
    if durable {
        pragma(conn, "PRAGMA synchronous = FULL").await?;
    }
    let outcome = apply(conn, writes).await;
    if durable {
        pragma(conn, "PRAGMA synchronous = NORMAL").await?;
    }
    outcome
}

/// Copies the write-ahead log back into the database each time the writer asks, on a
/// connection of its own, without blocking writers (a passive checkpoint). The writer
/// itself never checkpoints, so no commit waits for one. Ends with the writer.
pub async fn checkpoint(mut conn: SqliteConnection, mut asks: mpsc::Receiver<()>) {
    while asks.recv().await.is_some() {
        if let Err(e) = pragma(&mut conn, "PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::warn!("checkpoint failed: {e}");
        }
    }
}

pub async fn pragma(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::raw_sql(sql)
        .execute(conn)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
}

async fn apply(conn: &mut SqliteConnection, writes: &[&Write]) -> Result<Vec<Done>, StoreError> {
    let mut tx = conn.begin().await.map_err(StoreError::from_display)?;
    insert_messages(&mut tx, writes).await?;
    let mut done = Vec::with_capacity(writes.len());
    for write in writes {
        done.push(match write {
            Write::Append { .. } => Done::Nothing,
            Write::Load { key } => {
                let (messages, bytes) = load_history(&mut tx, key).await?;
                Done::History(messages, bytes)
            }
            Write::State {
                instance,
                key,
                value,
            } => {
                set_state(&mut tx, instance, key, value).await?;
                Done::Nothing
            }
            Write::Enqueue { event, id, at } => {
                Done::Receipt(queue::enqueue(&mut tx, event, id, *at).await?)
            }
            Write::Claim {
                limit,
                now,
                lease_until,
            } => Done::Claimed(queue::claim(&mut tx, *limit, *now, *lease_until).await?),
            Write::Renew { ids, until } => {
                queue::renew(&mut tx, ids, *until).await?;
                Done::Nothing
            }
            Write::Settle {
                id,
                attempt,
                outcome,
                now,
            } => {
                queue::settle(&mut tx, id, *attempt, outcome, *now).await?;
                Done::Nothing
            }
            Write::RunStarted { id, workflow, at } => {
                runs::started(&mut tx, id, workflow, *at).await?;
                Done::Nothing
            }
            Write::RunEvent { id, event } => {
                runs::event(&mut tx, id, event).await?;
                Done::Nothing
            }
            Write::RunEnded { id, end, at } => {
                runs::ended(&mut tx, id, end, *at).await?;
                Done::Nothing
            }
        });
    }
    tx.commit().await.map_err(StoreError::from_display)?;
    Ok(done)
}

/// Every appended message of the batch, in a few multi-row inserts.
async fn insert_messages(conn: &mut SqliteConnection, writes: &[&Write]) -> Result<(), StoreError> {
    let messages: Vec<(&SessionKey, &String, i64)> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Append {
                key, bodies, at, ..
            } => Some(bodies.iter().map(move |b| (key, b, *at))),
            _ => None,
        })
        .flatten()
        .collect();
    for rows in messages.chunks(ROWS_PER_INSERT) {
        QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (agent, instance_id, session, body, created_at) ",
        )
        .push_values(rows, |mut row, (key, body, at)| {
            row.push_bind(&key.instance.agent)
                .push_bind(&key.instance.id)
                .push_bind(&key.session)
                .push_bind(*body)
                .push_bind(*at);
        })
        .build()
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from_display)?;
    }
    Ok(())
}

/// A session's messages, oldest first, and their stored size in bytes.
async fn load_history(
    conn: &mut SqliteConnection,
    key: &SessionKey,
) -> Result<(Vec<Message>, usize), StoreError> {
    let rows = sqlx::query(
        "SELECT body FROM messages WHERE agent = ? AND instance_id = ? AND session = ? ORDER BY id",
    )
    .bind(&key.instance.agent)
    .bind(&key.instance.id)
    .bind(&key.session)
    .fetch_all(conn)
    .await
    .map_err(StoreError::from_display)?;
    let mut bytes = 0;
    let messages = rows
        .iter()
        .map(|row| {
            let body: &str = row.get(0);
            bytes += body.len();
            serde_json::from_str(body)
                .map_err(|e| StoreError(format!("a stored message is unreadable: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok((messages, bytes))
}

async fn set_state(
    conn: &mut SqliteConnection,
    instance: &InstanceKey,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO instance_state (agent, instance_id, key, value) VALUES (?, ?, ?, ?)
         ON CONFLICT (agent, instance_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(&instance.agent)
    .bind(&instance.id)
    .bind(key)
    .bind(value)
    .execute(conn)
    .await
    .map(drop)
    .map_err(StoreError::from_display)
}
