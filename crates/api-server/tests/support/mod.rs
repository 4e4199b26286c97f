//! Test support for the api-server: an in-process server on ephemeral ports (or the real binary,
//! for kill tests) over a fresh PostgreSQL database, hellos of simulated hosts, a RabbitMQ event
//! tap, and the generic pieces of `labwright-testkit` re-exported. The full-stack tests of
//! `labwright-e2e` include this module too (by path), so it names no other Labwright binary.
//!
//! Needs `LABWRIGHT_TEST_DATABASE_URL` and `LABWRIGHT_TEST_AMQP_URL` (set by `scripts/test`).

// Each test binary uses a part of it (re-exports included).
#![allow(dead_code, unused_imports)]

use std::{path::PathBuf, time::Duration};

pub use labwright_testkit::{
    broker::amqp_url,
    database::fresh_database,
    env, eventually, free_port,
    http::{get_bytes, http, send_bytes},
    proxy::{Proxy, target_of, via},
    temp_dir,
};

use labwright_api_server::{Config, RunningServer};
use labwright_core::fleet::{HostInfo, RawDevice, RawHello};
use serde_json::Value;

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
        create_key(&self.url(""), &self.admin_key, role, name).await
    }
}

/// Creates a key on the server at `base` with key `admin` and returns its secret.
pub async fn create_key(base: &str, admin: &str, role: &str, name: &str) -> String {
    let (status, body) = http(
        "POST",
        format!("{base}/api/v1/keys"),
        Some(admin.to_string()),
        Some(serde_json::json!({"name": name, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["secret"].as_str().expect("secret").to_string()
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
        let consumer = labwright_testkit::broker::tap(&ch, exchange, "tenant.#").await;
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

/// The `api-server` binary: this package's own, or built for a test of another package.
fn api_server_bin() -> PathBuf {
    option_env!("CARGO_BIN_EXE_api-server")
        .map(PathBuf::from)
        .unwrap_or_else(|| labwright_testkit::binary::cargo_bin("api-server"))
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
    std::process::Command::new(api_server_bin())
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
    until_ready(&config, wait, "server ready").await;
    (config, server, base, admin)
}

/// Waits until the server of `config` (the binary) listens and is ready.
pub async fn until_ready(config: &Config, timeout: Duration, what: &str) {
    let base = format!("http://{}", config.http_addr);
    eventually(timeout, what, || async {
        let up = tokio::net::TcpStream::connect(config.http_addr)
            .await
            .is_ok();
        (up && http("GET", format!("{base}/readyz"), None, None).await.0 == 200).then_some(())
    })
    .await;
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
