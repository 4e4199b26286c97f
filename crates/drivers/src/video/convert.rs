//! Pixel conversions from what capture devices deliver to core's RGB frames: packed YUYV
//! (UVC dongles), NV12 (capture cards, Pi bridges), RGB24/BGR24, and MJPEG (decoded by
//! `zune-jpeg`, SIMD, which also fills in the Huffman tables UVC devices leave out).
//!
//! YUV is BT.601 limited range (16–235 luma, 16–240 chroma), what capture hardware sends for
//! SD and most HD sources, in 8.8 fixed point. Rows may be padded (`stride` ≥ the row's bytes).

use std::fmt;

/// A V4L2 pixel format code (`YUYV`, `NV12`, `RGB3`, `BGR3`, `MJPG`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    pub const YUYV: FourCc = FourCc(*b"YUYV");
    pub const NV12: FourCc = FourCc(*b"NV12");
    pub const RGB24: FourCc = FourCc(*b"RGB3");
    pub const BGR24: FourCc = FourCc(*b"BGR3");
    pub const MJPEG: FourCc = FourCc(*b"MJPG");
    /// Some UVC devices call their MJPEG `JPEG`.
    pub const JPEG: FourCc = FourCc(*b"JPEG");

    /// Formats this crate converts, most preferred first when everything else is equal
    /// (uncompressed before MJPEG: no artefacts, no decode cost).
    pub const SUPPORTED: [FourCc; 6] = [
        FourCc::RGB24,
        FourCc::BGR24,
        FourCc::YUYV,
        FourCc::NV12,
        FourCc::MJPEG,
        FourCc::JPEG,
    ];

    /// Parses a four-character code (`"YUYV"`); shorter codes are padded with spaces.
    pub fn parse(s: &str) -> Option<FourCc> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 4 || !b.iter().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        let mut code = [b' '; 4];
        code[..b.len()].copy_from_slice(b);
        Some(FourCc(code))
    }

    pub fn is_supported(self) -> bool {
        Self::SUPPORTED.contains(&self)
    }

    /// Rank among [`Self::SUPPORTED`] (lower is preferred); unsupported formats rank last.
    pub fn preference(self) -> usize {
        Self::SUPPORTED
            .iter()
            .position(|f| *f == self)
            .unwrap_or(usize::MAX)
    }

    /// Bytes per row without padding, for the packed and planar formats (0 for compressed).
    pub fn min_stride(self, width: u32) -> usize {
        let w = width as usize;
        match self {
            FourCc::YUYV => w * 2,
            FourCc::NV12 => w,
            FourCc::RGB24 | FourCc::BGR24 => w * 3,
            _ => 0,
        }
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &c in &self.0 {
            let c = if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc({self})")
    }
}

/// Why a buffer could not be converted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("pixel format {0} is not supported (supported: RGB3, BGR3, YUYV, NV12, MJPG)")]
    Unsupported(FourCc),
    #[error("{format} {width}x{height} with stride {stride} needs {needed} bytes, got {got}")]
    ShortBuffer {
        format: FourCc,
        width: u32,
        height: u32,
        stride: usize,
        needed: usize,
        got: usize,
    },
    #[error("{format} stride {stride} is less than a {width} pixel row")]
    BadStride {
        format: FourCc,
        width: u32,
        stride: usize,
    },
    #[error("mjpeg frame: {0}")]
    Jpeg(String),
    #[error("mjpeg frame is {got_width}x{got_height}, the stream is {width}x{height}")]
    JpegSize {
        width: u32,
        height: u32,
        got_width: u32,
        got_height: u32,
    },
}

