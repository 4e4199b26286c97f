//! Outages: the api-server killed and restarted, PostgreSQL cut off, RabbitMQ cut off. Hosts stay
//! (or get back) connected, nothing is duplicated, nothing is lost, and everything recovers alone.

mod support;

use std::{process::Command, sync::atomic::Ordering, time::Duration};

use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// Waits until `/readyz` answers `status`; returns its body.
async fn readyz(s: &TestServer, status: u16, what: &str) -> Value {
    eventually(WAIT, what, || async {
        let (got, body) = http("GET", s.url("/readyz"), None, None).await;
        (got == status).then_some(body)
    })
    .await
}

async fn get(base: &str, key: &str, path: &str) -> (u16, Value) {
    http("GET", format!("{base}{path}"), Some(key.to_string()), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_comes_back_and_the_agent_reconnects_without_duplicates() {
    let db = fresh_database().await;
    let (config, mut server, base, admin) = start_binary(&db).await;
    let token = create_key(&base, &admin, "host", "pi").await;
    let agent = spawn_agent(
        format!("http://{}", config.grpc_addr),
        &token,
        hello(
            "pi-restart",
            vec![
                device("stb-1", "sim-stb", &[]),
                device("stb-2", "sim-stb", &[]),
            ],
        ),
    );
    let online = |base: String, admin: String| async move {
        let (_, page) = get(&base, &admin, "/api/v1/hosts").await;
        page["items"]
            .as_array()
            .and_then(|a| a.first().cloned())
            .filter(|h| h["status"] == "online")
    };
    let before = eventually(WAIT, "host online", || online(base.clone(), admin.clone())).await;
    let (_, devices_before) = get(&base, &admin, "/api/v1/devices").await;

    for round in 0..2 {
        let disconnects = agent.counter.disconnects.load(Ordering::SeqCst);
        server.kill().expect("SIGKILL api-server");
        server.wait().expect("reap");
        eventually(WAIT, "agent notices", || async {
            (agent.counter.disconnects.load(Ordering::SeqCst) > disconnects).then_some(())
        })
        .await;
        let connects = agent.counter.connects.load(Ordering::SeqCst);
        server = spawn_binary(&config);
        eventually(
            WAIT,
            &format!("agent reconnects (round {round})"),
            || async { (agent.counter.connects.load(Ordering::SeqCst) > connects).then_some(()) },
        )
        .await;
        let after = eventually(WAIT, "host online again", || {
            online(base.clone(), admin.clone())
        })
        .await;
        assert_eq!(after["id"], before["id"], "the host keeps its identity");
        let (_, hosts) = get(&base, &admin, "/api/v1/hosts").await;
        assert_eq!(hosts["total"], 1, "no duplicate host rows");
        let (_, devices) = get(&base, &admin, "/api/v1/devices").await;
        assert_eq!(devices["total"], 2, "no duplicate device rows");
        let ids = |v: &Value| -> Vec<Value> {
            v["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|d| d["id"].clone())
                .collect()
        };
        assert_eq!(
            ids(&devices),
            ids(&devices_before),
            "devices keep their ids"
        );
    }
    agent.stop.cancel();
    let _ = agent.task.await;
    // SIGTERM: a clean shutdown.
    let pid = server.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        status.success(),
        "api-server exits 0 on SIGTERM: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_503_keeps_hosts_connected_and_loses_nothing() {
    let db = fresh_database().await;
    let proxy = Proxy::start(target_of(&db)).await;
    let mut config = test_config(&via(&db, proxy.addr));
    // What is under test is the outage, not heartbeat timing: 200 ms × 3 missed once on a busy
    // two-core machine and disconnected the staying host. Ten misses (2 s) keep it apart.
    config.missed_heartbeats = 10;
    let s = TestServer::start(config).await;
    let mut tap = EventTap::bind(&s.config.events_exchange).await;
    // One enrollment token per host: a token is bound to the first host name it says hello as.
    let token = s.create_key("host", "pi").await;
    let other_token = s.create_key("host", "pi 2").await;
    let stays = spawn_agent(
        s.grpc(),
        &token,
        hello("pi-stays", vec![device("stb-1", "sim-stb", &[])]),
    );
    let leaves = spawn_agent(
        s.grpc(),
        &other_token,
        hello("pi-leaves", vec![device("stb-1", "sim-stb", &[])]),
    );
    eventually(WAIT, "both hosts online", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/hosts?status=online").await;
        (page["total"] == 2).then_some(())
    })
    .await;

    proxy.cut();
    let ready = readyz(&s, 503, "readyz reports the database").await;
    assert_eq!(
        (ready["database"].as_str(), ready["broker"].as_str()),
        (Some("unavailable"), Some("ok"))
    );
    let (status, body) = s.get(&s.admin_key, "/api/v1/hosts").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "database_unavailable");

    // One host leaves during the outage; the other keeps heartbeating and is never disconnected.
    leaves.stop.cancel();
    let _ = leaves.task.await;
    let acks = stays.counter.acks.load(Ordering::SeqCst);
    tokio::time::sleep(s.config.offline_after() * 3).await;
    assert!(
        stays.counter.acks.load(Ordering::SeqCst) > acks + 3,
        "heartbeats acknowledged during the outage"
    );
    assert_eq!(
        stays.counter.disconnects.load(Ordering::SeqCst),
        0,
        "the staying host was never disconnected"
    );

    proxy.restore();
    readyz(&s, 200, "ready again").await;
    // The departure that happened during the outage is written and published once the database is back.
    eventually(WAIT, "pi-leaves offline", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/hosts?status=offline").await;
        (page["total"] == 1 && page["items"][0]["name"] == "pi-leaves").then_some(())
    })
    .await;
    let (_, online) = s.get(&s.admin_key, "/api/v1/hosts?status=online").await;
    assert_eq!(online["total"], 1);
    assert_eq!(online["items"][0]["name"], "pi-stays");
    let (_, ev) = tap.expect("host.offline", WAIT).await;
    assert_eq!(ev["host_name"], "pi-leaves");
    assert_eq!(stays.counter.disconnects.load(Ordering::SeqCst), 0);
    stays.stop.cancel();
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_keeps_events_in_the_outbox_and_publishes_them_after() {
    let db = fresh_database().await;
    let amqp = amqp_url();
    let proxy = Proxy::start(target_of(&amqp)).await;
    let mut config = test_config(&db);
    config.amqp_url = via(&amqp, proxy.addr);
    let s = TestServer::start(config).await;
    // The tap talks to the broker directly, not through the proxy.
    let mut tap = EventTap::bind(&s.config.events_exchange).await;
    readyz(&s, 200, "ready").await;

    proxy.cut();
    let ready = readyz(&s, 503, "readyz reports the broker").await;
    assert_eq!(
        (ready["database"].as_str(), ready["broker"].as_str()),
        (Some("ok"), Some("unavailable"))
    );

    // The fleet keeps working without the broker; its events wait in the outbox.
    let token = s.create_key("host", "pi").await;
    let agent = spawn_agent(
        s.grpc(),
        &token,
        hello("pi-mq", vec![device("stb-1", "sim-stb", &[])]),
    );
    eventually(WAIT, "host online", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/hosts?status=online").await;
        (page["total"] == 1).then_some(())
    })
    .await;
    assert!(
        tap.next(Duration::from_millis(500)).await.is_none(),
        "nothing can be published while the broker is cut off"
    );

    proxy.restore();
    let (_, ev) = tap.expect("host.online", WAIT).await;
    assert_eq!(ev["host_name"], "pi-mq");
    agent.stop.cancel();
    let _ = agent.task.await;
    tap.expect("host.offline", WAIT).await;
    s.server.shutdown().await;
}
