//! Reads that need not wait for the writer: read-only connections (WAL readers never
//! block the writer nor each other), each used by one blocking task at a time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::connect;
use crate::store::StoreError;

/// Idle connections kept for the next reads; more are opened while reads overlap.
const MAX_IDLE: usize = 4;

/// Read-only connections to one database file.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers of the database at `path`; connections are opened as reads need them.
    pub(super) fn new(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_path_buf(),
            idle: Mutex::default(),
        })
    }

    /// Runs `read` on an idle connection (or a new one) on a blocking thread.
    pub(super) async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match readers.lock().pop() {
                Some(conn) => conn,
                None => connect(&readers.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
            };
            let outcome = read(&conn).map_err(StoreError::from_display);
            let mut idle = readers.lock();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
            outcome
        })
        .await
        .map_err(|e| StoreError(format!("a read stopped: {e}")))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
