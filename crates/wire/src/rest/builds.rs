//! Repo sandboxes: builds, their sessions and terminal tickets (`/api/v1/builds`,
//! `/api/v1/sessions`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBuild {
    /// `https://`, `http://`, `ssh://`, `git://` or `user@host:path`; no credentials, no local
    /// paths.
    pub repo_url: String,
    /// Branch, tag or commit; the default branch when absent.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// Directory of the repository to build (relative, no `..`).
    pub subdir: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BuildView {
    pub id: Uuid,
    pub repo_url: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub subdir: Option<String>,
    /// queued, cloning, detecting, building, starting, running, failed, expired, cancelled,
    /// stopped.
    pub stage: String,
    pub reason: String,
    /// The detected stack (e.g. `node`, `python`).
    pub stack: Option<String>,
    /// The Dockerfile built: the repository's own or a generated one.
    pub dockerfile: Option<String>,
    pub own_dockerfile: Option<bool>,
    pub image: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When a worker took the job.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub durations: Durations,
    /// The last lines of the log (one build only, not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<Vec<String>>,
    pub session: Option<SessionSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Durations {
    /// From submission until a worker took it (so far, while queued).
    pub queued_ms: Option<i64>,
    /// From a worker taking it until its session started or it ended (so far, while building).
    pub build_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionSummary {
    pub id: Uuid,
    /// running, exited, stopped, expired.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub container_id: String,
    /// The app's exit code once it ended by itself (`exited`).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The app was killed for using more memory than the session may.
    #[serde(default)]
    pub oom_killed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The build's id (one session per build).
    pub id: Uuid,
    pub build_id: Uuid,
    /// running; exited (its app ended by itself: `exit_code`, `oom_killed`, `exited_at`; it can
    /// be restarted until it expires); stopped; expired.
    pub status: String,
    pub container_id: String,
    pub network: String,
    pub created_at: DateTime<Utc>,
    /// When it expires unless extended.
    pub expires_at: DateTime<Utc>,
    /// It is never extended past this.
    pub hard_expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: String,
    /// The exit code of the app's last run, when it ended by itself.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The app's last run was killed for using more memory than the session may.
    #[serde(default)]
    pub oom_killed: bool,
    /// When the app's last run ended by itself.
    #[serde(default)]
    pub exited_at: Option<DateTime<Utc>>,
    /// How many times the session was restarted.
    #[serde(default)]
    pub restarts: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendSession {
    /// Seconds added to the later of now and the current expiry.
    pub seconds: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TerminalTicket {
    /// Single use, valid for a few seconds: connect right away.
    pub ticket: String,
    /// WebSocket URL of the terminal, ticket included.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}
