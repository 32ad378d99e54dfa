//! The store suite: every case runs unchanged against SQLite and PostgreSQL (a real
//! server, see `.ci/postgres`).

use std::sync::Arc;
use std::time::Duration;

use flue_host::models::Message;
use flue_host::store::queue::{DispatchFilter, DispatchStatus, NewDispatch, Settle};
use flue_host::store::runs::{RunEnd, RunEvent, RunFilter, RunStatus};
use flue_host::store::{Backend, DEFAULT_HISTORY_CACHE_BYTES, Database, InstanceKey, SessionKey};

/// Opens one backend's database, again and again (each open runs the migrations).
enum Opener {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Opener {
    async fn open(&self) -> Arc<dyn Backend> {
        let path;
        let database = match self {
            Opener::Sqlite(dir) => {
                path = dir.path().join("flue.db");
                Database::Sqlite {
                    path: &path,
                    cache_bytes: DEFAULT_HISTORY_CACHE_BYTES,
                }
            }
            Opener::Postgres(url) => Database::Postgres { url },
        };
        flue_host::store::open(database)
            .await
            .expect("the store opens")
    }
}

/// Runs each named case once per backend, as `sqlite::<case>` and `postgres::<case>`.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $case() {
                let dir = tempfile::tempdir().expect("a temp dir");
                super::$case(super::Opener::Sqlite(dir)).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $case() {
                let url = flue_tests::postgres::fresh_database().await;
                super::$case(super::Opener::Postgres(url)).await;
            })*
        }
    };
}

suite!(
    histories_keep_order_per_session,
    sessions_are_listed_and_reset,
    concurrent_appends_all_commit,
    state_values_are_replaced,
    everything_survives_reopening,
    idempotent_enqueue_returns_the_first_receipt,
    a_session_gets_one_event_at_a_time_in_order,
    failed_attempts_retry_then_die,
    expired_leases_are_claimed_again_and_late_attempts_change_nothing,
    runs_record_events_and_their_end,
);

fn key(agent: &str, id: &str, session: &str) -> SessionKey {
    SessionKey {
        instance: InstanceKey {
            agent: agent.into(),
            id: id.into(),
        },
        session: session.into(),
    }
}

fn user(text: &str) -> Message {
    Message::User {
        content: text.into(),
    }
}

fn event(session: &SessionKey, input: &str, idempotency_key: Option<&str>) -> NewDispatch {
    NewDispatch {
        session: session.clone(),
        input: input.into(),
        idempotency_key: idempotency_key.map(str::to_string),
    }
}

