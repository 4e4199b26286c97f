//! The worker loop: take a job, clone, detect, build, start the session, report every stage and
//! log line, ack the job only once its last update is confirmed. A broker connection is an epoch:
//! when it drops, jobs in flight stop (the broker redelivers them) and the worker reconnects.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use labwright_core::{
    build::{BuildJob, BuildUpdate, SessionControl, Stage, UpdateBody},
    retry::Backoff,
};
use labwright_wire::bus::Names;
use lapin::{
    Channel,
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions},
};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    config::Config,
    detect, dockerfile,
    engine::{BuildLimits, Engine, EngineError, Limits, SessionSpec},
    git::{self, CloneError, CloneLimits},
    queue::{self, PublishError},
    sessions::{Target, Watcher},
};

/// How the api-server's live-session snapshot is trusted: containers younger than this are
/// never treated as orphans (their session may not be in the snapshot yet).
const ORPHAN_GRACE_SECS: i64 = 60;
const LOG_FLUSH: Duration = Duration::from_millis(200);
const LOG_BATCH: usize = 200;

pub struct Worker {
    pub config: Config,
    pub engine: Engine,
    pub names: Names,
    /// The latest live-session snapshot from the api-server.
    live: Mutex<Option<(HashSet<Uuid>, i64)>>,
    /// Jobs in progress here, so a cancel (a `Stop` for their session) can end them.
    jobs: std::sync::Mutex<std::collections::HashMap<Uuid, CancellationToken>>,
    /// Sessions' output, exits and restarts.
    sessions: Arc<Watcher>,
}

/// Why a job did not reach `running`.
enum JobError {
    /// The repository's fault (not found, too big, no stack, build error): the build fails.
    User(String),
    /// Ours (engine down, broker gone): another attempt may succeed.
    Infrastructure(String),
    /// The api-server cancelled the build; it already says so.
    Cancelled,
}

impl From<PublishError> for JobError {
    fn from(e: PublishError) -> Self {
        JobError::Infrastructure(e.to_string())
    }
}

impl From<EngineError> for JobError {
    fn from(e: EngineError) -> Self {
        if e.is_infrastructure() {
            JobError::Infrastructure(e.to_string())
        } else {
            JobError::User(e.to_string())
        }
    }
}

