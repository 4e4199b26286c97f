//! Repo sandboxes: builds, their log lines and their sessions.
//!
//! Every change of a build's stage queues a `build.stage` event in the same transaction; every
//! message a worker must act on (a job, a session to stop) is queued through the outbox too, so
//! it leaves exactly when the change commits. Changes read the build `FOR UPDATE` first, so the
//! update consumer, the dead-letter consumer, the sweeper and the REST handlers (on any replica)
//! never overwrite each other.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, QueryableByName, Selectable,
    SelectableHelper, sql_types,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use labwright_core::{
    build::{
        BuildJob, BuildUpdate, SessionControl, Stage,
        stage::{self, BuildState, Decision},
    },
    ids::TenantId,
};
use serde_json::json;
use uuid::Uuid;

use crate::db::{
    DbError, outbox,
    schema::{build_logs, builds, session_logs, sessions},
    statement::Statement,
};

/// Stages a build can be cancelled in (before its session exists).
pub const CANCELLABLE: [Stage; 5] = [
    Stage::Queued,
    Stage::Cloning,
    Stage::Detecting,
    Stage::Building,
    Stage::Starting,
];

/// Session states.
pub use labwright_core::build::SESSION_STATUSES;

/// Statuses of a session whose container still exists (the workers' `Live` snapshot; the sweeper
/// expires them).
pub const LIVE: [&str; 2] = ["running", "exited"];

/// Newest lines of its output kept per session; older ones are dropped as new ones come.
pub const SESSION_LOG_LINES: i64 = 20_000;

/// Longest log line stored; longer ones are cut (at a character boundary).
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// Builds, their logs and sessions: the queries, each on a pooled connection.
#[derive(Clone)]
pub struct BuildStore(crate::db::Store);

impl BuildStore {
    pub fn new(pool: crate::db::Pool) -> Self {
        Self(crate::db::Store::new(pool))
    }

