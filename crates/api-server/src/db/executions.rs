//! Executions (a test case run on a device) and their steps. The device lease is the partial
//! unique index `executions_one_active_per_device`: at most one execution per device is
//! `dispatched` or `running`; the rest wait `queued` in creation order.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, QueryableByName, Selectable,
    SelectableHelper, sql_types,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use labwright_core::ids::{DeviceId, TenantId};
use serde_json::json;
use uuid::Uuid;

use super::{
    DbError, outbox,
    schema::{execution_steps, executions},
};

/// Execution states. `queued → dispatched → running → (passed | failed | error | cancelled | interrupted)`.
pub const ACTIVE: [&str; 2] = ["dispatched", "running"];
pub const FINAL: [&str; 5] = ["passed", "failed", "error", "cancelled", "interrupted"];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = executions)]
pub struct ExecutionRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub device_id: Uuid,
    pub testcase_id: Uuid,
    pub status: String,
    pub reason: String,
    pub steps_total: Option<i32>,
    pub cancel_requested: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = execution_steps)]
pub struct StepRow {
    pub execution_id: Uuid,
    pub idx: i32,
    pub path: String,
    pub kind: String,
    pub verdict: String,
    pub reason: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub screenshot_key: Option<String>,
    pub measurements: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

async fn event(conn: &mut AsyncPgConnection, e: &ExecutionRow) -> Result<(), DbError> {
    let tenant = TenantId(e.tenant_id);
    outbox::push(
        conn,
        tenant,
        "executions.status",
        json!({"type": "execution.status", "tenant_id": tenant, "execution_id": e.id, "device_id": e.device_id, "status": e.status, "reason": e.reason, "at": Utc::now()}),
    )
    .await
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    device: DeviceId,
    testcase: Uuid,
    by: Uuid,
) -> Result<ExecutionRow, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let row: ExecutionRow = diesel::insert_into(executions::table)
            .values((
                executions::id.eq(Uuid::new_v4()),
                executions::tenant_id.eq(tenant.0),
                executions::device_id.eq(device.0),
                executions::testcase_id.eq(testcase),
                executions::status.eq("queued"),
                executions::created_by.eq(by),
            ))
            .returning(ExecutionRow::as_returning())
            .get_result(conn)
            .await?;
        event(conn, &row).await?;
        Ok(row)
    })
    .await
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<ExecutionRow>, DbError> {
    Ok(executions::table
        .filter(executions::tenant_id.eq(tenant.0))
        .filter(executions::id.eq(id))
        .select(ExecutionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Any tenant's execution by id (for reports arriving from a host, which is checked separately).
pub async fn get_any(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<ExecutionRow>, DbError> {
    Ok(executions::table
        .find(id)
        .select(ExecutionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub struct ListQuery {
    pub status: Option<String>,
    pub device: Option<Uuid>,
    pub limit: i64,
    pub offset: i64,
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    q: &ListQuery,
) -> Result<(Vec<ExecutionRow>, i64), DbError> {
    let filtered = || {
        let mut query = executions::table
            .filter(executions::tenant_id.eq(tenant.0))
            .into_boxed();
        if let Some(s) = &q.status {
            query = query.filter(executions::status.eq(s.clone()));
        }
        if let Some(d) = q.device {
            query = query.filter(executions::device_id.eq(d));
        }
        query
    };
    let total = filtered().count().get_result(conn).await?;
    let rows = filtered()
        .order(executions::created_at.desc())
        .limit(q.limit)
        .offset(q.offset)
        .select(ExecutionRow::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}

/// How many queued executions of the device were created before this one.
pub async fn queue_position(
    conn: &mut AsyncPgConnection,
    e: &ExecutionRow,
) -> Result<i64, DbError> {
    Ok(executions::table
        .filter(executions::device_id.eq(e.device_id))
        .filter(executions::status.eq("queued"))
        .filter(executions::created_at.lt(e.created_at))
        .count()
        .get_result(conn)
        .await?)
}

pub async fn steps(conn: &mut AsyncPgConnection, execution: Uuid) -> Result<Vec<StepRow>, DbError> {
    Ok(execution_steps::table
        .filter(execution_steps::execution_id.eq(execution))
        .order(execution_steps::idx.asc())
        .select(StepRow::as_select())
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = sql_types::Uuid)]
    id: Uuid,
}

/// Takes the lease for the oldest queued execution of each device in `devices` that has no
/// active execution, marking it `dispatched`. Returns the claimed executions.
pub async fn claim_next(
    conn: &mut AsyncPgConnection,
    devices: &[Uuid],
) -> Result<Vec<ExecutionRow>, DbError> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction::<_, DbError, _>(async move |conn| {
        let claimed: Vec<Claimed> = diesel::sql_query(
            "UPDATE executions SET status = 'dispatched', dispatched_at = now(), heartbeat_at = now() \
             WHERE id IN ( \
               SELECT e.id FROM executions e \
               WHERE e.status = 'queued' AND e.device_id = ANY($1) \
                 AND NOT EXISTS (SELECT 1 FROM executions a WHERE a.device_id = e.device_id AND a.status IN ('dispatched', 'running')) \
                 AND NOT EXISTS (SELECT 1 FROM executions q WHERE q.device_id = e.device_id AND q.status = 'queued' \
                                 AND (q.created_at, q.id) < (e.created_at, e.id)) \
               FOR UPDATE SKIP LOCKED) \
             RETURNING id",
        )
        .bind::<sql_types::Array<sql_types::Uuid>, _>(devices)
        .load(conn)
        .await?;
        let ids: Vec<Uuid> = claimed.into_iter().map(|c| c.id).collect();
        let rows: Vec<ExecutionRow> = executions::table.filter(executions::id.eq_any(&ids)).select(ExecutionRow::as_select()).load(conn).await?;
        for r in &rows {
            event(conn, r).await?;
        }
        Ok(rows)
    })
    .await
}

/// Moves an execution to `status` unless it already ended. Returns the updated row if it changed.
pub async fn transition(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: &str,
    reason: &str,
    steps_total: Option<i32>,
) -> Result<Option<ExecutionRow>, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let finished = FINAL.contains(&status).then(Utc::now);
        let row: Option<ExecutionRow> = diesel::update(
            executions::table
                .find(id)
                .filter(executions::status.ne_all(FINAL)),
        )
        .set((
            executions::status.eq(status),
            executions::reason.eq(reason),
            executions::finished_at.eq(finished),
            executions::heartbeat_at.eq(Utc::now()),
            steps_total.map(|n| executions::steps_total.eq(n)),
        ))
        .returning(ExecutionRow::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        if let Some(r) = &row {
            event(conn, r).await?;
        }
        Ok(row)
    })
    .await
}

pub async fn request_cancel(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), DbError> {
    diesel::update(executions::table.find(id))
        .set(executions::cancel_requested.eq(true))
        .execute(conn)
        .await?;
    Ok(())
}

/// Keeps active executions alive (the host said they are still running).
pub async fn touch(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<(), DbError> {
    diesel::update(
        executions::table
            .filter(executions::id.eq_any(ids))
            .filter(executions::status.eq_any(ACTIVE)),
    )
    .set(executions::heartbeat_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    Ok(())
}

pub struct NewStep<'a> {
    pub execution: Uuid,
    pub tenant: TenantId,
    pub index: i32,
    pub path: &'a str,
    pub kind: &'a str,
    pub verdict: &'a str,
    pub reason: &'a str,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub screenshot_key: Option<&'a str>,
    /// The screenshot follows in its own report.
    pub screenshot_pending: bool,
    pub measurements: serde_json::Value,
}

/// Stores a step once: a resent step (same execution and index) is ignored. Marks the execution
/// running. Returns whether the step was new.
pub async fn record_step(conn: &mut AsyncPgConnection, s: NewStep<'_>) -> Result<bool, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let inserted = diesel::insert_into(execution_steps::table)
            .values((
                execution_steps::execution_id.eq(s.execution),
                execution_steps::idx.eq(s.index),
                execution_steps::tenant_id.eq(s.tenant.0),
                execution_steps::path.eq(s.path),
                execution_steps::kind.eq(s.kind),
                execution_steps::verdict.eq(s.verdict),
                execution_steps::reason.eq(s.reason),
                execution_steps::started_at.eq(s.started_at),
                execution_steps::duration_ms.eq(s.duration_ms),
                execution_steps::screenshot_key.eq(s.screenshot_key),
                execution_steps::measurements.eq(&s.measurements),
                execution_steps::screenshot_pending.eq(s.screenshot_pending),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?
            == 1;
        // Usually the run is already running (the host accepted it): one statement.
        let alive = diesel::update(executions::table.find(s.execution).filter(executions::status.eq("running")))
            .set(executions::heartbeat_at.eq(Utc::now()))
            .execute(conn)
            .await?;
        if alive == 0 {
            let running: Option<ExecutionRow> = diesel::update(executions::table.find(s.execution).filter(executions::status.eq("dispatched")))
                .set((executions::status.eq("running"), executions::heartbeat_at.eq(Utc::now())))
                .returning(ExecutionRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            if let Some(r) = &running {
                event(conn, r).await?;
            }
        }
        if inserted {
            outbox::push(
                conn,
                s.tenant,
                "executions.step",
                json!({"type": "execution.step", "tenant_id": s.tenant, "execution_id": s.execution, "index": s.index, "kind": s.kind, "verdict": s.verdict, "reason": s.reason}),
            )
            .await?;
        }
        Ok(inserted)
    })
    .await
}

/// Attaches a step's screenshot that arrived after the step. Returns false if the step is not
/// stored yet.
pub async fn attach_screenshot(
    conn: &mut AsyncPgConnection,
    execution: Uuid,
    index: i32,
    key: Option<&str>,
) -> Result<bool, DbError> {
    let n = diesel::update(execution_steps::table.find((execution, index)))
        .set((
            execution_steps::screenshot_key.eq(key),
            execution_steps::screenshot_pending.eq(false),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Steps stored so far, and how many of them still wait for their screenshot.
pub async fn step_counts(
    conn: &mut AsyncPgConnection,
    execution: Uuid,
) -> Result<(i64, i64), DbError> {
    let stored = execution_steps::table
        .filter(execution_steps::execution_id.eq(execution))
        .count()
        .get_result(conn)
        .await?;
    let pending = execution_steps::table
        .filter(execution_steps::execution_id.eq(execution))
        .filter(execution_steps::screenshot_pending.eq(true))
        .count()
        .get_result(conn)
        .await?;
    Ok((stored, pending))
}

/// The execution holding the device's lease, if any.
pub async fn active_on_device(
    conn: &mut AsyncPgConnection,
    device: Uuid,
) -> Result<Option<ExecutionRow>, DbError> {
    Ok(executions::table
        .filter(executions::device_id.eq(device))
        .filter(executions::status.eq_any(ACTIVE))
        .select(ExecutionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The host accepted a dispatched run: it is running from now on.
pub async fn accepted(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let row: Option<ExecutionRow> = diesel::update(
            executions::table
                .find(id)
                .filter(executions::status.eq("dispatched")),
        )
        .set((
            executions::status.eq("running"),
            executions::heartbeat_at.eq(Utc::now()),
        ))
        .returning(ExecutionRow::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        if let Some(r) = &row {
            event(conn, r).await?;
        }
        Ok(())
    })
    .await
}

/// Puts a dispatched run back in the queue (its host was busy).
pub async fn requeue(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), DbError> {
    diesel::update(
        executions::table
            .find(id)
            .filter(executions::status.eq("dispatched")),
    )
    .set((
        executions::status.eq("queued"),
        executions::dispatched_at.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs sent to a host that never accepted them (the server died between lease and dispatch,
/// or the answer was lost).
pub async fn stale_dispatched(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
) -> Result<Vec<ExecutionRow>, DbError> {
    Ok(executions::table
        .filter(executions::status.eq("dispatched"))
        .filter(executions::dispatched_at.lt(cutoff))
        .select(ExecutionRow::as_select())
        .load(conn)
        .await?)
}

/// Active executions on the devices of `host` (for a host that went away or came back).
pub async fn active_on_host(
    conn: &mut AsyncPgConnection,
    host: Uuid,
) -> Result<Vec<ExecutionRow>, DbError> {
    use super::schema::devices;
    Ok(executions::table
        .inner_join(devices::table)
        .filter(devices::host_id.eq(host))
        .filter(executions::status.eq_any(ACTIVE))
        .select(ExecutionRow::as_select())
        .load(conn)
        .await?)
}

/// Active executions whose host is offline and that have shown no sign of life since `cutoff`:
/// the host disconnected mid-run and did not come back in time.
pub async fn abandoned(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
) -> Result<Vec<(ExecutionRow, String)>, DbError> {
    use super::schema::{devices, hosts};
    Ok(executions::table
        .inner_join(devices::table.inner_join(hosts::table))
        .filter(executions::status.eq_any(ACTIVE))
        .filter(hosts::status.ne("online"))
        .filter(executions::heartbeat_at.lt(cutoff))
        // Silent since the cutoff both as a run and as a host: a long step on a host that was
        // online until a moment ago is not abandoned yet.
        .filter(hosts::last_seen_at.lt(cutoff))
        .select((ExecutionRow::as_select(), hosts::name))
        .load(conn)
        .await?)
}

/// Devices of the given hosts that have queued work.
pub async fn devices_with_queue(
    conn: &mut AsyncPgConnection,
    hosts: &[Uuid],
) -> Result<Vec<Uuid>, DbError> {
    use super::schema::devices;
    Ok(executions::table
        .inner_join(devices::table)
        .filter(executions::status.eq("queued"))
        .filter(devices::host_id.eq_any(hosts))
        .select(executions::device_id)
        .distinct()
        .load(conn)
        .await?)
}

/// An execution with the host that owns its device (for checking reports from hosts).
pub async fn with_host(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(ExecutionRow, Uuid)>, DbError> {
    use super::schema::devices;
    Ok(executions::table
        .inner_join(devices::table)
        .filter(executions::id.eq(id))
        .select((ExecutionRow::as_select(), devices::host_id))
        .first(conn)
        .await
        .optional()?)
}
