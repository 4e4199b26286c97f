//! Capture times. Drivers stamp samples with the kernel's `CLOCK_MONOTONIC` (V4L2 buffer
//! timestamps); core's frames and audio carry microseconds since the Unix epoch. [`EpochOffset`]
//! maps one onto the other with one offset per capture session, so intervals between frames stay
//! exactly the kernel's.

use std::time::{SystemTime, UNIX_EPOCH};

use nix::time::{ClockId, clock_gettime};

/// Microseconds since the Unix epoch, now.
pub fn epoch_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `CLOCK_MONOTONIC` in microseconds, now.
pub fn monotonic_now_us() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
        .unwrap_or(0)
}

/// The difference between the epoch clock and the monotonic clock, taken once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochOffset {
    epoch_minus_monotonic_us: i64,
}

impl EpochOffset {
    /// The offset from the two clocks read now.
    pub fn now() -> Self {
        Self::from_readings(monotonic_now_us(), epoch_now_us())
    }

    /// The offset from a monotonic and an epoch reading taken at the same instant.
    pub fn from_readings(monotonic_us: u64, epoch_us: u64) -> Self {
        Self {
            epoch_minus_monotonic_us: epoch_us as i64 - monotonic_us as i64,
        }
    }

    /// A monotonic timestamp as microseconds since the epoch.
    pub fn to_epoch_us(&self, monotonic_us: u64) -> u64 {
        (monotonic_us as i64 + self.epoch_minus_monotonic_us).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_timestamps_map_onto_the_epoch_keeping_intervals() {
        let off = EpochOffset::from_readings(5_000_000, 1_700_000_000_000_000);
        assert_eq!(off.to_epoch_us(5_000_000), 1_700_000_000_000_000);
        assert_eq!(off.to_epoch_us(4_966_667), 1_699_999_999_966_667);
        assert_eq!(
            off.to_epoch_us(5_033_333) - off.to_epoch_us(5_000_000),
            33_333
        );
        // Real clocks: a time after 2020.
        let now = EpochOffset::now().to_epoch_us(monotonic_now_us());
        assert!(now > 1_577_836_800_000_000, "{now}");
    }
}
