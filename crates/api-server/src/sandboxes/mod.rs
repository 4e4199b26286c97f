//! Repo sandboxes, the api-server's side: build workers take jobs from RabbitMQ and report
//! progress back; this module stores that progress and owns sessions.
//!
//! Three background tasks, each reconnecting with backoff when the broker or the database goes
//! away:
//! - the **update consumer** stores [`BuildUpdate`]s from the updates queue (one transaction per
//!   message, acknowledged only after the commit, in queue order);
//! - the **dead-letter consumer** fails builds whose job went to the dead letters (a worker
//!   crashed on it, or could not process it, [`bus::DELIVERY_LIMIT`] times);
//! - the **session sweeper** expires sessions past their expiry and regularly tells workers which
//!   sessions are live ([`SessionControl::Live`]), so nothing outlives a crash anywhere.
//!
//! Every exchange and queue name comes from the broker's [`Names`] (the bus contract in
//! `labwright_wire::bus`, with the configured namespace in front).

pub mod db;
pub mod http;

/// What the handlers pass in and get back.
pub use db::{CancelOutcome, ExtendOutcome, ListQuery, LogLine, SESSION_STATUSES, SessionQuery};

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use labwright_core::{
    build::{
        BuildJob, BuildUpdate, MAX_UPDATE_BYTES, SessionControl, Stage,
        source::{RepoUrl, validate_ref, validate_subdir},
    },
    ids::{ApiKeyId, TenantId},
    retry::Backoff,
    terminal::{TICKET_TTL_SECS, TicketClaims},
};
use labwright_wire::{
    bus::{self, BusError, DecodeError, Names, timed},
    rest::{
        Page,
        builds::{BuildView, Durations, SessionSummary, SessionView, TerminalTicket},
    },
};
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::db::{Applied, BuildRow, BuildStore, SessionRow, SessionTtl};
use crate::{
    db::DbError,
    error::ApiError,
    events::{Broker, PublishError},
    keys::Caller,
};

/// Unacknowledged updates a replica holds at once.
pub const UPDATE_PREFETCH: u16 = 64;
/// How often the sweeper runs when nobody wakes it.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Reason given to a build whose job went to the dead letters.
pub const DEAD_LETTER_REASON: &str =
    "the build failed on 3 workers in a row (worker crashed or the job could not be processed)";

/// Signs terminal tickets for the terminal gateway at `url`.
pub struct Terminals {
    pub key: labwright_core::terminal::TicketKey,
    pub url: String,
}

/// Lines in a build's `log_tail`.
pub const LOG_TAIL: i64 = 20;

fn ms(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().max(0)
}

fn durations(b: &BuildRow, session: Option<&SessionRow>) -> Durations {
    let now = Utc::now();
    let stage = b.stage();
    let queued_ms = match (b.started_at, b.finished_at) {
        (Some(started), _) => Some(ms(b.created_at, started)),
        (None, Some(finished)) => Some(ms(b.created_at, finished)),
        (None, None) => Some(ms(b.created_at, now)),
    };
    let build_ms = b.started_at.and_then(|started| {
        let end = session
            .map(|s| s.created_at)
            .or(b.finished_at)
            .or((!stage.is_final() && stage != Stage::Running).then_some(now))?;
        Some(ms(started, end))
    });
    Durations {
        queued_ms,
        build_ms,
    }
}

pub(crate) fn build_view(
    b: BuildRow,
    session: Option<SessionRow>,
    log_tail: Option<Vec<String>>,
) -> BuildView {
    let durations = durations(&b, session.as_ref());
    BuildView {
        id: b.id,
        repo_url: b.repo_url,
        git_ref: b.git_ref,
        subdir: b.subdir,
        stage: b.stage,
        reason: b.reason,
        stack: b.stack,
        dockerfile: b.dockerfile,
        own_dockerfile: b.own_dockerfile,
        image: b.image,
        created_at: b.created_at,
        started_at: b.started_at,
        finished_at: b.finished_at,
        durations,
        log_tail,
        session: session.map(|s| SessionSummary {
            id: s.id,
            status: s.status,
            expires_at: s.expires_at,
            container_id: s.container_id,
            exit_code: s.exit_code,
            oom_killed: s.oom_killed,
        }),
    }
}

