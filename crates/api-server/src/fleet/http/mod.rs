//! `/api/v1/hosts` and `/api/v1/devices`.

pub mod control;

pub use labwright_wire::rest::fleet::{DeviceView, HostView, PingResult, ReservationView};
use std::time::{Duration, Instant};

use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use labwright_core::{
    auth::Permission,
    fleet::Status,
    ids::{DeviceId, HostId},
    validate,
};
use labwright_wire::host_link::HostCommand;
use serde::Deserialize;
use uuid::Uuid;

use crate::http::{AppState, Page, page};
use crate::{
    error::ApiError,
    fleet::db::{DeviceRow, FleetQuery, HostRow},
    keys::Caller,
};

pub fn reservation_view(
    r: &crate::fleet::db::reservations::ReservationRow,
    caller: &Caller,
) -> ReservationView {
    ReservationView {
        holder: r.holder.clone(),
        key_id: r.key_id,
        since: r.created_at,
        ends_at: r.ends_at,
        until: r.until(),
        mine: r.key_id == caller.key_id.0,
    }
}

/// Device views with their reservations (one query for all of them).
async fn device_views(
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    rows: Vec<(DeviceRow, String, DateTime<Utc>)>,
) -> Result<Vec<DeviceView>, ApiError> {
    let ids: Vec<Uuid> = rows.iter().map(|(d, _, _)| d.id).collect();
    let reservations = crate::fleet::db::reservations::active(conn, caller.tenant, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut v = device_view(row);
            v.reservation = reservations
                .iter()
                .find(|r| r.device_id == v.id)
                .map(|r| reservation_view(r, caller));
            v
        })
        .collect())
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

