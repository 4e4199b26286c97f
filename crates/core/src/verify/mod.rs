//! Verification: pure functions that decide what a device is showing or playing.
//!
//! Everything here is synchronous CPU work on frames ([`Gray`]) and audio samples, with no I/O,
//! no clock and no threads of its own. Callers in async code run it on a blocking thread (see
//! CONVENTIONS.md, "Async"). Things that need a frame source and a clock (wait until a template
//! appears, with a timeout) are built on top of these by the test runner; [`wait::Watch`] is the
//! pure part of that logic.
//!
//! - [`image`]: template matching with OpenCV `TM_CCOEFF_NORMED` semantics ([`find_template`],
//!   [`match_template`]).
//! - [`screen`]: black screen, frame difference, freeze, motion and zap time.
//! - [`audio`]: RMS level, silence and the dominant frequency of a tone.
//! - [`wait`]: appear / disappear / appear-then-disappear over a sequence of observations.

pub mod audio;
pub mod image;
pub mod screen;
pub mod wait;

#[cfg(all(test, feature = "sim"))]
mod sim_tests;

pub use self::image::{TemplateMatch, find_template, match_template};
pub use audio::{DEFAULT_SILENCE_DBFS, dominant_frequency, is_silent, rms, rms_dbfs};
pub use screen::{
    BlackParams, BlackResult, MotionResult, ZapMeasurement, difference, is_black, is_frozen,
    motion, zap_time,
};
pub use wait::{Expectation, Watch, WatchStatus};

use crate::frame::{Gray, Rect};

/// Why a verification could not be evaluated (as opposed to evaluating to "no").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The region does not lie inside the frame, or is empty.
    #[error("region {}x{}+{}+{} does not fit in the {frame_width}x{frame_height} frame", region.width, region.height, region.x, region.y)]
    RegionOutsideFrame {
        region: Rect,
        frame_width: u32,
        frame_height: u32,
    },
    /// The template is larger than the area it is searched in.
    #[error(
        "template {template_width}x{template_height} is larger than the {area_width}x{area_height} search area"
    )]
    TemplateTooLarge {
        template_width: u32,
        template_height: u32,
        area_width: u32,
        area_height: u32,
    },
    /// Two frames that are compared have different sizes.
    #[error("frame sizes differ: {a_width}x{a_height} and {b_width}x{b_height}")]
    SizeMismatch {
        a_width: u32,
        a_height: u32,
        b_width: u32,
        b_height: u32,
    },
    /// An input has no pixels (or a sequence has too few frames); names the input.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// An image whose pixel buffer does not match its width and height (its fields are public).
    #[error("{what} is malformed: {width}x{height} needs {expected} bytes, got {actual}")]
    Malformed {
        what: &'static str,
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
}

impl VerifyError {
    /// A stable, machine-readable code for the API layer (`region_outside_frame`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::RegionOutsideFrame { .. } => "region_outside_frame",
            Self::TemplateTooLarge { .. } => "template_too_large",
            Self::SizeMismatch { .. } => "size_mismatch",
            Self::Empty(_) => "empty_input",
            Self::Malformed { .. } => "malformed_image",
        }
    }
}

/// Checks that `image` is well formed and non-empty, and that `region` (the whole image when
/// `None`) lies inside it; returns the region.
pub(crate) fn checked_area(
    what: &'static str,
    image: &Gray,
    region: Option<Rect>,
) -> Result<Rect, VerifyError> {
    let expected = image.width as usize * image.height as usize;
    if image.data.len() != expected {
        return Err(VerifyError::Malformed {
            what,
            width: image.width,
            height: image.height,
            expected,
            actual: image.data.len(),
        });
    }
    if expected == 0 {
        return Err(VerifyError::Empty(what));
    }
    let region = region.unwrap_or(Rect::full(image.width, image.height));
    if region.width == 0
        || region.height == 0
        || region.right() > u64::from(image.width)
        || region.bottom() > u64::from(image.height)
    {
        return Err(VerifyError::RegionOutsideFrame {
            region,
            frame_width: image.width,
            frame_height: image.height,
        });
    }
    Ok(region)
}

/// Checks that two images have the same size.
pub(crate) fn check_same_size(a: &Gray, b: &Gray) -> Result<(), VerifyError> {
    if a.width != b.width || a.height != b.height {
        return Err(VerifyError::SizeMismatch {
            a_width: a.width,
            a_height: a.height,
            b_width: b.width,
            b_height: b.height,
        });
    }
    Ok(())
}

/// The rows of `region` in `image` (which must have been checked with [`checked_area`]).
pub(crate) fn region_rows<'a>(
    image: &'a Gray,
    region: Rect,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    let stride = image.width as usize;
    let (x, w) = (region.x as usize, region.width as usize);
    (region.y as usize..region.bottom() as usize)
        .map(move |y| &image.data[y * stride + x..y * stride + x + w])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_checked() {
        let g = Gray::new(4, 3, vec![0; 12]).expect("gray");
        assert_eq!(checked_area("frame", &g, None), Ok(Rect::full(4, 3)));
        assert_eq!(
            checked_area("frame", &g, Some(Rect::new(1, 1, 3, 2))),
            Ok(Rect::new(1, 1, 3, 2))
        );
        let e = checked_area("frame", &g, Some(Rect::new(2, 0, 3, 1))).expect_err("too wide");
        assert_eq!(e.code(), "region_outside_frame");
        assert_eq!(
            e.to_string(),
            "region 3x1+2+0 does not fit in the 4x3 frame"
        );
        assert!(checked_area("frame", &g, Some(Rect::new(0, 0, 0, 1))).is_err());
        let bad = Gray {
            width: 4,
            height: 3,
            data: vec![0; 5],
        };
        assert_eq!(
            checked_area("frame", &bad, None)
                .expect_err("malformed")
                .code(),
            "malformed_image"
        );
        let empty = Gray {
            width: 0,
            height: 0,
            data: vec![],
        };
        assert_eq!(
            checked_area("template", &empty, None),
            Err(VerifyError::Empty("template"))
        );
    }

    #[test]
    fn rows_of_a_region() {
        let g = Gray::new(3, 3, (0..9).collect()).expect("gray");
        let rows: Vec<&[u8]> = region_rows(&g, Rect::new(1, 1, 2, 2)).collect();
        assert_eq!(rows, vec![&[4u8, 5][..], &[7, 8][..]]);
    }
}
