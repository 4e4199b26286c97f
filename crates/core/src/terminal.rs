//! Terminals into sandbox sessions: the ticket the api-server signs and the terminal gateway
//! verifies (no database between them), the JSON control messages of the WebSocket protocol,
//! its close codes, and the UTF-8 framing rule for terminal output.
//!
//! The protocol (`docs/terminal.md`): binary frames carry terminal bytes both ways; text frames
//! carry one JSON control message each (`resize`, `ping` from the client; `ready`, `pong`,
//! `exit` from the gateway).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// Seconds a ticket is valid after it is issued.
pub const TICKET_TTL_SECS: i64 = 30;
/// A ticket that claims to live longer than this is refused whoever signed it.
const MAX_TICKET_TTL_SECS: i64 = 300;
/// Longest ticket accepted (a real one is ~330 bytes).
const MAX_TICKET_LEN: usize = 1024;
/// Shortest shared secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;
const VERSION: &str = "v1";

/// What a ticket lets its bearer do: open one terminal, once, into one session's container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketClaims {
    /// Unique id: the gateway refuses a second use.
    pub jti: Uuid,
    pub tenant: Uuid,
    pub session: Uuid,
    /// The session's container id (the gateway checks its labels too).
    pub container: String,
    /// The API key that asked for it (audit, recordings).
    pub key: Uuid,
    /// Unix seconds after which the ticket is refused.
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket is malformed")]
    Malformed,
    #[error("the ticket's signature is not valid")]
    Forged,
    #[error("the ticket has expired")]
    Expired,
    #[error("the ticket is for another session")]
    OtherSession,
}

impl TicketError {
    /// The WebSocket close code the gateway uses for it.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Malformed | Self::Forged => close::BAD_TICKET,
            Self::Expired => close::TICKET_EXPIRED,
            Self::OtherSession => close::OTHER_SESSION,
        }
    }
}

/// The shared secret both sides sign and verify with.
#[derive(Clone)]
pub struct TicketKey(Vec<u8>);

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

impl TicketKey {
    /// A key from the contents of a secret file (surrounding whitespace ignored).
    pub fn from_secret(secret: &[u8]) -> Result<Self, String> {
        let s = secret.trim_ascii();
        if s.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the terminal ticket secret must be at least {MIN_SECRET_LEN} bytes (it is {})",
                s.len()
            ));
        }
        Ok(Self(s.to_vec()))
    }

    /// A fresh random secret, hex encoded (for a secret file).
    pub fn generate_secret() -> String {
        let bytes: [u8; 32] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn mac(&self, signed: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(signed);
        mac
    }

    /// `v1.<claims>.<signature>`, both base64url.
    pub fn sign(&self, claims: &TicketClaims) -> String {
        let body = serde_json::to_vec(claims).unwrap_or_default();
        let signed = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(body));
        let sig = self.mac(signed.as_bytes()).finalize().into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Checks signature, expiry (against `now`, unix seconds) and session; the caller checks
    /// single use.
    pub fn verify(
        &self,
        token: &str,
        session: Uuid,
        now: i64,
    ) -> Result<TicketClaims, TicketError> {
        if token.len() > MAX_TICKET_LEN {
            return Err(TicketError::Malformed);
        }
        let (signed, sig) = token.rsplit_once('.').ok_or(TicketError::Malformed)?;
        let (version, body) = signed.split_once('.').ok_or(TicketError::Malformed)?;
        if version != VERSION {
            return Err(TicketError::Malformed);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TicketError::Malformed)?;
        self.mac(signed.as_bytes())
            .verify_slice(&sig)
            .map_err(|_| TicketError::Forged)?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TicketError::Malformed)?;
        let claims: TicketClaims =
            serde_json::from_slice(&body).map_err(|_| TicketError::Malformed)?;
        if claims.exp < now {
            return Err(TicketError::Expired);
        }
        if claims.exp - now > MAX_TICKET_TTL_SECS {
            return Err(TicketError::Malformed);
        }
        if claims.session != session {
            return Err(TicketError::OtherSession);
        }
        Ok(claims)
    }
}