async fn histories_keep_order_per_session(db: Opener) {
    let store = db.open().await;
    let (a, b) = (key("agent", "i", "a"), key("agent", "i", "b"));
    assert!(store.history(&a).await.unwrap().is_empty());
    store.append(&a, &[user("1"), user("2")]).await.unwrap();
    store.append(&b, &[user("x")]).await.unwrap();
    store.append(&a, &[user("3")]).await.unwrap();
    assert_eq!(
        store.history(&a).await.unwrap(),
        [user("1"), user("2"), user("3")]
    );
    assert_eq!(store.history(&b).await.unwrap(), [user("x")]);
    // Another instance, another agent: separate histories.
    assert!(
        store
            .history(&key("agent", "j", "a"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .history(&key("other", "i", "a"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn sessions_are_listed_and_reset(db: Opener) {
    let store = db.open().await;
    let (a, b) = (key("agent", "i", "a"), key("agent", "i", "b"));
    store.append(&b, &[user("x")]).await.unwrap();
    store.append(&a, &[user("1")]).await.unwrap();
    store
        .append(&key("agent", "j", "c"), &[user("y")])
        .await
        .unwrap();
    let instance = a.instance.clone();
    assert_eq!(store.sessions(&instance).await.unwrap(), ["a", "b"]);
    // Read once (cached, where the store caches), then reset: gone, and appends start over.
    assert_eq!(store.history(&a).await.unwrap(), [user("1")]);
    store.clear_session(&a).await.unwrap();
    assert!(store.history(&a).await.unwrap().is_empty());
    assert_eq!(store.sessions(&instance).await.unwrap(), ["b"]);
    store.append(&a, &[user("2")]).await.unwrap();
    assert_eq!(store.history(&a).await.unwrap(), [user("2")]);
    assert_eq!(store.history(&b).await.unwrap(), [user("x")]);
}

async fn concurrent_appends_all_commit(db: Opener) {
    const WRITERS: usize = 32;
    const PER_APPEND: usize = 8;
    let store = db.open().await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let session = key("agent", "i", &format!("s{}", i % 4));
                let turn: Vec<_> = (0..PER_APPEND).map(|j| user(&format!("{i}-{j}"))).collect();
                store.append(&session, &turn).await
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().expect("every append commits");
    }
    for s in 0..4 {
        let history = store
            .history(&key("agent", "i", &format!("s{s}")))
            .await
            .unwrap();
        assert_eq!(history.len(), WRITERS / 4 * PER_APPEND);
        // Each append stays whole and in its order, whatever ran beside it.
        for append in history.chunks(PER_APPEND) {
            let Message::User { content: first } = &append[0] else {
                panic!("unexpected {append:?}");
            };
            let writer = first.split('-').next().unwrap();
            let expected: Vec<_> = (0..PER_APPEND)
                .map(|j| user(&format!("{writer}-{j}")))
                .collect();
            assert_eq!(append, expected, "{history:?}");
        }
    }
}

async fn state_values_are_replaced(db: Opener) {
    let store = db.open().await;
    let instance = key("agent", "i", "s").instance;
    assert_eq!(store.state_get(&instance, "k").await.unwrap(), None);
    store.state_set(&instance, "k", "v1").await.unwrap();
    store.state_set(&instance, "k", "v2").await.unwrap();
    store.state_set(&instance, "other", "w").await.unwrap();
    assert_eq!(
        store.state_get(&instance, "k").await.unwrap().as_deref(),
        Some("v2")
    );
    let elsewhere = key("agent", "j", "s").instance;
    assert_eq!(store.state_get(&elsewhere, "k").await.unwrap(), None);
}

async fn everything_survives_reopening(db: Opener) {
    let session = key("agent", "i", "s");
    let (receipt, run_id) = {
        let store = db.open().await;
        store.append(&session, &[user("kept")]).await.unwrap();
        store.state_set(&session.instance, "k", "v").await.unwrap();
        store.run_started("run_1", "wf", None, 1).await.unwrap();
        let receipt = store.enqueue(event(&session, "{}", None)).await.unwrap();
        (receipt, "run_1")
    };
    let store = db.open().await;
    assert_eq!(store.history(&session).await.unwrap(), [user("kept")]);
    assert_eq!(
        store
            .state_get(&session.instance, "k")
            .await
            .unwrap()
            .as_deref(),
        Some("v")
    );
    assert_eq!(
        store.run(run_id).await.unwrap().unwrap().status,
        RunStatus::Running
    );
    let claimed = store.claim(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, receipt.id);
}

async fn idempotent_enqueue_returns_the_first_receipt(db: Opener) {
    let store = db.open().await;
    let session = key("agent", "i", "s");
    let first = store
        .enqueue(event(&session, "{\"n\":1}", Some("k1")))
        .await
        .unwrap();
    let again = store
        .enqueue(event(&session, "{\"n\":1}", Some("k1")))
        .await
        .unwrap();
    assert_eq!(first, again);
    // The same key with another input is told apart, holding the first event's receipt.
    let reused = store
        .enqueue(event(&session, "{\"n\":2}", Some("k1")))
        .await
        .unwrap();
    assert_eq!(
        (reused.id.as_str(), reused.same_request),
        (first.id.as_str(), false)
    );
    let other = store
        .enqueue(event(&session, "{\"n\":3}", Some("k2")))
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
    // The key is per instance: another instance may use it too.
    let elsewhere = store
        .enqueue(event(&key("agent", "j", "s"), "{}", Some("k1")))
        .await
        .unwrap();
    assert_ne!(elsewhere.id, first.id);
    let record = store.dispatch(&first.id).await.unwrap().unwrap();
    assert_eq!(record.input, "{\"n\":1}");
    assert_eq!(record.status, DispatchStatus::Queued);
    assert_eq!(record.attempts, 0);
    assert_eq!(record.accepted_at_ms, first.accepted_at_ms);
    assert!(store.dispatch("dsp_missing").await.unwrap().is_none());
}

async fn a_session_gets_one_event_at_a_time_in_order(db: Opener) {
    let store = db.open().await;
    let lease = Duration::from_secs(30);
    let (a, b) = (key("agent", "i", "a"), key("agent", "i", "b"));
    let a1 = store.enqueue(event(&a, "a1", None)).await.unwrap();
    let a2 = store.enqueue(event(&a, "a2", None)).await.unwrap();
    let b1 = store.enqueue(event(&b, "b1", None)).await.unwrap();
    let claimed = store.claim(10, lease).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [a1.id.as_str(), b1.id.as_str()]);
    assert_eq!(claimed[0].session, a);
    assert_eq!(claimed[0].input, "a1");
    assert_eq!(claimed[0].attempt, 1);
    assert!(store.claim(10, lease).await.unwrap().is_empty());
    let answered = Settle::Done {
        answer: "noted a1".into(),
    };
    store.settle(&a1.id, 1, answered).await.unwrap();
    let next = store.claim(10, lease).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].id, a2.id);
    let done = store.dispatch(&a1.id).await.unwrap().unwrap();
    assert_eq!(done.status, DispatchStatus::Done);
    assert!(done.finished_at_ms.is_some());
    assert_eq!(done.answer.as_deref(), Some("noted a1"));
    assert_eq!(
        store.dispatch(&a2.id).await.unwrap().unwrap().status,
        DispatchStatus::Running
    );
}

async fn failed_attempts_retry_then_die(db: Opener) {
    let store = db.open().await;
    let lease = Duration::from_secs(30);
    let session = key("agent", "i", "s");
    let receipt = store.enqueue(event(&session, "{}", None)).await.unwrap();
    store.claim(1, lease).await.unwrap();
    let retry = Settle::Retry {
        error: "provider down".into(),
        after: Duration::from_millis(300),
    };
    store.settle(&receipt.id, 1, retry).await.unwrap();
    // Not due yet.
    assert!(store.claim(1, lease).await.unwrap().is_empty());
    let record = store.dispatch(&receipt.id).await.unwrap().unwrap();
    assert_eq!(record.status, DispatchStatus::Queued);
    assert_eq!(record.last_error.as_deref(), Some("provider down"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = store.claim(1, lease).await.unwrap();
    assert_eq!(second[0].attempt, 2);
    let dead = Settle::Dead {
        error: "gave up".into(),
    };
    store.settle(&receipt.id, 2, dead).await.unwrap();
    let record = store.dispatch(&receipt.id).await.unwrap().unwrap();
    assert_eq!(record.status, DispatchStatus::Dead);
    assert_eq!(record.attempts, 2);
    assert_eq!(record.last_error.as_deref(), Some("gave up"));
    assert!(store.claim(1, lease).await.unwrap().is_empty());

    // Listed among the dead, then retried: queued again for one more attempt.
    let dead_only = DispatchFilter {
        status: Some(DispatchStatus::Dead),
        limit: 10,
        ..DispatchFilter::default()
    };
    let listed = store.list_dispatches(&dead_only).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, receipt.id);
    assert!(store.retry(&receipt.id).await.unwrap());
    assert!(!store.retry(&receipt.id).await.unwrap(), "no longer dead");
    assert!(store.list_dispatches(&dead_only).await.unwrap().is_empty());
    let again = store.claim(1, lease).await.unwrap();
    assert_eq!(
        (again[0].id.as_str(), again[0].attempt),
        (receipt.id.as_str(), 3)
    );
}

async fn expired_leases_are_claimed_again_and_late_attempts_change_nothing(db: Opener) {
    let store = db.open().await;
    let short = Duration::from_millis(100);
    let (a, b) = (key("agent", "i", "a"), key("agent", "i", "b"));
    let lost = store.enqueue(event(&a, "lost", None)).await.unwrap();
    let kept = store.enqueue(event(&b, "kept", None)).await.unwrap();
    assert_eq!(store.claim(10, short).await.unwrap().len(), 2);
    store
        .renew(std::slice::from_ref(&kept.id), Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let again = store.claim(10, short).await.unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].id, lost.id);
    assert_eq!(again[0].attempt, 2);
    // The first attempt finishing late changes nothing; the second's outcome counts.
    let done = || Settle::Done {
        answer: String::new(),
    };
    store.settle(&lost.id, 1, done()).await.unwrap();
    let record = store.dispatch(&lost.id).await.unwrap().unwrap();
    assert_eq!(record.status, DispatchStatus::Running);
    store.settle(&lost.id, 2, done()).await.unwrap();
    let record = store.dispatch(&lost.id).await.unwrap().unwrap();
    assert_eq!(record.status, DispatchStatus::Done);
}

async fn runs_record_events_and_their_end(db: Opener) {
    let store = db.open().await;
    store
        .run_started("run_a", "nightly", Some("ops"), 100)
        .await
        .unwrap();
    store
        .run_started("run_b", "nightly", None, 100)
        .await
        .unwrap();
    for index in 0..5 {
        let event = RunEvent {
            index,
            kind: "log".into(),
            data: format!("{{\"n\":{index}}}"),
            at_ms: 100 + index as i64,
        };
        store.run_event("run_a", event).await.unwrap();
    }
    let started = store.run("run_a").await.unwrap().unwrap();
    assert_eq!(started.status, RunStatus::Running);
    assert_eq!(started.event_count, 5);
    assert_eq!(started.workflow, "nightly");
    assert_eq!(started.started_by.as_deref(), Some("ops"));
    let page = store.run_events("run_a", Some(1), 2).await.unwrap();
    let indexes: Vec<_> = page.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [2, 3]);
    assert_eq!(page[0].data, "{\"n\":2}");
    assert_eq!(store.run_events("run_a", None, 100).await.unwrap().len(), 5);
    store
        .run_ended("run_a", &RunEnd::Completed("{\"ok\":true}".into()), 200)
        .await
        .unwrap();
    store
        .run_ended("run_b", &RunEnd::Failed("boom".into()), 200)
        .await
        .unwrap();
    let a = store.run("run_a").await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.result.as_deref(), a.ended_at_ms),
        (RunStatus::Completed, Some("{\"ok\":true}"), Some(200))
    );
    let b = store.run("run_b").await.unwrap().unwrap();
    assert_eq!(
        (b.status, b.error.as_deref(), b.event_count),
        (RunStatus::Failed, Some("boom"), 0)
    );
    assert!(store.run("run_missing").await.unwrap().is_none());

    // Listed newest first, by workflow and status, a page at a time.
    store
        .run_started("run_c", "weekly", None, 300)
        .await
        .unwrap();
    let list = async |filter: RunFilter| -> Vec<String> {
        let runs = store.list_runs(&filter).await.unwrap();
        runs.into_iter().map(|r| r.id).collect()
    };
    let all = RunFilter {
        limit: 10,
        ..RunFilter::default()
    };
    assert_eq!(list(all.clone()).await, ["run_c", "run_b", "run_a"]);
    let nightly = RunFilter {
        workflow: Some("nightly".into()),
        ..all.clone()
    };
    assert_eq!(list(nightly.clone()).await, ["run_b", "run_a"]);
    let failed = RunFilter {
        status: Some(RunStatus::Failed),
        ..all.clone()
    };
    assert_eq!(list(failed).await, ["run_b"]);
    let second_page = RunFilter {
        offset: 1,
        limit: 1,
        ..nightly
    };
    assert_eq!(list(second_page).await, ["run_a"]);
    let a = store.list_runs(&all).await.unwrap().pop().unwrap();
    assert_eq!((a.event_count, a.status), (5, RunStatus::Completed));
}

