//! Device health: what a host's periodic checks of one device say about it, and how the checks of
//! its parts combine into one [`Health`] with a reason a person can act on.
//!
//! Pure: the host-agent probes the device's controllers (a frame, the capture counter, audio, the
//! console, the power switch) and hands what it saw to [`judge_video`], [`judge_audio`], ... and
//! the findings to [`assess`]. The rules:
//! - every part that was checked works → `healthy` (a device with nothing to check is healthy);
//! - some parts fail → `degraded`, the reason lists each failing part (`console: ...`);
//! - every checked part fails → `unhealthy` (nothing of the device can be used).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{controller::ControlError, validate::ValidationError};

/// The health of a device, as its host last checked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Health {
    pub const ALL: [Health; 3] = [Health::Healthy, Health::Degraded, Health::Unhealthy];

    /// The string of the database column, the REST views and the events.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Health {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Health::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| ValidationError::new("health", "must be healthy, degraded or unhealthy"))
    }
}

/// The longest reason stored and sent (longer ones are cut on a character boundary).
pub const MAX_REASON_LEN: usize = 1000;

/// A part of a device that a health check looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Video,
    Audio,
    Console,
    Remote,
    Power,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Video => "video",
            Part::Audio => "audio",
            Part::Console => "console",
            Part::Remote => "remote",
            Part::Power => "power",
        }
    }
}

/// What the check of one part found: `Ok`, or the problem in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub part: Part,
    pub problem: Option<String>,
}

impl Finding {
    pub fn ok(part: Part) -> Self {
        Self {
            part,
            problem: None,
        }
    }

    pub fn problem(part: Part, problem: impl Into<String>) -> Self {
        Self {
            part,
            problem: Some(problem.into()),
        }
    }
}

/// A device's health and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub health: Health,
    /// Empty when healthy; otherwise `part: problem` for each failing part, joined by `; `.
    pub reason: String,
}

