//! Durable state: session histories, per-instance values, the dispatch queue and
//! workflow runs. Traits, so the embedded SQLite default and PostgreSQL (several hosts
//! sharing one database) serve the same host. The only module that writes SQL.

mod memory;
mod postgres;
pub mod queue;
pub mod runs;
mod schema;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::models::Message;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use queue::Queue;
pub use runs::Runs;
pub use sqlite::{DEFAULT_HISTORY_CACHE_BYTES, SqliteStore, in_use};

/// Everything a host keeps durably, in one database.
pub trait Backend: Store + Queue + Runs {}

impl<T: Store + Queue + Runs> Backend for T {}

/// Where the durable state lives.
#[derive(Debug, Clone)]
pub enum Database<'a> {
    /// A SQLite file this process owns, with up to `cache_bytes` of histories cached.
    Sqlite {
        /// The database file, created if missing.
        path: &'a Path,
        /// The most session history kept in memory, in bytes of stored size.
        cache_bytes: usize,
    },
    /// A PostgreSQL database (`postgres://…`) that other hosts may share.
    Postgres {
        /// The connection URL, `postgres://user:password@host/database`.
        url: &'a str,
    },
}

/// Opens the database and brings its schema up to date.
pub async fn open(database: Database<'_>) -> Result<Arc<dyn Backend>, StoreError> {
    Ok(match database {
        Database::Sqlite { path, cache_bytes } => {
            Arc::new(SqliteStore::open(path, cache_bytes).await?)
        }
        Database::Postgres { url } => Arc::new(PostgresStore::open(url).await?),
    })
}

/// One agent instance: an agent name and a caller-chosen id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// The agent's host name (`<tenant>/<name>` for a tenant's agent).
    pub agent: String,
    /// The caller-chosen instance id (a customer, a ticket, a repository).
    pub id: String,
}

/// One named session of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// The instance the session belongs to.
    pub instance: InstanceKey,
    /// The session's name within the instance.
    pub session: String,
}

/// Milliseconds since the Unix epoch, the time unit the store records.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(String);

impl StoreError {
    pub(crate) fn from_display(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// A session held for one turn; dropping it lets the next turn in.
#[derive(Default)]
pub struct SessionHold {
    _guard: Option<Box<dyn Send + Sync>>,
}

impl SessionHold {
    /// A hold kept for as long as `guard` lives.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _guard: Some(Box::new(guard)),
        }
    }
}

/// What the host keeps across restarts.
#[async_trait]
pub trait Store: Send + Sync {
    /// Holds a session for one turn against every other host that shares this store;
    /// waits while another host holds it. Turns within one host are already taken one at
    /// a time, so a store no other host can open holds nothing.
    async fn hold_session(&self, _key: &SessionKey) -> Result<SessionHold, StoreError> {
        Ok(SessionHold::default())
    }
    /// A session's messages, oldest first; empty for a new session.
    async fn history(&self, key: &SessionKey) -> Result<Vec<Message>, StoreError>;
    /// Appends messages to a session, all or none.
    async fn append(&self, key: &SessionKey, messages: &[Message]) -> Result<(), StoreError>;
    /// The sessions of an instance that hold messages, by name, sorted.
    async fn sessions(&self, instance: &InstanceKey) -> Result<Vec<String>, StoreError>;
    /// Forgets a session's messages: its history starts again, empty.
    async fn clear_session(&self, key: &SessionKey) -> Result<(), StoreError>;
    /// A value the instance stored.
    async fn state_get(
        &self,
        instance: &InstanceKey,
        key: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Stores (or replaces) a value for the instance.
    async fn state_set(
        &self,
        instance: &InstanceKey,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError>;
}
