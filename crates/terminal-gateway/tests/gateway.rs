//! The terminal gateway against a real Docker engine: session containers made by the build
//! worker's own engine code, real shells, a real WebSocket client. Tickets are signed with the
//! same key type the api-server uses (the api-server's own endpoint is tested in its full-stack
//! sandbox test).

#[path = "../../build-worker/tests/support/mod.rs"]
mod support;

use std::{path::PathBuf, time::Duration};

use futures::{SinkExt, StreamExt};
use labwright_build_worker::engine::{self, Engine};
use labwright_core::terminal::{TicketClaims, TicketKey};
use labwright_terminal_gateway::{Config, Running, recording::Recordings};
use labwright_wire::ws::terminal::{Event, close};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// A session container like a build leaves: the worker's engine, limits, labels and network.
struct Session {
    engine: Engine,
    engine_namespace: String,
    id: Uuid,
    tenant: Uuid,
    container: String,
}

impl Session {
    async fn start() -> Self {
        Self::start_in(&support::namespace()).await
    }

    async fn start_in(ns: &str) -> Self {
        let ns = ns.to_string();
        let engine = support::engine(&ns).await;
        support::ensure_base_image(&engine).await;
        let id = Uuid::new_v4();
        let tenant = Uuid::new_v4();
        let dir = support::temp_dir("term");
        let image = engine
            .build(
                &dir,
                Some(&format!(
                    "FROM {}\nCMD [\"sleep\", \"3600\"]\n",
                    support::BASE_IMAGE
                )),
                id,
                &engine::BuildLimits {
                    timeout: Duration::from_secs(120),
                    ..Default::default()
                },
                &mut |_| {},
            )
            .await
            .expect("image");
        let _ = std::fs::remove_dir_all(dir);
        let started = engine
            .start_session(&engine::SessionSpec {
                session_id: id,
                build_id: id,
                tenant_id: tenant,
                image: &image,
                hard_expiry_unix: chrono::Utc::now().timestamp() + 3600,
                limits: &engine::Limits {
                    memory_bytes: 512 << 20,
                    nano_cpus: 1_000_000_000,
                    pids: 2048,
                },
                restart: 0,
            })
            .await
            .expect("session");
        Self {
            engine,
            engine_namespace: ns,
            id,
            tenant,
            container: started.container_id,
        }
    }
}

