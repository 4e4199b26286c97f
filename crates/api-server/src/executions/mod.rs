//! Executions end to end on the server side: the dispatcher that leases devices and sends runs to
//! hosts, the handling of step and execution reports coming back (stored once, acknowledged so
//! the host can forget them), cancellation, and the sweep that interrupts runs whose host went
//! away and did not come back.

pub mod db;
pub mod http;

pub use db::ListQuery;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use labwright_core::{
    execution::ExecutionStatus,
    ids::{ApiKeyId, DeviceId, HostId, TenantId},
    retry::Backoff,
    run::Verdict,
    validate,
};
use labwright_wire::host_link::{self, HostCommand, ResultCode, ToHost};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use labwright_wire::rest::{
    Page,
    executions::{ExecutionView, StepView},
};

use self::db::{ExecutionRow, ExecutionStore, StepRow};
use crate::{
    artifacts::{self, Artifacts},
    db::DbError,
    error::ApiError,
    events::Broker,
    fleet::{Registry, db::FleetStore},
    library::{Library, db::LibraryStore},
};

/// A report from a host, waiting to be stored.
pub struct Report {
    pub host: HostId,
    pub tenant: TenantId,
    pub body: ReportBody,
}

pub use host_link::Report as ReportBody;

/// Bytes a report holds (its screenshot, if any, dominates).
fn report_size(r: &ReportBody) -> usize {
    match r {
        ReportBody::Step(s) => s.screenshot_jpeg.len() + s.reason.len() + 256,
        ReportBody::Screenshot(s) => s.jpeg.len() + 64,
        ReportBody::Execution(x) => {
            x.edge_observations
                .iter()
                .map(|o| o.edge_id.len() + 32)
                .sum::<usize>()
                + x.reason.len()
                + x.console_log.len()
                + 256
        }
    }
}

/// The acknowledgement that lets the host forget a report.
fn ack(r: &ReportBody) -> ToHost {
    ToHost::ReportAck(r.ack())
}

/// Reports queued for storage. When full, new reports are dropped unacknowledged: the host
/// resends them, so a slow database never stalls a host's stream.
const REPORT_QUEUE: usize = 1024;
/// And when the queued reports' screenshots pass this many KiB (a 1080p screenshot is a few
/// hundred KiB): memory stays bounded however many hosts report at once.
const REPORT_QUEUE_KIB: u32 = 256 * 1024;
const REPORT_WORKERS: usize = 4;
/// How long a host has to accept a run it was sent.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Lab {
    store: ExecutionStore,
    fleet: FleetStore,
    testcases: LibraryStore,
    library: Arc<Library>,
    pub registry: Arc<Registry>,
    pub artifacts: Artifacts,
    pub broker: Arc<Broker>,
    wake: Notify,
    /// One queue per worker; an execution's reports always go to the same one, in order. Each
    /// report holds its share of the byte budget until it is stored.
    reports: Vec<mpsc::Sender<(Report, OwnedSemaphorePermit)>>,
    report_bytes: Arc<Semaphore>,
    /// How long an execution survives its host being gone before it is marked interrupted.
    pub grace: Duration,
}

