//! The continuous audio ring: the last N seconds of mono samples with their capture time, so a
//! check reads the most recent audio without starting a capture, and a blocking read collects
//! what arrives after it started.

/// Mono i16 samples at one rate, oldest overwritten first.
#[derive(Clone, Debug)]
pub struct AudioRing {
    rate: u32,
    buf: Vec<i16>,
    /// Samples ever pushed; the next sample's position.
    written: u64,
    /// Capture time (µs since the epoch) just after the newest sample.
    end_at_us: u64,
}

/// Samples taken from the ring with the capture time of the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub samples: Vec<i16>,
    pub started_at_us: u64,
}

impl AudioRing {
    /// A ring holding `capacity` samples (at least one) at `rate` Hz.
    pub fn new(rate: u32, capacity: usize) -> Self {
        Self {
            rate: rate.max(1),
            buf: vec![0; capacity.max(1)],
            written: 0,
            end_at_us: 0,
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples ever pushed (the position of the next one).
    pub fn position(&self) -> u64 {
        self.written
    }

    /// Samples currently held.
    pub fn held(&self) -> usize {
        self.written.min(self.buf.len() as u64) as usize
    }

    /// Appends samples whose last one was captured just before `end_at_us`.
    pub fn push(&mut self, samples: &[i16], end_at_us: u64) {
        let cap = self.buf.len();
        // Only the newest `cap` samples can stay.
        let skip = samples.len().saturating_sub(cap);
        self.written += skip as u64;
        for &s in &samples[skip..] {
            let at = (self.written % cap as u64) as usize;
            self.buf[at] = s;
            self.written += 1;
        }
        self.end_at_us = end_at_us;
    }

    fn time_of(&self, position: u64) -> u64 {
        let behind = self.written - position;
        self.end_at_us
            .saturating_sub(behind * 1_000_000 / u64::from(self.rate))
    }

    fn copy(&self, from: u64, n: usize) -> Vec<i16> {
        let cap = self.buf.len() as u64;
        (from..from + n as u64)
            .map(|p| self.buf[(p % cap) as usize])
            .collect()
    }

    /// The newest `n` samples (fewer when fewer are held).
    pub fn recent(&self, n: usize) -> Span {
        let n = n.min(self.held());
        let from = self.written - n as u64;
        Span {
            samples: self.copy(from, n),
            started_at_us: self.time_of(from),
        }
    }

    /// The `n` samples from `position` on: `Ok(None)` while they have not all arrived,
    /// `Err(lost)` when some were already overwritten (`lost` samples).
    pub fn since(&self, position: u64, n: usize) -> Result<Option<Span>, u64> {
        let oldest = self.written - self.held() as u64;
        if position < oldest {
            return Err(oldest - position);
        }
        if position + n as u64 > self.written {
            return Ok(None);
        }
        Ok(Some(Span {
            samples: self.copy(position, n),
            started_at_us: self.time_of(position),
        }))
    }
}

/// Averages interleaved frames of `channels` samples into one mono sample each (a trailing
/// partial frame is dropped).
pub fn mix_to_mono(interleaved: &[i16], channels: usize, out: &mut Vec<i16>) {
    out.clear();
    if channels <= 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    out.extend(interleaved.chunks_exact(channels).map(|frame| {
        let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
        (sum / channels as i32) as i16
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_averages_channels() {
        let mut out = Vec::new();
        mix_to_mono(&[100, 200, -100, -300, i16::MAX, i16::MAX, 7], 2, &mut out);
        assert_eq!(out, vec![150, -200, i16::MAX]);
        mix_to_mono(&[i16::MIN, i16::MIN, i16::MIN, 3, 3, 3], 3, &mut out);
        assert_eq!(out, vec![i16::MIN, 3]);
        mix_to_mono(&[1, 2, 3], 1, &mut out);
        assert_eq!(out, vec![1, 2, 3]);
    }

    #[test]
    fn recent_returns_the_newest_samples_with_their_time() {
        // 1000 Hz: one sample per millisecond.
        let mut ring = AudioRing::new(1000, 5);
        assert_eq!(ring.recent(3).samples, Vec::<i16>::new());
        ring.push(&[1, 2, 3], 10_003_000);
        let s = ring.recent(2);
        assert_eq!(s.samples, vec![2, 3]);
        assert_eq!(s.started_at_us, 10_001_000);
        // Wrap around: 4 more samples push out 1 and 2.
        ring.push(&[4, 5, 6, 7], 10_007_000);
        assert_eq!(ring.held(), 5);
        let s = ring.recent(100);
        assert_eq!(s.samples, vec![3, 4, 5, 6, 7]);
        assert_eq!(s.started_at_us, 10_002_000);
        // More than the capacity in one push keeps the newest.
        ring.push(&(10..20).collect::<Vec<i16>>(), 10_017_000);
        assert_eq!(ring.recent(5).samples, vec![15, 16, 17, 18, 19]);
        assert_eq!(ring.position(), 17);
    }

    #[test]
    fn since_waits_for_samples_and_reports_overwritten_ones() {
        let mut ring = AudioRing::new(1000, 4);
        let start = ring.position();
        ring.push(&[1, 2], 2_000);
        assert_eq!(ring.since(start, 3), Ok(None));
        ring.push(&[3], 3_000);
        assert_eq!(
            ring.since(start, 3),
            Ok(Some(Span {
                samples: vec![1, 2, 3],
                started_at_us: 0
            }))
        );
        ring.push(&[4, 5, 6], 6_000);
        assert_eq!(ring.since(start, 3), Err(2));
        assert_eq!(
            ring.since(3, 3).expect("held").expect("arrived").samples,
            vec![4, 5, 6]
        );
    }
}