impl Session {
    /// Removes the container, network and image (retried: the gateway may still be ending
    /// shells in the container while it goes).
    async fn cleanup(&self) {
        let mut last = None;
        for _ in 0..5 {
            match self.engine.remove_session(self.id).await {
                Ok(_) => return,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("cleanup: {last:?}");
    }
}

struct Gateway {
    running: Option<Running>,
    key: TicketKey,
    secret_file: PathBuf,
}

impl Gateway {
    async fn start(namespace: &str, configure: impl FnOnce(&mut Config)) -> Self {
        let secret = TicketKey::generate_secret();
        let secret_file = std::env::temp_dir().join(format!("lw-tg-{}", Uuid::new_v4().simple()));
        std::fs::write(&secret_file, &secret).expect("secret");
        let mut config = Config {
            listen_addr: "127.0.0.1:0".parse().expect("addr"),
            metrics_addr: "127.0.0.1:0".parse().expect("addr"),
            ticket_secret_file: secret_file.clone(),
            docker_host: support::docker_host(),
            namespace: namespace.to_string(),
            workers: 2,
            // Revocations are followed only by the test about them.
            amqp_url: String::new(),
            ..Config::default()
        };
        configure(&mut config);
        let running = labwright_terminal_gateway::start(config)
            .await
            .expect("gateway starts");
        Self {
            running: Some(running),
            key: TicketKey::from_secret(secret.as_bytes()).expect("key"),
            secret_file,
        }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    fn claims(&self, s: &Session) -> TicketClaims {
        TicketClaims {
            jti: Uuid::new_v4(),
            tenant: s.tenant,
            session: s.id,
            container: s.container.clone(),
            key: Uuid::new_v4(),
            exp: chrono::Utc::now().timestamp() + 30,
        }
    }

    fn ticket(&self, s: &Session) -> String {
        self.key.sign(&self.claims(s))
    }

    fn url(&self, session: &str, ticket: Option<&str>) -> String {
        let base = format!("ws://{}/terminal/{session}", self.running().addr);
        match ticket {
            Some(t) => format!("{base}?ticket={t}"),
            None => base,
        }
    }

    async fn open(&self, s: &Session) -> Term {
        let t = Term::connect(&self.url(&s.id.to_string(), Some(&self.ticket(s)))).await;
        t.ready().await
    }

    async fn metrics(&self) -> String {
        let addr = self.running().metrics_addr;
        tokio::task::spawn_blocking(move || {
            ureq::get(&format!("http://{addr}/metrics"))
                .call()
                .expect("metrics")
                .into_body()
                .read_to_string()
                .expect("text")
        })
        .await
        .expect("join")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.secret_file);
    }
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in metrics:\n{text}"))
}

/// A WebSocket terminal client.
struct Term {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    out: Vec<u8>,
    frames: Vec<Vec<u8>>,
    events: Vec<Event>,
    closed: Option<(u16, String)>,
}

impl Term {
    async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        Self {
            ws,
            out: Vec::new(),
            frames: Vec::new(),
            events: Vec::new(),
            closed: None,
        }
    }

    async fn ready(mut self) -> Self {
        let ok = self
            .wait(|t| {
                t.events.iter().any(|e| matches!(e, Event::Ready { .. })) || t.closed.is_some()
            })
            .await;
        assert!(ok && self.closed.is_none(), "not ready: {:?}", self.closed);
        self
    }

    /// Reads until `done` holds (true) or the connection closes or time runs out (false).
    async fn wait(&mut self, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self) {
            if self.closed.is_some() {
                return false;
            }
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) => {
                    self.closed.get_or_insert((1006, "no close frame".into()));
                    continue;
                }
                Ok(Some(Err(e))) => {
                    self.closed.get_or_insert((1006, e.to_string()));
                    continue;
                }
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Binary(b) => {
                    self.out.extend_from_slice(&b);
                    self.frames.push(b.to_vec());
                }
                Message::Text(t) => self
                    .events
                    .push(serde_json::from_str(t.as_str()).expect("event JSON")),
                Message::Close(c) => {
                    self.closed = Some(
                        c.map(|c| (u16::from(c.code), c.reason.to_string()))
                            .unwrap_or((1005, String::new())),
                    )
                }
                _ => {}
            }
        }
        true
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    async fn until_output(&mut self, needle: &str) {
        let ok = self.wait(|t| t.text().contains(needle)).await;
        assert!(
            ok,
            "{needle:?} never came; closed {:?}; output:\n{}",
            self.closed,
            self.text()
        );
    }

    async fn send(&mut self, keys: &str) {
        self.ws
            .send(Message::Binary(keys.as_bytes().to_vec().into()))
            .await
            .expect("send");
    }

    async fn control(&mut self, json: &str) {
        self.ws
            .send(Message::Text(json.into()))
            .await
            .expect("send");
    }

    async fn closed(&mut self) -> (u16, String) {
        let ok = self.wait(|t| t.closed.is_some()).await;
        assert!(ok, "never closed; output:\n{}", self.text());
        self.closed.clone().expect("closed")
    }
}

async fn refused(url: &str) -> (u16, String) {
    Term::connect(url).await.closed().await
}

