//! Request accounting: a middleware that counts, times and logs every request, and the
//! exposition for `GET /metrics` (OpenMetrics text, by the `prometheus-client` crate).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::App;
use crate::Host;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// The labels of a request: its method, route (the pattern, never the path, so that ids
/// make no new series) and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// The server's metrics and the host's, in one Prometheus registry.
pub(super) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    live_instances: Gauge,
    host: Host,
}

impl Metrics {
    /// Metrics of the HTTP surface, and of `host`'s prompts, tokens and guests by agent.
    pub(super) fn new(host: &Host) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Histogram::new(BUCKETS);
        let live_instances = Gauge::default();
        registry.register("flue_http_requests", "HTTP requests", requests.clone());
        registry.register(
            "flue_http_request_duration_seconds",
            "Time to answer a request",
            latency.clone(),
        );
        registry.register(
            "flue_live_instances",
            "Agent instances live in memory",
            live_instances.clone(),
        );
        host.stats().register(&mut registry);
        Self {
            registry,
            requests,
            latency,
            live_instances,
            host: host.clone(),
        }
    }

    fn observe(&self, labels: &RequestLabels, seconds: f64) {
        self.requests.get_or_create(labels).inc();
        self.latency.observe(seconds);
    }

    /// The OpenMetrics text exposition (Prometheus reads it).
    pub(super) fn render(&self) -> String {
        self.live_instances.set(self.host.live_instances() as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Counts, times and logs one request.
pub(super) async fn track(State(app): State<App>, request: Request, next: Next) -> Response {
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
    let labels = RequestLabels {
        method: method.clone(),
        route,
        status,
    };
    app.metrics.observe(&labels, elapsed.as_secs_f64());
    tracing::info!(target: "flue::http", %method, %path, status, micros = elapsed.as_micros() as u64, "request");
    response
}
