//! ADB authentication: the host's RSA key (2048 bits, generated once and stored 0600 as PKCS#8
//! PEM like adb's own `~/.android/adbkey`, with `adbkey.pub` beside it), the token signature
//! (PKCS#1 v1.5 over the 20-byte token as a SHA-1 digest), and the public key in Android's
//! format (modulus word count, n0inv, modulus and R² little-endian, exponent; base64 and a
//! name). The fingerprint is the MD5 of that binary key, as Android shows it.

use crate::error::{AdbError, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest as _, Md5};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use std::path::{Path, PathBuf};

const KEY_BITS: usize = 2048;
const KEY_WORDS: usize = KEY_BITS / 32;
/// Size of Android's binary public key.
pub const PUBLIC_KEY_LEN: usize = 4 + 4 + KEY_BITS / 8 * 2 + 4;

/// The host's key pair.
#[derive(Clone)]
pub struct AdbKey {
    private: RsaPrivateKey,
    name: String,
}

impl std::fmt::Debug for AdbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdbKey({})", self.fingerprint())
    }
}

impl AdbKey {
    /// A new key in memory.
    pub fn generate(name: &str) -> Result<AdbKey> {
        let private = RsaPrivateKey::new(&mut rand_core::OsRng, KEY_BITS)
            .map_err(|e| AdbError::Key(format!("generate: {e}")))?;
        Ok(AdbKey {
            private,
            name: name.into(),
        })
    }

    /// Loads the PKCS#8 PEM key at `path` (adb's own `adbkey` works too), or generates one and
    /// stores it there with mode 0600 (and the public key at `path.pub`).
    pub fn load_or_generate(path: &Path, name: &str) -> Result<AdbKey> {
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                let private = RsaPrivateKey::from_pkcs8_pem(&pem)
                    .map_err(|e| AdbError::Key(format!("{}: {e}", path.display())))?;
                Ok(AdbKey {
                    private,
                    name: name.into(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = AdbKey::generate(name)?;
                key.store(path)?;
                Ok(key)
            }
            Err(e) => Err(AdbError::Key(format!("{}: {e}", path.display()))),
        }
    }

    fn store(&self, path: &Path) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let pem = self
            .private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| AdbError::Key(format!("encode: {e}")))?;
        let tmp = PathBuf::from(format!("{}.tmp{}", path.display(), std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::write(
            format!("{}.pub", path.display()),
            format!("{}\n", self.public_key_text()),
        )?;
        Ok(())
    }

    /// Signs a device's AUTH token.
    pub fn sign_token(&self, token: &[u8]) -> Result<Vec<u8>> {
        self.private
            .sign(Pkcs1v15Sign::new::<Sha1>(), token)
            .map_err(|e| {
                AdbError::Protocol(format!(
                    "cannot sign auth token of {} bytes: {e}",
                    token.len()
                ))
            })
    }

    /// Android's binary form of the public key.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        encode_public_key(&self.private.to_public_key())
    }

    /// `<base64> <name>`, the text adb offers and stores in `adbkey.pub`.
    pub fn public_key_text(&self) -> String {
        format!("{} {}", STANDARD.encode(self.public_key_bytes()), self.name)
    }

    /// MD5 of the binary public key, `AB:CD:…`, as the device's prompt shows it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key_bytes())
    }
}

