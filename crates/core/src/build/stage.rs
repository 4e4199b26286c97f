//! The build state machine as a pure function: given what is stored about a build (its
//! [`Stage`] and the worker attempt that has it) and one worker's [`BuildUpdate`], [`decide`]
//! says what to store, or why the update is dropped. The api-server applies the decision in one
//! transaction with the build row locked; nothing here touches storage.
//!
//! The rules:
//! - An ended build (a final stage) never changes stage again, and takes no detection, image
//!   or new session; a session that comes up anyway is stopped.
//! - Each worker attempt (a redelivered job gets a new one) moves forward only:
//!   `queued → cloning → detecting → building → starting → running`, then `failed` or `stopped`.
//!   A stage at or before the current one is a resend and is dropped; stages may be skipped.
//! - Another attempt takes over a build only by reporting `cloning` (the first thing a worker
//!   does); anything else from an attempt that is not the build's current one is stale.
//! - Log lines are stored for whichever attempt sent them (keyed by attempt and line number, so
//!   a resent batch is stored once), also after the build ended.

use uuid::Uuid;

use super::{BuildUpdate, Stage, UpdateBody};

/// What is stored about a build when an update for it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildState {
    pub stage: Stage,
    /// The worker attempt that last moved the build; none until a worker reported a stage.
    pub attempt: Option<Uuid>,
}

/// What to do with one worker update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Move the build to `stage` with `reason`, and make the update's attempt the current one.
    /// `end_session`: the stage is final; end the build's running session, if any, with this
    /// reason (the worker ended it itself, so no stop message is needed).
    SetStage {
        stage: Stage,
        reason: &'a str,
        end_session: Option<String>,
    },
    /// Store what the worker detected in the repository.
    SetDetected {
        stack: &'a str,
        dockerfile: &'a str,
        own_dockerfile: bool,
    },
    /// Store the image the worker built.
    SetImage { image: &'a str },
    /// Store log lines `first_line..first_line + lines.len()` of the update's attempt
    /// (`lines` is never empty).
    AppendLog {
        first_line: i64,
        lines: &'a [String],
    },
    /// Nothing to store, and nothing wrong (an empty batch of log lines).
    Nothing,
    /// Record the build's session as running in this container and network.
    StartSession {
        container_id: &'a str,
        network: &'a str,
    },
    /// A session came up for a build that already ended: tell the workers to remove it, with
    /// this reason.
    StopLateSession { reason: String },
    /// The session's container `container_id` ended by itself: the session becomes `exited` if
    /// it is running in that container (an exit of a container it no longer runs in is stale).
    SessionExited {
        container_id: &'a str,
        exit_code: i64,
        oom_killed: bool,
        at_unix_ms: i64,
    },
    /// The session runs again, in `container_id`, if `restart` is its latest restart.
    SessionRestarted { container_id: &'a str, restart: u32 },
    /// Store output lines of the session's container `container_id` (`lines` is never empty).
    AppendSessionLog {
        container_id: &'a str,
        first_line: i64,
        lines: &'a [String],
    },
    /// A valid update that does not apply (stale, late, a resend); dropped.
    Ignore(&'static str),
}

/// Line numbers `first..first + len` as stored, or why not.
fn line_range(first_line: u64, lines: &[String]) -> Result<Option<i64>, &'static str> {
    let Ok(first) = i64::try_from(first_line) else {
        return Err("line number out of range");
    };
    if lines.is_empty() {
        return Ok(None);
    }
    let fits = i64::try_from(lines.len())
        .ok()
        .and_then(|n| first.checked_add(n))
        .is_some();
    if !fits {
        return Err("line number out of range");
    }
    Ok(Some(first))
}

/// Decides what one (validated) worker update does to a build. See the module documentation
/// for the rules.
pub fn decide(build: BuildState, update: &BuildUpdate) -> Decision<'_> {
    let current = build.stage;
    let current_attempt = build.attempt.is_none_or(|a| a == update.attempt);
    match &update.body {
        UpdateBody::Stage { stage, reason } => {
            let stage = *stage;
            // `BuildUpdate::validate` refuses these already; a decision never depends on that.
            if !stage.is_worker_stage() {
                return Decision::Ignore("a stage workers do not report");
            }
            if current.is_final() {
                return Decision::Ignore("the build already ended");
            }
            if !current_attempt && stage != Stage::Cloning {
                return Decision::Ignore("a stage of an earlier attempt");
            }
            if current_attempt && rank(stage) <= rank(current) {
                return Decision::Ignore("a stage already passed");
            }
            let end_session = stage.is_final().then(|| {
                if reason.is_empty() {
                    format!("the build {}", stage.as_str())
                } else {
                    reason.clone()
                }
            });
            Decision::SetStage {
                stage,
                reason,
                end_session,
            }
        }
        UpdateBody::Detected {
            stack,
            dockerfile,
            own_dockerfile,
        } => {
            if current.is_final() || !current_attempt {
                return Decision::Ignore("detection of an ended build or earlier attempt");
            }
            Decision::SetDetected {
                stack,
                dockerfile,
                own_dockerfile: *own_dockerfile,
            }
        }
        UpdateBody::Image { image } => {
            if current.is_final() || !current_attempt {
                return Decision::Ignore("image of an ended build or earlier attempt");
            }
            Decision::SetImage { image }
        }
        UpdateBody::Log { first_line, lines } => match line_range(*first_line, lines) {
            Err(why) => Decision::Ignore(why),
            Ok(None) => Decision::Nothing,
            Ok(Some(first)) => Decision::AppendLog {
                first_line: first,
                lines,
            },
        },
        // Sessions outlive the attempt that started them: these hold whatever the build's stage
        // and attempt; the session's own state (status, container) decides when stored.
        UpdateBody::SessionExited {
            container_id,
            exit_code,
            oom_killed,
            at_unix_ms,
        } => Decision::SessionExited {
            container_id,
            exit_code: *exit_code,
            oom_killed: *oom_killed,
            at_unix_ms: *at_unix_ms,
        },
        UpdateBody::SessionRestarted {
            container_id,
            restart,
        } => Decision::SessionRestarted {
            container_id,
            restart: *restart,
        },
        UpdateBody::SessionLog {
            container_id,
            first_line,
            lines,
        } => match line_range(*first_line, lines) {
            Err(why) => Decision::Ignore(why),
            Ok(None) => Decision::Nothing,
            Ok(Some(first)) => Decision::AppendSessionLog {
                container_id,
                first_line: first,
                lines,
            },
        },
        UpdateBody::Session {
            container_id,
            network,
        } => {
            if current.is_final() {
                return Decision::StopLateSession {
                    reason: format!("the build is {}", current.as_str()),
                };
            }
            if !current_attempt {
                return Decision::Ignore("a session of an earlier attempt");
            }
            Decision::StartSession {
                container_id,
                network,
            }
        }
    }
}

