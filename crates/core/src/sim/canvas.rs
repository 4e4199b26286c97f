//! Drawing primitives over an RGB24 buffer: filled and outlined rectangles, repeated
//! rows and bitmap text. Everything is clipped to the buffer and integer-only, so output
//! is bit-for-bit reproducible.

use super::font;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// A mutable view of a `width` x `height` RGB24 buffer.
pub struct Canvas<'a> {
    buf: &'a mut [u8],
    width: u32,
    height: u32,
}

impl<'a> Canvas<'a> {
    /// `buf` must hold `width * height * 3` bytes; a shorter buffer is treated as having fewer rows.
    pub fn new(buf: &'a mut [u8], width: u32, height: u32) -> Self {
        let rows = (buf.len() / (width as usize * 3).max(1)) as u32;
        Self {
            buf,
            width,
            height: height.min(rows),
        }
    }

    /// Clips a rectangle given as signed position and size to the canvas: `(x0, y0, x1, y1)`.
    fn clip(&self, x: i32, y: i32, w: u32, h: u32) -> Option<(usize, usize, usize, usize)> {
        let x0 = i64::from(x).max(0);
        let y0 = i64::from(y).max(0);
        let x1 = (i64::from(x) + i64::from(w)).min(i64::from(self.width));
        let y1 = (i64::from(y) + i64::from(h)).min(i64::from(self.height));
        (x0 < x1 && y0 < y1).then_some((x0 as usize, y0 as usize, x1 as usize, y1 as usize))
    }

    fn row_mut(&mut self, y: usize, x0: usize, x1: usize) -> &mut [u8] {
        let stride = self.width as usize * 3;
        &mut self.buf[y * stride + x0 * 3..y * stride + x1 * 3]
    }

    pub fn fill(&mut self, x: i32, y: i32, w: u32, h: u32, c: Rgb) {
        let Some((x0, y0, x1, y1)) = self.clip(x, y, w, h) else {
            return;
        };
        for yy in y0..y1 {
            for px in self.row_mut(yy, x0, x1).chunks_exact_mut(3) {
                px.copy_from_slice(&c);
            }
        }
    }

    /// An outline of `t` pixels drawn inside the rectangle.
    pub fn frame(&mut self, x: i32, y: i32, w: u32, h: u32, t: u32, c: Rgb) {
        self.fill(x, y, w, t, c);
        self.fill(x, y + h as i32 - t as i32, w, t, c);
        self.fill(x, y, t, h, c);
        self.fill(x + w as i32 - t as i32, y, t, h, c);
    }

    /// Copies `row` (RGB bytes for columns `x..`) into rows `y0..y1`.
    pub fn repeat_row(&mut self, x: u32, row: &[u8], y0: u32, y1: u32) {
        let x0 = (x as usize).min(self.width as usize);
        let x1 = (x0 + row.len() / 3).min(self.width as usize);
        for yy in y0 as usize..(y1.min(self.height) as usize) {
            self.row_mut(yy, x0, x1)
                .copy_from_slice(&row[..(x1 - x0) * 3]);
        }
    }

    /// Draws `text` with its top-left corner at `(x, y)`; returns the drawn width.
    pub fn text(&mut self, x: i32, y: i32, scale: u32, c: Rgb, text: &str) -> u32 {
        let s = scale.max(1);
        let mut cx = x;
        for ch in text.chars() {
            let g = font::glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                if *bits == 0 {
                    continue;
                }
                let py = y + (row as u32 * s) as i32;
                // Runs of set bits become one rectangle each.
                let mut col = 0;
                while col < font::GLYPH_WIDTH {
                    if bits & (0x10 >> col) == 0 {
                        col += 1;
                        continue;
                    }
                    let start = col;
                    while col < font::GLYPH_WIDTH && bits & (0x10 >> col) != 0 {
                        col += 1;
                    }
                    self.fill(cx + (start * s) as i32, py, (col - start) * s, s, c);
                }
            }
            cx += (font::ADVANCE * s) as i32;
        }
        font::text_width(text, s)
    }

    /// Draws `text` horizontally centred on `center_x`.
    pub fn text_centered(&mut self, center_x: i32, y: i32, scale: u32, c: Rgb, text: &str) {
        let w = font::text_width(text, scale) as i32;
        self.text(center_x - w / 2, y, scale, c, text);
    }

    /// Draws `text` ending at `right_x`.
    pub fn text_right(&mut self, right_x: i32, y: i32, scale: u32, c: Rgb, text: &str) {
        let w = font::text_width(text, scale) as i32;
        self.text(right_x - w, y, scale, c, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_clipped_and_text_is_crisp() {
        let mut buf = vec![0u8; 20 * 10 * 3];
        let mut c = Canvas::new(&mut buf, 20, 10);
        c.fill(-5, -5, 8, 8, [1, 2, 3]);
        c.fill(18, 8, 100, 100, [9, 9, 9]);
        let w = c.text(6, 1, 1, [255, 255, 255], "I");
        assert_eq!(w, 5);
        assert_eq!(&buf[0..3], &[1, 2, 3]);
        assert_eq!(&buf[(2 * 20 + 2) * 3..(2 * 20 + 2) * 3 + 3], &[1, 2, 3]);
        assert_eq!(&buf[(3 * 20 + 3) * 3..(3 * 20 + 3) * 3 + 3], &[0, 0, 0]);
        assert_eq!(&buf[(9 * 20 + 19) * 3..], &[9, 9, 9]);
        // 'I' top row is 01110: columns 7..10 of row 1 are white, 6 and 10 are not.
        let px = |x: usize, y: usize| buf[(y * 20 + x) * 3];
        assert_eq!((px(6, 1), px(7, 1), px(9, 1), px(10, 1)), (0, 255, 255, 0));
        // Every pixel is either the background or the exact text colour: no smoothing.
        assert!(
            buf.chunks_exact(3).all(|p| p == [0, 0, 0]
                || p == [255, 255, 255]
                || p == [1, 2, 3]
                || p == [9, 9, 9])
        );
    }
}
