//! The lifecycle of an execution (one test case run on one device, as the platform records it):
//! [`ExecutionStatus`], its string forms (the database column and the REST views use them) and
//! the transitions between them.
//!
//! Its own module rather than part of [`crate::run`]: `run` drives a device through a test case
//! on a host and knows nothing of queues, leases or hosts; this is the platform's record of
//! where a run is, shared by the api-server (database and REST), its clients and later the wire
//! views.
//!
//! ```text
//! queued ──lease──▶ dispatched ──accepted / first step──▶ running
//!   ▲                   │                                    │
//!   └──host busy────────┘                                    │
//! queued, dispatched, running ──end report, cancel, error, host lost──▶ passed | failed |
//!                                                            error | cancelled | interrupted
//! ```
//!
//! A final status never changes again. An execution is *active* (holds its device's lease) while
//! `dispatched` or `running`; `queued` is neither active nor final.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Where an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Waiting for its device (created; or put back because its host was busy).
    Queued,
    /// Its device is leased to it and the run is on its way to the host.
    Dispatched,
    /// The host accepted the run (or reported its first step).
    Running,
    /// Every step passed.
    Passed,
    /// A step failed.
    Failed,
    /// The run could not be carried out (the host erred, never accepted it, it could not start).
    Error,
    /// Cancelled by a user, before or during the run.
    Cancelled,
    /// The host went away mid-run and did not come back in time, or restarted and lost the run.
    Interrupted,
}

/// A string that names no [`ExecutionStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown execution status {0:?}")]
pub struct UnknownExecutionStatus(pub String);

/// A change of status the platform never makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an execution cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: ExecutionStatus,
    pub to: ExecutionStatus,
}

