//! Repo sandboxes: what a build is (its source, its stages) and the messages between the
//! api-server and build workers. Pure types and validation; the queue names, topology and
//! Docker labels are contracts of `labwright-wire` (`bus`, `docker`).
//!
//! Flow: the api-server stores a build and queues a [`BuildJob`] (outbox → the jobs exchange);
//! a worker takes it (manual ack, prefetch), and reports progress as [`BuildUpdate`]s on the
//! events exchange, which the api-server stores. The api-server owns sessions: it asks workers to
//! stop one, and regularly tells them which sessions are live, with [`SessionControl`] messages
//! on the sessions exchange.

pub mod address;
pub mod source;
pub mod stage;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validate::ValidationError;
use source::RepoUrl;

/// Where a build is. `queued → cloning → detecting → building → starting → running`, ending
/// `failed`, `expired` (its session timed out), `cancelled` (before it ran) or `stopped` (its
/// session was ended by a user or its container exited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Queued,
    Cloning,
    Detecting,
    Building,
    Starting,
    Running,
    Failed,
    Expired,
    Cancelled,
    Stopped,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::Queued,
        Stage::Cloning,
        Stage::Detecting,
        Stage::Building,
        Stage::Starting,
        Stage::Running,
        Stage::Failed,
        Stage::Expired,
        Stage::Cancelled,
        Stage::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Cloning => "cloning",
            Stage::Detecting => "detecting",
            Stage::Building => "building",
            Stage::Starting => "starting",
            Stage::Running => "running",
            Stage::Failed => "failed",
            Stage::Expired => "expired",
            Stage::Cancelled => "cancelled",
            Stage::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Stage::Failed | Stage::Expired | Stage::Cancelled | Stage::Stopped
        )
    }

    /// Stages a worker reports while it works on a job.
    pub fn is_worker_stage(self) -> bool {
        matches!(
            self,
            Stage::Cloning
                | Stage::Detecting
                | Stage::Building
                | Stage::Starting
                | Stage::Running
                | Stage::Failed
                | Stage::Stopped
        )
    }
}

/// A build for a worker to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildJob {
    pub build_id: Uuid,
    pub tenant_id: Uuid,
    pub repo_url: RepoUrl,
    #[serde(default)]
    pub git_ref: Option<String>,
    #[serde(default)]
    pub subdir: Option<String>,
    /// Seconds the session may live before it is extended (the api-server enforces it).
    pub session_ttl_secs: u64,
    /// Seconds from start after which the worker removes the session whatever happens.
    pub hard_ttl_secs: u64,
}

impl BuildJob {
    /// Checks a job as it comes off the queue (the api-server checked it too; a worker trusts
    /// nothing it did not check itself).
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(r) = &self.git_ref {
            source::validate_ref(r)?;
        }
        if let Some(s) = &self.subdir {
            source::validate_subdir(s)?;
        }
        if self.session_ttl_secs == 0 || self.hard_ttl_secs < self.session_ttl_secs {
            return Err(ValidationError::new(
                "session_ttl_secs",
                "must be positive and at most hard_ttl_secs",
            ));
        }
        Ok(())
    }
}

/// Progress of a build, from the worker that has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildUpdate {
    pub build_id: Uuid,
    pub tenant_id: Uuid,
    /// Identifies one worker's attempt at the job (a redelivered job gets a new one), so log
    /// lines resent after a lost confirm are stored once.
    pub attempt: Uuid,
    pub body: UpdateBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UpdateBody {
    Stage {
        stage: Stage,
        #[serde(default)]
        reason: String,
    },
    Detected {
        stack: String,
        dockerfile: String,
        own_dockerfile: bool,
    },
    Image {
        image: String,
    },
    /// Log lines `first_line..first_line + lines.len()` of this attempt.
    Log {
        first_line: u64,
        lines: Vec<String>,
    },
    /// The session's container is up.
    Session {
        container_id: String,
        network: String,
    },
    /// The session's container stopped by itself (its process exited, or was killed for
    /// memory): not one the platform removed. `at_unix_ms` is when the engine saw it end.
    SessionExited {
        container_id: String,
        exit_code: i64,
        oom_killed: bool,
        at_unix_ms: i64,
    },
    /// The session's container was made again for its restart number `restart`.
    SessionRestarted {
        container_id: String,
        restart: u32,
    },
    /// Output lines `first_line..first_line + lines.len()` of the session's container
    /// `container_id` (stdout and stderr as they came).
    SessionLog {
        container_id: String,
        first_line: u64,
        lines: Vec<String>,
    },
}

/// What a session's app ending by itself says to people (the session's end reason, the
/// terminal's close reason).
pub fn exit_summary(exit_code: i64, oom_killed: bool) -> String {
    if oom_killed {
        format!("the app ran out of memory and was killed (exit code {exit_code})")
    } else if (129..160).contains(&exit_code) {
        format!(
            "the app was killed by signal {} (exit code {exit_code})",
            exit_code - 128
        )
    } else {
        format!("the app exited with code {exit_code}")
    }
}

fn check_container_id(container_id: &str) -> Result<(), ValidationError> {
    if container_id.is_empty()
        || container_id.len() > 128
        || !container_id.chars().all(|c| c.is_ascii_hexdigit())
    {
        return Err(ValidationError::new("container_id", "not a container id"));
    }
    Ok(())
}

/// Largest accepted update (a batch of log lines, a Dockerfile).
pub const MAX_UPDATE_BYTES: usize = 1 << 20;

