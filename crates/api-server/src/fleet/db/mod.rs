//! Hosts and devices: persisting what hosts say about themselves, and the fleet queries behind the
//! REST API. Writes that come from a host's stream are guarded by the stream's `connection_id`, so a
//! late write from an older stream of the same host never overwrites the current one.

pub mod reservations;

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, PgArrayExpressionMethods,
    PgTextExpressionMethods, QueryDsl, Queryable, QueryableByName, Selectable, SelectableHelper,
    dsl::exists, sql_types, upsert::excluded,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use labwright_core::{
    fleet::{Hello, HostStats, Status},
    health::Health,
    ids::{DeviceId, HostId, TenantId},
};
use serde_json::json;
use uuid::Uuid;

use crate::db::{
    DbError, Pool, Store, outbox,
    schema::{devices, hosts},
};
use reservations::{ReservationRow, Reserve};

/// A device row with its host's name and last heartbeat.
pub type DeviceWithHost = (DeviceRow, String, DateTime<Utc>);

/// Hosts, devices and reservations: the fleet's queries, each on a pooled connection.
#[derive(Clone)]
pub struct FleetStore(Store);

impl FleetStore {
    pub fn new(pool: Pool) -> Self {
        Self(Store::new(pool))
    }

    /// Records a host's hello: creates or updates the host (identity = tenant + host name) and its
    /// devices, marks devices it no longer declares as absent, and queues a `host.online` event, all in
    /// one transaction. Returns the host's id.
    pub async fn upsert_hello(
        &self,
        tenant: TenantId,
        hello: &Hello,
        connection_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<HostId, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let info = serde_json::to_value(&hello.info)
            .map_err(|e| DbError::Query(diesel::result::Error::SerializationError(e.into())))?;
        conn.transaction::<_, DbError, _>(async move |conn| {
                let host_id: Uuid = diesel::insert_into(hosts::table)
                    .values((
                        hosts::id.eq(Uuid::new_v4()),
                        hosts::tenant_id.eq(tenant.0),
                        hosts::name.eq(&hello.host_name),
                        hosts::status.eq(Status::Online.as_str()),
                        hosts::agent_version.eq(&hello.agent_version),
                        hosts::info.eq(&info),
                        hosts::last_seen_at.eq(now),
                        hosts::connected_at.eq(now),
                        hosts::connection_id.eq(connection_id),
                    ))
                    .on_conflict((hosts::tenant_id, hosts::name))
                    .do_update()
                    .set((
                        hosts::status.eq(Status::Online.as_str()),
                        hosts::agent_version.eq(excluded(hosts::agent_version)),
                        hosts::info.eq(excluded(hosts::info)),
                        hosts::last_seen_at.eq(now),
                        hosts::connected_at.eq(now),
                        hosts::connection_id.eq(connection_id),
                        hosts::updated_at.eq(now),
                    ))
                    .returning(hosts::id)
                    .get_result(conn)
                    .await?;

                let keys: Vec<&str> = hello.devices.iter().map(|d| d.key.as_str()).collect();
                if !hello.devices.is_empty() {
                    let rows: Vec<_> = hello
                        .devices
                        .iter()
                        .map(|d| {
                            (
                                devices::id.eq(Uuid::new_v4()),
                                devices::tenant_id.eq(tenant.0),
                                devices::host_id.eq(host_id),
                                devices::device_key.eq(&d.key),
                                devices::name.eq(&d.name),
                                devices::model.eq(&d.model),
                                devices::driver.eq(d.driver.as_str()),
                                devices::capabilities
                                    .eq(d.capabilities.iter().map(|c| Some(c.as_str().to_string())).collect::<Vec<_>>()),
                                devices::tags.eq(d.tags.iter().cloned().map(Some).collect::<Vec<_>>()),
                                devices::status.eq(d.status.as_str()),
                                devices::status_detail.eq(&d.status_detail),
                                devices::present.eq(true),
                                devices::last_seen_at.eq(now),
                            )
                        })
                        .collect();
                    diesel::insert_into(devices::table)
                        .values(rows)
                        .on_conflict((devices::host_id, devices::device_key))
                        .do_update()
                        .set((
                            devices::name.eq(excluded(devices::name)),
                            devices::model.eq(excluded(devices::model)),
                            devices::driver.eq(excluded(devices::driver)),
                            devices::capabilities.eq(excluded(devices::capabilities)),
                            devices::tags.eq(excluded(devices::tags)),
                            devices::status.eq(excluded(devices::status)),
                            devices::status_detail.eq(excluded(devices::status_detail)),
                            devices::present.eq(true),
                            devices::last_seen_at.eq(now),
                            devices::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                }
                diesel::update(
                    devices::table
                        .filter(devices::host_id.eq(host_id))
                        .filter(devices::present.eq(true))
                        .filter(diesel::dsl::not(devices::device_key.eq_any(&keys))),
                )
                .set((
                    devices::present.eq(false),
                    devices::status.eq(Status::Offline.as_str()),
                    devices::status_detail.eq("no longer declared by its host"),
                    devices::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;

                outbox::push(
                    conn,
                    tenant,
                    "fleet.host.online",
                    json!({
                        "type": "host.online",
                        "tenant_id": tenant,
                        "host_id": host_id,
                        "host_name": hello.host_name,
                        "agent_version": hello.agent_version,
                        "devices": hello.devices.iter().map(|d| json!({"device_id": d.key, "status": d.status})).collect::<Vec<_>>(),
                        "at": now,
                    }),
                )
                .await?;
                Ok(HostId(host_id))
        })
        .await
    }

    /// Marks the host (and its devices) offline, unless a newer stream has taken over since.
    /// Returns whether anything changed.
    pub async fn mark_host_offline(
        &self,
        host: HostId,
        connection_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let row: Option<(Uuid, String)> = diesel::update(
                hosts::table
                    .find(host.0)
                    .filter(hosts::connection_id.eq(connection_id)),
            )
            .set((
                hosts::status.eq(Status::Offline.as_str()),
                hosts::connection_id.eq(None::<Uuid>),
                hosts::updated_at.eq(now),
            ))
            .returning((hosts::tenant_id, hosts::name))
            .get_result(conn)
            .await
            .optional()?;
            let Some((tenant, name)) = row else {
                return Ok(false);
            };
            offline_devices_and_event(conn, TenantId(tenant), host, &name, reason, now).await?;
            Ok(true)
        })
        .await
    }

    /// Records a device status change reported on the host's current stream.
    /// Returns false when the stream is no longer current or the device is unknown.
    pub async fn set_device_status(
        &self,
        host: HostId,
        connection_id: Uuid,
        device_key: &str,
        status: Status,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let current = exists(
                hosts::table
                    .filter(hosts::id.eq(host.0))
                    .filter(hosts::connection_id.eq(connection_id)),
            );
            let row: Option<(Uuid, Uuid)> = diesel::update(
                devices::table
                    .filter(devices::host_id.eq(host.0))
                    .filter(devices::device_key.eq(device_key))
                    .filter(current),
            )
            .set((
                devices::status.eq(status.as_str()),
                devices::status_detail.eq(detail),
                devices::last_seen_at.eq(now),
                devices::updated_at.eq(now),
            ))
            .returning((devices::id, devices::tenant_id))
            .get_result(conn)
            .await
            .optional()?;
            let Some((device_id, tenant)) = row else {
                return Ok(false);
            };
            let tenant = TenantId(tenant);
            outbox::push(
                conn,
                tenant,
                "fleet.device.status",
                json!({
                    "type": "device.status",
                    "tenant_id": tenant,
                    "host_id": host,
                    "device_id": device_id,
                    "device_key": device_key,
                    "status": status,
                    "detail": detail,
                    "at": now,
                }),
            )
            .await?;
            Ok(true)
        })
        .await
    }

