//! The tests' REST client: blocking `ureq` on a blocking thread, a bearer key, JSON bodies;
//! statuses are results, not errors, and every call has a timeout.

use std::time::Duration;

use serde_json::Value;

/// The tests' HTTP client: statuses are results, not errors; every call has a timeout.
fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Sends raw bytes (YAML, PNG) and returns status and JSON body.
pub async fn send_bytes(
    method: &'static str,
    url: String,
    key: String,
    content_type: &'static str,
    body: Vec<u8>,
) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let agent = client();
        let auth = format!("Bearer {key}");
        let res = if method == "PUT" {
            agent
                .put(&url)
                .header("Authorization", &auth)
                .header("Content-Type", content_type)
                .send(&body[..])
        } else {
            agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", content_type)
                .send(&body[..])
        };
        let mut resp = res.expect("http call");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
    .await
    .expect("http task")
}

/// GETs raw bytes (screenshots): status, content type, body.
pub async fn get_bytes(url: String, key: String) -> (u16, String, Vec<u8>) {
    tokio::task::spawn_blocking(move || {
        let agent = client();
        let mut resp = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {key}"))
            .call()
            .expect("http call");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap_or_default();
        (status, ct, bytes)
    })
    .await
    .expect("http task")
}

/// One HTTP call (blocking client on a blocking thread). Returns status and JSON body (or Null).
pub async fn http(
    method: &'static str,
    url: String,
    key: Option<String>,
    body: Option<Value>,
) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let agent = client();
        let auth = key.map(|k| format!("Bearer {k}"));
        let res = match (method, body) {
            ("GET", _) => {
                let mut r = agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("PUT", body) => {
                let mut r = agent.put(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send_json(body.unwrap_or(Value::Null))
            }
            (_, body) => {
                let mut r = agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send_json(body.unwrap_or(Value::Null))
            }
        };
        let mut resp = res.expect("http call");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
    .await
    .expect("http task")
}
