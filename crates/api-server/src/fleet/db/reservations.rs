//! Interactive device reservations (see the migration for the rules). Each change that others
//! should see (reserved, released) carries a `fleet.device.reservation` event in its
//! transaction; keep-alives do not.

use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, QueryableByName, sql_types};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use labwright_core::ids::TenantId;
use serde_json::json;
use uuid::Uuid;

use crate::db::{DbError, outbox, statement::Statement};

/// A page that stops renewing loses its reservation after this long.
pub const KEEP_ALIVE_SECS: f64 = 60.0;

#[derive(Debug, Clone, QueryableByName)]
pub struct ReservationRow {
    #[diesel(sql_type = sql_types::Uuid)]
    pub device_id: Uuid,
    #[diesel(sql_type = sql_types::Uuid)]
    pub key_id: Uuid,
    #[diesel(sql_type = sql_types::Text)]
    pub holder: String,
    #[diesel(sql_type = sql_types::Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = sql_types::Timestamptz)]
    pub ends_at: DateTime<Utc>,
    #[diesel(sql_type = sql_types::Timestamptz)]
    pub alive_until: DateTime<Utc>,
}

impl ReservationRow {
    /// When it ends if nothing more happens.
    pub fn until(&self) -> DateTime<Utc> {
        self.ends_at.min(self.alive_until)
    }
}

pub enum Reserve {
    Reserved(ReservationRow),
    /// Someone else holds it.
    Held(ReservationRow),
    /// It was released while we looked: try again.
    Changed,
}

/// Reserves `device` for `minutes` (or renews the caller's own reservation with a new time box);
/// with `keep_alive` it also ends [`KEEP_ALIVE_SECS`] after the last renewal.
pub async fn reserve(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    device: Uuid,
    key: Uuid,
    holder: &str,
    minutes: i32,
    keep_alive: bool,
) -> Result<Reserve, DbError> {
    let alive_secs = if keep_alive {
        KEEP_ALIVE_SECS
    } else {
        f64::from(minutes) * 60.0
    };
    let holder = holder.to_string();
    conn.transaction::<_, DbError, _>(async move |conn| {
        let row: Option<ReservationRow> = Statement::new(
            "INSERT INTO device_reservations AS r (device_id, tenant_id, key_id, holder, ends_at, alive_until) \
             VALUES ($1, $2, $3, $4, now() + make_interval(mins => $5), \
                     LEAST(now() + make_interval(mins => $5), now() + make_interval(secs => $6))) \
             ON CONFLICT (device_id) DO UPDATE SET key_id = EXCLUDED.key_id, holder = EXCLUDED.holder, \
               created_at = CASE WHEN r.key_id = EXCLUDED.key_id THEN r.created_at ELSE now() END, \
               ends_at = EXCLUDED.ends_at, alive_until = EXCLUDED.alive_until \
             WHERE r.key_id = EXCLUDED.key_id OR LEAST(r.ends_at, r.alive_until) <= now() \
             RETURNING device_id, key_id, holder, created_at, ends_at, alive_until",
        )
        .bind::<sql_types::Uuid, _>(device)
        .bind::<sql_types::Uuid, _>(tenant.0)
        .bind::<sql_types::Uuid, _>(key)
        .bind::<sql_types::Text, _>(&holder)
        .bind::<sql_types::Integer, _>(minutes)
        .bind::<sql_types::Double, _>(alive_secs)
        .get_result(conn)
        .await
        .optional()?;
        match row {
            Some(r) => {
                outbox::push(
                    conn,
                    tenant,
                    "fleet.device.reservation",
                    json!({"type": "device.reservation", "tenant_id": tenant, "device_id": device,
                           "reserved": true, "holder": r.holder, "until": r.until()}),
                )
                .await?;
                Ok(Reserve::Reserved(r))
            }
            None => {
                let current = active(conn, tenant, &[device]).await?;
                match current.into_iter().next() {
                    Some(r) => Ok(Reserve::Held(r)),
                    // Released between the two statements: the caller may simply retry.
                    None => Ok(Reserve::Changed),
                }
            }
        }
    })
    .await
}

/// Pushes the caller's reservation's liveness forward. `None`: the caller holds none (any more).
pub async fn keep_alive(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    device: Uuid,
    key: Uuid,
) -> Result<Option<ReservationRow>, DbError> {
    Ok(Statement::new(
        "UPDATE device_reservations SET alive_until = LEAST(ends_at, now() + make_interval(secs => $4)) \
         WHERE device_id = $1 AND tenant_id = $2 AND key_id = $3 AND LEAST(ends_at, alive_until) > now() \
         RETURNING device_id, key_id, holder, created_at, ends_at, alive_until",
    )
    .bind::<sql_types::Uuid, _>(device)
    .bind::<sql_types::Uuid, _>(tenant.0)
    .bind::<sql_types::Uuid, _>(key)
    .bind::<sql_types::Double, _>(KEEP_ALIVE_SECS)
    .get_result(conn)
    .await
    .optional()?)
}

/// Ends a reservation: the holder's own, or anyone's when `any` (admins). Returns what ended.
pub async fn release(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    device: Uuid,
    key: Uuid,
    any: bool,
) -> Result<Option<ReservationRow>, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let row: Option<ReservationRow> = Statement::new(
            "DELETE FROM device_reservations WHERE device_id = $1 AND tenant_id = $2 AND (key_id = $3 OR $4) \
             RETURNING device_id, key_id, holder, created_at, ends_at, alive_until",
        )
        .bind::<sql_types::Uuid, _>(device)
        .bind::<sql_types::Uuid, _>(tenant.0)
        .bind::<sql_types::Uuid, _>(key)
        .bind::<sql_types::Bool, _>(any)
        .get_result(conn)
        .await
        .optional()?;
        if let Some(r) = &row {
            outbox::push(
                conn,
                tenant,
                "fleet.device.reservation",
                json!({"type": "device.reservation", "tenant_id": tenant, "device_id": device,
                       "reserved": false, "holder": r.holder}),
            )
            .await?;
        }
        Ok(row)
    })
    .await
}

/// The reservations in force on these devices (the tenant's only).
pub async fn active(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    devices: &[Uuid],
) -> Result<Vec<ReservationRow>, DbError> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    Ok(Statement::new(
        "SELECT device_id, key_id, holder, created_at, ends_at, alive_until FROM device_reservations \
         WHERE tenant_id = $1 AND device_id = ANY($2) AND LEAST(ends_at, alive_until) > now()",
    )
    .bind::<sql_types::Uuid, _>(tenant.0)
    .bind::<sql_types::Array<sql_types::Uuid>, _>(devices)
    .load(conn)
    .await?)
}
