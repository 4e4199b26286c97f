//! `/api/v1/executions`: run a test case on a device, follow it, cancel it, fetch its screenshots.

use actix_web::{HttpResponse, get, post, web};
use labwright_core::{
    auth::Permission,
    execution::ExecutionStatus,
    ids::{DeviceId, TenantId},
};
pub use labwright_wire::rest::executions::{CreateExecution, ExecutionView, StepView};
use serde::Deserialize;
use uuid::Uuid;

use crate::http::{AppState, Page, page};
use crate::{
    error::ApiError,
    executions::db::{ExecutionRow, StepRow},
    keys::Caller,
};

fn step_view(s: StepRow) -> StepView {
    StepView {
        screenshot_url: s.screenshot_key.as_ref().map(|_| {
            format!(
                "/api/v1/executions/{}/steps/{}/screenshot",
                s.execution_id, s.idx
            )
        }),
        index: s.idx,
        path: s.path,
        kind: s.kind,
        verdict: s.verdict,
        reason: s.reason,
        started_at: s.started_at,
        duration_ms: s.duration_ms,
        measurements: s.measurements,
        stored_at: s.received_at,
    }
}

async fn view(
    conn: &mut diesel_async::AsyncPgConnection,
    tenant: TenantId,
    e: ExecutionRow,
    with_steps: bool,
) -> Result<ExecutionView, ApiError> {
    let tc = crate::library::db::get_testcase_by_id(conn, tenant, e.testcase_id).await?;
    let queue_position = if e.state() == Some(ExecutionStatus::Queued) {
        Some(crate::executions::db::queue_position(conn, &e).await?)
    } else {
        None
    };
    let steps = if with_steps {
        Some(
            crate::executions::db::steps(conn, e.id)
                .await?
                .into_iter()
                .map(step_view)
                .collect(),
        )
    } else {
        None
    };
    Ok(ExecutionView {
        id: e.id,
        device_id: e.device_id,
        testcase_id: e.testcase_id,
        testcase: tc.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
        testcase_version: tc.map(|t| t.version).unwrap_or_default(),
        status: e.status,
        reason: e.reason,
        queue_position,
        steps_total: e.steps_total,
        cancel_requested: e.cancel_requested,
        created_at: e.created_at,
        dispatched_at: e.dispatched_at,
        finished_at: e.finished_at,
        steps,
    })
}

/// Runs a test case on a device. Everything that can be checked is checked before anything runs
/// (test case, device, capabilities, navigation tree and target screens, reference images). A busy
/// device queues the run (`status: queued`, `queue_position`).
#[utoipa::path(post, path = "/api/v1/executions", request_body = CreateExecution,
    responses((status = 201, body = ExecutionView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[post("/executions")]
pub async fn create_execution(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateExecution>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let e = state
        .lab
        .create_execution(
            caller.tenant,
            caller.key_id,
            &body.testcase,
            body.version,
            DeviceId(body.device),
        )
        .await?;
    let mut conn = crate::db::conn(&state.pool).await?;
    let v = view(&mut conn, caller.tenant, e, false).await?;
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
    state: web::Data<AppState>,
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
    let mut conn = crate::db::conn(&state.pool).await?;
    let q = crate::executions::db::ListQuery {
        status: p.status,
        device: p.device_id,
        limit,
        offset,
    };
    let (rows, total) = crate::executions::db::list(&mut conn, caller.tenant, &q).await?;
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        items.push(view(&mut conn, caller.tenant, r, false).await?);
    }
    Ok(web::Json(Page {
        items,
        total,
        limit,
        offset,
    }))
}

/// One execution with every step so far.
#[utoipa::path(get, path = "/api/v1/executions/{id}", params(("id" = Uuid, Path)), responses((status = 200, body = ExecutionView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/executions/{id}")]
pub async fn get_execution(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<ExecutionView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let id = id.into_inner();
    let mut conn = crate::db::conn(&state.pool).await?;
    let e = crate::executions::db::get(&mut conn, caller.tenant, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("execution {id}")))?;
    Ok(web::Json(view(&mut conn, caller.tenant, e, true).await?))
}

/// Cancels an execution (queued: at once; running: the host stops after the current step).
#[utoipa::path(post, path = "/api/v1/executions/{id}/cancel", params(("id" = Uuid, Path)), responses((status = 200, body = ExecutionView), (status = 409, body = crate::error::ErrorBody)))]
#[post("/executions/{id}/cancel")]
pub async fn cancel_execution(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<ExecutionView>, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let e = state.lab.cancel(caller.tenant, id.into_inner()).await?;
    let mut conn = crate::db::conn(&state.pool).await?;
    Ok(web::Json(view(&mut conn, caller.tenant, e, false).await?))
}

/// The JPEG screenshot a step left.
#[utoipa::path(get, path = "/api/v1/executions/{id}/steps/{index}/screenshot", params(("id" = Uuid, Path), ("index" = i32, Path)),
    responses((status = 200, content_type = "image/jpeg"), (status = 404, body = crate::error::ErrorBody)))]
#[get("/executions/{id}/steps/{index}/screenshot")]
pub async fn step_screenshot(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, i32)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let (id, index) = path.into_inner();
    let key = {
        let mut conn = crate::db::conn(&state.pool).await?;
        crate::executions::db::get(&mut conn, caller.tenant, id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("execution {id}")))?;
        crate::executions::db::steps(&mut conn, id)
            .await?
            .into_iter()
            .find(|s| s.idx == index)
            .and_then(|s| s.screenshot_key)
            .ok_or_else(|| ApiError::NotFound(format!("screenshot of step {index}")))?
    };
    let bytes = state
        .artifacts
        .get(&key)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "private, max-age=86400"))
        .body(bytes))
}
