//! Remote control of a device from the API: press a key, fetch its current screen, inject faults
//! into simulated devices. Refused while an execution holds the device's lease.

pub use labwright_wire::rest::control::{PowerBody, PowerView, PressBody, ReserveBody};
use std::time::Duration;

use actix_web::{HttpResponse, delete, get, post, put, web};
use labwright_core::{
    auth::Permission,
    controller::Key,
    fleet::Capability,
    ids::{DeviceId, HostId},
    sim::FaultConfig,
};
use labwright_wire::host_link::{HostCommand, PowerAction};
use uuid::Uuid;

use crate::http::AppState;
use crate::{error::ApiError, fleet::db::DeviceRow, keys::Caller};

const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

async fn device(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    needs: Capability,
    exclusive: bool,
) -> Result<DeviceRow, ApiError> {
    let mut conn = crate::db::conn(&state.pool).await?;
    let (d, _, _) = crate::fleet::db::get_device(&mut conn, caller.tenant, DeviceId(id))
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
        ensure_free(&mut conn, caller, &d, false).await?;
    }
    Ok(d)
}

/// Whether the device is free for `caller` to change its state (keys, power, faults): never
/// while an execution holds its lease (cancel the run first); while reserved, only for the
/// holder's key, or for an admin who asks to `override_reservation` explicitly.
async fn ensure_free(
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    d: &DeviceRow,
    override_reservation: bool,
) -> Result<(), ApiError> {
    if override_reservation {
        caller.require(Permission::ManageKeys).map_err(|_| {
            ApiError::Forbidden("only admins may override another key's reservation".into())
        })?;
    }
    if let Some(active) = crate::executions::db::active_on_device(conn, d.id).await? {
        return Err(ApiError::Conflict(format!(
            "device {} is leased by execution {}",
            d.device_key, active.id
        )));
    }
    if let Some(r) = crate::fleet::db::reservations::active(conn, caller.tenant, &[d.id])
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

/// `?override_reservation=true`: an admin acting on a device another key reserved.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Override {
    #[serde(default)]
    pub override_reservation: bool,
}

/// Switches a device's mains power (relay, smart plug, the simulator's switch). Refused while an
/// execution or another key's reservation holds the device, except `state`.
#[utoipa::path(post, path = "/api/v1/devices/{id}/power", params(("id" = Uuid, Path)), request_body = PowerBody,
    responses((status = 200, body = PowerView), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/devices/{id}/power")]
pub async fn power(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<PowerBody>,
) -> Result<web::Json<PowerView>, ApiError> {
    let action = match body.action.as_str() {
        "on" => PowerAction::On,
        "off" => PowerAction::Off,
        "cycle" => PowerAction::Cycle,
        "state" => PowerAction::State,
        other => {
            return Err(ApiError::InvalidArgument(format!(
                "action: expected on, off, cycle or state, got {other:?}"
            )));
        }
    };
    let read_only = action == PowerAction::State;
    caller.require(if read_only {
        Permission::ReadFleet
    } else {
        Permission::ControlDevices
    })?;
    let d = device(
        &state,
        &caller,
        id.into_inner(),
        Capability::Power,
        !read_only,
    )
    .await?;
    let result = command(
        &state,
        &caller,
        &d,
        HostCommand::Power {
            device_id: d.device_key.clone(),
            action,
        },
    )
    .await?;
    Ok(web::Json(PowerView {
        state: String::from_utf8_lossy(&result).into_owned(),
    }))
}

/// Reserves a device for the caller's key (or renews the caller's reservation with a new time
/// box). While it lasts only this key may control the device and only its executions run
/// there. The holder keeps it alive with `PUT` at least every 60 s.
#[utoipa::path(post, path = "/api/v1/devices/{id}/reservation", params(("id" = Uuid, Path)), request_body = ReserveBody,
    responses((status = 201, body = super::ReservationView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/devices/{id}/reservation")]
pub async fn reserve(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<ReserveBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    if !(1..=480).contains(&body.minutes) {
        return Err(ApiError::InvalidArgument(
            "minutes: must be between 1 and 480".into(),
        ));
    }
    let id = id.into_inner();
    let mut conn = crate::db::conn(&state.pool).await?;
    crate::fleet::db::get_device(&mut conn, caller.tenant, DeviceId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    match crate::fleet::db::reservations::reserve(
        &mut conn,
        caller.tenant,
        id,
        caller.key_id.0,
        &caller.key_name,
        body.minutes,
    )
    .await?
    {
        crate::fleet::db::reservations::Reserve::Reserved(r) => {
            state.broker.wake();
            Ok(HttpResponse::Created().json(super::reservation_view(&r, &caller)))
        }
        crate::fleet::db::reservations::Reserve::Held(r) => Err(ApiError::Conflict(format!(
            "the device is reserved by {} until {}",
            r.holder,
            r.until().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))),
        crate::fleet::db::reservations::Reserve::Changed => Err(ApiError::Conflict(
            "the reservation changed meanwhile; try again".into(),
        )),
    }
}

/// Keeps the caller's reservation alive for another 60 s (within its time box).
#[utoipa::path(put, path = "/api/v1/devices/{id}/reservation", params(("id" = Uuid, Path)),
    responses((status = 200, body = super::ReservationView), (status = 404, body = crate::error::ErrorBody)))]
#[put("/devices/{id}/reservation")]
pub async fn keep_reservation(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<super::ReservationView>, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let id = id.into_inner();
    let mut conn = crate::db::conn(&state.pool).await?;
    let r =
        crate::fleet::db::reservations::keep_alive(&mut conn, caller.tenant, id, caller.key_id.0)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!("no reservation of yours on device {id} (it ended)"))
            })?;
    Ok(web::Json(super::reservation_view(&r, &caller)))
}

