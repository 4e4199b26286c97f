//! Terminals into sandbox sessions: the ticket the api-server signs and the terminal gateway
//! verifies (no database between them), and the UTF-8 framing rule for terminal output. The
//! WebSocket protocol itself (control messages, close codes) is a contract of `labwright-wire`
//! (`ws::terminal`, `docs/terminal.md`).

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
