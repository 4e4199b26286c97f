use labwright_core::{
    frame::Frame,
    jpeg::{JpegProfile, encode},
};

use super::*;

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const RED: [u8; 3] = [255, 0, 0];
const GREY: [u8; 3] = [128, 128, 128];

fn pixels(rgb: &[u8]) -> Vec<[u8; 3]> {
    rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect()
}

#[test]
fn yuyv_known_values_with_row_padding() {
    // 2x2, stride 6 (2 bytes of padding per row, absent after the last row).
    // Row 0: white (Y 235) and black (Y 16) on neutral chroma. Row 1: two BT.601 reds
    // (Y 81, U 90, V 240).
    let src = [235, 128, 16, 128, 0xEE, 0xEE, 81, 90, 81, 240];
    let mut out = Vec::new();
    yuyv_to_rgb(2, 2, 6, &src, &mut out).expect("converted");
    assert_eq!(pixels(&out), vec![WHITE, BLACK, RED, RED]);
    // Mid grey: Y 126 on neutral chroma is 128.
    to_rgb(FourCc::YUYV, 2, 1, 4, &[126, 128, 126, 128], &mut out).expect("converted");
    assert_eq!(pixels(&out), vec![GREY, GREY]);
}

#[test]
fn yuyv_odd_width_uses_the_last_pair_chroma() {
    let src = [235, 128, 235, 128, 81, 90];
    let mut out = Vec::new();
    yuyv_to_rgb(3, 1, 6, &src, &mut out).expect("converted");
    let p = pixels(&out);
    assert_eq!(&p[..2], &[WHITE, WHITE]);
    // Y 81 with U 90 and no V (neutral): less blue, a little more green.
    assert_eq!(p[2], [76, 91, 0]);
}

#[test]
fn nv12_known_values_with_row_padding() {
    // 4x2, stride 6: two luma rows, one chroma row. Left 2x2 block neutral chroma
    // (white, black), right block red.
    #[rustfmt::skip]
    let src = [
        235, 16, 81, 81, 0, 0,
        16, 235, 81, 81, 0, 0,
        128, 128, 90, 240,
    ];
    let mut out = Vec::new();
    nv12_to_rgb(4, 2, 6, &src, &mut out).expect("converted");
    assert_eq!(
        pixels(&out),
        vec![WHITE, BLACK, RED, RED, BLACK, WHITE, RED, RED]
    );
}

#[test]
fn nv12_odd_size() {
    // 3x3: 3 luma rows and 2 chroma rows of 4 bytes (2 pairs), stride 4.
    #[rustfmt::skip]
    let src = [
        235, 235, 16, 0,
        235, 235, 16, 0,
        126, 126, 126, 0,
        128, 128, 128, 128,
        128, 128, 128, 128,
    ];
    let mut out = Vec::new();
    nv12_to_rgb(3, 3, 4, &src, &mut out).expect("converted");
    assert_eq!(
        pixels(&out),
        vec![WHITE, WHITE, BLACK, WHITE, WHITE, BLACK, GREY, GREY, GREY]
    );
}

