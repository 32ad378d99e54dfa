//! A model provider that replays recorded HTTP responses byte for byte: status line,
//! headers and body exactly as a real provider or compatible server sent them, line
//! endings, missing end markers and all. The Nth request gets the Nth response (the last
//! one again after that); each request's path and JSON body are kept for assertions.
//! The connection closes after each response, so bodies may be close-delimited.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the replaying provider received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub body: Value,
}

/// The running replay server; it stops when dropped.
pub struct Replay {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    server: tokio::task::JoinHandle<()>,
}

/// The folder of recorded responses: `tests/corpus/<case>`.
pub fn corpus(case: &str) -> PathBuf {
    crate::workspace().join("tests/corpus").join(case)
}

impl Replay {
    /// Serves the responses `resp-1.raw`, `resp-2.raw`, … of `dir`, in that order.
    pub async fn from_dir(dir: &Path) -> Replay {
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_name()?.to_str()?;
                let n = name
                    .strip_prefix("resp-")?
                    .strip_suffix(".raw")?
                    .parse()
                    .ok()?;
                Some((n, path))
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no resp-N.raw in {}", dir.display());
        let responses = files
            .into_iter()
            .map(|(_, path)| std::fs::read(path).expect("a recorded response"))
            .collect();
        Self::start(responses).await
    }

    /// Serves `responses` (whole raw HTTP responses), one per request.
    pub async fn start(responses: Vec<Vec<u8>>) -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (seen, responses) = (requests.clone(), Arc::new(responses));
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (seen, responses) = (seen.clone(), responses.clone());
                tokio::spawn(async move { answer(socket, &seen, &responses).await });
            }
        });
        Replay {
            addr,
            requests,
            server,
        }
    }

    /// Base URL for the Anthropic client: `http://127.0.0.1:PORT`.
    pub fn anthropic_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL for OpenAI-format clients: `http://127.0.0.1:PORT/v1`.
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Reads one request, records it, and writes the response for its position.
async fn answer(mut socket: TcpStream, seen: &Mutex<Vec<Recorded>>, responses: &[Vec<u8>]) {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
    let body = serde_json::from_slice(&data[head_end..]).unwrap_or(Value::Null);
    let n = {
        let mut seen = seen.lock().expect("requests lock");
        seen.push(Recorded { path, body });
        seen.len()
    };
    let response = &responses[n.min(responses.len()) - 1];
    let _ = socket.write_all(response).await;
    let _ = socket.shutdown().await;
}
