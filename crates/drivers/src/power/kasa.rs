//! TP-Link Kasa plugs, their local protocol (the one before KLAP): JSON requests on TCP port 9999,
//! each message a 4-byte big-endian length followed by the JSON "encrypted" with an XOR
//! autokey (initial key 171, each ciphertext byte the key of the next). Switching is
//! `{"system":{"set_relay_state":{"state":1}}}`, the state is `relay_state` in
//! `{"system":{"get_sysinfo":{}}}`'s answer; every answer carries an `err_code` (0: done).
//!
//! [`KasaTransport`] carries one plain JSON request and its plain answer; [`KasaTcp`] is the
//! real one (a connection per request, bounded connect/read/write times, answers capped).

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

use serde_json::{Value, json};

use super::{PowerError, Switch, http::excerpt};

/// The port Kasa devices listen on.
pub const PORT: u16 = 9999;
/// The first key of the autokey cipher.
const INITIAL_KEY: u8 = 171;
/// Largest answer accepted (a device's sysinfo is well under 2 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// `plain` encrypted, without the length prefix.
pub fn encrypt(plain: &[u8]) -> Vec<u8> {
    let mut key = INITIAL_KEY;
    plain
        .iter()
        .map(|b| {
            key ^= b;
            key
        })
        .collect()
}

/// `cipher` decrypted.
pub fn decrypt(cipher: &[u8]) -> Vec<u8> {
    let mut key = INITIAL_KEY;
    cipher
        .iter()
        .map(|&c| {
            let p = key ^ c;
            key = c;
            p
        })
        .collect()
}

/// One message on the wire: the length, then the encrypted JSON.
pub fn frame(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() + 4);
    out.extend_from_slice(&(plain.len() as u32).to_be_bytes());
    out.extend_from_slice(&encrypt(plain));
    out
}

/// Reads one message from `r` and decrypts it; `Ok(None)` at a clean end of stream before it.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a {len}-byte message (at most {MAX_MESSAGE})"),
        ));
    }
    let mut cipher = vec![0u8; len];
    r.read_exact(&mut cipher)?;
    Ok(Some(decrypt(&cipher)))
}

/// One request to a Kasa device and its answer, both plain JSON text.
pub trait KasaTransport: Send {
    fn query(&mut self, request: &str) -> Result<String, PowerError>;
    fn target(&self) -> String;
}

/// A Kasa device at `host[:port]` over TCP.
pub struct KasaTcp {
    address: String,
    timeout: Duration,
}

impl KasaTcp {
    /// `address` is `host` or `host:port` (port 9999 by default).
    pub fn new(address: &str, timeout: Duration) -> Self {
        Self {
            address: address.to_string(),
            timeout,
        }
    }

    fn io_error(&self, e: &std::io::Error) -> PowerError {
        use std::io::ErrorKind::*;
        match e.kind() {
            TimedOut | WouldBlock => PowerError::Timeout {
                target: self.address.clone(),
                timeout_ms: self.timeout.as_millis() as u64,
            },
            InvalidData | UnexpectedEof => PowerError::bad_reply(&self.address, e.to_string()),
            _ => PowerError::Unreachable {
                target: self.address.clone(),
                detail: e.to_string(),
            },
        }
    }
}

impl KasaTransport for KasaTcp {
    fn query(&mut self, request: &str) -> Result<String, PowerError> {
        let with_port = if self.address.contains(':') {
            self.address.clone()
        } else {
            format!("{}:{PORT}", self.address)
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| PowerError::Unreachable {
                target: self.address.clone(),
                detail: e.to_string(),
            })?
            .next()
            .ok_or_else(|| PowerError::Unreachable {
                target: self.address.clone(),
                detail: "the name has no address".into(),
            })?;
        let mut stream =
            TcpStream::connect_timeout(&addr, self.timeout).map_err(|e| self.io_error(&e))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .and_then(|()| stream.write_all(&frame(request.as_bytes())))
            .map_err(|e| self.io_error(&e))?;
        let answer = read_frame(&mut stream)
            .map_err(|e| self.io_error(&e))?
            .ok_or_else(|| PowerError::bad_reply(&self.address, "closed without an answer"))?;
        String::from_utf8(answer)
            .map_err(|_| PowerError::bad_reply(&self.address, "an answer that is not UTF-8"))
    }

    fn target(&self) -> String {
        self.address.clone()
    }
}

/// A Kasa plug (one relay).
pub struct Kasa<T: KasaTransport> {
    transport: T,
}

impl<T: KasaTransport> Kasa<T> {
    pub fn new(transport: T) -> Self {
        Self { transport }
    }

    /// `{"system":{cmd:arg}}`, and the answer's `system.cmd` after checking its `err_code`.
    fn system(&mut self, cmd: &str, arg: Value) -> Result<Value, PowerError> {
        let request = json!({ "system": { cmd: arg } }).to_string();
        let text = self.transport.query(&request)?;
        let target = self.target();
        let answer: Value = serde_json::from_str(&text).map_err(|e| {
            PowerError::bad_reply(&target, format!("not JSON ({e}): {}", excerpt(&text)))
        })?;
        let result = answer
            .get("system")
            .and_then(|s| s.get(cmd))
            .ok_or_else(|| {
                PowerError::bad_reply(&target, format!("no system.{cmd} in {}", excerpt(&text)))
            })?;
        match result.get("err_code").and_then(Value::as_i64) {
            Some(0) => Ok(result.clone()),
            Some(code) => Err(PowerError::Device {
                target,
                detail: format!(
                    "{cmd}: err_code {code} {}",
                    result
                        .get("err_msg")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )
                .trim_end()
                .to_string(),
            }),
            None => Err(PowerError::bad_reply(
                &target,
                format!("no err_code in system.{cmd}: {}", excerpt(&text)),
            )),
        }
    }
}

impl<T: KasaTransport> Switch for Kasa<T> {
    fn write(&mut self, on: bool) -> Result<Option<bool>, PowerError> {
        self.system("set_relay_state", json!({ "state": u8::from(on) }))?;
        Ok(None)
    }

    fn read(&mut self) -> Result<bool, PowerError> {
        let info = self.system("get_sysinfo", json!({}))?;
        match info.get("relay_state").and_then(Value::as_i64) {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            other => Err(PowerError::bad_reply(
                &self.target(),
                format!("relay_state is {other:?}, not 0 or 1"),
            )),
        }
    }

    fn target(&self) -> String {
        format!("kasa {}", self.transport.target())
    }
}