/// Converts one captured buffer to packed RGB (`width * height * 3` bytes) into `out`.
pub fn to_rgb(
    format: FourCc,
    width: u32,
    height: u32,
    stride: usize,
    src: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    match format {
        FourCc::YUYV => yuyv_to_rgb(width, height, stride, src, out),
        FourCc::NV12 => nv12_to_rgb(width, height, stride, src, out),
        FourCc::RGB24 => packed_rgb(width, height, stride, src, out, false),
        FourCc::BGR24 => packed_rgb(width, height, stride, src, out, true),
        FourCc::MJPEG | FourCc::JPEG => mjpeg_to_rgb(width, height, src, out),
        other => Err(ConvertError::Unsupported(other)),
    }
}

/// Checks the stride and that `rows` rows fit (the last row need not carry its padding).
fn check(
    format: FourCc,
    width: u32,
    height: u32,
    stride: usize,
    rows: usize,
    src: &[u8],
) -> Result<(), ConvertError> {
    let row = format.min_stride(width);
    if stride < row {
        return Err(ConvertError::BadStride {
            format,
            width,
            stride,
        });
    }
    let needed = if rows == 0 {
        0
    } else {
        stride * (rows - 1) + row
    };
    ensure_len(format, width, height, stride, needed, src)
}

fn ensure_len(
    format: FourCc,
    width: u32,
    height: u32,
    stride: usize,
    needed: usize,
    src: &[u8],
) -> Result<(), ConvertError> {
    if src.len() < needed {
        return Err(ConvertError::ShortBuffer {
            format,
            width,
            height,
            stride,
            needed,
            got: src.len(),
        });
    }
    Ok(())
}

#[inline(always)]
fn clamp8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// BT.601 limited range, 8.8 fixed point: one pixel from its luma and its chroma terms.
#[inline(always)]
fn put_pixel(out: &mut [u8], y: u8, r_v: i32, g_uv: i32, b_u: i32) {
    let c = (i32::from(y) - 16) * 298 + 128;
    out[0] = clamp8((c + r_v) >> 8);
    out[1] = clamp8((c - g_uv) >> 8);
    out[2] = clamp8((c + b_u) >> 8);
}

#[inline(always)]
fn chroma(u: u8, v: u8) -> (i32, i32, i32) {
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    (409 * e, 100 * d + 208 * e, 516 * d)
}

/// Packed 4:2:2 `Y0 U Y1 V`: two pixels share one chroma pair. An odd width's last pixel uses
/// its pair's chroma.
pub fn yuyv_to_rgb(
    width: u32,
    height: u32,
    stride: usize,
    src: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    check(FourCc::YUYV, width, height, stride, height as usize, src)?;
    let (w, h) = (width as usize, height as usize);
    out.clear();
    out.resize(w * h * 3, 0);
    let pairs = w / 2;
    for (y, dst_row) in out.chunks_exact_mut(w * 3).enumerate() {
        let row = &src[y * stride..y * stride + w * 2];
        for (s, d) in row
            .chunks_exact(4)
            .zip(dst_row.chunks_exact_mut(6))
            .take(pairs)
        {
            let (rv, guv, bu) = chroma(s[1], s[3]);
            put_pixel(&mut d[0..3], s[0], rv, guv, bu);
            put_pixel(&mut d[3..6], s[2], rv, guv, bu);
        }
        if w % 2 == 1 {
            // The last pixel: Y at 2*(w-1), its pair's U and V after it (a YUYV row holds an
            // even number of pixels' worth of bytes only when the device pads it).
            let i = (w - 1) * 2;
            let (u, v) = (row[i + 1], row.get(i + 3).copied().unwrap_or(128));
            let (rv, guv, bu) = chroma(u, v);
            put_pixel(&mut dst_row[(w - 1) * 3..w * 3], row[i], rv, guv, bu);
        }
    }
    Ok(())
}

