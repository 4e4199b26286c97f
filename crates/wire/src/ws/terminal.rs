//! The terminal protocol (`docs/terminal.md`): binary frames carry terminal bytes both ways; text
//! frames carry one JSON control message each ([`Control`] from the client: `resize`, `ping`;
//! [`Event`] from the gateway: `ready`, `pong`, `exit`). The ticket that opens a terminal is
//! core's (`labwright_core::terminal`).

use serde::{Deserialize, Serialize};

/// WebSocket close codes of the terminal protocol (stable; the web UI and CLI show the reason
/// that comes with them).
pub mod close {
    pub use super::super::close::{
        BAD_MESSAGE, GOING_AWAY, INTERNAL, KEY_REVOKED, NORMAL, PROTOCOL_ERROR, TOO_BIG,
    };

    close_codes! {
        /// No ticket, or a malformed or forged one.
        BAD_TICKET = 4401;
        /// The ticket expired before it was used.
        TICKET_EXPIRED = 4402;
        /// The ticket is for another session than the one in the URL.
        OTHER_SESSION = 4403;
        /// The session's container does not exist (or is not the ticket's tenant's).
        NO_SESSION = 4404;
        /// No input for the idle timeout, or the client stopped answering pings.
        IDLE = 4408;
        /// The ticket was used already.
        TICKET_REUSED = 4409;
        /// The session's container stopped (ended, expired, or killed).
        SESSION_ENDED = 4410;
        /// The session's app ended by itself (the reason says how: its exit code, a signal, or
        /// running out of memory); the session is `exited` and can be restarted.
        APP_EXITED = 4412;
        /// The tenant (or the gateway) has as many terminals open as allowed.
        TOO_MANY = 4429;
    }
}

/// Largest text (control) frame accepted.
pub const MAX_CONTROL_LEN: usize = 1024;
/// Largest terminal, in columns and rows.
pub const MAX_DIMENSION: u16 = 1000;

/// A control message from the client.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Control {
    /// Applied to the terminal (the shell gets SIGWINCH).
    Resize { cols: u16, rows: u16 },
    /// Answered with a `pong` carrying the same `id` (clients measure latency with it).
    Ping {
        #[serde(default)]
        id: Option<f64>,
    },
}

impl Control {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_CONTROL_LEN {
            return Err(format!(
                "control message of {} bytes (at most {MAX_CONTROL_LEN})",
                text.len()
            ));
        }
        let c: Control = serde_json::from_str(text).map_err(|e| {
            format!(
                "bad control message: {}",
                super::shorten(&e.to_string(), 80)
            )
        })?;
        if let Control::Resize { cols, rows } = c
            && !((1..=MAX_DIMENSION).contains(&cols) && (1..=MAX_DIMENSION).contains(&rows))
        {
            return Err(format!(
                "resize: cols and rows must be between 1 and {MAX_DIMENSION}"
            ));
        }
        Ok(c)
    }
}

/// A control message from the gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// The shell is attached with this size.
    Ready { cols: u16, rows: u16 },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<f64>,
    },
    /// The shell exited with this code (sent just before the close).
    Exit { code: i64 },
}

impl Event {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_parse_or_say_why() {
        assert_eq!(
            Control::parse(r#"{"type":"resize","cols":120,"rows":40}"#),
            Ok(Control::Resize {
                cols: 120,
                rows: 40
            })
        );
        assert_eq!(
            Control::parse(r#"{"type":"ping","id":12.5}"#),
            Ok(Control::Ping { id: Some(12.5) })
        );
        assert_eq!(
            Control::parse(r#"{"type":"ping"}"#),
            Ok(Control::Ping { id: None })
        );
        for bad in [
            "",
            "hello",
            "{}",
            r#"{"type":"resize","cols":0,"rows":40}"#,
            r#"{"type":"resize","cols":80,"rows":1001}"#,
            r#"{"type":"resize","cols":-1,"rows":10}"#,
            r#"{"type":"resize","cols":80}"#,
            r#"{"type":"exec","cmd":"rm"}"#,
            r#"{"type":"ping","id":1,"extra":true}"#,
        ] {
            assert!(Control::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Control::parse(&" ".repeat(MAX_CONTROL_LEN + 1)).is_err());
        // The error quotes the input: cut where a character would be split, it must not panic.
        let tricky = format!(r#"{{"type":"{}é"}}"#, "a".repeat(62));
        for n in 0..8 {
            let t = format!("{}{tricky}", " ".repeat(n));
            assert!(Control::parse(&t).is_err());
        }
        assert_eq!(
            Event::Pong { id: Some(3.0) }.to_json(),
            r#"{"type":"pong","id":3.0}"#
        );
        assert_eq!(
            Event::Exit { code: 2 }.to_json(),
            r#"{"type":"exit","code":2}"#
        );
    }
}
