//! Executions (a test case run on a device) and their steps. The device lease is the partial
//! unique index `executions_one_active_per_device`: at most one execution per device is
//! `dispatched` or `running`; the rest wait `queued` in creation order.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, QueryableByName, Selectable,
    SelectableHelper, sql_types,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use labwright_core::{
    execution::ExecutionStatus,
    ids::{DeviceId, TenantId},
};
use serde_json::json;
use uuid::Uuid;

use crate::db::{
    DbError, outbox,
    schema::{execution_steps, executions},
    statement::Statement,
};

/// The stored forms of a set of statuses, for `status = ANY(...)` filters.
fn stored(statuses: &[ExecutionStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

/// The `execution.status` outbox insert as a data-modifying CTE over `$source` (a CTE with the
/// `executions` columns), for statements that change an execution and queue its event in one
/// round trip. Same payload as [`event`].
macro_rules! status_events_from {
    ($source:literal) => {
        concat!(
            "INSERT INTO outbox_events (tenant_id, routing_key, payload) \
             SELECT tenant_id, 'tenant.' || tenant_id || '.executions.status', \
                    jsonb_build_object('type', 'execution.status', 'tenant_id', tenant_id, 'execution_id', id, \
                                       'device_id', device_id, 'status', status, 'reason', reason, 'at', now()) \
             FROM ",
            $source
        )
    };
}

/// Executions and their steps: the queries, each on a pooled connection.
#[derive(Clone)]
pub struct ExecutionStore(crate::db::Store);

impl ExecutionStore {
    pub fn new(pool: crate::db::Pool) -> Self {
        Self(crate::db::Store::new(pool))
    }

    pub async fn create(
        &self,
        tenant: TenantId,
        device: DeviceId,
        testcase: Uuid,
        by: Uuid,
    ) -> Result<ExecutionRow, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // One statement: the row and its event commit together in one round trip.
        Ok(Statement::new(concat!(
            "WITH created AS ( \
               INSERT INTO executions (id, tenant_id, device_id, testcase_id, status, created_by) \
               VALUES ($1, $2, $3, $4, 'queued', $5) RETURNING *), \
             events AS (",
            status_events_from!("created"),
            ") SELECT * FROM created"
        ))
        .bind::<sql_types::Uuid, _>(Uuid::new_v4())
        .bind::<sql_types::Uuid, _>(tenant.0)
        .bind::<sql_types::Uuid, _>(device.0)
        .bind::<sql_types::Uuid, _>(testcase)
        .bind::<sql_types::Uuid, _>(by)
        .get_result(conn)
        .await?)
    }

    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Option<ExecutionRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(executions::table
            .filter(executions::tenant_id.eq(tenant.0))
            .filter(executions::id.eq(id))
            .select(ExecutionRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }

    pub async fn list(
        &self,
        tenant: TenantId,
        q: &ListQuery,
    ) -> Result<(Vec<ExecutionRow>, i64), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
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
    pub async fn queue_position(&self, e: &ExecutionRow) -> Result<i64, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(executions::table
            .filter(executions::device_id.eq(e.device_id))
            .filter(executions::status.eq(ExecutionStatus::Queued.as_str()))
            .filter(executions::created_at.lt(e.created_at))
            .count()
            .get_result(conn)
            .await?)
    }

    pub async fn steps(&self, execution: Uuid) -> Result<Vec<StepRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(execution_steps::table
            .filter(execution_steps::execution_id.eq(execution))
            .order(execution_steps::idx.asc())
            .select(StepRow::as_select())
            .load(conn)
            .await?)
    }

    /// Leases devices of `hosts` to their oldest queued execution, in one statement: the claim and
    /// its `execution.status` outbox events commit together (a data-modifying CTE is atomic), and
    /// the dispatcher's path to the host costs one database round trip. Rows locked by another
    /// replica's claim are skipped; an execution whose device has an earlier queued one waits.
    pub async fn claim_next(&self, hosts: &[Uuid]) -> Result<Vec<ExecutionRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(Statement::new(concat!(
            "WITH claimed AS ( \
               UPDATE executions SET status = 'dispatched', dispatched_at = now(), heartbeat_at = now() \
               WHERE id IN ( \
                 SELECT e.id FROM executions e JOIN devices d ON d.id = e.device_id \
                 WHERE e.status = 'queued' AND d.host_id = ANY($1) \
                   AND NOT EXISTS (SELECT 1 FROM executions a WHERE a.device_id = e.device_id AND a.status IN ('dispatched', 'running')) \
                   AND NOT EXISTS (SELECT 1 FROM device_reservations r WHERE r.device_id = e.device_id \
                                   AND LEAST(r.ends_at, r.alive_until) > now() AND r.key_id IS DISTINCT FROM e.created_by) \
                   AND NOT EXISTS (SELECT 1 FROM executions q WHERE q.device_id = e.device_id AND q.status = 'queued' \
                                   AND (q.created_at, q.id) < (e.created_at, e.id) \
                                   AND NOT EXISTS (SELECT 1 FROM device_reservations r2 WHERE r2.device_id = q.device_id \
                                                   AND LEAST(r2.ends_at, r2.alive_until) > now() AND r2.key_id IS DISTINCT FROM q.created_by)) \
                 FOR UPDATE OF e SKIP LOCKED) \
               RETURNING *), \
             events AS (",
            status_events_from!("claimed"),
            ") SELECT * FROM claimed"
        ))
        .bind::<sql_types::Array<sql_types::Uuid>, _>(hosts)
        .load(conn)
        .await?)
    }

    /// Moves an execution to `status` unless it already ended. Returns the updated row if it changed.
    pub async fn transition(
        &self,
        id: Uuid,
        status: ExecutionStatus,
        reason: &str,
        steps_total: Option<i32>,
    ) -> Result<Option<ExecutionRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        transition_from(
            conn,
            id,
            ExecutionStatus::NOT_FINAL,
            status,
            reason,
            steps_total,
        )
        .await
    }

    pub async fn transition_from(
        &self,
        id: Uuid,
        from: &[ExecutionStatus],
        status: ExecutionStatus,
        reason: &str,
        steps_total: Option<i32>,
    ) -> Result<Option<ExecutionRow>, DbError> {
        transition_from(
            &mut *self.0.conn().await?,
            id,
            from,
            status,
            reason,
            steps_total,
        )
        .await
    }

    pub async fn request_cancel(&self, id: Uuid) -> Result<(), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        diesel::update(executions::table.find(id))
            .set(executions::cancel_requested.eq(true))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Keeps active executions alive (the host said they are still running).
    pub async fn touch(&self, ids: &[Uuid]) -> Result<(), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        diesel::update(
            executions::table
                .filter(executions::id.eq_any(ids))
                .filter(executions::status.eq_any(stored(ExecutionStatus::ACTIVE))),
        )
        .set(executions::heartbeat_at.eq(Utc::now()))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Stores a step once: a resent step (same execution and index) is ignored. Marks the execution
    /// running. Returns whether the step was new.
    pub async fn record_step(&self, s: NewStep<'_>) -> Result<bool, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // One statement (one round trip, atomic): the step, the execution's heartbeat, the move from
        // `dispatched` to `running` on its first step, and their events. `before` reads the row as
        // it was when the statement began; the `running` event is queued only if this statement made
        // the move (a concurrent cancel wins and queues none).
        #[derive(QueryableByName)]
        struct Inserted {
            #[diesel(sql_type = sql_types::BigInt)]
            n: i64,
        }
        let r: Inserted = Statement::new(concat!(
            "WITH before AS (SELECT status FROM executions WHERE id = $1), \
             step AS ( \
               INSERT INTO execution_steps (execution_id, idx, tenant_id, path, kind, verdict, reason, \
                 started_at, duration_ms, screenshot_key, measurements, screenshot_pending) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
               ON CONFLICT DO NOTHING RETURNING execution_id, tenant_id, idx, kind, verdict, reason), \
             alive AS ( \
               UPDATE executions SET heartbeat_at = now(), status = 'running' \
               WHERE id = $1 AND status IN ('dispatched', 'running') RETURNING *), \
             started AS (SELECT alive.* FROM alive, before WHERE before.status = 'dispatched'), \
             status_events AS (",
            status_events_from!("started"),
            "), \
             step_events AS ( \
               INSERT INTO outbox_events (tenant_id, routing_key, payload) \
               SELECT tenant_id, 'tenant.' || tenant_id || '.executions.step', \
                      jsonb_build_object('type', 'execution.step', 'tenant_id', tenant_id, 'execution_id', execution_id, \
                                         'index', idx, 'kind', kind, 'verdict', verdict, 'reason', reason) \
               FROM step) \
             SELECT count(*) AS n FROM step"
        ))
        .bind::<sql_types::Uuid, _>(s.execution)
        .bind::<sql_types::Integer, _>(s.index)
        .bind::<sql_types::Uuid, _>(s.tenant.0)
        .bind::<sql_types::Text, _>(s.path)
        .bind::<sql_types::Text, _>(s.kind)
        .bind::<sql_types::Text, _>(s.verdict)
        .bind::<sql_types::Text, _>(s.reason)
        .bind::<sql_types::Timestamptz, _>(s.started_at)
        .bind::<sql_types::Double, _>(s.duration_ms)
        .bind::<sql_types::Nullable<sql_types::Text>, _>(s.screenshot_key)
        .bind::<sql_types::Jsonb, _>(&s.measurements)
        .bind::<sql_types::Bool, _>(s.screenshot_pending)
        .get_result(conn)
        .await?;
        Ok(r.n == 1)
    }

    /// Attaches a step's screenshot that arrived after the step. Returns false if the step is not
    /// stored yet.
    pub async fn attach_screenshot(
        &self,
        execution: Uuid,
        index: i32,
        key: Option<&str>,
    ) -> Result<bool, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
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
    pub async fn step_counts(&self, execution: Uuid) -> Result<(i64, i64), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
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
    pub async fn active_on_device(&self, device: Uuid) -> Result<Option<ExecutionRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(executions::table
            .filter(executions::device_id.eq(device))
            .filter(executions::status.eq_any(stored(ExecutionStatus::ACTIVE)))
            .select(ExecutionRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }

    /// The host accepted the run: `dispatched` becomes `running` (unless its first step already did
    /// that). Returns whether a cancel was requested while the run was on its way, which the host
    /// has not heard of yet.
    pub async fn accepted(&self, id: Uuid) -> Result<bool, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        #[derive(QueryableByName)]
        struct Cancel {
            #[diesel(sql_type = sql_types::Bool)]
            cancel_requested: bool,
        }
        let rows: Vec<Cancel> = Statement::new(concat!(
            "WITH running AS ( \
               UPDATE executions SET status = 'running', heartbeat_at = now() \
               WHERE id = $1 AND status = 'dispatched' RETURNING *), \
             events AS (",
            status_events_from!("running"),
            ") SELECT cancel_requested FROM executions WHERE id = $1"
        ))
        .bind::<sql_types::Uuid, _>(id)
        .load(conn)
        .await?;
        Ok(rows.iter().any(|r| r.cancel_requested))
    }

    /// Puts a dispatched run back in the queue (its host was busy).
    pub async fn requeue(&self, id: Uuid) -> Result<(), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        diesel::update(
            executions::table
                .find(id)
                .filter(executions::status.eq(ExecutionStatus::Dispatched.as_str())),
        )
        .set((
            executions::status.eq(ExecutionStatus::Queued.as_str()),
            executions::dispatched_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Runs sent to a host that never accepted them (the server died between lease and dispatch,
    /// or the answer was lost).
    pub async fn stale_dispatched(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<ExecutionRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(executions::table
            .filter(executions::status.eq(ExecutionStatus::Dispatched.as_str()))
            .filter(executions::dispatched_at.lt(cutoff))
            .select(ExecutionRow::as_select())
            .load(conn)
            .await?)
    }

    /// Active executions on the devices of `host` (for a host that went away or came back).
    pub async fn active_on_host(&self, host: Uuid) -> Result<Vec<ExecutionRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        use crate::db::schema::devices;
        Ok(executions::table
            .inner_join(devices::table)
            .filter(devices::host_id.eq(host))
            .filter(executions::status.eq_any(stored(ExecutionStatus::ACTIVE)))
            .select(ExecutionRow::as_select())
            .load(conn)
            .await?)
    }

    /// Active executions whose host is offline and that have shown no sign of life since `cutoff`:
    /// the host disconnected mid-run and did not come back in time.
    pub async fn abandoned(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<(ExecutionRow, String)>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        use crate::db::schema::{devices, hosts};
        Ok(executions::table
            .inner_join(devices::table.inner_join(hosts::table))
            .filter(executions::status.eq_any(stored(ExecutionStatus::ACTIVE)))
            .filter(hosts::status.ne("online"))
            .filter(executions::heartbeat_at.lt(cutoff))
            // Silent since the cutoff both as a run and as a host: a long step on a host that was
            // online until a moment ago is not abandoned yet.
            .filter(hosts::last_seen_at.lt(cutoff))
            .select((ExecutionRow::as_select(), hosts::name))
            .load(conn)
            .await?)
    }

    /// An execution with the host that owns its device (for checking reports from hosts).
    pub async fn with_host(&self, id: Uuid) -> Result<Option<(ExecutionRow, Uuid)>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        use crate::db::schema::devices;
        Ok(executions::table
            .inner_join(devices::table)
            .filter(executions::id.eq(id))
            .select((ExecutionRow::as_select(), devices::host_id))
            .first(conn)
            .await
            .optional()?)
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
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

impl ExecutionRow {
    /// The stored status as the enum; `None` only if the column holds an unknown string.
    pub fn state(&self) -> Option<ExecutionStatus> {
        self.status.parse().ok()
    }
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

/// Moves an execution to `status` if it is in one of the `from` states (checked in the same
/// statement, so a concurrent change is never overwritten). Returns the updated row if it changed.
pub async fn transition_from(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    from: &[ExecutionStatus],
    status: ExecutionStatus,
    reason: &str,
    steps_total: Option<i32>,
) -> Result<Option<ExecutionRow>, DbError> {
    let from = stored(from);
    conn.transaction::<_, DbError, _>(async move |conn| {
        let finished = status.is_final().then(Utc::now);
        let row: Option<ExecutionRow> = diesel::update(
            executions::table
                .find(id)
                .filter(executions::status.eq_any(from)),
        )
        .set((
            executions::status.eq(status.as_str()),
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