pub(crate) fn session_view(s: SessionRow) -> SessionView {
    SessionView {
        id: s.id,
        build_id: s.build_id,
        status: s.status,
        container_id: s.container_id,
        network: s.network,
        created_at: s.created_at,
        expires_at: s.expires_at,
        hard_expires_at: s.hard_expires_at,
        ended_at: s.ended_at,
        end_reason: s.end_reason,
        exit_code: s.exit_code,
        oom_killed: s.oom_killed,
        exited_at: s.exited_at,
        restarts: s.restarts,
    }
}

/// Repo-sandbox settings and the handles the REST API and the background tasks share.
pub struct Sandboxes {
    store: BuildStore,
    pub broker: Arc<Broker>,
    /// Builds of repositories on private hosts are accepted (local stack, tests).
    pub allow_private_hosts: bool,
    pub ttl: SessionTtl,
    terminals: Terminals,
    sweep: Notify,
}

#[derive(Debug, thiserror::Error)]
enum ConsumeError {
    #[error(transparent)]
    Broker(#[from] PublishError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker ended the consumer")]
    Ended,
    #[error("database: {0}")]
    Db(#[from] DbError),
}

/// What one message came to.
enum Handled {
    /// Acknowledge it.
    Done,
    /// The database failed: put it back and retry after a pause.
    Retry(DbError),
}

impl Sandboxes {
    pub fn new(
        store: BuildStore,
        broker: Arc<Broker>,
        allow_private_hosts: bool,
        ttl: SessionTtl,
        terminals: Terminals,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            broker,
            allow_private_hosts,
            ttl,
            terminals,
            sweep: Notify::new(),
        })
    }

