//! The UI hierarchy Android's `uiautomator dump` writes, parsed without an XML library: every
//! `<node …>` with its attributes (entities decoded) and its `bounds="[x1,y1][x2,y2]"` as a
//! [`Rect`]. [`find`] looks an element up by text, resource id or content description; when
//! nothing matches, the error lists the closest candidates so a test author sees what is on the
//! screen.
//!
//! Input comes from a device and is untrusted: sizes are capped, nothing panics, and a document
//! without a `<hierarchy>` is an error.

use serde::{Deserialize, Serialize};

use crate::frame::Rect;

/// Largest dump accepted (a busy screen is ~100 KiB).
pub const MAX_DUMP_BYTES: usize = 8 << 20;
/// Most nodes accepted.
pub const MAX_NODES: usize = 20_000;

/// One element of the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UiNode {
    pub text: String,
    pub resource_id: String,
    pub content_desc: String,
    pub class: String,
    pub package: String,
    pub clickable: bool,
    pub enabled: bool,
    pub focused: bool,
    /// On-screen bounds (empty when the dump has none).
    pub bounds: Rect,
}

impl Default for UiNode {
    fn default() -> Self {
        UiNode {
            text: String::new(),
            resource_id: String::new(),
            content_desc: String::new(),
            class: String::new(),
            package: String::new(),
            clickable: false,
            enabled: false,
            focused: false,
            bounds: Rect::new(0, 0, 0, 0),
        }
    }
}

impl UiNode {
    /// The centre of the element: where a tap lands.
    pub fn center(&self) -> (u32, u32) {
        (
            self.bounds.x + self.bounds.width / 2,
            self.bounds.y + self.bounds.height / 2,
        )
    }

    /// How the element is named in messages: its text, else id, else description, else class.
    pub fn label(&self) -> String {
        if !self.text.is_empty() {
            format!("text {:?}", self.text)
        } else if !self.resource_id.is_empty() {
            format!("resource_id {:?}", self.resource_id)
        } else if !self.content_desc.is_empty() {
            format!("content_desc {:?}", self.content_desc)
        } else {
            format!("a {}", self.class)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UiError {
    #[error("ui dump is not a uiautomator hierarchy: {0}")]
    Malformed(String),
    #[error("ui dump is too large ({0})")]
    TooLarge(String),
}

/// What identifies an element. Every given field must match exactly; at least one is given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `com.example:id/button` (a bare `button` matches the id part after `:id/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_desc: Option<String>,
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.text.is_none() && self.resource_id.is_none() && self.content_desc.is_none()
    }

    pub fn matches(&self, n: &UiNode) -> bool {
        !self.is_empty()
            && self.text.as_ref().is_none_or(|t| *t == n.text)
            && self
                .content_desc
                .as_ref()
                .is_none_or(|d| *d == n.content_desc)
            && self.resource_id.as_ref().is_none_or(|id| {
                *id == n.resource_id
                    || (!id.contains(":id/")
                        && n.resource_id
                            .split_once(":id/")
                            .is_some_and(|(_, short)| short == id))
            })
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.text {
            parts.push(format!("text {t:?}"));
        }
        if let Some(t) = &self.resource_id {
            parts.push(format!("resource_id {t:?}"));
        }
        if let Some(t) = &self.content_desc {
            parts.push(format!("content_desc {t:?}"));
        }
        f.write_str(&parts.join(" and "))
    }
}

/// Parses a dump into its nodes, in document order.
pub fn parse(xml: &str) -> Result<Vec<UiNode>, UiError> {
    if xml.len() > MAX_DUMP_BYTES {
        return Err(UiError::TooLarge(format!(
            "{} bytes, at most {MAX_DUMP_BYTES}",
            xml.len()
        )));
    }
    if !xml.contains("<hierarchy") {
        return Err(UiError::Malformed("no <hierarchy> element".into()));
    }
    let mut nodes = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<node") {
        rest = &rest[at + "<node".len()..];
        if !rest.starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            continue;
        }
        let (attrs, after) = read_attributes(rest)?;
        rest = after;
        if nodes.len() == MAX_NODES {
            return Err(UiError::TooLarge(format!("more than {MAX_NODES} nodes")));
        }
        let mut n = UiNode::default();
        for (k, v) in attrs {
            match k {
                "text" => n.text = v,
                "resource-id" => n.resource_id = v,
                "content-desc" => n.content_desc = v,
                "class" => n.class = v,
                "package" => n.package = v,
                "clickable" => n.clickable = v == "true",
                "enabled" => n.enabled = v == "true",
                "focused" => n.focused = v == "true",
                "bounds" => n.bounds = parse_bounds(&v).unwrap_or(Rect::new(0, 0, 0, 0)),
                _ => {}
            }
        }
        nodes.push(n);
    }
    Ok(nodes)
}