impl ExecutionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ExecutionStatus; 8] = [
        ExecutionStatus::Queued,
        ExecutionStatus::Dispatched,
        ExecutionStatus::Running,
        ExecutionStatus::Passed,
        ExecutionStatus::Failed,
        ExecutionStatus::Error,
        ExecutionStatus::Cancelled,
        ExecutionStatus::Interrupted,
    ];

    /// The statuses that hold the device's lease (at most one execution per device is in one).
    pub const ACTIVE: &'static [ExecutionStatus] =
        &[ExecutionStatus::Dispatched, ExecutionStatus::Running];

    /// The statuses an execution ends in; they never change again.
    pub const FINAL: &'static [ExecutionStatus] = &[
        ExecutionStatus::Passed,
        ExecutionStatus::Failed,
        ExecutionStatus::Error,
        ExecutionStatus::Cancelled,
        ExecutionStatus::Interrupted,
    ];

    /// The statuses an execution can still leave: `queued` and the active ones.
    pub const NOT_FINAL: &'static [ExecutionStatus] = &[
        ExecutionStatus::Queued,
        ExecutionStatus::Dispatched,
        ExecutionStatus::Running,
    ];

    /// The status of a new execution.
    pub const INITIAL: ExecutionStatus = ExecutionStatus::Queued;

    /// The stored and displayed form (`"queued"`, `"dispatched"`, ...), the same as serde's.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "queued",
            ExecutionStatus::Dispatched => "dispatched",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Passed => "passed",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Error => "error",
            ExecutionStatus::Cancelled => "cancelled",
            ExecutionStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the execution ended (one of [`Self::FINAL`]).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Passed
                | ExecutionStatus::Failed
                | ExecutionStatus::Error
                | ExecutionStatus::Cancelled
                | ExecutionStatus::Interrupted
        )
    }

    /// Whether the execution holds its device's lease (one of [`Self::ACTIVE`]).
    pub const fn is_active(self) -> bool {
        matches!(self, ExecutionStatus::Dispatched | ExecutionStatus::Running)
    }

    /// Whether the platform moves an execution from `self` to `next`. A status never "becomes"
    /// itself (a step reported while `running` keeps it `running` without a transition).
    ///
    /// These are exactly the moves the api-server makes:
    /// - `queued → dispatched`: the dispatcher leases the device to the oldest queued run;
    /// - `dispatched → running`: the host accepted the run, or reported its first step;
    /// - `dispatched → queued`: the host was busy, the run waits again;
    /// - any of [`Self::NOT_FINAL`] → any of [`Self::FINAL`]: the host's end report
    ///   (`passed`, `failed`, `error`, `cancelled`), a cancel (before dispatch, or while the
    ///   host is not connected), a run that could not start or that the host never accepted
    ///   (`error`), a host lost mid-run or restarted (`interrupted`).
    pub const fn can_become(self, next: ExecutionStatus) -> bool {
        use ExecutionStatus::{Dispatched, Queued, Running};
        match (self, next) {
            (Queued, Dispatched) | (Dispatched, Running) | (Dispatched, Queued) => true,
            (Queued | Dispatched | Running, to) => to.is_final(),
            _ => false,
        }
    }

    /// `next` if [`Self::can_become`] allows it.
    pub fn transition(self, next: ExecutionStatus) -> Result<ExecutionStatus, IllegalTransition> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(IllegalTransition {
                from: self,
                to: next,
            })
        }
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = UnknownExecutionStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExecutionStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownExecutionStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::{ExecutionStatus::*, *};

    /// Every legal move, written out (not derived from the code under test).
    const LEGAL: [(ExecutionStatus, ExecutionStatus); 18] = [
        (Queued, Dispatched),
        (Queued, Passed),
        (Queued, Failed),
        (Queued, Error),
        (Queued, Cancelled),
        (Queued, Interrupted),
        (Dispatched, Queued),
        (Dispatched, Running),
        (Dispatched, Passed),
        (Dispatched, Failed),
        (Dispatched, Error),
        (Dispatched, Cancelled),
        (Dispatched, Interrupted),
        (Running, Passed),
        (Running, Failed),
        (Running, Error),
        (Running, Cancelled),
        (Running, Interrupted),
    ];

    #[test]
    fn every_pair_is_legal_exactly_when_listed() {
        let mut checked = 0;
        for from in ExecutionStatus::ALL {
            for to in ExecutionStatus::ALL {
                let legal = LEGAL.contains(&(from, to));
                assert_eq!(from.can_become(to), legal, "{from} -> {to}");
                match from.transition(to) {
                    Ok(next) => {
                        assert!(legal, "{from} -> {to} accepted");
                        assert_eq!(next, to);
                    }
                    Err(e) => {
                        assert!(!legal, "{from} -> {to} refused");
                        assert_eq!(e, IllegalTransition { from, to });
                        assert_eq!(
                            e.to_string(),
                            format!("an execution cannot go from {from} to {to}")
                        );
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 64);
    }

    #[test]
    fn final_statuses_never_change_and_nothing_returns_to_dispatched_or_running() {
        for from in ExecutionStatus::FINAL {
            assert!(ExecutionStatus::ALL.iter().all(|to| !from.can_become(*to)));
        }
        assert!(!Running.can_become(Dispatched) && !Running.can_become(Queued));
        assert!(
            !Queued.can_become(Running),
            "a run is dispatched before it runs"
        );
    }

    #[test]
    fn string_forms_are_the_stored_ones() {
        // The CHECK constraint of `executions.status` in the migrations, in its order.
        let stored = [
            "queued",
            "dispatched",
            "running",
            "passed",
            "failed",
            "error",
            "cancelled",
            "interrupted",
        ];
        for (s, text) in ExecutionStatus::ALL.into_iter().zip(stored) {
            assert_eq!(s.as_str(), text);
            assert_eq!(s.to_string(), text);
            assert_eq!(text.parse::<ExecutionStatus>(), Ok(s));
            let json = serde_json::to_string(&s).expect("json");
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<ExecutionStatus>(&json).expect("parse"),
                s
            );
        }
        for bad in ["", "Queued", "RUNNING", "done", " passed"] {
            assert_eq!(
                bad.parse::<ExecutionStatus>(),
                Err(UnknownExecutionStatus(bad.to_string()))
            );
            assert!(serde_json::from_str::<ExecutionStatus>(&format!("\"{bad}\"")).is_err());
        }
        assert_eq!(
            "done".parse::<ExecutionStatus>().map_err(|e| e.to_string()),
            Err("unknown execution status \"done\"".to_string())
        );
    }

    #[test]
    fn groups_match_their_predicates() {
        let strs = |g: &[ExecutionStatus]| g.iter().map(|s| s.as_str()).collect::<Vec<_>>();
        // The api-server's arrays today.
        assert_eq!(strs(ExecutionStatus::ACTIVE), ["dispatched", "running"]);
        assert_eq!(
            strs(ExecutionStatus::FINAL),
            ["passed", "failed", "error", "cancelled", "interrupted"]
        );
        assert_eq!(
            strs(ExecutionStatus::NOT_FINAL),
            ["queued", "dispatched", "running"]
        );
        for s in ExecutionStatus::ALL {
            assert_eq!(s.is_active(), ExecutionStatus::ACTIVE.contains(&s), "{s}");
            assert_eq!(s.is_final(), ExecutionStatus::FINAL.contains(&s), "{s}");
            assert_eq!(
                !s.is_final(),
                ExecutionStatus::NOT_FINAL.contains(&s),
                "{s}"
            );
        }
        assert!(!ExecutionStatus::INITIAL.is_active() && !ExecutionStatus::INITIAL.is_final());
    }
}
