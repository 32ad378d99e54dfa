//! Request accounting: a middleware that counts, times and logs every request, and the
//! Prometheus text for `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::App;
use crate::Host;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Counters of the HTTP surface.
#[derive(Default)]
pub struct Metrics {
    /// Requests by (method, route, status).
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Requests at or under each bucket bound (cumulative), then the total count.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_micros: AtomicU64,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let key = (method.to_string(), route.to_string(), status);
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry(key)
            .or_default() += 1;
        for (bucket, bound) in self.latency.iter().zip(BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency[BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.latency_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of these counters and the host's.
    pub fn render(&self, host: &Host) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE flue_http_requests_total counter");
        for ((method, route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "flue_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# TYPE flue_http_request_duration_seconds histogram");
        for (bucket, bound) in self.latency.iter().zip(BUCKETS) {
            let n = bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "flue_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let count = self.latency[BUCKETS.len()].load(Ordering::Relaxed);
        let sum = self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "flue_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "flue_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "flue_http_request_duration_seconds_count {count}");
        let stats = host.stats();
        let counters = [
            ("flue_prompts_total", &stats.prompts),
            ("flue_prompt_failures_total", &stats.failed_prompts),
            ("flue_input_tokens_total", &stats.input_tokens),
            ("flue_output_tokens_total", &stats.output_tokens),
            ("flue_guest_traps_total", &stats.guest_traps),
        ];
        for (name, value) in counters {
            let _ = writeln!(
                out,
                "# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# TYPE flue_live_instances gauge\nflue_live_instances {}",
            host.live_instances()
        );
        out
    }
}

/// Counts, times and logs one request.
pub async fn track(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics
        .observe(&method, &route, status, elapsed.as_secs_f64());
    tracing::info!(target: "flue::http", %method, %path, status, micros = elapsed.as_micros() as u64, "request");
    response
}