impl Worker {
    pub fn new(config: Config, engine: Engine) -> Arc<Self> {
        let names = Names::new(&config.namespace, &config.events_exchange);
        let sessions = Watcher::new(
            engine.clone(),
            names.events_exchange.clone(),
            config.session_log_max_kib << 10,
        );
        Arc::new(Self {
            config,
            engine,
            names,
            sessions,
            live: Mutex::new(None),
            jobs: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Runs until `shutdown`: connects (again and again), consumes jobs and control messages,
    /// sweeps.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let sweeper = tokio::spawn(self.clone().run_sweeper(shutdown.clone()));
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while !shutdown.is_cancelled() {
            let broker = match queue::connect(
                &self.config.amqp_url,
                &self.names,
                self.config.concurrency,
                &self.config.worker_name,
            )
            .await
            {
                Ok(b) => b,
                Err(e) => {
                    let delay = backoff.next_delay();
                    if backoff.worth_logging() {
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot reach the message broker");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            backoff.reset();
            tracing::info!(worker = %self.config.worker_name, "consuming build jobs");
            let epoch = shutdown.child_token();
            let queue::Broker {
                conn,
                publish,
                mut jobs,
                mut control,
            } = broker;
            let mut in_flight = tokio::task::JoinSet::new();
            in_flight.spawn(self.sessions.clone().run(publish.clone(), epoch.clone()));
            loop {
                tokio::select! {
                    _ = epoch.cancelled() => break,
                    d = jobs.next() => match d {
                        Some(Ok(delivery)) => {
                            let me = self.clone();
                            let (ch, stop) = (publish.clone(), epoch.clone());
                            in_flight.spawn(async move { me.handle(delivery, ch, stop).await });
                        }
                        _ => break,
                    },
                    c = control.next() => match c {
                        Some(Ok(delivery)) => self.control(&delivery.data, &publish, &epoch).await,
                        _ => break,
                    },
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                }
            }
            // Jobs still running stop here; unacknowledged, the broker hands them out again.
            epoch.cancel();
            while in_flight.join_next().await.is_some() {}
            let _ = conn.close(200, "worker stopping".into()).await;
            if !shutdown.is_cancelled() {
                tracing::warn!("lost the message broker; reconnecting");
            }
        }
        let _ = sweeper.await;
    }

    fn jobs_in_progress(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, CancellationToken>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn handle(
        self: Arc<Self>,
        delivery: Delivery,
        publish: Channel,
        stop: CancellationToken,
    ) {
        let job: BuildJob = match serde_json::from_slice(&delivery.data)
            .map_err(|e| e.to_string())
            .and_then(|j: BuildJob| j.validate().map(|()| j).map_err(|e| e.to_string()))
        {
            Ok(j) => j,
            Err(e) => {
                // Never valid: to the dead letters at once, not round the queue.
                tracing::warn!(error = %e, "malformed build job rejected");
                let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
                return;
            }
        };
        let reporter = Arc::new(Mutex::new(Reporter {
            channel: publish,
            exchange: self.names.events_exchange.clone(),
            build_id: job.build_id,
            tenant_id: job.tenant_id,
            attempt: Uuid::new_v4(),
            next_line: 0,
            pending: Arc::default(),
        }));
        tracing::info!(build_id = %job.build_id, host = job.repo_url.host(), "build job taken");
        let cancel = CancellationToken::new();
        self.jobs_in_progress().insert(job.build_id, cancel.clone());
        let outcome = tokio::select! {
            _ = stop.cancelled() => Err(JobError::Infrastructure("worker stopping".into())),
            _ = cancel.cancelled() => Err(JobError::Cancelled),
            r = self.work(&job, &reporter, &stop) => r,
        };
        self.jobs_in_progress().remove(&job.build_id);
        if matches!(outcome, Err(JobError::Cancelled)) {
            // Whatever it had started goes; the job is done with.
            if let Err(e) = self.engine.remove_session(job.build_id).await {
                tracing::warn!(build_id = %job.build_id, error = %e, "could not clean up a cancelled build");
            }
            tracing::info!(build_id = %job.build_id, "build cancelled");
            let _ = delivery.ack(BasicAckOptions::default()).await;
            return;
        }
        let result = match outcome {
            Ok(()) => reporter.lock().await.flush().await.map_err(JobError::from),
            Err(JobError::User(reason)) => {
                tracing::info!(build_id = %job.build_id, reason, "build failed");
                let mut r = reporter.lock().await;
                r.log(format!("build failed: {reason}"));
                r.stage(Stage::Failed, &reason)
                    .await
                    .map_err(JobError::from)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
            Err(JobError::Cancelled) => {
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
            Err(JobError::Infrastructure(why)) | Err(JobError::User(why)) => {
                tracing::warn!(build_id = %job.build_id, why, "build job returned to the queue");
                let _ = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await;
            }
        }
    }

    async fn work(
        &self,
        job: &BuildJob,
        reporter: &Arc<Mutex<Reporter>>,
        epoch: &CancellationToken,
    ) -> Result<(), JobError> {
        let c = &self.config;
        let pin = if c.allow_private_hosts {
            None
        } else {
            Some(
                git::resolve_public(&job.repo_url, Duration::from_secs(c.clone_timeout_secs))
                    .await
                    .map_err(JobError::User)?,
            )
        };
        reporter.lock().await.stage(Stage::Cloning, "").await?;
        let scratch = c.scratch_dir.join(format!(
            "{}-{}",
            job.build_id.simple(),
            Uuid::new_v4().simple()
        ));
        let _cleanup = RemoveOnDrop(scratch.clone());
        std::fs::create_dir_all(&c.scratch_dir)
            .map_err(|e| JobError::Infrastructure(format!("scratch dir: {e}")))?;
        let flusher = spawn_flusher(reporter.clone());
        let result = self
            .clone_detect_build(job, pin.as_ref(), &scratch, reporter)
            .await;
        flusher.abort();
        let image = result?;
        reporter.lock().await.stage(Stage::Starting, "").await?;
        // Its exit (it may exit at once) is reported once the session is.
        let _starting = self.sessions.starting(job.build_id);
        let started = self
            .engine
            .start_session(&SessionSpec {
                session_id: job.build_id,
                build_id: job.build_id,
                tenant_id: job.tenant_id,
                image: &image,
                hard_expiry_unix: chrono::Utc::now().timestamp() + job.hard_ttl_secs as i64,
                limits: &self.session_limits(),
                restart: 0,
            })
            .await?;
        let mut r = reporter.lock().await;
        r.send(UpdateBody::Session {
            container_id: started.container_id.clone(),
            network: started.network,
        })
        .await?;
        r.stage(Stage::Running, "").await?;
        self.sessions.follow(
            &r.channel,
            epoch,
            Target {
                session_id: job.build_id,
                tenant_id: job.tenant_id,
                container_id: started.container_id,
            },
        );
        Ok(())
    }

    fn session_limits(&self) -> Limits {
        let c = &self.config;
        Limits {
            memory_bytes: (c.session_memory_mib * 1024 * 1024) as i64,
            nano_cpus: (c.session_cpus * 1e9) as i64,
            pids: c.session_pids,
        }
    }

    async fn clone_detect_build(
        &self,
        job: &BuildJob,
        pin: Option<&git::Pinned>,
        scratch: &Path,
        reporter: &Arc<Mutex<Reporter>>,
    ) -> Result<String, JobError> {
        let c = &self.config;
        let checkout = scratch.join("src");
        let mut sink = reporter.lock().await.sink();
        git::clone(
            &job.repo_url,
            pin,
            job.git_ref.as_deref(),
            &checkout,
            &CloneLimits {
                timeout: Duration::from_secs(c.clone_timeout_secs),
                max_bytes: c.clone_max_mib << 20,
            },
            &mut sink,
        )
        .await
        .map_err(|e| match e {
            CloneError::Spawn(e) => JobError::Infrastructure(format!("starting git: {e}")),
            other => JobError::User(other.to_string()),
        })?;
        let context = context_dir(&checkout, job.subdir.as_deref())?;
        reporter.lock().await.stage(Stage::Detecting, "").await?;
        let images = c.build_images.clone();
        let ctx = context.clone();
        let detection = tokio::task::spawn_blocking(move || detect::detect(&ctx, &images))
            .await
            .map_err(|e| JobError::Infrastructure(e.to_string()))?
            .map_err(|e| JobError::User(e.to_string()))?;
        {
            let mut r = reporter.lock().await;
            r.log(format!(
                "detected {} ({})",
                detection.stack.name(),
                detection.evidence
            ));
            r.send(UpdateBody::Detected {
                stack: detection.stack.name().to_string(),
                dockerfile: detection.dockerfile.clone(),
                own_dockerfile: detection.own_dockerfile,
            })
            .await?;
            if detection.own_dockerfile {
                dockerfile::check(&detection.dockerfile)
                    .map_err(|e| JobError::User(e.to_string()))?;
            }
            r.stage(Stage::Building, "").await?;
        }
        let generated = (!detection.own_dockerfile).then_some(detection.dockerfile.as_str());
        let image = self
            .engine
            .build(
                &context,
                generated,
                job.build_id,
                &BuildLimits {
                    memory_bytes: (c.build_memory_mib << 20) as i32,
                    cpu_quota: (c.build_cpus * 100_000.0) as i32,
                    timeout: Duration::from_secs(c.build_timeout_secs),
                    max_log_bytes: c.build_log_max_kib << 10,
                    reuse_cache: c.build_reuse_cache,
                    pids: c.build_pids,
                },
                &mut sink,
            )
            .await?;
        reporter
            .lock()
            .await
            .send(UpdateBody::Image {
                image: image.clone(),
            })
            .await?;
        Ok(image)
    }

    /// A message from the api-server about sessions.
    async fn control(&self, data: &[u8], publish: &Channel, epoch: &CancellationToken) {
        match serde_json::from_slice::<SessionControl>(data) {
            Ok(SessionControl::Restart {
                session_id,
                restart,
            }) => {
                // In the background: a restart must not hold up other sessions' messages.
                let (sessions, limits) = (self.sessions.clone(), self.session_limits());
                let (publish, epoch) = (publish.clone(), epoch.clone());
                tokio::spawn(async move {
                    if let Err(e) = sessions
                        .restart(&publish, &epoch, session_id, restart, &limits)
                        .await
                    {
                        tracing::warn!(%session_id, error = %e, "could not restart a session");
                    }
                });
            }
            Ok(SessionControl::Stop { session_id, reason }) => {
                // A build still in progress here (sessions are named after their build) stops.
                if let Some(job) = self.jobs_in_progress().get(&session_id) {
                    job.cancel();
                }
                match self.engine.remove_session(session_id).await {
                    Ok(true) => tracing::info!(%session_id, reason, "session removed"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(%session_id, error = %e, "could not remove a session")
                    }
                }
            }
            Ok(SessionControl::Live {
                session_ids,
                at_unix,
            }) => {
                *self.live.lock().await = Some((session_ids.into_iter().collect(), at_unix));
            }
            Err(e) => tracing::warn!(error = %e, "malformed session control message ignored"),
        }
    }

    async fn run_sweeper(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = Duration::from_secs(self.config.sweep_interval_secs);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "sweep removed sessions and leftovers"),
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
        }
    }

    /// Removes sessions past their hard expiry, orphans (labelled containers the api-server does
    /// not know as live), and images and networks nothing uses. Returns how many it removed.
    pub async fn sweep(&self) -> Result<usize, EngineError> {
        let now = chrono::Utc::now().timestamp();
        let live = self.live.lock().await.clone();
        let mut removed = 0;
        for s in self.engine.sessions().await? {
            let why = if s.hard_expiry_unix > 0 && s.hard_expiry_unix < now {
                Some("its hard expiry passed")
            } else if let Some((ids, at)) = &live
                && !ids.contains(&s.session_id)
                && s.created_unix < at - ORPHAN_GRACE_SECS
            {
                Some("the api-server has no live session for it")
            } else {
                None
            };
            if let Some(why) = why {
                tracing::info!(session_id = %s.session_id, why, "removing session container");
                self.engine.remove_session(s.session_id).await?;
                removed += 1;
            }
        }
        removed += self
            .engine
            .remove_leftovers(Duration::from_secs(self.config.build_timeout_secs + 60))
            .await?;
        Ok(removed)
    }
}

/// The build context: the checkout, or `subdir` inside it (which must stay inside it).
fn context_dir(checkout: &Path, subdir: Option<&str>) -> Result<PathBuf, JobError> {
    let Some(sub) = subdir else {
        return Ok(checkout.to_path_buf());
    };
    let root = checkout
        .canonicalize()
        .map_err(|e| JobError::Infrastructure(e.to_string()))?;
    let dir = root
        .join(sub)
        .canonicalize()
        .map_err(|_| JobError::User(format!("subdir {sub:?} does not exist in the repository")))?;
    if !dir.starts_with(&root) || !dir.is_dir() {
        return Err(JobError::User(format!(
            "subdir {sub:?} is not a directory inside the repository"
        )));
    }
    Ok(dir)
}

/// Sends one job's updates in order; log lines are batched.
struct Reporter {
    channel: Channel,
    exchange: String,
    build_id: Uuid,
    tenant_id: Uuid,
    attempt: Uuid,
    next_line: u64,
    /// Lines not sent yet. A plain mutex, appended to synchronously by [`Reporter::sink`], so
    /// lines keep their order even while a publish holds the reporter.
    pending: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Reporter {
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&mut self, line: String) {
        push_line(&self.pending, line);
    }

    /// Log lines from synchronous callbacks (git, the image build) into this reporter.
    fn sink(&self) -> impl FnMut(String) + Send + use<> {
        let pending = self.pending.clone();
        move |line| push_line(&pending, line)
    }

    async fn flush(&mut self) -> Result<(), PublishError> {
        loop {
            let lines: Vec<String> = {
                let pending = self.pending();
                pending[..pending.len().min(LOG_BATCH)].to_vec()
            };
            if lines.is_empty() {
                return Ok(());
            }
            let (first_line, n) = (self.next_line, lines.len());
            self.publish(UpdateBody::Log { first_line, lines }).await?;
            self.pending().drain(..n);
            self.next_line += n as u64;
        }
    }

    /// Flushes the log, then sends `body`.
    async fn send(&mut self, body: UpdateBody) -> Result<(), PublishError> {
        self.flush().await?;
        self.publish(body).await
    }

    async fn stage(&mut self, stage: Stage, reason: &str) -> Result<(), PublishError> {
        self.send(UpdateBody::Stage {
            stage,
            reason: reason.to_string(),
        })
        .await
    }

    async fn publish(&self, body: UpdateBody) -> Result<(), PublishError> {
        let update = BuildUpdate {
            build_id: self.build_id,
            tenant_id: self.tenant_id,
            attempt: self.attempt,
            body,
        };
        queue::publish_update(&self.channel, &self.exchange, &update).await
    }
}

fn push_line(pending: &std::sync::Mutex<Vec<String>>, line: String) {
    pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(line.chars().take(4096).collect());
}

/// Publishes a job's pending log lines every [`LOG_FLUSH`].
fn spawn_flusher(reporter: Arc<Mutex<Reporter>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(LOG_FLUSH).await;
            if reporter.lock().await.flush().await.is_err() {
                return;
            }
        }
    })
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
