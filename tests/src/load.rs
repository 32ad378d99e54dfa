//! The load generator the serving benchmarks share: concurrent clients prompting over
//! HTTP, and latency percentiles. Each client keeps one HTTP/1.1 connection per server
//! and drives it itself (no connection task, no pool), so that the figures are the
//! host's and not the load generator's: it shares the machine with the host.

use std::pin::Pin;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::{Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Prompts each client task sends.
pub const PROMPTS_PER_TASK: usize = 1000;
/// Prompts per session before a task opens a new one: histories stay short (a real
/// model's time would dwarf the cost of a long one) and one prompt in ten opens a session.
pub const PROMPTS_PER_SESSION: usize = 10;

/// CPU time this process has used so far (user and system, all threads).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc is readable");
    // After the command name (which may hold spaces) come the state, then 10 fields,
    // then utime and stime, in clock ticks of 1/100 s.
    let ticks: u64 = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse::<u64>().expect("a tick count"))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// The `q` quantile (0.0..=1.0) of sorted latencies.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

/// One keep-alive HTTP/1.1 connection, polled by the task that sends on it.
struct Connection {
    host: String,
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl Connection {
    /// Connects to the server at `base` (`http://host:port`).
    async fn open(base: &Uri) -> Connection {
        let host = base
            .authority()
            .expect("a server URL has a host")
            .to_string();
        let stream = TcpStream::connect(&host).await.expect("the server accepts");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 connection");
        Connection {
            host,
            sender,
            driver: Box::pin(driver),
        }
    }

    /// POSTs a JSON body to `path` and reads the whole answer.
    async fn post(&mut self, path: &str, json: Bytes) -> (StatusCode, Bytes) {
        let request = Request::post(path)
            .header(header::HOST, &self.host)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(json))
            .expect("a request");
        let sender = &mut self.sender;
        let exchange = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        tokio::select! {
            answer = exchange => answer.expect("the server answers"),
            closed = &mut self.driver => panic!("the server closed the connection: {closed:?}"),
        }
    }
}

/// Sends [`PROMPTS_PER_TASK`] prompts from each of `concurrency` tasks to
/// `support_assistant` over 100 instance ids, spread over `servers` in turn (like a
/// round-robin load balancer, so one session's prompts reach every server), and prints
/// prompts per second and latency percentiles under `label`.
pub async fn prompts(label: &str, servers: &[String], concurrency: usize) {
    let servers: Vec<Uri> = servers
        .iter()
        .map(|s| s.parse().expect("a server URL"))
        .collect();
    let paths: Vec<String> = (0..100)
        .map(|id| format!("/agents/support_assistant/id-{id}"))
        .collect();
    let (started, cpu_before) = (Instant::now(), cpu_time());
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (servers, paths) = (servers.clone(), paths.clone());
            tokio::spawn(async move {
                let mut connections = Vec::with_capacity(servers.len());
                for server in &servers {
                    connections.push(Connection::open(server).await);
                }
                let mut latencies = Vec::with_capacity(PROMPTS_PER_TASK);
                for i in 0..PROMPTS_PER_TASK {
                    // At any moment the tasks address distinct ids.
                    let id = (i * concurrency + t) % 100;
                    // Tasks open sessions at their own offsets, so new sessions
                    // arrive evenly rather than all at once.
                    let session = format!("s{t}-{}", (i + t) / PROMPTS_PER_SESSION);
                    let body = serde_json::json!({"message": "hello", "session": session});
                    let body = Bytes::from(serde_json::to_vec(&body).expect("JSON"));
                    let connection = &mut connections[(t + i) % servers.len()];
                    let sent = Instant::now();
                    let (status, _) = connection.post(&paths[id], body).await;
                    assert!(status.is_success(), "{status}");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("the load task finishes"));
    }
    let elapsed = started.elapsed();
    let cores = (cpu_time() - cpu_before).as_secs_f64() / elapsed.as_secs_f64();
    latencies.sort();
    println!(
        "{label} concurrency {concurrency:>2}: {:>7.0} prompts/s   p50 {:>8.2?}   p90 {:>8.2?}   p99 {:>8.2?}   max {:>8.2?}   ({} prompts, {cores:.2} cores busy)",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len()
    );
}
