//! Server-Sent Events from a provider's streaming response, and the one place that
//! sends provider requests and classifies their failures.

use futures_util::StreamExt;

use super::ModelError;
use super::resolve::Endpoint;

/// Longest error body kept in an error message.
const ERROR_BODY_LIMIT: usize = 2000;

/// One complete server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

/// Incremental parser: feed byte chunks as they arrive, take complete events out.
#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Adds a chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() || self.event.is_some() {
                    events.push(SseEvent {
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data).join("\n"),
                    });
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = Some(value.to_string()),
                "data" => self.data.push(value.to_string()),
                _ => {} // comments (empty field), id and retry are not needed
            }
        }
        events
    }
}

/// Posts a JSON body to `endpoint.base_url + path` and returns the response if its
/// status is a success; every failure becomes the matching [`ModelError`].
pub async fn post_json(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    path: &str,
    headers: &[(&str, String)],
    body: &serde_json::Value,
) -> Result<reqwest::Response, ModelError> {
    let url = format!("{}{path}", endpoint.base_url);
    let mut request = http.post(&url).json(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.map_err(|e| ModelError::Unreachable {
        provider: endpoint.provider.clone(),
        url: url.clone(),
        reason: root_cause(&e),
        base_url_var: endpoint.base_url_var.clone(),
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let mut body = response.text().await.unwrap_or_default();
    if body.len() > ERROR_BODY_LIMIT {
        let cut = (0..=ERROR_BODY_LIMIT)
            .rev()
            .find(|&i| body.is_char_boundary(i))
            .unwrap_or(0);
        body.truncate(cut);
        body.push('…');
    }
    Err(ModelError::Status {
        provider: endpoint.provider.clone(),
        status: status.as_u16(),
        body,
    })
}

/// Reads a streaming response, handing each event to `on_event` as it completes.
pub async fn read_events(
    endpoint: &Endpoint,
    response: reqwest::Response,
    mut on_event: impl FnMut(SseEvent) -> Result<(), ModelError>,
) -> Result<(), ModelError> {
    let mut parser = SseParser::default();
    let mut bytes = response.bytes_stream();
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk
            .map_err(|e| bad_response(endpoint, format!("the stream broke: {}", root_cause(&e))))?;
        for event in parser.feed(&chunk) {
            on_event(event)?;
        }
    }
    Ok(())
}

/// Reads a whole JSON response body.
pub async fn read_json(
    endpoint: &Endpoint,
    response: reqwest::Response,
) -> Result<serde_json::Value, ModelError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| bad_response(endpoint, format!("the body broke off: {}", root_cause(&e))))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| bad_response(endpoint, format!("the body is not JSON: {e}")))
}

/// A [`ModelError::BadResponse`] from this endpoint.
pub fn bad_response(endpoint: &Endpoint, reason: impl Into<String>) -> ModelError {
    ModelError::BadResponse {
        provider: endpoint.provider.clone(),
        reason: reason.into(),
    }
}

/// Parses an event's data as JSON.
pub fn event_json(endpoint: &Endpoint, event: &SseEvent) -> Result<serde_json::Value, ModelError> {
    serde_json::from_str(&event.data)
        .map_err(|e| bad_response(endpoint, format!("a stream event is not JSON: {e}")))
}

/// The innermost cause of an error, which says what actually went wrong.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_arbitrary_chunk_boundaries() {
        let stream = "event: a\r\ndata: {\"x\":\"é\"}\r\n\r\n: comment\n\ndata: one\ndata: two\n\n";
        let whole = SseParser::default().feed(stream.as_bytes());
        assert_eq!(
            whole,
            vec![
                SseEvent {
                    event: Some("a".into()),
                    data: "{\"x\":\"é\"}".into()
                },
                SseEvent {
                    event: None,
                    data: "one\ntwo".into()
                },
            ]
        );
        for size in 1..stream.len() {
            let mut parser = SseParser::default();
            let events: Vec<SseEvent> = stream
                .as_bytes()
                .chunks(size)
                .flat_map(|c| parser.feed(c))
                .collect();
            assert_eq!(events, whole, "chunk size {size}");
        }
    }
}
