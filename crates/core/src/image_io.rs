//! Decoding uploaded reference images (PNG and JPEG only) into [`Frame`]s and [`Gray`] images,
//! and lossless PNG encoding of frames.
//!
//! Uploaded bytes are untrusted: the format is sniffed from the content (not a file name), the
//! size is checked against [`MAX_DIMENSION`] from the header before any pixel is decoded, and
//! decoder memory is capped. Luma uses the same BT.601 weights as [`Frame::to_gray`], so a
//! reference cut from a captured frame decodes to exactly the luma it had. Alpha is dropped
//! (reference images are screenshots).

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::frame::{Frame, Gray};

/// Largest accepted width or height.
pub const MAX_DIMENSION: u32 = 8192;
/// Most pixels accepted in one image: a 4K screen. Reference images are screenshots; the
/// dimension limit alone allowed 8192x8192 (a 60 KiB PNG that took seconds and ~576 MiB to
/// decode).
pub const MAX_PIXELS: u64 = 3840 * 2160;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageIoError {
    /// No bytes at all.
    #[error("image is empty")]
    Empty,
    /// Neither PNG nor JPEG (by content).
    #[error("image format is not supported (expected png or jpeg)")]
    UnsupportedFormat,
    /// Wider or taller than [`MAX_DIMENSION`].
    #[error("image {width}x{height} is too large (at most {max}x{max})")]
    TooLarge { width: u32, height: u32, max: u32 },
    /// More than [`MAX_PIXELS`] pixels.
    #[error("image {width}x{height} has too many pixels (at most {max})")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    /// The bytes are not a valid image of the sniffed format.
    #[error("image could not be decoded: {0}")]
    Decode(String),
    /// Encoding failed.
    #[error("image could not be encoded: {0}")]
    Encode(String),
}

impl ImageIoError {
    /// A stable, machine-readable code for the API layer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "image_empty",
            Self::UnsupportedFormat => "image_format_unsupported",
            Self::TooLarge { .. } | Self::TooManyPixels { .. } => "image_too_large",
            Self::Decode(_) => "image_invalid",
            Self::Encode(_) => "image_encode_failed",
        }
    }
}

