//! Blocking REST client with timeouts; API errors become `ApiError` with the server's stable code.

use std::{io::Read, time::Duration};

use labwright_wire::rest::ErrorBody;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

pub struct Client {
    base: String,
    key: String,
    agent: ureq::Agent,
    /// For event streams: no total budget, but a bound on each read (the server sends a comment
    /// at least every 15 s).
    stream_agent: ureq::Agent,
}

/// The api-server could not be reached (or the connection failed): names the URL tried.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {url}: {cause}")]
pub struct Unreachable {
    pub url: String,
    pub cause: String,
}

/// An error response from the api-server.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message} (HTTP {status})")]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Client {
    pub fn new(base: &str, key: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        let stream_agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            agent,
            stream_agent,
        }
    }

    /// The api-server's base URL (the web UI is served there too).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Opens a log (a build's, a session's output) at `path` as Server-Sent Events, after
    /// `last_event_id` when given.
    pub fn log_stream(
        &self,
        path: &str,
        query: &[(&str, String)],
        last_event_id: Option<&str>,
    ) -> anyhow::Result<Box<dyn Read + Send>> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .stream_agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.key))
            .header("Accept", "text/event-stream");
        for (k, v) in query {
            req = req.query(*k, v);
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let mut resp = req.call().map_err(|e| unreachable(&url, e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            return Err(Self::error(status, &text).into());
        }
        Ok(Box::new(resp.into_body().into_reader()))
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.key));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        Self::finish(&url, req.call())
    }

    /// Fetches a binary answer (an image) as bytes.
    pub fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.key))
            .call()
            .map_err(|e| unreachable(&url, e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            return Err(Self::error(status, &text).into());
        }
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .read_to_end(&mut bytes)
            .map_err(|e| unreachable(&url, e))?;
        Ok(bytes)
    }

    pub fn post<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = self
            .agent
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.key));
        Self::finish(&url, req.send_json(body))
    }

    /// Sends raw bytes (YAML, PNG) with `method` (POST or PUT).
    pub fn send_bytes(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<Value> {
        Ok(self.send_bytes_status(method, path, content_type, body)?.1)
    }

    /// [`Client::send_bytes`], with the HTTP status of the (successful) answer.
    pub fn send_bytes_status(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.key);
        let res = if method == "PUT" {
            self.agent
                .put(&url)
                .header("Authorization", &auth)
                .header("Content-Type", content_type)
                .send(body)
        } else {
            self.agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", content_type)
                .send(body)
        };
        Self::finish_status(&url, res)
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = self
            .agent
            .delete(&url)
            .header("Authorization", &format!("Bearer {}", self.key));
        Self::finish(&url, req.call())
    }

    fn finish(
        url: &str,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        Ok(Self::finish_status(url, res)?.1)
    }

    fn finish_status(
        url: &str,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut resp = res.map_err(|e| unreachable(url, e))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if (200..300).contains(&status) {
            let value = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text)?
            };
            return Ok((status, value));
        }
        Err(Self::error(status, &text).into())
    }

    fn error(status: u16, text: &str) -> ApiError {
        match serde_json::from_str::<ErrorBody>(text) {
            Ok(body) => ApiError {
                status,
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => ApiError {
                status,
                code: "http_error".to_string(),
                message: text.trim().to_string(),
            },
        }
    }
}

/// A failed exchange, naming the URL without its query (which may carry a filter, never a key).
fn unreachable(url: &str, e: impl std::fmt::Display) -> Unreachable {
    Unreachable {
        url: url.split('?').next().unwrap_or(url).to_string(),
        cause: e.to_string(),
    }
}

/// `text` as one segment of a URL path: everything but unreserved characters percent-encoded
/// (a test case's name holds spaces).
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An answer read as its REST view (`labwright_wire::rest`).
pub fn decode<T: DeserializeOwned>(answer: &Value) -> anyhow::Result<T> {
    T::deserialize(answer).map_err(|e| anyhow::anyhow!("unexpected answer from the server: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_segment_is_percent_encoded() {
        assert_eq!(path_segment("Zap up"), "Zap%20up");
        assert_eq!(path_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(path_segment("sim-stb_1.x~"), "sim-stb_1.x~");
        assert_eq!(path_segment("é"), "%C3%A9");
    }
}
