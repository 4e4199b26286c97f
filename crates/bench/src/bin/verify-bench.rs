//! Verification and JPEG benchmark: labwright-core's template matching, black/freeze/motion
//! checks and mozjpeg encoding, side by side with OpenCV (`cv2.matchTemplate`,
//! `TM_CCOEFF_NORMED`) and Pillow (libjpeg-turbo) on the same images, in the same run.
//!
//! Generates deterministic test images into `--work-dir` (PNG), measures the Rust side, runs the
//! Python baseline (`crates/bench/python/verify_baseline.py`) on the same files, and prints each
//! result with its baseline, the goal from the issue and whether it is met. Everything runs on
//! one thread. Run through `scripts/bench-verify`, which builds this in release mode and sets up
//! the Python virtualenv.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, bail};
use clap::Parser;
use labwright_core::{
    frame::{Frame, Gray, Rect},
    image_io,
    jpeg::{self, JpegProfile},
    verify::{self, BlackParams},
};

#[derive(Parser)]
struct Args {
    /// Directory for the generated images and the baseline's output.
    #[arg(long)]
    work_dir: PathBuf,
    /// Timed runs per measurement (the median is reported).
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// Python interpreter with opencv-python-headless and Pillow.
    #[arg(long)]
    python: PathBuf,
    /// The baseline script.
    #[arg(long)]
    baseline: PathBuf,
    /// Interleaved rounds of the template-match comparison (OpenCV, then labwright, each timed
    /// `--runs` times per round); the median and spread over rounds are printed.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// A frame of your own to match in (PNG or JPEG; matched in grey), besides the two shipped.
    #[arg(long, requires = "template")]
    frame: Option<PathBuf>,
    /// The reference image to find in `--frame`.
    #[arg(long, requires = "frame")]
    template: Option<PathBuf>,
    /// Only run labwright's matcher this many times on each job and print what it found (no
    /// baseline, no timing): a workload for `valgrind --tool=callgrind` or `perf`.
    #[arg(long)]
    profile: Option<usize>,
    /// Also search only this region of `--frame`: `x,y,width,height`.
    #[arg(long, requires = "frame", value_parser = parse_rect)]
    region: Option<Rect>,
}

fn parse_rect(s: &str) -> Result<Rect, String> {
    let v: Vec<u32> = s
        .split(',')
        .map(|p| p.trim().parse::<u32>().map_err(|e| format!("{p}: {e}")))
        .collect::<Result<_, _>>()?;
    match v[..] {
        [x, y, w, h] => Ok(Rect::new(x, y, w, h)),
        _ => Err("expected x,y,width,height".into()),
    }
}

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
/// Where the template is cut from the UI frame.
const TEMPLATE: Rect = Rect::new(1234, 567, 200, 120);
/// Where the template is cut from the photo (grass and the horizon's edge).
const PHOTO_TEMPLATE: Rect = Rect::new(611, 553, 200, 120);

/// One template search, given to both sides: grey PNGs in the work directory.
struct MatchJob {
    name: String,
    frame: Gray,
    template: Gray,
    region: Option<Rect>,
    /// Where the template was cut from (checked), when known.
    expected: Option<(u32, u32)>,
}