    /// Stores a queued build, its job (to the jobs exchange) and its first `build.stage` event, in
    /// one transaction.
    pub async fn create(
        &self,
        new: NewBuild<'_>,
        jobs_exchange: &str,
    ) -> Result<BuildRow, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let job = new.job;
        let payload = serde_json::to_value(job)
            .map_err(|e| DbError::Query(diesel::result::Error::SerializationError(Box::new(e))))?;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let b: BuildRow = diesel::insert_into(builds::table)
                .values((
                    builds::id.eq(job.build_id),
                    builds::tenant_id.eq(job.tenant_id),
                    builds::repo_url.eq(job.repo_url.as_str()),
                    builds::git_ref.eq(job.git_ref.as_deref()),
                    builds::subdir.eq(job.subdir.as_deref()),
                    builds::stage.eq(Stage::Queued.as_str()),
                    builds::created_by.eq(new.created_by),
                ))
                .returning(BuildRow::as_returning())
                .get_result(conn)
                .await?;
            outbox::push_to(
                conn,
                TenantId(job.tenant_id),
                jobs_exchange,
                labwright_wire::bus::JOBS_ROUTING_KEY,
                payload,
            )
            .await?;
            stage_event(conn, &b).await?;
            Ok(b)
        })
        .await
    }

    pub async fn get(&self, tenant: TenantId, id: Uuid) -> Result<Option<BuildRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(builds::table
            .filter(builds::tenant_id.eq(tenant.0))
            .filter(builds::id.eq(id))
            .select(BuildRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }

    /// The tenant's builds, newest first, and how many matched.
    pub async fn list(
        &self,
        tenant: TenantId,
        q: &ListQuery,
    ) -> Result<(Vec<BuildRow>, i64), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let filtered = || {
            let mut query = builds::table
                .filter(builds::tenant_id.eq(tenant.0))
                .into_boxed();
            if let Some(s) = q.stage {
                query = query.filter(builds::stage.eq(s.as_str()));
            }
            query
        };
        let total = filtered().count().get_result(conn).await?;
        let rows = filtered()
            .order((builds::created_at.desc(), builds::id.desc()))
            .limit(q.limit)
            .offset(q.offset)
            .select(BuildRow::as_select())
            .load(conn)
            .await?;
        Ok((rows, total))
    }

    /// The last `n` log lines of a build, oldest first.
    pub async fn log_tail(&self, build: Uuid, n: i64) -> Result<Vec<String>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let mut lines: Vec<String> = build_logs::table
            .filter(build_logs::build_id.eq(build))
            .order(build_logs::seq.desc())
            .limit(n)
            .select(build_logs::line)
            .load(conn)
            .await?;
        lines.reverse();
        Ok(lines)
    }

    /// Up to `limit` log lines after `after` (a `seq`), in display order.
    pub async fn log_page(
        &self,
        build: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(build_logs::table
            .filter(build_logs::build_id.eq(build))
            .filter(build_logs::seq.gt(after))
            .order(build_logs::seq.asc())
            .limit(limit)
            .select(LogLine::as_select())
            .load(conn)
            .await?)
    }

    /// The stage of a build (for the log stream), if it exists.
    pub async fn stage_of(&self, build: Uuid) -> Result<Option<Stage>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let s: Option<String> = builds::table
            .find(build)
            .select(builds::stage)
            .first(conn)
            .await
            .optional()?;
        Ok(s.as_deref().and_then(Stage::parse))
    }

    /// Cancels a build that is not running yet, and tells the workers (a `Stop` for the session id
    /// the build would get, which is the build id) so the one working on it can give up.
    pub async fn cancel(
        &self,
        tenant: TenantId,
        id: Uuid,
        reason: &str,
        sessions_exchange: &str,
    ) -> Result<CancelOutcome, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let Some(b) = lock(conn, tenant, id).await? else {
                return Ok(CancelOutcome::NotFound);
            };
            if !CANCELLABLE.contains(&b.stage()) {
                return Ok(CancelOutcome::Refused(b));
            }
            let row = set_stage(conn, &b, Stage::Cancelled, reason, None).await?;
            // A worker may have its container up already (`starting`): end that session too.
            end_session_of(conn, &row, reason, None).await?;
            // Even when queued: a worker may have taken the job without reporting yet.
            let msg = SessionControl::Stop {
                session_id: b.id,
                reason: reason.to_string(),
            };
            control(conn, b.tenant_id, sessions_exchange, &msg).await?;
            Ok(CancelOutcome::Cancelled(row))
        })
        .await
    }

    /// Applies one (validated) worker update in one transaction: [`stage::decide`] says what it
    /// does, this stores it.
    pub async fn apply_update(
        &self,
        u: &BuildUpdate,
        ttl: SessionTtl,
        sessions_exchange: &str,
    ) -> Result<Applied, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let Some(b) = lock_any(conn, u.build_id).await? else {
                return Ok(Applied::Unknown);
            };
            if b.tenant_id != u.tenant_id {
                return Ok(Applied::Unknown);
            }
            let state = BuildState {
                stage: b.stage(),
                attempt: b.attempt,
            };
            match stage::decide(state, u) {
                Decision::SetStage {
                    stage,
                    reason,
                    end_session,
                } => {
                    let row = set_stage(conn, &b, stage, reason, Some(u.attempt)).await?;
                    if let Some(why) = end_session {
                        end_session_of(conn, &row, &why, None).await?;
                    }
                    Ok(Applied::Stored { queued: true })
                }
                Decision::SetDetected {
                    stack,
                    dockerfile,
                    own_dockerfile,
                } => {
                    diesel::update(builds::table.find(b.id))
                        .set((
                            builds::stack.eq(stack),
                            builds::dockerfile.eq(storable(dockerfile).as_ref()),
                            builds::own_dockerfile.eq(own_dockerfile),
                            builds::updated_at.eq(Utc::now()),
                        ))
                        .execute(conn)
                        .await?;
                    Ok(Applied::Stored { queued: false })
                }
                Decision::SetImage { image } => {
                    diesel::update(builds::table.find(b.id))
                        .set((builds::image.eq(image), builds::updated_at.eq(Utc::now())))
                        .execute(conn)
                        .await?;
                    Ok(Applied::Stored { queued: false })
                }
                Decision::AppendLog { first_line, lines } => {
                    let lines: Vec<String> = lines
                        .iter()
                        .map(|l| cut(storable(l).into_owned(), MAX_LINE_BYTES))
                        .collect();
                    Statement::new(
                        "INSERT INTO build_logs (build_id, attempt, line_no, line) \
                         SELECT $1, $2, $3 + t.i - 1, t.l \
                         FROM unnest($4::text[]) WITH ORDINALITY AS t(l, i) ORDER BY t.i \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind::<sql_types::Uuid, _>(b.id)
                    .bind::<sql_types::Uuid, _>(u.attempt)
                    .bind::<sql_types::BigInt, _>(first_line)
                    .bind::<sql_types::Array<sql_types::Text>, _>(&lines)
                    .execute(conn)
                    .await?;
                    Ok(Applied::Stored { queued: false })
                }
                Decision::Nothing => Ok(Applied::Stored { queued: false }),
                Decision::StartSession {
                    container_id,
                    network,
                } => {
                    Statement::new(
                        "INSERT INTO sessions (id, tenant_id, build_id, container_id, network, status, \
                           expires_at, hard_expires_at) \
                         VALUES ($1, $2, $1, $3, $4, 'running', now() + make_interval(secs => $5), \
                           now() + make_interval(secs => $6)) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind::<sql_types::Uuid, _>(b.id)
                    .bind::<sql_types::Uuid, _>(b.tenant_id)
                    .bind::<sql_types::Text, _>(container_id)
                    .bind::<sql_types::Text, _>(network)
                    .bind::<sql_types::Double, _>(ttl.ttl_secs as f64)
                    .bind::<sql_types::Double, _>(ttl.max_ttl_secs as f64)
                    .execute(conn)
                    .await?;
                    Ok(Applied::Stored { queued: false })
                }
                Decision::SessionExited {
                    container_id,
                    exit_code,
                    oom_killed,
                    at_unix_ms,
                } => {
                    let code = i32::try_from(exit_code).unwrap_or(-1);
                    let at = DateTime::<Utc>::from_timestamp_millis(at_unix_ms)
                        .unwrap_or_else(Utc::now);
                    let reason = labwright_core::build::exit_summary(exit_code, oom_killed);
                    let exited: Option<SessionRow> = diesel::update(
                        sessions::table
                            .filter(sessions::id.eq(b.id))
                            .filter(sessions::status.eq("running"))
                            .filter(sessions::container_id.eq(container_id)),
                    )
                    .set((
                        sessions::status.eq("exited"),
                        sessions::exit_code.eq(code),
                        sessions::oom_killed.eq(oom_killed),
                        sessions::exited_at.eq(at),
                        sessions::end_reason.eq(&reason),
                    ))
                    .returning(SessionRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                    match exited {
                        Some(s) => {
                            session_event(conn, &s).await?;
                            Ok(Applied::Stored { queued: true })
                        }
                        None => Ok(Applied::Ignored(
                            "an exit of a container the session no longer runs in",
                        )),
                    }
                }
                Decision::SessionRestarted {
                    container_id,
                    restart,
                } => {
                    let restarted: Option<SessionRow> = diesel::update(
                        sessions::table
                            .filter(sessions::id.eq(b.id))
                            .filter(sessions::status.eq_any(LIVE))
                            .filter(sessions::restarts.eq(i32::try_from(restart).unwrap_or(-1))),
                    )
                    .set((
                        sessions::status.eq("running"),
                        sessions::container_id.eq(container_id),
                        sessions::exit_code.eq(None::<i32>),
                        sessions::oom_killed.eq(false),
                        sessions::exited_at.eq(None::<DateTime<Utc>>),
                        sessions::end_reason.eq(""),
                    ))
                    .returning(SessionRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                    match restarted {
                        Some(s) => {
                            session_event(conn, &s).await?;
                            Ok(Applied::Stored { queued: true })
                        }
                        None => Ok(Applied::Ignored("a restart that is not the session's latest")),
                    }
                }
                Decision::AppendSessionLog {
                    container_id,
                    first_line,
                    lines,
                } => {
                    let lines: Vec<String> = lines
                        .iter()
                        .map(|l| cut(storable(l).into_owned(), MAX_LINE_BYTES))
                        .collect();
                    // Only for a session that exists (its output may outlive it on the queue).
                    Statement::new(
                        "INSERT INTO session_logs (session_id, container_id, line_no, line) \
                         SELECT $1, $2, $3 + t.i - 1, t.l \
                         FROM unnest($4::text[]) WITH ORDINALITY AS t(l, i) \
                         WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $1) ORDER BY t.i \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind::<sql_types::Uuid, _>(b.id)
                    .bind::<sql_types::Text, _>(container_id)
                    .bind::<sql_types::BigInt, _>(first_line)
                    .bind::<sql_types::Array<sql_types::Text>, _>(&lines)
                    .execute(conn)
                    .await?;
                    // The newest lines only.
                    Statement::new(
                        "DELETE FROM session_logs WHERE session_id = $1 AND seq <= \
                         (SELECT seq FROM session_logs WHERE session_id = $1 \
                          ORDER BY seq DESC OFFSET $2 LIMIT 1)",
                    )
                    .bind::<sql_types::Uuid, _>(b.id)
                    .bind::<sql_types::BigInt, _>(SESSION_LOG_LINES)
                    .execute(conn)
                    .await?;
                    Ok(Applied::Stored { queued: false })
                }
                Decision::StopLateSession { reason } => {
                    // The container came up after the build was cancelled or failed: remove it.
                    let msg = SessionControl::Stop {
                        session_id: b.id,
                        reason,
                    };
                    control(conn, b.tenant_id, sessions_exchange, &msg).await?;
                    Ok(Applied::Stored { queued: true })
                }
                Decision::Ignore(why) => Ok(Applied::Ignored(why)),
            }
        })
        .await
    }

    /// Fails the build of a job that went to the dead letters, unless it already ended. Returns
    /// whether it changed.
    pub async fn fail_dead_job(
        &self,
        job: &BuildJob,
        reason: &str,
        sessions_exchange: &str,
    ) -> Result<bool, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let Some(b) = lock(conn, TenantId(job.tenant_id), job.build_id).await? else {
                return Ok(false);
            };
            if b.stage().is_final() {
                return Ok(false);
            }
            let row = set_stage(conn, &b, Stage::Failed, reason, None).await?;
            end_session_of(conn, &row, reason, Some(sessions_exchange)).await?;
            Ok(true)
        })
        .await
    }

    pub async fn get_session(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<SessionRow>, DbError> {
        get_session(&mut *self.0.conn().await?, tenant, id).await
    }

    /// The sessions of these builds (the tenant's only).
    pub async fn sessions_of(
        &self,
        tenant: TenantId,
        builds: &[Uuid],
    ) -> Result<Vec<SessionRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(sessions::table
            .filter(sessions::tenant_id.eq(tenant.0))
            .filter(sessions::build_id.eq_any(builds))
            .select(SessionRow::as_select())
            .load(conn)
            .await?)
    }

    /// The tenant's sessions, newest first, and how many matched.
    pub async fn list_sessions(
        &self,
        tenant: TenantId,
        q: &SessionQuery,
    ) -> Result<(Vec<SessionRow>, i64), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let filtered = || {
            let mut query = sessions::table
                .filter(sessions::tenant_id.eq(tenant.0))
                .into_boxed();
            if let Some(s) = &q.status {
                query = query.filter(sessions::status.eq(s.clone()));
            }
            query
        };
        let total = filtered().count().get_result(conn).await?;
        let rows = filtered()
            .order((sessions::created_at.desc(), sessions::id.desc()))
            .limit(q.limit)
            .offset(q.offset)
            .select(SessionRow::as_select())
            .load(conn)
            .await?;
        Ok((rows, total))
    }

    /// Ends a running session at a user's request: the session `stopped`, its build `stopped`, and
    /// a `Stop` for the workers, in one transaction. `None` if there is no such session; a session
    /// that already ended is returned unchanged.
    pub async fn stop_session(
        &self,
        tenant: TenantId,
        id: Uuid,
        reason: &str,
        sessions_exchange: &str,
    ) -> Result<Option<SessionRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            // Lock order: build, then session (as the update consumer does).
            let Some(b) = lock(conn, tenant, id).await? else {
                return Ok(None);
            };
            let stopped: Option<SessionRow> = diesel::update(
                sessions::table
                    .filter(sessions::tenant_id.eq(tenant.0))
                    .filter(sessions::id.eq(id))
                    .filter(sessions::status.eq_any(LIVE)),
            )
            .set((
                sessions::status.eq("stopped"),
                sessions::ended_at.eq(Utc::now()),
                sessions::end_reason.eq(reason),
            ))
            .returning(SessionRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            let Some(s) = stopped else {
                return get_session(conn, tenant, id).await;
            };
            if !b.stage().is_final() {
                set_stage(conn, &b, Stage::Stopped, &format!("session {reason}"), None).await?;
            }
            let msg = SessionControl::Stop {
                session_id: s.id,
                reason: reason.to_string(),
            };
            control(conn, s.tenant_id, sessions_exchange, &msg).await?;
            Ok(Some(s))
        })
        .await
    }

    /// Moves a running session's expiry to `max(now, expires_at) + seconds`, never past its
    /// `hard_expires_at`.
    pub async fn extend_session(
        &self,
        tenant: TenantId,
        id: Uuid,
        seconds: i64,
    ) -> Result<ExtendOutcome, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let extended: Option<SessionRow> = Statement::new(
                "UPDATE sessions SET expires_at = GREATEST(now(), expires_at) + make_interval(secs => $3) \
                 WHERE id = $1 AND tenant_id = $2 AND status IN ('running', 'exited') \
                   AND GREATEST(now(), expires_at) + make_interval(secs => $3) <= hard_expires_at \
                 RETURNING *",
            )
            .bind::<sql_types::Uuid, _>(id)
            .bind::<sql_types::Uuid, _>(tenant.0)
            .bind::<sql_types::Double, _>(seconds as f64)
            .get_result(conn)
            .await
            .optional()?;
            if let Some(s) = extended {
                return Ok(ExtendOutcome::Extended(s));
            }
            let Some(s) = get_session(conn, tenant, id).await? else {
                return Ok(ExtendOutcome::NotFound);
            };
            if s.status != "running" && s.status != "exited" {
                return Ok(ExtendOutcome::NotRunning(s));
            }
            let from = s.expires_at.max(Utc::now());
            let over_secs = (from + chrono::Duration::seconds(seconds) - s.hard_expires_at)
                .num_seconds()
                .max(1);
            Ok(ExtendOutcome::PastCap {
                session: s,
                over_secs,
            })
        })
        .await
    }

    /// Expires every running session past its `expires_at` (any tenant): the session `expired`, its
    /// build `expired`, and a `Stop` each, in one transaction. Safe on several replicas at once: a
    /// session is moved by exactly one of them.
    pub async fn sweep_expired(&self, sessions_exchange: &str) -> Result<Vec<SessionRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            // Lock order: builds, then sessions (as every other change does).
            let candidates: Vec<BuildRow> = Statement::new(
                "SELECT b.* FROM builds b JOIN sessions s ON s.build_id = b.id \
                 WHERE s.status IN ('running', 'exited') AND s.expires_at < now() \
                 ORDER BY s.expires_at LIMIT 500 FOR UPDATE OF b SKIP LOCKED",
            )
            .load(conn)
            .await?;
            if candidates.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<Uuid> = candidates.iter().map(|b| b.id).collect();
            let expired: Vec<SessionRow> = Statement::new(
                "UPDATE sessions SET status = 'expired', ended_at = now(), end_reason = 'expired' \
                 WHERE build_id = ANY($1) AND status IN ('running', 'exited') AND expires_at < now() \
                 RETURNING *",
            )
            .bind::<sql_types::Array<sql_types::Uuid>, _>(&ids)
            .load(conn)
            .await?;
            for s in &expired {
                if let Some(b) = candidates.iter().find(|b| b.id == s.build_id)
                    && !b.stage().is_final()
                {
                    set_stage(conn, b, Stage::Expired, "the session expired", None).await?;
                }
                let msg = SessionControl::Stop {
                    session_id: s.id,
                    reason: "expired".into(),
                };
                control(conn, s.tenant_id, sessions_exchange, &msg).await?;
            }
            Ok(expired)
        })
        .await
    }

    /// Restarts a running or exited session: its restart count goes up, it is `running` again,
    /// and the workers are told to make its container again (the one that has it reports the new
    /// container). `None` if there is no such session; a session that ended is returned as is.
    pub async fn restart_session(
        &self,
        tenant: TenantId,
        id: Uuid,
        sessions_exchange: &str,
    ) -> Result<Option<(SessionRow, bool)>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            // Lock order: build, then session.
            if lock(conn, tenant, id).await?.is_none() {
                return Ok(None);
            }
            let restarted: Option<SessionRow> = diesel::update(
                sessions::table
                    .filter(sessions::tenant_id.eq(tenant.0))
                    .filter(sessions::id.eq(id))
                    .filter(sessions::status.eq_any(LIVE)),
            )
            .set((
                sessions::status.eq("running"),
                sessions::restarts.eq(sessions::restarts + 1),
                sessions::exit_code.eq(None::<i32>),
                sessions::oom_killed.eq(false),
                sessions::exited_at.eq(None::<DateTime<Utc>>),
                sessions::end_reason.eq(""),
            ))
            .returning(SessionRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            let Some(s) = restarted else {
                return Ok(get_session(conn, tenant, id).await?.map(|s| (s, false)));
            };
            let msg = SessionControl::Restart {
                session_id: s.id,
                restart: u32::try_from(s.restarts).unwrap_or(0),
            };
            control(conn, s.tenant_id, sessions_exchange, &msg).await?;
            session_event(conn, &s).await?;
            Ok(Some((s, true)))
        })
        .await
    }

    /// Up to `limit` output lines of a session after `after` (a `seq`), in display order.
    pub async fn session_log_page(
        &self,
        session: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogLine>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(session_logs::table
            .filter(session_logs::session_id.eq(session))
            .filter(session_logs::seq.gt(after))
            .order(session_logs::seq.asc())
            .limit(limit)
            .select((session_logs::seq, session_logs::line))
            .load::<(i64, String)>(conn)
            .await?
            .into_iter()
            .map(|(seq, line)| LogLine { seq, line })
            .collect())
    }

    /// The `seq` after which a session's last `n` output lines start (0: from the first).
    pub async fn session_log_tail_start(&self, session: Uuid, n: i64) -> Result<i64, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let seq: Option<i64> = session_logs::table
            .filter(session_logs::session_id.eq(session))
            .order(session_logs::seq.desc())
            .offset(n)
            .select(session_logs::seq)
            .first(conn)
            .await
            .optional()?;
        Ok(seq.unwrap_or(0))
    }

    /// The status of a session (for the output stream), if it exists.
    pub async fn session_status(&self, session: Uuid) -> Result<Option<String>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(sessions::table
            .find(session)
            .select(sessions::status)
            .first(conn)
            .await
            .optional()?)
    }

    pub async fn running_session_ids(&self) -> Result<Vec<Uuid>, DbError> {
        running_session_ids(&mut *self.0.conn().await?).await
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = builds)]
pub struct BuildRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub repo_url: String,
    pub git_ref: Option<String>,
    pub subdir: Option<String>,
    pub stage: String,
    pub stack: Option<String>,
    pub dockerfile: Option<String>,
    pub own_dockerfile: Option<bool>,
    pub image: Option<String>,
    pub reason: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempt: Option<Uuid>,
}

