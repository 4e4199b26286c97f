//! `/api/v1/builds` and `/api/v1/sessions`: repo sandboxes. Submit a repository to be built and
//! run by a build worker, follow its stages and log (Server-Sent Events), cancel it; list, end
//! and extend the sessions that successful builds leave.

pub use labwright_wire::rest::builds::{
    BuildView, CreateBuild, Durations, ExtendSession, SessionSummary, SessionView, TerminalTicket,
};
use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use bytes::Bytes;
use chrono::Utc;
use labwright_core::{auth::Permission, build::Stage};
use labwright_wire::rest::Page;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    error::ApiError,
    keys::Caller,
    platform::paging::page,
    sandboxes::{
        CancelOutcome, ExtendOutcome, ListQuery, LogLine, SESSION_STATUSES, Sandboxes,
        SessionQuery, build_view, session_view,
    },
};

/// Lines read per query by the log stream.
const LOG_PAGE: i64 = 500;
/// How often the log stream looks for new lines (the database: works across replicas).
const LOG_POLL: Duration = Duration::from_millis(250);
/// A running build's log stream ends after this long without a new line.
const LOG_QUIET_END: Duration = Duration::from_secs(2);
/// A comment line keeps idle proxies from closing the stream.
const LOG_KEEPALIVE: Duration = Duration::from_secs(15);
/// A stream is closed after this long (without `end`); clients resume with `Last-Event-ID`.
const LOG_MAX_STREAM: Duration = Duration::from_secs(30 * 60);

