//! Repo sandboxes through the whole platform: the api-server and a real build worker sharing a
//! real RabbitMQ, a real Docker engine, and a repository served by a real `git daemon`. A user
//! submits a git URL over HTTP, watches it reach `running`, reads its log, opens a terminal in
//! it through the real terminal gateway with a ticket from the API, and deletes the session; the
//! terminal closes and the container is gone.

mod support;

use std::time::Duration;

use labwright_build_worker::{engine::Engine, worker::Worker};
use labwright_testkit::{broker, docker_host, git::GitDaemon};
use serde_json::{Value, json};
use support::*;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Made by `scripts/build-images` (scripts/test runs it).
const BASE: &str = "labwright/runtime:12";

async fn build_view(base: &str, key: &str, id: &str) -> Value {
    let (status, body) = http(
        "GET",
        format!("{base}/api/v1/builds/{id}"),
        Some(key.into()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_url_becomes_a_running_session_and_deleting_it_removes_the_container() {
    let namespace = broker::namespace();
    let docker_host = docker_host();
    let engine = Engine::connect(&docker_host, &namespace)
        .await
        .expect("docker engine");
    assert!(
        engine.docker().inspect_image(BASE).await.is_ok(),
        "{BASE} is missing: scripts/test makes it with scripts/build-images"
    );

    let mut config = test_config(&fresh_database().await);
    config.namespace = namespace.clone();
    config.builds_allow_private_hosts = true;
    let gateway_addr: std::net::SocketAddr =
        format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    config.terminal_url = format!("ws://{gateway_addr}");
    let server = TestServer::start(config.clone()).await;
    // The gateway shares only the ticket secret (created by the api-server) with the server.
    let gateway = labwright_terminal_gateway::start(labwright_terminal_gateway::Config {
        listen_addr: gateway_addr,
        metrics_addr: "127.0.0.1:0".parse().expect("addr"),
        ticket_secret_file: config.data_dir.join("terminal-secret"),
        // Revocations come from the api-server's events.
        amqp_url: amqp_url(),
        events_exchange: config.events_exchange.clone(),
        docker_host: docker_host.clone(),
        namespace: namespace.clone(),
        workers: 1,
        ..Default::default()
    })
    .await
    .expect("terminal gateway");
    let base = server.url("");
    let key = server.admin_key.clone();

    let worker_config = labwright_build_worker::Config {
        amqp_url: amqp_url(),
        events_exchange: config.events_exchange.clone(),
        namespace: namespace.clone(),
        docker_host,
        worker_name: "e2e-worker".into(),
        scratch_dir: temp_dir("scratch"),
        allow_private_hosts: true,
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let _stop_guard = stop.clone().drop_guard();
    tokio::spawn(Worker::new(worker_config, engine.clone()).run(stop.clone()));

    let git = GitDaemon::start().await;
    let repo_url = git.repo(
        "hello",
        &[
            (
                "Dockerfile",
                &format!("FROM {BASE}\nCOPY greeting.txt /srv/\nCMD [\"sleep\", \"600\"]\n"),
            ),
            ("greeting.txt", "hello from a sandbox\n"),
        ],
    );

    let (status, build) = http(
        "POST",
        format!("{base}/api/v1/builds"),
        Some(key.clone()),
        Some(json!({"repo_url": repo_url, "ref": "main"})),
    )
    .await;
    assert_eq!(status, 201, "{build}");
    let id = build["id"].as_str().expect("id").to_string();
    assert_eq!(build["stage"], "queued");

    let running = eventually(Duration::from_secs(120), "build running", || async {
        let b = build_view(&base, &key, &id).await;
        assert_ne!(b["stage"], "failed", "{b}");
        (b["stage"] == "running" && b["session"].is_object()).then_some(b)
    })
    .await;
    assert_eq!(running["stack"], "dockerfile");
    assert_eq!(running["own_dockerfile"], true);
    assert!(
        running["dockerfile"]
            .as_str()
            .is_some_and(|d| d.contains("greeting.txt"))
    );
    let session = running["session"]["id"]
        .as_str()
        .expect("session id")
        .to_string();
    let container = running["session"]["container_id"]
        .as_str()
        .expect("container")
        .to_string();
    let inspected = engine
        .docker()
        .inspect_container(&container, None)
        .await
        .expect("the session's container exists");
    assert_eq!(inspected.state.and_then(|s| s.running), Some(true));

    // The whole build log, as stored, over Server-Sent Events.
    let (status, _, log) = get_bytes(
        format!("{base}/api/v1/builds/{id}/logs?follow=false"),
        key.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("data: Step 1/"), "{log}");
    assert!(log.contains("Successfully tagged"), "{log}");

    // A terminal: viewers may not open one, nobody may for a session that does not exist,
    // an operator's ticket opens a real shell in the session's container.
    let viewer = server.create_key("viewer", "watcher").await;
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/sessions/{session}/terminal"),
        Some(viewer),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/sessions/{}/terminal", Uuid::new_v4()),
        Some(key.clone()),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let operator = server.create_key("operator", "dev").await;
    let (status, ticket) = http(
        "POST",
        format!("{base}/api/v1/sessions/{session}/terminal"),
        Some(operator.clone()),
        None,
    )
    .await;
    assert_eq!(status, 201, "{ticket}");
    let url = ticket["url"].as_str().expect("url");
    assert!(url.starts_with(&format!("ws://{gateway_addr}/terminal/{session}?ticket=")));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    send_keys(&mut ws, "echo hi; cat /srv/greeting.txt\n").await;
    let (out, _) = read_terminal(&mut ws, "hello from a sandbox").await;
    assert!(out.contains("hi\r\n"), "{out}");
    // Used once: the same URL is refused.
    let (mut again, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    let (_, closed) = read_terminal(&mut again, "never").await;
    assert_eq!(
        closed.map(|c| c.0),
        Some(labwright_wire::ws::terminal::close::TICKET_REUSED)
    );

    // Revoking a key closes its open terminal within seconds and voids the tickets it was issued
    // before (the api-server's `key.revoked` event reaches the gateway over the broker).
    eventually(Duration::from_secs(30), "revocation feed", || async {
        gateway.gateway.revocations.is_connected().then_some(())
    })
    .await;
    let (status, leaver) = http(
        "POST",
        format!("{base}/api/v1/keys"),
        Some(key.clone()),
        Some(serde_json::json!({"name": "leaver", "role": "operator"})),
    )
    .await;
    assert_eq!(status, 201, "{leaver}");
    let leaver_key = leaver["secret"].as_str().expect("secret").to_string();
    let ticket_url = || async {
        let (status, ticket) = http(
            "POST",
            format!("{base}/api/v1/sessions/{session}/terminal"),
            Some(leaver_key.clone()),
            None,
        )
        .await;
        assert_eq!(status, 201, "{ticket}");
        ticket["url"].as_str().expect("url").to_string()
    };
    let (mut open, _) = tokio_tungstenite::connect_async(ticket_url().await)
        .await
        .expect("upgrade");
    send_keys(&mut open, "echo still-$((40+2))\n").await;
    read_terminal(&mut open, "still-42").await;
    let earlier = ticket_url().await;
    let (status, _) = http(
        "DELETE",
        format!("{base}/api/v1/keys/{}", leaver["id"].as_str().expect("id")),
        Some(key.clone()),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, closed) = read_terminal(&mut open, "never").await;
    assert_eq!(
        closed.map(|c| c.0),
        Some(labwright_wire::ws::terminal::close::KEY_REVOKED)
    );
    let (mut late, _) = tokio_tungstenite::connect_async(earlier)
        .await
        .expect("upgrade");
    let (_, closed) = read_terminal(&mut late, "never").await;
    assert_eq!(
        closed.map(|c| c.0),
        Some(labwright_wire::ws::terminal::close::KEY_REVOKED)
    );

    let (status, ended) = http(
        "DELETE",
        format!("{base}/api/v1/sessions/{session}"),
        Some(key.clone()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    eventually(Duration::from_secs(30), "container removed", || async {
        engine
            .docker()
            .inspect_container(&container, None)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let b = build_view(&base, &key, &id).await;
    assert_eq!(b["stage"], "stopped", "{b}");
    assert_eq!(b["session"]["status"], "stopped", "{b}");
    // The open terminal was closed with the session, and no new one can be asked for.
    let (_, closed) = read_terminal(&mut ws, "never").await;
    assert_eq!(
        closed.map(|c| c.0),
        Some(labwright_wire::ws::terminal::close::SESSION_ENDED)
    );
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/sessions/{session}/terminal"),
        Some(operator),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    gateway.shutdown().await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send_keys(ws: &mut Ws, keys: &str) {
    use futures::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        keys.as_bytes().to_vec().into(),
    ))
    .await
    .expect("send");
}

/// Terminal output until it contains `needle` or the terminal closes (with its code and reason).
async fn read_terminal(ws: &mut Ws, needle: &str) -> (String, Option<(u16, String)>) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if text.contains(needle) {
            return (text, None);
        }
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("terminal: neither {needle:?} nor a close came; output:\n{text}"),
            Ok(Some(Ok(Message::Binary(b)))) => out.extend_from_slice(&b),
            Ok(Some(Ok(Message::Close(c)))) => {
                return (
                    text,
                    Some(
                        c.map(|c| (u16::from(c.code), c.reason.to_string()))
                            .unwrap_or((1005, String::new())),
                    ),
                );
            }
            Ok(Some(Ok(_))) => {}
            Ok(None) | Ok(Some(Err(_))) => return (text, Some((1006, String::new()))),
        }
    }
}
