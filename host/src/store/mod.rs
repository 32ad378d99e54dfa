//! Durable state: session histories and per-instance values. A trait, so the embedded
//! SQLite default and a PostgreSQL backend serve the same host. The only module that
//! writes SQL.

mod memory;
pub mod queue;
pub mod runs;
mod sqlite;

use async_trait::async_trait;

use crate::models::Message;

pub use memory::MemoryStore;
pub use queue::Queue;
pub use runs::Runs;
pub use sqlite::{DEFAULT_HISTORY_CACHE_BYTES, SqliteStore};

/// One agent instance: an agent name and a caller-chosen id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    pub agent: String,
    pub id: String,
}

/// One named session of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub instance: InstanceKey,
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
    fn from_display(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// What the host keeps across restarts.
#[async_trait]
pub trait Store: Send + Sync {
    /// A session's messages, oldest first; empty for a new session.
    async fn history(&self, key: &SessionKey) -> Result<Vec<Message>, StoreError>;
    /// Appends messages to a session, all or none.
    async fn append(&self, key: &SessionKey, messages: &[Message]) -> Result<(), StoreError>;
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