/// Releases a reservation: the holder's own; admins may release anyone's.
#[utoipa::path(delete, path = "/api/v1/devices/{id}/reservation", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
#[delete("/devices/{id}/reservation")]
pub async fn release_reservation(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let id = id.into_inner();
    let any = caller.require(Permission::ManageKeys).is_ok();
    let mut conn = crate::db::conn(&state.pool).await?;
    crate::fleet::db::reservations::release(&mut conn, caller.tenant, id, caller.key_id.0, any)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no reservation of yours on device {id}")))?;
    state.broker.wake();
    Ok(HttpResponse::NoContent().finish())
}

async fn command(
    state: &AppState,
    caller: &Caller,
    d: &DeviceRow,
    kind: HostCommand,
) -> Result<Vec<u8>, ApiError> {
    // A long press takes as long as the key is held.
    let timeout = COMMAND_TIMEOUT
        + match &kind {
            HostCommand::PressKey { hold_ms, .. } => Duration::from_millis(u64::from(*hold_ms)),
            _ => Duration::ZERO,
        };
    let rx = state
        .registry
        .send_command(caller.tenant, HostId(d.host_id), kind)
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

/// Presses a key on the device's remote control.
#[utoipa::path(post, path = "/api/v1/devices/{id}/press", params(("id" = Uuid, Path)), request_body = PressBody,
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/devices/{id}/press")]
pub async fn press(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<PressBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let key: Key = body.key.parse()?;
    if body.hold_ms > 10_000 {
        return Err(ApiError::InvalidArgument("hold_ms: at most 10000".into()));
    }
    let d = device(
        &state,
        &caller,
        id.into_inner(),
        Capability::RemoteControl,
        true,
    )
    .await?;
    command(
        &state,
        &caller,
        &d,
        HostCommand::PressKey {
            device_id: d.device_key.clone(),
            key,
            hold_ms: body.hold_ms,
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The device's current screen as JPEG.
#[utoipa::path(get, path = "/api/v1/devices/{id}/screenshot", params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "image/jpeg"), (status = 409, body = crate::error::ErrorBody)))]
#[get("/devices/{id}/screenshot")]
pub async fn screenshot(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let d = device(
        &state,
        &caller,
        id.into_inner(),
        Capability::VideoCapture,
        false,
    )
    .await?;
    let r = command(
        &state,
        &caller,
        &d,
        HostCommand::Screenshot {
            device_id: d.device_key.clone(),
        },
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "no-store"))
        .body(r))
}

/// Replaces the faults injected into a simulated device (e.g. `{"frozen": true}`); `{}` clears them.
/// Refused while an execution holds the device's lease, and while another key reserved it
/// (admins may pass `override_reservation=true`).
#[utoipa::path(put, path = "/api/v1/devices/{id}/faults", params(("id" = Uuid, Path), ("override_reservation" = Option<bool>, Query)), request_body = serde_json::Value,
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[put("/devices/{id}/faults")]
pub async fn set_faults(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    query: web::Query<Override>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    if !body.is_object() {
        return Err(ApiError::InvalidArgument(
            "faults must be a JSON object".into(),
        ));
    }
    let mut conn = crate::db::conn(&state.pool).await?;
    let (d, _, _) =
        crate::fleet::db::get_device(&mut conn, caller.tenant, DeviceId(id.into_inner()))
            .await?
            .ok_or_else(|| ApiError::NotFound("device".into()))?;
    ensure_free(&mut conn, &caller, &d, query.override_reservation).await?;
    drop(conn);
    if d.driver != "simulated" {
        return Err(ApiError::InvalidArgument(format!(
            "faults can only be injected into simulated devices, not {}",
            d.driver
        )));
    }
    // The host link carries the faults as a declared message: a body that is not the
    // simulator's fault settings is refused here, as the device did before.
    let faults: FaultConfig = serde_json::from_value(body.into_inner())
        .map_err(|e| ApiError::Conflict(format!("device refused: faults: {e}")))?;
    command(
        &state,
        &caller,
        &d,
        HostCommand::SetFaults {
            device_id: d.device_key.clone(),
            faults,
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
