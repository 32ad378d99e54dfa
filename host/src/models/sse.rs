//! Server-Sent Events, parsed incrementally from a provider's streaming response, by
//! the WHATWG rules (<https://html.spec.whatwg.org/multipage/server-sent-events.html>,
//! "Parsing an event stream"): lines end in CRLF, LF or CR; a leading BOM is skipped;
//! lines starting with `:` are comments; `id` and `retry` fields are read and ignored;
//! a blank line ends an event, which is dispatched only if it has data. One departure:
//! an event the stream ends in, without its blank line, is dispatched too
//! ([`SseParser::finish`]), since some servers end that way.

/// One complete server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

/// Incremental parser: feed byte chunks as they arrive, take complete events out.
/// Bytes are kept until a whole line is in, so chunks may split lines and characters.
#[derive(Default)]
pub(super) struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    /// The last chunk ended in CR: an LF that starts the next one ends no further line.
    after_cr: bool,
    /// Whether the start of the stream (where a BOM may be) is behind.
    started: bool,
}

impl SseParser {
    /// Adds a chunk and returns the events it completed.
    pub(super) fn feed(&mut self, mut chunk: &[u8]) -> Vec<SseEvent> {
        if chunk.is_empty() {
            return Vec::new();
        }
        if std::mem::take(&mut self.after_cr) && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        let mut search_from = self.buffer.len();
        self.buffer.extend_from_slice(chunk);
        if !self.started {
            // Nothing is taken out of the buffer before this is settled, so it holds the
            // stream from its first byte.
            let bom = "\u{feff}".as_bytes();
            let n = self.buffer.len().min(bom.len());
            if self.buffer[..n] != bom[..n] {
                self.started = true;
            } else if n == bom.len() {
                self.buffer.drain(..n);
                search_from = 0;
                self.started = true;
            } else {
                return Vec::new();
            }
        }
        let mut events = Vec::new();
        let mut line_start = 0;
        while let Some(offset) = self.buffer[search_from..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let end = search_from + offset;
            let line = String::from_utf8_lossy(&self.buffer[line_start..end]).into_owned();
            events.extend(self.line(&line));
            line_start = end + 1;
            if self.buffer[end] == b'\r' {
                match self.buffer.get(end + 1) {
                    Some(b'\n') => line_start += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            search_from = line_start;
        }
        self.buffer.drain(..line_start);
        events
    }

    /// The event the stream ended in the middle of, once it has ended: some servers
    /// leave out the blank line after their last event. A line cut short is dropped.
    pub(super) fn finish(mut self) -> Option<SseEvent> {
        self.line("")
    }

    /// Feeds `chunk` and hands each event it completes to `on_event`, except an event
    /// whose data is empty, which says nothing to any provider's format.
    pub(super) fn feed_into<E>(
        &mut self,
        chunk: &[u8],
        on_event: &mut impl FnMut(SseEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        self.feed(chunk)
            .into_iter()
            .try_for_each(|e| deliver(e, on_event))
    }

    /// Ends the stream: hands the event it ended in to `on_event`, as
    /// [`Self::feed_into`] does.
    pub(super) fn finish_into<E>(
        self,
        on_event: &mut impl FnMut(SseEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        self.finish().map_or(Ok(()), |e| deliver(e, on_event))
    }

    /// Takes in one line (without its line ending); a blank line completes an event.
    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
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
            _ => {} // comments (empty field name), `id`, `retry` and unknown fields
        }
        None
    }
}

/// Hands `event` to `on_event` if it carries data.
fn deliver<E>(
    event: SseEvent,
    on_event: &mut impl FnMut(SseEvent) -> Result<(), E>,
) -> Result<(), E> {
    match event.data.is_empty() {
        true => Ok(()),
        false => on_event(event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_arbitrary_chunk_boundaries() {
        let stream = "\u{feff}event: a\r\ndata: {\"x\":\"é\"}\r\n\r\n: comment\rretry: 10\rid: 7\r\revent: no-data\n\ndata: one\ndata: two\n\ndata:\r\n\r\ndata: cut off";
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

    #[test]
    fn a_last_event_without_its_blank_line_is_kept_and_a_cut_line_is_not() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b"data: [DONE]\n").is_empty());
        assert_eq!(parser.finish().unwrap().data, "[DONE]");
        let mut cut = SseParser::default();
        assert!(cut.feed(b"data: {\"half").is_empty());
        assert_eq!(cut.finish(), None);
    }
}
