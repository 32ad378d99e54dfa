//! The embedded store: one SQLite file in WAL mode.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row};

use super::{InstanceKey, SessionKey, Store, StoreError};
use crate::models::Message;

/// Schema steps, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &["CREATE TABLE messages (
        agent TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        session TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (agent, instance_id, session, seq)
    ) WITHOUT ROWID;
    CREATE TABLE instance_state (
        agent TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (agent, instance_id, key)
    ) WITHOUT ROWID;"];

/// Sessions and state in a SQLite database file.
pub struct SqliteStore {
    pool: SqlitePool,
    /// SQLite has one writer at a time; queueing writers here instead of in SQLite's
    /// busy handler (which sleeps in steps of milliseconds) keeps write latency low.
    writer: tokio::sync::Mutex<()>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        migrate(&pool).await?;
        Ok(Self {
            pool,
            writer: tokio::sync::Mutex::new(()),
        })
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(StoreError::from_display)?;
    let mut tx = conn.begin().await.map_err(StoreError::from_display)?;
    let done: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from_display)?;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        sqlx::raw_sql(*step)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_display)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {}",
            i + 1
        )))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_display)?;
    }
    tx.commit().await.map_err(StoreError::from_display)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[async_trait]
impl Store for SqliteStore {
    async fn history(&self, key: &SessionKey) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query("SELECT body FROM messages WHERE agent = ? AND instance_id = ? AND session = ? ORDER BY seq")
            .bind(&key.instance.agent)
            .bind(&key.instance.id)
            .bind(&key.session)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from_display)?;
        rows.iter()
            .map(|row| {
                let body: &str = row.get(0);
                serde_json::from_str(body)
                    .map_err(|e| StoreError(format!("a stored message is unreadable: {e}")))
            })
            .collect()
    }

    async fn append(&self, key: &SessionKey, messages: &[Message]) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        // IMMEDIATE takes the write lock up front: a deferred transaction that reads
        // first cannot wait for the lock and fails with "database is locked".
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::from_display)?;
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE agent = ? AND instance_id = ? AND session = ?",
        )
        .bind(&key.instance.agent)
        .bind(&key.instance.id)
        .bind(&key.session)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from_display)?;
        let now = now_millis();
        for (offset, message) in messages.iter().enumerate() {
            let body = serde_json::to_string(message).map_err(StoreError::from_display)?;
            sqlx::query("INSERT INTO messages (agent, instance_id, session, seq, body, created_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(&key.instance.agent)
                .bind(&key.instance.id)
                .bind(&key.session)
                .bind(next + offset as i64)
                .bind(body)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_display)?;
        }
        tx.commit().await.map_err(StoreError::from_display)
    }

    async fn state_get(
        &self,
        instance: &InstanceKey,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT value FROM instance_state WHERE agent = ? AND instance_id = ? AND key = ?",
        )
        .bind(&instance.agent)
        .bind(&instance.id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from_display)
    }

    async fn state_set(
        &self,
        instance: &InstanceKey,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        sqlx::query(
            "INSERT INTO instance_state (agent, instance_id, key, value) VALUES (?, ?, ?, ?)
             ON CONFLICT (agent, instance_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(&instance.agent)
        .bind(&instance.id)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(session: &str) -> SessionKey {
        SessionKey {
            instance: InstanceKey {
                agent: "a".into(),
                id: "i".into(),
            },
            session: session.into(),
        }
    }

    #[tokio::test]
    async fn history_appends_in_order_and_reopens() {
        let dir = std::env::temp_dir().join(format!("flue-store-{}", std::process::id()));
        let path = dir.join("t.db");
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&path).await.unwrap();
        let first = Message::User {
            content: "one".into(),
        };
        let second = Message::User {
            content: "two".into(),
        };
        store
            .append(&key("s"), std::slice::from_ref(&first))
            .await
            .unwrap();
        store
            .append(&key("s"), std::slice::from_ref(&second))
            .await
            .unwrap();
        store
            .state_set(&key("s").instance, "k", "v1")
            .await
            .unwrap();
        store
            .state_set(&key("s").instance, "k", "v2")
            .await
            .unwrap();
        drop(store);
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.history(&key("s")).await.unwrap(), vec![first, second]);
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
    async fn concurrent_appends_all_commit() {
        let dir = std::env::temp_dir().join(format!("flue-store-c-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = std::sync::Arc::new(SqliteStore::open(&dir.join("t.db")).await.unwrap());
        let writers: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let message = Message::User {
                        content: format!("m{i}"),
                    };
                    let session = format!("s{}", i % 4);
                    store
                        .append(&key(&session), &[message.clone(), message])
                        .await
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().expect("no 'database is locked'");
        }
        for s in 0..4 {
            assert_eq!(
                store.history(&key(&format!("s{s}"))).await.unwrap().len(),
                8
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