/// An absent or empty optional field is the same thing.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Builds a repository and runs it in a session. The URL, ref and subdirectory are checked
/// before anything is stored; the job is queued for a build worker with the build.
#[utoipa::path(post, path = "/api/v1/builds", request_body = CreateBuild,
    responses((status = 201, body = BuildView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
#[post("/builds")]
pub async fn create_build(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    body: web::Json<CreateBuild>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::UseSandboxes)?;
    let b = sandboxes
        .create_build(
            caller.tenant,
            caller.key_id,
            &body.repo_url,
            given(&body.git_ref),
            given(&body.subdir),
        )
        .await?;
    Ok(HttpResponse::Created().json(build_view(b, None, Some(Vec::new()))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BuildParams {
    /// Only builds in this stage.
    stage: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Builds of the tenant, newest first.
#[utoipa::path(get, path = "/api/v1/builds", params(BuildParams), responses((status = 200, body = inline(Page<BuildView>)), (status = 400, body = crate::error::ErrorBody)))]
#[get("/builds")]
pub async fn list_builds(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    params: web::Query<BuildParams>,
) -> Result<web::Json<Page<BuildView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let p = params.into_inner();
    let (limit, offset) = page(p.limit, p.offset)?;
    let stage = match &p.stage {
        None => None,
        Some(s) => Some(Stage::parse(s).ok_or_else(|| {
            ApiError::InvalidArgument(format!("stage: unknown build stage {s:?}"))
        })?),
    };
    let q = ListQuery {
        stage,
        limit,
        offset,
    };
    Ok(web::Json(sandboxes.list_builds(caller.tenant, &q).await?))
}

/// One build with the end of its log and its session.
#[utoipa::path(get, path = "/api/v1/builds/{id}", params(("id" = Uuid, Path)), responses((status = 200, body = BuildView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/builds/{id}")]
pub async fn get_build(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<BuildView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    Ok(web::Json(
        sandboxes.build(caller.tenant, id.into_inner()).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Only lines after this event id (as `Last-Event-ID`, which it overrides).
    after: Option<i64>,
    /// `false`: send what is stored and end. Default `true`: follow until the build ends (or
    /// runs and its log has been quiet for 2 s).
    follow: Option<bool>,
}

/// The build log as Server-Sent Events: `id: <seq>` and `data: <line>` per line, then
/// `event: end` with the stage as data. Resumes after `Last-Event-ID` or `?after=`.
#[utoipa::path(get, path = "/api/v1/builds/{id}/logs", params(("id" = Uuid, Path), LogParams),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = crate::error::ErrorBody)))]
#[get("/builds/{id}/logs")]
pub async fn build_logs(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    id: web::Path<Uuid>,
    params: web::Query<LogParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let id = id.into_inner();
    let after = last_event_id(params.after, &req)?;
    sandboxes.build_row(caller.tenant, id).await?;
    Ok(sse_response(LogStream::new(
        sandboxes.into_inner(),
        LogSource::Build(id),
        after,
        params.follow.unwrap_or(true),
    )))
}

/// Where a log stream resumes: `?after=`, else `Last-Event-ID`, else the start.
fn last_event_id(after: Option<i64>, req: &HttpRequest) -> Result<i64, ApiError> {
    Ok(match after {
        Some(a) => a,
        None => match req.headers().get("last-event-id") {
            None => 0,
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::InvalidArgument("Last-Event-ID: must be an event id".into())
                })?,
        },
    })
}

fn sse_response(stream: LogStream) -> HttpResponse {
    let body = futures::stream::unfold(stream, |mut st| async move {
        let chunk = st.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), st))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// Whose log a stream reads.
#[derive(Clone, Copy)]
enum LogSource {
    /// A build's log; ends with its stage once it ended (or runs and went quiet).
    Build(Uuid),
    /// A session's output; ends with its status once it is not running.
    Session(Uuid),
}

/// The state of one log stream: where it is, and when it last had something to say.
struct LogStream {
    sandboxes: Arc<Sandboxes>,
    source: LogSource,
    after: i64,
    follow: bool,
    opened: Instant,
    last_line: Instant,
    last_sent: Instant,
    done: bool,
}

impl LogStream {
    fn new(sandboxes: Arc<Sandboxes>, source: LogSource, after: i64, follow: bool) -> Self {
        let now = Instant::now();
        Self {
            sandboxes,
            source,
            after,
            follow,
            opened: now,
            last_line: now,
            last_sent: now,
            done: false,
        }
    }

    /// New lines, and whether the stream may end after them, with what its `end` event says.
    /// The stage or status is read before the lines: lines stored before the build or session
    /// ended are then always seen before the end.
    async fn read(&self) -> Result<(Vec<LogLine>, bool, String), ApiError> {
        match self.source {
            LogSource::Build(id) => {
                let (stage, lines) = self.sandboxes.log_page(id, self.after, LOG_PAGE).await?;
                let stage = stage.unwrap_or(Stage::Failed);
                let quiet = self.last_line.elapsed() >= LOG_QUIET_END;
                let ended = stage.is_final() || (stage == Stage::Running && quiet);
                Ok((lines, ended, stage.as_str().to_string()))
            }
            LogSource::Session(id) => {
                let (status, lines) = self
                    .sandboxes
                    .session_log_page(id, self.after, LOG_PAGE)
                    .await?;
                let status = status.unwrap_or_else(|| "stopped".into());
                Ok((lines, status != "running", status))
            }
        }
    }

    /// The next piece of the stream, waiting for one; `None` ends it.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        while !self.done {
            let (lines, ended, label) = match self.read().await {
                Ok(r) => r,
                Err(e) => {
                    // The client resumes from the last id it saw.
                    let (LogSource::Build(id) | LogSource::Session(id)) = self.source;
                    tracing::warn!(id = %id, error = %e, "log stream aborted");
                    return None;
                }
            };
            if let Some(last) = lines.last() {
                self.after = last.seq;
                self.last_line = Instant::now();
                self.last_sent = self.last_line;
                let mut out = String::new();
                for l in &lines {
                    sse_event(&mut out, Some(l.seq), None, &l.line);
                }
                return Some(Bytes::from(out));
            }
            if !self.follow || ended {
                self.done = true;
                let mut out = String::new();
                sse_event(&mut out, None, Some("end"), &label);
                return Some(Bytes::from(out));
            }
            if self.opened.elapsed() >= LOG_MAX_STREAM {
                return None;
            }
            if self.last_sent.elapsed() >= LOG_KEEPALIVE {
                self.last_sent = Instant::now();
                return Some(Bytes::from_static(b": keep-alive\n\n"));
            }
            tokio::time::sleep(LOG_POLL).await;
        }
        None
    }
}

/// Appends one SSE event. A line holding line breaks becomes several `data:` lines, which the
/// client joins back with `\n`.
fn sse_event(out: &mut String, id: Option<i64>, event: Option<&str>, data: &str) {
    use std::fmt::Write;
    if let Some(id) = id {
        let _ = writeln!(out, "id: {id}");
    }
    if let Some(event) = event {
        let _ = writeln!(out, "event: {event}");
    }
    let data = if data.contains('\r') {
        std::borrow::Cow::Owned(data.replace("\r\n", "\n"))
    } else {
        std::borrow::Cow::Borrowed(data)
    };
    for part in data.split(['\n', '\r']) {
        let _ = writeln!(out, "data: {part}");
    }
    out.push('\n');
}

/// Cancels a build that has not reached its session yet (queued, cloning, detecting, building,
/// starting). A running build is ended by deleting its session.
#[utoipa::path(post, path = "/api/v1/builds/{id}/cancel", params(("id" = Uuid, Path)),
    responses((status = 200, body = BuildView), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/builds/{id}/cancel")]
pub async fn cancel_build(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<BuildView>, ApiError> {
    caller.require(Permission::UseSandboxes)?;
    let id = id.into_inner();
    let reason = format!("cancelled by {}", caller.key_name);
    let outcome = sandboxes.cancel_build(caller.tenant, id, &reason).await?;
    let b = match outcome {
        CancelOutcome::Cancelled(b) => b,
        CancelOutcome::NotFound => return Err(ApiError::NotFound(format!("build {id}"))),
        CancelOutcome::Refused(b) if b.stage() == Stage::Running => {
            return Err(ApiError::Conflict(format!(
                "build {id} is running: delete its session instead"
            )));
        }
        CancelOutcome::Refused(b) => {
            return Err(ApiError::Conflict(format!(
                "build {id} already ended ({})",
                b.stage
            )));
        }
    };
    tracing::info!(build_id = %id, "build cancelled");
    Ok(web::Json(sandboxes.full_view(caller.tenant, b).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionParams {
    /// running, exited, stopped or expired.
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Sessions of the tenant, newest first.
#[utoipa::path(get, path = "/api/v1/sessions", params(SessionParams), responses((status = 200, body = inline(Page<SessionView>)), (status = 400, body = crate::error::ErrorBody)))]
#[get("/sessions")]
pub async fn list_sessions(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    params: web::Query<SessionParams>,
) -> Result<web::Json<Page<SessionView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let p = params.into_inner();
    let (limit, offset) = page(p.limit, p.offset)?;
    if let Some(s) = &p.status
        && !SESSION_STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::InvalidArgument(format!(
            "status: unknown session status {s:?}"
        )));
    }
    let q = SessionQuery {
        status: p.status,
        limit,
        offset,
    };
    Ok(web::Json(sandboxes.list_sessions(caller.tenant, &q).await?))
}

/// One session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", params(("id" = Uuid, Path)), responses((status = 200, body = SessionView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/sessions/{id}")]
pub async fn get_session(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<SessionView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    Ok(web::Json(
        sandboxes.session(caller.tenant, id.into_inner()).await?,
    ))
}

/// Ends a session: its container is removed and its build becomes `stopped`. A session that
/// already ended is returned as it is.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", params(("id" = Uuid, Path)), responses((status = 200, body = SessionView), (status = 404, body = crate::error::ErrorBody)))]
#[delete("/sessions/{id}")]
pub async fn delete_session(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<SessionView>, ApiError> {
    caller.require(Permission::UseSandboxes)?;
    let id = id.into_inner();
    let reason = format!("deleted by {}", caller.key_name);
    let s = sandboxes
        .stop_session(caller.tenant, id, &reason)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("session {id}")))?;
    tracing::info!(session_id = %id, "session deleted");
    Ok(web::Json(session_view(s)))
}

/// Extends a running session, never past its hard limit (`hard_expires_at`).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/extend", params(("id" = Uuid, Path)), request_body = ExtendSession,
    responses((status = 200, body = SessionView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/sessions/{id}/extend")]
pub async fn extend_session(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<ExtendSession>,
) -> Result<web::Json<SessionView>, ApiError> {
    caller.require(Permission::UseSandboxes)?;
    let id = id.into_inner();
    let max = i64::try_from(sandboxes.ttl.max_ttl_secs).unwrap_or(i64::MAX);
    if !(1..=max).contains(&body.seconds) {
        return Err(ApiError::InvalidArgument(format!(
            "seconds: must be between 1 and {max}"
        )));
    }
    match sandboxes
        .extend_session(caller.tenant, id, body.seconds)
        .await?
    {
        ExtendOutcome::Extended(s) => Ok(web::Json(session_view(s))),
        ExtendOutcome::NotFound => Err(ApiError::NotFound(format!("session {id}"))),
        ExtendOutcome::NotRunning(s) => Err(ApiError::Conflict(format!(
            "session {id} is {}, not running",
            s.status
        ))),
        ExtendOutcome::PastCap { session, over_secs } => {
            let left = (session.hard_expires_at - session.expires_at.max(Utc::now()))
                .num_seconds()
                .max(0);
            Err(ApiError::InvalidArgument(format!(
                "seconds: the session would end {over_secs} s past its hard limit ({}); it can be \
                 extended by at most {left} s",
                session
                    .hard_expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )))
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionLogParams {
    /// Only the last `tail` lines stored (before following).
    tail: Option<i64>,
    /// Only lines after this event id (as `Last-Event-ID`, which it overrides; `tail` is then
    /// ignored).
    after: Option<i64>,
    /// `true`: keep streaming new lines while the session runs. Default `false`: send what is
    /// stored and end.
    follow: Option<bool>,
}

/// The session's own output (its app's stdout and stderr, the newest 20000 lines of every run)
/// as Server-Sent Events: `id: <seq>` and `data: <line>` per line, then `event: end` with the
/// session's status as data once it is sent (or, following, once the session is not running).
#[utoipa::path(get, path = "/api/v1/sessions/{id}/logs", params(("id" = Uuid, Path), SessionLogParams),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[get("/sessions/{id}/logs")]
pub async fn session_logs(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    id: web::Path<Uuid>,
    params: web::Query<SessionLogParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let id = id.into_inner();
    if params.tail.is_some_and(|t| t < 0) {
        return Err(ApiError::InvalidArgument(
            "tail: must be 0 or more lines".into(),
        ));
    }
    sandboxes.session_exists(caller.tenant, id).await?;
    let resumes = params.after.is_some() || req.headers().contains_key("last-event-id");
    let after = match params.tail {
        Some(n) if !resumes => sandboxes.session_log_tail_start(id, n).await?,
        _ => last_event_id(params.after, &req)?,
    };
    Ok(sse_response(LogStream::new(
        sandboxes.into_inner(),
        LogSource::Session(id),
        after,
        params.follow.unwrap_or(false),
    )))
}

/// Restarts a session's app: its container is made again from the build's image (a running
/// app is stopped first). An exited session runs again; the new container is in the session
/// once its worker reports it.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/restart", params(("id" = Uuid, Path)),
    responses((status = 200, body = SessionView), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/sessions/{id}/restart")]
pub async fn restart_session(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<web::Json<SessionView>, ApiError> {
    caller.require(Permission::UseSandboxes)?;
    let id = id.into_inner();
    match sandboxes.restart_session(caller.tenant, id).await? {
        None => Err(ApiError::NotFound(format!("session {id}"))),
        Some((s, false)) => Err(ApiError::Conflict(format!(
            "session {id} is {}: it cannot be restarted",
            s.status
        ))),
        Some((s, true)) => {
            tracing::info!(session_id = %id, restart = s.restarts, "session restart asked");
            Ok(web::Json(session_view(s)))
        }
    }
}

/// A ticket to open one terminal into a running session through the terminal gateway. The
/// gateway checks it without asking this server; it works once and expires quickly.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/terminal", params(("id" = Uuid, Path)),
    responses((status = 201, body = TerminalTicket), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/sessions/{id}/terminal")]
pub async fn terminal_ticket(
    sandboxes: web::Data<Sandboxes>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::UseSandboxes)?;
    let ticket = sandboxes.terminal_ticket(&caller, id.into_inner()).await?;
    Ok(HttpResponse::Created().json(ticket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_never_break_on_line_breaks_in_data() {
        let mut out = String::new();
        sse_event(&mut out, Some(7), None, "a\nb\rc");
        sse_event(&mut out, Some(8), None, "d\r\ne");
        sse_event(&mut out, None, Some("end"), "running");
        assert_eq!(
            out,
            "id: 7\ndata: a\ndata: b\ndata: c\n\nid: 8\ndata: d\ndata: e\n\nevent: end\ndata: running\n\n"
        );
    }
}