#[test]
fn rgb24_and_bgr24_drop_padding() {
    let src = [1, 2, 3, 4, 5, 6, 9, 9, 7, 8, 9, 10, 11, 12];
    let mut out = Vec::new();
    to_rgb(FourCc::RGB24, 2, 2, 8, &src, &mut out).expect("rgb");
    assert_eq!(out, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    to_rgb(FourCc::BGR24, 2, 2, 8, &src, &mut out).expect("bgr");
    assert_eq!(out, vec![3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10]);
}

#[test]
fn short_buffers_bad_strides_and_unknown_formats_are_errors() {
    let mut out = Vec::new();
    let e = yuyv_to_rgb(4, 2, 8, &[0; 15], &mut out).expect_err("short");
    assert_eq!(
        e.to_string(),
        "YUYV 4x2 with stride 8 needs 16 bytes, got 15"
    );
    let e = yuyv_to_rgb(4, 2, 6, &[0; 64], &mut out).expect_err("stride");
    assert!(
        matches!(e, ConvertError::BadStride { stride: 6, .. }),
        "{e}"
    );
    let e = nv12_to_rgb(4, 2, 4, &[0; 10], &mut out).expect_err("no chroma");
    assert!(
        matches!(e, ConvertError::ShortBuffer { needed: 12, .. }),
        "{e}"
    );
    let grey = FourCc::parse("GREY").expect("code");
    let e = to_rgb(grey, 2, 2, 2, &[0; 4], &mut out).expect_err("unsupported");
    assert_eq!(
        e.to_string(),
        "pixel format GREY is not supported (supported: RGB3, BGR3, YUYV, NV12, MJPG)"
    );
}

fn test_card(width: u32, height: u32) -> Frame {
    // Four flat quadrants: red, green, blue, white (flat areas survive JPEG almost exactly).
    let mut rgb = Vec::new();
    for y in 0..height {
        for x in 0..width {
            let c = match (x < width / 2, y < height / 2) {
                (true, true) => [255, 0, 0],
                (false, true) => [0, 255, 0],
                (true, false) => [0, 0, 255],
                (false, false) => [255, 255, 255],
            };
            rgb.extend_from_slice(&c);
        }
    }
    Frame::from_rgb(width, height, rgb, 0, 0).expect("frame")
}

/// Removes every DHT segment, as UVC cameras send MJPEG (the decoder must use the standard
/// tables of JPEG Annex K).
fn strip_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        let marker = jpeg[i + 1];
        if marker == 0xDA {
            out.extend_from_slice(&jpeg[i..]);
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if marker != 0xC4 {
            out.extend_from_slice(&jpeg[i..i + 2 + len]);
        }
        i += 2 + len;
    }
    out
}

fn assert_near(got: [u8; 3], want: [u8; 3]) {
    for c in 0..3 {
        assert!(
            got[c].abs_diff(want[c]) <= 6,
            "pixel {got:?}, expected about {want:?}"
        );
    }
}

#[test]
fn mjpeg_frames_decode_with_and_without_huffman_tables() {
    let card = test_card(64, 48);
    let jpeg = encode(&card, 95, JpegProfile::Live).expect("encoded");
    let uvc = strip_huffman_tables(&jpeg);
    assert!(uvc.len() < jpeg.len(), "tables stripped");
    for data in [&jpeg, &uvc] {
        let mut out = Vec::new();
        to_rgb(FourCc::MJPEG, 64, 48, 0, data, &mut out).expect("decoded");
        let got = Frame::from_rgb(64, 48, out, 0, 0).expect("frame");
        assert_near(got.pixel(8, 8), [255, 0, 0]);
        assert_near(got.pixel(56, 8), [0, 255, 0]);
        assert_near(got.pixel(8, 40), [0, 0, 255]);
        assert_near(got.pixel(56, 40), [255, 255, 255]);
    }
}

#[test]
fn mjpeg_errors() {
    let jpeg = encode(&test_card(32, 16), 80, JpegProfile::Live).expect("encoded");
    let mut out = Vec::new();
    let e = mjpeg_to_rgb(64, 48, &jpeg, &mut out).expect_err("size");
    assert_eq!(e.to_string(), "mjpeg frame is 32x16, the stream is 64x48");
    let e = mjpeg_to_rgb(32, 16, b"not a jpeg", &mut out).expect_err("garbage");
    assert!(matches!(e, ConvertError::Jpeg(_)), "{e}");
    let e = mjpeg_to_rgb(32, 16, &jpeg[..jpeg.len() / 3], &mut out);
    // A truncated frame either fails or decodes partially; it never panics.
    drop(e);
}

#[test]
fn fourcc_codes_parse_and_print() {
    assert_eq!(FourCc::parse("YUYV"), Some(FourCc::YUYV));
    assert_eq!(FourCc::parse("RGB3"), Some(FourCc::RGB24));
    assert_eq!(
        FourCc::parse("Y8").map(|f| f.to_string()).as_deref(),
        Some("Y8  ")
    );
    assert_eq!(FourCc::parse(""), None);
    assert_eq!(FourCc::parse("TOOLONG"), None);
    assert!(FourCc::RGB24.preference() < FourCc::MJPEG.preference());
}
