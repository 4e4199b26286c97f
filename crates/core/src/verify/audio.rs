//! Audio checks on mono 16-bit PCM: level (RMS, dBFS), silence, and the dominant frequency of a
//! tone (for "is the test tone playing" and "did the channel change the audio").
//!
//! The frequency is the peak of a Hann-windowed real FFT of the whole window, refined between
//! bins by fitting a parabola to the log magnitudes of the peak bin and its neighbours (accurate
//! to well under 1 Hz for a pure tone over 100 ms; bins are `sample_rate / len` apart).

use realfft::RealFftPlanner;

/// Default silence threshold of [`is_silent`]: -50 dBFS.
pub const DEFAULT_SILENCE_DBFS: f32 = -50.0;

/// The level reported for digital silence (an exact zero signal) by [`rms_dbfs`].
pub const MIN_DBFS: f32 = -120.0;

/// Root mean square of the samples, normalised so that full scale (32768) is 1.
/// 0 for an empty slice.
pub fn rms(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum_sq: u64 = samples
        .chunks(1 << 16)
        .map(|c| {
            c.iter()
                .map(|&s| (i64::from(s) * i64::from(s)) as u64)
                .sum::<u64>()
        })
        .sum();
    ((sum_sq as f64 / samples.len() as f64).sqrt() / 32768.0) as f32
}

/// [`rms`] in dB relative to full scale (a full-scale square wave is 0 dBFS, a full-scale sine
/// about -3 dBFS), never below [`MIN_DBFS`].
pub fn rms_dbfs(samples: &[i16]) -> f32 {
    let r = rms(samples);
    if r <= 0.0 {
        MIN_DBFS
    } else {
        (20.0 * r.log10()).max(MIN_DBFS)
    }
}

/// Whether the level is below `threshold_dbfs` ([`DEFAULT_SILENCE_DBFS`] is a good default).
/// An empty slice is silent.
pub fn is_silent(samples: &[i16], threshold_dbfs: f32) -> bool {
    rms_dbfs(samples) < threshold_dbfs
}

/// The frequency in Hz with the most energy, or `None` for silence (below
/// [`DEFAULT_SILENCE_DBFS`]), fewer than 16 samples, or a zero sample rate. Use windows of
/// 100 ms or more for a resolution of a few Hz.
pub fn dominant_frequency(samples: &[i16], sample_rate: u32) -> Option<f32> {
    let n = samples.len();
    if n < 16 || sample_rate == 0 || is_silent(samples, DEFAULT_SILENCE_DBFS) {
        return None;
    }
    let mean = samples.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64;
    let step = std::f64::consts::TAU / n as f64;
    let mut input: Vec<f32> = samples
        .iter()
        .enumerate()
        .map(|(i, &s)| ((f64::from(s) - mean) * (0.5 - 0.5 * (step * i as f64).cos())) as f32)
        .collect();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let mut spectrum = fft.make_output_vec();
    fft.process(&mut input, &mut spectrum).ok()?;
    let power: Vec<f32> = spectrum.iter().map(|c| c.norm_sqr()).collect();
    // Skip the DC bin (and what the mean removal left of it).
    let (peak, &peak_power) = power
        .iter()
        .enumerate()
        .skip(1)
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    if peak_power <= 0.0 {
        return None;
    }
    let mut offset = 0.0f64;
    if peak + 1 < power.len() {
        // Parabola through the log powers of the three bins around the peak.
        let (a, b, c) = (
            f64::from(power[peak - 1].max(f32::MIN_POSITIVE)).ln(),
            f64::from(peak_power).ln(),
            f64::from(power[peak + 1].max(f32::MIN_POSITIVE)).ln(),
        );
        let denom = a - 2.0 * b + c;
        if denom < 0.0 {
            offset = (0.5 * (a - c) / denom).clamp(-0.5, 0.5);
        }
    }
    Some(((peak as f64 + offset) * f64::from(sample_rate) / n as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, amplitude: f64, sample_rate: u32, ms: u32) -> Vec<i16> {
        let n = sample_rate as usize * ms as usize / 1000;
        (0..n)
            .map(|i| {
                (amplitude
                    * 32767.0
                    * (std::f64::consts::TAU * freq * i as f64 / f64::from(sample_rate)).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn levels() {
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(rms_dbfs(&[0; 100]), MIN_DBFS);
        assert!((rms(&[i16::MIN; 10]) - 1.0).abs() < 1e-6);
        let sine = tone(1000.0, 1.0, 48_000, 100);
        assert!((rms_dbfs(&sine) + 3.01).abs() < 0.05, "{}", rms_dbfs(&sine));
        let quiet = tone(1000.0, 0.001, 48_000, 100);
        assert!(
            (rms_dbfs(&quiet) + 63.0).abs() < 0.5,
            "{}",
            rms_dbfs(&quiet)
        );
        assert!(is_silent(&quiet, DEFAULT_SILENCE_DBFS));
        assert!(!is_silent(&sine, DEFAULT_SILENCE_DBFS));
        assert!(is_silent(&[], DEFAULT_SILENCE_DBFS));
    }

    #[test]
    fn dominant_frequency_of_tones() {
        for (freq, rate, ms) in [
            (1000.0, 48_000, 100),
            (100.0, 48_000, 200),
            (440.0, 44_100, 100),
            (8000.0, 48_000, 100),
            (1234.5, 16_000, 150),
        ] {
            let f = dominant_frequency(&tone(freq, 0.5, rate, ms), rate).expect("a tone");
            assert!(
                (f64::from(f) - freq).abs() < 5.0,
                "{freq} Hz at {rate}: got {f}"
            );
        }
        let f = dominant_frequency(&tone(1000.0, 0.5, 48_000, 100), 48_000).expect("a tone");
        assert!((f - 1000.0).abs() < 1.0, "{f}");
    }

    #[test]
    fn dominant_frequency_with_noise_and_a_weaker_tone() {
        let mut s = tone(2000.0, 0.3, 48_000, 120);
        let weak = tone(500.0, 0.1, 48_000, 120);
        let mut seed = 1u32;
        for (v, w) in s.iter_mut().zip(weak) {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = ((seed >> 16) as i32 % 2000) - 1000;
            *v = (i32::from(*v) + i32::from(w) + noise) as i16;
        }
        let f = dominant_frequency(&s, 48_000).expect("a tone");
        assert!((f - 2000.0).abs() < 5.0, "{f}");
    }

    #[test]
    fn no_frequency_for_silence_or_nothing() {
        assert_eq!(dominant_frequency(&[0; 4800], 48_000), None);
        assert_eq!(
            dominant_frequency(&tone(1000.0, 0.0005, 48_000, 100), 48_000),
            None
        );
        assert_eq!(dominant_frequency(&[], 48_000), None);
        assert_eq!(dominant_frequency(&tone(1000.0, 0.5, 48_000, 100), 0), None);
    }
}