/// PostgreSQL only: hosts share it, so a turn's hold on a session must keep other
/// hosts' turns out, and a host that dies must not keep it.
mod holds {
    use super::*;

    async fn two_hosts() -> (Arc<dyn Backend>, Arc<dyn Backend>) {
        let url = flue_tests::postgres::fresh_database().await;
        let open = || flue_host::store::open(Database::Postgres { url: &url });
        // Both start at once: the migrations run once, under a lock.
        let (first, second) = tokio::join!(open(), open());
        (first.expect("opens"), second.expect("opens"))
    }

    #[tokio::test]
    async fn a_held_session_waits_for_its_holder() {
        let (one, two) = two_hosts().await;
        let session = key("agent", "i", "s");
        let held = one.hold_session(&session).await.unwrap();
        let waiting = tokio::spawn({
            let (two, session) = (two.clone(), session.clone());
            async move { two.hold_session(&session).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the second host waits its turn");
        // Another session of the same instance is free meanwhile.
        let other = tokio::time::timeout(
            Duration::from_secs(5),
            two.hold_session(&key("agent", "i", "t")),
        )
        .await
        .expect("another session is not held")
        .unwrap();
        drop(other);
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released when the first hold drops")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_wait_given_up_leaves_no_hold_behind() {
        let (one, two) = two_hosts().await;
        let session = key("agent", "i", "s");
        let held = one.hold_session(&session).await.unwrap();
        // The second host gives up waiting (a client that went away).
        let gave_up =
            tokio::time::timeout(Duration::from_millis(200), two.hold_session(&session)).await;
        assert!(gave_up.is_err());
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), one.hold_session(&session))
            .await
            .expect("the abandoned wait holds nothing")
            .unwrap();
    }
}
