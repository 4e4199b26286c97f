//! Test support: a fresh PostgreSQL database per test, an in-process api-server on ephemeral
//! ports, host links, a REST helper, a TCP proxy to cut a peer off, and a RabbitMQ event tap.
//!
//! Needs `LABWRIGHT_TEST_DATABASE_URL` and `LABWRIGHT_TEST_AMQP_URL` (set by `scripts/test`).

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use labwright_api_server::{Config, RunningServer};
use labwright_core::fleet::{HostInfo, RawDevice, RawHello};
use labwright_host_agent::link::{self, LinkError, LinkObserver, LinkParams};
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test"))
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_database() -> String {
    let admin = env("LABWRIGHT_TEST_DATABASE_URL");
    let name = format!("lw_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = AsyncPgConnection::establish(&admin)
        .await
        .expect("connect to the test database server");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("database url has a path");
    format!("{base}/{name}")
}

pub fn amqp_url() -> String {
    env("LABWRIGHT_TEST_AMQP_URL")
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lw-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Repo-sandbox namespace of the tests that do not use builds: shared (their servers only
/// declare the queues), so test runs leave a fixed set of queues behind rather than one per test,
/// and apart from any local stack on the same broker. Build tests use one of their own each.
pub const SHARED_BUILDS_NAMESPACE: &str = "lwtest.";

/// Server config for tests: ephemeral ports, fast heartbeats, an exchange of its own.
pub fn test_config(database_url: &str) -> Config {
    Config {
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        grpc_addr: "127.0.0.1:0".parse().expect("addr"),
        database_url: database_url.to_string(),
        database_pool_size: 8,
        amqp_url: amqp_url(),
        events_exchange: format!("lw.test.{}", uuid::Uuid::new_v4().simple()),
        heartbeat_interval_ms: 200,
        missed_heartbeats: 3,
        data_dir: temp_dir("data"),
        artifacts_url: temp_dir("artifacts").to_string_lossy().into_owned(),
        namespace: SHARED_BUILDS_NAMESPACE.into(),
        builds_allow_private_hosts: true,
        ..Config::default()
    }
}

pub struct TestServer {
    pub server: RunningServer,
    pub config: Config,
    pub admin_key: String,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let filter = tracing_subscriber::EnvFilter::try_from_env("LABWRIGHT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
        let server = labwright_api_server::start(config.clone())
            .await
            .expect("server starts");
        let admin_key = std::fs::read_to_string(config.data_dir.join("admin-key"))
            .expect("admin key file")
            .trim()
            .to_string();
        Self {
            server,
            config,
            admin_key,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.http_addr)
    }

    pub fn grpc(&self) -> String {
        format!("http://{}", self.server.grpc_addr)
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        http("GET", self.url(path), Some(key.to_string()), None).await
    }

    /// Creates a key with the admin key and returns its secret.
    pub async fn create_key(&self, role: &str, name: &str) -> String {
        let (status, body) = http(
            "POST",
            self.url("/api/v1/keys"),
            Some(self.admin_key.clone()),
            Some(serde_json::json!({"name": name, "role": role})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body["secret"].as_str().expect("secret").to_string()
    }
}

/// A host-agent with its real runtime (simulated devices, executions, report spool), as
/// `host-agent` runs it. `state_dir` holds the spool; reuse it to simulate an agent restart.
pub fn spawn_host(
    server: String,
    token: &str,
    host_name: &str,
    devices: Vec<labwright_host_agent::config::DeviceConfig>,
    state_dir: &std::path::Path,
) -> Agent {
    let config = labwright_host_agent::Config {
        server: server.clone(),
        host_name: host_name.into(),
        enrollment_token: Some(token.into()),
        state_dir: state_dir.to_path_buf(),
        devices,
        ..labwright_host_agent::Config::default()
    };
    let runtime = labwright_host_agent::runtime::Runtime::new(&config.devices, &config.state_dir)
        .expect("runtime");
    spawn_link(server, token, config.hello(), Some(Arc::new(runtime)))
}

/// A simulated set-top box device for `spawn_host`.
pub fn sim_device(id: &str, settings: &str) -> labwright_host_agent::config::DeviceConfig {
    labwright_host_agent::config::DeviceConfig {
        id: id.into(),
        name: format!("Sim {id}"),
        model: "sim-stb".into(),
        driver: "simulated".into(),
        tags: vec![],
        settings: toml::from_str(settings).expect("settings toml"),
    }
}

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

pub fn device(key: &str, model: &str, tags: &[&str]) -> RawDevice {
    RawDevice {
        key: key.into(),
        name: format!("Device {key}"),
        model: model.into(),
        driver: "simulated".into(),
        capabilities: vec!["remote_control".into(), "video_capture".into()],
        tags: tags.iter().map(|t| t.to_string()).collect(),
        status: None,
        status_detail: String::new(),
    }
}

pub fn hello(host: &str, devices: Vec<RawDevice>) -> RawHello {
    RawHello {
        host_name: host.into(),
        agent_version: "0.1.0-test".into(),
        info: HostInfo::default(),
        devices,
    }
}

/// Counts what a link reports.
#[derive(Default)]
pub struct Counter {
    pub connects: AtomicUsize,
    pub acks: AtomicUsize,
    pub disconnects: AtomicUsize,
    pub host_id: Mutex<Option<String>>,
    pub last_error: Mutex<Option<String>>,
}

impl LinkObserver for Counter {
    fn connected(&self, host_id: &str) {
        *self.host_id.lock().expect("lock") = Some(host_id.to_string());
        self.connects.fetch_add(1, Ordering::SeqCst);
    }
    fn heartbeat_acked(&self, _: Duration) {
        self.acks.fetch_add(1, Ordering::SeqCst);
    }
    fn disconnected(&self, e: &LinkError) {
        *self.last_error.lock().expect("lock") = Some(e.to_string());
        self.disconnects.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct Agent {
    pub counter: Arc<Counter>,
    /// The agent's runtime (devices, live views), when it has one.
    pub runtime: Option<Arc<labwright_host_agent::runtime::Runtime>>,
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
}

/// Runs the real host-agent link in the background.
pub fn spawn_agent(server: String, token: &str, hello: RawHello) -> Agent {
    spawn_link(server, token, hello, None)
}

pub fn spawn_link(
    server: String,
    token: &str,
    hello: RawHello,
    runtime: Option<Arc<labwright_host_agent::runtime::Runtime>>,
) -> Agent {
    let counter = Arc::new(Counter::default());
    let stop = CancellationToken::new();
    let params = LinkParams {
        server,
        token: token.to_string(),
        hello,
        reconnect_max: Duration::from_millis(500),
        report_stats: true,
        runtime: runtime.clone(),
    };
    let task = tokio::spawn(link::run(params, counter.clone(), stop.clone()));
    Agent {
        counter,
        runtime,
        stop,
        task,
    }
}

/// Polls `check` every 50 ms until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP proxy in front of a real peer, which a test can cut off (dropping every connection and
/// refusing new ones) and restore: a database or broker outage as the server sees it.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let (gen_tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(gen_tx);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !AtomicBool::load(&up2, Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
        }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Rewrites the host:port of a URL (postgres:// or amqp://) to go through `addr`.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (auth, after) = rest
        .rsplit_once('@')
        .map(|(a, r)| (format!("{a}@"), r))
        .unwrap_or((String::new(), rest));
    let path_start = after.find('/').unwrap_or(after.len());
    format!("{scheme}://{auth}{addr}{}", &after[path_start..])
}

pub fn target_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").expect("scheme").1;
    let after = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let hostport = &after[..after.find('/').unwrap_or(after.len())];
    let hostport = if hostport.starts_with("localhost:") {
        hostport.replacen("localhost", "127.0.0.1", 1)
    } else {
        hostport.to_string()
    };
    hostport.parse().expect("host:port")
}

/// Consumes the events exchange of a test server from a queue bound before anything happens.
pub struct EventTap {
    consumer: lapin::Consumer,
    _conn: lapin::Connection,
}

impl EventTap {
    pub async fn bind(exchange: &str) -> Self {
        use lapin::{options::*, types::FieldTable};
        let conn = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .expect("amqp connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare exchange");
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue");
        ch.queue_bind(
            q.name().clone(),
            exchange.into(),
            "tenant.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
        let consumer = ch
            .basic_consume(
                q.name().clone(),
                "tap".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume");
        Self {
            consumer,
            _conn: conn,
        }
    }

    /// Next event within `timeout`: (routing key, payload).
    pub async fn next(&mut self, timeout: Duration) -> Option<(String, Value)> {
        use futures::StreamExt;
        let delivery = tokio::time::timeout(timeout, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        let payload = serde_json::from_slice(&delivery.data).ok()?;
        Some((delivery.routing_key.to_string(), payload))
    }

    /// Waits for an event whose payload `type` is `kind`.
    pub async fn expect(&mut self, kind: &str, timeout: Duration) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some((rk, v)) if v["type"] == kind => return (rk, v),
                Some(_) => continue,
                None => panic!("no {kind} event within {timeout:?}"),
            }
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The real `api-server` binary, configured through the environment.
pub fn spawn_binary(config: &labwright_api_server::Config) -> std::process::Child {
    spawn_binary_env(config, &[])
}

/// [`spawn_binary`] with further environment variables.
pub fn spawn_binary_env(
    config: &labwright_api_server::Config,
    extra: &[(&str, String)],
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_api-server"))
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .env("LABWRIGHT_HTTP_ADDR", config.http_addr.to_string())
        .env("LABWRIGHT_GRPC_ADDR", config.grpc_addr.to_string())
        .env("LABWRIGHT_DATABASE_URL", &config.database_url)
        .env("LABWRIGHT_AMQP_URL", &config.amqp_url)
        .env("LABWRIGHT_EVENTS_EXCHANGE", &config.events_exchange)
        .env(
            "LABWRIGHT_HEARTBEAT_INTERVAL_MS",
            config.heartbeat_interval_ms.to_string(),
        )
        .env("LABWRIGHT_DATA_DIR", &config.data_dir)
        .env("LABWRIGHT_ARTIFACTS_URL", &config.artifacts_url)
        .env("LABWRIGHT_NAMESPACE", &config.namespace)
        .env(
            "LABWRIGHT_BUILDS_ALLOW_PRIVATE_HOSTS",
            config.builds_allow_private_hosts.to_string(),
        )
        .env("LABWRIGHT_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn api-server")
}

/// The real `api-server` binary on free fixed ports (so it can be restarted on the same ones),
/// once it is ready: its config, process, base URL and admin key.
pub async fn start_binary(database_url: &str) -> (Config, std::process::Child, String, String) {
    start_binary_with(test_config(database_url), &[]).await
}

/// [`start_binary`] with a config of the caller's and further environment variables.
pub async fn start_binary_with(
    mut config: Config,
    extra: &[(&str, String)],
) -> (Config, std::process::Child, String, String) {
    config.http_addr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    config.grpc_addr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let base = format!("http://{}", config.http_addr);
    let server = spawn_binary_env(&config, extra);
    let wait = Duration::from_secs(30);
    let admin = eventually(wait, "admin key written", || async {
        std::fs::read_to_string(config.data_dir.join("admin-key"))
            .ok()
            .map(|k| k.trim().to_string())
    })
    .await;
    eventually(wait, "server ready", || async {
        let up = tokio::net::TcpStream::connect(config.http_addr)
            .await
            .is_ok();
        (up && http("GET", format!("{base}/readyz"), None, None).await.0 == 200).then_some(())
    })
    .await;
    (config, server, base, admin)
}

/// A fresh server and a host-agent with one simulated box, `stb-1`, online: the server, its
/// base URL, the agent and the device's id.
pub async fn server_with_one_box() -> (TestServer, String, Agent, String) {
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let base = s.url("");
    let token = s.create_key("host", "sim host").await;
    let agent = spawn_host(
        s.grpc(),
        &token,
        "sim-host",
        vec![sim_device("stb-1", "")],
        &temp_dir("agent"),
    );
    let device = eventually(Duration::from_secs(60), "device online", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/devices?status=online").await;
        let items = page["items"].as_array()?;
        items
            .iter()
            .next()
            .and_then(|d| d["id"].as_str().map(str::to_owned))
    })
    .await;
    (s, base, agent, device)
}

/// Stores a test case (YAML) and checks it was accepted; returns the stored version.
pub async fn push_testcase(base: &str, key: &str, yaml: &str) -> Value {
    let (status, body) = send_bytes(
        "POST",
        format!("{base}/api/v1/testcases"),
        key.into(),
        "application/yaml",
        yaml.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Queues `testcase` on `device` and checks it was accepted; returns the execution.
pub async fn run(base: &str, key: &str, testcase: &str, device: &str) -> Value {
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/executions"),
        Some(key.into()),
        Some(serde_json::json!({"testcase": testcase, "device": device})),
    )
    .await;
    assert_eq!(status, 201, "{testcase}: {body}");
    body
}
