//! The schema steps both stores take, written once, and the rule both follow for them.
//! SQLite and PostgreSQL differ here only in a few type names and clauses, which each
//! store's [`Dialect`] fills in.
//!
//! A step, once released, is never edited: databases that ran it keep what it made, so
//! a change to the schema is a new step appended to both stores' lists.

use super::StoreError;

/// The words a SQL dialect fills into the shared table definitions: `{int}` (a 64-bit
/// integer), `{serial}` (an increasing 64-bit key) and `{keyed}` (what follows a table
/// whose primary key is its only index).
pub(super) struct Dialect {
    int: &'static str,
    serial: &'static str,
    keyed: &'static str,
}

/// SQLite's words: `INTEGER` holds 64 bits; a table keyed by its primary key alone is
/// stored `WITHOUT ROWID`.
pub(super) const SQLITE: Dialect = Dialect {
    int: "INTEGER",
    serial: "INTEGER PRIMARY KEY",
    keyed: " WITHOUT ROWID",
};

/// PostgreSQL's words.
pub(super) const POSTGRES: Dialect = Dialect {
    int: "BIGINT",
    serial: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    keyed: "",
};

impl Dialect {
    /// `sql` with this dialect's words filled in.
    pub(super) fn render(&self, sql: &str) -> String {
        sql.replace("{int}", self.int)
            .replace("{serial}", self.serial)
            .replace("{keyed}", self.keyed)
    }
}

/// Durable key-value state, per instance.
pub(super) const INSTANCE_STATE: &str = "CREATE TABLE instance_state (
        agent TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (agent, instance_id, key)
    ){keyed};";

/// The dispatch queue, in order of acceptance.
pub(super) const DISPATCHES: &str = "CREATE TABLE dispatches (
        seq {serial},
        id TEXT NOT NULL UNIQUE,
        agent TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        session TEXT NOT NULL,
        input TEXT NOT NULL,
        idempotency_key TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        accepted_at {int} NOT NULL,
        due_at {int} NOT NULL,
        lease_until {int},
        finished_at {int}
    );
    CREATE UNIQUE INDEX dispatches_by_key ON dispatches (agent, instance_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX dispatches_open ON dispatches (agent, instance_id, session, seq)
        WHERE status IN ('queued', 'running');
    CREATE INDEX dispatches_pending ON dispatches (seq) WHERE status IN ('queued', 'running');";

/// Workflow runs and their numbered events.
pub(super) const RUNS: &str = "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        status TEXT NOT NULL,
        result TEXT,
        error TEXT,
        started_at {int} NOT NULL,
        ended_at {int}
    ){keyed};
    CREATE TABLE run_events (
        run_id TEXT NOT NULL,
        idx {int} NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        at {int} NOT NULL,
        PRIMARY KEY (run_id, idx)
    ){keyed};";

/// A dispatched event's answer, and the key that started a run.
pub(super) const ANSWERS_AND_STARTERS: &str = "ALTER TABLE dispatches ADD COLUMN answer TEXT;
    ALTER TABLE runs ADD COLUMN started_by TEXT;";

/// The steps of `steps` a database that has run `done` of them still needs. A database
/// with more steps than this build knows was written by a newer flue and is refused:
/// an older host must not write a newer layout.
pub(super) fn pending<T>(steps: &[T], done: usize) -> Result<&[T], StoreError> {
    steps.get(done..).ok_or_else(|| {
        StoreError(format!(
            "the database was written by a newer flue (schema step {done}; this one knows {})",
            steps.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_fills_every_word_and_a_newer_schema_is_refused() {
        for dialect in [SQLITE, POSTGRES] {
            for table in [INSTANCE_STATE, DISPATCHES, RUNS] {
                assert!(!dialect.render(table).contains('{'), "{table}");
            }
        }
        assert!(SQLITE.render(RUNS).contains("started_at INTEGER NOT NULL"));
        assert!(POSTGRES.render(RUNS).contains("started_at BIGINT NOT NULL"));
        let steps = ["a", "b", "c"];
        assert_eq!(pending(&steps, 1).unwrap(), ["b", "c"]);
        assert!(pending(&steps, 3).unwrap().is_empty());
        let newer = pending(&steps, 4).unwrap_err().to_string();
        assert!(
            newer.contains("newer flue (schema step 4; this one knows 3)"),
            "{newer}"
        );
    }
}