impl BuildUpdate {
    /// Checks an update as the api-server receives it.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match &self.body {
            UpdateBody::Stage { stage, reason } => {
                if !stage.is_worker_stage() {
                    return Err(ValidationError::new(
                        "stage",
                        format!("{} is not reported by workers", stage.as_str()),
                    ));
                }
                if reason.len() > 4096 {
                    return Err(ValidationError::new("reason", "longer than 4096 bytes"));
                }
            }
            UpdateBody::Detected {
                stack, dockerfile, ..
            } => {
                crate::validate::slug("stack", stack, 32)?;
                if dockerfile.len() > 256 * 1024 {
                    return Err(ValidationError::new("dockerfile", "longer than 256 KiB"));
                }
            }
            UpdateBody::Image { image } => {
                if image.is_empty() || image.len() > 255 || image.chars().any(char::is_control) {
                    return Err(ValidationError::new("image", "not an image reference"));
                }
            }
            UpdateBody::Log { lines, .. } => {
                if lines.len() > 10_000 {
                    return Err(ValidationError::new("lines", "more than 10000 lines"));
                }
            }
            UpdateBody::Session {
                container_id,
                network,
            } => {
                check_container_id(container_id)?;
                crate::validate::slug("network", network, 128)?;
            }
            UpdateBody::SessionExited { container_id, .. }
            | UpdateBody::SessionRestarted { container_id, .. } => {
                check_container_id(container_id)?;
            }
            UpdateBody::SessionLog {
                container_id,
                lines,
                ..
            } => {
                check_container_id(container_id)?;
                if lines.len() > 10_000 {
                    return Err(ValidationError::new("lines", "more than 10000 lines"));
                }
            }
        }
        Ok(())
    }
}

/// From the api-server to every worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionControl {
    /// Remove this session's container and network now (deleted or expired).
    Stop { session_id: Uuid, reason: String },
    /// Make the session's container again from its image (restart number `restart`; a worker
    /// whose container already carries that number or a later one does nothing).
    Restart { session_id: Uuid, restart: u32 },
    /// The sessions alive at `at_unix`: a worker removes labelled containers that are not among
    /// them (and were created before `at_unix`), so a crash anywhere leaves nothing behind.
    Live {
        session_ids: Vec<Uuid>,
        at_unix: i64,
    },
}

/// Statuses of a session: `running`; `exited` (its app ended by itself; the container stays
/// until the session expires, so it can be restarted and its output read); `stopped` (ended by
/// a user or with its build); `expired`.
pub const SESSION_STATUSES: [&str; 4] = ["running", "exited", "stopped", "expired"];

/// Keeps the last `max` lines of a log (for the build's summary).
pub fn log_tail(lines: &[String], max: usize) -> Vec<String> {
    lines[lines.len().saturating_sub(max)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_round_trip_and_know_their_end() {
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).expect("json");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert!(Stage::Failed.is_final() && !Stage::Running.is_final());
        assert_eq!(Stage::parse("exploded"), None);
    }

    #[test]
    fn jobs_from_the_queue_are_checked() {
        let job = BuildJob {
            build_id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            repo_url: RepoUrl::parse("https://example.com/org/repo.git").expect("url"),
            git_ref: Some("main".into()),
            subdir: None,
            session_ttl_secs: 600,
            hard_ttl_secs: 3600,
        };
        assert!(job.validate().is_ok());
        let bad_ref = BuildJob {
            git_ref: Some("--upload-pack=x".into()),
            ..job.clone()
        };
        assert!(bad_ref.validate().is_err());
        let json = serde_json::to_string(&job)
            .expect("json")
            .replace("https://example.com/org/repo.git", "file:///etc");
        assert!(
            serde_json::from_str::<BuildJob>(&json).is_err(),
            "a job with a local URL never deserializes"
        );
    }

    #[test]
    fn updates_are_checked() {
        let update = |body| BuildUpdate {
            build_id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            attempt: Uuid::new_v4(),
            body,
        };
        assert!(
            update(UpdateBody::Stage {
                stage: Stage::Queued,
                reason: String::new()
            })
            .validate()
            .is_err(),
            "workers do not queue builds"
        );
        assert!(
            update(UpdateBody::Session {
                container_id: "abc123".into(),
                network: "lw-s-1".into()
            })
            .validate()
            .is_ok()
        );
        assert!(
            update(UpdateBody::Session {
                container_id: "../../x".into(),
                network: "lw".into()
            })
            .validate()
            .is_err()
        );
        let json = r#"{"build_id":"00000000-0000-0000-0000-000000000000","tenant_id":"00000000-0000-0000-0000-000000000000","attempt":"00000000-0000-0000-0000-000000000000","body":{"kind":"log","first_line":0,"lines":["a","b"]}}"#;
        let u: BuildUpdate = serde_json::from_str(json).expect("parse");
        assert!(matches!(u.body, UpdateBody::Log { ref lines, .. } if lines.len() == 2));
        assert!(
            update(UpdateBody::SessionExited {
                container_id: "abc".into(),
                exit_code: 3,
                oom_killed: false,
                at_unix_ms: 0
            })
            .validate()
            .is_ok()
        );
        assert!(
            update(UpdateBody::SessionLog {
                container_id: "x y".into(),
                first_line: 0,
                lines: vec![]
            })
            .validate()
            .is_err()
        );
        assert_eq!(exit_summary(3, false), "the app exited with code 3");
        assert!(exit_summary(137, true).contains("out of memory"));
        assert!(exit_summary(137, false).contains("signal 9"));
        assert_eq!(
            log_tail(&["a".into(), "b".into(), "c".into()], 2),
            vec!["b", "c"]
        );
    }
}
