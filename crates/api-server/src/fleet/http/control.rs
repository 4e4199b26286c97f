//! Remote control of a device from the API: press a key, fetch its current screen, inject faults
//! into simulated devices. Refused while an execution holds the device's lease.

use actix_web::{HttpResponse, delete, get, post, put, web};
use labwright_core::{
    auth::Permission, controller::Key, fleet::Capability, ids::DeviceId, sim::FaultConfig,
};
use labwright_wire::host_link::{HostCommand, PowerAction};
pub use labwright_wire::rest::control::{PowerBody, PowerView, PressBody, ReserveBody};
use uuid::Uuid;

use crate::{error::ApiError, fleet::Fleet, keys::Caller};

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
    fleet: web::Data<Fleet>,
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
    let d = fleet
        .controllable(
            &caller,
            DeviceId(id.into_inner()),
            Capability::Power,
            !read_only,
        )
        .await?;
    let result = fleet
        .command(
            caller.tenant,
            &d,
            HostCommand::Power {
                device_id: d.device_key.clone(),
                action,
            },
        )
        .await?;
    let state = String::from_utf8_lossy(&result).into_owned();
    fleet.record_power(&caller, &d, &state, !read_only).await;
    Ok(web::Json(PowerView { state }))
}

/// Reserves a device for the caller's key (or renews the caller's reservation with a new time
/// box). While it lasts only this key may control the device and only its executions run
/// there. An interactive lock (`keep_alive`, the default) ends unless the holder renews it with
/// `PUT` at least every 60 s; otherwise it lasts its whole time box.
#[utoipa::path(post, path = "/api/v1/devices/{id}/reservation", params(("id" = Uuid, Path)), request_body = ReserveBody,
    responses((status = 201, body = super::ReservationView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/devices/{id}/reservation")]
pub async fn reserve(
    fleet: web::Data<Fleet>,
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
    let id = DeviceId(id.into_inner());
    let view = fleet
        .reserve(&caller, id, body.minutes, body.keep_alive)
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Keeps the caller's reservation alive for another 60 s (within its time box).
#[utoipa::path(put, path = "/api/v1/devices/{id}/reservation", params(("id" = Uuid, Path)),
    responses((status = 200, body = super::ReservationView), (status = 404, body = crate::error::ErrorBody)))]
#[put("/devices/{id}/reservation")]
pub async fn keep_reservation(
    fleet: web::Data<Fleet>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<super::ReservationView>, ApiError> {
    caller.require(Permission::ControlDevices)?;
    Ok(web::Json(
        fleet.keep_reservation(&caller, id.into_inner()).await?,
    ))
}

/// Releases a reservation: the holder's own; admins may release anyone's.
#[utoipa::path(delete, path = "/api/v1/devices/{id}/reservation", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
#[delete("/devices/{id}/reservation")]
pub async fn release_reservation(
    fleet: web::Data<Fleet>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let id = id.into_inner();
    let any = caller.require(Permission::ManageKeys).is_ok();
    fleet.release_reservation(&caller, id, any).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Presses a key on the device's remote control.
#[utoipa::path(post, path = "/api/v1/devices/{id}/press", params(("id" = Uuid, Path)), request_body = PressBody,
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/devices/{id}/press")]
pub async fn press(
    fleet: web::Data<Fleet>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<PressBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let key: Key = body.key.parse()?;
    if body.hold_ms > 10_000 {
        return Err(ApiError::InvalidArgument("hold_ms: at most 10000".into()));
    }
    let d = fleet
        .controllable(
            &caller,
            DeviceId(id.into_inner()),
            Capability::RemoteControl,
            true,
        )
        .await?;
    fleet
        .command(
            caller.tenant,
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
    fleet: web::Data<Fleet>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let d = fleet
        .controllable(
            &caller,
            DeviceId(id.into_inner()),
            Capability::VideoCapture,
            false,
        )
        .await?;
    let r = fleet
        .command(
            caller.tenant,
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
    fleet: web::Data<Fleet>,
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
    let d = fleet
        .device(caller.tenant, DeviceId(id.into_inner()))
        .await?
        .ok_or_else(|| ApiError::NotFound("device".into()))?;
    fleet
        .ensure_free(&caller, &d, query.override_reservation)
        .await?;
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
    fleet
        .command(
            caller.tenant,
            &d,
            HostCommand::SetFaults {
                device_id: d.device_key.clone(),
                faults,
            },
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
