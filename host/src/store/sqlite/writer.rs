//! The writer: a task that owns the only connection that writes. It takes every write
//! queued since its last commit and applies them in one transaction (group commit), so
//! concurrent callers share a commit instead of queueing for SQLite's write lock. It
//! runs on the runtime like the prompts it serves and talks to SQLite directly: a
//! commit (tens of microseconds) wakes its callers on the same worker, with no thread
//! to hand over to and back. (A thread of its own measured worse: each hop cost a
//! cross-thread wake-up both ways, and the workers sat idle ~15% of the time while
//! prompts waited on it.)
//! A batch that enqueues dispatched events commits with full synchronous durability;
//! its fsync runs with the worker handed over (`block_in_place`).
//! After each commit it brings the history cache up to date, so the cache follows the
//! commit order exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use rusqlite::Connection;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;

use super::cache::HistoryCache;
use super::write::{Done, Pending, Write};
use super::{execute, queue, runs};
use crate::models::Message;
use crate::store::{InstanceKey, SessionKey, StoreError};

/// The most writes one group commit takes.
const MAX_BATCH: usize = 512;
/// Commits between two checkpoints beside the writer (on the checkpointer's thread).
const COMMITS_PER_CHECKPOINT: u32 = 100;
/// How long the writer must have nothing to do before it finishes a checkpoint.
pub(super) const IDLE: Duration = Duration::from_millis(100);
/// Frames in the write-ahead log (64 MiB of 4 KiB pages) past which the writer
/// finishes a checkpoint even when it is busy.
const MOST_FRAMES: u64 = 16_384;

