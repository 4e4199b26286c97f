//! `/api/v1/executions`: run a test case on a device, follow it, cancel it, fetch its screenshots.

use actix_web::{HttpResponse, get, post, web};
use labwright_core::{auth::Permission, execution::ExecutionStatus, ids::DeviceId};
use labwright_wire::rest::Page;
pub use labwright_wire::rest::executions::{CreateExecution, ExecutionView, StepView};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    error::ApiError,
    executions::{Lab, ListQuery},
    keys::Caller,
    platform::paging::page,
};

/// Runs a test case on a device. Everything that can be checked is checked before anything runs
/// (test case, device, capabilities, navigation tree and target screens, reference images). A busy
/// device queues the run (`status: queued`, `queue_position`).
#[utoipa::path(post, path = "/api/v1/executions", request_body = CreateExecution,
    responses((status = 201, body = ExecutionView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[post("/executions")]
pub async fn create_execution(
    lab: web::Data<Lab>,
    caller: Caller,
    body: web::Json<CreateExecution>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let e = lab
        .create_execution(
            caller.tenant,
            caller.key_id,
            &body.testcase,
            body.version,
            DeviceId(body.device),
        )
        .await?;
    let v = lab.view(caller.tenant, e, false).await?;
    Ok(HttpResponse::Created().json(v))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExecutionParams {
    status: Option<String>,
    device_id: Option<Uuid>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Executions of the tenant, newest first.
#[utoipa::path(get, path = "/api/v1/executions", params(ExecutionParams), responses((status = 200, body = inline(Page<ExecutionView>))))]
#[get("/executions")]
pub async fn list_executions(
    lab: web::Data<Lab>,
    caller: Caller,
    params: web::Query<ExecutionParams>,
) -> Result<web::Json<Page<ExecutionView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let p = params.into_inner();
    let (limit, offset) = page(p.limit, p.offset)?;
    if let Some(s) = &p.status
        && s.parse::<ExecutionStatus>().is_err()
    {
        return Err(ApiError::InvalidArgument(format!(
            "status: unknown execution status {s:?}"
        )));
    }
    let q = ListQuery {
        status: p.status,
        device: p.device_id,
        limit,
        offset,
    };
    Ok(web::Json(lab.list(caller.tenant, &q).await?))
}

/// One execution with every step so far.
#[utoipa::path(get, path = "/api/v1/executions/{id}", params(("id" = Uuid, Path)), responses((status = 200, body = ExecutionView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/executions/{id}")]
pub async fn get_execution(
    lab: web::Data<Lab>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<ExecutionView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    Ok(web::Json(lab.get(caller.tenant, id.into_inner()).await?))
}

/// Cancels an execution (queued: at once; running: the host stops after the current step).
#[utoipa::path(post, path = "/api/v1/executions/{id}/cancel", params(("id" = Uuid, Path)), responses((status = 200, body = ExecutionView), (status = 409, body = crate::error::ErrorBody)))]
#[post("/executions/{id}/cancel")]
pub async fn cancel_execution(
    lab: web::Data<Lab>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<ExecutionView>, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let e = lab.cancel(caller.tenant, id.into_inner()).await?;
    Ok(web::Json(lab.view(caller.tenant, e, false).await?))
}

/// The JPEG screenshot a step left.
#[utoipa::path(get, path = "/api/v1/executions/{id}/steps/{index}/screenshot", params(("id" = Uuid, Path), ("index" = i32, Path)),
    responses((status = 200, content_type = "image/jpeg"), (status = 404, body = crate::error::ErrorBody)))]
#[get("/executions/{id}/steps/{index}/screenshot")]
pub async fn step_screenshot(
    lab: web::Data<Lab>,
    caller: Caller,
    path: web::Path<(Uuid, i32)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let (id, index) = path.into_inner();
    let bytes = lab.step_screenshot(caller.tenant, id, index).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "private, max-age=86400"))
        .body(bytes))
}

/// The execution's console log: every console line of the run, UTC-stamped, with a marker where
/// each step started (`--- step 3: press (steps[3]) ---`) and at the end; 404 when the run
/// recorded none (its device has no console, or it has not ended yet).
#[utoipa::path(get, path = "/api/v1/executions/{id}/console", params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "text/plain"), (status = 404, body = crate::error::ErrorBody)))]
#[get("/executions/{id}/console")]
pub async fn execution_console(
    lab: web::Data<Lab>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let bytes = lab.console_log(caller.tenant, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "private, max-age=86400"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}