/// Order of the stages within one attempt; the final ones all come last.
fn rank(s: Stage) -> u8 {
    match s {
        Stage::Queued => 0,
        Stage::Cloning => 1,
        Stage::Detecting => 2,
        Stage::Building => 3,
        Stage::Starting => 4,
        Stage::Running => 5,
        Stage::Failed | Stage::Expired | Stage::Cancelled | Stage::Stopped => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::{Stage::*, *};

    const A1: Uuid = Uuid::from_u128(1);
    const A2: Uuid = Uuid::from_u128(2);

    fn update(attempt: Uuid, body: UpdateBody) -> BuildUpdate {
        BuildUpdate {
            build_id: Uuid::from_u128(10),
            tenant_id: Uuid::from_u128(20),
            attempt,
            body,
        }
    }

    fn stage_update(attempt: Uuid, stage: Stage, reason: &str) -> BuildUpdate {
        update(
            attempt,
            UpdateBody::Stage {
                stage,
                reason: reason.into(),
            },
        )
    }

    fn state(stage: Stage, attempt: Option<Uuid>) -> BuildState {
        BuildState { stage, attempt }
    }

    /// Every stage move the current attempt may make (from, to), written out.
    const FORWARD: [(Stage, Stage); 25] = [
        (Queued, Cloning),
        (Queued, Detecting),
        (Queued, Building),
        (Queued, Starting),
        (Queued, Running),
        (Queued, Failed),
        (Queued, Stopped),
        (Cloning, Detecting),
        (Cloning, Building),
        (Cloning, Starting),
        (Cloning, Running),
        (Cloning, Failed),
        (Cloning, Stopped),
        (Detecting, Building),
        (Detecting, Starting),
        (Detecting, Running),
        (Detecting, Failed),
        (Detecting, Stopped),
        (Building, Starting),
        (Building, Running),
        (Building, Failed),
        (Building, Stopped),
        (Starting, Running),
        (Starting, Failed),
        (Starting, Stopped),
    ];

    /// (Running, Failed) and (Running, Stopped) too: 27 moves for the current attempt.
    fn forward(from: Stage, to: Stage) -> bool {
        FORWARD.contains(&(from, to)) || (from == Running && matches!(to, Failed | Stopped))
    }

    #[test]
    fn every_stage_pair_for_the_current_attempt() {
        let workers = [
            Cloning, Detecting, Building, Starting, Running, Failed, Stopped,
        ];
        // Whether the build has an attempt yet or it is this one, the rules are the same.
        for attempt in [None, Some(A1)] {
            let mut moves = 0;
            for from in Stage::ALL {
                for to in Stage::ALL {
                    let u = stage_update(A1, to, "why");
                    let got = decide(state(from, attempt), &u);
                    let expected = if !workers.contains(&to) {
                        Decision::Ignore("a stage workers do not report")
                    } else if from.is_final() {
                        Decision::Ignore("the build already ended")
                    } else if forward(from, to) {
                        moves += 1;
                        Decision::SetStage {
                            stage: to,
                            reason: "why",
                            end_session: to.is_final().then(|| "why".to_string()),
                        }
                    } else {
                        Decision::Ignore("a stage already passed")
                    };
                    assert_eq!(got, expected, "{from:?} -> {to:?} ({attempt:?})");
                }
            }
            assert_eq!(moves, 27);
        }
    }

    #[test]
    fn every_stage_pair_for_another_attempt() {
        for from in Stage::ALL {
            for to in Stage::ALL {
                let u = stage_update(A2, to, "");
                let got = decide(state(from, Some(A1)), &u);
                let expected = if !to.is_worker_stage() {
                    Decision::Ignore("a stage workers do not report")
                } else if from.is_final() {
                    Decision::Ignore("the build already ended")
                } else if to == Cloning {
                    // A redelivered job starts over, whatever the earlier attempt reached.
                    Decision::SetStage {
                        stage: Cloning,
                        reason: "",
                        end_session: None,
                    }
                } else {
                    Decision::Ignore("a stage of an earlier attempt")
                };
                assert_eq!(got, expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_final_stage_ends_the_session_with_its_reason_or_a_default() {
        assert_eq!(
            decide(state(Running, Some(A1)), &stage_update(A1, Stopped, "")),
            Decision::SetStage {
                stage: Stopped,
                reason: "",
                end_session: Some("the build stopped".into()),
            }
        );
        assert_eq!(
            decide(state(Building, Some(A1)), &stage_update(A1, Failed, "")),
            Decision::SetStage {
                stage: Failed,
                reason: "",
                end_session: Some("the build failed".into()),
            }
        );
        assert_eq!(
            decide(state(Starting, None), &stage_update(A1, Failed, "no space")),
            Decision::SetStage {
                stage: Failed,
                reason: "no space",
                end_session: Some("no space".into()),
            }
        );
    }

    #[test]
    fn detection_image_and_session_only_for_the_current_attempt_of_a_live_build() {
        let detected = UpdateBody::Detected {
            stack: "rust".into(),
            dockerfile: "FROM x".into(),
            own_dockerfile: true,
        };
        let image = UpdateBody::Image {
            image: "lw/b:1".into(),
        };
        let session = UpdateBody::Session {
            container_id: "abc123".into(),
            network: "lw-s".into(),
        };
        for from in Stage::ALL {
            for (build_attempt, attempt) in [(None, A1), (Some(A1), A1), (Some(A1), A2)] {
                let b = state(from, build_attempt);
                let current = attempt == A1;
                let live = !from.is_final();

                let u = update(attempt, detected.clone());

                let got = decide(b, &u);
                let expected = if live && current {
                    Decision::SetDetected {
                        stack: "rust",
                        dockerfile: "FROM x",
                        own_dockerfile: true,
                    }
                } else {
                    Decision::Ignore("detection of an ended build or earlier attempt")
                };
                assert_eq!(got, expected, "detected in {from:?}");

                let u = update(attempt, image.clone());

                let got = decide(b, &u);
                let expected = if live && current {
                    Decision::SetImage { image: "lw/b:1" }
                } else {
                    Decision::Ignore("image of an ended build or earlier attempt")
                };
                assert_eq!(got, expected, "image in {from:?}");

                let u = update(attempt, session.clone());

                let got = decide(b, &u);
                let expected = if !live {
                    // Whichever attempt it came from: the container must go.
                    Decision::StopLateSession {
                        reason: format!("the build is {}", from.as_str()),
                    }
                } else if current {
                    Decision::StartSession {
                        container_id: "abc123",
                        network: "lw-s",
                    }
                } else {
                    Decision::Ignore("a session of an earlier attempt")
                };
                assert_eq!(got, expected, "session in {from:?}");
            }
        }
    }

    #[test]
    fn log_lines_are_stored_for_any_attempt_in_any_stage_within_range() {
        let log = |first_line: u64, lines: Vec<String>| UpdateBody::Log { first_line, lines };
        let lines = vec!["a".to_string(), "b".to_string()];
        for from in Stage::ALL {
            for attempt in [A1, A2] {
                let b = state(from, Some(A1));
                let u = update(attempt, log(7, lines.clone()));
                assert_eq!(
                    decide(b, &u),
                    Decision::AppendLog {
                        first_line: 7,
                        lines: &lines,
                    },
                    "{from:?}"
                );
                assert_eq!(
                    decide(b, &update(attempt, log(7, vec![]))),
                    Decision::Nothing
                );
            }
        }
        let b = state(Running, Some(A1));
        let out_of_range = Decision::Ignore("line number out of range");
        assert_eq!(decide(b, &update(A1, log(u64::MAX, vec![]))), out_of_range);
        assert_eq!(
            decide(b, &update(A1, log(i64::MAX as u64 + 1, lines.clone()))),
            out_of_range
        );
        assert_eq!(
            decide(b, &update(A1, log(i64::MAX as u64 - 1, lines.clone()))),
            out_of_range,
            "the last line would not have a number"
        );
        assert_eq!(
            decide(b, &update(A1, log(i64::MAX as u64 - 2, lines.clone()))),
            Decision::AppendLog {
                first_line: i64::MAX - 2,
                lines: &lines,
            }
        );
    }

    #[test]
    fn session_updates_hold_in_any_stage_and_for_any_attempt() {
        let lines = vec!["out".to_string()];
        for from in Stage::ALL {
            for attempt in [A1, A2, Uuid::nil()] {
                let b = state(from, Some(A1));
                let exited = UpdateBody::SessionExited {
                    container_id: "c1".into(),
                    exit_code: 3,
                    oom_killed: false,
                    at_unix_ms: 5,
                };
                assert_eq!(
                    decide(b, &update(attempt, exited)),
                    Decision::SessionExited {
                        container_id: "c1",
                        exit_code: 3,
                        oom_killed: false,
                        at_unix_ms: 5
                    }
                );
                let restarted = UpdateBody::SessionRestarted {
                    container_id: "c2".into(),
                    restart: 1,
                };
                assert_eq!(
                    decide(b, &update(attempt, restarted)),
                    Decision::SessionRestarted {
                        container_id: "c2",
                        restart: 1
                    }
                );
                let log = |first_line, lines: Vec<String>| UpdateBody::SessionLog {
                    container_id: "c1".into(),
                    first_line,
                    lines,
                };
                assert_eq!(
                    decide(b, &update(attempt, log(2, lines.clone()))),
                    Decision::AppendSessionLog {
                        container_id: "c1",
                        first_line: 2,
                        lines: &lines
                    }
                );
                assert_eq!(
                    decide(b, &update(attempt, log(2, vec![]))),
                    Decision::Nothing
                );
                assert_eq!(
                    decide(b, &update(attempt, log(u64::MAX, lines.clone()))),
                    Decision::Ignore("line number out of range")
                );
            }
        }
    }
}
