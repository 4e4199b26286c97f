//! What `getprop` and `wm size` print, parsed: pure functions over Android's output formats.

use std::collections::BTreeMap;

/// The properties a device reports through `getprop`, and the few the fleet shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AndroidProps {
    /// Every `[key]: [value]` line.
    pub all: BTreeMap<String, String>,
}

impl AndroidProps {
    fn get(&self, key: &str) -> Option<&str> {
        self.all
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `ro.product.model` (e.g. `Pixel 7`).
    pub fn model(&self) -> Option<&str> {
        self.get("ro.product.model")
    }

    pub fn manufacturer(&self) -> Option<&str> {
        self.get("ro.product.manufacturer")
    }

    /// `ro.build.version.release` (e.g. `14`).
    pub fn android_version(&self) -> Option<&str> {
        self.get("ro.build.version.release")
    }

    /// `ro.build.version.sdk` (e.g. `34`).
    pub fn sdk(&self) -> Option<&str> {
        self.get("ro.build.version.sdk")
    }

    /// `ro.serialno`, else `ro.boot.serialno`.
    pub fn serial(&self) -> Option<&str> {
        self.get("ro.serialno")
            .or_else(|| self.get("ro.boot.serialno"))
    }

    /// One line for the fleet: `Pixel 7 · Android 14 (API 34) · serial 1A2B3C`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        match (self.manufacturer(), self.model()) {
            (Some(m), Some(model)) if !model.starts_with(m) => parts.push(format!("{m} {model}")),
            (_, Some(model)) => parts.push(model.to_string()),
            _ => {}
        }
        match (self.android_version(), self.sdk()) {
            (Some(v), Some(sdk)) => parts.push(format!("Android {v} (API {sdk})")),
            (Some(v), None) => parts.push(format!("Android {v}")),
            _ => {}
        }
        if let Some(s) = self.serial() {
            parts.push(format!("serial {s}"));
        }
        parts.join(" · ")
    }
}

/// Parses `getprop`'s listing: `[ro.product.model]: [Pixel 7]` per line. Values may span lines
/// (a `[` opened and closed later); lines that are not properties are skipped.
pub fn parse_getprop(text: &str) -> AndroidProps {
    let mut all = BTreeMap::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find("]: [") else {
            break;
        };
        let key = &rest[..close];
        rest = &rest[close + 4..];
        // The value ends at the first `]` followed by a line end (or the end of the text).
        let mut end = None;
        let mut from = 0;
        while let Some(i) = rest[from..].find(']') {
            let at = from + i;
            let after = &rest[at + 1..];
            if after.is_empty() || after.starts_with('\n') || after.starts_with("\r\n") {
                end = Some(at);
                break;
            }
            from = at + 1;
        }
        let Some(end) = end else { break };
        let value = &rest[..end];
        rest = &rest[end + 1..];
        if !key.is_empty() && !key.contains(['\n', '[', ']']) {
            all.insert(key.to_string(), value.to_string());
        }
    }
    AndroidProps { all }
}

/// Parses `wm size`: `Physical size: 1080x2400`, and `Override size: …` which wins when set.
pub fn parse_wm_size(text: &str) -> Option<(u32, u32)> {
    let size = |prefix: &str| {
        text.lines().find_map(|l| {
            let v = l.trim().strip_prefix(prefix)?.trim();
            let (w, h) = v.split_once('x')?;
            let (w, h) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
            (w > 0 && h > 0).then_some((w, h))
        })
    };
    size("Override size:").or_else(|| size("Physical size:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getprop_listing_is_parsed() {
        let text = "[dalvik.vm.heapsize]: [512m]\n\
                    [ro.build.version.release]: [14]\n\
                    [ro.build.version.sdk]: [34]\n\
                    [ro.product.manufacturer]: [Google]\n\
                    [ro.product.model]: [Pixel 7]\n\
                    [ro.serialno]: [1A2B3C]\n\
                    [persist.multi]: [line one\nline [two]]\n\
                    garbage line\n\
                    [ro.empty]: []\r\n";
        let p = parse_getprop(text);
        assert_eq!(p.model(), Some("Pixel 7"));
        assert_eq!(p.android_version(), Some("14"));
        assert_eq!(p.serial(), Some("1A2B3C"));
        assert_eq!(
            p.all.get("persist.multi").map(String::as_str),
            Some("line one\nline [two]")
        );
        assert_eq!(p.all.get("ro.empty").map(String::as_str), Some(""));
        assert_eq!(
            p.all.get("dalvik.vm.heapsize").map(String::as_str),
            Some("512m")
        );
        assert_eq!(
            p.summary(),
            "Google Pixel 7 · Android 14 (API 34) · serial 1A2B3C"
        );
    }

    #[test]
    fn broken_getprop_output_never_panics() {
        for text in [
            "",
            "[",
            "[a]: [",
            "[a]: [b",
            "]]]: [[[",
            "[]: [x]\n",
            "[a]: [b]x",
        ] {
            let _ = parse_getprop(text);
        }
        assert_eq!(parse_getprop("[]: [x]\n").all.len(), 0);
        assert_eq!(AndroidProps::default().summary(), "");
    }

    #[test]
    fn wm_size_prefers_the_override() {
        assert_eq!(
            parse_wm_size("Physical size: 1080x2400\n"),
            Some((1080, 2400))
        );
        assert_eq!(
            parse_wm_size("Physical size: 1080x2400\nOverride size: 720x1600\n"),
            Some((720, 1600))
        );
        assert_eq!(parse_wm_size("wm: not found"), None);
        assert_eq!(parse_wm_size("Physical size: 0x10"), None);
    }
}
