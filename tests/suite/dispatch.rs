//! Durable dispatch: accepted events survive a crash and are processed in session
//! order; idempotency keys; failing events retried and then dead while others proceed.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flue_host::DispatchStatus;
use flue_tests::{FakeProvider, Project, Reply, Server, Turn, get_json, guest};
use serde_json::{Value, json};

/// The token an event carries, as the model sees it (`{"token": "…"}` in the input).
fn token_of(turn: &Turn) -> Option<String> {
    let text = turn.last_user_text.as_deref()?;
    let start = text.find("{\"token\":\"")? + "{\"token\":\"".len();
    let end = start + text[start..].find('"')?;
    Some(text[start..end].to_string())
}

/// A fake provider that records each event token it sees, in order.
async fn token_recorder(delay: Duration) -> (FakeProvider, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let fake = FakeProvider::start(move |turn: &Turn| {
        if let Some(token) = token_of(turn) {
            record.lock().unwrap().push(token);
        }
        Reply::Delayed(delay, Box::new(Reply::Text("noted".into())))
    })
    .await;
    (fake, seen)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn accepted_events_survive_sigkill_and_run_in_session_order() {
    const SESSIONS: usize = 10;
    const PER_SESSION: usize = 100;
    let (fake, seen) = token_recorder(Duration::from_millis(5)).await;
    let project = Project::new();
    std::fs::write(
        project.path().join("flue.toml"),
        "[dispatch]\nlease_ms = 1000\nworkers = 4\n",
    )
    .unwrap();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = reqwest::Client::new();
    let senders: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let (client, url) = (client.clone(), server.url.clone());
            tokio::spawn(async move {
                for n in 0..PER_SESSION {
                    let body = json!({"session": format!("s{s}"), "input": {"token": format!("s{s}-{n}")}});
                    let response = client
                        .post(format!("{url}/agents/support_assistant/acme/dispatch"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 202);
                    let receipt: Value = response.json().await.unwrap();
                    assert_eq!(receipt["status"], "accepted");
                    assert!(receipt["dispatch_id"].as_str().is_some_and(|id| id == receipt["dispatchId"]));
                    assert!(receipt["accepted_at"].as_str().is_some_and(|t| t.ends_with('Z')));
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    server.kill().await;
    let before_restart = seen.lock().unwrap().len();
    assert!(
        before_restart < SESSIONS * PER_SESSION,
        "the crash interrupted the work"
    );

    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let wanted: HashSet<String> = (0..SESSIONS)
        .flat_map(|s| (0..PER_SESSION).map(move |n| format!("s{s}-{n}")))
        .collect();
    wait_for("every accepted event", || {
        let seen: HashSet<String> = seen.lock().unwrap().iter().cloned().collect();
        wanted.is_subset(&seen)
    })
    .await;
    let mut first_seen: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut counted = HashSet::new();
    for token in seen.lock().unwrap().iter() {
        if counted.insert(token.clone()) {
            let (s, n) = token[1..].split_once('-').unwrap();
            first_seen
                .entry(s.parse().unwrap())
                .or_default()
                .push(n.parse().unwrap());
        }
    }
    for (session, order) in first_seen {
        assert_eq!(
            order,
            (0..PER_SESSION).collect::<Vec<_>>(),
            "session s{session} in order"
        );
    }
    server.terminate().await;
}

#[tokio::test]
async fn an_idempotency_key_yields_one_event() {
    let (fake, seen) = token_recorder(Duration::ZERO).await;
    let project = Project::new();
    let server = Server::start(project.path(), &fake, "serve", &[]).await;
    let client = reqwest::Client::new();
    let url = format!("{}/agents/support_assistant/acme/dispatch", server.url);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let receipt: Value = client
            .post(&url)
            .header("Idempotency-Key", "order-77")
            .json(&json!({"input": {"token": "once"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(receipt["dispatch_id"].as_str().unwrap().to_string());
    }
    let by_field: Value = client
        .post(&url)
        .json(&json!({"input": {"token": "once"}, "idempotency_key": "order-77"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ids.push(by_field["dispatch_id"].as_str().unwrap().to_string());
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    // The same key for a different event is a mistake, not a repeat.
    let reused = client
        .post(&url)
        .header("Idempotency-Key", "order-77")
        .json(&json!({"input": {"token": "other"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 409);
    let reused: Value = reused.json().await.unwrap();
    assert_eq!(reused["error"]["type"], "conflict");
    let status_url = format!("{}/dispatches/{}", server.url, ids[0]);
    wait_for("the event to be done", || !seen.lock().unwrap().is_empty()).await;
    let record: Value = loop {
        let record: Value = get_json(&client, &status_url).await;
        if record["status"] == "done" {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["answer"], "noted", "what the agent answered");
    let listed: Value = get_json(
        &client,
        &format!(
            "{}/dispatches?status=done&agent=support_assistant",
            server.url
        ),
    )
    .await;
    assert_eq!(listed["dispatches"][0]["dispatch_id"], ids[0].as_str());
    let retry = client
        .post(format!("{}/dispatches/{}/retry", server.url, ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 409, "only dead events are retried");
    assert_eq!(record["agent"], "support_assistant");
    assert_eq!(record["instanceId"], "acme");
    assert_eq!(record["session"], "default");
    assert_eq!(*seen.lock().unwrap(), ["once"]);

    for (body, status) in [
        (json!({"session": "s"}), 400),
        (json!({"input": 1, "session": ""}), 400),
        (json!([1]), 400),
    ] {
        let response = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), status, "{body}");
    }
    let unknown = client
        .post(format!("{}/agents/nobody/acme/dispatch", server.url))
        .json(&json!({"input": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let missing = client
        .get(format!("{}/dispatches/dsp_nope", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.terminate().await;
}

#[tokio::test]
async fn a_failing_event_is_retried_then_dead_while_others_proceed() {
    let cured = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let is_cured = cured.clone();
    let fake = FakeProvider::start(move |turn: &Turn| match token_of(turn).as_deref() {
        Some("poison") if !is_cured.load(std::sync::atomic::Ordering::SeqCst) => Reply::Error {
            status: 500,
            message: "the model cannot digest this".into(),
        },
        _ => Reply::Text("fine".into()),
    })
    .await;
    let project = Project::empty();
    project.add_agent("support_assistant", &guest("agents/support_assistant"));
    let mut options = project.options(&fake);
    options.config.dispatch.max_attempts = Some(3);
    options.config.dispatch.backoff_ms = Some(20);
    let host = project.host_with(options).await;
    host.start_dispatcher();
    let poison = host
        .dispatch(
            "support_assistant",
            "acme",
            "a",
            &json!({"token": "poison"}),
            None,
        )
        .await
        .unwrap();
    let after_poison = host
        .dispatch(
            "support_assistant",
            "acme",
            "a",
            &json!({"token": "next"}),
            None,
        )
        .await
        .unwrap();
    let mut others = Vec::new();
    for i in 0..3 {
        let session = format!("other-{i}");
        let input = json!({"token": i});
        others.push(
            host.dispatch("support_assistant", "acme", &session, &input, None)
                .await,
        );
    }
    let status = async |id: &str| host.dispatch_status(id).await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&after_poison.id).await.status != DispatchStatus::Done {
        assert!(
            Instant::now() < deadline,
            "the queue moves on after a dead event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dead = status(&poison.id).await;
    assert_eq!(dead.status, DispatchStatus::Dead);
    assert_eq!(dead.attempts, 3);
    let error = dead.last_error.unwrap();
    assert!(
        error.contains("500") && error.contains("cannot digest"),
        "{error}"
    );
    assert!(dead.finished_at_ms.is_some());
    for other in others {
        let record = status(&other.unwrap().id).await;
        assert_eq!(record.status, DispatchStatus::Done);
        assert_eq!(record.attempts, 1);
        assert_eq!(
            record.answer.as_deref(),
            Some("fine"),
            "what the agent answered"
        );
    }

    // The dead are listed; once the cause is gone, a retry delivers the event.
    let dead_only = flue_host::DispatchFilter {
        status: Some(DispatchStatus::Dead),
        limit: 10,
        ..Default::default()
    };
    let listed = host.list_dispatches(&dead_only).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [poison.id.as_str()]);
    cured.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(host.retry_dispatch(&poison.id).await.unwrap());
    assert!(
        !host.retry_dispatch(&after_poison.id).await.unwrap(),
        "not dead"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&poison.id).await.status != DispatchStatus::Done {
        assert!(Instant::now() < deadline, "the retried event is delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let retried = status(&poison.id).await;
    assert_eq!(
        (retried.attempts, retried.answer.as_deref()),
        (4, Some("fine"))
    );
    assert_eq!(
        retried.last_error, None,
        "a delivered event shows no earlier attempt's error"
    );
}
