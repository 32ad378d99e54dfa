//! The HTTP side every wire format shares: sending a request, classifying failures,
//! and reading the answer whole or as a stream. A [`Wire`] says what differs.

use std::marker::PhantomData;

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde_json::Value;

use super::capabilities::CapabilityTable;
use super::retry::{RetryPolicy, retry_after};
use super::sse::{SseEvent, SseParser};
use super::{BoxFuture, EventSink, ModelError, ModelRequest, ModelResponse, Provider, StreamEvent};

/// Where and how one provider is called, once settings and environment are applied.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// The provider's name, as in `provider/model`.
    pub provider: String,
    pub base_url: String,
    /// The setting a user changes to point elsewhere, named in errors.
    pub base_url_var: String,
    pub api_key: Option<String>,
    /// How transient failures are retried.
    pub retry: RetryPolicy,
    /// What each model accepts.
    pub capabilities: CapabilityTable,
}

/// Longest error body kept in an error message.
const ERROR_BODY_LIMIT: usize = 2000;

/// One provider wire format: its path, headers, bodies and stream events.
pub(super) trait Wire: Send + Sync + 'static {
    /// The path under the base URL that completions are posted to.
    const PATH: &'static str;
    /// What a stream has said so far.
    type Stream: Default + Send;
    /// Authentication and version headers.
    fn headers(endpoint: &Endpoint) -> Vec<(&'static str, String)>;
    /// The JSON body of a request, borrowed from it.
    type Body<'a>: Serialize + Send + Sync;
    /// The JSON body for a request to this endpoint.
    fn request_body<'a>(
        endpoint: &'a Endpoint,
        request: &'a ModelRequest,
        stream: bool,
    ) -> Self::Body<'a>;
    /// Reads a whole response body.
    fn parse_response(endpoint: &Endpoint, body: &Value) -> Result<ModelResponse, ModelError>;
    /// Takes in one stream event, forwarding text deltas to `sink`.
    fn on_event(
        stream: &mut Self::Stream,
        endpoint: &Endpoint,
        event: &SseEvent,
        sink: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<(), ModelError>;
    /// The response, once the stream has ended.
    fn finish(stream: Self::Stream, endpoint: &Endpoint) -> Result<ModelResponse, ModelError>;
}

/// A provider client speaking wire format `W`, with its URL and headers prepared once.
pub(super) struct Client<W> {
    http: reqwest::Client,
    endpoint: Endpoint,
    url: reqwest::Url,
    headers: HeaderMap,
    wire: PhantomData<fn() -> W>,
}

impl<W: Wire> Client<W> {
    /// A client for `endpoint`; refused if its URL or a header is not valid.
    pub(super) fn new(http: reqwest::Client, endpoint: Endpoint) -> Result<Self, ModelError> {
        let url = format!("{}{}", endpoint.base_url, W::PATH);
        let invalid = |reason: String| ModelError::Unreachable {
            provider: endpoint.provider.clone(),
            url: url.clone(),
            reason,
            base_url_var: endpoint.base_url_var.clone(),
        };
        let parsed = reqwest::Url::parse(&url).map_err(|e| invalid(format!("not a URL: {e}")))?;
        let mut headers = HeaderMap::new();
        for (name, value) in W::headers(&endpoint) {
            let value = HeaderValue::try_from(value)
                .map_err(|_| invalid(format!("the {name} header is not a valid header value")))?;
            headers.insert(name, value);
        }
        Ok(Self {
            http,
            url: parsed,
            headers,
            endpoint,
            wire: PhantomData,
        })
    }

    async fn send(
        &self,
        request: &ModelRequest,
        stream: bool,
    ) -> Result<reqwest::Response, ModelError> {
        post_json(
            &self.http,
            &self.endpoint,
            &self.url,
            &self.headers,
            &W::request_body(&self.endpoint, request, stream),
        )
        .await
    }

    /// One completion, answered whole; transient failures are retried.
    async fn complete_whole(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let mut retries = self.endpoint.retry.start();
        loop {
            match self.complete_once(request).await {
                Ok(response) => return Ok(response),
                Err(error) => retries.after(error, true).await?,
            }
        }
    }

