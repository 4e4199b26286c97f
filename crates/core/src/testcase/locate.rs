//! Where a field is written in a YAML (or JSON) document: [`Locator`] maps a field path as
//! validation reports it (`steps[3].verify_image.region`, `defaults.timeout_ms`) to its line and
//! column, so that every problem can be shown where it is, like a compiler does.
//!
//! It reads the document's structure only (block and flow mappings and sequences, plain, quoted
//! and block scalars, comments); it never fails: on anything it does not follow it keeps what it
//! read so far, and a path it cannot follow to the end is located at the deepest part it found.

/// A place in the text, 1-based; the column counts characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug)]
enum Node {
    Map(Vec<Entry>),
    Seq(Vec<Located>),
    /// A scalar; `empty` when nothing is written (`key:` with no value).
    Scalar {
        empty: bool,
    },
}

#[derive(Debug)]
struct Located {
    at: usize,
    node: Node,
}

#[derive(Debug)]
struct Entry {
    key: String,
    at: usize,
    value: Located,
}

/// A document's structure with the position of every key and value.
#[derive(Debug)]
pub struct Locator {
    /// Character index of every line's start.
    lines: Vec<usize>,
    root: Option<Located>,
}

/// One step of a field path.
#[derive(Debug, PartialEq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                out.push(Segment::Index(i));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    out
}

