//! An incremental Server-Sent Events parser, as the build log stream needs it: bytes in, in
//! chunks cut anywhere, whole events out. Lines end with LF, CRLF or CR; `data:` fields are
//! joined with `\n`; comments (`: keep-alive`) and unknown fields are skipped; an event cut off by
//! the end of the stream is never emitted, so resuming after the last emitted id loses nothing.

/// Longest line kept; the rest of a longer line is dropped.
const MAX_LINE: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `None` for the default type (`message`).
    pub event: Option<String>,
    /// The `data:` fields, joined with `\n`.
    pub data: String,
    /// The last event id when the event was dispatched: what `Last-Event-ID` resumes after.
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous byte was a CR: an LF right after it ends no further line.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream, returning the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    if let Some(e) = self.line(&String::from_utf8_lossy(&line)) {
                        events.push(e);
                    }
                }
                _ if self.line.len() < MAX_LINE => self.line.push(b),
                _ => {}
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.id = (!value.is_empty()).then(|| value.to_string());
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take();
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(Event {
            event,
            data,
            id: self.id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: Option<&str>, event: Option<&str>, data: &str) -> Event {
        Event {
            event: event.map(str::to_string),
            data: data.to_string(),
            id: id.map(str::to_string),
        }
    }

    fn parse(chunks: &[&str]) -> Vec<Event> {
        let mut p = Parser::new();
        chunks.iter().flat_map(|c| p.feed(c.as_bytes())).collect()
    }

    #[test]
    fn ids_and_data() {
        assert_eq!(
            parse(&["id: 1\ndata: cloning\n\nid: 2\ndata: done\n\n"]),
            vec![ev(Some("1"), None, "cloning"), ev(Some("2"), None, "done")]
        );
    }

    #[test]
    fn multi_line_data_is_joined_with_line_feeds() {
        assert_eq!(
            parse(&["id: 7\ndata: a\ndata: b\ndata:\ndata:c\n\n"]),
            vec![ev(Some("7"), None, "a\nb\n\nc")]
        );
    }

    #[test]
    fn an_empty_data_field_is_an_empty_line_not_nothing() {
        assert_eq!(parse(&["id: 3\ndata: \n\n"]), vec![ev(Some("3"), None, "")]);
    }

    #[test]
    fn comments_and_unknown_fields_are_skipped() {
        assert_eq!(
            parse(&[": keep-alive\n\nretry: 1000\nfoo: bar\n\nid: 4\n: hi\ndata: x\n\n"]),
            vec![ev(Some("4"), None, "x")]
        );
    }

    #[test]
    fn end_event_keeps_the_last_id() {
        assert_eq!(
            parse(&["id: 9\ndata: last\n\nevent: end\ndata: running\n\n"]),
            vec![
                ev(Some("9"), None, "last"),
                ev(Some("9"), Some("end"), "running")
            ]
        );
    }

    #[test]
    fn the_event_type_does_not_outlive_its_event() {
        assert_eq!(
            parse(&["event: end\n\ndata: x\n\n"]),
            vec![ev(None, None, "x")]
        );
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let want = vec![ev(Some("1"), None, "a"), ev(Some("2"), None, "b")];
        assert_eq!(
            parse(&["id: 1\r\ndata: a\r\n\r\nid: 2\r\ndata: b\r\n\r\n"]),
            want
        );
        assert_eq!(parse(&["id: 1\rdata: a\r\rid: 2\rdata: b\r\r"]), want);
        // A CRLF split between two chunks is one line end, not two.
        assert_eq!(
            parse(&[
                "id: 1\r",
                "\ndata: a\r",
                "\n\r",
                "\nid: 2\r\nda",
                "ta: b\r\n\r\n"
            ]),
            want
        );
    }

    #[test]
    fn chunks_cut_anywhere() {
        let stream = "id: 1\ndata: héllo\n\n: keep-alive\n\nid: 2\ndata: x\ndata: y\n\nevent: end\ndata: failed\n\n";
        let whole = parse(&[stream]);
        for at in 0..stream.len() {
            let (a, b) = stream.as_bytes().split_at(at);
            let mut p = Parser::new();
            let mut got = p.feed(a);
            got.extend(p.feed(b));
            assert_eq!(got, whole, "cut at {at}");
        }
        assert_eq!(whole.len(), 3);
    }

    #[test]
    fn an_event_cut_off_mid_stream_is_not_emitted() {
        let mut p = Parser::new();
        let got = p.feed(b"id: 1\ndata: one\n\nid: 2\ndata: tw");
        assert_eq!(got, vec![ev(Some("1"), None, "one")]);
        // Nothing without the blank line, even when the line itself ended.
        assert_eq!(p.feed(b"o\n"), vec![]);
        // A new connection resumes after id 1 with a fresh parser and gets 2 whole.
        let mut p = Parser::new();
        assert_eq!(
            p.feed(b"id: 2\ndata: two\n\n"),
            vec![ev(Some("2"), None, "two")]
        );
    }

    #[test]
    fn overlong_lines_are_truncated() {
        let mut p = Parser::new();
        let mut stream = b"data: ".to_vec();
        stream.extend(std::iter::repeat_n(b'x', MAX_LINE * 2));
        stream.extend(b"\n\n");
        let got = p.feed(&stream);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data.len(), MAX_LINE - "data: ".len());
    }
}