/// WebSocket close codes of the terminal protocol (stable; the web UI and CLI show the reason
/// that comes with them).
pub mod close {
    /// The shell exited or the user left.
    pub const NORMAL: u16 = 1000;
    /// The gateway is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The gateway failed (the Docker engine is unreachable, ...).
    pub const INTERNAL: u16 = 1011;
    /// A control message that is not valid JSON of a known type, or out of range.
    pub const BAD_MESSAGE: u16 = 4400;
    /// No ticket, or a malformed or forged one.
    pub const BAD_TICKET: u16 = 4401;
    pub const TICKET_EXPIRED: u16 = 4402;
    /// The ticket is for another session than the one in the URL.
    pub const OTHER_SESSION: u16 = 4403;
    /// The session's container does not exist (or is not the ticket's tenant's).
    pub const NO_SESSION: u16 = 4404;
    /// No input for the idle timeout, or the client stopped answering pings.
    pub const IDLE: u16 = 4408;
    /// The ticket was used already.
    pub const TICKET_REUSED: u16 = 4409;
    /// The session's container stopped (ended, expired, or killed).
    pub const SESSION_ENDED: u16 = 4410;
    /// The tenant (or the gateway) has as many terminals open as allowed.
    pub const TOO_MANY: u16 = 4429;
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
                crate::validate::shorten(&e.to_string(), 80)
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

/// Cuts terminal output at UTF-8 character boundaries: an incomplete character at the end of a
/// chunk is held back and sent with the next one, so a client that decodes each frame on its own
/// never sees a character split in two. Bytes that are not UTF-8 pass through unchanged.
#[derive(Debug, Default)]
pub struct Utf8Carry {
    held: Vec<u8>,
}

impl Utf8Carry {
    /// The bytes of `chunk` (after what was held) up to the last complete character.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.held);
        out.extend_from_slice(chunk);
        let keep = incomplete_tail(&out);
        self.held = out.split_off(out.len() - keep);
        out
    }

    /// What is held back (at the end of the stream).
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// Length of an incomplete UTF-8 character at the end of `b` (0 when it ends on a boundary or
/// the tail is not UTF-8 anyway).
pub fn incomplete_tail(b: &[u8]) -> usize {
    // A character is at most 4 bytes: look at the last 3 for its lead byte.
    for back in 1..=3.min(b.len()) {
        let byte = b[b.len() - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // continuation byte: keep looking for the lead
        }
        let need = match byte {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0, // ASCII or not a lead byte: nothing to hold
        };
        return if back < need { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TicketKey {
        TicketKey::from_secret(b"0123456789abcdef0123456789abcdef\n").expect("key")
    }

    fn claims(session: Uuid, exp: i64) -> TicketClaims {
        TicketClaims {
            jti: Uuid::new_v4(),
            tenant: Uuid::new_v4(),
            session,
            container: "abc123".into(),
            key: Uuid::new_v4(),
            exp,
        }
    }

    #[test]
    fn a_signed_ticket_verifies_and_any_change_is_refused() {
        let k = key();
        let s = Uuid::new_v4();
        let c = claims(s, 1_000);
        let t = k.sign(&c);
        assert_eq!(k.verify(&t, s, 990), Ok(c.clone()));
        assert_eq!(k.verify(&t, s, 1_001), Err(TicketError::Expired));
        assert_eq!(
            k.verify(&t, Uuid::new_v4(), 990),
            Err(TicketError::OtherSession)
        );
        // Another key's signature.
        let other = TicketKey::from_secret(&[b'x'; 40]).expect("key");
        assert_eq!(other.verify(&t, s, 990), Err(TicketError::Forged));
        // Claims changed (another tenant) but the signature kept.
        let (_, sig) = t.rsplit_once('.').expect("sig");
        let mut forged = c.clone();
        forged.tenant = Uuid::new_v4();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        assert_eq!(
            k.verify(&format!("v1.{body}.{sig}"), s, 990),
            Err(TicketError::Forged)
        );
        // Every single flipped character is refused.
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let Ok(bad) = String::from_utf8(b) else {
                continue;
            };
            if bad != t {
                assert!(k.verify(&bad, s, 990).is_err(), "flip at {i}");
            }
        }
        for junk in ["", ".", "v1..", "v2.e30.AAAA", "v1", &"a".repeat(5000)] {
            assert!(k.verify(junk, s, 990).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn tickets_claiming_a_long_life_are_refused() {
        let k = key();
        let s = Uuid::new_v4();
        let t = k.sign(&claims(s, 10_000));
        assert_eq!(k.verify(&t, s, 0), Err(TicketError::Malformed));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TicketKey::from_secret(b"  short  ").is_err());
        assert_eq!(TicketKey::generate_secret().len(), 64);
    }

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

    #[test]
    fn output_split_anywhere_is_reassembled_on_character_boundaries() {
        let text = "héllo → wörld 🎉 ok ✓ 日本語 done";
        let bytes = text.as_bytes();
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let mut carry = Utf8Carry::default();
                let mut frames = vec![
                    carry.push(&bytes[..a]),
                    carry.push(&bytes[a..b]),
                    carry.push(&bytes[b..]),
                ];
                frames.push(carry.finish());
                // Each frame decodes on its own.
                let joined: String = frames
                    .iter()
                    .map(|f| std::str::from_utf8(f).expect("frame is whole characters"))
                    .collect();
                assert_eq!(joined, text);
            }
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through() {
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.push(&[0x00, 0xFF, 0x80]), vec![0x00, 0xFF, 0x80]);
        assert_eq!(carry.push(&[b'a', 0xE2]), vec![b'a']);
        assert_eq!(carry.finish(), vec![0xE2]);
        assert_eq!(incomplete_tail(&[0xF0, 0x9F, 0x8E, 0x89]), 0);
        assert_eq!(incomplete_tail(&[0xF0, 0x9F, 0x8E]), 3);
        assert_eq!(incomplete_tail(&[0x80, 0x80, 0x80]), 0);
    }
}