/// Decodes a PNG or JPEG into an RGB frame (`captured_at_us` and `seq` are 0).
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, ImageIoError> {
    if bytes.is_empty() {
        return Err(ImageIoError::Empty);
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        _ => return Err(ImageIoError::UnsupportedFormat),
    };
    let decode_error = |e: image::ImageError| ImageIoError::Decode(e.to_string());
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(decode_error)?;
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(ImageIoError::TooLarge {
            width,
            height,
            max: MAX_DIMENSION,
        });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageIoError::TooManyPixels {
            width,
            height,
            max: MAX_PIXELS,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    // RGBA16 at the most pixels, plus decoder slack.
    limits.max_alloc = Some(MAX_PIXELS * 8 + (16 << 20));
    reader.limits(limits);
    let rgb = reader.decode().map_err(decode_error)?.into_rgb8();
    let (width, height) = rgb.dimensions();
    Frame::from_rgb(width, height, rgb.into_raw(), 0, 0)
        .map_err(|e| ImageIoError::Decode(e.message))
}

/// Decodes a PNG or JPEG into luma (BT.601, like [`Frame::to_gray`]).
pub fn decode_gray(bytes: &[u8]) -> Result<Gray, ImageIoError> {
    Ok(decode_frame(bytes)?.to_gray())
}

/// Encodes a frame as an RGB PNG (lossless).
pub fn encode_png(frame: &Frame) -> Result<Vec<u8>, ImageIoError> {
    encode_png_raw(
        &frame.rgb,
        frame.width,
        frame.height,
        image::ExtendedColorType::Rgb8,
    )
}

/// Encodes a luma image as an 8-bit greyscale PNG (lossless).
pub fn encode_gray_png(gray: &Gray) -> Result<Vec<u8>, ImageIoError> {
    encode_png_raw(
        &gray.data,
        gray.width,
        gray.height,
        image::ExtendedColorType::L8,
    )
}

fn encode_png_raw(
    data: &[u8],
    width: u32,
    height: u32,
    color: image::ExtendedColorType,
) -> Result<Vec<u8>, ImageIoError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(data, width, height, color)
        .map_err(|e| ImageIoError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32) -> Frame {
        let rgb = (0..width * height)
            .flat_map(|i| [(i % 251) as u8, (i * 7 % 256) as u8, 128])
            .collect();
        Frame::from_rgb(width, height, rgb, 0, 0).expect("frame")
    }

    #[test]
    fn png_round_trips_exactly() {
        let f = frame(33, 17);
        let png = encode_png(&f).expect("encodes");
        assert_eq!(decode_frame(&png).expect("decodes").rgb, f.rgb);
        assert_eq!(decode_gray(&png).expect("decodes"), f.to_gray());
        let g = f.to_gray();
        let png = encode_gray_png(&g).expect("encodes");
        assert_eq!(
            decode_gray(&png).expect("decodes"),
            g,
            "grey PNGs keep their exact luma"
        );
    }

    #[test]
    fn jpeg_decodes() {
        let f = frame(64, 48);
        let jpeg = crate::jpeg::encode(&f, 90, crate::jpeg::JpegProfile::Live).expect("encodes");
        let d = decode_frame(&jpeg).expect("decodes");
        assert_eq!((d.width, d.height), (64, 48));
    }

    #[test]
    fn garbage_is_rejected_clearly() {
        assert_eq!(decode_frame(&[]), Err(ImageIoError::Empty));
        assert_eq!(
            decode_frame(b"hello, world"),
            Err(ImageIoError::UnsupportedFormat)
        );
        // GIF is a real image format, but not one we accept.
        assert_eq!(
            decode_frame(b"GIF89a\x01\x00\x01\x00"),
            Err(ImageIoError::UnsupportedFormat)
        );
        // A PNG signature followed by garbage, and a truncated PNG.
        let e = decode_frame(b"\x89PNG\r\n\x1a\nnot really a png").expect_err("garbage");
        assert_eq!(e.code(), "image_invalid");
        let png = encode_png(&frame(40, 40)).expect("encodes");
        assert_eq!(
            decode_frame(&png[..png.len() / 2]).map_err(|e| e.code()),
            Err("image_invalid")
        );
    }

    #[test]
    fn oversized_images_are_rejected_before_decoding() {
        // A valid header claiming 9000x10 pixels (the pixel data is never read).
        let png =
            encode_gray_png(&Gray::new(9000, 1, vec![0; 9000]).expect("gray")).expect("encodes");
        assert_eq!(
            decode_frame(&png),
            Err(ImageIoError::TooLarge {
                width: 9000,
                height: 1,
                max: MAX_DIMENSION
            })
        );
        assert_eq!(
            decode_frame(&png).expect_err("too large").to_string(),
            "image 9000x1 is too large (at most 8192x8192)"
        );
    }

    #[test]
    fn images_with_more_pixels_than_a_4k_screen_are_rejected_before_decoding() {
        // Only a header: 8192x8192 (in bounds per side; 64 Mpx, ~576 MiB to decode before).
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&8192u32.to_be_bytes());
        ihdr.extend_from_slice(&8192u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // An empty first data chunk: the decoder reads the header up to it.
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        let e = decode_frame(&png).expect_err("too many pixels");
        assert_eq!(
            e,
            ImageIoError::TooManyPixels {
                width: 8192,
                height: 8192,
                max: MAX_PIXELS
            }
        );
        assert_eq!(e.code(), "image_too_large");
        assert_eq!(
            decode_gray(&png).map_err(|e| e.code()),
            Err("image_too_large")
        );
        // A 4K screenshot is still fine.
        let gray = Gray::new(3840, 2160, vec![7; 3840 * 2160]).expect("gray");
        let png = encode_gray_png(&gray).expect("encodes");
        assert_eq!(decode_gray(&png).expect("decodes").width, 3840);
    }

    /// CRC-32 of a PNG chunk (type and data).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
