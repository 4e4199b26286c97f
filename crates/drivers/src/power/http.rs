//! The HTTP transport of the plugs that speak HTTP (Tasmota, Shelly): one `GET` per request,
//! behind [`HttpTransport`] so the protocols are tested with scripted replies. [`UreqHttp`] is
//! the real one (blocking `ureq`, a bounded time for the whole exchange, HTTP statuses as
//! results, bodies capped).

use std::time::Duration;

use base64::Engine as _;

use super::PowerError;

/// A reply: its status and body (UTF-8, capped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: String,
}

/// One HTTP `GET` to a plug.
pub trait HttpTransport: Send {
    /// `GET path_and_query` (starting with `/`, already percent-encoded).
    fn get(&mut self, path_and_query: &str) -> Result<HttpReply, PowerError>;
    /// The plug's address, for messages.
    fn target(&self) -> String;
}

/// Largest reply body read from a plug.
const MAX_BODY: u64 = 64 * 1024;

/// A plug at `host[:port]` over plain HTTP.
pub struct UreqHttp {
    base: String,
    address: String,
    agent: ureq::Agent,
    timeout: Duration,
    authorization: Option<String>,
}

impl UreqHttp {
    /// `address` is `host` or `host:port` (port 80 by default); `basic` adds HTTP basic
    /// authentication (Shelly Gen1).
    pub fn new(address: &str, timeout: Duration, basic: Option<(&str, &str)>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Self {
            base: format!("http://{address}"),
            address: address.to_string(),
            agent,
            timeout,
            authorization: basic.map(|(user, password)| {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                format!("Basic {token}")
            }),
        }
    }

    fn error(&self, e: ureq::Error) -> PowerError {
        let target = self.address.clone();
        let timeout = || PowerError::Timeout {
            target: target.clone(),
            timeout_ms: self.timeout.as_millis() as u64,
        };
        match e {
            ureq::Error::Timeout(_) => timeout(),
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                timeout()
            }
            ureq::Error::Io(io) => PowerError::Unreachable {
                target,
                detail: io.to_string(),
            },
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => PowerError::Unreachable {
                target,
                detail: e.to_string(),
            },
            other => PowerError::bad_reply(&target, other.to_string()),
        }
    }
}

impl HttpTransport for UreqHttp {
    fn get(&mut self, path_and_query: &str) -> Result<HttpReply, PowerError> {
        let url = format!("{}{path_and_query}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().map_err(|e| self.error(e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| self.error(e))?;
        Ok(HttpReply { status, body })
    }

    fn target(&self) -> String {
        self.address.clone()
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The JSON body of a 2xx reply; 401/403 are [`PowerError::Unauthorized`], other statuses
/// [`PowerError::Device`] (with the body's start), a body that is not JSON a bad reply.
pub fn json_reply(target: &str, reply: &HttpReply) -> Result<serde_json::Value, PowerError> {
    match reply.status {
        200..=299 => serde_json::from_str(&reply.body).map_err(|e| {
            PowerError::bad_reply(target, format!("not JSON ({e}): {}", excerpt(&reply.body)))
        }),
        401 | 403 => Err(PowerError::Unauthorized {
            target: target.to_string(),
        }),
        status => Err(PowerError::Device {
            target: target.to_string(),
            detail: format!("HTTP {status}: {}", excerpt(&reply.body)),
        }),
    }
}

/// The start of a body, for messages (one line, at most 120 characters).
pub fn excerpt(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect();
    one_line.trim().to_string()
}