impl Locator {
    /// Reads the structure of `text`.
    pub fn new(text: &str) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let mut lines = vec![0];
        lines.extend(
            chars
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == '\n')
                .map(|(i, _)| i + 1),
        );
        let mut p = Parser {
            s: &chars,
            i: 0,
            lines: &lines,
        };
        p.skip_blank();
        if p.starts_with("---") && p.blank_or(p.i + 3) {
            p.i += 3;
        }
        p.skip_blank();
        let root = (p.i < chars.len()).then(|| p.block(-1));
        Locator { lines, root }
    }

    fn position(&self, at: usize) -> Position {
        let line = self.lines.partition_point(|&start| start <= at).max(1);
        Position {
            line,
            column: at - self.lines[line - 1] + 1,
        }
    }

    /// Where `path` is written: the value when it is a written scalar, otherwise the key (or the
    /// sequence item); the deepest part written when the document does not hold all of it.
    /// `None` only for an empty document.
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut node = self.root.as_ref()?;
        let mut best = node.at;
        for segment in segments(path) {
            match (segment, &node.node) {
                (Segment::Key(key), Node::Map(entries)) => {
                    let Some(e) = entries.iter().find(|e| e.key == key) else {
                        return Some(self.position(best));
                    };
                    best = e.at;
                    node = &e.value;
                }
                (Segment::Index(i), Node::Seq(items)) => {
                    let Some(item) = items.get(i) else {
                        return Some(self.position(best));
                    };
                    best = item.at;
                    node = item;
                }
                (_, Node::Scalar { empty: false }) => return Some(self.position(node.at)),
                _ => return Some(self.position(best)),
            }
        }
        if let Node::Scalar { empty: false } = node.node {
            best = node.at;
        }
        Some(self.position(best))
    }
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
    lines: &'a [usize],
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn starts_with(&self, word: &str) -> bool {
        word.chars()
            .enumerate()
            .all(|(k, c)| self.at(self.i + k) == Some(c))
    }

    /// Whether `i` is whitespace or the end.
    fn blank_or(&self, i: usize) -> bool {
        self.at(i).is_none_or(char::is_whitespace)
    }

    fn column(&self, i: usize) -> isize {
        let line = self.lines.partition_point(|&start| start <= i).max(1);
        (i - self.lines[line - 1]) as isize
    }

    fn skip_space(&mut self) {
        while matches!(self.at(self.i), Some(' ' | '\t')) {
            self.i += 1;
        }
    }

    fn skip_to_line_end(&mut self) {
        while self.at(self.i).is_some_and(|c| c != '\n') {
            self.i += 1;
        }
    }

    /// Whether only spaces and a comment remain on this line.
    fn at_line_end(&self) -> bool {
        let mut j = self.i;
        while matches!(self.at(j), Some(' ' | '\t' | '\r')) {
            j += 1;
        }
        matches!(self.at(j), None | Some('\n' | '#'))
    }

    /// Skips whitespace, line breaks and comments up to the next content.
    fn skip_blank(&mut self) {
        loop {
            match self.at(self.i) {
                Some(c) if c.is_whitespace() => self.i += 1,
                Some('#') => self.skip_to_line_end(),
                _ => return,
            }
        }
    }

    /// Skips the lines after the current one that are blank or indented deeper than `parent`
    /// (a plain scalar's continuation, a block scalar's text).
    fn skip_deeper_lines(&mut self, parent: isize) {
        self.skip_to_line_end();
        loop {
            // Stops at the start of the next content line that is not deeper.
            self.skip_blank();
            if self.i >= self.s.len() || self.column(self.i) <= parent {
                return;
            }
            self.skip_to_line_end();
        }
    }

    /// The node on the following lines, indented deeper than `parent`.
    fn block(&mut self, parent: isize) -> Located {
        let start = self.i;
        self.skip_blank();
        if self.i >= self.s.len() || self.column(self.i) <= parent {
            return Located {
                at: start,
                node: Node::Scalar { empty: true },
            };
        }
        self.here(parent)
    }

    /// The node starting at the current position, inside a block whose indentation is `parent`.
    fn here(&mut self, parent: isize) -> Located {
        // Anchors and tags come before the node.
        while matches!(self.at(self.i), Some('&' | '!')) {
            while !self.blank_or(self.i) {
                self.i += 1;
            }
            self.skip_space();
            if self.at_line_end() {
                return self.block(parent);
            }
        }
        let at = self.i;
        let column = self.column(at);
        match self.at(at) {
            Some('-') if self.blank_or(at + 1) => self.block_seq(column),
            Some('[' | '{') => {
                let node = self.flow();
                self.skip_deeper_lines(parent);
                node
            }
            Some('|' | '>') => {
                self.skip_deeper_lines(parent);
                Located {
                    at,
                    node: Node::Scalar { empty: false },
                }
            }
            _ if self.key_ahead().is_some() => self.block_map(column),
            _ => {
                if matches!(self.at(at), Some('"' | '\'')) {
                    self.quoted();
                }
                self.skip_deeper_lines(parent);
                Located {
                    at,
                    node: Node::Scalar { empty: false },
                }
            }
        }
    }

    /// Reads a quoted scalar at the position (which may span lines); returns its text.
    fn quoted(&mut self) -> String {
        let quote = self.at(self.i);
        self.i += 1;
        let mut text = String::new();
        while let Some(c) = self.at(self.i) {
            self.i += 1;
            match c {
                '\\' if quote == Some('"') => {
                    if let Some(next) = self.at(self.i) {
                        text.push(next);
                        self.i += 1;
                    }
                }
                '\'' if quote == Some('\'') && self.at(self.i) == Some('\'') => {
                    text.push('\'');
                    self.i += 1;
                }
                c if Some(c) == quote => break,
                c => text.push(c),
            }
        }
        text
    }

    /// When a block mapping key starts here: the key and the index just past its `:`.
    fn key_ahead(&self) -> Option<(String, usize)> {
        let mut p = Parser {
            s: self.s,
            i: self.i,
            lines: self.lines,
        };
        let key = if matches!(p.at(p.i), Some('"' | '\'')) {
            let k = p.quoted();
            p.skip_space();
            k
        } else {
            let begin = p.i;
            loop {
                match p.at(p.i) {
                    None | Some('\n') => return None,
                    Some(':') if p.blank_or(p.i + 1) => break,
                    Some('#') if p.i > begin && p.blank_or(p.i - 1) => return None,
                    _ => p.i += 1,
                }
            }
            p.s[begin..p.i].iter().collect::<String>().trim().to_owned()
        };
        (p.at(p.i) == Some(':') && p.blank_or(p.i + 1)).then_some((key, p.i + 1))
    }

    fn block_map(&mut self, column: isize) -> Located {
        let at = self.i;
        let mut entries = Vec::new();
        while let Some((key, after)) = self.key_ahead() {
            let key_at = self.i;
            self.i = after;
            self.skip_space();
            let value = if self.at_line_end() {
                let save = self.i;
                self.skip_blank();
                let same_column_seq = self.i < self.s.len()
                    && self.column(self.i) == column
                    && self.at(self.i) == Some('-')
                    && self.blank_or(self.i + 1);
                if same_column_seq {
                    self.block_seq(column)
                } else {
                    self.i = save;
                    let mut v = self.block(column);
                    if let Node::Scalar { empty: true } = v.node {
                        v.at = key_at;
                    }
                    v
                }
            } else {
                self.here(column)
            };
            entries.push(Entry {
                key,
                at: key_at,
                value,
            });
            self.skip_blank();
            if self.i >= self.s.len() || self.column(self.i) != column {
                break;
            }
        }
        Located {
            at,
            node: Node::Map(entries),
        }
    }

    fn block_seq(&mut self, column: isize) -> Located {
        let at = self.i;
        let mut items = Vec::new();
        while self.at(self.i) == Some('-') && self.blank_or(self.i + 1) {
            let dash = self.i;
            self.i += 1;
            self.skip_space();
            let item = if self.at_line_end() {
                let mut v = self.block(column);
                if let Node::Scalar { empty: true } = v.node {
                    v.at = dash;
                }
                v
            } else {
                self.here(column)
            };
            items.push(item);
            self.skip_blank();
            if self.i >= self.s.len() || self.column(self.i) != column {
                break;
            }
        }
        Located {
            at,
            node: Node::Seq(items),
        }
    }

    /// A flow node (`{...}`, `[...]` or a scalar inside them); may span lines.
    fn flow(&mut self) -> Located {
        self.skip_blank();
        let at = self.i;
        match self.at(at) {
            Some('{') => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    self.skip_blank();
                    match self.at(self.i) {
                        None => break,
                        Some('}') => {
                            self.i += 1;
                            break;
                        }
                        Some(',') => {
                            self.i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    let key_at = self.i;
                    let key = self.flow_scalar();
                    self.skip_blank();
                    let value = if self.at(self.i) == Some(':') {
                        self.i += 1;
                        self.flow()
                    } else {
                        Located {
                            at: key_at,
                            node: Node::Scalar { empty: true },
                        }
                    };
                    entries.push(Entry {
                        key,
                        at: key_at,
                        value,
                    });
                    if self.i == key_at {
                        // Nothing was read: never loop in place.
                        self.i += 1;
                    }
                }
                Located {
                    at,
                    node: Node::Map(entries),
                }
            }
            Some('[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_blank();
                    match self.at(self.i) {
                        None => break,
                        Some(']') => {
                            self.i += 1;
                            break;
                        }
                        Some(',') => {
                            self.i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    let before = self.i;
                    items.push(self.flow());
                    self.skip_blank();
                    if self.at(self.i) == Some(':') {
                        // A single-pair mapping as an item: its value is not looked into.
                        self.i += 1;
                        self.flow();
                    }
                    if self.i == before {
                        self.i += 1;
                    }
                }
                Located {
                    at,
                    node: Node::Seq(items),
                }
            }
            _ => {
                let text = self.flow_scalar();
                Located {
                    at,
                    node: Node::Scalar {
                        empty: text.is_empty(),
                    },
                }
            }
        }
    }

    /// A scalar inside a flow collection: quoted, or plain up to `,`, `:`, a bracket or the line end.
    fn flow_scalar(&mut self) -> String {
        if matches!(self.at(self.i), Some('"' | '\'')) {
            return self.quoted();
        }
        let begin = self.i;
        while let Some(c) = self.at(self.i) {
            if matches!(c, ',' | '[' | ']' | '{' | '}' | '\n')
                || (c == ':'
                    && (self.blank_or(self.i + 1)
                        || self.s.get(self.i + 1).is_some_and(|n| ",[]{}".contains(*n))))
                || (c == '#' && self.i > begin && self.blank_or(self.i - 1))
            {
                break;
            }
            self.i += 1;
        }
        self.s[begin..self.i]
            .iter()
            .collect::<String>()
            .trim()
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    const TEST: &str = "\
# a comment
name: Open Settings   # trailing comment
description: |
  A block of text
  name: not a key
defaults:
  timeout_ms: 0
steps:
  - goto: home
  - verify_image: {reference: settings-title, region: {x: 67, y: 96, width: 356, height: 56}}
    timeout_ms: 3000
  - press:
      key: okk
      repeat: 3
  - repeat:
      count: 2
      steps:
      - press: down
      - wait: 0
";

    #[test]
    fn block_keys_and_values_are_found() {
        let l = Locator::new(TEST);
        assert_eq!(l.find("name"), at(2, 7));
        assert_eq!(l.find("description"), at(3, 14));
        assert_eq!(l.find("defaults"), at(6, 1));
        assert_eq!(l.find("defaults.timeout_ms"), at(7, 15));
        assert_eq!(l.find("steps"), at(8, 1));
        assert_eq!(l.find("steps[0]"), at(9, 5));
        assert_eq!(l.find("steps[0].goto"), at(9, 11));
        assert_eq!(l.find("steps[1].timeout_ms"), at(11, 17));
        assert_eq!(l.find("steps[2].press.key"), at(13, 12));
        assert_eq!(l.find("steps[2].press.repeat"), at(14, 15));
    }

    #[test]
    fn flow_mappings_nested_repeats_and_sequences_at_the_key_column() {
        let l = Locator::new(TEST);
        assert_eq!(l.find("steps[1].verify_image.reference"), at(10, 31));
        assert_eq!(l.find("steps[1].verify_image.region"), at(10, 47));
        assert_eq!(l.find("steps[1].verify_image.region.width"), at(10, 77));
        assert_eq!(l.find("steps[3].repeat.count"), at(16, 14));
        assert_eq!(l.find("steps[3].repeat.steps[1]"), at(19, 9));
        assert_eq!(l.find("steps[3].repeat.steps[1].wait"), at(19, 15));
    }

    #[test]
    fn a_path_the_text_does_not_hold_stops_at_its_deepest_part() {
        let l = Locator::new(TEST);
        // The region is not written: the action is where the problem is.
        assert_eq!(l.find("steps[0].goto.region"), at(9, 11));
        assert_eq!(l.find("steps[2].press.hold_ms"), at(12, 5));
        assert_eq!(l.find("steps[9]"), at(8, 1));
        assert_eq!(l.find("defaults.threshold"), at(6, 1));
        assert_eq!(l.find("nothing"), at(2, 1));
        assert_eq!(Locator::new("").find("name"), None);
        assert_eq!(Locator::new("# only a comment\n").find("name"), None);
    }

    #[test]
    fn json_and_quoted_keys_are_read_too() {
        let json = "{\n  \"name\": \"x\",\n  \"steps\": [\n    {\"press\": \"ok\"},\n    {\"wait\": 0}\n  ]\n}\n";
        let l = Locator::new(json);
        assert_eq!(l.find("name"), at(2, 11));
        assert_eq!(l.find("steps[1].wait"), at(5, 14));
        let quoted = "---\n'name': \"a: b # c\"\nsteps:\n- \"press\": ok\n";
        let l = Locator::new(quoted);
        assert_eq!(l.find("name"), at(2, 9));
        assert_eq!(l.find("steps[0].press"), at(4, 12));
    }

    #[test]
    fn never_loops_or_panics_on_junk() {
        for junk in [
            "{",
            "[",
            "- - -",
            ": :",
            "a: [1, {b: }, ]]]",
            "{a: b: c}",
            "key: 'open",
            "\"",
            "- a\n b: c\n- : d",
            "&x a: *x",
            "!tag {a: 1}",
            "a:\n\t- b",
            "a: |\n\n  x\nb: 1",
            "é: ü\n",
            "[a, b]: c",
        ] {
            let l = Locator::new(junk);
            let _ = l.find("a.b[0].c");
            let _ = l.find("steps[0]");
        }
    }

    #[test]
    fn paths_are_split_into_keys_and_indices() {
        assert_eq!(
            segments("steps[2].repeat.steps[0]"),
            vec![
                Segment::Key("steps"),
                Segment::Index(2),
                Segment::Key("repeat"),
                Segment::Key("steps"),
                Segment::Index(0)
            ]
        );
        assert_eq!(
            segments("m[1][2]"),
            vec![Segment::Key("m"), Segment::Index(1), Segment::Index(2)]
        );
    }
}