    /// Records the result of a device's health check reported on the host's current stream, and
    /// queues a `device.health` event when the health or its reason changed. Returns whether an
    /// event was queued (false also when the stream is no longer current or the device unknown).
    pub async fn set_device_health(
        &self,
        host: HostId,
        connection_id: Uuid,
        device_key: &str,
        health: Health,
        reason: &str,
        checked_at: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let current = exists(
                hosts::table
                    .filter(hosts::id.eq(host.0))
                    .filter(hosts::connection_id.eq(connection_id)),
            );
            let device = devices::table
                .filter(devices::host_id.eq(host.0))
                .filter(devices::device_key.eq(device_key))
                .filter(current);
            let before: Option<(Uuid, Uuid, Option<String>, String)> = device
                .select((
                    devices::id,
                    devices::tenant_id,
                    devices::health,
                    devices::health_reason,
                ))
                .for_update()
                .get_result(conn)
                .await
                .optional()?;
            let Some((device_id, tenant, old_health, old_reason)) = before else {
                return Ok(false);
            };
            diesel::update(devices::table.filter(devices::id.eq(device_id)))
                .set((
                    devices::health.eq(health.as_str()),
                    devices::health_reason.eq(reason),
                    devices::health_checked_at.eq(checked_at),
                ))
                .execute(conn)
                .await?;
            if old_health.as_deref() == Some(health.as_str()) && old_reason == reason {
                return Ok(false);
            }
            let tenant = TenantId(tenant);
            outbox::push(
                conn,
                tenant,
                "fleet.device.health",
                json!({
                    "type": "device.health",
                    "tenant_id": tenant,
                    "host_id": host,
                    "device_id": device_id,
                    "device_key": device_key,
                    "health": health,
                    "reason": reason,
                    "previous": old_health,
                    "checked_at": checked_at,
                }),
            )
            .await?;
            Ok(true)
        })
        .await
    }

    /// Records a device's power state as read back after a power action and, when the action
    /// switched it, who did and when, with a `device.power` event. Returns false for a device of
    /// another tenant or one that no longer exists.
    pub async fn set_device_power(
        &self,
        tenant: TenantId,
        device: DeviceId,
        state: &str,
        switched_by: Option<&PowerSwitch<'_>>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let target = devices::table
                .filter(devices::tenant_id.eq(tenant.0))
                .filter(devices::id.eq(device.0));
            let row: Option<String> = match switched_by {
                Some(by) => {
                    diesel::update(target)
                        .set((
                            devices::power_state.eq(state),
                            devices::power_read_at.eq(now),
                            devices::power_switched_at.eq(now),
                            devices::power_switched_by_kind.eq(by.kind),
                            devices::power_switched_by_id.eq(by.id),
                            devices::power_switched_by_name.eq(by.name),
                        ))
                        .returning(devices::device_key)
                        .get_result(conn)
                        .await
                }
                None => {
                    diesel::update(target)
                        .set((
                            devices::power_state.eq(state),
                            devices::power_read_at.eq(now),
                        ))
                        .returning(devices::device_key)
                        .get_result(conn)
                        .await
                }
            }
            .optional()?;
            let Some(device_key) = row else {
                return Ok(false);
            };
            outbox::push(
                conn,
                tenant,
                "fleet.device.power",
                json!({
                    "type": "device.power",
                    "tenant_id": tenant,
                    "device_id": device,
                    "device_key": device_key,
                    "state": state,
                    "switched_by": switched_by.map(|b| json!({"kind": b.kind, "id": b.id, "name": b.name})),
                    "at": now,
                }),
            )
            .await?;
            Ok(true)
        })
        .await
    }

    /// Writes the latest heartbeat time and stats of many hosts in one statement. Returns the ids that
    /// were updated; a host missing from the result no longer owns its row (swept or superseded).
    pub async fn flush_liveness(&self, batch: &[Liveness]) -> Result<Vec<HostId>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = batch.iter().map(|l| l.host.0).collect();
        let conns: Vec<Uuid> = batch.iter().map(|l| l.connection_id).collect();
        let seen: Vec<DateTime<Utc>> = batch.iter().map(|l| l.seen_at).collect();
        let stats: Vec<Option<serde_json::Value>> = batch
            .iter()
            .map(|l| l.stats.as_ref().and_then(|s| serde_json::to_value(s).ok()))
            .collect();
        let rows: Vec<IdRow> = crate::db::statement::Statement::new(
            "UPDATE hosts SET last_seen_at = v.seen, stats = COALESCE(v.stats, hosts.stats), updated_at = now() \
             FROM (SELECT unnest($1::uuid[]) AS id, unnest($2::uuid[]) AS conn, unnest($3::timestamptz[]) AS seen, \
                   unnest($4::jsonb[]) AS stats) v \
             WHERE hosts.id = v.id AND hosts.connection_id = v.conn \
             RETURNING hosts.id",
        )
        .bind::<sql_types::Array<sql_types::Uuid>, _>(ids)
        .bind::<sql_types::Array<sql_types::Uuid>, _>(conns)
        .bind::<sql_types::Array<sql_types::Timestamptz>, _>(seen)
        .bind::<sql_types::Array<sql_types::Nullable<sql_types::Jsonb>>, _>(stats)
        .load(conn)
        .await?;
        Ok(rows.into_iter().map(|r| HostId(r.id)).collect())
    }

    /// Marks offline every host (any replica's) whose last heartbeat is older than `cutoff`: the safety
    /// net for replicas that died without saying goodbye. Returns how many hosts it took offline.
    pub async fn sweep_stale(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let stale: Vec<(Uuid, Uuid, String)> = diesel::update(
                hosts::table
                    .filter(hosts::status.ne(Status::Offline.as_str()))
                    .filter(hosts::last_seen_at.lt(cutoff)),
            )
            .set((
                hosts::status.eq(Status::Offline.as_str()),
                hosts::connection_id.eq(None::<Uuid>),
                hosts::updated_at.eq(now),
            ))
            .returning((hosts::id, hosts::tenant_id, hosts::name))
            .get_results(conn)
            .await?;
            for (id, tenant, name) in &stale {
                offline_devices_and_event(
                    conn,
                    TenantId(*tenant),
                    HostId(*id),
                    name,
                    "heartbeats missed",
                    now,
                )
                .await?;
            }
            Ok(stale.len())
        })
        .await
    }

    /// A page of hosts with the number of devices each declares.
    pub async fn list_hosts(
        &self,
        tenant: TenantId,
        q: &FleetQuery,
    ) -> Result<(Vec<(HostRow, i64)>, i64), DbError> {
        let mut conn = self.0.conn().await?;
        let (rows, total) = list_hosts(&mut conn, tenant, q).await?;
        let ids: Vec<Uuid> = rows.iter().map(|h| h.id).collect();
        let counts: std::collections::HashMap<Uuid, i64> = device_counts(&mut conn, tenant, &ids)
            .await?
            .into_iter()
            .collect();
        let rows = rows
            .into_iter()
            .map(|h| {
                let n = counts.get(&h.id).copied().unwrap_or(0);
                (h, n)
            })
            .collect();
        Ok((rows, total))
    }

    pub async fn get_host(&self, tenant: TenantId, id: HostId) -> Result<Option<HostRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(hosts::table
            .filter(hosts::tenant_id.eq(tenant.0))
            .filter(hosts::id.eq(id.0))
            .select(HostRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }

    /// A page of devices, each with the reservation in force on it.
    pub async fn list_devices(
        &self,
        tenant: TenantId,
        q: &FleetQuery,
    ) -> Result<(Vec<(DeviceWithHost, Option<ReservationRow>)>, i64), DbError> {
        let mut conn = self.0.conn().await?;
        let (rows, total) = list_devices(&mut conn, tenant, q).await?;
        Ok((with_reservations(&mut conn, tenant, rows).await?, total))
    }

    pub async fn get_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
    ) -> Result<Option<DeviceWithHost>, DbError> {
        get_device(&mut *self.0.conn().await?, tenant, id).await
    }

    /// One device with the reservation in force on it.
    pub async fn get_device_reserved(
        &self,
        tenant: TenantId,
        id: DeviceId,
    ) -> Result<Option<(DeviceWithHost, Option<ReservationRow>)>, DbError> {
        let mut conn = self.0.conn().await?;
        let Some(row) = get_device(&mut conn, tenant, id).await? else {
            return Ok(None);
        };
        Ok(with_reservations(&mut conn, tenant, vec![row]).await?.pop())
    }

    pub async fn active_reservations(
        &self,
        tenant: TenantId,
        devices: &[Uuid],
    ) -> Result<Vec<ReservationRow>, DbError> {
        reservations::active(&mut *self.0.conn().await?, tenant, devices).await
    }

    /// Reserves a device of the tenant; `None`: no such device.
    pub async fn reserve(
        &self,
        tenant: TenantId,
        device: DeviceId,
        key: Uuid,
        holder: &str,
        minutes: i32,
        keep_alive: bool,
    ) -> Result<Option<Reserve>, DbError> {
        let mut conn = self.0.conn().await?;
        if get_device(&mut conn, tenant, device).await?.is_none() {
            return Ok(None);
        }
        let r = reservations::reserve(
            &mut conn, tenant, device.0, key, holder, minutes, keep_alive,
        )
        .await?;
        Ok(Some(r))
    }

    pub async fn keep_reservation(
        &self,
        tenant: TenantId,
        device: Uuid,
        key: Uuid,
    ) -> Result<Option<ReservationRow>, DbError> {
        reservations::keep_alive(&mut *self.0.conn().await?, tenant, device, key).await
    }

    pub async fn release_reservation(
        &self,
        tenant: TenantId,
        device: Uuid,
        key: Uuid,
        any: bool,
    ) -> Result<Option<ReservationRow>, DbError> {
        reservations::release(&mut *self.0.conn().await?, tenant, device, key, any).await
    }
}

