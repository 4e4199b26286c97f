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

/// The platform for repo sandboxes: the api-server in-process, the terminal gateway and a build
/// worker (its config changed by `worker`) on a namespace of their own, and the Docker engine.
struct Stack {
    server: TestServer,
    gateway: labwright_terminal_gateway::Running,
    gateway_addr: std::net::SocketAddr,
    engine: Engine,
    base: String,
    key: String,
    _stop: tokio_util::sync::DropGuard,
}

impl Stack {
    async fn start(worker: impl FnOnce(&mut labwright_build_worker::Config)) -> Self {
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

        let mut worker_config = labwright_build_worker::Config {
            amqp_url: amqp_url(),
            events_exchange: config.events_exchange.clone(),
            namespace: namespace.clone(),
            docker_host,
            worker_name: "e2e-worker".into(),
            scratch_dir: temp_dir("scratch"),
            allow_private_hosts: true,
            ..Default::default()
        };
        worker(&mut worker_config);
        let stop = CancellationToken::new();
        tokio::spawn(Worker::new(worker_config, engine.clone()).run(stop.clone()));
        Self {
            server,
            gateway,
            gateway_addr,
            engine,
            base,
            key,
            _stop: stop.drop_guard(),
        }
    }

    /// Builds `repo_url` and waits for its session to run; returns the build's view.
    async fn running(&self, repo_url: &str) -> Value {
        let (base, key) = (&self.base, &self.key);
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
        eventually(Duration::from_secs(120), "build running", || async {
            let b = build_view(base, key, &id).await;
            assert_ne!(b["stage"], "failed", "{b}");
            (b["stage"] == "running" && b["session"].is_object()).then_some(b)
        })
        .await
    }

    async fn shutdown(self) {
        self.gateway.shutdown().await;
    }

    async fn session(&self, id: &str) -> Value {
        let (status, s) = http(
            "GET",
            format!("{}/api/v1/sessions/{id}", self.base),
            Some(self.key.clone()),
            None,
        )
        .await;
        assert_eq!(status, 200, "{s}");
        s
    }

    /// A terminal into the session, opened with a ticket of the admin key.
    async fn terminal(&self, session: &str) -> Ws {
        let (status, ticket) = http(
            "POST",
            format!("{}/api/v1/sessions/{session}/terminal", self.base),
            Some(self.key.clone()),
            None,
        )
        .await;
        assert_eq!(status, 201, "{ticket}");
        let url = ticket["url"].as_str().expect("url");
        tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade")
            .0
    }

