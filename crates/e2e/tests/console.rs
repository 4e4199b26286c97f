//! The serial console end to end: the simulated box's console behind a real host-agent runtime,
//! a test case with `serial_send`, `serial_expect` and `verify_log`, and the execution's console
//! log stored with it (REST, tenant-checked).

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::*;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const WAIT: Duration = Duration::from_secs(90);

const CONSOLE_CASE: &str = r#"
name: console-check
steps:
  - serial_send: root
  - serial_expect: "Welcome to"
    timeout_ms: 30000
  - serial_send: uname -a
  - serial_expect: '^Linux \S+ 5\.10\.0-sim'
    timeout_ms: 30000
  - press: ok
  - serial_expect: "rc: key ok"
    timeout_ms: 30000
  - verify_log: {pattern: "Kernel panic|Oops", absent: true}
  - verify_log: "uname -a"
"#;

async fn finished(s: &TestServer, id: &str) -> Value {
    eventually(WAIT, &format!("execution {id} to finish"), || async {
        let (_, e) = s
            .get(&s.admin_key, &format!("/api/v1/executions/{id}"))
            .await;
        ["passed", "failed", "error", "cancelled", "interrupted"]
            .contains(&e["status"].as_str()?)
            .then_some(e)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_test_case_passes_and_its_console_log_is_kept_with_step_markers() {
    let (s, base, _agent, device) = server_with_one_box().await;
    let (_, d) = s
        .get(&s.admin_key, &format!("/api/v1/devices/{device}"))
        .await;
    assert!(
        d["capabilities"]
            .as_array()
            .expect("capabilities")
            .contains(&Value::from("console")),
        "{d}"
    );
    let (status, body) = send_bytes(
        "POST",
        format!("{base}/api/v1/testcases"),
        s.admin_key.clone(),
        "application/yaml",
        CONSOLE_CASE.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let e = run(&base, &s.admin_key, "console-check", &device).await;
    let id = e["id"].as_str().expect("id").to_string();
    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "passed", "{done:#}");

    let (status, content_type, bytes) = get_bytes(
        format!("{base}/api/v1/executions/{id}/console"),
        s.admin_key.clone(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let log = String::from_utf8(bytes).expect("utf-8");
    let lines: Vec<&str> = log.lines().collect();
    // Every line is stamped: `2026-12-07T17:30:36.123456Z text`.
    for l in &lines {
        let (stamp, _) = l.split_once(' ').expect("stamped");
        assert!(
            stamp.len() == 27 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{l}"
        );
    }
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the console log:\n{log}"))
    };
    let started = position("--- run started ---");
    let step0 = position("--- step 0: serial_send (steps[0]) ---");
    let login = position("login: root");
    let step2 = position("--- step 2: serial_send (steps[2]) ---");
    let uname = position("5.10.0-sim #1 SMP");
    let step4 = position("--- step 4: press (steps[4]) ---");
    let key = position("rc: key ok");
    let ended = position("--- run ended: pass ---");
    assert!(
        started < step0 && step0 < login && login < step2 && step2 < uname,
        "{log}"
    );
    assert!(uname < step4 && step4 < key && key < ended, "{log}");
    assert_eq!(ended, lines.len() - 1, "{log}");
    // The boot before the run is not the run's.
    assert!(!log.contains("Linux version"), "{log}");

    // Another tenant cannot tell the execution exists.
    let (_, key_b) = s
        .server
        .keys
        .create_tenant("tenant-console")
        .await
        .expect("tenant");
    let (status, body) = s
        .get(&key_b.secret, &format!("/api/v1/executions/{id}/console"))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    // A run on a device without a recorded console log: 404 too, with a clear message.
    let missing = uuid::Uuid::new_v4();
    let (status, _) = s
        .get(
            &s.admin_key,
            &format!("/api/v1/executions/{missing}/console"),
        )
        .await;
    assert_eq!(status, 404);
}

/// Opens the live console of `device` with `key`; `Err` with the close code and reason when the
/// server closes it at once.
async fn open_console(base: &str, key: &str, device: &str) -> Ws {
    let url = format!(
        "{}/api/v1/devices/{device}/console",
        base.replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("labwright, bearer.{key}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("console socket");
    ws
}

/// The next JSON message, or the close code and reason.
async fn next_message(ws: &mut Ws) -> Result<Value, (u16, String)> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Err(_) => panic!("nothing on the console socket within {WAIT:?}"),
            Ok(None) | Ok(Some(Err(_))) => return Err((1006, String::new())),
            Ok(Some(Ok(Message::Text(t)))) => {
                return Ok(serde_json::from_str(t.as_str()).expect("json"));
            }
            Ok(Some(Ok(Message::Close(c)))) => {
                return Err(c
                    .map(|c| (u16::from(c.code), c.reason.to_string()))
                    .unwrap_or((1005, String::new())));
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Reads messages until a console line (or the line being written) contains `needle`;
/// returns the other messages seen on the way.
async fn until_output(ws: &mut Ws, needle: &str) -> Vec<Value> {
    let mut others = Vec::new();
    loop {
        let m = next_message(ws)
            .await
            .unwrap_or_else(|c| panic!("closed {c:?} before {needle:?}"));
        if m["type"] == "output" {
            let hit = m["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .any(|l| l["text"].as_str().is_some_and(|t| t.contains(needle)))
                || m["partial"].as_str().is_some_and(|p| p.contains(needle));
            if hit {
                return others;
            }
        } else {
            others.push(m);
        }
    }
}

async fn type_line(ws: &mut Ws, line: &str) {
    ws.send(Message::Text(
        json!({"type": "input", "data": format!("{line}\n")})
            .to_string()
            .into(),
    ))
    .await
    .expect("input");
}

/// The next message that is not output.
async fn next_answer(ws: &mut Ws) -> Value {
    loop {
        let m = next_message(ws).await.expect("open");
        if m["type"] != "output" {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_console_is_read_only_for_viewers_and_typed_into_by_the_holder() {
    let (s, base, agent, device) = server_with_one_box().await;
    let holder = s.create_key("operator", "holder").await;
    let viewer = s.create_key("viewer", "watcher").await;
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/devices/{device}/reservation"),
        Some(holder.clone()),
        Some(json!({"minutes": 30})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");

    // A viewer sees the console (the boot log and the prompt) but cannot type.
    let mut watching = open_console(&base, &viewer, &device).await;
    let hello = next_message(&mut watching).await.expect("hello");
    assert_eq!(hello["type"], "console", "{hello}");
    assert_eq!(hello["can_type"], false, "{hello}");
    until_output(&mut watching, "login: ").await;
    type_line(&mut watching, "root").await;
    let refused = next_answer(&mut watching).await;
    assert_eq!(refused["type"], "refused", "{refused}");
    assert!(
        refused["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{refused}"
    );

    // The holder types and both see the echo and the answer.
    let mut typing = open_console(&base, &holder, &device).await;
    let hello = next_message(&mut typing).await.expect("hello");
    assert_eq!(hello["can_type"], true, "{hello}");
    type_line(&mut typing, "root").await;
    let others = until_output(&mut typing, "Welcome to").await;
    assert!(others.iter().all(|m| m["type"] != "refused"), "{others:?}");
    type_line(&mut typing, "uname -a").await;
    until_output(&mut typing, "5.10.0-sim #1 SMP").await;
    until_output(&mut watching, "5.10.0-sim #1 SMP").await;

    // Someone with the operator role but without the reservation cannot type either.
    let other = s.create_key("operator", "other").await;
    let mut other_ws = open_console(&base, &other, &device).await;
    let hello = next_message(&mut other_ws).await.expect("hello");
    assert_eq!(hello["can_type"], false, "{hello}");
    type_line(&mut other_ws, "echo intruder").await;
    assert_eq!(next_answer(&mut other_ws).await["type"], "refused");

    // Another tenant: no such device.
    let (_, key_b) = s
        .server
        .keys
        .create_tenant("tenant-live-console")
        .await
        .expect("tenant");
    let mut foreign = open_console(&base, &key_b.secret, &device).await;
    let closed = next_message(&mut foreign).await.expect_err("closed");
    assert_eq!(closed.0, 4404, "{closed:?}");
    let (status, _) = s
        .get(&key_b.secret, &format!("/api/v1/devices/{device}"))
        .await;
    assert_eq!(status, 404);
    agent.stop.cancel();
}