/// Pairs devices with their reservations (one query for all of them).
async fn with_reservations(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    rows: Vec<DeviceWithHost>,
) -> Result<Vec<(DeviceWithHost, Option<ReservationRow>)>, DbError> {
    let ids: Vec<Uuid> = rows.iter().map(|(d, _, _)| d.id).collect();
    let reservations = reservations::active(conn, tenant, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let r = reservations
                .iter()
                .find(|r| r.device_id == row.0.id)
                .cloned();
            (row, r)
        })
        .collect())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = hosts)]
pub struct HostRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub status: String,
    pub agent_version: String,
    pub info: serde_json::Value,
    pub stats: Option<serde_json::Value>,
    pub last_seen_at: DateTime<Utc>,
    pub connected_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = devices)]
pub struct DeviceRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub host_id: Uuid,
    pub device_key: String,
    pub name: String,
    pub model: String,
    pub driver: String,
    pub capabilities: Vec<Option<String>>,
    pub tags: Vec<Option<String>>,
    pub status: String,
    pub status_detail: String,
    pub present: bool,
    pub last_seen_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub health: Option<String>,
    pub health_reason: String,
    pub health_checked_at: Option<DateTime<Utc>>,
    pub power_state: Option<String>,
    pub power_read_at: Option<DateTime<Utc>>,
    pub power_switched_at: Option<DateTime<Utc>>,
    pub power_switched_by_kind: Option<String>,
    pub power_switched_by_id: Option<Uuid>,
    pub power_switched_by_name: String,
}

