//! `/api/v1/hosts` and `/api/v1/devices`.

pub mod control;

use actix_web::{get, post, web};
use labwright_core::{
    auth::Permission,
    fleet::Status,
    ids::{DeviceId, HostId},
    validate,
};
use labwright_wire::rest::Page;
pub use labwright_wire::rest::fleet::{DeviceView, HostView, PingResult, ReservationView};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    error::ApiError,
    fleet::{Fleet, FleetQuery},
    keys::Caller,
    platform::paging::page,
};

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
    fleet: web::Data<Fleet>,
    caller: Caller,
    params: web::Query<FleetParams>,
) -> Result<web::Json<Page<HostView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let q = params.into_inner().into_query()?;
    Ok(web::Json(fleet.list_hosts(caller.tenant, &q).await?))
}

/// One host with its devices.
#[utoipa::path(get, path = "/api/v1/hosts/{id}", params(("id" = Uuid, Path)),
    responses((status = 200, body = HostView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/hosts/{id}")]
pub async fn get_host(
    fleet: web::Data<Fleet>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<HostView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let id = HostId(id.into_inner());
    Ok(web::Json(fleet.get_host(&caller, id).await?))
}

/// Sends a ping command down the host's stream and waits for its answer (5 s).
#[utoipa::path(post, path = "/api/v1/hosts/{id}/ping", params(("id" = Uuid, Path)),
    responses((status = 200, body = PingResult), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
#[post("/hosts/{id}/ping")]
pub async fn ping_host(
    fleet: web::Data<Fleet>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<PingResult>, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let id = HostId(id.into_inner());
    Ok(web::Json(fleet.ping(caller.tenant, id).await?))
}

/// Devices of the caller's tenant (those their hosts still declare).
#[utoipa::path(get, path = "/api/v1/devices", params(FleetParams),
    responses((status = 200, body = inline(Page<DeviceView>)), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)))]
#[get("/devices")]
pub async fn list_devices(
    fleet: web::Data<Fleet>,
    caller: Caller,
    params: web::Query<FleetParams>,
) -> Result<web::Json<Page<DeviceView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let q = params.into_inner().into_query()?;
    Ok(web::Json(fleet.list_devices(&caller, &q).await?))
}

/// One device.
#[utoipa::path(get, path = "/api/v1/devices/{id}", params(("id" = Uuid, Path)),
    responses((status = 200, body = DeviceView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/devices/{id}")]
pub async fn get_device(
    fleet: web::Data<Fleet>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<DeviceView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let id = DeviceId(id.into_inner());
    Ok(web::Json(fleet.get_device(&caller, id).await?))
}
