//! The embedded store: one SQLite file in WAL mode, owned by one process at a time (a
//! lock file beside it). Reads run on read-only connections (`reads.rs`); every write
//! goes through one writer task (`writer.rs`) that commits whatever is queued in one
//! transaction (group commit). Session histories are served from a cache (`cache.rs`)
//! the writer keeps. The dispatch queue is in `queue.rs`, workflow runs in `runs.rs`.

mod cache;
mod queue;
mod reads;
mod runs;
mod write;
mod writer;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, Row};
use tokio::sync::oneshot;

use super::schema::{self, ANSWERS_AND_STARTERS, DISPATCHES, INSTANCE_STATE, RUNS, SQLITE};
use super::{InstanceKey, SessionKey, Store, StoreError, now_millis};
use crate::models::Message;
pub use cache::DEFAULT_BUDGET_BYTES as DEFAULT_HISTORY_CACHE_BYTES;
use cache::HistoryCache;
use reads::Readers;
use write::{Done, Pending, Write};

/// Messages, first keyed by session and position.
const MESSAGES_V1: &str = "CREATE TABLE messages (
        agent TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        session TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (agent, instance_id, session, seq)
    ) WITHOUT ROWID;";
/// Messages ordered by an increasing row id, so an append is a plain insert.
const MESSAGES_V2: &str = "CREATE TABLE messages_v2 (
        id INTEGER PRIMARY KEY,
        agent TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        session TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    INSERT INTO messages_v2 (agent, instance_id, session, body, created_at)
        SELECT agent, instance_id, session, body, created_at FROM messages
        ORDER BY agent, instance_id, session, seq;
    DROP TABLE messages;
    ALTER TABLE messages_v2 RENAME TO messages;
    CREATE INDEX messages_by_session ON messages (agent, instance_id, session, id);";
/// Messages keyed by session and position again: an append then writes only its
/// session's page, where a row id and an index wrote two.
const MESSAGES_V3: &str = "CREATE TABLE messages_v3 (
        agent TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        session TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (agent, instance_id, session, seq)
    ) WITHOUT ROWID;
    INSERT INTO messages_v3
        SELECT agent, instance_id, session,
            row_number() OVER (PARTITION BY agent, instance_id, session ORDER BY id) - 1,
            body, created_at
        FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v3 RENAME TO messages;";

/// Schema steps, applied in order; `PRAGMA user_version` records how many ran.
fn migrations() -> Vec<String> {
    let sql = |table| SQLITE.render(table);
    vec![
        format!("{MESSAGES_V1}\n    {}", sql(INSTANCE_STATE)),
        MESSAGES_V2.into(),
        sql(DISPATCHES),
        sql(RUNS),
        MESSAGES_V3.into(),
        sql(ANSWERS_AND_STARTERS),
    ]
}

/// Sessions, state and the dispatch queue in a SQLite database file.
pub struct SqliteStore {
    reads: Arc<Readers>,
    writes: tokio::sync::mpsc::UnboundedSender<Pending>,
    histories: Arc<HistoryCache>,
    /// Held open while the store is: the lock that keeps other processes out.
    _owner: File,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, takes it for this process and
    /// brings its schema up to date. Up to `cache_bytes` of session histories are kept
    /// in memory.
    pub async fn open(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let owner = take_ownership(path)?;
        let opened = path.to_path_buf();
        let (writer, checkpointer) = tokio::task::spawn_blocking(move || {
            let create = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
            let mut writer = connect(&opened, create)?;
            writer::pragma(&writer, "journal_mode", "WAL")?;
            migrate(&mut writer)?;
            writer::pragma(&writer, "wal_autocheckpoint", "0")?;
            Ok::<_, StoreError>((writer, connect(&opened, create)?))
        })
        .await
        .map_err(|e| StoreError(format!("opening {} stopped: {e}", path.display())))?
        .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        let (writes, queue) = tokio::sync::mpsc::unbounded_channel();
        let histories = Arc::new(HistoryCache::new(cache_bytes));
        let checkpoints = writer::Checkpoints::start(checkpointer)?;
        tokio::spawn(writer::run(writer, queue, histories.clone(), checkpoints));
        Ok(Self {
            reads: Readers::new(path),
            writes,
            histories,
            _owner: owner,
        })
    }

    /// Queues a write for the next group commit and waits until it is committed.
    async fn write(&self, write: Write) -> Result<Done, StoreError> {
        let (done, committed) = oneshot::channel();
        let stopped = || StoreError("the database writer has stopped".into());
        self.writes
            .send(Pending { write, done })
            .map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }

    /// Runs a read on a read-only connection, off the writer.
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.reads.run(read).await
    }

    /// The row a query finds, if any, made into a value by `row`, read off the writer.
    async fn read_row<T, P>(
        &self,
        sql: &'static str,
        params: P,
        row: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError>
    where
        T: Send + 'static,
        P: Params + Send + 'static,
    {
        self.read(move |conn| conn.prepare_cached(sql)?.query_row(params, row).optional())
            .await
    }
}

/// Opens a connection to the database at `path` with `flags`, waiting up to ten
/// seconds for a lock, with commits synced to disk at checkpoints (`synchronous =
/// NORMAL`) unless a batch asks for more.
fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(StoreError::from_display)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(StoreError::from_display)?;
    writer::pragma(&conn, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Runs one statement (prepared once per connection) and returns the rows it changed.
fn execute(conn: &Connection, sql: &str, params: impl Params) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(StoreError::from_display)
}

/// Column `index` of `row`, a text that `parse` turns into a value.
fn parsed<T>(
    row: &Row,
    index: usize,
    parse: fn(&str) -> Result<T, StoreError>,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Whether another process owns the SQLite database at `path` now (holds its lock).
pub fn in_use(path: &Path) -> bool {
    let Ok(file) = File::open(path.with_extension("db.lock")) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// Locks `<database>.lock` for as long as the returned file is open, so that no other
/// process writes the database behind this one's history cache.
fn take_ownership(path: &Path) -> Result<File, StoreError> {
    let lock_path = path.with_extension("db.lock");
    let file = File::create(&lock_path)
        .map_err(|e| StoreError(format!("cannot create {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError(format!(
            "{} is in use by another flue process; stop it first, or give this one its own \
             data directory (--data-dir or FLUE_DATA_DIR)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(StoreError::from_display)?;
    let done: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(StoreError::from_display)?;
    let done = usize::try_from(done).map_err(StoreError::from_display)?;
    let steps = migrations();
    for (i, step) in schema::pending(&steps, done)?.iter().enumerate() {
        tx.execute_batch(step).map_err(StoreError::from_display)?;
        writer::pragma(&tx, "user_version", &(done + i + 1).to_string())?;
    }
    tx.commit().map_err(StoreError::from_display)
}

#[async_trait]
impl Store for SqliteStore {
    async fn history(&self, key: &SessionKey) -> Result<Vec<Message>, StoreError> {
        if let Some(messages) = self.histories.get(key) {
            return Ok(messages);
        }
        match self.write(Write::Load { key: key.clone() }).await? {
            Done::History(messages, _) => Ok(messages),
            _ => Err(StoreError(
                "the writer answered a load with no history".into(),
            )),
        }
    }

    async fn append(&self, key: &SessionKey, messages: &[Message]) -> Result<(), StoreError> {
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from_display)?;
        self.write(Write::Append {
            key: key.clone(),
            messages: messages.to_vec(),
            bodies,
            at: now_millis(),
        })
        .await
        .map(drop)
    }

    async fn sessions(&self, instance: &InstanceKey) -> Result<Vec<String>, StoreError> {
        let (agent, id) = (instance.agent.clone(), instance.id.clone());
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT DISTINCT session FROM messages WHERE agent = ?1 AND instance_id = ?2
                 ORDER BY session",
            )?
            .query_map((agent, id), |row| row.get(0))?
            .collect()
        })
        .await
    }

    async fn clear_session(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.write(Write::Clear { key: key.clone() })
            .await
            .map(drop)
    }

    async fn state_get(
        &self,
        instance: &InstanceKey,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read_row(
            "SELECT value FROM instance_state WHERE agent = ?1 AND instance_id = ?2 AND key = ?3",
            (instance.agent.clone(), instance.id.clone(), key.to_string()),
            |row| row.get(0),
        )
        .await
    }

    async fn state_set(
        &self,
        instance: &InstanceKey,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.write(Write::State {
            instance: instance.clone(),
            key: key.to_string(),
            value: value.to_string(),
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session `session` of instance `i` of agent `a`.
    pub(super) fn key(session: &str) -> SessionKey {
        SessionKey {
            instance: InstanceKey {
                agent: "a".into(),
                id: "i".into(),
            },
            session: session.into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_write_ahead_log_starts_over_once_the_writer_is_idle() {
        let dir = std::env::temp_dir().join(format!("flue-wal-{}", std::process::id()));
        let path = dir.join("t.db");
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&path, DEFAULT_HISTORY_CACHE_BYTES)
            .await
            .unwrap();
        let message = [Message::User {
            content: "x".repeat(2000),
        }];
        let log_bytes = || std::fs::metadata(dir.join("t.db-wal")).unwrap().len();
        let mut sizes = Vec::new();
        for _ in 0..3 {
            // Not a multiple of the commits between checkpoints: the checkpointer
            // beside the writer never sees the last commits of a round.
            for i in 0..450 {
                let session = format!("s{}", i % 8);
                store.append(&key(&session), &message).await.unwrap();
            }
            tokio::time::sleep(writer::IDLE * 3).await;
            sizes.push(log_bytes());
        }
        // Started over, each round writes the log's first frames again (a few more
        // each time, as histories grow); never started over, it grows by a round.
        assert!(
            sizes[2] < sizes[0] * 3 / 2,
            "the log grew round after round ({sizes:?} bytes): it never started over"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn history_appends_in_order_and_reopens() {
        let dir = std::env::temp_dir().join(format!("flue-store-{}", std::process::id()));
        let path = dir.join("t.db");
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&path, DEFAULT_HISTORY_CACHE_BYTES)
            .await
            .unwrap();
        let first = Message::User {
            content: "one".into(),
        };
        let second = Message::User {
            content: "two".into(),
        };
        // Read once first, so the session is cached and the appends extend the cache.
        assert!(store.history(&key("s")).await.unwrap().is_empty());
        store
            .append(&key("s"), std::slice::from_ref(&first))
            .await
            .unwrap();
        store
            .append(&key("s"), std::slice::from_ref(&second))
            .await
            .unwrap();
        let cached = store.history(&key("s")).await.unwrap();
        assert_eq!(cached, vec![first.clone(), second.clone()]);
        store
            .state_set(&key("s").instance, "k", "v1")
            .await
            .unwrap();
        store
            .state_set(&key("s").instance, "k", "v2")
            .await
            .unwrap();
        drop(store);
        let store = SqliteStore::open(&path, DEFAULT_HISTORY_CACHE_BYTES)
            .await
            .unwrap();
        // Read back from the file: the same as the cache served.
        assert_eq!(store.history(&key("s")).await.unwrap(), cached);
        assert!(store.history(&key("other")).await.unwrap().is_empty());
        assert_eq!(
            store
                .state_get(&key("s").instance, "k")
                .await
                .unwrap()
                .as_deref(),
            Some("v2")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn one_process_at_a_time_owns_the_database() {
        let dir = std::env::temp_dir().join(format!("flue-store-o-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("t.db");
        let first = SqliteStore::open(&path, DEFAULT_HISTORY_CACHE_BYTES)
            .await
            .unwrap();
        // The lock is per open file description, so a second open in this process is
        // refused just as another process would be.
        let refused = SqliteStore::open(&path, DEFAULT_HISTORY_CACHE_BYTES)
            .await
            .err()
            .expect("a second owner is refused");
        assert!(
            refused
                .to_string()
                .contains("in use by another flue process"),
            "{refused}"
        );
        drop(first);
        SqliteStore::open(&path, DEFAULT_HISTORY_CACHE_BYTES)
            .await
            .expect("free again once the first is closed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_database_of_a_newer_flue_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let newer = migrations().len() as i64 + 1;
        let db = Connection::open(&path).unwrap();
        db.pragma_update(None, "user_version", newer).unwrap();
        drop(db);
        let refused = SqliteStore::open(&path, DEFAULT_HISTORY_CACHE_BYTES).await;
        let message = refused.err().expect("refused").to_string();
        assert!(message.contains("written by a newer flue"), "{message}");
        let db = Connection::open(&path).unwrap();
        let steps: i64 = db
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(steps, newer, "nothing was written");
    }

    #[tokio::test]
    async fn a_first_version_database_keeps_its_order() {
        let dir = std::env::temp_dir().join(format!("flue-store-m-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(&migrations()[0]).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        for (seq, text) in [(1, "second"), (0, "first")] {
            let body = serde_json::to_string(&Message::User {
                content: text.into(),
            })
            .unwrap();
            old.execute(
                "INSERT INTO messages VALUES ('a', 'i', 's', ?1, ?2, 0)",
                (seq, body),
            )
            .unwrap();
        }
        drop(old);
        let store = SqliteStore::open(&path, DEFAULT_HISTORY_CACHE_BYTES)
            .await
            .unwrap();
        let third = Message::User {
            content: "third".into(),
        };
        store
            .append(&key("s"), std::slice::from_ref(&third))
            .await
            .unwrap();
        let texts: Vec<_> = store
            .history(&key("s"))
            .await
            .unwrap()
            .into_iter()
            .map(|m| match m {
                Message::User { content } => content,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(texts, ["first", "second", "third"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
