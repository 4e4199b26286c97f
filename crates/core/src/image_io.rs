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
            Self::TooLarge { .. } => "image_too_large",
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
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    // RGBA16 at the largest size, plus decoder slack.
    limits.max_alloc = Some(u64::from(MAX_DIMENSION) * u64::from(MAX_DIMENSION) * 8 + (64 << 20));
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
}