/// Planar 4:2:0: a `height`-row luma plane, then `ceil(height / 2)` rows of interleaved `U V`,
/// both with `stride` bytes per row. Each chroma pair covers a 2x2 block.
pub fn nv12_to_rgb(
    width: u32,
    height: u32,
    stride: usize,
    src: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    let (w, h) = (width as usize, height as usize);
    let chroma_rows = h.div_ceil(2);
    let chroma_row = w.div_ceil(2) * 2;
    // Luma rows then chroma rows; a chroma row is 2 * ceil(w / 2) bytes.
    check(FourCc::NV12, width, height, stride, h, src)?;
    let uv_start = stride * h;
    let needed = uv_start + stride * chroma_rows.saturating_sub(1) + chroma_row;
    ensure_len(FourCc::NV12, width, height, stride, needed, src)?;
    out.clear();
    out.resize(w * h * 3, 0);
    for (y, dst_row) in out.chunks_exact_mut(w * 3).enumerate() {
        let luma = &src[y * stride..y * stride + w];
        let uv_off = uv_start + (y / 2) * stride;
        let uv = &src[uv_off..uv_off + chroma_row];
        for ((l, c), d) in luma
            .chunks(2)
            .zip(uv.chunks_exact(2))
            .zip(dst_row.chunks_mut(6))
        {
            let (rv, guv, bu) = chroma(c[0], c[1]);
            put_pixel(&mut d[0..3], l[0], rv, guv, bu);
            if let (Some(&l1), true) = (l.get(1), d.len() == 6) {
                put_pixel(&mut d[3..6], l1, rv, guv, bu);
            }
        }
    }
    Ok(())
}

/// RGB24 or BGR24 (swapped), dropping row padding.
pub fn packed_rgb(
    width: u32,
    height: u32,
    stride: usize,
    src: &[u8],
    out: &mut Vec<u8>,
    bgr: bool,
) -> Result<(), ConvertError> {
    let format = if bgr { FourCc::BGR24 } else { FourCc::RGB24 };
    check(format, width, height, stride, height as usize, src)?;
    let (w, h) = (width as usize, height as usize);
    out.clear();
    out.reserve(w * h * 3);
    for y in 0..h {
        let row = &src[y * stride..y * stride + w * 3];
        if bgr {
            out.extend(row.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]));
        } else {
            out.extend_from_slice(row);
        }
    }
    Ok(())
}

/// Decodes one MJPEG frame to RGB; its size must be the stream's.
pub fn mjpeg_to_rgb(
    width: u32,
    height: u32,
    src: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    use zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};
    use zune_jpeg::JpegDecoder;

    let with_tables;
    let src = if needs_default_tables(src) {
        with_tables = mark_as_mjpeg(src);
        &with_tables[..]
    } else {
        src
    };
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(width as usize)
        .set_max_height(height as usize);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(src), options);
    decoder
        .decode_headers()
        .map_err(|e| ConvertError::Jpeg(e.to_string()))?;
    let info = decoder
        .info()
        .ok_or_else(|| ConvertError::Jpeg("no frame header".into()))?;
    let (gw, gh) = (u32::from(info.width), u32::from(info.height));
    if (gw, gh) != (width, height) {
        return Err(ConvertError::JpegSize {
            width,
            height,
            got_width: gw,
            got_height: gh,
        });
    }
    out.clear();
    out.resize(width as usize * height as usize * 3, 0);
    decoder
        .decode_into(out)
        .map_err(|e| ConvertError::Jpeg(e.to_string()))
}

/// Whether a JPEG lacks Huffman tables (no DHT segment before its scan) and the `AVI1` mark
/// that tells the decoder to use the standard ones: UVC devices send such frames.
fn needs_default_tables(jpeg: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        match marker {
            0xC4 => return false,
            0xE0 if jpeg.get(i + 4..i + 9) == Some(b"AVI1\0") => return false,
            0xDA => return true,
            _ => i += 2 + len,
        }
    }
    false
}

/// The frame with an `APP0 AVI1` segment after its start marker: the decoder then fills in
/// JPEG's standard Huffman tables (Annex K.3), as MJPEG in AVI and UVC assumes.
fn mark_as_mjpeg(jpeg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(jpeg.len() + 9);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x07]);
    out.extend_from_slice(b"AVI1\0");
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[cfg(test)]
mod tests;
