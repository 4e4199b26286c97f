//! Blocking REST client with timeouts; API errors become `ApiError` with the server's stable code.

use std::time::Duration;

use serde_json::Value;

pub struct Client {
    base: String,
    key: String,
    agent: ureq::Agent,
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
        Self {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            agent,
        }
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let mut req = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.key));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        Self::finish(req.call())
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.key));
        Self::finish(req.send_json(body))
    }

    /// Sends raw bytes (YAML, PNG) with `method` (POST or PUT).
    pub fn send_bytes(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.key);
        let res = if method == "PUT" {
            self.agent
                .put(url)
                .header("Authorization", &auth)
                .header("Content-Type", content_type)
                .send(body)
        } else {
            self.agent
                .post(url)
                .header("Authorization", &auth)
                .header("Content-Type", content_type)
                .send(body)
        };
        Self::finish(res)
    }

    pub fn delete(&self, path: &str) -> anyhow::Result<Value> {
        let req = self
            .agent
            .delete(format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.key));
        Self::finish(req.call())
    }

    fn finish(res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> anyhow::Result<Value> {
        let mut resp = res?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok(if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text)?
            });
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Err(ApiError {
            status,
            code: body["error"]["code"]
                .as_str()
                .unwrap_or("http_error")
                .to_string(),
            message: body["error"]["message"]
                .as_str()
                .unwrap_or(text.trim())
                .to_string(),
        }
        .into())
    }
}
