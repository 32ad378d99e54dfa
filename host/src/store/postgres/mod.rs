//! The shared store: a PostgreSQL database that several hosts use at once. Nothing is
//! cached between statements, since another host may write at any time. A turn holds
//! its session with an advisory lock on a connection of its own (`hold.rs`), which the
//! server drops with the connection if the host dies. The dispatch queue is in
//! `queue.rs`, workflow runs in `runs.rs`.

mod hold;
mod queue;
mod runs;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

use super::schema::{self, ANSWERS_AND_STARTERS, DISPATCHES, INSTANCE_STATE, POSTGRES, RUNS};
use super::{InstanceKey, SessionHold, SessionKey, Store, StoreError, now_millis};
use crate::models::Message;

/// Connections for statements; each is held only while one runs.
const QUERY_CONNECTIONS: u32 = 16;
/// Connections holding sessions: at most this many turns run at once on one host.
const HOLD_CONNECTIONS: u32 = 64;
/// How long the first connection at start may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a turn waits for a connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
/// The advisory lock that lets one host at a time bring the schema up to date.
const MIGRATION_LOCK: i64 = 0x666c_7565_5f6d_6967;

/// Messages, ordered by an increasing id.
const MESSAGES: &str = "CREATE TABLE messages (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        agent TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        session TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX messages_by_session ON messages (agent, instance_id, session, id);";

/// Schema steps, applied in order; `flue_schema` records how many ran.
fn migrations() -> Vec<String> {
    let sql = |table| POSTGRES.render(table);
    vec![
        [
            MESSAGES.into(),
            sql(INSTANCE_STATE),
            sql(DISPATCHES),
            sql(RUNS),
        ]
        .join("\n    "),
        sql(ANSWERS_AND_STARTERS),
    ]
}

/// Sessions, state, the dispatch queue and runs in a PostgreSQL database.
pub struct PostgresStore {
    pool: PgPool,
    holds: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// and brings its schema up to date; hosts starting together take turns at that.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError(format!("invalid database URL: {e}")))?;
        let cannot_connect = |e: sqlx::Error| {
            StoreError(format!(
                "cannot connect to PostgreSQL at {}:{}: {e}",
                options.get_host(),
                options.get_port()
            ))
        };
        // One attempt first: a pool retries a refused connection until its acquire
        // timeout, which would leave the user a minute of silence and "pool timed out".
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| {
                StoreError(format!(
                    "cannot connect to PostgreSQL at {}:{}: no answer within {CONNECT_TIMEOUT:?}",
                    options.get_host(),
                    options.get_port()
                ))
            })?
            .map_err(cannot_connect)?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(QUERY_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(cannot_connect)?;
        migrate(&pool).await?;
        let holds = PgPoolOptions::new()
            .max_connections(HOLD_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(options);
        Ok(Self { pool, holds })
    }
}

/// Applies the schema steps not applied yet, in one transaction, under a lock that
/// keeps other hosts from doing the same at the same time.
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(StoreError::from_display)?;
    let mut tx = conn.begin().await.map_err(StoreError::from_display)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_display)?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS flue_schema (steps INTEGER NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_display)?;
    let done: Option<i32> = sqlx::query_scalar("SELECT steps FROM flue_schema")
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_display)?;
    let done = done.unwrap_or(0) as usize;
    let steps = migrations();
    for step in schema::pending(&steps, done)? {
        sqlx::raw_sql(sqlx::AssertSqlSafe(step.clone()))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_display)?;
    }
    sqlx::query("DELETE FROM flue_schema")
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_display)?;
    sqlx::query("INSERT INTO flue_schema (steps) VALUES ($1)")
        .bind(steps.len() as i32)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_display)?;
    tx.commit().await.map_err(StoreError::from_display)
}

#[async_trait]
impl Store for PostgresStore {
    async fn hold_session(&self, key: &SessionKey) -> Result<SessionHold, StoreError> {
        hold::take(&self.holds, key).await.map(SessionHold::new)
    }

    async fn history(&self, key: &SessionKey) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM messages WHERE agent = $1 AND instance_id = $2 AND session = $3
             ORDER BY id",
        )
        .bind(&key.instance.agent)
        .bind(&key.instance.id)
        .bind(&key.session)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        rows.iter()
            .map(|row| {
                serde_json::from_str(row.get::<&str, _>(0))
                    .map_err(|e| StoreError(format!("a stored message is not valid: {e}")))
            })
            .collect()
    }

    async fn sessions(&self, instance: &InstanceKey) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT session FROM messages WHERE agent = $1 AND instance_id = $2
             ORDER BY session",
        )
        .bind(&instance.agent)
        .bind(&instance.id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_display)?;
        Ok(rows.into_iter().map(|(session,)| session).collect())
    }

    async fn clear_session(&self, key: &SessionKey) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM messages WHERE agent = $1 AND instance_id = $2 AND session = $3")
            .bind(&key.instance.agent)
            .bind(&key.instance.id)
            .bind(&key.session)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(StoreError::from_display)
    }

    async fn append(&self, key: &SessionKey, messages: &[Message]) -> Result<(), StoreError> {
        let bodies: Vec<String> = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from_display)?;
        // Appends to one session take turns (a lock until the statement commits), so
        // each gets a contiguous run of ids even when two run at once.
        sqlx::query(
            "WITH turn AS (SELECT pg_advisory_xact_lock(hashtextextended($6, 1)))
             INSERT INTO messages (agent, instance_id, session, body, created_at)
             SELECT $1, $2, $3, m.body, $5
             FROM turn, UNNEST($4::TEXT[]) WITH ORDINALITY AS m (body, n)
             ORDER BY m.n",
        )
        .bind(&key.instance.agent)
        .bind(&key.instance.id)
        .bind(&key.session)
        .bind(&bodies)
        .bind(now_millis())
        .bind(hold::lock_name(key))
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
    }

    async fn state_get(
        &self,
        instance: &InstanceKey,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT value FROM instance_state WHERE agent = $1 AND instance_id = $2 AND key = $3",
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
        sqlx::query(
            "INSERT INTO instance_state (agent, instance_id, key, value) VALUES ($1, $2, $3, $4)
             ON CONFLICT (agent, instance_id, key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(&instance.agent)
        .bind(&instance.id)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(StoreError::from_display)
    }
}
