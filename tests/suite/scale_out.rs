//! Scale-out: several `flue serve` processes on one PostgreSQL database. Turns of one
//! session are taken one at a time across processes, and a process that dies loses
//! none of the events it accepted or claimed.

use std::time::{Duration, Instant};

use flue_host::DispatchStatus;
use flue_host::models::Message;
use flue_host::store::{Backend, Database, InstanceKey, SessionKey};
use flue_tests::{FakeProvider, Project, Reply, Server, Turn};
use serde_json::{Value, json};

/// `flue serve` on `project` with its own data directory, keeping state in `database`.
async fn node(project: &Project, fake: &FakeProvider, name: &str, database: &str) -> Server {
    let data_dir = project.path().join(name);
    let data_dir = data_dir.to_str().expect("a UTF-8 path");
    let options = ["--data-dir", data_dir, "--database-url", database];
    Server::start(project.path(), fake, "serve", &options).await
}

async fn open(database: &str) -> std::sync::Arc<dyn Backend> {
    flue_host::store::open(Database::Postgres { url: database })
        .await
        .expect("the test reaches the database")
}

fn session(id: &str, session: &str) -> SessionKey {
    SessionKey {
        instance: InstanceKey {
            agent: "support_assistant".into(),
            id: id.into(),
        },
        session: session.into(),
    }
}

#[tokio::test]
async fn interleaved_prompts_on_two_nodes_keep_each_session_whole_and_in_order() {
    const SESSIONS: usize = 4;
    const PROMPTS: usize = 12;
    // The model says how many messages it was shown, after a pause that lets turns
    // on the two nodes overlap if nothing keeps them apart.
    let fake = FakeProvider::start(|turn: &Turn| {
        let pause = Duration::from_millis(fastrand::u64(5..30));
        Reply::Delayed(
            pause,
            Box::new(Reply::Text(format!("saw {}", turn.messages))),
        )
    })
    .await;
    let project = Project::new();
    let database = flue_tests::postgres::fresh_database().await;
    let nodes = [
        node(&project, &fake, "node-a", &database).await,
        node(&project, &fake, "node-b", &database).await,
    ];
    let client = reqwest::Client::new();
    let prompts: Vec<_> = (0..SESSIONS * PROMPTS)
        .map(|n| {
            // Session `n % SESSIONS`, on each node in turn.
            let node = &nodes[(n / SESSIONS) % 2];
            let url = format!("{}/agents/support_assistant/shared", node.url);
            let body =
                json!({"message": format!("prompt {n}"), "session": format!("s{}", n % SESSIONS)});
            let client = client.clone();
            tokio::spawn(async move {
                let response = client.post(url).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 200, "{:?}", response.text().await);
                response.json::<Value>().await.unwrap()
            })
        })
        .collect();
    for prompt in prompts {
        prompt.await.unwrap();
    }
    let store = open(&database).await;
    for s in 0..SESSIONS {
        let history = store
            .history(&session("shared", &format!("s{s}")))
            .await
            .unwrap();
        assert_eq!(history.len(), 2 * PROMPTS, "{history:?}");
        let mut asked = Vec::new();
        for (at, turn) in history.chunks(2).enumerate() {
            let [
                Message::User { content: question },
                Message::Assistant {
                    content: answer, ..
                },
            ] = turn
            else {
                panic!("turn {at} is not a question and its answer: {turn:?}");
            };
            // Each turn saw every message before it: no turn ran beside another.
            assert_eq!(answer, &format!("saw {}", 2 * at + 1), "{history:?}");
            asked.push(question.clone());
        }
        let mut expected: Vec<_> = (0..SESSIONS * PROMPTS)
            .filter(|n| n % SESSIONS == s)
            .map(|n| format!("prompt {n}"))
            .collect();
        asked.sort();
        expected.sort();
        assert_eq!(asked, expected, "every prompt once");
    }
}

#[tokio::test]
async fn a_node_killed_mid_dispatch_loses_nothing_the_other_finishes_it() {
    const SESSIONS: usize = 8;
    const PER_SESSION: usize = 25;
    let fake = FakeProvider::start(|_: &Turn| {
        Reply::Delayed(
            Duration::from_millis(100),
            Box::new(Reply::Text("noted".into())),
        )
    })
    .await;
    let project = Project::new();
    std::fs::write(
        project.path().join("flue.toml"),
        "[dispatch]\nlease_ms = 1000\nworkers = 4\n",
    )
    .unwrap();
    let database = flue_tests::postgres::fresh_database().await;
    let doomed = node(&project, &fake, "node-a", &database).await;
    let survivor = node(&project, &fake, "node-b", &database).await;
    let client = reqwest::Client::new();
    // Each session's events in order, sent to both nodes in turn; sessions at once.
    let senders: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let client = client.clone();
            let urls = [doomed.url.clone(), survivor.url.clone()];
            tokio::spawn(async move {
                let mut receipts = Vec::new();
                for n in (s..SESSIONS * PER_SESSION).step_by(SESSIONS) {
                    let url = &urls[n / SESSIONS % 2];
                    let body = json!({"session": format!("s{s}"), "input": {"n": n}});
                    let response = client
                        .post(format!("{url}/agents/support_assistant/acme/dispatch"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 202);
                    let receipt: Value = response.json().await.unwrap();
                    receipts.push(receipt["dispatch_id"].as_str().unwrap().to_string());
                }
                receipts
            })
        })
        .collect();
    let mut receipts = Vec::new();
    for sender in senders {
        receipts.extend(sender.await.unwrap());
    }
    let store = open(&database).await;
    let done = async |store: &dyn Backend| {
        let mut count = 0;
        for id in &receipts {
            let record = store
                .dispatch(id)
                .await
                .unwrap()
                .expect("accepted is stored");
            assert_ne!(record.status, DispatchStatus::Dead, "{record:?}");
            count += usize::from(record.status == DispatchStatus::Done);
        }
        count
    };
    // Kill one node while both are working through the queue.
    let deadline = Instant::now() + Duration::from_secs(60);
    while done(store.as_ref()).await < receipts.len() / 10 {
        assert!(Instant::now() < deadline, "the nodes make progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill().await;
    let finished_before = done(store.as_ref()).await;
    assert!(
        finished_before < receipts.len(),
        "the kill came mid-load ({finished_before} of {} done)",
        receipts.len()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let finished = done(store.as_ref()).await;
        if finished == receipts.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {finished} of {} events done",
            receipts.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every event reached its session's history, in the order it was accepted.
    for s in 0..SESSIONS {
        let history = store
            .history(&session("acme", &format!("s{s}")))
            .await
            .unwrap();
        let seen: Vec<u64> = history
            .iter()
            .filter_map(|m| match m {
                Message::User { content } => {
                    let input = content.lines().last()?;
                    serde_json::from_str::<Value>(input).ok()?["n"].as_u64()
                }
                _ => None,
            })
            .collect();
        let mut distinct = seen.clone();
        distinct.dedup();
        let expected: Vec<u64> = (0..SESSIONS * PER_SESSION)
            .filter(|n| n % SESSIONS == s)
            .map(|n| n as u64)
            .collect();
        assert_eq!(distinct, expected, "session s{s} saw {seen:?}");
    }
    drop(survivor);
}
