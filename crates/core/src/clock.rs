//! Time, injectable. Navigation, the test runner and the simulator read the time and wait through
//! a [`Clock`], so on a [`ManualClock`] a run is fully deterministic and tests jump over seconds
//! of boot, zapping or retries without sleeping. [`SystemClock`] is the real-time default.
//!
//! Its own module (not part of `sim`) so that everything else compiles with the simulator
//! feature off.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A source of wall-clock time in microseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_us(&self) -> u64;

    /// Waits for `d` to pass on this clock.
    fn sleep(&self, d: Duration);
}

/// The host's real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that only moves when told to. Clones share the same time. `sleep` advances it by the
/// requested duration and returns at once, so a blocking audio capture over a manual clock
/// "takes" its duration instantly.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now_us: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `start_us` microseconds since the Unix epoch.
    pub fn new(start_us: u64) -> Self {
        Self {
            now_us: Arc::new(AtomicU64::new(start_us)),
        }
    }

    pub fn advance(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.now_us.fetch_add(us, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, ms: u64) {
        self.advance(Duration::from_millis(ms));
    }

    /// Sets the time; going backwards is allowed here, but the simulator never rewinds its state.
    pub fn set_us(&self, us: u64) {
        self.now_us.store(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> u64 {
        self.now_us.load(Ordering::SeqCst)
    }

    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        let shared = c.clone();
        assert_eq!(c.now_us(), 1_000);
        c.advance_ms(2);
        shared.sleep(Duration::from_micros(5));
        assert_eq!(shared.now_us(), 3_005);
        assert!(SystemClock.now_us() > 1_600_000_000_000_000);
    }
}
