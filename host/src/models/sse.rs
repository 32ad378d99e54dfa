//! Server-Sent Events, parsed incrementally from a provider's streaming response.

/// One complete server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

/// Incremental parser: feed byte chunks as they arrive, take complete events out.
/// Bytes are kept until a whole line is in, so chunks may split lines and characters.
#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Adds a chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut search_from = self.buffer.len();
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut line_start = 0;
        while let Some(end) = self.buffer[search_from..].iter().position(|&b| b == b'\n') {
            let end = search_from + end;
            let line = String::from_utf8_lossy(&self.buffer[line_start..end]).into_owned();
            events.extend(self.line(line.strip_suffix('\r').unwrap_or(&line)));
            line_start = end + 1;
            search_from = line_start;
        }
        self.buffer.drain(..line_start);
        events
    }

    /// Takes in one line (without its line ending); a blank line completes an event.
    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            // An event without data lines is dropped, as the SSE specification says.
            return (!self.data.is_empty()).then(|| SseEvent {
                event,
                data: std::mem::take(&mut self.data).join("\n"),
            });
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            _ => {} // comments (empty field), id and retry are not needed
        }
        None
    }
}

/// Test support: plays a raw event stream, cut into 7-byte chunks, through wire format
/// `W`; returns the outcome and the events sent to the sink.
#[cfg(test)]
pub(super) fn replay<W: super::client::Wire>(
    endpoint: &super::resolve::Endpoint,
    raw: &str,
) -> (
    Result<super::ModelResponse, super::ModelError>,
    Vec<super::StreamEvent>,
) {
    let mut sent = Vec::new();
    let mut state = W::Stream::default();
    let mut parser = SseParser::default();
    let played = raw.as_bytes().chunks(7).try_for_each(|chunk| {
        parser
            .feed(chunk)
            .iter()
            .try_for_each(|event| W::on_event(&mut state, endpoint, event, &mut |e| sent.push(e)))
    });
    (played.and_then(|()| W::finish(state, endpoint)), sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_arbitrary_chunk_boundaries() {
        let stream = "event: a\r\ndata: {\"x\":\"é\"}\r\n\r\n: comment\n\nevent: no-data\n\ndata: one\ndata: two\n\ndata:\n\ndata: cut off";
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
                SseEvent {
                    event: None,
                    data: String::new()
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
