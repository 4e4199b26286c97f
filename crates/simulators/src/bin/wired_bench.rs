//! `labwright-wired-bench`: key press to first changed frame, the way a test step sees it:
//! either through a composite device's drivers (`--settings FILE`: the `[settings]` of the
//! agent's device, e.g. IR out on rc-loopback and V4L2 capture of the wired box's HDMI), or on
//! the simulated box in-process (`--direct`). Presses alternate right and left on the box's
//! home screen; each time is from the press call to the capture time of the first frame whose
//! pixels differ from the frame before the press. Prints one line of statistics.

use std::{process::ExitCode, str::FromStr, time::Duration};

use clap::Parser;
use labwright_core::{
    controller::{Device, Key},
    frame::Frame,
    sim::{SimConfig, SimulatedStb},
};

#[derive(Parser)]
#[command(
    name = "labwright-wired-bench",
    about = "Key press to first changed frame"
)]
struct Args {
    /// A composite device's settings (TOML: the tables of `[devices.settings]`).
    #[arg(long, conflicts_with = "direct")]
    settings: Option<std::path::PathBuf>,
    /// The simulated box in this process instead.
    #[arg(long)]
    direct: bool,
    /// Presses measured.
    #[arg(long, default_value_t = 20)]
    presses: usize,
    /// Longest wait for a changed frame.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn differs(a: &Frame, b: &Frame) -> bool {
    a.width != b.width || a.height != b.height || a.rgb != b.rgb
}

/// Waits until frames stop changing (the box idle on a menu), returns the last one.
fn settled(device: &dyn Device) -> Result<Frame, String> {
    let video = device.video().ok_or("no video")?;
    let mut last = video.grab().map_err(|e| e.to_string())?;
    let mut same_since = now_us();
    while now_us() - same_since < 500_000 {
        std::thread::sleep(Duration::from_millis(20));
        let f = video.grab().map_err(|e| e.to_string())?;
        if differs(&f, &last) {
            same_since = now_us();
            last = f;
        }
    }
    Ok(last)
}

fn measure(device: &dyn Device, args: &Args) -> Result<Vec<f64>, String> {
    let video = device.video().ok_or("no video")?;
    let remote = device.remote().ok_or("no remote")?;
    if args.presses == 0 {
        return Err("--presses must be at least 1".into());
    }
    let mut times = Vec::new();
    for i in 0..args.presses {
        let before = settled(device)?;
        let key = if i % 2 == 0 { "right" } else { "left" };
        let key = Key::from_str(key).map_err(|e| e.to_string())?;
        let pressed = now_us();
        remote.press(key).map_err(|e| e.to_string())?;
        let deadline = pressed + args.timeout_ms * 1000;
        loop {
            let f = video.grab().map_err(|e| e.to_string())?;
            if differs(&f, &before) {
                times.push(f.captured_at_us.saturating_sub(pressed) as f64 / 1000.0);
                break;
            }
            if now_us() > deadline {
                return Err(format!(
                    "press {i}: no changed frame within {} ms",
                    args.timeout_ms
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Ok(times)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = if args.direct {
        SimulatedStb::new(SimConfig::default())
            .map_err(|e| e.to_string())
            .and_then(|stb| measure(&stb, &args))
    } else if let Some(path) = &args.settings {
        std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|t| toml::from_str::<toml::Table>(&t).map_err(|e| e.to_string()))
            .and_then(|t| labwright_drivers::composite::build(&t).map_err(|p| p.join("; ")))
            .and_then(|device| measure(&device, &args))
    } else {
        Err("give --settings FILE or --direct".into())
    };
    match result {
        Ok(mut t) => {
            t.sort_by(f64::total_cmp);
            let pct = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize];
            println!(
                "{:<8} presses={} median={:.1}ms p90={:.1}ms min={:.1}ms max={:.1}ms",
                if args.direct { "direct" } else { "wired" },
                t.len(),
                pct(0.5),
                pct(0.9),
                t[0],
                t[t.len() - 1]
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("labwright-wired-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
