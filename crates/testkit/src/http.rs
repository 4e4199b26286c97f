//! The tests' REST client: blocking `ureq` on a blocking thread, a bearer key, JSON bodies;
//! statuses are results, not errors, and every call has a timeout.

use std::time::Duration;

use serde_json::Value;

/// The tests' HTTP client: statuses are results, not errors; every call has a timeout.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A response's status and JSON body (`Null` when the body is not JSON).
fn status_and_json(mut resp: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A response's content type (empty when it has none).
pub fn content_type<B>(resp: &ureq::http::Response<B>) -> String {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// `req` with the bearer `auth` header, when there is one.
fn authorized<B>(req: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(a) => req.header("Authorization", a),
        None => req,
    }
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
        status_and_json(res.expect("http call"))
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
        let ct = content_type(&resp);
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
        let auth = auth.as_deref();
        let res = match (method, body) {
            ("GET", _) => authorized(agent.get(&url), auth).call(),
            ("DELETE", _) => authorized(agent.delete(&url), auth).call(),
            ("PUT", body) => {
                authorized(agent.put(&url), auth).send_json(body.unwrap_or(Value::Null))
            }
            (_, body) => authorized(agent.post(&url), auth).send_json(body.unwrap_or(Value::Null)),
        };
        status_and_json(res.expect("http call"))
    })
    .await
    .expect("http task")
}
