//! The pure part of "wait until something appears / disappears / appears then disappears, with a
//! timeout": a state machine fed with timestamped observations (was the thing present in the
//! frame captured at `t`?). The caller owns the frame source and the clock, and decides what
//! "present" means (a [`super::match_template`] hit, a black screen, motion).

use serde::{Deserialize, Serialize};

/// What a [`Watch`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// Present in some observation.
    Appear,
    /// Absent in some observation.
    Disappear,
    /// Present in some observation, then absent in a later one (a banner, a toast).
    AppearThenDisappear,
}

/// Where a [`Watch`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WatchStatus {
    /// Not decided yet: keep observing.
    Pending,
    /// The expectation was met. Times are capture times of the deciding observations.
    Passed {
        appeared_at_us: Option<u64>,
        disappeared_at_us: Option<u64>,
    },
    /// The deadline passed first; `appeared_at_us` is set when an appear-then-disappear saw the
    /// appearance but not the disappearance.
    TimedOut { appeared_at_us: Option<u64> },
}

impl WatchStatus {
    /// Whether the watch has decided (passed or timed out).
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// Waits for an [`Expectation`] over observations captured from `started_at_us` up to and
/// including `started_at_us + timeout_us`. Observations must come in capture order; earlier ones
/// are ignored. Once decided, the status no longer changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    expectation: Expectation,
    started_at_us: u64,
    deadline_us: u64,
    appeared_at_us: Option<u64>,
    status: WatchStatus,
}

impl Watch {
    pub fn new(expectation: Expectation, started_at_us: u64, timeout_us: u64) -> Self {
        Self {
            expectation,
            started_at_us,
            deadline_us: started_at_us.saturating_add(timeout_us),
            appeared_at_us: None,
            status: WatchStatus::Pending,
        }
    }

    /// The current status.
    pub fn status(&self) -> WatchStatus {
        self.status
    }

    /// Feeds one observation: whether the thing was present in the frame captured at `at_us`.
    pub fn observe(&mut self, at_us: u64, present: bool) -> WatchStatus {
        if self.status.is_final() || at_us < self.started_at_us {
            return self.status;
        }
        if at_us > self.deadline_us {
            return self.tick(at_us);
        }
        self.status = match (self.expectation, present, self.appeared_at_us) {
            (Expectation::Appear, true, _) => WatchStatus::Passed {
                appeared_at_us: Some(at_us),
                disappeared_at_us: None,
            },
            (Expectation::Disappear, false, _) => WatchStatus::Passed {
                appeared_at_us: None,
                disappeared_at_us: Some(at_us),
            },
            (Expectation::AppearThenDisappear, true, None) => {
                self.appeared_at_us = Some(at_us);
                WatchStatus::Pending
            }
            (Expectation::AppearThenDisappear, false, Some(appeared)) => WatchStatus::Passed {
                appeared_at_us: Some(appeared),
                disappeared_at_us: Some(at_us),
            },
            _ => WatchStatus::Pending,
        };
        self.status
    }

    /// Tells the watch the time without an observation (the frame source went quiet): times out
    /// once `now_us` is past the deadline.
    pub fn tick(&mut self, now_us: u64) -> WatchStatus {
        if !self.status.is_final() && now_us > self.deadline_us {
            self.status = WatchStatus::TimedOut {
                appeared_at_us: self.appeared_at_us,
            };
        }
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appear() {
        let mut w = Watch::new(Expectation::Appear, 1_000, 500);
        assert_eq!(
            w.observe(900, true),
            WatchStatus::Pending,
            "before the start"
        );
        assert_eq!(w.observe(1_100, false), WatchStatus::Pending);
        let passed = WatchStatus::Passed {
            appeared_at_us: Some(1_500),
            disappeared_at_us: None,
        };
        assert_eq!(w.observe(1_500, true), passed, "the deadline itself counts");
        assert_eq!(w.observe(1_600, false), passed, "final");
        let mut w = Watch::new(Expectation::Appear, 1_000, 500);
        assert_eq!(
            w.observe(1_501, true),
            WatchStatus::TimedOut {
                appeared_at_us: None
            }
        );
        let mut w = Watch::new(Expectation::Appear, 1_000, 500);
        assert_eq!(w.tick(1_400), WatchStatus::Pending);
        assert!(w.tick(1_501).is_final());
    }

    #[test]
    fn disappear_and_appear_then_disappear() {
        let mut w = Watch::new(Expectation::Disappear, 0, 100);
        w.observe(10, true);
        assert_eq!(
            w.observe(20, false),
            WatchStatus::Passed {
                appeared_at_us: None,
                disappeared_at_us: Some(20)
            }
        );

        let mut w = Watch::new(Expectation::AppearThenDisappear, 0, 100);
        assert_eq!(
            w.observe(10, false),
            WatchStatus::Pending,
            "absent before appearing"
        );
        assert_eq!(w.observe(20, true), WatchStatus::Pending);
        assert_eq!(w.observe(30, true), WatchStatus::Pending);
        assert_eq!(
            w.observe(40, false),
            WatchStatus::Passed {
                appeared_at_us: Some(20),
                disappeared_at_us: Some(40)
            }
        );

        let mut w = Watch::new(Expectation::AppearThenDisappear, 0, 100);
        w.observe(20, true);
        assert_eq!(
            w.observe(101, false),
            WatchStatus::TimedOut {
                appeared_at_us: Some(20)
            }
        );
    }
}