/// Combines the findings of one check round into the device's health (rules in the module doc).
pub fn assess(findings: &[Finding]) -> Assessment {
    let mut failing: Vec<&Finding> = findings.iter().filter(|f| f.problem.is_some()).collect();
    failing.sort_by_key(|f| f.part);
    let health = if failing.is_empty() {
        Health::Healthy
    } else if failing.len() == findings.len() {
        Health::Unhealthy
    } else {
        Health::Degraded
    };
    let reason = failing
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                f.part.as_str(),
                f.problem.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Assessment {
        health,
        // Driver messages may carry line breaks; a reason is one line.
        reason: truncate(reason.replace(char::is_control, " "), MAX_REASON_LEN),
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// What the host saw of the video.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoObservation {
    /// The first grab: `Ok(is_black)` or the controller's error.
    pub frame: Result<bool, ControlError>,
    /// Whether the capture delivered a newer frame within `waited_ms` (a static picture still
    /// arrives as new frames; a frozen capture does not).
    pub advanced: bool,
    pub waited_ms: u64,
    /// The power switch's state when the device has one and it could be read.
    pub power_off: bool,
}

/// The video part: a frame arrives, it is not black, and the capture is not frozen.
pub fn judge_video(o: &VideoObservation) -> Finding {
    match &o.frame {
        Err(e) => Finding::problem(Part::Video, describe(e)),
        Ok(_) if !o.advanced => Finding::problem(
            Part::Video,
            format!("frozen: no new frame in {} ms", o.waited_ms),
        ),
        Ok(true) if o.power_off => Finding::problem(Part::Video, "picture is black (power is off)"),
        Ok(true) => Finding::problem(Part::Video, "picture is black"),
        Ok(false) => Finding::ok(Part::Video),
    }
}

/// The audio part: samples flow (a read of recent audio returned samples).
pub fn judge_audio(read: &Result<usize, ControlError>) -> Finding {
    match read {
        Ok(0) => Finding::problem(Part::Audio, "no samples arrive"),
        Ok(_) => Finding::ok(Part::Audio),
        Err(e) => Finding::problem(Part::Audio, describe(e)),
    }
}

/// The console part: the port is open and readable, and answers the probe when one is set
/// (`answered`: `None` when no probe was sent).
pub fn judge_console(open: &Result<(), ControlError>, answered: Option<bool>) -> Finding {
    match (open, answered) {
        (Err(e), _) => Finding::problem(Part::Console, describe(e)),
        (Ok(()), Some(false)) => Finding::problem(Part::Console, "no answer to the probe"),
        (Ok(()), _) => Finding::ok(Part::Console),
    }
}

/// The power part: the switch answers a state read.
pub fn judge_power<T>(state: &Result<T, ControlError>) -> Finding {
    match state {
        Ok(_) => Finding::ok(Part::Power),
        Err(e) => Finding::problem(Part::Power, describe(e)),
    }
}

/// A controller error in a reason: its message, without the generic prefixes.
fn describe(e: &ControlError) -> String {
    match e {
        ControlError::Unavailable(m) => format!("unavailable ({m})"),
        ControlError::Timeout(m) => format!("timed out ({m})"),
        ControlError::Unsupported(what) => format!("{what} is not supported"),
        ControlError::Invalid(m) | ControlError::Driver(m) => m.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(frame: Result<bool, ControlError>, advanced: bool, power_off: bool) -> Finding {
        judge_video(&VideoObservation {
            frame,
            advanced,
            waited_ms: 3000,
            power_off,
        })
    }

    #[test]
    fn all_parts_working_is_healthy_without_a_reason() {
        let a = assess(&[
            video(Ok(false), true, false),
            judge_audio(&Ok(4800)),
            judge_console(&Ok(()), None),
            judge_power(&Ok(())),
        ]);
        assert_eq!(
            a,
            Assessment {
                health: Health::Healthy,
                reason: String::new()
            }
        );
        assert_eq!(assess(&[]).health, Health::Healthy, "nothing to check");
    }

    #[test]
    fn some_parts_failing_is_degraded_naming_each_part_in_a_stable_order() {
        let a = assess(&[
            judge_console(
                &Err(ControlError::Unavailable("/dev/ttyACM0: gone".into())),
                None,
            ),
            video(Ok(true), true, false),
            judge_audio(&Ok(10)),
        ]);
        assert_eq!(a.health, Health::Degraded);
        assert_eq!(
            a.reason,
            "video: picture is black; console: unavailable (/dev/ttyACM0: gone)"
        );
    }

    #[test]
    fn every_part_failing_is_unhealthy() {
        let a = assess(&[
            video(
                Err(ControlError::Timeout("no frame within 5 s".into())),
                false,
                false,
            ),
            judge_audio(&Ok(0)),
        ]);
        assert_eq!(a.health, Health::Unhealthy);
        assert_eq!(
            a.reason,
            "video: timed out (no frame within 5 s); audio: no samples arrive"
        );
    }

    #[test]
    fn video_rules_black_frozen_and_a_static_picture() {
        assert_eq!(video(Ok(false), true, false), Finding::ok(Part::Video));
        assert_eq!(
            video(Ok(false), false, false).problem.as_deref(),
            Some("frozen: no new frame in 3000 ms")
        );
        // A frozen black picture is reported as frozen: that is what stopped.
        assert_eq!(
            video(Ok(true), false, false).problem.as_deref(),
            Some("frozen: no new frame in 3000 ms")
        );
        assert_eq!(
            video(Ok(true), true, true).problem.as_deref(),
            Some("picture is black (power is off)")
        );
        assert_eq!(
            video(
                Err(ControlError::Unavailable("unplugged".into())),
                false,
                false
            )
            .problem
            .as_deref(),
            Some("unavailable (unplugged)")
        );
    }

    #[test]
    fn console_rules_open_probe_and_answer() {
        assert_eq!(
            judge_console(&Ok(()), Some(true)),
            Finding::ok(Part::Console)
        );
        assert_eq!(
            judge_console(&Ok(()), Some(false)).problem.as_deref(),
            Some("no answer to the probe")
        );
        assert_eq!(
            judge_power::<()>(&Err(ControlError::Driver(
                "power.unreachable: 10.0.0.9".into()
            )))
            .problem
            .as_deref(),
            Some("power.unreachable: 10.0.0.9")
        );
    }

    #[test]
    fn health_names_round_trip_and_reasons_are_capped_on_a_char_boundary() {
        for h in Health::ALL {
            assert_eq!(h.as_str().parse::<Health>().expect("known"), h);
            assert_eq!(
                serde_json::to_string(&h).expect("json"),
                format!("\"{}\"", h.as_str())
            );
        }
        assert!("sick".parse::<Health>().is_err());
        let a = assess(&[
            Finding::problem(Part::Console, "gone\nreally"),
            Finding::ok(Part::Video),
        ]);
        assert_eq!(a.reason, "console: gone really");
        let long = "é".repeat(MAX_REASON_LEN);
        let cut = truncate(long, MAX_REASON_LEN);
        assert_eq!(cut.len(), MAX_REASON_LEN);
        let cut = truncate("aé".repeat(10), 4);
        assert_eq!(cut, "aéa");
    }
}