/// `AB:CD:…` MD5 of a binary public key.
pub fn fingerprint(public_key: &[u8]) -> String {
    let d = Md5::digest(public_key);
    d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Android's `RSAPublicKey` layout for a 2048-bit key.
pub fn encode_public_key(key: &RsaPublicKey) -> Vec<u8> {
    let n = key.n();
    let mut out = Vec::with_capacity(PUBLIC_KEY_LEN);
    out.extend_from_slice(&(KEY_WORDS as u32).to_le_bytes());
    let n_bytes = n.to_bytes_le();
    let n0 = u32::from_le_bytes([
        n_bytes.first().copied().unwrap_or(0),
        n_bytes.get(1).copied().unwrap_or(0),
        n_bytes.get(2).copied().unwrap_or(0),
        n_bytes.get(3).copied().unwrap_or(0),
    ]);
    // n0inv = -1 / n[0] mod 2^32 (Newton's iteration doubles the correct bits each step).
    let mut inv: u32 = 1;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
    }
    out.extend_from_slice(&inv.wrapping_neg().to_le_bytes());
    out.extend_from_slice(&fixed_le(&n_bytes, KEY_BITS / 8));
    let rr = (BigUint::from(1u32) << (2 * KEY_BITS)) % n;
    out.extend_from_slice(&fixed_le(&rr.to_bytes_le(), KEY_BITS / 8));
    let e = key.e().to_bytes_le();
    out.extend_from_slice(&fixed_le(&e, 4));
    out
}

fn fixed_le(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.resize(len, 0);
    v
}

/// Parses an AUTH RSAPUBLICKEY payload (`<base64>[ name]`, maybe NUL-terminated) or a line of
/// `adbkey.pub`: the binary key, its fingerprint and the RSA key.
pub fn parse_public_key(text: &[u8]) -> Result<(Vec<u8>, RsaPublicKey)> {
    let text = String::from_utf8_lossy(text);
    let b64 = text
        .trim_end_matches('\0')
        .split_whitespace()
        .next()
        .unwrap_or("");
    let raw = STANDARD
        .decode(b64)
        .map_err(|e| AdbError::Protocol(format!("public key base64: {e}")))?;
    let key = decode_public_key(&raw)?;
    Ok((raw, key))
}

/// Android's binary public key to an RSA key.
pub fn decode_public_key(raw: &[u8]) -> Result<RsaPublicKey> {
    if raw.len() != PUBLIC_KEY_LEN {
        return Err(AdbError::Protocol(format!(
            "public key of {} bytes, want {PUBLIC_KEY_LEN}",
            raw.len()
        )));
    }
    let words = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if words as usize != KEY_WORDS {
        return Err(AdbError::Protocol(format!(
            "public key of {words} words, want {KEY_WORDS}"
        )));
    }
    let n = BigUint::from_bytes_le(&raw[8..8 + KEY_BITS / 8]);
    let e_at = 8 + KEY_BITS / 8 * 2;
    let e = u32::from_le_bytes([raw[e_at], raw[e_at + 1], raw[e_at + 2], raw[e_at + 3]]);
    RsaPublicKey::new(n, BigUint::from(e))
        .map_err(|e| AdbError::Protocol(format!("public key: {e}")))
}

/// Checks a token signature against a public key.
pub fn verify_token(key: &RsaPublicKey, token: &[u8], signature: &[u8]) -> bool {
    key.verify(Pkcs1v15Sign::new::<Sha1>(), token, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_through_android_format_and_signs() {
        let dir = std::env::temp_dir().join(format!("lw-adbkey-{}", std::process::id()));
        let path = dir.join("adbkey");
        let _ = std::fs::remove_dir_all(&dir);
        let key = AdbKey::load_or_generate(&path, "lw@test").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = AdbKey::load_or_generate(&path, "lw@test").unwrap();
        assert_eq!(
            key.fingerprint(),
            again.fingerprint(),
            "the stored key is reused"
        );
        let pub_text = std::fs::read_to_string(dir.join("adbkey.pub")).unwrap();
        let (raw, public) = parse_public_key(pub_text.as_bytes()).unwrap();
        assert_eq!(raw, key.public_key_bytes());
        assert_eq!(fingerprint(&raw).len(), 47);
        let token = [7u8; 20];
        let sig = key.sign_token(&token).unwrap();
        assert!(verify_token(&public, &token, &sig));
        assert!(!verify_token(&public, &[8u8; 20], &sig));
        // n0inv * n[0] == -1 mod 2^32.
        let n0 = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
        let n0inv = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
        assert_eq!(n0.wrapping_mul(n0inv), u32::MAX);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