impl BuildRow {
    /// The stored stage (the column's CHECK admits only [`Stage`] names).
    pub fn stage(&self) -> Stage {
        Stage::parse(&self.stage).unwrap_or(Stage::Failed)
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub build_id: Uuid,
    pub container_id: String,
    pub network: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub hard_expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: String,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub exited_at: Option<DateTime<Utc>>,
    pub restarts: i32,
}

/// One stored log line and its display position.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = build_logs)]
pub struct LogLine {
    pub seq: i64,
    pub line: String,
}

/// The repo-sandbox exchanges that rows of the outbox go to (namespaced names).
#[derive(Debug, Clone, Copy)]
pub struct Exchanges<'a> {
    pub jobs: &'a str,
    pub sessions: &'a str,
}

/// The `build.stage` event for the web UI.
async fn stage_event(conn: &mut AsyncPgConnection, b: &BuildRow) -> Result<(), DbError> {
    let tenant = TenantId(b.tenant_id);
    outbox::push(
        conn,
        tenant,
        "builds.stage",
        json!({"type": "build.stage", "tenant_id": tenant, "build_id": b.id, "stage": b.stage, "reason": b.reason, "at": b.updated_at}),
    )
    .await
}

/// The `session.status` event for the web UI (a session exited or runs again).
async fn session_event(conn: &mut AsyncPgConnection, s: &SessionRow) -> Result<(), DbError> {
    let tenant = TenantId(s.tenant_id);
    outbox::push(
        conn,
        tenant,
        "sessions.status",
        json!({"type": "session.status", "tenant_id": tenant, "session_id": s.id, "status": s.status,
               "exit_code": s.exit_code, "oom_killed": s.oom_killed, "reason": s.end_reason}),
    )
    .await
}

