//! The `fetch` built-in: an HTTP GET of a URL on a host the agent may reach, answered
//! as text. Redirects are not followed (one could leave the allowed hosts), each
//! request has a timeout, and the body the model sees is bounded.

use std::time::Duration;

use serde_json::{Value, json};

use super::{spec, text_arg};
use crate::access::glob;
use crate::models::ToolSpec;

/// The tool's name.
pub(crate) const FETCH_TOOL: &str = "fetch";
/// The most of a response body the model sees.
const MAX_BODY_BYTES: usize = 256 << 10;
/// How long one request may take, connection and body included.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The HTTP client `fetch` uses: no redirects, a timeout.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .expect("the fetch client builds")
}

/// `fetch` for one agent: the hosts it may reach, as globs of `host` or `host:port`.
pub(crate) struct Fetch {
    client: reqwest::Client,
    hosts: Vec<String>,
}

impl Fetch {
    /// `fetch` limited to `hosts` (e.g. `api.example.com`, `*.example.com`,
    /// `127.0.0.1:8080`).
    pub(crate) fn new(client: reqwest::Client, hosts: Vec<String>) -> Self {
        Self { client, hosts }
    }

    /// The tool as the model is offered it.
    pub(crate) fn spec(&self) -> ToolSpec {
        spec(
            FETCH_TOOL,
            &format!(
                "HTTP GET a URL and return its status and body as text. Allowed hosts: {}.",
                self.hosts.join(", ")
            ),
            &json!({"url": {"type": "string", "description": "An http:// or https:// URL."}}),
            &["url"],
        )
    }

    /// Whether `url`'s host (with or without its port) matches an allowed pattern.
    fn allows(&self, url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let with_port = url.port_or_known_default().map(|p| format!("{host}:{p}"));
        self.hosts.iter().any(|pattern| {
            glob(pattern, host) || with_port.as_deref().is_some_and(|h| glob(pattern, h))
        })
    }

    /// Runs one call; the error is what the model sees.
    pub(crate) async fn call(&self, args: &Value) -> Result<String, String> {
        let url = text_arg(args, "url")?;
        let url = reqwest::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "only http and https URLs can be fetched, not {url}"
            ));
        }
        if !self.allows(&url) {
            return Err(format!(
                "{} is not a host this agent may reach (allowed: {})",
                url.host_str().unwrap_or_default(),
                self.hosts.join(", ")
            ));
        }
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("fetching {url} failed: {e}"))?;
        let status = response.status();
        let mut body = Vec::new();
        let mut cut = false;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading {url} failed: {e}"))?
        {
            let room = MAX_BODY_BYTES - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() > room {
                cut = true;
                break;
            }
        }
        let mut text = format!(
            "HTTP {}\n{}",
            status.as_u16(),
            String::from_utf8_lossy(&body)
        );
        if cut {
            text.push_str(&format!("\n[cut at {} KiB]", MAX_BODY_BYTES >> 10));
        }
        Ok(text)
    }
}
