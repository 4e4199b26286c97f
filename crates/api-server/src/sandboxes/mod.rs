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

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use labwright_core::{
    build::{
        BuildJob, BuildUpdate, MAX_UPDATE_BYTES, SessionControl,
        source::{RepoUrl, validate_ref, validate_subdir},
    },
    ids::{ApiKeyId, TenantId},
    retry::Backoff,
};
use labwright_wire::bus::{self, BusError, DecodeError, Names, timed};
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::db::{Applied, SessionTtl};
use crate::{
    db::{DbError, Pool},
    error::ApiError,
    events::{Broker, PublishError},
};

/// Unacknowledged updates a replica holds at once.
pub const UPDATE_PREFETCH: u16 = 64;
/// How often the sweeper runs when nobody wakes it.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Reason given to a build whose job went to the dead letters.
pub const DEAD_LETTER_REASON: &str =
    "the build failed on 3 workers in a row (worker crashed or the job could not be processed)";

/// Repo-sandbox settings and the handles the REST API and the background tasks share.
pub struct Sandboxes {
    pub pool: Pool,
    pub broker: Arc<Broker>,
    /// Builds of repositories on private hosts are accepted (local stack, tests).
    pub allow_private_hosts: bool,
    pub ttl: SessionTtl,
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
        pool: Pool,
        broker: Arc<Broker>,
        allow_private_hosts: bool,
        ttl: SessionTtl,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            broker,
            allow_private_hosts,
            ttl,
            sweep: Notify::new(),
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
        let mut conn = crate::db::conn(&self.pool).await?;
        let b = db::create(
            &mut conn,
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
        let mut conn = crate::db::conn(&self.pool).await?;
        let outcome = db::cancel(
            &mut conn,
            tenant,
            id,
            reason,
            &self.names().sessions_exchange,
        )
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
        let mut conn = crate::db::conn(&self.pool).await?;
        let stopped = db::stop_session(
            &mut conn,
            tenant,
            id,
            reason,
            &self.names().sessions_exchange,
        )
        .await?;
        if stopped.is_some() {
            self.broker.wake();
        }
        Ok(stopped)
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
            let mut conn = crate::db::conn(&self.pool).await?;
            crate::sandboxes::db::apply_update(
                &mut conn,
                &update,
                self.ttl,
                &self.names().sessions_exchange,
            )
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
            let mut conn = crate::db::conn(&self.pool).await?;
            crate::sandboxes::db::fail_dead_job(
                &mut conn,
                &job,
                DEAD_LETTER_REASON,
                &self.names().sessions_exchange,
            )
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
            let mut conn = crate::db::conn(&self.pool).await?;
            let expired =
                crate::sandboxes::db::sweep_expired(&mut conn, &self.names().sessions_exchange)
                    .await?;
            let live = crate::sandboxes::db::running_session_ids(&mut conn).await?;
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
