//! The loop that writes live fleet state to PostgreSQL.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use labwright_core::retry::Backoff;
use tokio_util::sync::CancellationToken;

use super::registry::{Change, DisconnectReason, Registry};
use crate::{db::DbError, events::Broker, fleet::db::FleetStore};

/// Timing of the flusher, derived from the heartbeat settings.
#[derive(Debug, Clone, Copy)]
pub struct FlushTiming {
    /// How often liveness is written and silent hosts are expired.
    pub interval: Duration,
    /// Hosts (of any replica) silent in the database for longer than this are marked offline.
    pub stale_after: Duration,
}

impl FlushTiming {
    pub fn new(heartbeat: Duration, offline_after: Duration) -> Self {
        let interval = heartbeat.clamp(Duration::from_millis(50), Duration::from_secs(5));
        Self {
            interval,
            stale_after: offline_after + interval * 2 + Duration::from_secs(1),
        }
    }
}

pub async fn run_flusher(
    registry: Arc<Registry>,
    store: FleetStore,
    broker: Arc<Broker>,
    timing: FlushTiming,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut tick = tokio::time::interval(timing.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            _ = registry.changed.notified() => {}
        }
        registry.expire_silent(Instant::now());
        match flush_once(&registry, &store, timing).await {
            Ok(wrote_events) => {
                backoff.reset();
                if wrote_events {
                    broker.wake();
                }
            }
            Err(e) => {
                let delay = backoff.next_delay();
                if backoff.worth_logging() {
                    tracing::warn!(error = %e, pending = registry.pending_changes(), retry_in_ms = delay.as_millis() as u64, "writing fleet state failed; will retry");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    // Last chance to persist what this replica knows before it goes away.
    if let Err(e) = flush_once(&registry, &store, timing).await {
        tracing::warn!(error = %e, pending = registry.pending_changes(), "final fleet flush failed");
    } else {
        broker.wake();
    }
}

/// Writes liveness, queued changes, and runs the stale sweep. Returns whether events were queued.
async fn flush_once(
    registry: &Registry,
    store: &FleetStore,
    timing: FlushTiming,
) -> Result<bool, DbError> {
    let mut events = false;

    let liveness = registry.take_liveness();
    match store.flush_liveness(&liveness).await {
        Ok(updated) => {
            let updated: HashSet<_> = updated.into_iter().collect();
            for l in liveness.iter().filter(|l| !updated.contains(&l.host)) {
                // The database no longer lists this stream as the host's: make the host say hello again.
                tracing::info!(host_id = %l.host, "host row owned elsewhere; closing its stream so it reconnects");
                registry.close(l.host, l.connection_id, DisconnectReason::Evicted);
            }
        }
        Err(e) => {
            registry.restore_liveness(&liveness);
            return Err(e);
        }
    }

    let changes = registry.take_changes();
    for (i, change) in changes.iter().enumerate() {
        let res = match change {
            Change::HostOffline {
                host,
                connection_id,
                reason,
                at,
            } => {
                store
                    .mark_host_offline(*host, *connection_id, reason.as_str(), *at)
                    .await
            }
            Change::DeviceStatus {
                host,
                connection_id,
                device_key,
                status,
                detail,
                at,
            } => {
                store
                    .set_device_status(*host, *connection_id, device_key, *status, detail, *at)
                    .await
            }
            Change::DeviceHealth {
                host,
                connection_id,
                device_key,
                health,
                reason,
                checked_at,
            } => {
                store
                    .set_device_health(
                        *host,
                        *connection_id,
                        device_key,
                        *health,
                        reason,
                        *checked_at,
                    )
                    .await
            }
        };
        match res {
            Ok(changed) => events |= changed,
            Err(e) => {
                registry.requeue(changes[i..].to_vec());
                return Err(e);
            }
        }
    }

    let now = Utc::now();
    let cutoff = now
        - chrono::Duration::from_std(timing.stale_after).unwrap_or(chrono::Duration::seconds(60));
    let swept = store.sweep_stale(cutoff, now).await?;
    if swept > 0 {
        tracing::info!(hosts = swept, "marked silent hosts offline");
        events = true;
    }
    Ok(events)
}
