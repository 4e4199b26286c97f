//! Audio synthesis from the machine's audio log: a sine tone per segment, silence elsewhere. Sample
//! `i` is the one at `i / 48000` s after the Unix epoch and its phase is computed exactly from
//! `i`, so the same window always gives the same samples and consecutive reads join seamlessly.

use std::{collections::VecDeque, f64::consts::TAU};

use super::state::AudioSegment;

/// Sample rate of the simulated audio output.
pub const SAMPLE_RATE: u32 = 48_000;

/// Index of the first sample at or after `time_us`.
pub(super) fn first_sample_at(time_us: u64) -> u64 {
    (u128::from(time_us) * u128::from(SAMPLE_RATE)).div_ceil(1_000_000) as u64
}

/// Time of sample `index`, rounded down to the microsecond.
pub(super) fn sample_time_us(index: u64) -> u64 {
    (u128::from(index) * 1_000_000 / u128::from(SAMPLE_RATE)) as u64
}

/// `n` samples starting at absolute sample `first`, following `log`.
pub(super) fn synthesize(log: &VecDeque<AudioSegment>, first: u64, n: usize) -> Vec<i16> {
    let mut out = Vec::with_capacity(n);
    let mut seg = 0usize;
    for i in first..first + n as u64 {
        let t = sample_time_us(i);
        while log.get(seg + 1).is_some_and(|s| s.start_us <= t) {
            seg += 1;
        }
        let tone = log
            .get(seg)
            .filter(|s| s.start_us <= t)
            .and_then(|s| s.tone);
        out.push(match tone {
            Some(tone) => {
                let phase = (u128::from(tone.freq_hz) * u128::from(i) % u128::from(SAMPLE_RATE))
                    as f64
                    / f64::from(SAMPLE_RATE);
                ((TAU * phase).sin() * f64::from(tone.amplitude)).round() as i16
            }
            None => 0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::state::Tone;

    #[test]
    fn segments_switch_at_their_start_and_phase_is_continuous() {
        let start = 1_000_000u64;
        let log = VecDeque::from([
            AudioSegment {
                start_us: 0,
                tone: None,
            },
            AudioSegment {
                start_us: start,
                tone: Some(Tone {
                    freq_hz: 1000,
                    amplitude: 10_000,
                }),
            },
        ]);
        let first = first_sample_at(start) - 2;
        let s = synthesize(&log, first, 50);
        assert_eq!(&s[..2], &[0, 0]);
        // 1 kHz at 48 kHz: 48 samples per period, starting at phase 0 on the second boundary.
        assert_eq!(s[2], 0);
        assert_eq!(s[2 + 12], 10_000);
        assert_eq!(s[2 + 36], -10_000);
        let joined = [
            synthesize(&log, first, 20),
            synthesize(&log, first + 20, 30),
        ]
        .concat();
        assert_eq!(joined, s);
        assert_eq!(sample_time_us(first_sample_at(123_457)), 123_458);
    }
}
