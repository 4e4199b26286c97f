//! The fleet end to end over real gRPC, real PostgreSQL and real RabbitMQ: hosts connect, appear
//! through REST and the CLI, go offline, survive server restarts and outages, and stay inside
//! their tenant.

mod support;

use std::{sync::atomic::Ordering, time::Duration};

use labwright_wire::v1::{self as pb, host_link_client::HostLinkClient};
use serde_json::Value;
use support::*;
use tokio_stream::wrappers::ReceiverStream;

const WAIT: Duration = Duration::from_secs(20);

async fn host_named(s: &TestServer, key: &str, name: &str) -> Option<Value> {
    let (status, page) = s.get(key, &format!("/api/v1/hosts?q={name}")).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()?
        .iter()
        .find(|h| h["name"] == name)
        .cloned()
}

async fn wait_status(s: &TestServer, key: &str, name: &str, status: &str) -> Value {
    eventually(WAIT, &format!("host {name} {status}"), || async {
        host_named(s, key, name)
            .await
            .filter(|h| h["status"] == status)
    })
    .await
}

fn run_cli(url: String, key: String, args: &[&str]) -> String {
    use clap::Parser;
    let mut argv = vec!["labwright", "--url", &url, "--key", &key];
    argv.extend_from_slice(args);
    let cli = labwright_cli::Cli::try_parse_from(argv).expect("cli args");
    let mut out = Vec::new();
    labwright_cli::run(cli, &mut out).expect("cli run");
    String::from_utf8(out).expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_connects_and_appears_through_rest_cli_and_events() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let mut tap = EventTap::bind(&s.config.events_exchange).await;
    let token = s.create_key("host", "pi-01 enrollment").await;
    let agent = spawn_agent(
        s.grpc(),
        &token,
        hello(
            "pi-01",
            vec![
                device("stb-1", "sim-stb", &["lab-a", "hdmi"]),
                device("stb-2", "sim-stb", &["lab-b"]),
                device("phone-1", "sim-phone", &[]),
            ],
        ),
    );

    let host = wait_status(&s, &s.admin_key, "pi-01", "online").await;
    assert_eq!(host["device_count"], 3);
    assert_eq!(host["agent_version"], "0.1.0-test");
    let id = host["id"].as_str().expect("id").to_string();

    // Heartbeats carry system stats, flushed to the database.
    let with_stats = eventually(WAIT, "host stats", || async {
        let (_, h) = s.get(&s.admin_key, &format!("/api/v1/hosts/{id}")).await;
        (h["stats"]["mem_total_bytes"].as_u64().unwrap_or(0) > 0).then_some(h)
    })
    .await;
    assert_eq!(with_stats["devices"].as_array().expect("devices").len(), 3);
    assert!(
        agent.counter.acks.load(Ordering::SeqCst) > 0,
        "heartbeats are acknowledged"
    );

    // Filters and pagination.
    let (_, by_model) = s.get(&s.admin_key, "/api/v1/devices?model=sim-stb").await;
    assert_eq!(by_model["total"], 2);
    let (_, by_tag) = s.get(&s.admin_key, "/api/v1/devices?tag=hdmi").await;
    assert_eq!(by_tag["total"], 1);
    assert_eq!(by_tag["items"][0]["device_key"], "stb-1");
    assert_eq!(
        by_tag["items"][0]["capabilities"],
        serde_json::json!(["remote_control", "video_capture"])
    );
    let (_, page) = s
        .get(&s.admin_key, "/api/v1/devices?limit=2&offset=2")
        .await;
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
    assert_eq!(page["total"], 3);
    let (_, online) = s.get(&s.admin_key, "/api/v1/devices?status=online").await;
    assert_eq!(online["total"], 3);
    let (_, offline) = s.get(&s.admin_key, "/api/v1/hosts?status=offline").await;
    assert_eq!(offline["total"], 0);
    let (_, hosts_with_phone) = s.get(&s.admin_key, "/api/v1/hosts?model=sim-phone").await;
    assert_eq!(hosts_with_phone["total"], 1);
    let device_id = by_tag["items"][0]["id"]
        .as_str()
        .expect("device id")
        .to_string();
    let (status, dev) = s
        .get(&s.admin_key, &format!("/api/v1/devices/{device_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(dev["host_name"], "pi-01");

    // The server can push a command down the host's stream.
    let (status, ping) = http(
        "POST",
        s.url(&format!("/api/v1/hosts/{id}/ping")),
        Some(s.admin_key.clone()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{ping}");
    assert!(ping["round_trip_ms"].as_f64().expect("rtt") > 0.0);

    // The CLI shows the same fleet, as a table and as JSON.
    let (url, key) = (s.url(""), s.admin_key.clone());
    let table = tokio::task::spawn_blocking(move || run_cli(url, key, &["hosts", "list"]))
        .await
        .expect("cli");
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("pi-01") && l.contains("online") && l.contains(" 3 ")),
        "{table}"
    );
    let (url, key) = (s.url(""), s.admin_key.clone());
    let json = tokio::task::spawn_blocking(move || {
        run_cli(url, key, &["devices", "list", "--json", "--tag", "lab-b"])
    })
    .await
    .expect("cli");
    let parsed: Value = serde_json::from_str(&json).expect("cli --json is JSON");
    assert_eq!(parsed["items"][0]["device_key"], "stb-2");

    // The change was published on the durable topic exchange, routed by tenant.
    let (routing_key, event) = tap.expect("host.online", WAIT).await;
    assert_eq!(event["host_name"], "pi-01");
    assert!(
        routing_key.starts_with("tenant.") && routing_key.ends_with(".fleet.host.online"),
        "{routing_key}"
    );

    // A clean agent stop closes the stream: offline at once, devices too, and an event.
    agent.stop.cancel();
    let _ = agent.task.await;
    wait_status(&s, &s.admin_key, "pi-01", "offline").await;
    let (_, devs) = s.get(&s.admin_key, "/api/v1/devices?status=offline").await;
    assert_eq!(devs["total"], 3);
    tap.expect("host.offline", WAIT).await;
    s.server.shutdown().await;
}

/// Opens a raw host stream that says hello and then stays silent.
async fn silent_host(
    grpc: String,
    token: &str,
    name: &str,
) -> (
    tokio::sync::mpsc::Sender<pb::HostMessage>,
    tonic::Streaming<pb::ServerMessage>,
) {
    let mut client = HostLinkClient::connect(grpc).await.expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::HostMessage {
        body: Some(pb::host_message::Body::Hello(pb::Hello {
            host_name: name.into(),
            agent_version: "raw".into(),
            info: None,
            running_executions: vec![],
            devices: vec![pb::DeviceInfo {
                device_id: "d1".into(),
                name: "D1".into(),
                model: "sim-stb".into(),
                driver: "simulated".into(),
                capabilities: vec!["power".into()],
                tags: vec![],
                status: pb::DeviceStatus::Online as i32,
                status_detail: String::new(),
            }],
        })),
    })
    .await
    .expect("send hello");
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let inbound = client.session(req).await.expect("session").into_inner();
    (tx, inbound)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_stops_heartbeating_goes_offline_within_the_bound() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let token = s.create_key("host", "silent").await;
    let (tx, mut inbound) = silent_host(s.grpc(), &token, "quiet-pi").await;
    let welcome = inbound.message().await.expect("message").expect("welcome");
    assert!(
        matches!(welcome.body, Some(pb::server_message::Body::Welcome(ref w)) if w.heartbeat_interval_ms == 200)
    );
    let started = std::time::Instant::now();
    wait_status(&s, &s.admin_key, "quiet-pi", "online").await;

    // One heartbeat, then silence (the stream stays open).
    tx.send(pb::HostMessage {
        body: Some(pb::host_message::Body::Heartbeat(pb::Heartbeat {
            sent_at_unix_micros: 1,
            stats: None,
        })),
    })
    .await
    .expect("hb");
    wait_status(&s, &s.admin_key, "quiet-pi", "offline").await;
    let took = started.elapsed();
    let allowed = s.config.offline_after();
    assert!(
        took >= allowed,
        "marked offline after {took:?}, before the {allowed:?} allowed"
    );
    assert!(
        took < allowed * 10,
        "marked offline after {took:?}; bound is {allowed:?} plus one flush"
    );
    let (_, devices) = s.get(&s.admin_key, "/api/v1/devices?status=offline").await;
    assert_eq!(devices["total"], 1);
    // The server closed the silent stream.
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match inbound.message().await {
                Ok(Some(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
    })
    .await;
    assert!(end.is_ok(), "server ends the stream of a silent host");
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_status_changes_are_persisted_and_published() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let mut tap = EventTap::bind(&s.config.events_exchange).await;
    let token = s.create_key("host", "raw").await;
    let (tx, mut inbound) = silent_host(s.grpc(), &token, "raw-pi").await;
    inbound.message().await.expect("message").expect("welcome");
    tx.send(pb::HostMessage {
        body: Some(pb::host_message::Body::DeviceStatus(
            pb::DeviceStatusChanged {
                device_id: "d1".into(),
                status: pb::DeviceStatus::Error as i32,
                detail: "hdmi signal lost".into(),
            },
        )),
    })
    .await
    .expect("send");
    let dev = eventually(WAIT, "device in error", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/devices?status=error").await;
        page["items"].as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert_eq!(dev["status_detail"], "hdmi signal lost");
    let (_, ev) = tap.expect("device.status", WAIT).await;
    assert_eq!(ev["status"], "error");

    // A status for a device the host never declared is a protocol error naming the field.
    tx.send(pb::HostMessage {
        body: Some(pb::host_message::Body::DeviceStatus(
            pb::DeviceStatusChanged {
                device_id: "ghost".into(),
                status: 1,
                detail: String::new(),
            },
        )),
    })
    .await
    .expect("send");
    let err = loop {
        match inbound.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without an error"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("device_id"), "{}", err.message());
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_health_reports_are_stored_published_once_per_change_and_validated() {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let mut tap = EventTap::bind(&s.config.events_exchange).await;
    let token = s.create_key("host", "raw").await;
    let (tx, mut inbound) = silent_host(s.grpc(), &token, "raw-health").await;
    inbound.message().await.expect("message").expect("welcome");
    let report = |health: pb::HealthState, reason: &str, at: u64| pb::HostMessage {
        body: Some(pb::host_message::Body::DeviceHealth(pb::DeviceHealth {
            device_id: "d1".into(),
            health: health as i32,
            reason: reason.into(),
            checked_at_unix_micros: at,
        })),
    };
    let at = 1_800_000_000_000_000;
    tx.send(report(
        pb::HealthState::Degraded,
        "console: unavailable (gone)",
        at,
    ))
    .await
    .expect("send");
    let dev = eventually(WAIT, "device degraded", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/devices").await;
        page["items"]
            .as_array()
            .and_then(|a| a.first().cloned())
            .filter(|d| d["health"] == "degraded")
    })
    .await;
    assert_eq!(dev["health_reason"], "console: unavailable (gone)");
    assert!(dev["health_checked_at"].is_string(), "{dev}");
    let (_, ev) = tap.expect("device.health", WAIT).await;
    assert_eq!(
        (ev["health"].as_str(), ev["reason"].as_str()),
        (Some("degraded"), Some("console: unavailable (gone)"))
    );
    // The same result again only moves the check time; the next change is published.
    tx.send(report(
        pb::HealthState::Degraded,
        "console: unavailable (gone)",
        at + 1,
    ))
    .await
    .expect("send");
    tx.send(report(pb::HealthState::Healthy, "", at + 2))
        .await
        .expect("send");
    let (_, ev) = tap.expect("device.health", WAIT).await;
    assert_eq!(ev["health"], "healthy", "{ev}");
    assert_eq!(ev["previous"], "degraded", "{ev}");

    // A report without a health is a protocol error naming the field.
    tx.send(report(pb::HealthState::Unspecified, "", at + 3))
        .await
        .expect("send");
    let err = loop {
        match inbound.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without an error"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("health"), "{}", err.message());
    s.server.shutdown().await;
}