/// A tag's attributes (name, decoded value) and the text after the tag.
type Attributes<'a> = (Vec<(&'a str, String)>, &'a str);

/// Reads `name="value"` pairs up to the tag's end.
fn read_attributes(mut s: &str) -> Result<Attributes<'_>, UiError> {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix("/>").or_else(|| s.strip_prefix('>')) {
            return Ok((attrs, r));
        }
        let eq = s
            .find('=')
            .ok_or_else(|| UiError::Malformed("a <node> tag is not closed".into()))?;
        let name = s[..eq].trim();
        if name.is_empty()
            || name.contains(['<', '>', '"', '\''])
            || name.contains(char::is_whitespace)
        {
            return Err(UiError::Malformed(format!("bad attribute name {name:?}")));
        }
        s = s[eq + 1..].trim_start();
        let quote = s
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| UiError::Malformed(format!("attribute {name} is not quoted")))?;
        s = &s[1..];
        let end = s
            .find(quote)
            .ok_or_else(|| UiError::Malformed(format!("attribute {name} is not closed")))?;
        attrs.push((name, unescape(&s[..end])));
        s = &s[end + 1..];
    }
}

/// Decodes XML's five named entities and numeric character references.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|e| *e <= 12).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `[x1,y1][x2,y2]` as a rectangle.
pub fn parse_bounds(s: &str) -> Option<Rect> {
    let nums: Vec<u32> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    let [x1, y1, x2, y2] = nums[..] else {
        return None;
    };
    (x2 >= x1 && y2 >= y1).then(|| Rect {
        x: x1,
        y: y1,
        width: x2 - x1,
        height: y2 - y1,
    })
}

/// No element matched; `closest` names the most similar ones on the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotFound {
    pub selector: Selector,
    pub closest: Vec<String>,
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no element with {}", self.selector)?;
        if self.closest.is_empty() {
            write!(f, " (the screen has no element with such an attribute)")
        } else {
            write!(f, "; closest: {}", self.closest.join(", "))
        }
    }
}

/// The first element matching `selector` (document order), or the closest candidates.
pub fn find<'n>(nodes: &'n [UiNode], selector: &Selector) -> Result<&'n UiNode, NotFound> {
    if let Some(n) = nodes.iter().find(|n| selector.matches(n)) {
        return Ok(n);
    }
    Err(NotFound {
        selector: selector.clone(),
        closest: closest(nodes, selector, 3),
    })
}

/// Up to `max` distinct attribute values most like the selector's (edit distance, ties by order).
pub fn closest(nodes: &[UiNode], selector: &Selector, max: usize) -> Vec<String> {
    let mut scored: Vec<(usize, String)> = Vec::new();
    type Field<'s> = (&'s Option<String>, &'static str, fn(&UiNode) -> &str);
    let fields: [Field<'_>; 3] = [
        (&selector.text, "text", |n| &n.text),
        (&selector.resource_id, "resource_id", |n| &n.resource_id),
        (&selector.content_desc, "content_desc", |n| &n.content_desc),
    ];
    for (want, name, get) in fields {
        let Some(want) = want else { continue };
        for n in nodes {
            let have = get(n);
            if have.is_empty() {
                continue;
            }
            let label = format!("{name} {have:?}");
            if scored.iter().any(|(_, l)| *l == label) {
                continue;
            }
            scored.push((distance(&want.to_lowercase(), &have.to_lowercase()), label));
        }
    }
    scored.sort_by_key(|(d, _)| *d);
    scored.into_iter().take(max).map(|(_, l)| l).collect()
}

