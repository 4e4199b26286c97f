//! JPEG encoding of frames with mozjpeg, in two profiles: [`JpegProfile::Stored`] for screenshots
//! kept as evidence (smallest files: trellis quantisation, progressive and optimised scans) and
//! [`JpegProfile::Live`] for the live view (fastest: libjpeg-turbo's baseline settings).
//!
//! mozjpeg (libjpeg) reports errors by unwinding out of the C code; every call into it runs under
//! [`std::panic::catch_unwind`] and a panic becomes [`JpegError::Encoder`]. The workspace must
//! therefore never set `panic = "abort"`. Builds with SIMD when `nasm` is installed, and without
//! it (slower) otherwise.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

use crate::frame::Frame;

/// Default quality for [`JpegProfile::Stored`].
pub const DEFAULT_STORED_QUALITY: u8 = 80;
/// Default quality for [`JpegProfile::Live`].
pub const DEFAULT_LIVE_QUALITY: u8 = 75;

/// Which trade-off between size and encoding time to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JpegProfile {
    /// Screenshots kept as evidence: mozjpeg's full settings (trellis quantisation, progressive
    /// mode with optimised scans, optimised Huffman tables), 4:2:0 chroma. Several times slower
    /// than `Live`, files markedly smaller at the same quality.
    Stored,
    /// Live view: fastest settings (baseline, no trellis, standard Huffman tables, libjpeg-turbo
    /// defaults), 4:2:0 chroma.
    Live,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    /// Quality must be 1..=100.
    #[error("jpeg quality {0} is outside 1..=100")]
    InvalidQuality(u8),
    /// The frame's pixel buffer does not match its size (its fields are public).
    #[error("frame is malformed: {width}x{height} RGB needs {expected} bytes, got {actual}")]
    MalformedFrame {
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
    /// JPEG cannot hold images wider or taller than 65,535 pixels.
    #[error("frame {width}x{height} is too large for jpeg (at most 65535x65535)")]
    TooLarge { width: u32, height: u32 },
    /// mozjpeg failed.
    #[error("jpeg encoder failed: {0}")]
    Encoder(String),
}

impl JpegError {
    /// A stable, machine-readable code for the API layer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidQuality(_) => "invalid_jpeg_quality",
            Self::MalformedFrame { .. } => "malformed_frame",
            Self::TooLarge { .. } => "frame_too_large",
            Self::Encoder(_) => "jpeg_encoder_failed",
        }
    }
}

/// Encodes `frame` as a JPEG (JFIF, YCbCr 4:2:0) at `quality` (1..=100) with `profile`.
pub fn encode(frame: &Frame, quality: u8, profile: JpegProfile) -> Result<Vec<u8>, JpegError> {
    if !(1..=100).contains(&quality) {
        return Err(JpegError::InvalidQuality(quality));
    }
    let expected = frame.width as usize * frame.height as usize * 3;
    if frame.rgb.len() != expected || expected == 0 {
        return Err(JpegError::MalformedFrame {
            width: frame.width,
            height: frame.height,
            expected,
            actual: frame.rgb.len(),
        });
    }
    if frame.width > 65_535 || frame.height > 65_535 {
        return Err(JpegError::TooLarge {
            width: frame.width,
            height: frame.height,
        });
    }
    let run = || -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        if profile == JpegProfile::Live {
            // Resets every parameter to libjpeg-turbo's: must come before the others.
            c.set_fastest_defaults();
        }
        c.set_size(frame.width as usize, frame.height as usize);
        c.set_quality(f32::from(quality));
        c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        match profile {
            JpegProfile::Stored => {
                c.set_progressive_mode();
                c.set_optimize_scans(true);
                c.set_optimize_coding(true);
            }
            JpegProfile::Live => c.set_optimize_coding(false),
        }
        let capacity = expected / if profile == JpegProfile::Live { 8 } else { 12 };
        let mut started = c.start_compress(Vec::with_capacity(capacity))?;
        started.write_scanlines(&frame.rgb)?;
        started.finish()
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(JpegError::Encoder(e.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "unknown error".to_string());
            Err(JpegError::Encoder(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth colour gradient with a few hard edges.
    fn picture(width: u32, height: u32) -> Frame {
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                let edge = if (x / 40 + y / 40) % 2 == 0 { 40 } else { 0 };
                rgb.extend_from_slice(&[
                    (x * 255 / width) as u8,
                    (y * 255 / height) as u8,
                    (100 + edge) as u8,
                ]);
            }
        }
        Frame::from_rgb(width, height, rgb, 0, 0).expect("frame")
    }

    fn decode(bytes: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
            .expect("decodes")
            .to_rgb8()
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }

    #[test]
    fn both_profiles_produce_faithful_jpegs() {
        let frame = picture(320, 184);
        for profile in [JpegProfile::Stored, JpegProfile::Live] {
            let bytes = encode(&frame, 80, profile).expect("encodes");
            assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "SOI marker");
            let decoded = decode(&bytes);
            assert_eq!(decoded.dimensions(), (320, 184));
            let p = psnr(decoded.as_raw(), &frame.rgb);
            assert!(p > 30.0, "{profile:?}: PSNR {p}");
        }
        // Stored is progressive (SOF2), Live is baseline (SOF0).
        let stored = encode(&frame, 80, JpegProfile::Stored).expect("encodes");
        let live = encode(&frame, 80, JpegProfile::Live).expect("encodes");
        assert!(stored.windows(2).any(|w| w == [0xFF, 0xC2]));
        assert!(live.windows(2).any(|w| w == [0xFF, 0xC0]));
        assert!(
            stored.len() < live.len(),
            "stored {} >= live {}",
            stored.len(),
            live.len()
        );
        // Lower quality, smaller file.
        assert!(
            encode(&frame, 30, JpegProfile::Stored)
                .expect("encodes")
                .len()
                < stored.len()
        );
    }

    #[test]
    fn odd_sizes_encode() {
        let frame = picture(7, 3);
        assert_eq!(
            decode(&encode(&frame, 90, JpegProfile::Stored).expect("encodes")).dimensions(),
            (7, 3)
        );
        assert_eq!(
            decode(&encode(&frame, 90, JpegProfile::Live).expect("encodes")).dimensions(),
            (7, 3)
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let frame = picture(16, 16);
        assert_eq!(
            encode(&frame, 0, JpegProfile::Live),
            Err(JpegError::InvalidQuality(0))
        );
        assert_eq!(
            encode(&frame, 101, JpegProfile::Stored).map_err(|e| e.code()),
            Err("invalid_jpeg_quality")
        );
        let broken = Frame {
            width: 16,
            height: 16,
            rgb: vec![0u8; 10].into(),
            captured_at_us: 0,
            seq: 0,
        };
        let e = encode(&broken, 80, JpegProfile::Live).expect_err("malformed");
        assert_eq!(
            e.to_string(),
            "frame is malformed: 16x16 RGB needs 768 bytes, got 10"
        );
    }
}
