//! In-memory registry of the hosts connected to this replica.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use labwright_core::{
    fleet::{HostStats, Status},
    health::Health,
    ids::{HostId, TenantId},
};
use labwright_wire::host_link::{Command, CommandReply, HostCommand, ToHost};
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

use crate::fleet::db::Liveness;

/// Messages are boxed: a channel allocates slots in blocks of 32, and an unboxed message or
/// `Status` is hundreds of bytes, which at 10,000 hosts is tens of MiB of mostly empty slots.
/// The host link (`grpc.rs`) puts them on the wire.
pub type Outgoing = Result<Box<ToHost>, Box<tonic::Status>>;

/// What the server sends down a host's stream.
pub type Outbound = mpsc::Sender<Outgoing>;

/// Why a host's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The host closed the stream or the connection broke.
    Closed,
    /// No heartbeat within the allowed time.
    HeartbeatsMissed,
    /// The same host connected again; the older stream is dropped.
    Superseded,
    /// The database says another stream (or the stale sweep) owns the host now.
    Evicted,
    /// The server is shutting down; the host will reconnect elsewhere.
    ServerShutdown,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Closed => "stream closed",
            DisconnectReason::HeartbeatsMissed => "heartbeats missed",
            DisconnectReason::Superseded => "superseded by a newer connection",
            DisconnectReason::Evicted => "evicted",
            DisconnectReason::ServerShutdown => "server shutdown",
        }
    }
}

struct LiveHost {
    tenant: TenantId,
    connection_id: Uuid,
    last_seen: Instant,
    last_seen_at: DateTime<Utc>,
    stats: Option<HostStats>,
    liveness_dirty: bool,
    outbound: Outbound,
    /// Dropping this ends the stream's reader task.
    kill: oneshot::Sender<DisconnectReason>,
    commands: HashMap<String, oneshot::Sender<CommandReply>>,
}

