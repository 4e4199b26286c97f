//! The live fleet: which hosts are connected to this replica right now, and the background loop
//! that writes their liveness and status changes to PostgreSQL.
//!
//! Heartbeats are handled in memory (a host's heartbeat never waits for the database) and flushed
//! in one batched statement per interval. Status changes are coalesced per host/device and written
//! with their outbox events; while the database is down they wait here and are retried, so hosts stay
//! connected and nothing is lost.

pub mod db;
pub mod http;

pub use db::{DeviceRow, FleetQuery};

mod flusher;
pub use flusher::FlushTiming;
mod registry;

pub use flusher::run_flusher;
pub use registry::{DisconnectReason, Outbound, Outgoing, Registry};

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use labwright_core::{
    auth::Permission,
    fleet::{Capability, Hello, Status},
    health::Health,
    ids::{DeviceId, HostId, TenantId},
};
use labwright_wire::{
    host_link::HostCommand,
    rest::{
        Page,
        fleet::{DeviceView, HostView, PingResult, PowerSwitcher, ReservationView},
    },
};
use uuid::Uuid;

use self::db::{
    DeviceWithHost, FleetStore, HostRow,
    reservations::{ReservationRow, Reserve},
};
use crate::{error::ApiError, events::Broker, executions::db::ExecutionStore, keys::Caller};

/// A device status change reported on a host's stream, ready to queue.
pub fn registry_change(
    host: HostId,
    connection_id: Uuid,
    device_key: String,
    status: Status,
    detail: String,
) -> registry::Change {
    registry::Change::DeviceStatus {
        host,
        connection_id,
        device_key,
        status,
        detail,
        at: Utc::now(),
    }
}

/// A device health report from a host's stream, ready to queue.
pub fn health_change(
    host: HostId,
    connection_id: Uuid,
    device_key: String,
    health: Health,
    reason: String,
    checked_at: DateTime<Utc>,
) -> registry::Change {
    registry::Change::DeviceHealth {
        host,
        connection_id,
        device_key,
        health,
        reason,
        checked_at,
    }
}

/// How long a device command waits for the host's answer (plus the hold time of a long press).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The fleet as the REST API sees it: listings with reservations, commands to hosts and
/// devices, reservations (whose events wake the publisher), and hosts' hellos.
pub struct Fleet {
    store: FleetStore,
    executions: ExecutionStore,
    registry: Arc<Registry>,
    broker: Arc<Broker>,
}

impl Fleet {
    pub fn new(
        store: FleetStore,
        executions: ExecutionStore,
        registry: Arc<Registry>,
        broker: Arc<Broker>,
    ) -> Self {
        Self {
            store,
            executions,
            registry,
            broker,
        }
    }

    /// Whether the host has a stream open to this replica.
    pub fn is_connected(&self, host: HostId) -> bool {
        self.registry.is_connected(host)
    }

    /// Records a host's hello (its `host.online` event wakes the publisher). Returns its id.
    pub async fn hello(
        &self,
        tenant: TenantId,
        hello: &Hello,
        connection_id: Uuid,
    ) -> Result<HostId, ApiError> {
        let host = self
            .store
            .upsert_hello(tenant, hello, connection_id, Utc::now())
            .await?;
        self.broker.wake();
        Ok(host)
    }

    pub async fn list_hosts(
        &self,
        tenant: TenantId,
        q: &FleetQuery,
    ) -> Result<Page<HostView>, ApiError> {
        let (rows, total) = self.store.list_hosts(tenant, q).await?;
        Ok(Page {
            items: rows
                .into_iter()
                .map(|(h, n)| host_view(h, n, None))
                .collect(),
            total,
            limit: q.limit,
            offset: q.offset,
        })
    }

