//! Device health end to end: a real host-agent runtime checks its simulated box (a frame arrives,
//! is not black and not frozen; audio flows; the power switch answers), reports over its gRPC
//! link, and the api-server stores it in the device view and publishes `device.health` on the
//! events socket. Faults the simulator offers make it degraded with the reason, and clearing
//! them makes it healthy again. The power action's read-back and who switched are stored too.

mod support;

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::StreamExt;
use labwright_host_agent::health::Monitor;
use serde_json::{Value, json};
use support::*;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

/// Generous: checks run on blocking threads of a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn events(base: &str, key: &str) -> Ws {
    let url = format!("{}/api/v1/events", base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("labwright, bearer.{key}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("events")
        .0
}

/// The next `fleet.device.health` event on the socket whose health is `health`.
async fn health_event(ws: &mut Ws, health: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("a device.health event saying {health}"))
            .expect("socket open")
            .expect("message");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["kind"] == "fleet.device.health" && v["event"]["health"] == health {
                return v["event"].clone();
            }
        }
    }
}

/// The device view once its health is `health` with a reason satisfying `reason`.
async fn wait_health(
    s: &TestServer,
    device: &str,
    health: &str,
    reason: impl Fn(&str) -> bool,
) -> Value {
    eventually(WAIT, &format!("device {health}"), || async {
        let (_, d) = s
            .get(&s.admin_key, &format!("/api/v1/devices/{device}"))
            .await;
        (d["health"] == health && reason(d["health_reason"].as_str().unwrap_or("?"))).then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_make_a_box_degraded_with_the_reason_and_healthy_again_in_rest_and_events() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let base = s.url("");
    let token = s.create_key("host", "sim host").await;
    let (config, runtime) = host_runtime(
        s.grpc(),
        &token,
        "sim-host",
        vec![sim_device("stb-1", "")],
        &temp_dir("agent"),
    );
    // Checks every second instead of every minute, so that each change is seen soon.
    let runtime = Arc::into_inner(runtime)
        .expect("only owner")
        .with_health(Monitor::new(Duration::from_secs(1), HashMap::new()));
    let agent = spawn_link(s.grpc(), &token, config.hello(), Some(Arc::new(runtime)));
    let device = eventually(WAIT, "device online", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/devices?status=online").await;
        page["items"].as_array()?.first()?["id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;

    let d = wait_health(&s, &device, "healthy", str::is_empty).await;
    assert!(d["health_checked_at"].is_string(), "{d}");
    let (_, listed) = s.get(&s.admin_key, "/api/v1/devices").await;
    assert_eq!(listed["items"][0]["health"], "healthy", "{listed}");
    let mut ws = events(&base, &s.admin_key).await;

    // A frozen picture: the capture stops delivering frames.
    let (status, body) = http(
        "PUT",
        format!("{base}/api/v1/devices/{device}/faults"),
        Some(s.admin_key.clone()),
        Some(json!({"frozen": true})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let d = wait_health(&s, &device, "degraded", |r| r.starts_with("video: frozen")).await;
    assert_eq!(
        d["health_reason"], "video: frozen: no new frame in 3000 ms",
        "{d}"
    );
    let ev = health_event(&mut ws, "degraded").await;
    assert_eq!(ev["device_id"], device.as_str(), "{ev}");
    assert_eq!(ev["device_key"], "stb-1");
    assert_eq!(ev["reason"], "video: frozen: no new frame in 3000 ms");

    let (status, _) = http(
        "PUT",
        format!("{base}/api/v1/devices/{device}/faults"),
        Some(s.admin_key.clone()),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 204);
    wait_health(&s, &device, "healthy", str::is_empty).await;
    let ev = health_event(&mut ws, "healthy").await;
    assert_eq!(
        (ev["reason"].as_str(), ev["previous"].as_str()),
        (Some(""), Some("degraded"))
    );

    // Power off: the picture goes black, and the check says why. The switch is stored with who
    // did it.
    let (status, body) = power(&base, &s.admin_key, &device, "off").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("off")),
        "{body}"
    );
    let d = wait_health(&s, &device, "degraded", |r| {
        r == "video: picture is black (power is off)"
    })
    .await;
    assert_eq!(d["power_state"], "off", "{d}");
    assert_eq!(d["power_switched_by"]["kind"], "user", "{d}");
    let (_, me) = s.get(&s.admin_key, "/api/v1/whoami").await;
    assert_eq!(d["power_switched_by"]["name"], me["key_name"], "{d}");
    assert!(d["power_switched_at"].is_string(), "{d}");
    let ev = health_event(&mut ws, "degraded").await;
    assert_eq!(ev["reason"], "video: picture is black (power is off)");

    let (status, body) = power(&base, &s.admin_key, &device, "on").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("on")),
        "{body}"
    );
    let d = wait_health(&s, &device, "healthy", str::is_empty).await;
    assert_eq!(d["power_state"], "on", "{d}");
    health_event(&mut ws, "healthy").await;
    agent.stop.cancel();
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_power_view_shows_the_last_state_read_and_who_switched_last() {
    let (s, base, agent, device) = server_with_one_box().await;
    let (_, d) = s
        .get(&s.admin_key, &format!("/api/v1/devices/{device}"))
        .await;
    assert_eq!(
        (&d["power_state"], &d["power_switched_by"]),
        (&Value::Null, &Value::Null),
        "unknown before any power action: {d}"
    );
    let viewer = s.create_key("viewer", "watcher").await;
    let operator = s.create_key("operator", "olga").await;

    // Reading the state stores it, without a switch.
    let (status, body) = power(&base, &viewer, &device, "state").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("on")),
        "{body}"
    );
    let (_, d) = s.get(&viewer, &format!("/api/v1/devices/{device}")).await;
    assert_eq!(d["power_state"], "on", "{d}");
    assert!(d["power_read_at"].is_string(), "{d}");
    assert_eq!(d["power_switched_at"], Value::Null, "{d}");

    // Viewers may not switch; operators may, and the view says who did.
    assert_eq!(power(&base, &viewer, &device, "off").await.0, 403);
    let (status, body) = power(&base, &operator, &device, "cycle").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("on")),
        "{body}"
    );
    let (_, d) = s.get(&viewer, &format!("/api/v1/devices/{device}")).await;
    assert_eq!(d["power_state"], "on", "{d}");
    assert_eq!(d["power_switched_by"]["kind"], "user", "{d}");
    assert_eq!(d["power_switched_by"]["name"], "olga", "{d}");
    let switched_at = d["power_switched_at"].clone();
    assert!(switched_at.is_string(), "{d}");

    // Another key's reservation keeps operators off the switch (the holder may).
    let (status, _) = http(
        "POST",
        format!("{base}/api/v1/devices/{device}/reservation"),
        Some(s.admin_key.clone()),
        Some(json!({"minutes": 15})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(power(&base, &operator, &device, "off").await.0, 409);
    let (status, body) = power(&base, &s.admin_key, &device, "off").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("off")),
        "{body}"
    );
    let (_, d) = s.get(&viewer, &format!("/api/v1/devices/{device}")).await;
    assert_eq!(d["power_state"], "off", "{d}");
    let (_, me) = s.get(&s.admin_key, "/api/v1/whoami").await;
    assert_eq!(d["power_switched_by"]["name"], me["key_name"], "{d}");
    assert_ne!(d["power_switched_at"], switched_at, "{d}");
    agent.stop.cancel();
    s.server.shutdown().await;
}
