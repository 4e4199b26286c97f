//! Test support for the build worker: a real RabbitMQ (namespaced per test), a real Docker engine
//! with a busybox base image made by `docker import` (no registry), git repositories served by a
//! real `git daemon` on loopback (from `labwright-testkit`, like the other generic pieces
//! re-exported here), and a fake api-server that queues jobs and collects updates.
// Each test binary uses a part of it (re-exports included).
#![allow(dead_code, unused_imports)]

use std::{collections::HashMap, path::Path, process::Command, time::Duration};

use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;
use std::sync::Arc;

use labwright_build_worker::{Config, engine::Engine, worker::Worker};
use labwright_core::build::{
    BuildJob, BuildUpdate, SessionControl, Stage, UpdateBody, source::RepoUrl,
};
pub use labwright_testkit::{
    broker::namespace, docker_host, env, free_port, git::GitDaemon, temp_dir,
};
use labwright_wire::bus::{self, Names};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer,
    options::{BasicConsumeOptions, ConfirmSelectOptions},
    types::FieldTable,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const BASE_IMAGE: &str = "labwright-test/busybox:1";

pub async fn engine(namespace: &str) -> Engine {
    Engine::connect(&docker_host(), namespace)
        .await
        .expect("docker engine")
}

/// Makes the busybox base image with `docker import` of a root made from the machine's
/// statically linked busybox (Debian's busybox-static), unless it exists.
pub async fn ensure_base_image(engine: &Engine) {
    if engine.docker().inspect_image(BASE_IMAGE).await.is_ok() {
        return;
    }
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (install busybox-static)");
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        tar.append_data(&mut h, path, data).expect("tar");
    };
    add("bin/busybox", &busybox, 0o755);
    add(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
        0o644,
    );
    add("etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644);
    for dir in ["tmp/.keep", "root/.keep", "app/.keep"] {
        add(dir, b"", 0o644);
    }
    let applets = String::from_utf8(
        Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("busybox --list")
            .stdout,
    )
    .expect("utf8");
    for applet in applets.lines().filter(|a| *a != "busybox" && !a.is_empty()) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("link");
    }
    let bytes = tar.into_inner().expect("tar");
    let (repo, tag) = BASE_IMAGE.split_once(':').expect("tag");
    let mut stream = engine.docker().create_image(
        Some(CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.into()),
            tag: Some(tag.into()),
            changes: vec![
                "ENV PATH=/usr/local/bin:/usr/bin:/bin".into(),
                "CMD [\"/bin/sh\"]".into(),
            ],
            ..Default::default()
        }),
        Some(bollard::body_full(bytes.into())),
        None,
    );
    while let Some(r) = stream.next().await {
        r.expect("docker import");
    }
}

/// A worker config for tests: its own namespace on the broker, scratch dir, loopback git allowed.
pub fn worker_config(namespace: &str) -> Config {
    Config {
        amqp_url: env("LABWRIGHT_TEST_AMQP_URL"),
        events_exchange: format!("{namespace}events"),
        namespace: namespace.to_string(),
        docker_host: docker_host(),
        worker_name: "test-worker".into(),
        scratch_dir: temp_dir("scratch"),
        allow_private_hosts: true,
        clone_timeout_secs: 30,
        build_timeout_secs: 120,
        session_memory_mib: 64,
        session_pids: 64,
        sweep_interval_secs: 3600,
        ..Config::default()
    }
}

/// The api-server's side of the queue, for tests: queues jobs, collects updates, sends control.
pub struct FakeServer {
    pub names: Names,
    channel: Channel,
    updates: Consumer,
    _conn: Connection,
}