/// Queues a session control message for every worker.
async fn control(
    conn: &mut AsyncPgConnection,
    tenant: Uuid,
    exchange: &str,
    msg: &SessionControl,
) -> Result<(), DbError> {
    let payload = serde_json::to_value(msg)
        .map_err(|e| DbError::Query(diesel::result::Error::SerializationError(Box::new(e))))?;
    outbox::push_to(conn, TenantId(tenant), exchange, "", payload).await
}

/// PostgreSQL text cannot hold NUL; anything else is stored as sent.
fn storable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}").into()
    } else {
        s.into()
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

pub struct NewBuild<'a> {
    pub created_by: Uuid,
    pub job: &'a BuildJob,
}

/// Any tenant's build, locked until the transaction ends.
async fn lock_any(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<BuildRow>, DbError> {
    Ok(builds::table
        .find(id)
        .for_update()
        .select(BuildRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The tenant's build, locked until the transaction ends.
async fn lock(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<BuildRow>, DbError> {
    Ok(lock_any(conn, id)
        .await?
        .filter(|b| b.tenant_id == tenant.0))
}

pub struct ListQuery {
    pub stage: Option<Stage>,
    pub limit: i64,
    pub offset: i64,
}

/// Moves a locked build to `stage` and queues its event. A worker stage sets `started_at` the
/// first time; a final one sets `finished_at`.
async fn set_stage(
    conn: &mut AsyncPgConnection,
    b: &BuildRow,
    stage: Stage,
    reason: &str,
    attempt: Option<Uuid>,
) -> Result<BuildRow, DbError> {
    let now = Utc::now();
    let started = b
        .started_at
        .or((stage.is_worker_stage() && stage != Stage::Stopped).then_some(now));
    let row: BuildRow = diesel::update(builds::table.find(b.id))
        .set((
            builds::stage.eq(stage.as_str()),
            builds::reason.eq(storable(reason).as_ref()),
            builds::updated_at.eq(now),
            builds::started_at.eq(started),
            builds::finished_at.eq(stage.is_final().then_some(now)),
            builds::attempt.eq(attempt.or(b.attempt)),
        ))
        .returning(BuildRow::as_returning())
        .get_result(conn)
        .await?;
    stage_event(conn, &row).await?;
    Ok(row)
}

/// Ends the running session of a build that just ended, if it has one; `stop` also queues a
/// `Stop` for the workers (not needed when a worker reported the end itself).
async fn end_session_of(
    conn: &mut AsyncPgConnection,
    b: &BuildRow,
    reason: &str,
    stop: Option<&str>,
) -> Result<(), DbError> {
    let ended: Option<SessionRow> = diesel::update(
        sessions::table
            .filter(sessions::build_id.eq(b.id))
            .filter(sessions::status.eq_any(LIVE)),
    )
    .set((
        sessions::status.eq("stopped"),
        sessions::ended_at.eq(Utc::now()),
        sessions::end_reason.eq(storable(reason).as_ref()),
    ))
    .returning(SessionRow::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    if let (Some(s), Some(exchange)) = (ended, stop) {
        let msg = SessionControl::Stop {
            session_id: s.id,
            reason: reason.to_string(),
        };
        control(conn, s.tenant_id, exchange, &msg).await?;
    }
    Ok(())
}

/// Why a cancel was refused.
pub enum CancelOutcome {
    Cancelled(BuildRow),
    NotFound,
    /// The build's current stage does not allow it.
    Refused(BuildRow),
}

/// What became of an update.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Stored; `queued` says whether outbox rows were added (wake the publisher).
    Stored { queued: bool },
    /// Valid but not applicable (stale, late, duplicate); dropped.
    Ignored(&'static str),
    /// No such build, or the build belongs to another tenant.
    Unknown,
}

/// Session lifetimes given to a new session.
#[derive(Debug, Clone, Copy)]
pub struct SessionTtl {
    pub ttl_secs: u64,
    pub max_ttl_secs: u64,
}

pub async fn get_session(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<SessionRow>, DbError> {
    Ok(sessions::table
        .filter(sessions::tenant_id.eq(tenant.0))
        .filter(sessions::id.eq(id))
        .select(SessionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub struct SessionQuery {
    pub status: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Why an extension was refused.
pub enum ExtendOutcome {
    Extended(SessionRow),
    NotFound,
    NotRunning(SessionRow),
    /// It would end `over_secs` past `hard_expires_at`.
    PastCap {
        session: SessionRow,
        over_secs: i64,
    },
}

/// Every session of every tenant whose container must stay (for the `Live` snapshot).
pub async fn running_session_ids(conn: &mut AsyncPgConnection) -> Result<Vec<Uuid>, DbError> {
    Ok(sessions::table
        .filter(sessions::status.eq_any(LIVE))
        .select(sessions::id)
        .load(conn)
        .await?)
}