fn device_view((d, host_name, host_seen): (DeviceRow, String, DateTime<Utc>)) -> DeviceView {
    // While a device is online its host's heartbeat is the freshest sign of life.
    let last_seen_at = if d.status == Status::Online.as_str() {
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
        reservation: None,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FleetParams {
    /// `online`, `offline` or `error`.
    status: Option<String>,
    /// Device model, e.g. `sim-stb`.
    model: Option<String>,
    /// Device tag.
    tag: Option<String>,
    /// Only devices of this host (devices listing only).
    host_id: Option<Uuid>,
    /// Case-insensitive substring of the name.
    q: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

impl FleetParams {
    fn into_query(self) -> Result<FleetQuery, ApiError> {
        let (limit, offset) = page(self.limit, self.offset)?;
        let status = self
            .status
            .as_deref()
            .map(str::parse::<Status>)
            .transpose()?;
        if let Some(m) = &self.model {
            validate::slug("model", m, labwright_core::fleet::MAX_MODEL_LEN)?;
        }
        if let Some(t) = &self.tag {
            validate::slug("tag", t, labwright_core::fleet::MAX_TAG_LEN)?;
        }
        if let Some(q) = &self.q {
            validate::label("q", q, 100)?;
        }
        Ok(FleetQuery {
            status,
            model: self.model,
            tag: self.tag,
            host: self.host_id.map(HostId),
            search: self.q,
            limit,
            offset,
        })
    }
}

/// Hosts of the caller's tenant. `model` and `tag` keep hosts that have such a device.
#[utoipa::path(get, path = "/api/v1/hosts", params(FleetParams),
    responses((status = 200, body = inline(Page<HostView>)), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
#[get("/hosts")]
pub async fn list_hosts(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<FleetParams>,
) -> Result<web::Json<Page<HostView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let q = params.into_inner().into_query()?;
    let mut conn = crate::db::conn(&state.pool).await?;
    let (rows, total) = crate::fleet::db::list_hosts(&mut conn, caller.tenant, &q).await?;
    let ids: Vec<Uuid> = rows.iter().map(|h| h.id).collect();
    let counts: std::collections::HashMap<Uuid, i64> =
        crate::fleet::db::device_counts(&mut conn, caller.tenant, &ids)
            .await?
            .into_iter()
            .collect();
    let items = rows
        .into_iter()
        .map(|h| {
            let n = counts.get(&h.id).copied().unwrap_or(0);
            host_view(h, n, None)
        })
        .collect();
    Ok(web::Json(Page {
        items,
        total,
        limit: q.limit,
        offset: q.offset,
    }))
}

/// One host with its devices.
#[utoipa::path(get, path = "/api/v1/hosts/{id}", params(("id" = Uuid, Path)),
    responses((status = 200, body = HostView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/hosts/{id}")]
pub async fn get_host(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<HostView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let id = HostId(id.into_inner());
    let mut conn = crate::db::conn(&state.pool).await?;
    let host = crate::fleet::db::get_host(&mut conn, caller.tenant, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("host {id}")))?;
    let q = FleetQuery {
        host: Some(id),
        limit: labwright_core::fleet::MAX_DEVICES_PER_HOST as i64,
        ..Default::default()
    };
    let (devices, total) = crate::fleet::db::list_devices(&mut conn, caller.tenant, &q).await?;
    let devices = device_views(&mut conn, &caller, devices).await?;
    Ok(web::Json(host_view(host, total, Some(devices))))
}

/// Sends a ping command down the host's stream and waits for its answer (5 s).
#[utoipa::path(post, path = "/api/v1/hosts/{id}/ping", params(("id" = Uuid, Path)),
    responses((status = 200, body = PingResult), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
#[post("/hosts/{id}/ping")]
pub async fn ping_host(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<PingResult>, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let id = HostId(id.into_inner());
    {
        let mut conn = crate::db::conn(&state.pool).await?;
        crate::fleet::db::get_host(&mut conn, caller.tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("host {id}")))?;
    }
    let command = HostCommand::Ping {
        payload: b"ping".to_vec(),
    };
    let started = Instant::now();
    let rx = state
        .registry
        .send_command(caller.tenant, id, command)
        .ok_or_else(|| ApiError::Conflict(format!("host {id} is not connected to this server")))?;
    let result = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .map_err(|_| ApiError::Timeout("host did not answer within 5 s".into()))?
        .map_err(|_| ApiError::Conflict("host disconnected before answering".into()))?;
    if let Err(refusal) = result.outcome {
        return Err(ApiError::Conflict(format!(
            "host refused the command: {refusal}"
        )));
    }
    Ok(web::Json(PingResult {
        round_trip_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

/// Devices of the caller's tenant (those their hosts still declare).
#[utoipa::path(get, path = "/api/v1/devices", params(FleetParams),
    responses((status = 200, body = inline(Page<DeviceView>)), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)))]
#[get("/devices")]
pub async fn list_devices(
    state: web::Data<AppState>,
    caller: Caller,
    params: web::Query<FleetParams>,
) -> Result<web::Json<Page<DeviceView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let q = params.into_inner().into_query()?;
    let mut conn = crate::db::conn(&state.pool).await?;
    let (rows, total) = crate::fleet::db::list_devices(&mut conn, caller.tenant, &q).await?;
    Ok(web::Json(Page {
        items: device_views(&mut conn, &caller, rows).await?,
        total,
        limit: q.limit,
        offset: q.offset,
    }))
}

/// One device.
#[utoipa::path(get, path = "/api/v1/devices/{id}", params(("id" = Uuid, Path)),
    responses((status = 200, body = DeviceView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/devices/{id}")]
pub async fn get_device(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<DeviceView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let id = DeviceId(id.into_inner());
    let mut conn = crate::db::conn(&state.pool).await?;
    let row = crate::fleet::db::get_device(&mut conn, caller.tenant, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    let view = device_views(&mut conn, &caller, vec![row]).await?;
    Ok(web::Json(view.into_iter().next().ok_or_else(|| {
        ApiError::NotFound(format!("device {id}"))
    })?))
}