    /// A build of the tenant as stored (404 when there is none).
    pub async fn build_row(&self, tenant: TenantId, id: Uuid) -> Result<db::BuildRow, ApiError> {
        self.store
            .get(tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("build {id}")))
    }

    /// One build with the end of its log and its session.
    pub async fn build(&self, tenant: TenantId, id: Uuid) -> Result<BuildView, ApiError> {
        let b = self.build_row(tenant, id).await?;
        self.full_view(tenant, b).await
    }

    /// A build's view with the end of its log and its session.
    pub async fn full_view(
        &self,
        tenant: TenantId,
        b: db::BuildRow,
    ) -> Result<BuildView, ApiError> {
        let session = self
            .store
            .sessions_of(tenant, &[b.id])
            .await?
            .into_iter()
            .next();
        let tail = self.store.log_tail(b.id, LOG_TAIL).await?;
        Ok(build_view(b, session, Some(tail)))
    }

    /// A page of the tenant's builds (newest first), each with its session.
    pub async fn list_builds(
        &self,
        tenant: TenantId,
        q: &db::ListQuery,
    ) -> Result<Page<BuildView>, ApiError> {
        let (rows, total) = self.store.list(tenant, q).await?;
        let ids: Vec<Uuid> = rows.iter().map(|b| b.id).collect();
        let mut sessions = self.store.sessions_of(tenant, &ids).await?;
        let items = rows
            .into_iter()
            .map(|b| {
                let session = sessions
                    .iter()
                    .position(|s| s.build_id == b.id)
                    .map(|i| sessions.swap_remove(i));
                build_view(b, session, None)
            })
            .collect();
        Ok(Page {
            items,
            total,
            limit: q.limit,
            offset: q.offset,
        })
    }

    /// A build's stage and up to `limit` of its log lines after `after`. The stage is read
    /// before the lines: lines stored before the build ended are then always seen before the end.
    pub async fn log_page(
        &self,
        build: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<(Option<Stage>, Vec<db::LogLine>), DbError> {
        let stage = self.store.stage_of(build).await?;
        let lines = self.store.log_page(build, after, limit).await?;
        Ok((stage, lines))
    }

    /// A page of the tenant's sessions, newest first.
    pub async fn list_sessions(
        &self,
        tenant: TenantId,
        q: &db::SessionQuery,
    ) -> Result<Page<SessionView>, ApiError> {
        let (rows, total) = self.store.list_sessions(tenant, q).await?;
        Ok(Page {
            items: rows.into_iter().map(session_view).collect(),
            total,
            limit: q.limit,
            offset: q.offset,
        })
    }

    /// One session of the tenant.
    pub async fn session(&self, tenant: TenantId, id: Uuid) -> Result<SessionView, ApiError> {
        Ok(session_view(self.session_row(tenant, id).await?))
    }

    async fn session_row(&self, tenant: TenantId, id: Uuid) -> Result<db::SessionRow, ApiError> {
        self.store
            .get_session(tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("session {id}")))
    }

    /// Extends a running session by `seconds`, within its hard limit.
    pub async fn extend_session(
        &self,
        tenant: TenantId,
        id: Uuid,
        seconds: i64,
    ) -> Result<db::ExtendOutcome, ApiError> {
        Ok(self.store.extend_session(tenant, id, seconds).await?)
    }

    /// A ticket for one terminal into a running session, signed for the terminal gateway.
    pub async fn terminal_ticket(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<TerminalTicket, ApiError> {
        let s = self.session_row(caller.tenant, id).await?;
        if s.status != "running" || s.expires_at < Utc::now() {
            return Err(ApiError::Conflict(format!(
                "session {id} is {}, not running",
                if s.status == "running" {
                    "expired"
                } else {
                    &s.status
                }
            )));
        }
        let expires_at = Utc::now() + chrono::Duration::seconds(TICKET_TTL_SECS);
        let ticket = self.terminals.key.sign(&TicketClaims {
            jti: Uuid::new_v4(),
            tenant: caller.tenant.0,
            session: s.id,
            container: s.container_id,
            key: caller.key_id.0,
            exp: expires_at.timestamp(),
        });
        tracing::info!(session_id = %id, key = %caller.key_id.0, "terminal ticket issued");
        Ok(TerminalTicket {
            url: format!("{}/terminal/{}?ticket={ticket}", self.terminals.url, s.id),
            ticket,
            expires_at,
        })
    }

    pub fn names(&self) -> &Names {
        self.broker.names()
    }

    /// Asks the sweeper to run now rather than at its next tick.
    /// Stores a build of `repo_url` and queues its job for a build worker (through the outbox,
    /// with the build; the publisher is woken). The URL, ref and subdirectory are checked before
    /// anything is stored.
    pub async fn create_build(
        &self,
        tenant: TenantId,
        created_by: ApiKeyId,
        repo_url: &str,
        git_ref: Option<&str>,
        subdir: Option<&str>,
    ) -> Result<db::BuildRow, ApiError> {
        let url = RepoUrl::parse(repo_url)?;
        if let Some(r) = git_ref {
            validate_ref(r)?;
        }
        if let Some(s) = subdir {
            validate_subdir(s)?;
        }
        if url.is_private_host() && !self.allow_private_hosts {
            return Err(ApiError::InvalidArgument(format!(
                "repo_url: {} is a private, loopback or link-local address; this server only builds \
                 repositories on public hosts",
                url.host()
            )));
        }
        let job = BuildJob {
            build_id: Uuid::new_v4(),
            tenant_id: tenant.0,
            repo_url: url,
            git_ref: git_ref.map(str::to_owned),
            subdir: subdir.map(str::to_owned),
            session_ttl_secs: self.ttl.ttl_secs,
            hard_ttl_secs: self.ttl.max_ttl_secs,
        };
        let b = self
            .store
            .create(
                db::NewBuild {
                    created_by: created_by.0,
                    job: &job,
                },
                &self.names().jobs_exchange,
            )
            .await?;
        self.broker.wake();
        // The host only: the URL carries no credentials (RepoUrl refuses them), but logs stay lean.
        tracing::info!(build_id = %b.id, host = job.repo_url.host(), "build queued");
        Ok(b)
    }

    /// Cancels a build that has not started its session yet (workers are told through the
    /// outbox; the publisher is woken).
    pub async fn cancel_build(
        &self,
        tenant: TenantId,
        id: Uuid,
        reason: &str,
    ) -> Result<db::CancelOutcome, ApiError> {
        let outcome = self
            .store
            .cancel(tenant, id, reason, &self.names().sessions_exchange)
            .await?;
        if matches!(outcome, db::CancelOutcome::Cancelled(_)) {
            self.broker.wake();
        }
        Ok(outcome)
    }

    /// Stops a session (its worker is told through the outbox; the publisher is woken). `None`:
    /// no such session in the tenant.
    pub async fn stop_session(
        &self,
        tenant: TenantId,
        id: Uuid,
        reason: &str,
    ) -> Result<Option<db::SessionRow>, ApiError> {
        let stopped = self
            .store
            .stop_session(tenant, id, reason, &self.names().sessions_exchange)
            .await?;
        if stopped.is_some() {
            self.broker.wake();
        }
        Ok(stopped)
    }

    /// Restarts a running or exited session (its worker is told through the outbox; the
    /// publisher is woken). `None`: no such session in the tenant; `false`: it ended already.
    pub async fn restart_session(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<(db::SessionRow, bool)>, ApiError> {
        let restarted = self
            .store
            .restart_session(tenant, id, &self.names().sessions_exchange)
            .await?;
        if matches!(restarted, Some((_, true))) {
            self.broker.wake();
        }
        Ok(restarted)
    }

    /// The tenant's session's status (404 when there is none).
    pub async fn session_exists(&self, tenant: TenantId, id: Uuid) -> Result<(), ApiError> {
        self.session_row(tenant, id).await.map(|_| ())
    }

    /// Where the last `n` output lines of a session start (a `seq` to read after).
    pub async fn session_log_tail_start(&self, session: Uuid, n: i64) -> Result<i64, ApiError> {
        Ok(self.store.session_log_tail_start(session, n).await?)
    }

    /// A session's status and up to `limit` of its output lines after `after`. The status is
    /// read before the lines: lines stored before the session ended are always seen before.
    pub async fn session_log_page(
        &self,
        session: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<(Option<String>, Vec<db::LogLine>), DbError> {
        let status = self.store.session_status(session).await?;
        let lines = self.store.session_log_page(session, after, limit).await?;
        Ok((status, lines))
    }

    pub fn wake_sweeper(&self) {
        self.sweep.notify_one();
    }

    /// Stores build updates until shutdown.
    pub async fn run_update_consumer(self: Arc<Self>, shutdown: CancellationToken) {
        let queue = self.names().updates_queue.clone();
        let this = self.clone();
        consume_forever(
            &self.broker,
            &queue,
            UPDATE_PREFETCH,
            "build updates",
            &shutdown,
            move |d| {
                let this = this.clone();
                async move { this.handle_update(&d).await }
            },
        )
        .await
    }

    /// Fails the builds of dead-lettered jobs until shutdown.
    pub async fn run_dead_letter_consumer(self: Arc<Self>, shutdown: CancellationToken) {
        let queue = self.names().dead_queue.clone();
        let this = self.clone();
        consume_forever(
            &self.broker,
            &queue,
            16,
            "dead build jobs",
            &shutdown,
            move |d| {
                let this = this.clone();
                async move { this.handle_dead_job(&d).await }
            },
        )
        .await
    }

    async fn handle_update(&self, d: &Delivery) -> Handled {
        let update: BuildUpdate = match bus::decode(&d.data, MAX_UPDATE_BYTES) {
            Ok(u) => u,
            Err(e @ DecodeError::TooLarge { .. }) => {
                tracing::warn!(error = %e, "build update too large: dropped");
                return Handled::Done;
            }
            Err(e) => {
                // Only the position: the message may hold anything.
                tracing::warn!(error = %e, "unreadable build update: dropped");
                return Handled::Done;
            }
        };
        if let Err(e) = update.validate() {
            tracing::warn!(build_id = %update.build_id, field = e.field, "invalid build update: dropped");
            return Handled::Done;
        }
        let applied = async {
            self.store
                .apply_update(&update, self.ttl, &self.names().sessions_exchange)
                .await
        }
        .await;
        match applied {
            Ok(Applied::Stored { queued }) => {
                if queued {
                    self.broker.wake();
                }
                Handled::Done
            }
            Ok(Applied::Ignored(why)) => {
                tracing::debug!(build_id = %update.build_id, attempt = %update.attempt, why, "build update ignored");
                Handled::Done
            }
            Ok(Applied::Unknown) => {
                tracing::warn!(build_id = %update.build_id, tenant_id = %update.tenant_id, "update for an unknown build (or another tenant's): dropped");
                Handled::Done
            }
            Err(e) => Handled::Retry(e),
        }
    }

    async fn handle_dead_job(&self, d: &Delivery) -> Handled {
        let job: BuildJob = match bus::decode(&d.data, MAX_UPDATE_BYTES) {
            Ok(j) => j,
            Err(e @ DecodeError::TooLarge { .. }) => {
                tracing::warn!(error = %e, "dead build job too large: dropped");
                return Handled::Done;
            }
            Err(e) => {
                tracing::warn!(error = %e, "unreadable dead build job: dropped");
                return Handled::Done;
            }
        };
        let failed = async {
            self.store
                .fail_dead_job(&job, DEAD_LETTER_REASON, &self.names().sessions_exchange)
                .await
        }
        .await;
        match failed {
            Ok(changed) => {
                if changed {
                    tracing::warn!(build_id = %job.build_id, "build job dead-lettered: build failed");
                    self.broker.wake();
                }
                Handled::Done
            }
            Err(e) => Handled::Retry(e),
        }
    }

    /// Every [`SWEEP_INTERVAL`] (or when woken): expires sessions past their expiry, then sends
    /// the workers the `Live` snapshot.
    pub async fn run_session_sweeper(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(500), SWEEP_INTERVAL);
        loop {
            let pause = match self.sweep_once().await {
                Ok(expired) => {
                    if expired > 0 {
                        tracing::info!(expired, "sessions expired");
                    }
                    backoff.reset();
                    SWEEP_INTERVAL
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    if backoff.worth_logging() {
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "session sweep failed");
                    }
                    delay
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.sweep.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One sweep. Returns how many sessions expired.
    pub async fn sweep_once(&self) -> Result<usize, SweepError> {
        let (expired, live) = {
            let expired = self
                .store
                .sweep_expired(&self.names().sessions_exchange)
                .await?;
            let live = self.store.running_session_ids().await?;
            (expired.len(), live)
        };
        if expired > 0 {
            self.broker.wake();
        }
        // A snapshot, not a change: sent directly (a lost one is replaced by the next) rather than
        // piling up in the outbox while the broker is away.
        let msg = SessionControl::Live {
            session_ids: live,
            at_unix: chrono::Utc::now().timestamp(),
        };
        let payload = serde_json::to_value(&msg).unwrap_or_default();
        self.broker
            .publish_now(&self.names().sessions_exchange, "", &payload)
            .await?;
        Ok(expired)
    }
}

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error(transparent)]
    Broker(#[from] PublishError),
}

/// Consumes `queue` until shutdown, reconnecting with backoff. `handle` decides each message; a
/// database failure puts it (and everything after it) back in order and pauses.
async fn consume_forever<F, Fut>(
    broker: &Broker,
    queue: &str,
    prefetch: u16,
    what: &'static str,
    shutdown: &CancellationToken,
    mut handle: F,
) where
    F: FnMut(Delivery) -> Fut,
    Fut: std::future::Future<Output = Handled>,
{
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        let mut progressed = false;
        let res = consume(
            broker,
            queue,
            prefetch,
            shutdown,
            &mut handle,
            &mut progressed,
        )
        .await;
        if progressed {
            backoff.reset();
        }
        match res {
            Ok(()) => return,
            Err(e) => {
                let delay = backoff.next_delay();
                if backoff.worth_logging() {
                    tracing::warn!(error = %e, queue, retry_in_ms = delay.as_millis() as u64, "consuming {what} failed");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// One consumer session on a channel of its own. `Ok` only on shutdown.
async fn consume<F, Fut>(
    broker: &Broker,
    queue: &str,
    prefetch: u16,
    shutdown: &CancellationToken,
    handle: &mut F,
    progressed: &mut bool,
) -> Result<(), ConsumeError>
where
    F: FnMut(Delivery) -> Fut,
    Fut: std::future::Future<Output = Handled>,
{
    let channel = broker.open_channel().await?;
    let res = async {
        // Again on this channel: the queue may have been deleted since the connection declared it.
        timed(bus::declare(&channel, broker.names())).await?;
        let mut consumer = bus::consume_queue(&channel, queue, prefetch, "").await?;
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                d = consumer.next() => d,
            };
            let delivery = match delivery {
                None => return Err(ConsumeError::Ended),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(d)) => d,
            };
            let acker = delivery.acker.clone();
            match handle(delivery).await {
                Handled::Done => {
                    timed(acker.ack(BasicAckOptions::default())).await?;
                    *progressed = true;
                }
                Handled::Retry(e) => {
                    timed(acker.nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    }))
                    .await?;
                    // Closing the channel returns the prefetched messages too, in order.
                    return Err(e.into());
                }
            }
        }
    }
    .await;
    bus::close_channel(&channel).await;
    res
}
