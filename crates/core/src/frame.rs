//! Video frames and regions. A [`Frame`] is what every video source produces (a capture card, a
//! phone's screen recorder, the simulator) and what every verification consumes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::validate::ValidationError;

/// A rectangle in frame pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    /// The whole of a `width` x `height` frame.
    pub const fn full(width: u32, height: u32) -> Self {
        Self {
            x: 0,
            y: 0,
            width,
            height,
        }
    }

    pub fn right(&self) -> u64 {
        u64::from(self.x) + u64::from(self.width)
    }

    pub fn bottom(&self) -> u64 {
        u64::from(self.y) + u64::from(self.height)
    }

    /// Checks that the rectangle is non-empty and lies inside a `width` x `height` frame.
    pub fn check_within(
        &self,
        field: &str,
        width: u32,
        height: u32,
    ) -> Result<(), ValidationError> {
        if self.width == 0 || self.height == 0 {
            return Err(ValidationError::new(field, "region must not be empty"));
        }
        if self.right() > u64::from(width) || self.bottom() > u64::from(height) {
            return Err(ValidationError::new(
                field,
                format!(
                    "region {}x{}+{}+{} does not fit in the {width}x{height} frame",
                    self.width, self.height, self.x, self.y
                ),
            ));
        }
        Ok(())
    }
}

/// An RGB frame (8 bits per channel, row-major, no padding) with its capture time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes: R, G, B.
    pub rgb: Arc<[u8]>,
    /// When the frame was captured, in microseconds since the Unix epoch (the host's clock).
    pub captured_at_us: u64,
    /// Increases by one per frame produced by a source; equal numbers mean the same frame.
    pub seq: u64,
}

/// A single-channel 8-bit image (luma), row-major, no padding: the input of most verifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gray {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Frame {
    /// Wraps raw RGB bytes, checking the size.
    pub fn from_rgb(
        width: u32,
        height: u32,
        rgb: Vec<u8>,
        captured_at_us: u64,
        seq: u64,
    ) -> Result<Self, ValidationError> {
        let expected = width as usize * height as usize * 3;
        if width == 0 || height == 0 || rgb.len() != expected {
            return Err(ValidationError::new(
                "frame",
                format!(
                    "{width}x{height} RGB needs {expected} bytes, got {}",
                    rgb.len()
                ),
            ));
        }
        Ok(Self {
            width,
            height,
            rgb: rgb.into(),
            captured_at_us,
            seq,
        })
    }

    pub fn rect(&self) -> Rect {
        Rect::full(self.width, self.height)
    }

    /// The frame at half its width and height (each pixel the mean of a 2x2 block; an odd last
    /// row or column is dropped). For the live view's lighter stream.
    pub fn half(&self) -> Frame {
        let (w, h) = ((self.width / 2).max(1), (self.height / 2).max(1));
        let src_w = self.width as usize;
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        for y in 0..h as usize {
            let (y0, y1) = (
                (2 * y).min(self.height as usize - 1),
                (2 * y + 1).min(self.height as usize - 1),
            );
            for x in 0..w as usize {
                let (x0, x1) = ((2 * x).min(src_w - 1), (2 * x + 1).min(src_w - 1));
                for c in 0..3 {
                    let at = |yy: usize, xx: usize| u16::from(self.rgb[(yy * src_w + xx) * 3 + c]);
                    let sum = at(y0, x0) + at(y0, x1) + at(y1, x0) + at(y1, x1);
                    rgb.push(((sum + 2) / 4) as u8);
                }
            }
        }
        Frame {
            width: w,
            height: h,
            rgb: rgb.into(),
            captured_at_us: self.captured_at_us,
            seq: self.seq,
        }
    }

    /// ITU-R BT.601 luma of the whole frame.
    pub fn to_gray(&self) -> Gray {
        let data = self
            .rgb
            .chunks_exact(3)
            .map(|p| {
                ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]) + 128) >> 8)
                    as u8
            })
            .collect();
        Gray {
            width: self.width,
            height: self.height,
            data,
        }
    }

    /// The RGB value at `(x, y)`.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

impl Gray {
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self, ValidationError> {
        if width == 0 || height == 0 || data.len() != width as usize * height as usize {
            return Err(ValidationError::new(
                "image",
                format!(
                    "{width}x{height} needs {} bytes, got {}",
                    width as usize * height as usize,
                    data.len()
                ),
            ));
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// A copy of `r` (which must fit).
    pub fn crop(&self, r: Rect) -> Gray {
        let mut data = Vec::with_capacity(r.width as usize * r.height as usize);
        for y in r.y..r.y + r.height {
            let start = y as usize * self.width as usize + r.x as usize;
            data.extend_from_slice(&self.data[start..start + r.width as usize]);
        }
        Gray {
            width: r.width,
            height: r.height,
            data,
        }
    }

    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.width as usize;
        &self.data[start..start + self.width as usize]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn half_averages_two_by_two_blocks() {
        let mut rgb = Vec::new();
        for v in [0u8, 100, 200, 50, 10, 30, 90, 70, 255, 255] {
            rgb.extend_from_slice(&[v, v / 2, 255 - v]);
        }
        // 5x2: the fifth column is dropped.
        let f = Frame::from_rgb(5, 2, rgb, 7, 9).expect("frame");
        let h = f.half();
        assert_eq!((h.width, h.height, h.captured_at_us, h.seq), (2, 1, 7, 9));
        // (0 + 100 + 30 + 90) / 4 = 55; (200 + 50 + 70 + 255) / 4 = 143.75 -> 144
        assert_eq!(h.pixel(0, 0)[0], 55);
        assert_eq!(h.pixel(1, 0)[0], 144);
        let one = Frame::from_rgb(1, 1, vec![1, 2, 3], 0, 0)
            .expect("frame")
            .half();
        assert_eq!((one.width, one.height, one.pixel(0, 0)), (1, 1, [1, 2, 3]));
    }

    use super::*;

    #[test]
    fn rects_are_checked_against_the_frame() {
        assert!(
            Rect::new(0, 0, 1280, 720)
                .check_within("r", 1280, 720)
                .is_ok()
        );
        let e = Rect::new(1200, 0, 100, 10)
            .check_within("steps[2].region", 1280, 720)
            .expect_err("too wide");
        assert_eq!(e.field, "steps[2].region");
        assert!(Rect::new(0, 0, 0, 10).check_within("r", 1280, 720).is_err());
        assert!(
            Rect::new(u32::MAX, 0, 10, 10)
                .check_within("r", 1280, 720)
                .is_err(),
            "no overflow"
        );
    }

    #[test]
    fn luma_and_crop() {
        let f = Frame::from_rgb(
            2,
            2,
            vec![255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255],
            0,
            0,
        )
        .expect("frame");
        let g = f.to_gray();
        assert_eq!(g.data[0], 255);
        assert_eq!(g.data[1], 0);
        assert!(g.data[2] > 70 && g.data[2] < 80, "red luma {}", g.data[2]);
        assert_eq!(g.crop(Rect::new(1, 1, 1, 1)).data, vec![g.data[3]]);
        assert!(Frame::from_rgb(2, 2, vec![0; 5], 0, 0).is_err());
    }
}