impl Lab {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: ExecutionStore,
        fleet: FleetStore,
        testcases: LibraryStore,
        library: Arc<Library>,
        registry: Arc<Registry>,
        artifacts: Artifacts,
        broker: Arc<Broker>,
        grace: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..REPORT_WORKERS)
            .map(|_| mpsc::channel(REPORT_QUEUE / REPORT_WORKERS))
            .unzip();
        let lab = Arc::new(Self {
            store,
            fleet,
            testcases,
            library,
            registry,
            artifacts,
            broker,
            wake: Notify::new(),
            reports: senders,
            report_bytes: Arc::new(Semaphore::new(REPORT_QUEUE_KIB as usize)),
            grace,
        });
        for mut rx in receivers {
            let (lab, stop) = (lab.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    let next = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = rx.recv() => r,
                    };
                    let Some((report, _budget)) = next else {
                        return;
                    };
                    lab.store_report(report).await;
                }
            });
        }
        lab
    }

    /// Asks the dispatcher to look for work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Queues a report from a host stream; never blocks.
    pub fn submit(&self, report: Report) {
        use std::hash::{Hash, Hasher};
        let id = report.body.execution_id();
        tracing::trace!(execution_id = id, "report received");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        let queue = &self.reports[(h.finish() % self.reports.len() as u64) as usize];
        let kib = u32::try_from(report_size(&report.body).div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, REPORT_QUEUE_KIB);
        let Ok(budget) = self.report_bytes.clone().try_acquire_many_owned(kib) else {
            tracing::warn!("report queue over its byte budget; the host will resend");
            return;
        };
        if queue.try_send((report, budget)).is_err() {
            tracing::warn!("report queue full; the host will resend");
        }
    }

    /// Dispatcher loop: leases devices of hosts connected here to their oldest queued execution.
    pub async fn run_dispatcher(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if let Err(e) = self.dispatch_once().await {
                let delay = backoff.next_delay();
                if backoff.worth_logging() {
                    tracing::warn!(error = ?e, "dispatching executions failed; will retry");
                }
                tokio::time::sleep(delay).await;
            } else {
                backoff.reset();
            }
            if let Err(e) = self.sweep().await {
                tracing::debug!(error = %e, "execution sweep failed");
            }
        }
    }

    async fn dispatch_once(&self) -> Result<(), ApiError> {
        let hosts: Vec<Uuid> = self
            .registry
            .connected_hosts()
            .into_iter()
            .map(|h| h.0)
            .collect();
        if hosts.is_empty() {
            return Ok(());
        }
        let claimed = { self.store.claim_next(&hosts).await? };
        // Every claimed run is started or failed here; one that cannot even be failed (database
        // gone) is left `dispatched` and the sweep fails it once the accept timeout has passed.
        for e in claimed {
            match self.start(&e).await {
                Ok(Started::Yes(host)) => {
                    if self.store.accepted(e.id).await? {
                        tracing::info!(execution_id = %e.id, "cancelled while on its way; telling the host");
                        self.stop_on_host(host, &e.id.to_string());
                    }
                }
                Ok(Started::Busy(why)) => {
                    // The host still runs something the server no longer counts (e.g. a run it
                    // interrupted); the host is told to stop that one, and this one waits.
                    tracing::info!(execution_id = %e.id, why, "device busy on the host; run requeued");
                    self.store.requeue(e.id).await?;
                }
                Err(err) => {
                    tracing::warn!(execution_id = %e.id, error = %err, "could not start execution");
                    let failed = async {
                        self.store
                            .transition(
                                e.id,
                                ExecutionStatus::Error,
                                &format!("could not start: {err}"),
                                None,
                            )
                            .await
                    };
                    if let Err(db_err) = failed.await {
                        tracing::warn!(execution_id = %e.id, error = %db_err, "could not record the failed start");
                    }
                }
            }
            self.broker.wake();
        }
        Ok(())
    }

    /// Sends a leased execution to its host and waits for the host to accept it.
    async fn start(&self, e: &ExecutionRow) -> Result<Started, ApiError> {
        tracing::debug!(execution_id = %e.id, "starting");
        let tenant = TenantId(e.tenant_id);
        let (command, host) = {
            let device = self
                .fleet
                .get_device(tenant, labwright_core::ids::DeviceId(e.device_id))
                .await?
                .ok_or_else(|| ApiError::NotFound("device".into()))?
                .0;
            let testcase = self
                .testcases
                .get_testcase_by_id(tenant, e.testcase_id)
                .await?
                .ok_or_else(|| ApiError::NotFound("test case".into()))?;
            let plan = self
                .library
                .prepare_run(tenant, &device.model, &testcase.document)
                .await?;
            let mut references = std::collections::HashMap::new();
            for r in plan.references {
                let bytes = self
                    .artifacts
                    .get(&r.object_key)
                    .await
                    .map_err(|err| ApiError::Internal(err.into()))?;
                references.insert(r.name, bytes.to_vec());
            }
            // Stored documents are the core types' JSON, validated when they were stored.
            let stored = |what: &str, e: serde_json::Error| {
                ApiError::Internal(anyhow::anyhow!("stored {what} does not read back: {e}"))
            };
            let run = host_link::RunExecution {
                execution_id: e.id.to_string(),
                device_id: device.device_key.clone(),
                testcase: serde_json::from_value(testcase.document)
                    .map_err(|e| stored("test case", e))?,
                navigation_tree: plan
                    .tree
                    .map(serde_json::from_value)
                    .transpose()
                    .map_err(|e| stored("navigation tree", e))?,
                references,
            };
            (HostCommand::Run(Box::new(run)), HostId(device.host_id))
        };
        tracing::debug!(execution_id = %e.id, "sending the run");
        let rx = self
            .registry
            .send_command(tenant, host, command)
            .ok_or_else(|| ApiError::Conflict("host is not connected".into()))?;
        let result = tokio::time::timeout(ACCEPT_TIMEOUT, rx)
            .await
            .map_err(|_| ApiError::Timeout("host did not accept the run in time".into()))?
            .map_err(|_| ApiError::Conflict("host disconnected before accepting the run".into()))?;
        if let Err(refusal) = result.outcome {
            if refusal.code == ResultCode::Busy {
                return Ok(Started::Busy(refusal.message));
            }
            return Err(ApiError::Conflict(format!(
                "host refused the run: {refusal}"
            )));
        }
        tracing::info!(execution_id = %e.id, host_id = %host, "execution started");
        Ok(Started::Yes(host))
    }

    async fn store_report(&self, report: Report) {
        let ack = ack(&report.body);
        let execution_id = report.body.execution_id().to_string();
        match self.store(report.host, report.tenant, report.body).await {
            Ok(()) => {
                tracing::trace!(execution_id, "report stored");
                self.registry.try_send(report.host, ack);
                self.broker.wake();
            }
            Err(StoreError::Reject(reason)) => {
                // Not ours to store (unknown execution, another host's, malformed): acknowledge so the
                // host stops resending, and say why.
                tracing::warn!(host_id = %report.host, execution_id, reason, "report refused");
                self.registry.try_send(report.host, ack);
            }
            Err(StoreError::Retry(e)) => {
                tracing::debug!(host_id = %report.host, execution_id, error = %e, "report not stored yet; the host will resend")
            }
        }
    }

    async fn store(
        &self,
        host: HostId,
        tenant: TenantId,
        body: ReportBody,
    ) -> Result<(), StoreError> {
        let id: Uuid = body
            .execution_id()
            .parse()
            .map_err(|_| StoreError::Reject("execution id is not a uuid".into()))?;
        let Some((exec, owner)) = self.store.with_host(id).await? else {
            return Err(StoreError::Reject("unknown execution".into()));
        };
        if exec.tenant_id != tenant.0 || owner != host.0 {
            return Err(StoreError::Reject(
                "execution belongs to another host".into(),
            ));
        }
        if matches!(body, ReportBody::Step(_))
            && exec.state().is_some_and(ExecutionStatus::is_final)
        {
            // The server ended this run (e.g. interrupted while its host was away) but the host
            // goes on: keep the evidence, and tell the host to stop.
            self.stop_on_host(host, &exec.id.to_string());
        }
        match body {
            ReportBody::Step(s) => {
                let index = i32::try_from(s.index)
                    .map_err(|_| StoreError::Reject("step index out of range".into()))?;
                let verdict = s
                    .verdict
                    .map(Verdict::as_str)
                    .ok_or_else(|| StoreError::Reject("step verdict unspecified".into()))?;
                let key = if s.screenshot_jpeg.is_empty() {
                    None
                } else {
                    if !s.screenshot_jpeg.starts_with(&[0xFF, 0xD8]) {
                        return Err(StoreError::Reject("screenshot is not a JPEG".into()));
                    }
                    let key = artifacts::step_screenshot_key(tenant.0, id, s.index);
                    self.artifacts
                        .put(&key, s.screenshot_jpeg)
                        .await
                        .map_err(|e| StoreError::Retry(e.to_string()))?;
                    Some(key)
                };
                let measurements: BTreeMap<String, f64> = s
                    .measurements
                    .into_iter()
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                self.store
                    .record_step(self::db::NewStep {
                        execution: id,
                        tenant,
                        index,
                        path: &truncate(&s.path, 256),
                        kind: &truncate(&s.kind, 64),
                        verdict,
                        reason: &truncate(&s.reason, 4096),
                        started_at: Utc
                            .timestamp_micros(s.started_at_unix_micros as i64)
                            .single()
                            .unwrap_or_else(Utc::now),
                        duration_ms: s.duration_micros as f64 / 1000.0,
                        screenshot_key: key.as_deref(),
                        screenshot_pending: s.screenshot_pending && key.is_none(),
                        measurements: serde_json::to_value(measurements).unwrap_or_default(),
                    })
                    .await?;
            }
            ReportBody::Screenshot(shot) => {
                let index = i32::try_from(shot.index)
                    .map_err(|_| StoreError::Reject("step index out of range".into()))?;
                // An empty report means the host could not encode the frame: the step keeps no picture.
                let key = if shot.jpeg.is_empty() {
                    None
                } else {
                    if !shot.jpeg.starts_with(&[0xFF, 0xD8]) {
                        return Err(StoreError::Reject("screenshot is not a JPEG".into()));
                    }
                    let key = artifacts::step_screenshot_key(tenant.0, id, shot.index);
                    self.artifacts
                        .put(&key, shot.jpeg)
                        .await
                        .map_err(|e| StoreError::Retry(e.to_string()))?;
                    Some(key)
                };
                if !self
                    .store
                    .attach_screenshot(id, index, key.as_deref())
                    .await?
                {
                    return Err(StoreError::Retry(format!("step {index} not stored yet")));
                }
            }
            ReportBody::Execution(x) => {
                let status = if x.cancelled {
                    ExecutionStatus::Cancelled
                } else {
                    match x.verdict {
                        Some(Verdict::Pass) => ExecutionStatus::Passed,
                        Some(Verdict::Fail) => ExecutionStatus::Failed,
                        _ => ExecutionStatus::Error,
                    }
                };
                let total = i32::try_from(x.steps_total).ok();
                // The end comes last: while a step is missing, leave the end report unacknowledged
                // (the host resends it) so an execution never reads finished with steps to come.
                let (stored, pending) = self.store.step_counts(id).await?;
                if (stored as u64) < u64::from(x.steps_total) || pending > 0 {
                    return Err(StoreError::Retry(format!(
                        "{stored} of {} steps stored, {pending} screenshots to come",
                        x.steps_total
                    )));
                }
                // Stored before the end is: an end report acknowledged has its console log kept.
                if !x.console_log.is_empty() {
                    let key = artifacts::console_log_key(tenant.0, id);
                    self.artifacts
                        .put(&key, bounded_console_log(x.console_log).into_bytes())
                        .await
                        .map_err(|e| StoreError::Retry(e.to_string()))?;
                }
                let changed = self
                    .store
                    .transition(id, status, &truncate(&x.reason, 4096), total)
                    .await?;
                // A resent end report changes nothing and must not count its observations twice.
                if changed.is_some()
                    && let Err(e) = self
                        .library
                        .record_edge_observations(tenant, exec.device_id, &x.edge_observations)
                        .await
                {
                    tracing::warn!(execution_id = %id, error = %e, "could not record navigation statistics");
                }
                self.wake();
            }
        }
        Ok(())
    }

    /// Interrupts executions whose host has been gone longer than the grace period.
    pub async fn sweep(&self) -> Result<(), ApiError> {
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.grace).unwrap_or(chrono::Duration::seconds(30));
        let accept_cutoff = Utc::now()
            - chrono::Duration::from_std(ACCEPT_TIMEOUT * 2)
                .unwrap_or(chrono::Duration::seconds(20));
        for e in self.store.stale_dispatched(accept_cutoff).await? {
            let reason = "the host never accepted the run";
            if self
                .store
                .transition(e.id, ExecutionStatus::Error, reason, None)
                .await?
                .is_some()
            {
                tracing::warn!(execution_id = %e.id, reason, "execution failed");
                self.broker.wake();
                self.wake();
            }
        }
        for (e, host_name) in self.store.abandoned(cutoff).await? {
            let reason = format!(
                "host {host_name} disconnected mid-run and did not come back within {} s",
                self.grace.as_secs()
            );
            if self
                .store
                .transition(e.id, ExecutionStatus::Interrupted, &reason, None)
                .await?
                .is_some()
            {
                tracing::info!(execution_id = %e.id, reason, "execution interrupted");
                self.broker.wake();
                self.wake();
            }
        }
        Ok(())
    }

    /// A host (re)connected: keep the runs it still has, interrupt the ones it lost.
    pub async fn host_connected(&self, host: HostId, running: &[String]) -> Result<(), ApiError> {
        let active = self.store.active_on_host(host.0).await?;
        let still: Vec<Uuid> = active
            .iter()
            .filter(|e| running.contains(&e.id.to_string()))
            .map(|e| e.id)
            .collect();
        if !still.is_empty() {
            self.store.touch(&still).await?;
        }
        for e in active.iter().filter(|e| !still.contains(&e.id)) {
            // A run dispatched moments ago may not have been accepted yet; leave it to the sweep.
            if e.state() == Some(ExecutionStatus::Dispatched)
                && e.dispatched_at
                    .is_some_and(|t| Utc::now() - t < chrono::Duration::seconds(15))
            {
                continue;
            }
            self.store
                .transition(
                    e.id,
                    ExecutionStatus::Interrupted,
                    "the host restarted and lost the run",
                    None,
                )
                .await?;
        }
        // Runs the host still has but the server already ended (interrupted while the host was
        // away): stop them, so the device is free for the queue. Finished runs whose reports are
        // still on their way are listed too; for them the host just answers "not running".
        for id in running
            .iter()
            .filter(|id| !active.iter().any(|e| e.id.to_string() == **id))
        {
            self.stop_on_host(host, id);
        }
        self.wake();
        Ok(())
    }

    /// Asks a host to stop a run, without waiting for the answer.
    fn stop_on_host(&self, host: HostId, execution_id: &str) {
        let Some(tenant) = self.registry.tenant_of(host) else {
            return;
        };
        let cmd = HostCommand::Cancel {
            execution_id: execution_id.to_string(),
        };
        let _ = self.registry.send_command(tenant, host, cmd);
    }

    /// Queues a run of `testcase` (`version`, or the newest) on `device`. Everything that can be
    /// checked is checked first (test case, device, capabilities, navigation tree and target
    /// screens, reference images); the dispatcher and the event publisher are woken.
    pub async fn create_execution(
        &self,
        tenant: TenantId,
        created_by: ApiKeyId,
        testcase: &str,
        version: Option<i32>,
        device: DeviceId,
    ) -> Result<ExecutionRow, ApiError> {
        validate::label("testcase", testcase, 128)?;
        let tc = self
            .testcases
            .get_testcase(tenant, testcase, version)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "test case {:?}{}",
                    testcase,
                    version.map(|v| format!(" version {v}")).unwrap_or_default()
                ))
            })?;
        let (device, _, _) = self
            .fleet
            .get_device(tenant, device)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("device {}", device.0)))?;
        self.library
            .check_runnable(tenant, &device, &tc.document)
            .await?;
        let e = self
            .store
            .create(tenant, DeviceId(device.id), tc.id, created_by.0)
            .await?;
        self.wake();
        self.broker.wake();
        tracing::info!(execution_id = %e.id, device_id = %device.id, testcase = %tc.name, version = tc.version, "execution queued");
        Ok(e)
    }

    /// An execution as the API shows it: its test case's name and version, its place in the
    /// queue while queued, and with `with_steps` every step so far.
    pub async fn view(
        &self,
        tenant: TenantId,
        e: ExecutionRow,
        with_steps: bool,
    ) -> Result<ExecutionView, ApiError> {
        let tc = self
            .testcases
            .get_testcase_by_id(tenant, e.testcase_id)
            .await?;
        let queue_position = if e.state() == Some(ExecutionStatus::Queued) {
            Some(self.store.queue_position(&e).await?)
        } else {
            None
        };
        let steps = if with_steps {
            Some(
                self.store
                    .steps(e.id)
                    .await?
                    .into_iter()
                    .map(step_view)
                    .collect(),
            )
        } else {
            None
        };
        Ok(ExecutionView {
            id: e.id,
            device_id: e.device_id,
            testcase_id: e.testcase_id,
            testcase: tc.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
            testcase_version: tc.map(|t| t.version).unwrap_or_default(),
            status: e.status,
            reason: e.reason,
            queue_position,
            steps_total: e.steps_total,
            cancel_requested: e.cancel_requested,
            created_at: e.created_at,
            dispatched_at: e.dispatched_at,
            finished_at: e.finished_at,
            steps,
        })
    }

    /// A page of the tenant's executions, newest first.
    pub async fn list(
        &self,
        tenant: TenantId,
        q: &db::ListQuery,
    ) -> Result<Page<ExecutionView>, ApiError> {
        let (rows, total) = self.store.list(tenant, q).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            items.push(self.view(tenant, r, false).await?);
        }
        Ok(Page {
            items,
            total,
            limit: q.limit,
            offset: q.offset,
        })
    }

    /// One execution with every step so far.
    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<ExecutionView, ApiError> {
        let e = self
            .store
            .get(tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("execution {id}")))?;
        self.view(tenant, e, true).await
    }

    /// The JPEG a step left.
    pub async fn step_screenshot(
        &self,
        tenant: TenantId,
        id: Uuid,
        index: i32,
    ) -> Result<bytes::Bytes, ApiError> {
        self.store
            .get(tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("execution {id}")))?;
        let key = self
            .store
            .steps(id)
            .await?
            .into_iter()
            .find(|s| s.idx == index)
            .and_then(|s| s.screenshot_key)
            .ok_or_else(|| ApiError::NotFound(format!("screenshot of step {index}")))?;
        self.artifacts
            .get(&key)
            .await
            .map_err(|e| ApiError::Internal(e.into()))
    }

    /// The console log of an execution (text with step markers), once its run has ended on a
    /// device with a console.
    pub async fn console_log(&self, tenant: TenantId, id: Uuid) -> Result<bytes::Bytes, ApiError> {
        self.store
            .get(tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("execution {id}")))?;
        match self
            .artifacts
            .get(&artifacts::console_log_key(tenant.0, id))
            .await
        {
            Ok(bytes) => Ok(bytes),
            Err(artifacts::ArtifactError::Store(object_store::Error::NotFound { .. })) => Err(
                ApiError::NotFound(format!("console log of execution {id} (none recorded)")),
            ),
            Err(e) => Err(ApiError::Internal(e.into())),
        }
    }

    /// Cancels an execution: at once if it is queued or its host is gone, otherwise by asking the host.
    pub async fn cancel(&self, tenant: TenantId, id: Uuid) -> Result<ExecutionRow, ApiError> {
        let e = self
            .store
            .get(tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("execution {id}")))?;
        if e.state().is_some_and(ExecutionStatus::is_final) {
            return Err(ApiError::Conflict(format!(
                "execution already {}",
                e.status
            )));
        }
        if e.state() == Some(ExecutionStatus::Queued) {
            // Only while still queued: if the dispatcher leased it a moment ago, it is on its
            // way to the host and is cancelled there like any started run.
            if let Some(row) = self
                .store
                .transition_from(
                    id,
                    &[ExecutionStatus::Queued],
                    ExecutionStatus::Cancelled,
                    "cancelled before it started",
                    None,
                )
                .await?
            {
                self.broker.wake();
                return Ok(row);
            }
        }
        self.store.request_cancel(id).await?;
        let device = self
            .fleet
            .get_device(tenant, labwright_core::ids::DeviceId(e.device_id))
            .await?
            .map(|d| d.0);
        let host = device.map(|d| HostId(d.host_id));
        let sent = host.and_then(|h| {
            let cmd = HostCommand::Cancel {
                execution_id: id.to_string(),
            };
            self.registry.send_command(tenant, h, cmd)
        });
        if sent.is_none() {
            let row = self
                .store
                .transition(
                    id,
                    ExecutionStatus::Cancelled,
                    "cancelled while its host was not connected",
                    None,
                )
                .await?;
            self.broker.wake();
            return row
                .ok_or_else(|| ApiError::Conflict("execution changed state; try again".into()));
        }
        Ok(self.store.get(tenant, id).await?.unwrap_or(e))
    }
}

