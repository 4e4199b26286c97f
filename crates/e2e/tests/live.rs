//! Live view end to end: a real host-agent runtime with a simulated box streams JPEG frames over
//! its gRPC link only while someone watches; the api-server fans the one stream out to every
//! viewer over WebSocket, each at the pace it acknowledges frames.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::*;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const WAIT: Duration = Duration::from_secs(60);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(base: &str, key: &str, device: &str) -> Result<Ws, String> {
    let url = format!(
        "{}/api/v1/devices/{device}/live",
        base.replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("labwright, bearer.{key}").parse().expect("header"),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("labwright")
    );
    Ok(ws)
}

#[derive(Debug)]
struct LiveFrame {
    seq: u64,
    captured_at_us: u64,
    width: u32,
    height: u32,
    jpeg: Vec<u8>,
}

enum Got {
    Frame(LiveFrame),
    Text(Value),
    Closed(u16, String),
    Nothing,
}

async fn next(ws: &mut Ws, within: Duration) -> Got {
    loop {
        match tokio::time::timeout(within, ws.next()).await {
            Err(_) => return Got::Nothing,
            Ok(None) | Ok(Some(Err(_))) => return Got::Closed(1006, String::new()),
            Ok(Some(Ok(Message::Binary(b)))) => {
                assert!(b.len() > 24, "frame of {} bytes", b.len());
                let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8"));
                let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4"));
                return Got::Frame(LiveFrame {
                    captured_at_us: u64_at(0),
                    seq: u64_at(8),
                    width: u32_at(16),
                    height: u32_at(20),
                    jpeg: b[24..].to_vec(),
                });
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                return Got::Text(serde_json::from_str(t.as_str()).expect("json"));
            }
            Ok(Some(Ok(Message::Close(c)))) => {
                let (code, reason) = c
                    .map(|c| (u16::from(c.code), c.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                return Got::Closed(code, reason);
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn frame(ws: &mut Ws) -> LiveFrame {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match next(ws, deadline - tokio::time::Instant::now()).await {
            Got::Frame(f) => return f,
            Got::Text(_) => continue,
            Got::Closed(code, reason) => panic!("closed {code} {reason}"),
            Got::Nothing => panic!("no frame within {WAIT:?}"),
        }
    }
}

async fn ack(ws: &mut Ws, f: &LiveFrame) {
    ws.send(Message::Text(
        json!({"type": "ack", "seq": f.seq}).to_string().into(),
    ))
    .await
    .expect("ack");
}

async fn press(base: &str, key: &str, device: &str, button: &str) {
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/devices/{device}/press"),
        Some(key.into()),
        Some(json!({"key": button})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_stream_fans_out_to_viewers_at_their_own_pace() {
    let (s, base, agent, device) = server_with_one_box().await;
    let runtime = agent.runtime.clone().expect("runtime");
    assert_eq!(runtime.live.active(), 0, "nobody watches: no stream");

    // Viewers may watch: a viewer key.
    let viewer_key = s.create_key("viewer", "watcher").await;
    let mut fast = open(&base, &viewer_key, &device).await.expect("open");
    match next(&mut fast, WAIT).await {
        Got::Text(v) => assert_eq!(v["type"], "live", "{v}"),
        _ => panic!("expected the hello first"),
    }
    let first = frame(&mut fast).await;
    assert_eq!((first.width, first.height), (1280, 720));
    assert_eq!(&first.jpeg[..2], &[0xFF, 0xD8], "a JPEG");
    let now_us = chrono::Utc::now().timestamp_micros() as u64;
    assert!(first.captured_at_us <= now_us && now_us - first.captured_at_us < 60_000_000);
    ack(&mut fast, &first).await;

    // A second viewer that never acknowledges: it gets its in-flight allowance and no more,
    // while the first keeps seeing every change.
    let mut slow = open(&base, &s.admin_key, &device).await.expect("open");
    let mut slow_frames = 0;
    loop {
        match next(&mut slow, Duration::from_secs(2)).await {
            Got::Frame(_) => slow_frames += 1,
            Got::Text(_) => {}
            Got::Nothing => break,
            Got::Closed(c, r) => panic!("slow viewer closed {c} {r}"),
        }
    }
    assert!((1..=2).contains(&slow_frames), "{slow_frames}");
    assert_eq!(runtime.live.active(), 1, "two viewers, one host stream");

    let mut last = first;
    for button in ["right", "right", "down", "left"] {
        press(&base, &s.admin_key, &device, button).await;
        let f = frame(&mut fast).await;
        assert!(f.seq > last.seq, "a newer frame after {button}");
        assert_ne!(f.jpeg, last.jpeg, "the picture changed after {button}");
        ack(&mut fast, &f).await;
        last = f;
    }
    // The slow viewer got at most its allowance of two frames in all.
    while let Got::Frame(_) = next(&mut slow, Duration::from_millis(500)).await {
        slow_frames += 1;
    }
    assert!(slow_frames <= 2, "the slow viewer got {slow_frames} frames");

    // Everyone leaves: the host stops streaming.
    drop(fast);
    drop(slow);
    // Well within the host's 10 s lease: the last viewer's leaving stops it, not the lease.
    eventually(
        Duration::from_secs(5),
        "the host's stream to stop",
        || async { (runtime.live.active() == 0).then_some(()) },
    )
    .await;

    // Unknown devices and missing keys are refused.
    let mut none = open(&base, &s.admin_key, &uuid::Uuid::new_v4().to_string())
        .await
        .expect("open");
    loop {
        match next(&mut none, WAIT).await {
            Got::Closed(code, _) => {
                assert_eq!(code, 4404);
                break;
            }
            Got::Text(_) | Got::Frame(_) => {}
            Got::Nothing => panic!("no close"),
        }
    }
    let url = format!(
        "{}/api/v1/devices/{device}/live",
        base.replacen("http", "ws", 1)
    );
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "no key, no upgrade"
    );
    agent.stop.cancel();
}

async fn reserve(base: &str, key: &str, device: &str, minutes: i32) -> (u16, Value) {
    http(
        "POST",
        format!("{base}/api/v1/devices/{device}/reservation"),
        Some(key.into()),
        Some(json!({"minutes": minutes})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_keeps_others_off_the_device_until_released_and_everyone_sees_it() {
    let (s, base, agent, device) = server_with_one_box().await;
    let alice = s.create_key("operator", "alice").await;
    let bob = s.create_key("operator", "bob").await;
    let viewer = s.create_key("viewer", "watcher").await;
    // Events of the tenant, as the web UI gets them.
    let url = format!("{}/api/v1/events", base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("labwright, bearer.{}", s.admin_key)
            .parse()
            .expect("header"),
    );
    let (mut events, _) = tokio_tungstenite::connect_async(req).await.expect("events");

    assert_eq!(reserve(&base, &viewer, &device, 30).await.0, 403);
    assert_eq!(reserve(&base, &alice, &device, 0).await.0, 400);
    let (status, mine) = reserve(&base, &alice, &device, 30).await;
    assert_eq!(status, 201, "{mine}");
    assert_eq!(
        (mine["holder"].as_str(), mine["mine"].as_bool()),
        (Some("alice"), Some(true))
    );

    // Everyone sees who holds it and until when; the event says so too.
    let (_, seen) = s.get(&bob, &format!("/api/v1/devices/{device}")).await;
    assert_eq!(seen["reservation"]["holder"], "alice", "{seen}");
    assert_eq!(seen["reservation"]["mine"], false);
    let (_, listed) = s.get(&bob, "/api/v1/devices").await;
    assert_eq!(listed["items"][0]["reservation"]["holder"], "alice");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("a reservation event")
            .expect("open")
            .expect("message");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["kind"] == "fleet.device.reservation" {
                assert_eq!(v["event"]["holder"], "alice", "{v}");
                assert_eq!(v["event"]["reserved"], true);
                break;
            }
        }
    }

    // Only the holder controls it; another's reservation attempt says who holds it.
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/devices/{device}/press"),
        Some(bob.clone()),
        Some(json!({"key": "right"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reserved by alice")),
        "{body}"
    );
    press(&base, &alice, &device, "right").await;
    let (status, body) = reserve(&base, &bob, &device, 10).await;
    assert_eq!(status, 409, "{body}");

    // Bob's run waits; Alice's run goes first although it was queued later.
    let yaml = "name: Press OK\ndevice_model: sim-stb\nsteps:\n  - press: ok\n";
    push_testcase(&base, &s.admin_key, yaml).await;
    let queue = |key: String| {
        let (base, device) = (base.clone(), device.clone());
        async move {
            run(&base, &key, "Press OK", &device).await["id"]
                .as_str()
                .expect("id")
                .to_string()
        }
    };
    let status_of = |id: String| {
        let s = &s;
        async move {
            s.get(&s.admin_key, &format!("/api/v1/executions/{id}"))
                .await
                .1["status"]
                .clone()
        }
    };
    let bobs = queue(bob.clone()).await;
    let alices = queue(alice.clone()).await;
    eventually(WAIT, "alice's run to pass", || async {
        (status_of(alices.clone()).await == "passed").then_some(())
    })
    .await;
    assert_eq!(
        status_of(bobs.clone()).await,
        "queued",
        "bob's run waits for the reservation"
    );

    // Keep-alive works for the holder only; releasing lets Bob's run go.
    let put = |key: String| {
        http(
            "PUT",
            format!("{base}/api/v1/devices/{device}/reservation"),
            Some(key),
            None,
        )
    };
    assert_eq!(put(alice.clone()).await.0, 200);
    assert_eq!(put(bob.clone()).await.0, 404);
    let del = |key: String| {
        http(
            "DELETE",
            format!("{base}/api/v1/devices/{device}/reservation"),
            Some(key),
            None,
        )
    };
    assert_eq!(del(bob.clone()).await.0, 404, "not bob's to release");
    assert_eq!(del(alice.clone()).await.0, 204);
    eventually(WAIT, "bob's run to pass", || async {
        (status_of(bobs.clone()).await == "passed").then_some(())
    })
    .await;
    let (_, seen) = s.get(&bob, &format!("/api/v1/devices/{device}")).await;
    assert!(seen["reservation"].is_null(), "{seen}");

    // An admin may end anyone's reservation.
    assert_eq!(reserve(&base, &bob, &device, 10).await.0, 201);
    assert_eq!(del(s.admin_key.clone()).await.0, 204);
    agent.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_cannot_keep_up_gets_the_light_stream() {
    let (s, base, agent, device) = server_with_one_box().await;
    // The live player: the picture changes every frame.
    for key in ["up", "left", "left", "left", "ok"] {
        press(&base, &s.admin_key, &device, key).await;
    }
    let mut ws = open(&base, &s.admin_key, &device).await.expect("open");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut light = false;
    let mut last_size = (0, 0);
    while tokio::time::Instant::now() < deadline {
        match next(&mut ws, WAIT).await {
            Got::Frame(f) => {
                last_size = (f.width, f.height);
                if light && last_size == (640, 360) {
                    assert_eq!(&f.jpeg[..2], &[0xFF, 0xD8]);
                    break;
                }
                // A slow page: a quarter of a second per frame.
                tokio::time::sleep(Duration::from_millis(250)).await;
                ack(&mut ws, &f).await;
            }
            Got::Text(v) if v["type"] == "quality" => {
                assert_eq!(v["tier"], "light", "{v}");
                light = true;
            }
            Got::Text(_) => {}
            Got::Closed(c, r) => panic!("closed {c} {r}"),
            Got::Nothing => panic!("no frames"),
        }
    }
    assert!(light, "never moved to the light tier");
    assert_eq!(last_size, (640, 360), "light frames are half size");
    agent.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mains_power_switches_the_box_off_and_on_and_respects_roles_and_reservations() {
    let (s, base, agent, device) = server_with_one_box().await;
    let viewer = s.create_key("viewer", "watcher").await;
    let (status, body) = power(&base, &viewer, &device, "state").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("on")),
        "{body}"
    );
    assert_eq!(power(&base, &viewer, &device, "off").await.0, 403);
    assert_eq!(power(&base, &s.admin_key, &device, "explode").await.0, 400);

    let (status, body) = power(&base, &s.admin_key, &device, "off").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("off")),
        "{body}"
    );
    // Off is black.
    let (status, _, jpeg) = get_bytes(
        format!("{base}/api/v1/devices/{device}/screenshot"),
        s.admin_key.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let frame = labwright_core::image_io::decode_frame(&jpeg).expect("a JPEG");
    let mean = frame.rgb.iter().map(|&v| f64::from(v)).sum::<f64>() / frame.rgb.len() as f64;
    assert!(mean < 5.0, "a powered-off box is black (mean {mean})");
    let (status, body) = power(&base, &s.admin_key, &device, "on").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("on")),
        "{body}"
    );

    // Another key's reservation keeps the switch away from everyone else.
    let alice = s.create_key("operator", "alice").await;
    assert_eq!(reserve(&base, &alice, &device, 5).await.0, 201);
    let (status, body) = power(&base, &s.admin_key, &device, "cycle").await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = power(&base, &alice, &device, "cycle").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("on")),
        "{body}"
    );
    agent.stop.cancel();
}