    /// The session's output as stored (`query` added to `follow=false`): its lines, and what
    /// its `end` event said.
    async fn output(&self, session: &str, query: &str) -> (Vec<String>, String) {
        let (status, _, body) = get_bytes(
            format!(
                "{}/api/v1/sessions/{session}/logs?follow=false{query}",
                self.base
            ),
            self.key.clone(),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        sse_lines(&String::from_utf8_lossy(&body))
    }
}

/// Follows output at `url` (Server-Sent Events); returns once its first line came (the stream
/// is open), with the task that reads it to its end.
async fn follow_output(url: String, key: String) -> tokio::task::JoinHandle<String> {
    let (opened, first) = tokio::sync::oneshot::channel();
    let reader = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let resp = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {key}"))
            .call()
            .expect("follow output");
        assert_eq!(resp.status().as_u16(), 200);
        let mut body = resp.into_body().into_reader();
        let (mut text, mut buf, mut opened) = (String::new(), [0u8; 4096], Some(opened));
        loop {
            match body.read(&mut buf) {
                Ok(0) | Err(_) => return text,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
            if text.contains("data: ")
                && let Some(o) = opened.take()
            {
                let _ = o.send(());
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("the output stream gave its first line")
        .expect("the output stream opened");
    reader
}

/// The `data` of the message events of a Server-Sent Events body, and the data of its `end`.
fn sse_lines(body: &str) -> (Vec<String>, String) {
    let (mut lines, mut end) = (Vec::new(), String::new());
    for event in body.split("\n\n") {
        let data = event.lines().find_map(|l| l.strip_prefix("data: "));
        match (event.lines().any(|l| l == "event: end"), data) {
            (true, Some(d)) => end = d.to_string(),
            (false, Some(d)) => lines.push(d.to_string()),
            _ => {}
        }
    }
    (lines, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_url_becomes_a_running_session_and_deleting_it_removes_the_container() {
    let stack = Stack::start(|_| {}).await;
    let (server, gateway, gateway_addr, engine) = (
        &stack.server,
        &stack.gateway,
        stack.gateway_addr,
        &stack.engine,
    );
    let (base, key) = (stack.base.clone(), stack.key.clone());

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

    let running = stack.running(&repo_url).await;
    let id = running["id"].as_str().expect("id").to_string();
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
    stack.shutdown().await;
}

/// An app that exits by itself: the worker learns it from the engine's events, the session
/// becomes `exited` with the code, the open terminal closes saying so, the app's output is kept
/// (tail and follow), and a restart runs it again in a new container. An app that runs out of
/// memory is `exited` too, said to be OOM-killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_exits_or_runs_out_of_memory_is_exited_with_its_output_and_restarts() {
    let stack = Stack::start(|w| w.session_memory_mib = 64).await;
    let (base, key) = (stack.base.clone(), stack.key.clone());
    let git = GitDaemon::start().await;
    // It waits for /tmp/go (made from a terminal), then says bye on stderr and exits with 3
    // (stdout and stderr are collected apart: only lines written apart in time have an order).
    let exits = git.repo(
        "exits",
        &[(
            "Dockerfile",
            &format!(
                "FROM {BASE}\nCMD [\"sh\", \"-c\", \"echo started; echo waiting; \
                 while [ ! -e /tmp/go ]; do sleep 0.1; done; echo bye >&2; exit 3\"]\n"
            ),
        )],
    );
    // `tail` keeps the line it reads from /dev/zero, which never ends: past 64 MiB it is killed.
    let hog = git.repo(
        "hog",
        &[(
            "Dockerfile",
            &format!("FROM {BASE}\nCMD [\"sh\", \"-c\", \"echo hogging; exec tail /dev/zero\"]\n"),
        )],
    );
    let (running, hogging) = tokio::join!(stack.running(&exits), stack.running(&hog));
    let session = running["session"]["id"].as_str().expect("id").to_string();

    // Its output so far, stdout and stderr, as it came.
    let (lines, end) = eventually(Duration::from_secs(30), "output stored", || async {
        let (lines, end) = stack.output(&session, "").await;
        (lines.len() >= 2).then_some((lines, end))
    })
    .await;
    assert_eq!(lines, ["started", "waiting"], "{lines:?}");
    assert_eq!(end, "running");
    // Viewers may read it but not restart the session; nobody without a key reads it.
    let viewer = stack.server.create_key("viewer", "watcher").await;
    let (status, _, _) = get_bytes(
        format!("{base}/api/v1/sessions/{session}/logs?follow=false"),
        viewer.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/sessions/{session}/restart"),
        Some(viewer),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = http(
        "GET",
        format!("{base}/api/v1/sessions/{session}/logs"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = http(
        "GET",
        format!("{base}/api/v1/sessions/{}/logs", Uuid::new_v4()),
        Some(key.clone()),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // A terminal makes the app exit; the terminal closes saying how it ended, and a follower of
    // the output gets the last line, then the end with the session's new status.
    let mut ws = stack.terminal(&session).await;
    send_keys(&mut ws, "echo ready-$((40+2))\n").await;
    read_terminal(&mut ws, "ready-42").await;
    let follow = follow_output(
        format!("{base}/api/v1/sessions/{session}/logs?follow=true&tail=1"),
        key.clone(),
    )
    .await;
    send_keys(&mut ws, "touch /tmp/go\n").await;
    let (_, closed) = read_terminal(&mut ws, "never").await;
    let (code, reason) = closed.expect("closed");
    assert_eq!(
        code,
        labwright_wire::ws::terminal::close::APP_EXITED,
        "{reason}"
    );
    assert_eq!(reason, "the app exited with code 3");
    let followed = follow.await.expect("follow");
    let (lines, end) = sse_lines(&followed);
    assert_eq!(
        lines,
        ["waiting", "bye"],
        "the last stored line, then the new ones"
    );
    assert_eq!(end, "exited");
    let exited = stack.session(&session).await;
    assert_eq!(exited["status"], "exited", "{exited}");
    assert_eq!(exited["exit_code"], 3, "{exited}");
    assert_eq!(exited["oom_killed"], false, "{exited}");
    assert!(exited["exited_at"].is_string(), "{exited}");
    assert_eq!(exited["end_reason"], "the app exited with code 3");
    let b = build_view(&base, &key, &session).await;
    assert_eq!(b["session"]["exit_code"], 3, "{b}");
    let (lines, end) = stack.output(&session, "&tail=2").await;
    assert_eq!(
        (lines, end.as_str()),
        (vec!["waiting".to_string(), "bye".to_string()], "exited")
    );
    // The same from the command line, and the EXIT column.
    let out = cli(&base, &key, &["sessions", "logs", &session, "--tail", "2"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "waiting\nbye\n");
    let out = cli(&base, &key, &["sessions", "list", "--status", "exited"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let row = listed
        .lines()
        .find(|l| l.starts_with(&session))
        .unwrap_or_else(|| panic!("{session} not listed: {listed}"));
    assert!(row.split_whitespace().any(|w| w == "3"), "{listed}");
    // No terminal into an exited session.
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/sessions/{session}/terminal"),
        Some(key.clone()),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // A restart runs the app again in a new container; its output follows the first run's.
    let old_container = exited["container_id"]
        .as_str()
        .expect("container")
        .to_string();
    // (From the command line, which shows the session it answers with.)
    let out = cli(&base, &key, &["--json", "sessions", "restart", &session]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let restarted: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(restarted["status"], "running", "{restarted}");
    assert_eq!(restarted["restarts"], 1, "{restarted}");
    let again = eventually(Duration::from_secs(60), "restarted", || async {
        let s = stack.session(&session).await;
        (s["container_id"] != old_container.as_str() && s["status"] == "running").then_some(s)
    })
    .await;
    assert!(again["exit_code"].is_null(), "{again}");
    let container = again["container_id"]
        .as_str()
        .expect("container")
        .to_string();
    let inspected = stack
        .engine
        .docker()
        .inspect_container(&container, None)
        .await
        .expect("the new container");
    assert_eq!(inspected.state.and_then(|s| s.running), Some(true));
    eventually(Duration::from_secs(30), "second run's output", || async {
        let (lines, _) = stack.output(&session, "").await;
        (lines == ["started", "waiting", "bye", "started", "waiting"]).then_some(())
    })
    .await;

    // The app that ran out of memory.
    let hog_session = hogging["session"]["id"].as_str().expect("id").to_string();
    let oom = eventually(Duration::from_secs(60), "hog exited", || async {
        let s = stack.session(&hog_session).await;
        (s["status"] == "exited").then_some(s)
    })
    .await;
    assert_eq!(oom["oom_killed"], true, "{oom}");
    assert_eq!(oom["exit_code"], 137, "{oom}");
    assert!(
        oom["end_reason"]
            .as_str()
            .is_some_and(|r| r.contains("ran out of memory")),
        "{oom}"
    );
    let (lines, end) = stack.output(&hog_session, "").await;
    assert_eq!(
        (lines, end.as_str()),
        (vec!["hogging".to_string()], "exited")
    );

    // Deleting an exited session removes its container.
    let (status, ended) = http(
        "DELETE",
        format!("{base}/api/v1/sessions/{hog_session}"),
        Some(key.clone()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "stopped");
    let hog_container = oom["container_id"].as_str().expect("container").to_string();
    eventually(Duration::from_secs(30), "hog removed", || async {
        stack
            .engine
            .docker()
            .inspect_container(&hog_container, None)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    stack.shutdown().await;
}

/// The real `labwright` binary, as a person runs it.
async fn cli(base: &str, key: &str, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(labwright_testkit::binary::cargo_bin("labwright"));
    command
        .args(["--url", base])
        .args(args)
        .env("LABWRIGHT_API_KEY", key)
        .env_remove("LABWRIGHT_URL");
    tokio::task::spawn_blocking(move || command.output().expect("labwright runs"))
        .await
        .expect("cli thread")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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