/// Levenshtein distance over the first 200 characters of each side.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(200).collect();
    let b: Vec<char> = b.chars().take(200).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = r#"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation="0"><node index="0" text="" resource-id="" class="android.widget.FrameLayout" package="com.labwright.demo" content-desc="" clickable="false" enabled="true" focused="false" bounds="[0,0][1080,2400]"><node index="0" text="Say hello" resource-id="com.labwright.demo:id/hello" class="android.widget.Button" package="com.labwright.demo" content-desc="" clickable="true" enabled="true" focused="false" bounds="[100,200][500,300]" /><node index="1" text="Tom &amp; Jerry &lt;3 &#233;" resource-id="com.labwright.demo:id/name" class="android.widget.EditText" package="com.labwright.demo" content-desc="Your name" clickable="true" enabled="true" focused="true" bounds="[100,400][980,500]" /><node index="2" text="Settings" resource-id="" class="android.widget.TextView" package="com.labwright.demo" content-desc="" clickable="false" enabled="true" focused="false" bounds="[0,2200][1080,2400]" /></node></hierarchy>"#;

    #[test]
    fn a_dump_is_parsed_into_nodes_with_bounds() {
        let nodes = parse(DUMP).expect("dump");
        assert_eq!(nodes.len(), 4);
        let b = &nodes[1];
        assert_eq!(b.text, "Say hello");
        assert_eq!(b.resource_id, "com.labwright.demo:id/hello");
        assert!(b.clickable && b.enabled && !b.focused);
        assert_eq!(
            b.bounds,
            Rect {
                x: 100,
                y: 200,
                width: 400,
                height: 100
            }
        );
        assert_eq!(b.center(), (300, 250));
        assert_eq!(nodes[2].text, "Tom & Jerry <3 é");
        assert_eq!(nodes[2].content_desc, "Your name");
    }

    #[test]
    fn elements_are_found_by_text_id_or_description() {
        let nodes = parse(DUMP).expect("dump");
        let by = |text: Option<&str>, id: Option<&str>, desc: Option<&str>| Selector {
            text: text.map(String::from),
            resource_id: id.map(String::from),
            content_desc: desc.map(String::from),
        };
        assert_eq!(
            find(&nodes, &by(Some("Say hello"), None, None))
                .expect("text")
                .center(),
            (300, 250)
        );
        assert_eq!(
            find(&nodes, &by(None, Some("hello"), None))
                .expect("short id")
                .text,
            "Say hello"
        );
        assert_eq!(
            find(&nodes, &by(None, Some("com.labwright.demo:id/name"), None))
                .expect("id")
                .content_desc,
            "Your name"
        );
        assert_eq!(
            find(&nodes, &by(None, None, Some("Your name")))
                .expect("desc")
                .resource_id,
            "com.labwright.demo:id/name"
        );
        // Every given field must match.
        assert!(find(&nodes, &by(Some("Say hello"), Some("name"), None)).is_err());
        assert!(find(&nodes, &Selector::default()).is_err());
    }

    #[test]
    fn a_missing_element_lists_the_closest_ones() {
        let nodes = parse(DUMP).expect("dump");
        let sel = Selector {
            text: Some("Say helo".into()),
            ..Selector::default()
        };
        let e = find(&nodes, &sel).expect_err("missing");
        assert_eq!(e.closest[0], "text \"Say hello\"");
        assert_eq!(e.closest.len(), 3);
        assert_eq!(
            e.to_string(),
            "no element with text \"Say helo\"; closest: text \"Say hello\", text \"Settings\", text \"Tom & Jerry <3 é\""
        );
        let sel = Selector {
            content_desc: Some("x".into()),
            ..Selector::default()
        };
        assert_eq!(
            find(&nodes, &sel).expect_err("none").closest,
            vec!["content_desc \"Your name\""]
        );
    }

    #[test]
    fn bad_dumps_are_errors_never_panics() {
        assert!(matches!(
            parse("ERROR: could not get idle state."),
            Err(UiError::Malformed(_))
        ));
        assert!(matches!(
            parse("<hierarchy><node text=\"a"),
            Err(UiError::Malformed(_))
        ));
        assert!(matches!(
            parse("<hierarchy><node text=a>"),
            Err(UiError::Malformed(_))
        ));
        assert_eq!(
            parse("<hierarchy><nodes/></hierarchy>").expect("no nodes"),
            vec![]
        );
        let big = "x".repeat(MAX_DUMP_BYTES + 1);
        assert!(matches!(parse(&big), Err(UiError::TooLarge(_))));
        assert_eq!(parse_bounds("[1,2][3]"), None);
        assert_eq!(parse_bounds("[5,5][1,1]"), None);
        assert_eq!(unescape("a &bogus; &#xZZ; &"), "a &bogus; &#xZZ; &");
        // Random cuts of a real dump never panic.
        for end in 0..DUMP.len() {
            if DUMP.is_char_boundary(end) {
                let _ = parse(&DUMP[..end]);
            }
        }
    }
}
