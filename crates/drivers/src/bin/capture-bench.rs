//! Capture-path benchmark (driven by `scripts/bench-capture`, which runs the baselines on the
//! same buffers): per-1080p-frame cost of YUYV→RGB, NV12→RGB and MJPEG decoding as the V4L2
//! driver does them, single-threaded.
//!
//! `capture-bench DIR [RUNS]` writes `frame.yuyv`, `frame.nv12` and `frame.jpg` (a 1920x1080
//! test card: colour bars, gradients and fine texture, JPEG quality 85 4:2:0 with the standard
//! Huffman tables as capture dongles send) into DIR, times each conversion RUNS times (after a
//! warm-up) and prints one line per operation: `name median_ms min_ms max_ms runs`.

use std::{path::PathBuf, time::Instant};

use labwright_core::{
    frame::Frame,
    jpeg::{JpegProfile, encode},
};
use labwright_drivers::video::convert::{mjpeg_to_rgb, nv12_to_rgb, yuyv_to_rgb};

const W: usize = 1920;
const H: usize = 1080;

fn test_card() -> Vec<u8> {
    let bars: [[u8; 3]; 8] = [
        [235, 235, 235],
        [235, 235, 16],
        [16, 235, 235],
        [16, 235, 16],
        [235, 16, 235],
        [235, 16, 16],
        [16, 16, 235],
        [16, 16, 16],
    ];
    let mut seed = 0x2545_f491_u32;
    let mut rgb = Vec::with_capacity(W * H * 3);
    for y in 0..H {
        for x in 0..W {
            // Deterministic texture (xorshift), so the JPEG is not trivially compressible.
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = (seed & 15) as i32 - 8;
            let px = if y < H / 2 {
                bars[x * 8 / W]
            } else {
                let g = (x * 255 / W) as u8;
                let v = (y * 255 / H) as u8;
                [g, v, 255 - g]
            };
            for c in px {
                rgb.push((i32::from(c) + noise).clamp(0, 255) as u8);
            }
        }
    }
    rgb
}

/// BT.601 limited range, the reference direction (what a capture device does).
fn yuv(p: &[u8]) -> (u8, u8, u8) {
    let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    (y.round() as u8, u.round() as u8, v.round() as u8)
}

fn to_yuyv(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(W * H * 2);
    for pair in rgb.chunks_exact(6) {
        let (y0, u, v) = yuv(&pair[..3]);
        let (y1, _, _) = yuv(&pair[3..]);
        out.extend_from_slice(&[y0, u, y1, v]);
    }
    out
}

fn to_nv12(rgb: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; W * H + W * H / 2];
    for y in 0..H {
        for x in 0..W {
            let i = (y * W + x) * 3;
            let (l, u, v) = yuv(&rgb[i..i + 3]);
            out[y * W + x] = l;
            if y % 2 == 0 && x % 2 == 0 {
                let c = W * H + (y / 2) * W + x;
                out[c] = u;
                out[c + 1] = v;
            }
        }
    }
    out
}

fn time(name: &str, runs: usize, mut f: impl FnMut()) {
    for _ in 0..3 {
        f();
    }
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "{name} {:.3} {:.3} {:.3} {runs}",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1]
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: capture-bench DIR [RUNS]")?);
    let runs: usize = args
        .next()
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(15)
        .max(1);
    let rgb = test_card();
    let yuyv = to_yuyv(&rgb);
    let nv12 = to_nv12(&rgb);
    let frame = Frame::from_rgb(W as u32, H as u32, rgb, 0, 0)?;
    let jpeg = encode(&frame, 85, JpegProfile::Live)?;
    std::fs::write(dir.join("frame.yuyv"), &yuyv)?;
    std::fs::write(dir.join("frame.nv12"), &nv12)?;
    std::fs::write(dir.join("frame.jpg"), &jpeg)?;
    let (w, h) = (W as u32, H as u32);
    let mut out = Vec::new();
    time("yuyv_to_rgb", runs, || {
        yuyv_to_rgb(w, h, W * 2, &yuyv, &mut out).expect("yuyv");
    });
    time("nv12_to_rgb", runs, || {
        nv12_to_rgb(w, h, W, &nv12, &mut out).expect("nv12");
    });
    time("mjpeg_decode", runs, || {
        mjpeg_to_rgb(w, h, &jpeg, &mut out).expect("mjpeg");
    });
    Ok(())
}