    async fn complete_once(&self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        let response = self.send(request, false).await?;
        W::parse_response(&self.endpoint, &read_json(&self.endpoint, response).await?)
    }

    /// One completion, streamed; a transient failure is retried while nothing of the
    /// answer has reached `sink`.
    async fn complete_streamed(
        &self,
        request: &ModelRequest,
        sink: EventSink<'_>,
    ) -> Result<ModelResponse, ModelError> {
        let mut retries = self.endpoint.retry.start();
        loop {
            let mut delivered = false;
            let mut tracked = |event: StreamEvent| {
                delivered = true;
                sink(event);
            };
            let outcome = self.stream_once(request, &mut tracked).await;
            match outcome {
                Ok(response) => return Ok(response),
                Err(error) => retries.after(error, !delivered).await?,
            }
        }
    }

    async fn stream_once(
        &self,
        request: &ModelRequest,
        sink: EventSink<'_>,
    ) -> Result<ModelResponse, ModelError> {
        let response = self.send(request, true).await?;
        if !is_event_stream(&response) {
            // A server that ignores `stream` (or reports an error) answers whole.
            let body = read_json(&self.endpoint, response).await?;
            let whole = W::parse_response(&self.endpoint, &body)?;
            if !whole.text.is_empty() {
                sink(StreamEvent::TextDelta(whole.text.clone()));
            }
            return Ok(whole);
        }
        let mut state = W::Stream::default();
        read_events(&self.endpoint, response, |event| {
            W::on_event(&mut state, &self.endpoint, &event, sink)
        })
        .await?;
        W::finish(state, &self.endpoint)
    }
}

impl<W: Wire> Provider for Client<W> {
    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(self.complete_whole(request))
    }

    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        sink: EventSink<'a>,
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(self.complete_streamed(request, sink))
    }
}

/// Posts a JSON body to `url` and returns the response if its status is a success;
/// every failure becomes the matching [`ModelError`]: 429, 408, 5xx and Anthropic's 529
/// are [`ModelError::Busy`], with the provider's `retry-after`.
async fn post_json(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    url: &reqwest::Url,
    headers: &HeaderMap,
    body: &impl Serialize,
) -> Result<reqwest::Response, ModelError> {
    let request = http.post(url.clone()).headers(headers.clone()).json(body);
    let response = request.send().await.map_err(|e| match closed_early(&e) {
        // Like an answer that broke off: sent again.
        true => ModelError::Incomplete {
            provider: endpoint.provider.clone(),
            reason: format!("the connection closed before an answer: {}", root_cause(&e)),
        },
        // Refused, no such host, a connect timeout: not sent again, as a dead server
        // would cost every retry.
        false => ModelError::Unreachable {
            provider: endpoint.provider.clone(),
            url: url.to_string(),
            reason: root_cause(&e),
            base_url_var: endpoint.base_url_var.clone(),
        },
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let mut body = response.text().await.unwrap_or_default();
    if body.len() > ERROR_BODY_LIMIT {
        let cut = (0..=ERROR_BODY_LIMIT)
            .rev()
            .find(|&i| body.is_char_boundary(i))
            .unwrap_or(0);
        body.truncate(cut);
        body.push('…');
    }
    let code = status.as_u16();
    if code == 429 || code == 408 || status.is_server_error() {
        return Err(ModelError::Busy {
            provider: endpoint.provider.clone(),
            rate_limited: code == 429,
            detail: format!("HTTP {code}: {body}"),
            retry_after,
            attempts: 1,
        });
    }
    Err(ModelError::Status {
        provider: endpoint.provider.clone(),
        status: code,
        body,
    })
}

/// Reads a streaming response, handing each event to `on_event` as it completes.
async fn read_events(
    endpoint: &Endpoint,
    response: reqwest::Response,
    mut on_event: impl FnMut(SseEvent) -> Result<(), ModelError>,
) -> Result<(), ModelError> {
    let mut parser = SseParser::default();
    let mut bytes = response.bytes_stream();
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|e| ModelError::Incomplete {
            provider: endpoint.provider.clone(),
            reason: format!("the connection broke: {}", root_cause(&e)),
        })?;
        parser.feed_into(&chunk, &mut on_event)?;
    }
    parser.finish_into(&mut on_event)
}

