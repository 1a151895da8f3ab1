//! Server-Sent Events, parsed incrementally: network chunks split lines (and UTF-8
//! characters) anywhere, so bytes are buffered until a line is complete.

use std::collections::VecDeque;
use std::fmt::Display;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::ProviderError;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` name, when the server gave one.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Turns bytes into events as they arrive.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`; a leading `\n` belongs to that line break.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds one chunk and returns the events it completed.
    pub fn push(&mut self, mut chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.line.extend_from_slice(&chunk[..end]);
            self.end_line(&mut events);
            let mut next = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            chunk = &chunk[next..];
        }
        self.line.extend_from_slice(chunk);
        events
    }

    /// Ends the stream. A last event without its closing blank line is still delivered:
    /// some servers close right after the final `data:` line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut events);
        }
        self.end_line(&mut events);
        events.pop()
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if line.is_empty() {
            let event = self.event.take();
            if self.has_data {
                self.has_data = false;
                events.push(SseEvent {
                    event,
                    data: std::mem::take(&mut self.data),
                });
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` matter to reconnecting browsers, not to one model call.
            _ => {}
        }
    }
}

/// An HTTP body read as events, each read bounded by `gap`: a server that stops
/// sending mid-stream fails the call instead of hanging it.
pub(crate) struct SseStream<S> {
    body: S,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
    gap: Duration,
    ended: bool,
}

impl<S, E> SseStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    pub fn new(body: S, gap: Duration) -> Self {
        Self {
            body,
            parser: SseParser::default(),
            ready: VecDeque::new(),
            gap,
            ended: false,
        }
    }

    /// The next event, or `None` once the server closed the stream.
    pub async fn next_event(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            match tokio::time::timeout(self.gap, self.body.next()).await {
                Err(_) => return Err(ProviderError::Timeout(self.gap)),
                Ok(None) => {
                    self.ended = true;
                    self.ready.extend(self.parser.finish());
                }
                Ok(Some(Err(error))) => {
                    return Err(ProviderError::Connection(format!(
                        "the response stream broke: {error}"
                    )));
                }
                Ok(Some(Ok(chunk))) => self.ready.extend(self.parser.push(&chunk)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: name.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    /// Feeds `text` split at every possible position pair, so every boundary is tried.
    fn parse_all_splits(text: &str) -> Vec<SseEvent> {
        let bytes = text.as_bytes();
        let mut expected: Option<Vec<SseEvent>> = None;
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let mut parser = SseParser::default();
                let mut events = parser.push(&bytes[..a]);
                events.extend(parser.push(&bytes[a..b]));
                events.extend(parser.push(&bytes[b..]));
                events.extend(parser.finish());
                match &expected {
                    None => expected = Some(events),
                    Some(first) => assert_eq!(&events, first, "split at {a},{b}"),
                }
            }
        }
        expected.unwrap_or_default()
    }

    #[test]
    fn events_survive_any_chunking_and_line_ending() {
        let text = ": keep-alive\r\n\
                    event: message_start\r\n\
                    data: {\"a\":\r\n\
                    data: \"é\"}\r\n\r\n\
                    data:no-space\n\n\
                    event: ping\rdata: x\r\r\
                    id: 4\nretry: 10\n\n\
                    data: [DONE]";
        assert_eq!(
            parse_all_splits(text),
            vec![
                event(Some("message_start"), "{\"a\":\n\"é\"}"),
                event(None, "no-space"),
                event(Some("ping"), "x"),
                event(None, "[DONE]"),
            ]
        );
    }

    #[test]
    fn empty_data_lines_count_and_events_without_data_do_not() {
        let text = "event: lonely\n\ndata\ndata:\n\n";
        assert_eq!(parse_all_splits(text), vec![event(None, "\n")]);
    }

    #[tokio::test]
    async fn stream_times_out_when_the_server_goes_quiet() {
        let chunks = futures::stream::iter(vec![Ok::<_, Infallible>(Bytes::from_static(
            b"data: one\n\n",
        ))])
        .chain(futures::stream::pending());
        let mut stream = SseStream::new(Box::pin(chunks), Duration::from_millis(50));
        let first = stream.next_event().await.expect("first event");
        assert_eq!(first, Some(event(None, "one")));
        let quiet = stream.next_event().await;
        assert!(matches!(quiet, Err(ProviderError::Timeout(_))), "{quiet:?}");
    }
}