/// A search region around `at` (the template's place), as tests usually restrict one: 400x300,
/// inside the frame.
fn region_around(frame: &Gray, at: Rect) -> Rect {
    let (w, h) = (400.min(frame.width), 300.min(frame.height));
    let x = at.x.saturating_sub(100).min(frame.width - w);
    let y = at.y.saturating_sub(90).min(frame.height - h);
    Rect::new(x, y, w, h)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating {}", args.work_dir.display()))?;

    let frame = ui_frame(WIDTH, HEIGHT, 1);
    let photo = photo(WIDTH, HEIGHT, 2);
    write(
        &args.work_dir.join("photo.png"),
        &image_io::encode_png(&photo)?,
    )?;

    let photo_gray = photo.to_gray();
    let mut jobs = Vec::new();
    for (name, frame, at) in [
        ("synthetic UI", &frame, TEMPLATE),
        ("photo", &photo_gray, PHOTO_TEMPLATE),
    ] {
        let template = frame.crop(at);
        jobs.push(MatchJob {
            name: format!("{name}, whole frame"),
            frame: frame.clone(),
            template: template.clone(),
            region: None,
            expected: Some((at.x, at.y)),
        });
        jobs.push(MatchJob {
            name: format!("{name}, 400x300 region"),
            frame: frame.clone(),
            template,
            region: Some(region_around(frame, at)),
            expected: Some((at.x, at.y)),
        });
    }
    if let (Some(f), Some(t)) = (&args.frame, &args.template) {
        let read = |p: &PathBuf| -> anyhow::Result<Gray> {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            image_io::decode_gray(&bytes).with_context(|| format!("decoding {}", p.display()))
        };
        let (frame, template) = (read(f)?, read(t)?);
        jobs.push(MatchJob {
            name: format!("{}, whole frame", f.display()),
            frame: frame.clone(),
            template: template.clone(),
            region: None,
            expected: None,
        });
        if let Some(region) = args.region {
            jobs.push(MatchJob {
                name: format!(
                    "{}, region {},{} {}x{}",
                    f.display(),
                    region.x,
                    region.y,
                    region.width,
                    region.height
                ),
                frame,
                template,
                region: Some(region),
                expected: None,
            });
        }
    }
    let mut listing = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let (f, t) = (
            format!("match{i}-frame.png"),
            format!("match{i}-template.png"),
        );
        write(
            &args.work_dir.join(&f),
            &image_io::encode_gray_png(&job.frame)?,
        )?;
        write(
            &args.work_dir.join(&t),
            &image_io::encode_gray_png(&job.template)?,
        )?;
        listing.push(serde_json::json!({
            "frame": f,
            "template": t,
            "region": job.region.map(|r| [r.x, r.y, r.width, r.height]),
        }));
    }
    write(
        &args.work_dir.join("matches.json"),
        serde_json::to_string(&listing)?.as_bytes(),
    )?;

    if let Some(n) = args.profile {
        for job in &jobs {
            for _ in 0..n {
                let m = verify::find_template(&job.frame, &job.template, job.region)?;
                std::hint::black_box(m);
            }
            let m = verify::find_template(&job.frame, &job.template, job.region)?;
            println!("{}: ({}, {}) score {:.4}", job.name, m.x, m.y, m.score);
        }
        return Ok(());
    }

    let baseline = run_baseline(&args)?;
    let first_baseline = &baseline;
    let num = |key: &str| {
        baseline
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    let text = |key: &str| {
        baseline
            .get(key)
            .map(|v| v.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };

    println!("# verify benchmark — {}", date());
    println!("# machine: {} cores (nproc), CPU: {}", nproc(), cpu_model());
    let nasm = Command::new("nasm")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    println!(
        "# mozjpeg SIMD: nasm {} on PATH (mozjpeg-sys uses it when it is first built)",
        if nasm { "found" } else { "NOT found" }
    );
    println!(
        "# labwright: release build, one thread; each time is the median of {} runs after one warm-up",
        args.runs
    );
    println!(
        "# baselines, same images, same run: OpenCV {} (opencv-python-headless, cv2.setNumThreads(1), {} thread); Pillow {} with libjpeg-turbo {}",
        text("opencv_version"),
        text("opencv_threads"),
        text("pillow_version"),
        text("libjpeg_turbo_version")
    );
    println!(
        "# images (generated, deterministic): {WIDTH}x{HEIGHT} grey UI-like frame (multi-octave value noise, panels, \
         circles, text-like bars), 200x120 template cut at ({}, {}); {WIDTH}x{HEIGHT} RGB natural-like photo \
         (sky gradient, clouds, sun, textured hills, sensor noise; its luma is the second matching frame, 200x120 \
         template cut at ({}, {})); files in {}",
        TEMPLATE.x,
        TEMPLATE.y,
        PHOTO_TEMPLATE.x,
        PHOTO_TEMPLATE.y,
        args.work_dir.display()
    );
    println!();

    // Template matching: interleaved rounds, OpenCV and labwright on the same grey PNGs.
    match_section(&args, &jobs, first_baseline)?;

    // Screen checks.
    let next = ui_frame_shifted(&frame, 3);
    let black = Gray::new(WIDTH, HEIGHT, vec![16; (WIDTH * HEIGHT) as usize])?;
    let params = BlackParams::default();
    let pair = [frame.clone(), frame.clone()];
    println!("screen checks on {WIDTH}x{HEIGHT} luma (goal <= 2 ms each):");
    let checks: [(&str, f64); 4] = [
        (
            "is_black (picture)",
            median_ms(args.runs, || {
                verify::is_black(&frame, None, params).map(|r| r.black)
            }),
        ),
        (
            "is_black (black)",
            median_ms(args.runs, || {
                verify::is_black(&black, None, params).map(|r| r.black)
            }),
        ),
        (
            "is_frozen (2 frames)",
            median_ms(args.runs, || verify::is_frozen(&pair, None, 2.0)),
        ),
        (
            "motion",
            median_ms(args.runs, || {
                verify::motion(&frame, &next, None, 2.0).map(|m| m.moving)
            }),
        ),
    ];
    for (name, ms) in checks {
        println!("  {name:<22} {ms:>6.2} ms: {}", verdict(ms <= 2.0));
    }
    println!();

    // JPEG.
    let pillow_bytes =
        std::fs::read(args.work_dir.join("pillow_q80.jpg")).context("reading Pillow's JPEG")?;
    let pillow_psnr = psnr(&photo, &image_io::decode_frame(&pillow_bytes)?);
    let stored80 = jpeg::encode(&photo, 80, JpegProfile::Stored)?;
    let stored80_psnr = psnr(&photo, &image_io::decode_frame(&stored80)?);
    let (q, stored_eq, stored_eq_psnr) = equal_psnr_quality(&photo, pillow_psnr)?;
    let saving = 1.0 - stored_eq.len() as f64 / pillow_bytes.len() as f64;
    println!(
        "jpeg size at equal PSNR (RGB PSNR against the source; all files decoded by the same decoder):"
    );
    println!(
        "  Pillow quality 80: {} bytes, {pillow_psnr:.2} dB",
        pillow_bytes.len()
    );
    println!(
        "  labwright Stored quality 80: {} bytes, {stored80_psnr:.2} dB",
        stored80.len()
    );
    println!(
        "  labwright Stored quality {q} (lowest quality with PSNR >= Pillow's): {} bytes, {stored_eq_psnr:.2} dB",
        stored_eq.len()
    );
    println!(
        "  size saving at equal PSNR {:.1}% (goal >= 15%): {}",
        saving * 100.0,
        verdict(saving >= 0.15)
    );
    let stored_ms = median_ms(args.runs.min(5), || {
        jpeg::encode(&photo, 80, JpegProfile::Stored).map(|b| b.len())
    });
    let live_ms = median_ms(args.runs, || {
        jpeg::encode(&photo, 80, JpegProfile::Live).map(|b| b.len())
    });
    let live_len = jpeg::encode(&photo, 80, JpegProfile::Live)?.len();
    let pillow_ms = num("pillow_encode_ms");
    let live_ratio = live_ms / pillow_ms;
    println!(
        "jpeg encode time, quality 80, {WIDTH}x{HEIGHT} RGB (from RGB pixels in memory to JPEG bytes):"
    );
    println!(
        "  Pillow save(quality=80) {pillow_ms:.1} ms; labwright Live {live_ms:.1} ms ({live_len} bytes); Stored {stored_ms:.1} ms (median of {} runs)",
        args.runs.min(5)
    );
    println!(
        "  ratio Live/Pillow {live_ratio:.2} (goal <= 1.50): {}",
        verdict(live_ratio <= 1.5)
    );
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn run_baseline(args: &Args) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(&args.python)
        .arg(&args.baseline)
        .arg(&args.work_dir)
        .arg(args.runs.to_string())
        .arg(args.work_dir.join("matches.json"))
        .output()
        .with_context(|| format!("running {}", args.python.display()))?;
    if !out.status.success() {
        bail!("baseline failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("parsing the baseline's output")
}

/// Median wall time of `runs` calls (after one warm-up), in milliseconds.
fn median_ms<T, E: std::fmt::Debug>(runs: usize, mut f: impl FnMut() -> Result<T, E>) -> f64 {
    let _ = std::hint::black_box(f());
    let mut samples: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            let _ = std::hint::black_box(f());
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn verdict(met: bool) -> &'static str {
    if met { "goal met" } else { "goal NOT met" }
}

/// The lowest Stored quality whose PSNR reaches `target` (binary search; PSNR grows with
/// quality), with its bytes and PSNR.
fn equal_psnr_quality(photo: &Frame, target: f64) -> anyhow::Result<(u8, Vec<u8>, f64)> {
    let measure = |q: u8| -> anyhow::Result<(Vec<u8>, f64)> {
        let bytes = jpeg::encode(photo, q, JpegProfile::Stored)?;
        let p = psnr(photo, &image_io::decode_frame(&bytes)?);
        Ok((bytes, p))
    };
    let (mut lo, mut hi) = (20u8, 100u8);
    let mut best = measure(hi)?;
    if best.1 < target {
        return Ok((hi, best.0, best.1));
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let m = measure(mid)?;
        if m.1 >= target {
            hi = mid;
            best = m;
        } else {
            lo = mid + 1;
        }
    }
    let (bytes, p) = if best.1 >= target && hi == lo {
        best
    } else {
        measure(hi)?
    };
    Ok((hi, bytes, p))
}

fn psnr(a: &Frame, b: &Frame) -> f64 {
    let sse: f64 = a
        .rgb
        .iter()
        .zip(b.rgb.iter())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = sse / a.rgb.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// A small deterministic PRNG (xorshift64*), so that the images never change.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// Smooth noise in 0..1: a random grid of `cell`-pixel cells, bilinearly interpolated.
fn value_noise(width: u32, height: u32, cell: u32, rng: &mut Rng) -> Vec<f32> {
    let (gw, gh) = (width / cell + 2, height / cell + 2);
    let grid: Vec<f32> = (0..gw * gh).map(|_| rng.unit()).collect();
    let mut out = Vec::with_capacity((width * height) as usize);
    for y in 0..height {
        let (gy, fy) = ((y / cell) as usize, (y % cell) as f32 / cell as f32);
        for x in 0..width {
            let (gx, fx) = ((x / cell) as usize, (x % cell) as f32 / cell as f32);
            let at = |dx: usize, dy: usize| grid[(gy + dy) * gw as usize + gx + dx];
            let top = at(0, 0) * (1.0 - fx) + at(1, 0) * fx;
            let bottom = at(0, 1) * (1.0 - fx) + at(1, 1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// A UI-like grey frame: textured background, panels, circles and rows of "text".
fn ui_frame(width: u32, height: u32, seed: u64) -> Gray {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let coarse = value_noise(width, height, 64, &mut rng);
    let fine = value_noise(width, height, 8, &mut rng);
    let mut px: Vec<f32> = coarse
        .iter()
        .zip(&fine)
        .map(|(&c, &f)| 40.0 + 120.0 * c + 50.0 * f)
        .collect();
    let w = width as usize;
    for _ in 0..40 {
        let (rw, rh) = (40 + rng.below(300), 30 + rng.below(200));
        let (x0, y0) = (rng.below(width - rw), rng.below(height - rh));
        let level = 20.0 + 215.0 * rng.unit();
        for y in y0..y0 + rh {
            for x in x0..x0 + rw {
                px[y as usize * w + x as usize] = level;
            }
        }
        // A line of "text" inside the panel.
        let ty = y0 + rh / 2;
        for x in
            (x0 + 6..x0 + rw.saturating_sub(6)).filter(|x| (x / 7) % 3 != 0 && rng.below(4) != 0)
        {
            for y in ty..(ty + 9).min(y0 + rh) {
                px[y as usize * w + x as usize] = 255.0 - level;
            }
        }
    }
    for _ in 0..25 {
        let r = 10 + rng.below(80);
        let (cx, cy) = (r + rng.below(width - 2 * r), r + rng.below(height - 2 * r));
        let level = 255.0 * rng.unit();
        for y in cy - r..cy + r {
            for x in cx - r..cx + r {
                let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
                if dx * dx + dy * dy <= i64::from(r * r) {
                    px[y as usize * w + x as usize] = level;
                }
            }
        }
    }
    let data = px.iter().map(|&v| v.clamp(0.0, 255.0) as u8).collect();
    Gray {
        width,
        height,
        data,
    }
}

/// The frame shifted right by `dx` pixels (the next frame of a pan: motion).
fn ui_frame_shifted(frame: &Gray, dx: usize) -> Gray {
    let w = frame.width as usize;
    let data = frame
        .data
        .chunks_exact(w)
        .flat_map(|row| row[w - dx..].iter().chain(&row[..w - dx]).copied())
        .collect();
    Gray {
        width: frame.width,
        height: frame.height,
        data,
    }
}

/// A natural-looking synthetic photo: sky gradient, a soft sun, hills with textured grass, and
/// sensor noise.
fn photo(width: u32, height: u32, seed: u64) -> Frame {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let texture = value_noise(width, height, 6, &mut rng);
    let clouds = value_noise(width, height, 120, &mut rng);
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    let (w, h) = (width as f32, height as f32);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / w, y as f32 / h);
            let i = (y * width + x) as usize;
            let horizon = 0.55 + 0.08 * (fx * 9.0).sin() + 0.04 * (fx * 23.0 + 1.0).sin();
            let ridge = 0.75 + 0.05 * (fx * 5.0 + 2.0).sin();
            let mut c = if fy < horizon {
                let sky = [70.0 + 110.0 * fy, 120.0 + 90.0 * fy, 210.0 + 30.0 * fy];
                let cloud = (clouds[i] - 0.55).max(0.0) * 2.2 * 255.0;
                let (dx, dy) = (fx - 0.72, (fy - 0.2) * h / w);
                let sun = (1.0 - (dx * dx + dy * dy).sqrt() / 0.06)
                    .clamp(0.0, 1.0)
                    .powf(0.5)
                    * 255.0;
                [
                    sky[0] + cloud + sun,
                    sky[1] + cloud + sun * 0.9,
                    sky[2] + cloud * 0.8 + sun * 0.5,
                ]
            } else if fy < ridge {
                let t = texture[i];
                [50.0 + 60.0 * t, 100.0 + 80.0 * t, 40.0 + 30.0 * t]
            } else {
                let t = texture[i];
                [110.0 + 70.0 * t, 90.0 + 50.0 * t, 60.0 + 30.0 * t]
            };
            for v in &mut c {
                *v += (rng.unit() - 0.5) * 6.0;
            }
            rgb.extend(c.iter().map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    Frame {
        width,
        height,
        rgb: rgb.into(),
        captured_at_us: 0,
        seq: 0,
    }
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%FT%TZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn nproc() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Times every match job on both sides, `rounds` times interleaved (OpenCV's median of `runs`,
/// then labwright's median of `runs`), checks that both find the same place with the same score,
/// and prints per job the medians, the spread over rounds and the ratio's median and spread.
fn match_section(args: &Args, jobs: &[MatchJob], first: &serde_json::Value) -> anyhow::Result<()> {
    let rounds = args.rounds.max(1);
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); jobs.len()];
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); jobs.len()];
    let mut found = Vec::new();
    for job in jobs {
        found.push(verify::find_template(
            &job.frame,
            &job.template,
            job.region,
        )?);
    }
    for round in 0..rounds {
        let baseline = if round == 0 {
            first.clone()
        } else {
            run_baseline(args)?
        };
        let matches = baseline["matches"]
            .as_array()
            .context("baseline: no matches")?;
        for (i, job) in jobs.iter().enumerate() {
            let m = matches.get(i).context("baseline: a match is missing")?;
            theirs[i].push(m["ms"].as_f64().unwrap_or(f64::NAN));
            ours[i].push(median_ms(args.runs, || {
                verify::find_template(&job.frame, &job.template, job.region).map(|m| m.x)
            }));
            if round == 0 {
                let (x, y, score) = (
                    m["x"].as_u64().unwrap_or(u64::MAX),
                    m["y"].as_u64().unwrap_or(u64::MAX),
                    m["score"].as_f64().unwrap_or(f64::NAN),
                );
                let f = found[i];
                let same_place = (u64::from(f.x), u64::from(f.y)) == (x, y);
                let same_score = (f64::from(f.score) - score).abs() <= 1e-3;
                println!(
                    "template match, {}: {}x{} frame, {}x{} template{}: labwright ({}, {}) score {:.4}; OpenCV ({x}, {y}) score {score:.4}: {}",
                    job.name,
                    job.frame.width,
                    job.frame.height,
                    job.template.width,
                    job.template.height,
                    job.region
                        .map(|r| format!(", region {},{} {}x{}", r.x, r.y, r.width, r.height))
                        .unwrap_or_default(),
                    f.x,
                    f.y,
                    f.score,
                    if same_place && same_score {
                        "same place and score"
                    } else {
                        "DIFFERENT"
                    }
                );
                if let Some((ex, ey)) = job.expected
                    && (f.x, f.y) != (ex, ey)
                {
                    bail!(
                        "{}: template found at ({}, {}), expected ({ex}, {ey})",
                        job.name,
                        f.x,
                        f.y
                    );
                }
                if !same_place {
                    bail!("{}: labwright and OpenCV disagree on the place", job.name);
                }
            }
        }
    }
    println!();
    println!(
        "template match time, one thread, TM_CCOEFF_NORMED with the best place (OpenCV: matchTemplate+minMaxLoc); \
         {rounds} interleaved rounds, each side's median of {} runs per round; median [min-max] over rounds:",
        args.runs
    );
    for (i, job) in jobs.iter().enumerate() {
        let ratios: Vec<f64> = ours[i].iter().zip(&theirs[i]).map(|(o, t)| o / t).collect();
        let (o, t, r) = (
            labwright_bench::median_min_max(&ours[i]),
            labwright_bench::median_min_max(&theirs[i]),
            labwright_bench::median_min_max(&ratios),
        );
        let goal = if job.region.is_none() {
            format!(" (goal <= 0.40): {}", verdict(r.0 <= 0.4))
        } else {
            String::new()
        };
        println!(
            "  {:<44} labwright {:>7.2} ms [{:.2}-{:.2}]  OpenCV {:>7.2} ms [{:.2}-{:.2}]  ratio {:.2} [{:.2}-{:.2}]{goal}",
            job.name, o.0, o.1, o.2, t.0, t.1, t.2, r.0, r.1, r.2
        );
    }
    println!();
    Ok(())
}