fn step_view(s: StepRow) -> StepView {
    StepView {
        screenshot_url: s.screenshot_key.as_ref().map(|_| {
            format!(
                "/api/v1/executions/{}/steps/{}/screenshot",
                s.execution_id, s.idx
            )
        }),
        index: s.idx,
        path: s.path,
        kind: s.kind,
        verdict: s.verdict,
        reason: s.reason,
        started_at: s.started_at,
        duration_ms: s.duration_ms,
        measurements: s.measurements,
        stored_at: s.received_at,
    }
}

/// What a host said to a run it was sent.
enum Started {
    Yes(HostId),
    Busy(String),
}

enum StoreError {
    /// The report can never be stored: acknowledge and drop it.
    Reject(String),
    /// Storage is unavailable: leave it for the host to resend.
    Retry(String),
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError::Retry(e.to_string())
    }
}

/// Largest console log stored (hosts send at most 1 MiB and their markers).
const MAX_CONSOLE_LOG: usize = 2 << 20;

/// A host's console log, cut at [`MAX_CONSOLE_LOG`] (on a character boundary) with a marker.
fn bounded_console_log(mut log: String) -> String {
    if log.len() > MAX_CONSOLE_LOG {
        let mut end = MAX_CONSOLE_LOG;
        while !log.is_char_boundary(end) {
            end -= 1;
        }
        log.truncate(end);
        log.push_str("\n--- console log truncated by the server ---\n");
    }
    log
}

fn truncate(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(max)
        .collect()
}