/// Processes in the container whose command line contains `needle`.
async fn processes(s: &Session, needle: &str) -> usize {
    let out = tokio::process::Command::new("docker")
        .env("DOCKER_HOST", support::docker_host())
        .args(["top", &s.container, "-eo", "pid,args"])
        .output()
        .await
        .expect("docker top");
    // `PID ARGS` lines; docker-init's own line names the command too: skip it.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim_start().split_once(' '))
        .filter(|(_, args)| args.trim_start().starts_with(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_shell_echoes_resizes_keeps_characters_whole_and_exits() {
    let s = Session::start().await;
    let g = Gateway::start(&s.engine_namespace, |_| {}).await;
    let mut t = g.open(&s).await;
    assert!(
        t.events.contains(&Event::Ready { cols: 80, rows: 24 }),
        "{:?}",
        t.events
    );

    t.send("echo hi-$((6*7))\n").await;
    t.until_output("hi-42").await;

    t.control(r#"{"type":"resize","cols":132,"rows":43}"#).await;
    t.send("stty size\n").await;
    t.until_output("43 132").await;

    // Characters of every width, a long line of them, and bytes that bollard's exec decoder
    // takes for a stream header (0, 1, 2 first): all arrive, and every frame decodes alone.
    t.send("for i in 1 2 3 4 5 6 7 8; do printf 'héllo→wörld🎉日本語%.0s' $(seq 200); done; echo ' END'\n")
        .await;
    t.until_output(" END\r\n").await;
    let expected = "héllo→wörld🎉日本語".repeat(1600);
    assert!(t.text().contains(&expected), "multi-byte text corrupted");
    for f in &t.frames {
        assert!(
            std::str::from_utf8(f).is_ok(),
            "a frame split a character: {f:?}"
        );
    }
    t.out.clear();
    t.send("printf '\\000\\001\\002\\000\\000\\000\\000\\377tail'; echo; echo done-$((1+1))\n")
        .await;
    t.until_output("done-2").await;
    let raw = b"\0\x01\x02\0\0\0\0\xfftail\r\n";
    assert!(
        t.out.windows(raw.len()).any(|w| w == raw),
        "raw bytes altered: {:?}",
        t.text()
    );

    t.control(r#"{"type":"ping","id":7}"#).await;
    assert!(
        t.wait(|t| t.events.contains(&Event::Pong { id: Some(7.0) }))
            .await
    );

    t.send("exit 3\n").await;
    assert_eq!(t.closed().await.0, close::NORMAL);
    assert!(
        t.events.contains(&Event::Exit { code: 3 }),
        "{:?}",
        t.events
    );

    let m = g.metrics().await;
    assert_eq!(metric(&m, "labwright_terminals_open"), 0.0);
    assert_eq!(metric(&m, "labwright_terminals_opened_total"), 1.0);
    assert!(metric(&m, "labwright_terminal_bytes_total{direction=\"in\"}") > 50.0);
    assert!(metric(&m, "labwright_terminal_bytes_total{direction=\"out\"}") > 40_000.0);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tickets_and_bad_messages_get_their_close_code_and_others_are_served() {
    let s = Session::start().await;
    let other = Session::start_in(&s.engine_namespace).await;
    let g = Gateway::start(&s.engine_namespace, |_| {}).await;
    let sid = s.id.to_string();

    assert_eq!(refused(&g.url(&sid, None)).await.0, close::BAD_TICKET);
    assert_eq!(
        refused(&g.url(&sid, Some("garbage"))).await.0,
        close::BAD_TICKET
    );
    // Signed with another key.
    let forged = TicketKey::from_secret(TicketKey::generate_secret().as_bytes())
        .expect("key")
        .sign(&g.claims(&s));
    assert_eq!(
        refused(&g.url(&sid, Some(&forged))).await.0,
        close::BAD_TICKET
    );
    // Expired.
    let mut c = g.claims(&s);
    c.exp = chrono::Utc::now().timestamp() - 1;
    let (code, reason) = refused(&g.url(&sid, Some(&g.key.sign(&c)))).await;
    assert_eq!(
        (code, reason.as_str()),
        (close::TICKET_EXPIRED, "the ticket has expired")
    );
    // A ticket for one session used on another.
    let t_other = g.ticket(&other);
    assert_eq!(
        refused(&g.url(&sid, Some(&t_other))).await.0,
        close::OTHER_SESSION
    );
    // Properly signed, but the container is another tenant's (or not a session at all).
    let mut c = g.claims(&s);
    c.tenant = Uuid::new_v4();
    assert_eq!(
        refused(&g.url(&sid, Some(&g.key.sign(&c)))).await.0,
        close::NO_SESSION
    );
    let mut c = g.claims(&s);
    c.container = other.container.clone();
    assert_eq!(
        refused(&g.url(&sid, Some(&g.key.sign(&c)))).await.0,
        close::NO_SESSION
    );
    assert_eq!(
        refused(&g.url("not-a-uuid", Some("x"))).await.0,
        close::NO_SESSION
    );
    // Used twice.
    let once = g.ticket(&s);
    let first = Term::connect(&g.url(&sid, Some(&once))).await.ready().await;
    assert_eq!(
        refused(&g.url(&sid, Some(&once))).await.0,
        close::TICKET_REUSED
    );
    drop(first);

    // Garbage control messages and oversized frames close that terminal only.
    let mut bad = g.open(&s).await;
    bad.control(r#"{"type":"resize","cols":0,"rows":5}"#).await;
    let (code, reason) = bad.closed().await;
    assert_eq!(code, close::BAD_MESSAGE);
    assert!(reason.contains("between 1 and"), "{reason}");
    let mut bad = g.open(&s).await;
    bad.control("not json").await;
    assert_eq!(bad.closed().await.0, close::BAD_MESSAGE);
    let mut big = g.open(&s).await;
    big.send(&"x".repeat(70_000)).await;
    assert_eq!(big.closed().await.0, close::TOO_BIG);

    // A stopped session is refused as such.
    s.engine
        .docker()
        .stop_container(
            &other.container,
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .expect("stop");
    assert_eq!(
        refused(&g.url(&other.id.to_string(), Some(&g.ticket(&other))))
            .await
            .0,
        close::SESSION_ENDED
    );

    // Still serving.
    let mut ok = g.open(&s).await;
    ok.send("echo still-$((2+2))\n").await;
    ok.until_output("still-4").await;

    let m = g.metrics().await;
    for (reason, n) in [
        ("missing_ticket", 1.0),
        ("bad_ticket", 2.0),
        ("expired_ticket", 1.0),
        ("other_session", 1.0),
        ("no_session", 3.0),
        ("reused_ticket", 1.0),
        ("session_ended", 1.0),
    ] {
        assert_eq!(
            metric(
                &m,
                &format!("labwright_terminal_connect_errors_total{{reason=\"{reason}\"}}")
            ),
            n,
            "{reason}"
        );
    }
    s.cleanup().await;
    other.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_killed_while_attached_closes_the_terminal() {
    let s = Session::start().await;
    let g = Gateway::start(&s.engine_namespace, |_| {}).await;
    let mut t = g.open(&s).await;
    t.send("echo attached\n").await;
    t.until_output("attached").await;
    s.engine
        .docker()
        .kill_container(
            &s.container,
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("kill");
    // Killed outside the platform, the container stopped by itself as far as anyone can tell:
    // the app ended, and how.
    let (code, reason) = t.closed().await;
    assert_eq!(code, close::APP_EXITED, "{reason}");
    assert_eq!(reason, "the app was killed by signal 9 (exit code 137)");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_ends_the_shell_and_what_it_runs() {
    let s = Session::start().await;
    let g = Gateway::start(&s.engine_namespace, |_| {}).await;
    let mut t = g.open(&s).await;
    // A foreground job that ignores its terminal, and one in the background.
    t.send("sleep 1001 & sleep 1002\n").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while processes(&s, "sleep 100").await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sleeps never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(t); // the client goes away without a close frame
    let deadline = tokio::time::Instant::now() + WAIT;
    while processes(&s, "sleep 100").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the shell's processes outlived it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The session's own process is untouched.
    assert_eq!(processes(&s, "sleep 3600").await, 1);
    // Ending the shell finished (the terminal is closed) without counting a leak.
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(&g.metrics().await, "labwright_terminals_open") > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the terminal stayed open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = g.metrics().await;
    assert_eq!(metric(&m, "labwright_terminal_leaked_shells_total"), 0.0);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_terminals_caps_and_shutdown_close_with_their_codes() {
    let s = Session::start().await;
    let g = Gateway::start(&s.engine_namespace, |c| {
        c.idle_timeout_secs = 2;
        c.max_terminals_per_tenant = 2;
    })
    .await;
    let mut a = g.open(&s).await;
    let mut b = g.open(&s).await;
    assert_eq!(
        refused(&g.url(&s.id.to_string(), Some(&g.ticket(&s))))
            .await
            .0,
        close::TOO_MANY
    );
    // Output alone (and pings) do not keep a terminal open; keystrokes do.
    a.send("while :; do echo tick; sleep 0.5; done\n").await;
    for _ in 0..6 {
        b.send(" ").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(a.closed().await.0, close::IDLE);
    assert!(b.closed.is_none() && a.text().contains("tick"));
    // A slot came free.
    let mut c = g.open(&s).await;
    c.send("echo third\n").await;
    c.until_output("third").await;

    let mut g = g;
    g.running.take().expect("running").shutdown().await;
    assert_eq!(c.closed().await.0, close::GOING_AWAY);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_does_not_hold_back_keystrokes() {
    let s = Session::start().await;
    let g = Gateway::start(&s.engine_namespace, |_| {}).await;
    let mut t = g.open(&s).await;
    // In a process of its own (busybox runs `yes` inside the shell), so it can be seen.
    t.send("sh -c 'yes flood-flood-flood-flood'\n").await;
    t.until_output("flood-flood").await;
    // Stop reading, like a browser that cannot keep up: output backs up to the shell. Ctrl-C
    // must still reach it, with nothing read meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(processes(&s, "sh -c yes").await, 1, "the flood runs");
    t.send("\x03").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while processes(&s, "sh -c yes").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Ctrl-C was held behind the output"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.send("echo after-$((40+2))\n").await;
    t.until_output("after-42").await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_are_recorded_as_asciicast() {
    let s = Session::start().await;
    let dir = support::temp_dir("rec");
    let url = dir.to_string_lossy().into_owned();
    let g = Gateway::start(&s.engine_namespace, |c| c.recordings_url = url.clone()).await;
    let mut t = g.open(&s).await;
    t.send("echo recorded-$((3*3))\n").await;
    t.until_output("recorded-9").await;
    t.control(r#"{"type":"resize","cols":100,"rows":30}"#).await;
    t.send("stty size; exit\n").await;
    assert_eq!(t.closed().await.0, close::NORMAL);
    let recordings = Recordings::open(&url, 1).expect("store");
    let prefix = dir.join(format!("tenants/{}/sessions/{}/terminals", s.tenant, s.id));
    let deadline = tokio::time::Instant::now() + WAIT;
    let file = loop {
        // Only a finished recording: the store writes a staging file first, then renames it.
        let done = std::fs::read_dir(&prefix).ok().and_then(|d| {
            d.filter_map(Result::ok)
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .find(|name| name.ends_with(".cast"))
        });
        if let Some(file) = done {
            break file;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recording stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let terminal = Uuid::parse_str(file.trim_end_matches(".cast")).expect("terminal id");
    let cast = recordings
        .get(&Recordings::key(s.tenant, s.id, terminal))
        .await
        .expect("recording");
    let text = String::from_utf8(cast.to_vec()).expect("utf8");
    let mut lines = text.lines();
    let header: serde_json::Value =
        serde_json::from_str(lines.next().expect("header")).expect("header JSON");
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(80), Some(24))
    );
    let events: Vec<serde_json::Value> = lines
        .map(|l| serde_json::from_str(l).expect("event JSON"))
        .collect();
    let output: String = events
        .iter()
        .filter(|e| e[1] == "o")
        .filter_map(|e| e[2].as_str())
        .collect();
    assert!(
        output.contains("recorded-9") && output.contains("30 100"),
        "{output}"
    );
    assert!(events.iter().any(|e| e[1] == "r" && e[2] == "100x30"));
    let times: Vec<f64> = events.iter().filter_map(|e| e[0].as_f64()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times go forward");
    let _ = std::fs::remove_dir_all(dir);
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_terminals_at_once() {
    const N: usize = 200;
    let s = Session::start().await;
    let g = Gateway::start(&s.engine_namespace, |c| c.max_terminals_per_tenant = N).await;
    let mut terms = Vec::new();
    // Open them all (a few at a time so the engine is not asked for 200 execs in one instant),
    // then have every one of them answer while all are open.
    for chunk in 0..N / 20 {
        let opened = futures::future::join_all((0..20).map(|_| g.open(&s))).await;
        terms.extend(opened);
        assert_eq!(terms.len(), (chunk + 1) * 20);
    }
    let m = g.metrics().await;
    assert_eq!(metric(&m, "labwright_terminals_open"), N as f64);
    futures::future::join_all(terms.iter_mut().enumerate().map(|(i, t)| async move {
        t.send(&format!("echo t{i}-$(({i}*2))\n")).await;
        t.until_output(&format!("t{i}-{}", i * 2)).await;
    }))
    .await;
    for t in &mut terms {
        t.ws.close(None).await.expect("close");
    }
    drop(terms);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = g.metrics().await;
        if metric(&m, "labwright_terminals_open") == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "terminals stayed open"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.cleanup().await;
}

/// Publishes the api-server's `key.revoked` event for `key` on `exchange`.
async fn publish_revocation(exchange: &str, tenant: Uuid, key: Uuid) {
    use lapin::{BasicProperties, options::BasicPublishOptions};
    let conn = lapin::Connection::connect(
        &support::env("LABWRIGHT_TEST_AMQP_URL"),
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("amqp");
    let ch = conn.create_channel().await.expect("channel");
    let payload =
        serde_json::to_vec(&labwright_wire::bus::KeyRevoked { key_id: key }).expect("json");
    ch.basic_publish(
        exchange.into(),
        labwright_wire::bus::tenant_event_key(tenant, labwright_wire::bus::KEY_REVOKED)
            .as_str()
            .into(),
        BasicPublishOptions::default(),
        &payload,
        BasicProperties::default(),
    )
    .await
    .expect("publish")
    .await
    .expect("confirm");
    let _ = conn.close(0, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_closes_its_terminals_and_voids_its_earlier_tickets() {
    let s = Session::start().await;
    let exchange = format!("lw.test.{}", Uuid::new_v4().simple());
    let g = Gateway::start(&s.engine_namespace, |c| {
        c.amqp_url = support::env("LABWRIGHT_TEST_AMQP_URL");
        c.events_exchange = exchange.clone();
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !g.running().gateway.revocations.is_connected() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the revocation feed never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let revoked_key = Uuid::new_v4();
    let ticket_of = |key: Uuid| {
        g.key.sign(&TicketClaims {
            key,
            ..g.claims(&s)
        })
    };
    let mut open = Term::connect(&g.url(&s.id.to_string(), Some(&ticket_of(revoked_key))))
        .await
        .ready()
        .await;
    let mut other = Term::connect(&g.url(&s.id.to_string(), Some(&ticket_of(Uuid::new_v4()))))
        .await
        .ready()
        .await;
    // Issued before the revocation, redeemed after it.
    let earlier = ticket_of(revoked_key);

    publish_revocation(&exchange, s.tenant, revoked_key).await;
    let (code, reason) = open.closed().await;
    assert_eq!(code, close::KEY_REVOKED, "{reason}");
    let (code, reason) = refused(&g.url(&s.id.to_string(), Some(&earlier))).await;
    assert_eq!(code, close::KEY_REVOKED, "{reason}");
    // Another key's terminal is untouched.
    other.send("echo still-$((40+2))\n").await;
    other.until_output("still-42").await;
    assert_eq!(
        metric(
            &g.metrics().await,
            "labwright_terminal_connect_errors_total{reason=\"key_revoked\"}"
        ),
        1.0
    );
    drop(other);
    s.cleanup().await;
}