/// Commits queued writes in batches until every sender is gone. If a batch fails, its
/// writes are retried one by one so each gets its own outcome.
/// Every [`COMMITS_PER_CHECKPOINT`] commits it has `checkpoints` copy the write-ahead
/// log back into the database off the runtime; when it has been idle for [`IDLE`], or
/// the log has grown past [`MOST_FRAMES`], it finishes the copy itself (see
/// [`Checkpoints::finish`]).
pub(super) async fn run(
    mut conn: Connection,
    mut queue: mpsc::UnboundedReceiver<Pending>,
    cache: Arc<HistoryCache>,
    checkpoints: Checkpoints,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut commits = 0;
    loop {
        let received = if checkpoints.log_frames() == 0 {
            queue.recv_many(&mut batch, MAX_BATCH).await
        } else {
            match tokio::time::timeout(IDLE, queue.recv_many(&mut batch, MAX_BATCH)).await {
                Ok(received) => received,
                Err(_idle) => {
                    checkpoints.finish(&conn);
                    continue;
                }
            }
        };
        if received == 0 {
            break;
        }
        let writes: Vec<&Write> = batch.iter().map(|p| &p.write).collect();
        if let Ok(outcomes) = commit(&mut conn, &writes) {
            update_cache(&cache, &writes, &outcomes);
            for (pending, outcome) in batch.drain(..).zip(outcomes) {
                let _ = pending.done.send(Ok(outcome));
            }
        } else {
            for pending in batch.drain(..) {
                let outcome = commit(&mut conn, &[&pending.write]);
                if let Ok(done) = &outcome {
                    update_cache(&cache, &[&pending.write], done);
                }
                let _ = pending
                    .done
                    .send(outcome.map(|mut done| done.pop().unwrap_or(Done::Nothing)));
            }
        }
        commits += 1;
        if checkpoints.log_frames() > MOST_FRAMES {
            checkpoints.finish(&conn);
        } else if commits % COMMITS_PER_CHECKPOINT == 0 {
            checkpoints.ask();
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
        match (write, outcome) {
            (Write::Load { key }, Done::History(messages, bytes)) => {
                cache.insert(key, messages.clone(), *bytes);
            }
            (Write::Clear { key }, _) => cache.insert(key, Vec::new(), 0),
            _ => {}
        }
    }
}

/// Applies writes in one transaction, all or none; fsyncs the commit when it stores
/// accepted events.
fn commit(conn: &mut Connection, writes: &[&Write]) -> Result<Vec<Done>, StoreError> {
    if !writes.iter().any(|w| matches!(w, Write::Enqueue { .. })) {
        return apply(conn, writes);
    }
    off_the_runtime(|| {
        pragma(conn, "synchronous", "FULL")?;
        let outcome = apply(conn, writes);
        pragma(conn, "synchronous", "NORMAL")?;
        outcome
    })
}

/// Runs `work`, which waits on the disk, with this worker's other tasks handed to
/// another worker meanwhile (on a runtime of one thread there is no other).
fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// The writer's side of the checkpointer: asks it to run, and the length of the
/// write-ahead log it last saw.
pub(super) struct Checkpoints {
    asks: SyncSender<()>,
    log: Arc<AtomicU64>,
}

impl Checkpoints {
    /// Starts the checkpointer on a thread of its own, with its own connection; it ends
    /// with the writer.
    pub(super) fn start(conn: Connection) -> Result<Checkpoints, StoreError> {
        let (asks, asked) = std::sync::mpsc::sync_channel(1);
        let log = Arc::new(AtomicU64::new(0));
        let seen = log.clone();
        std::thread::Builder::new()
            .name("flue-checkpoint".into())
            .spawn(move || {
                for () in asked {
                    match checkpoint(&conn) {
                        Ok(frames) => seen.store(frames, Ordering::Relaxed),
                        Err(e) => tracing::warn!("checkpoint failed: {e}"),
                    }
                }
            })
            .map_err(|e| StoreError(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpoints { asks, log })
    }

    /// Asks for a checkpoint beside the writer, unless one is already waiting.
    fn ask(&self) {
        let _ = self.asks.try_send(());
    }

    /// Frames in the write-ahead log at the last checkpoint (0 once it started over).
    fn log_frames(&self) -> u64 {
        self.log.load(Ordering::Relaxed)
    }

    /// Copies what the checkpointer left of the write-ahead log, on the writer's
    /// connection between two batches, after the last one's callers have their
    /// answers. A checkpoint beside a busy writer never catches up with it, so the log
    /// would grow without end; with no commit beside this one, every frame is copied
    /// and the next transaction starts the log over from its beginning. It copies
    /// little (the checkpointer did the rest) but syncs twice, so it runs with the
    /// worker handed over, and only when the writer is idle or the log has grown long:
    /// a pause of a few milliseconds for every write waiting behind it.
    fn finish(&self, writer: &Connection) {
        match off_the_runtime(|| checkpoint(writer)) {
            Ok(_) => self.log.store(0, Ordering::Relaxed),
            Err(e) => tracing::warn!("checkpoint failed: {e}"),
        }
    }
}

/// Copies what it can of the write-ahead log back into the database, waiting for no
/// reader or writer, and returns how many frames the log holds.
fn checkpoint(conn: &Connection) -> rusqlite::Result<u64> {
    let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
    Ok(u64::try_from(frames).unwrap_or(0))
}

/// Sets a pragma on one connection.
pub(super) fn pragma(conn: &Connection, name: &str, value: &str) -> Result<(), StoreError> {
    conn.pragma_update(None, name, value)
        .map_err(StoreError::from_display)
}

fn apply(conn: &mut Connection, writes: &[&Write]) -> Result<Vec<Done>, StoreError> {
    let tx = conn.transaction().map_err(StoreError::from_display)?;
    insert_messages(&tx, writes)?;
    let mut done = Vec::with_capacity(writes.len());
    for write in writes {
        done.push(match write {
            Write::Append { .. } => Done::Nothing,
            Write::Load { key } => {
                let (messages, bytes) = load_history(&tx, key)?;
                Done::History(messages, bytes)
            }
            Write::Clear { key } => {
                tx.prepare_cached(
                    "DELETE FROM messages WHERE agent = ?1 AND instance_id = ?2 AND session = ?3",
                )
                .and_then(|mut delete| {
                    delete.execute((&key.instance.agent, &key.instance.id, &key.session))
                })
                .map_err(StoreError::from_display)?;
                Done::Nothing
            }
            Write::State {
                instance,
                key,
                value,
            } => {
                set_state(&tx, instance, key, value)?;
                Done::Nothing
            }
            Write::Enqueue { event, id, at } => Done::Receipt(queue::enqueue(&tx, event, id, *at)?),
            Write::Claim {
                limit,
                now,
                lease_until,
            } => Done::Claimed(queue::claim(&tx, *limit, *now, *lease_until)?),
            Write::Renew { ids, until } => {
                queue::renew(&tx, ids, *until)?;
                Done::Nothing
            }
            Write::Settle {
                id,
                attempt,
                outcome,
                now,
            } => {
                queue::settle(&tx, id, *attempt, outcome, *now)?;
                Done::Nothing
            }
            Write::Retry { id, now } => Done::Changed(queue::retry(&tx, id, *now)?),
            Write::RunStarted {
                id,
                workflow,
                started_by,
                at,
            } => {
                runs::started(&tx, id, workflow, started_by.as_deref(), *at)?;
                Done::Nothing
            }
            Write::RunEvent { id, event } => {
                runs::event(&tx, id, event)?;
                Done::Nothing
            }
            Write::RunEnded { id, end, at } => {
                runs::ended(&tx, id, end, *at)?;
                Done::Nothing
            }
        });
    }
    tx.commit().map_err(StoreError::from_display)?;
    Ok(done)
}

/// Every appended message of the batch, in order.
fn insert_messages(conn: &Connection, writes: &[&Write]) -> Result<(), StoreError> {
    let mut next = conn
        .prepare_cached(
            "SELECT coalesce(max(seq) + 1, 0) FROM messages
             WHERE agent = ?1 AND instance_id = ?2 AND session = ?3",
        )
        .map_err(StoreError::from_display)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO messages (agent, instance_id, session, seq, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(StoreError::from_display)?;
    for write in writes {
        if let Write::Append {
            key, bodies, at, ..
        } = write
        {
            let session = (&key.instance.agent, &key.instance.id, &key.session);
            let first: i64 = next
                .query_row(session, |row| row.get(0))
                .map_err(StoreError::from_display)?;
            for (seq, body) in (first..).zip(bodies) {
                insert
                    .execute((session.0, session.1, session.2, seq, body, at))
                    .map_err(StoreError::from_display)?;
            }
        }
    }
    Ok(())
}

/// A session's messages, oldest first, and their stored size in bytes.
fn load_history(conn: &Connection, key: &SessionKey) -> Result<(Vec<Message>, usize), StoreError> {
    let mut select = conn
        .prepare_cached(
            "SELECT body FROM messages WHERE agent = ?1 AND instance_id = ?2 AND session = ?3
             ORDER BY seq",
        )
        .map_err(StoreError::from_display)?;
    let mut rows = select
        .query((&key.instance.agent, &key.instance.id, &key.session))
        .map_err(StoreError::from_display)?;
    let (mut messages, mut bytes) = (Vec::new(), 0);
    while let Some(row) = rows.next().map_err(StoreError::from_display)? {
        let body = row
            .get_ref(0)
            .map_err(StoreError::from_display)?
            .as_str()
            .map_err(StoreError::from_display)?;
        bytes += body.len();
        messages.push(
            serde_json::from_str(body)
                .map_err(|e| StoreError(format!("a stored message is unreadable: {e}")))?,
        );
    }
    Ok((messages, bytes))
}

fn set_state(
    conn: &Connection,
    instance: &InstanceKey,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    execute(
        conn,
        "INSERT INTO instance_state (agent, instance_id, key, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (agent, instance_id, key) DO UPDATE SET value = excluded.value",
        (&instance.agent, &instance.id, key, value),
    )
    .map(drop)
}