/// A status change waiting to be written.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    HostOffline {
        host: HostId,
        connection_id: Uuid,
        reason: DisconnectReason,
        at: DateTime<Utc>,
    },
    DeviceStatus {
        host: HostId,
        connection_id: Uuid,
        device_key: String,
        status: Status,
        detail: String,
        at: DateTime<Utc>,
    },
    /// The result of a health check of one device; only the latest per device is written.
    DeviceHealth {
        host: HostId,
        connection_id: Uuid,
        device_key: String,
        health: Health,
        reason: String,
        checked_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ChangeKey {
    Host(HostId),
    Device(HostId, String),
    Health(HostId, String),
}

impl Change {
    fn key(&self) -> ChangeKey {
        match self {
            Change::HostOffline { host, .. } => ChangeKey::Host(*host),
            Change::DeviceStatus {
                host, device_key, ..
            } => ChangeKey::Device(*host, device_key.clone()),
            Change::DeviceHealth {
                host, device_key, ..
            } => ChangeKey::Health(*host, device_key.clone()),
        }
    }
}

#[derive(Default)]
struct Pending {
    /// Latest change per host/device, in arrival order of first change.
    changes: HashMap<ChangeKey, (u64, Change)>,
    next_seq: u64,
}

pub struct Registry {
    hosts: Mutex<HashMap<HostId, LiveHost>>,
    pending: Mutex<Pending>,
    /// Woken when a change is queued, so the flusher writes it without waiting for its tick.
    pub(crate) changed: Notify,
    offline_after: Duration,
}

impl Registry {
    pub fn new(offline_after: Duration) -> Self {
        Self {
            hosts: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::default()),
            changed: Notify::new(),
            offline_after,
        }
    }

    fn hosts(&self) -> std::sync::MutexGuard<'_, HashMap<HostId, LiveHost>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a freshly welcomed stream, replacing (and closing) any older stream of the host.
    /// The returned receiver resolves when the server wants the stream closed.
    pub fn register(
        &self,
        host: HostId,
        tenant: TenantId,
        connection_id: Uuid,
        outbound: Outbound,
    ) -> oneshot::Receiver<DisconnectReason> {
        let (kill, killed) = oneshot::channel();
        let live = LiveHost {
            tenant,
            connection_id,
            last_seen: Instant::now(),
            last_seen_at: Utc::now(),
            stats: None,
            liveness_dirty: false,
            outbound,
            kill,
            commands: HashMap::new(),
        };
        if let Some(old) = self.hosts().insert(host, live) {
            let _ = old.kill.send(DisconnectReason::Superseded);
        }
        // A queued offline from an older stream is moot now (and guarded by connection id anyway).
        self.pending().changes.remove(&ChangeKey::Host(host));
        killed
    }

    /// Records a heartbeat. Returns false if this stream is no longer the host's current one.
    pub fn heartbeat(&self, host: HostId, connection_id: Uuid, stats: Option<HostStats>) -> bool {
        let mut hosts = self.hosts();
        match hosts.get_mut(&host) {
            Some(h) if h.connection_id == connection_id => {
                h.last_seen = Instant::now();
                h.last_seen_at = Utc::now();
                if stats.is_some() {
                    h.stats = stats;
                }
                h.liveness_dirty = true;
                true
            }
            _ => false,
        }
    }

    /// Called by a stream's reader task when it ends. If the stream was still current, the host is
    /// removed and (unless the server is shutting down) queued to be marked offline.
    pub fn stream_ended(&self, host: HostId, connection_id: Uuid, reason: DisconnectReason) {
        let removed = {
            let mut hosts = self.hosts();
            match hosts.get(&host) {
                Some(h) if h.connection_id == connection_id => hosts.remove(&host),
                _ => None,
            }
        };
        if removed.is_some() && reason != DisconnectReason::ServerShutdown {
            self.queue(Change::HostOffline {
                host,
                connection_id,
                reason,
                at: Utc::now(),
            });
        }
    }

    /// Closes a stream from the server side.
    pub fn close(&self, host: HostId, connection_id: Uuid, reason: DisconnectReason) {
        let removed = {
            let mut hosts = self.hosts();
            match hosts.get(&host) {
                Some(h) if h.connection_id == connection_id => hosts.remove(&host),
                _ => None,
            }
        };
        if let Some(h) = removed {
            let _ = h.kill.send(reason);
            if reason != DisconnectReason::ServerShutdown {
                self.queue(Change::HostOffline {
                    host,
                    connection_id,
                    reason,
                    at: Utc::now(),
                });
            }
        }
    }

    /// Closes every host that has been silent longer than allowed. Returns how many.
    pub fn expire_silent(&self, now: Instant) -> usize {
        let expired: Vec<(HostId, Uuid)> = self
            .hosts()
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.last_seen) > self.offline_after)
            .map(|(id, h)| (*id, h.connection_id))
            .collect();
        for (host, conn) in &expired {
            tracing::info!(host_id = %host, "heartbeats missed; marking host offline");
            self.close(*host, *conn, DisconnectReason::HeartbeatsMissed);
        }
        expired.len()
    }

    /// Closes every stream (server shutdown). Hosts are not marked offline: they reconnect.
    pub fn close_all(&self) {
        let all: Vec<(HostId, LiveHost)> = self.hosts().drain().collect();
        for (_, h) in all {
            let _ = h.kill.send(DisconnectReason::ServerShutdown);
        }
    }

    pub fn queue(&self, change: Change) {
        {
            let mut p = self.pending();
            let seq = p.next_seq;
            p.next_seq += 1;
            let key = change.key();
            let seq = p.changes.get(&key).map_or(seq, |(s, _)| *s);
            p.changes.insert(key, (seq, change));
        }
        self.changed.notify_one();
    }

    /// Takes every queued change, oldest first.
    pub fn take_changes(&self) -> Vec<Change> {
        let mut p = self.pending();
        let mut all: Vec<(u64, Change)> = p.changes.drain().map(|(_, v)| v).collect();
        all.sort_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, c)| c).collect()
    }

    /// Puts back changes that could not be written, unless a newer change for the same thing arrived.
    pub fn requeue(&self, changes: Vec<Change>) {
        let mut p = self.pending();
        for (i, c) in changes.into_iter().enumerate() {
            p.changes.entry(c.key()).or_insert((i as u64, c));
        }
    }

    pub fn pending_changes(&self) -> usize {
        self.pending().changes.len()
    }

    /// Liveness of every host that heartbeated since the last flush; marks them clean.
    pub fn take_liveness(&self) -> Vec<Liveness> {
        self.hosts()
            .iter_mut()
            .filter(|(_, h)| h.liveness_dirty)
            .map(|(id, h)| {
                h.liveness_dirty = false;
                Liveness {
                    host: *id,
                    connection_id: h.connection_id,
                    seen_at: h.last_seen_at,
                    stats: h.stats.clone(),
                }
            })
            .collect()
    }

    /// Marks liveness dirty again after a failed flush.
    pub fn restore_liveness(&self, batch: &[Liveness]) {
        let mut hosts = self.hosts();
        for l in batch {
            if let Some(h) = hosts
                .get_mut(&l.host)
                .filter(|h| h.connection_id == l.connection_id)
            {
                h.liveness_dirty = true;
            }
        }
    }

    /// Ids of every host connected to this replica.
    pub fn connected_hosts(&self) -> Vec<HostId> {
        self.hosts().keys().copied().collect()
    }

    /// Sends a message down a host's current stream without waiting (dropped if the buffer is full;
    /// used for acknowledgements, which the host recovers from by resending).
    pub fn try_send(&self, host: HostId, msg: ToHost) -> bool {
        let outbound = self.hosts().get(&host).map(|h| h.outbound.clone());
        outbound.is_some_and(|o| o.try_send(Ok(Box::new(msg))).is_ok())
    }

    /// The tenant of a connected host.
    pub fn tenant_of(&self, host: HostId) -> Option<TenantId> {
        self.hosts().get(&host).map(|h| h.tenant)
    }

    pub fn connected(&self) -> usize {
        self.hosts().len()
    }

    pub fn is_connected(&self, host: HostId) -> bool {
        self.hosts().contains_key(&host)
    }

    /// Pushes a command (with a fresh id) down a host's stream and returns a receiver for its
    /// result.
    pub fn send_command(
        &self,
        tenant: TenantId,
        host: HostId,
        kind: HostCommand,
    ) -> Option<oneshot::Receiver<CommandReply>> {
        let command = Command {
            command_id: Uuid::new_v4().to_string(),
            kind,
        };
        let (tx, rx) = oneshot::channel();
        let outbound = {
            let mut hosts = self.hosts();
            let h = hosts.get_mut(&host).filter(|h| h.tenant == tenant)?;
            h.commands.retain(|_, s| !s.is_closed());
            h.commands.insert(command.command_id.clone(), tx);
            h.outbound.clone()
        };
        outbound
            .try_send(Ok(Box::new(ToHost::Command(command))))
            .ok()?;
        Some(rx)
    }

    /// Delivers a command result from the host to whoever is waiting for it.
    pub fn complete_command(&self, host: HostId, connection_id: Uuid, result: CommandReply) {
        let waiter = {
            let mut hosts = self.hosts();
            hosts
                .get_mut(&host)
                .filter(|h| h.connection_id == connection_id)
                .and_then(|h| h.commands.remove(&result.command_id))
        };
        if let Some(w) = waiter {
            let _ = w.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound() -> (Outbound, mpsc::Receiver<Outgoing>) {
        mpsc::channel(4)
    }

    #[test]
    fn a_reconnect_supersedes_the_old_stream_without_queuing_offline() {
        let r = Registry::new(Duration::from_secs(3));
        let host = HostId::new();
        let (tx1, _rx1) = outbound();
        let mut killed1 = r.register(host, TenantId::new(), Uuid::new_v4(), tx1);
        let c1 = Uuid::new_v4();
        let _ = c1;
        let (tx2, _rx2) = outbound();
        let c2 = Uuid::new_v4();
        let _killed2 = r.register(host, TenantId::new(), c2, tx2);
        assert_eq!(
            killed1.try_recv().expect("old stream told to close"),
            DisconnectReason::Superseded
        );
        assert_eq!(r.connected(), 1);
        assert!(r.take_changes().is_empty());
        assert!(r.heartbeat(host, c2, None));
    }

    #[test]
    fn silent_hosts_expire_and_are_queued_offline() {
        let r = Registry::new(Duration::from_millis(10));
        let host = HostId::new();
        let conn = Uuid::new_v4();
        let (tx, _rx) = outbound();
        let _k = r.register(host, TenantId::new(), conn, tx);
        assert_eq!(r.expire_silent(Instant::now()), 0);
        assert_eq!(
            r.expire_silent(Instant::now() + Duration::from_millis(50)),
            1
        );
        let changes = r.take_changes();
        assert!(matches!(
            changes.as_slice(),
            [Change::HostOffline {
                reason: DisconnectReason::HeartbeatsMissed,
                ..
            }]
        ));
        assert!(
            !r.heartbeat(host, conn, None),
            "an expired stream is no longer current"
        );
    }

    #[test]
    fn changes_coalesce_per_device_and_requeue_keeps_newer() {
        let r = Registry::new(Duration::from_secs(3));
        let host = HostId::new();
        let conn = Uuid::new_v4();
        let dev = |status| Change::DeviceStatus {
            host,
            connection_id: conn,
            device_key: "stb-1".into(),
            status,
            detail: String::new(),
            at: Utc::now(),
        };
        r.queue(dev(Status::Error));
        r.queue(dev(Status::Online));
        let taken = r.take_changes();
        assert_eq!(taken.len(), 1);
        assert!(matches!(
            &taken[0],
            Change::DeviceStatus {
                status: Status::Online,
                ..
            }
        ));
        r.queue(dev(Status::Offline));
        r.requeue(taken);
        let again = r.take_changes();
        assert!(
            matches!(
                &again[0],
                Change::DeviceStatus {
                    status: Status::Offline,
                    ..
                }
            ),
            "newer change wins"
        );
    }

    #[test]
    fn shutdown_closes_streams_without_marking_offline() {
        let r = Registry::new(Duration::from_secs(3));
        let host = HostId::new();
        let conn = Uuid::new_v4();
        let (tx, _rx) = outbound();
        let mut k = r.register(host, TenantId::new(), conn, tx);
        r.close_all();
        assert_eq!(
            k.try_recv().expect("closed"),
            DisconnectReason::ServerShutdown
        );
        r.stream_ended(host, conn, DisconnectReason::ServerShutdown);
        assert_eq!(r.pending_changes(), 0);
    }
}
