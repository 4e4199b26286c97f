//! Support for the full-stack tests: the api-server's own test support (included by path: the
//! in-process server, the real binary, the event tap, testkit's generic pieces) plus real
//! host-agents (their link and runtime with simulated devices) against it.

#![allow(dead_code)]

#[path = "../../../api-server/tests/support/mod.rs"]
mod server;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use labwright_core::fleet::RawHello;
use labwright_host_agent::link::{self, LinkError, LinkObserver, LinkParams};
pub use server::*;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A host-agent with its real runtime (simulated devices, executions, report spool), as
/// `host-agent` runs it. `state_dir` holds the spool; reuse it to simulate an agent restart.
pub fn spawn_host(
    server: String,
    token: &str,
    host_name: &str,
    devices: Vec<labwright_host_agent::config::DeviceConfig>,
    state_dir: &std::path::Path,
) -> Agent {
    let (config, runtime) = host_runtime(server.clone(), token, host_name, devices, state_dir);
    spawn_link(server, token, config.hello(), Some(runtime))
}

/// The config and runtime `spawn_host` runs a link with, for tests that restart the link over
/// the same runtime.
pub fn host_runtime(
    server: String,
    token: &str,
    host_name: &str,
    devices: Vec<labwright_host_agent::config::DeviceConfig>,
    state_dir: &std::path::Path,
) -> (
    labwright_host_agent::Config,
    Arc<labwright_host_agent::runtime::Runtime>,
) {
    let config = labwright_host_agent::Config {
        server,
        host_name: host_name.into(),
        enrollment_token: Some(token.into()),
        state_dir: state_dir.to_path_buf(),
        devices,
        ..labwright_host_agent::Config::default()
    };
    let runtime = labwright_host_agent::runtime::Runtime::new(&config.devices, &config.state_dir)
        .expect("runtime");
    (config, Arc::new(runtime))
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

/// `POST /api/v1/devices/{device}/power` with `action` (on, off, cycle, state): the status and
/// the body.
pub async fn power(base: &str, key: &str, device: &str, action: &str) -> (u16, serde_json::Value) {
    http(
        "POST",
        format!("{base}/api/v1/devices/{device}/power"),
        Some(key.into()),
        Some(serde_json::json!({"action": action})),
    )
    .await
}