async fn offline_devices_and_event(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    host: HostId,
    host_name: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(
        devices::table
            .filter(devices::host_id.eq(host.0))
            .filter(devices::status.ne(Status::Offline.as_str())),
    )
    .set((
        devices::status.eq(Status::Offline.as_str()),
        devices::status_detail.eq("host offline"),
        devices::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    outbox::push(
        conn,
        tenant,
        "fleet.host.offline",
        json!({"type": "host.offline", "tenant_id": tenant, "host_id": host, "host_name": host_name, "reason": reason, "at": now}),
    )
    .await
}

/// Who switched a device's power: a user's key or an execution.
pub struct PowerSwitch<'a> {
    /// `user` or `execution`.
    pub kind: &'a str,
    pub id: Uuid,
    pub name: &'a str,
}

/// One host's latest liveness, as flushed in batches.
pub struct Liveness {
    pub host: HostId,
    pub connection_id: Uuid,
    pub seen_at: DateTime<Utc>,
    pub stats: Option<HostStats>,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = sql_types::Uuid)]
    id: Uuid,
}

/// Filters and page of a fleet listing.
#[derive(Debug, Default, Clone)]
pub struct FleetQuery {
    pub status: Option<Status>,
    pub model: Option<String>,
    pub tag: Option<String>,
    pub host: Option<HostId>,
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

pub async fn list_hosts(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    q: &FleetQuery,
) -> Result<(Vec<HostRow>, i64), DbError> {
    let filtered = || {
        let mut query = hosts::table
            .filter(hosts::tenant_id.eq(tenant.0))
            .into_boxed();
        if let Some(s) = q.status {
            query = query.filter(hosts::status.eq(s.as_str()));
        }
        if let Some(search) = &q.search {
            query = query.filter(hosts::name.ilike(format!("%{}%", escape_like(search))));
        }
        if q.model.is_some() || q.tag.is_some() {
            let mut dev = devices::table
                .filter(devices::tenant_id.eq(tenant.0))
                .filter(devices::present.eq(true))
                .into_boxed();
            if let Some(m) = &q.model {
                dev = dev.filter(devices::model.eq(m.clone()));
            }
            if let Some(t) = &q.tag {
                dev = dev.filter(devices::tags.contains(vec![Some(t.clone())]));
            }
            query = query.filter(hosts::id.eq_any(dev.select(devices::host_id)));
        }
        query
    };
    let total: i64 = filtered().count().get_result(conn).await?;
    let rows = filtered()
        .order((hosts::name.asc(), hosts::id.asc()))
        .limit(q.limit)
        .offset(q.offset)
        .select(HostRow::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}

pub async fn device_counts(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    host_ids: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, DbError> {
    Ok(devices::table
        .filter(devices::tenant_id.eq(tenant.0))
        .filter(devices::host_id.eq_any(host_ids))
        .filter(devices::present.eq(true))
        .group_by(devices::host_id)
        .select((devices::host_id, diesel::dsl::count_star()))
        .load(conn)
        .await?)
}

/// Devices with their host's name and last heartbeat.
pub async fn list_devices(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    q: &FleetQuery,
) -> Result<(Vec<(DeviceRow, String, DateTime<Utc>)>, i64), DbError> {
    let filtered = || {
        let mut query = devices::table
            .inner_join(hosts::table)
            .filter(devices::tenant_id.eq(tenant.0))
            .filter(devices::present.eq(true))
            .into_boxed();
        if let Some(s) = q.status {
            query = query.filter(devices::status.eq(s.as_str()));
        }
        if let Some(m) = &q.model {
            query = query.filter(devices::model.eq(m.clone()));
        }
        if let Some(t) = &q.tag {
            query = query.filter(devices::tags.contains(vec![Some(t.clone())]));
        }
        if let Some(h) = q.host {
            query = query.filter(devices::host_id.eq(h.0));
        }
        if let Some(search) = &q.search {
            let pattern = format!("%{}%", escape_like(search));
            query = query.filter(
                devices::name
                    .ilike(pattern.clone())
                    .or(devices::device_key.ilike(pattern)),
            );
        }
        query
    };
    let total: i64 = filtered().count().get_result(conn).await?;
    let rows = filtered()
        .order((hosts::name.asc(), devices::device_key.asc()))
        .limit(q.limit)
        .offset(q.offset)
        .select((DeviceRow::as_select(), hosts::name, hosts::last_seen_at))
        .load(conn)
        .await?;
    Ok((rows, total))
}

pub async fn get_device(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: DeviceId,
) -> Result<Option<(DeviceRow, String, DateTime<Utc>)>, DbError> {
    Ok(devices::table
        .inner_join(hosts::table)
        .filter(devices::tenant_id.eq(tenant.0))
        .filter(devices::id.eq(id.0))
        .select((DeviceRow::as_select(), hosts::name, hosts::last_seen_at))
        .first(conn)
        .await
        .optional()?)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