/// Whether a response is an event stream: its content type says so, or says nothing.
fn is_event_stream(response: &reqwest::Response) -> bool {
    let content_type = response.headers().get(reqwest::header::CONTENT_TYPE);
    content_type
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| !v.contains("json"))
}

/// Reads a whole JSON response body.
async fn read_json(
    endpoint: &Endpoint,
    response: reqwest::Response,
) -> Result<serde_json::Value, ModelError> {
    let bytes = response.bytes().await.map_err(|e| ModelError::Incomplete {
        provider: endpoint.provider.clone(),
        reason: format!("the body broke off: {}", root_cause(&e)),
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| bad_response(endpoint, format!("the body is not JSON: {e}")))
}

/// A [`ModelError::BadResponse`] from this endpoint.
pub(super) fn bad_response(endpoint: &Endpoint, reason: impl Into<String>) -> ModelError {
    ModelError::BadResponse {
        provider: endpoint.provider.clone(),
        reason: reason.into(),
    }
}

/// The error for an `{"error": {"type", "message"}}` object a provider sent in a
/// stream or a success body: [`ModelError::Busy`] for overload, rate limits and server
/// errors, which may pass if tried again, [`ModelError::Reported`] for the rest.
pub(super) fn reported(endpoint: &Endpoint, error: &Value) -> ModelError {
    let text = |k: &str| match &error[k] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let (kind, code) = (text("type"), text("code"));
    let message = error["message"].as_str().or(error.as_str());
    let message = message.map_or_else(|| error.to_string(), str::to_string);
    // Either field may name the trouble: OpenAI puts `rate_limit_exceeded` in `code`,
    // vLLM says `InternalServerError`, others give an HTTP status as the code.
    let says = |words: &[&str]| {
        [&kind, &code]
            .into_iter()
            .flatten()
            .any(|f| words.iter().any(|w| f.to_ascii_lowercase().contains(w)))
    };
    let status = code.as_deref().and_then(|c| c.parse::<u16>().ok());
    let rate_limited = says(&["rate_limit"]) || status == Some(429);
    let transient = rate_limited
        || says(&[
            "overloaded",
            "api_error",
            "server_error",
            "internalserver",
            "timeout",
            "unavailable",
        ])
        || status.is_some_and(|s| s >= 500);
    let kind = kind.or(code).unwrap_or_else(|| "error".into());
    if transient {
        return ModelError::Busy {
            provider: endpoint.provider.clone(),
            rate_limited,
            detail: format!("{kind}: {message}"),
            retry_after: None,
            attempts: 1,
        };
    }
    ModelError::Reported {
        provider: endpoint.provider.clone(),
        kind,
        message,
    }
}

/// Parses an event's data as JSON.
pub(super) fn event_json(
    endpoint: &Endpoint,
    event: &SseEvent,
) -> Result<serde_json::Value, ModelError> {
    serde_json::from_str(&event.data)
        .map_err(|e| bad_response(endpoint, format!("a stream event is not JSON: {e}")))
}

/// The innermost cause of an error, which says what actually went wrong.
/// Whether a request failed because the connection, once made, was closed or reset
/// before any answer came (hyper's incomplete message, or a reset in the I/O beneath).
fn closed_early(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
            return matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe);
        }
        cause = error.source();
    }
    false
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Test support: plays a raw event stream, cut into 7-byte chunks, through wire format
/// `W`; returns the outcome and the events sent to the sink.
#[cfg(test)]
pub(super) fn replay<W: Wire>(
    endpoint: &Endpoint,
    raw: &str,
) -> (Result<ModelResponse, ModelError>, Vec<StreamEvent>) {
    let mut sent = Vec::new();
    let mut state = W::Stream::default();
    let mut parser = SseParser::default();
    let mut on_event =
        |event: SseEvent| W::on_event(&mut state, endpoint, &event, &mut |e| sent.push(e));
    let played = raw
        .as_bytes()
        .chunks(7)
        .try_for_each(|chunk| parser.feed_into(chunk, &mut on_event))
        .and_then(|()| parser.finish_into(&mut on_event));
    (played.and_then(|()| W::finish(state, endpoint)), sent)
}
