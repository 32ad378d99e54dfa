//! Sessions held across hosts: a session-level advisory lock, on a connection of the
//! hold pool kept for the length of one turn. If the host dies, the server ends the
//! connection and the lock with it.

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, Postgres};

use crate::store::{SessionKey, StoreError};

/// A held session; dropping it releases the lock.
pub(super) struct Held {
    conn: Option<PoolConnection<Postgres>>,
    locked: bool,
}

/// Waits until this host holds `key`.
pub(super) async fn take(pool: &PgPool, key: &SessionKey) -> Result<Held, StoreError> {
    let mut held = Held {
        conn: Some(pool.acquire().await.map_err(StoreError::from_display)?),
        locked: false,
    };
    let conn = held.conn.as_mut().expect("just taken");
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind(lock_name(key))
        .execute(&mut **conn)
        .await
        .map_err(StoreError::from_display)?;
    held.locked = true;
    Ok(held)
}

/// The text a session's locks are named by (hashed with a seed per kind of lock):
/// distinct sessions collide only by hash, which at worst makes two of them take turns.
pub(super) fn lock_name(key: &SessionKey) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        key.instance.agent, key.instance.id, key.session
    )
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match (self.locked, tokio::runtime::Handle::try_current()) {
            (true, Ok(runtime)) => {
                runtime.spawn(async move {
                    let unlocked = sqlx::query("SELECT pg_advisory_unlock_all()")
                        .execute(&mut *conn)
                        .await;
                    if unlocked.is_err() {
                        conn.close_on_drop();
                    }
                });
            }
            // A wait that was given up may still be granted: closing the connection is
            // the one way to be sure no lock stays behind.
            _ => conn.close_on_drop(),
        }
    }
}