impl FakeServer {
    pub async fn start(names: Names) -> Self {
        let conn = Connection::connect(
            &env("LABWRIGHT_TEST_AMQP_URL"),
            ConnectionProperties::default(),
        )
        .await
        .expect("amqp");
        let channel = conn.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        bus::declare(&channel, &names).await.expect("topology");
        let updates = channel
            .basic_consume(
                names.updates_queue.as_str().into(),
                "fake-server".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume");
        Self {
            names,
            channel,
            updates,
            _conn: conn,
        }
    }

    pub async fn queue_job(
        &self,
        url: &str,
        git_ref: Option<&str>,
        subdir: Option<&str>,
    ) -> BuildJob {
        let job = BuildJob {
            build_id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            repo_url: RepoUrl::parse(url).expect("url"),
            git_ref: git_ref.map(str::to_owned),
            subdir: subdir.map(str::to_owned),
            session_ttl_secs: 600,
            hard_ttl_secs: 3600,
        };
        self.publish_raw(&serde_json::to_vec(&job).expect("json"))
            .await;
        job
    }

    pub async fn publish_raw(&self, body: &[u8]) {
        bus::publish_confirmed(
            &self.channel,
            &self.names.jobs_exchange,
            bus::JOBS_ROUTING_KEY,
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish");
    }

    pub async fn control(&self, msg: &SessionControl) {
        bus::publish_confirmed(
            &self.channel,
            &self.names.sessions_exchange,
            "",
            &serde_json::to_vec(msg).expect("json"),
            BasicProperties::default(),
        )
        .await
        .expect("publish");
    }

    /// Collects updates for `build` until it reaches a final or `running` stage.
    pub async fn until_settled(&mut self, build: Uuid, timeout: Duration) -> Progress {
        self.until(
            build,
            timeout,
            |s| s == Stage::Running || s.is_final(),
            Progress::default(),
        )
        .await
    }

    /// Collects updates for `build` until it reaches `stage`.
    pub async fn until_stage(&mut self, build: Uuid, stage: Stage, timeout: Duration) -> Progress {
        self.until(build, timeout, |s| s == stage, Progress::default())
            .await
    }

    /// Collects updates for `build` (adding to `p`) until a stage satisfies `done`.
    pub async fn until(
        &mut self,
        build: Uuid,
        timeout: Duration,
        done: impl Fn(Stage) -> bool,
        mut p: Progress,
    ) -> Progress {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.updates.next())
                .await
                .unwrap_or_else(|_| panic!("build did not settle in {timeout:?}; so far: {p:#?}"))
                .expect("consumer open")
                .expect("delivery");
            let u: BuildUpdate = serde_json::from_slice(&next.data).expect("update json");
            if u.build_id != build {
                continue;
            }
            u.validate().expect("updates are valid");
            // A running session's own updates (output, exit) belong to no build attempt.
            if matches!(
                u.body,
                UpdateBody::SessionExited { .. }
                    | UpdateBody::SessionRestarted { .. }
                    | UpdateBody::SessionLog { .. }
            ) {
                continue;
            }
            p.attempts.insert(u.attempt);
            match u.body {
                UpdateBody::Stage { stage, reason } => {
                    p.stages.push(stage);
                    if done(stage) {
                        p.reason = reason;
                        return p;
                    }
                }
                UpdateBody::Detected {
                    stack,
                    dockerfile,
                    own_dockerfile,
                } => p.detected = Some((stack, dockerfile, own_dockerfile)),
                UpdateBody::Image { image } => p.image = Some(image),
                UpdateBody::Log { first_line, lines } => {
                    // Updates are delivered at least once: a batch whose confirm was lost (a
                    // busy broker) is sent again, so a batch may repeat lines already seen, as
                    // the same lines, but never skip one.
                    let seen = p.lines.entry(u.attempt).or_default();
                    let first = usize::try_from(first_line).expect("line number");
                    assert!(
                        first <= seen.len(),
                        "log lines arrive without gaps: a batch from line {first} after {} lines",
                        seen.len()
                    );
                    for (n, line) in (first..).zip(lines) {
                        match seen.get(n) {
                            Some(earlier) => {
                                assert_eq!(*earlier, line, "a line sent again is the same line")
                            }
                            None => {
                                seen.push(line.clone());
                                p.log.push(line);
                            }
                        }
                    }
                }
                UpdateBody::Session { container_id, .. } => p.container = Some(container_id),
                UpdateBody::SessionExited { .. }
                | UpdateBody::SessionRestarted { .. }
                | UpdateBody::SessionLog { .. } => {}
            }
        }
    }
}

/// Deletes the test's namespaced queues and exchanges (they are durable, like the real ones).
impl Drop for FakeServer {
    fn drop(&mut self) {
        let names = self.names.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let Ok(conn) = Connection::connect(
                    &env("LABWRIGHT_TEST_AMQP_URL"),
                    ConnectionProperties::default(),
                )
                .await
                else {
                    return;
                };
                let Ok(ch) = conn.create_channel().await else {
                    return;
                };
                for q in [&names.jobs_queue, &names.dead_queue, &names.updates_queue] {
                    let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
                }
                for x in [
                    names.jobs_exchange.clone(),
                    names.dead_exchange.clone(),
                    names.sessions_exchange.clone(),
                    names.events_exchange.clone(),
                ] {
                    let _ = ch.exchange_delete(x.into(), Default::default()).await;
                }
                let _ = conn.close(200, "done".into()).await;
            });
        });
        let _ = cleanup.join();
    }
}

#[derive(Debug, Default)]
pub struct Progress {
    pub stages: Vec<Stage>,
    pub reason: String,
    pub detected: Option<(String, String, bool)>,
    pub image: Option<String>,
    pub container: Option<String>,
    pub log: Vec<String>,
    pub attempts: std::collections::HashSet<Uuid>,
    /// Log lines seen per attempt, by line number.
    pub lines: HashMap<Uuid, Vec<String>>,
}

impl Progress {
    pub fn last(&self) -> Option<Stage> {
        self.stages.last().copied()
    }
}

pub fn names(ns: &str) -> Names {
    Names::new(ns, &format!("{ns}events"))
}

pub fn labels_of(c: &bollard::models::ContainerInspectResponse) -> HashMap<String, String> {
    c.config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
}

pub fn dir_exists(p: &Path) -> bool {
    p.is_dir()
}

/// A worker running against its own broker namespace, with a fake api-server and a git daemon.
pub struct Running {
    pub worker: Arc<Worker>,
    pub server: FakeServer,
    pub stop: CancellationToken,
    pub git: GitDaemon,
}

impl Running {
    pub async fn engine(&self) -> labwright_build_worker::engine::Engine {
        engine(&self.worker.config.namespace).await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts a worker with the test config, changed by `configure`.
pub async fn start(configure: impl FnOnce(&mut labwright_build_worker::Config)) -> Running {
    let ns = namespace();
    let e = engine(&ns).await;
    ensure_base_image(&e).await;
    let server = FakeServer::start(names(&ns)).await;
    let mut config = worker_config(&ns);
    configure(&mut config);
    let worker = Worker::new(config, e);
    let stop = CancellationToken::new();
    tokio::spawn(worker.clone().run(stop.clone()));
    Running {
        worker,
        server,
        stop,
        git: GitDaemon::start().await,
    }
}

/// What a session container printed so far.
pub async fn container_logs(e: &Engine, id: Uuid) -> String {
    use futures::StreamExt;
    let mut out = String::new();
    let mut logs = e.docker().logs(
        &labwright_build_worker::engine::session_name(id),
        Some(bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    );
    while let Some(Ok(chunk)) = logs.next().await {
        out.push_str(&chunk.to_string());
    }
    out
}
