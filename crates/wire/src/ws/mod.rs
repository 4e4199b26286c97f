//! The WebSocket protocols' control messages and close codes: the terminal
//! ([`terminal`], `docs/terminal.md`) and the live view and events sockets ([`live`],
//! `docs/live-view.md`). Codes both share are defined once in [`close`].

/// One close code of a protocol: its constant's name, the code and what it means (the constant's
/// doc comment). The web UI's close codes are generated from these lists (`rest::typescript`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseCode {
    pub name: &'static str,
    pub code: u16,
    pub doc: &'static str,
}

/// Declares close codes: a `pub const` per code and `OWN`, the list of them with their names and
/// doc comments.
macro_rules! close_codes {
    ($($(#[doc = $doc:literal])+ $name:ident = $code:literal;)+) => {
        $($(#[doc = $doc])+ pub const $name: u16 = $code;)+
        /// The codes declared here (not the re-exported ones), with their names and meanings.
        pub const OWN: &[$crate::ws::CloseCode] = &[$($crate::ws::CloseCode {
            name: stringify!($name),
            code: $code,
            doc: concat!($($doc),+),
        }),+];
    };
}

pub mod live;
pub mod terminal;

/// Close codes with one meaning in every Labwright WebSocket protocol (stable; clients show the
/// reason that comes with them).
pub mod close {
    close_codes! {
        /// The peer ended normally (the shell exited, the user or viewer left).
        NORMAL = 1000;
        /// The server is shutting down or restarting: reconnect.
        GOING_AWAY = 1001;
        /// The peer broke the WebSocket protocol.
        PROTOCOL_ERROR = 1002;
        /// A frame over the size limit.
        TOO_BIG = 1009;
        /// The server failed (a peer it needs is unreachable, ...).
        INTERNAL = 1011;
        /// A message from the client that is not valid JSON of a known type, or out of range.
        BAD_MESSAGE = 4400;
        /// The key that opened the socket (or signed its ticket) was revoked.
        KEY_REVOKED = 4411;
    }
}

/// How long a close frame may wait for room in the send queue: a client that stopped reading
/// must not hold its socket forever.
#[cfg(feature = "actix-ws")]
pub const CLOSE_SEND: std::time::Duration = std::time::Duration::from_secs(5);

/// Closes `ws` with `code` and `reason`, waiting at most [`CLOSE_SEND`].
#[cfg(feature = "actix-ws")]
pub async fn close_with(ws: actix_ws::Session, code: u16, reason: impl Into<String>) {
    let _ = tokio::time::timeout(
        CLOSE_SEND,
        ws.close(Some(actix_ws::CloseReason {
            code: actix_ws::CloseCode::from(code),
            description: Some(reason.into()),
        })),
    )
    .await;
}

/// `text` cut to at most `max` bytes, never inside a character (error messages quote input).
fn shorten(text: &str, max: usize) -> &str {
    let end = text
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|&end| end <= max)
        .last()
        .unwrap_or(0);
    &text[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn shorten_never_splits_a_character() {
        assert_eq!(super::shorten("abc", 10), "abc");
        assert_eq!(super::shorten("abcé", 4), "abc");
        assert_eq!(super::shorten("ééé", 5), "éé");
        assert_eq!(super::shorten("é", 1), "");
    }
}
