//! Splitting a console's byte stream into lines: CR, LF and CRLF each end one line (a CRLF
//! split across two reads too), a line still being written stays partial, invalid UTF-8 becomes
//! U+FFFD, and an endless line is cut at a maximum length.

/// A complete line with the time its first byte arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramedLine {
    pub at_us: u64,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct LineFramer {
    partial: Vec<u8>,
    partial_at_us: u64,
    after_cr: bool,
    max_line: usize,
}

impl LineFramer {
    /// Lines longer than `max_line` bytes are cut into pieces of that length.
    pub fn new(max_line: usize) -> Self {
        Self {
            partial: Vec::new(),
            partial_at_us: 0,
            after_cr: false,
            max_line: max_line.max(1),
        }
    }

    /// Feeds bytes that arrived at `now_us`, appending the lines they complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], now_us: u64, out: &mut Vec<FramedLine>) {
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    self.end_line(now_us, out);
                }
                _ => {
                    self.after_cr = false;
                    if self.partial.is_empty() {
                        self.partial_at_us = now_us;
                    }
                    self.partial.push(b);
                    if self.partial.len() >= self.max_line {
                        self.end_line(now_us, out);
                    }
                }
            }
        }
    }

    fn end_line(&mut self, now_us: u64, out: &mut Vec<FramedLine>) {
        let at_us = if self.partial.is_empty() {
            now_us
        } else {
            self.partial_at_us
        };
        out.push(FramedLine {
            at_us,
            text: String::from_utf8_lossy(&self.partial).into_owned(),
        });
        self.partial.clear();
    }

    /// The line being written (no terminator yet).
    pub fn partial(&self) -> String {
        String::from_utf8_lossy(&self.partial).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[FramedLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn cr_lf_and_crlf_each_end_one_line() {
        let mut f = LineFramer::new(100);
        let mut out = Vec::new();
        f.feed(b"unix\nmac\rdos\r\n\nblank above\r\r", 1, &mut out);
        assert_eq!(
            texts(&out),
            vec!["unix", "mac", "dos", "", "blank above", ""]
        );
        assert_eq!(f.partial(), "");
    }

    #[test]
    fn crlf_split_across_reads_is_one_terminator() {
        let mut f = LineFramer::new(100);
        let mut out = Vec::new();
        f.feed(b"boot ok\r", 1, &mut out);
        f.feed(b"\nlogin: ", 2, &mut out);
        assert_eq!(texts(&out), vec!["boot ok"]);
        assert_eq!(f.partial(), "login: ");
    }

    #[test]
    fn partial_lines_keep_the_time_of_their_first_byte() {
        let mut f = LineFramer::new(100);
        let mut out = Vec::new();
        f.feed(b"Linux ver", 1_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(f.partial(), "Linux ver");
        f.feed(b"sion 6.1\nnext", 2_000, &mut out);
        assert_eq!(
            out,
            vec![FramedLine {
                at_us: 1_000,
                text: "Linux version 6.1".into()
            }]
        );
        f.feed(b"\n", 3_000, &mut out);
        assert_eq!(out[1].at_us, 2_000);
        // An empty line is stamped when it ends.
        f.feed(b"\n", 4_000, &mut out);
        assert_eq!(out[2].at_us, 4_000);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_split_characters_survive() {
        let mut f = LineFramer::new(100);
        let mut out = Vec::new();
        f.feed(b"bad \xff\xfe byte\n", 1, &mut out);
        assert_eq!(out[0].text, "bad \u{FFFD}\u{FFFD} byte");
        // A multi-byte character split across two reads is whole in the line.
        let euro = "€".as_bytes();
        f.feed(&euro[..1], 2, &mut out);
        f.feed(&euro[1..], 3, &mut out);
        f.feed(b"5\n", 4, &mut out);
        assert_eq!(out[1].text, "€5");
    }

    #[test]
    fn endless_lines_are_cut() {
        let mut f = LineFramer::new(4);
        let mut out = Vec::new();
        f.feed(b"abcdefghij\n", 1, &mut out);
        assert_eq!(texts(&out), vec!["abcd", "efgh", "ij"]);
    }
}