    /// One host with its devices.
    pub async fn get_host(&self, caller: &Caller, id: HostId) -> Result<HostView, ApiError> {
        let host = self
            .store
            .get_host(caller.tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("host {id}")))?;
        let q = FleetQuery {
            host: Some(id),
            limit: labwright_core::fleet::MAX_DEVICES_PER_HOST as i64,
            ..Default::default()
        };
        let (devices, total) = self.store.list_devices(caller.tenant, &q).await?;
        let devices = devices
            .into_iter()
            .map(|d| device_view(d, caller))
            .collect();
        Ok(host_view(host, total, Some(devices)))
    }

    /// Sends a ping down the host's stream and waits for its answer (5 s).
    pub async fn ping(&self, tenant: TenantId, id: HostId) -> Result<PingResult, ApiError> {
        self.store
            .get_host(tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("host {id}")))?;
        let command = HostCommand::Ping {
            payload: b"ping".to_vec(),
        };
        let started = Instant::now();
        let rx = self
            .registry
            .send_command(tenant, id, command)
            .ok_or_else(|| {
                ApiError::Conflict(format!("host {id} is not connected to this server"))
            })?;
        let result = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .map_err(|_| ApiError::Timeout("host did not answer within 5 s".into()))?
            .map_err(|_| ApiError::Conflict("host disconnected before answering".into()))?;
        if let Err(refusal) = result.outcome {
            return Err(ApiError::Conflict(format!(
                "host refused the command: {refusal}"
            )));
        }
        Ok(PingResult {
            round_trip_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    pub async fn list_devices(
        &self,
        caller: &Caller,
        q: &FleetQuery,
    ) -> Result<Page<DeviceView>, ApiError> {
        let (rows, total) = self.store.list_devices(caller.tenant, q).await?;
        Ok(Page {
            items: rows.into_iter().map(|d| device_view(d, caller)).collect(),
            total,
            limit: q.limit,
            offset: q.offset,
        })
    }

    pub async fn get_device(&self, caller: &Caller, id: DeviceId) -> Result<DeviceView, ApiError> {
        let row = self
            .store
            .get_device_reserved(caller.tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
        Ok(device_view(row, caller))
    }

    /// A device of the tenant as stored (`None`: no such device).
    pub async fn device(
        &self,
        tenant: TenantId,
        id: DeviceId,
    ) -> Result<Option<DeviceRow>, ApiError> {
        Ok(self.store.get_device(tenant, id).await?.map(|(d, _, _)| d))
    }

    /// A device the caller may send a command needing `needs` to: online, and with `exclusive`
    /// neither leased by an execution nor reserved by another key.
    pub async fn controllable(
        &self,
        caller: &Caller,
        id: DeviceId,
        needs: Capability,
        exclusive: bool,
    ) -> Result<DeviceRow, ApiError> {
        let d = self
            .device(caller.tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
        if !d.capabilities.iter().flatten().any(|c| c == needs.as_str()) {
            return Err(ApiError::InvalidArgument(format!(
                "device {} has no {needs} capability",
                d.device_key
            )));
        }
        if d.status != "online" {
            return Err(ApiError::Conflict(format!(
                "device {} is {}",
                d.device_key, d.status
            )));
        }
        if exclusive {
            self.ensure_free(caller, &d, false).await?;
        }
        Ok(d)
    }

    /// Whether the device is free for `caller` to change its state (keys, power, faults): never
    /// while an execution holds its lease (cancel the run first); while reserved, only for the
    /// holder's key, or for an admin who asks to `override_reservation` explicitly.
    pub async fn ensure_free(
        &self,
        caller: &Caller,
        d: &DeviceRow,
        override_reservation: bool,
    ) -> Result<(), ApiError> {
        if override_reservation {
            caller.require(Permission::ManageKeys).map_err(|_| {
                ApiError::Forbidden("only admins may override another key's reservation".into())
            })?;
        }
        if let Some(active) = self.executions.active_on_device(d.id).await? {
            return Err(ApiError::Conflict(format!(
                "device {} is leased by execution {}",
                d.device_key, active.id
            )));
        }
        if let Some(r) = self
            .store
            .active_reservations(caller.tenant, &[d.id])
            .await?
            .into_iter()
            .find(|r| r.key_id != caller.key_id.0)
        {
            if override_reservation {
                tracing::warn!(device_id = %d.id, holder = %r.holder, by = %caller.key_id, "admin overrode a reservation");
                return Ok(());
            }
            return Err(ApiError::Conflict(format!(
                "device {} is reserved by {} until {}",
                d.device_key,
                r.holder,
                r.until().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
        Ok(())
    }

    /// Whether `caller`'s key holds the reservation of device `d` right now (what typing into
    /// its console needs, besides `control_devices`).
    pub async fn holds_reservation(
        &self,
        caller: &Caller,
        d: &DeviceRow,
    ) -> Result<bool, ApiError> {
        Ok(self
            .store
            .active_reservations(caller.tenant, &[d.id])
            .await?
            .into_iter()
            .any(|r| r.key_id == caller.key_id.0))
    }

    /// Sends a command for device `d` to its host and waits for the answer.
    pub async fn command(
        &self,
        tenant: TenantId,
        d: &DeviceRow,
        kind: HostCommand,
    ) -> Result<Vec<u8>, ApiError> {
        // A long press takes as long as the key is held.
        let timeout = COMMAND_TIMEOUT
            + match &kind {
                HostCommand::PressKey { hold_ms, .. } => Duration::from_millis(u64::from(*hold_ms)),
                _ => Duration::ZERO,
            };
        let rx = self
            .registry
            .send_command(tenant, HostId(d.host_id), kind)
            .ok_or_else(|| {
                ApiError::Conflict("the device's host is not connected to this server".into())
            })?;
        let result = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| ApiError::Timeout("the host did not answer in time".into()))?
            .map_err(|_| ApiError::Conflict("the host disconnected before answering".into()))?;
        result
            .outcome
            .map_err(|refusal| ApiError::Conflict(format!("device refused: {refusal}")))
    }

    /// Stores the power state a power action read back and, when it switched, that `caller` did
    /// (its `device.power` event wakes the publisher). The switch already happened: a failure to
    /// store it is logged, not returned.
    pub async fn record_power(&self, caller: &Caller, d: &DeviceRow, state: &str, switched: bool) {
        if state != "on" && state != "off" {
            tracing::warn!(device_id = %d.id, state, "host reported an unknown power state");
            return;
        }
        let by = switched.then(|| db::PowerSwitch {
            kind: "user",
            id: caller.key_id.0,
            name: &caller.key_name,
        });
        match self
            .store
            .set_device_power(
                caller.tenant,
                DeviceId(d.id),
                state,
                by.as_ref(),
                Utc::now(),
            )
            .await
        {
            Ok(true) => self.broker.wake(),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(device_id = %d.id, error = %e, "could not store the power state")
            }
        }
    }

    /// Reserves a device for the caller's key (or renews its reservation). The change's event
    /// was committed with it; the publisher is woken once the transaction is done.
    pub async fn reserve(
        &self,
        caller: &Caller,
        id: DeviceId,
        minutes: i32,
        keep_alive: bool,
    ) -> Result<ReservationView, ApiError> {
        let outcome = self
            .store
            .reserve(
                caller.tenant,
                id,
                caller.key_id.0,
                &caller.key_name,
                minutes,
                keep_alive,
            )
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
        match outcome {
            Reserve::Reserved(r) => {
                self.broker.wake();
                Ok(reservation_view(&r, caller))
            }
            Reserve::Held(r) => Err(ApiError::Conflict(format!(
                "the device is reserved by {} until {}",
                r.holder,
                r.until().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))),
            Reserve::Changed => Err(ApiError::Conflict(
                "the reservation changed meanwhile; try again".into(),
            )),
        }
    }

    /// Keeps the caller's reservation alive (no event).
    pub async fn keep_reservation(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<ReservationView, ApiError> {
        let r = self
            .store
            .keep_reservation(caller.tenant, id, caller.key_id.0)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("no reservation of yours on device {id} (it ended)"))
            })?;
        Ok(reservation_view(&r, caller))
    }

    /// Releases the caller's reservation, or anyone's with `any`; wakes the publisher for its
    /// event once committed.
    pub async fn release_reservation(
        &self,
        caller: &Caller,
        id: Uuid,
        any: bool,
    ) -> Result<(), ApiError> {
        self.store
            .release_reservation(caller.tenant, id, caller.key_id.0, any)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no reservation of yours on device {id}")))?;
        self.broker.wake();
        Ok(())
    }
}

fn reservation_view(r: &ReservationRow, caller: &Caller) -> ReservationView {
    ReservationView {
        holder: r.holder.clone(),
        key_id: r.key_id,
        since: r.created_at,
        ends_at: r.ends_at,
        until: r.until(),
        mine: r.key_id == caller.key_id.0,
    }
}

fn host_view(h: HostRow, device_count: i64, devices: Option<Vec<DeviceView>>) -> HostView {
    HostView {
        id: h.id,
        name: h.name,
        status: h.status,
        agent_version: h.agent_version,
        info: h.info,
        stats: h.stats,
        last_seen_at: h.last_seen_at,
        connected_at: h.connected_at,
        created_at: h.created_at,
        device_count,
        devices,
    }
}

fn device_view(
    ((d, host_name, host_seen), reservation): (DeviceWithHost, Option<ReservationRow>),
    caller: &Caller,
) -> DeviceView {
    // While a device is online its host's heartbeat is the freshest sign of life.
    let last_seen_at: DateTime<Utc> = if d.status == Status::Online.as_str() {
        d.last_seen_at.max(host_seen)
    } else {
        d.last_seen_at
    };
    DeviceView {
        id: d.id,
        host_id: d.host_id,
        host_name,
        device_key: d.device_key,
        name: d.name,
        model: d.model,
        driver: d.driver,
        capabilities: d.capabilities.into_iter().flatten().collect(),
        tags: d.tags.into_iter().flatten().collect(),
        status: d.status,
        status_detail: d.status_detail,
        last_seen_at,
        reservation: reservation.map(|r| reservation_view(&r, caller)),
        health: d.health,
        health_reason: d.health_reason,
        health_checked_at: d.health_checked_at,
        power_state: d.power_state,
        power_read_at: d.power_read_at,
        power_switched_at: d.power_switched_at,
        power_switched_by: d.power_switched_by_kind.zip(d.power_switched_by_id).map(
            |(kind, id)| PowerSwitcher {
                kind,
                id,
                name: d.power_switched_by_name,
            },
        ),
    }
}
