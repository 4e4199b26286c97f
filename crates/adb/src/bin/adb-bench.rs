//! `scripts/bench-adb`: our ADB host against Debian's `adb`, both against our daemon (the
//! simulated phone, whose `input` is a no-op built-in) on TCP loopback, in one run:
//! - key press round trip: `input keyevent` through our persistent shell vs `adb shell input
//!   keyevent` (a client process, the adb server, a new shell stream each time);
//! - a 50 MB push: our sync client vs `adb push`.
//!
//! Prints median (min..max) over runs, side by side. Usage: `adb-bench [--runs N] [--presses N]
//! [--adb-presses N] [--push-mb N]`.

use labwright_adb::{
    AdbClient, AdbDaemon, AdbKey, BuiltinShell, ConnectOptions, DaemonConfig, TrustedKeys,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    runs: usize,
    presses: usize,
    adb_presses: usize,
    push_mb: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        runs: 7,
        presses: 200,
        adb_presses: 20,
        push_mb: 50,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v: usize = it
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--runs" => a.runs = v.max(1),
            "--presses" => a.presses = v.max(1),
            "--adb-presses" => a.adb_presses = v.max(1),
            "--push-mb" => a.push_mb = v.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

fn show(label: &str, unit: &str, v: &[f64]) -> f64 {
    let (med, min, max) = stats(v);
    println!("{label:<44} {med:>10.3} {unit} ({min:.3}..{max:.3})");
    med
}

/// The real adb server, with its own HOME and port; killed on drop.
struct RealAdb {
    home: PathBuf,
    port: u16,
}

impl RealAdb {
    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("adb");
        c.args(args)
            .env("HOME", &self.home)
            .env("TMPDIR", &self.home)
            .env("ANDROID_ADB_SERVER_PORT", self.port.to_string())
            .env_remove("ADB_VENDOR_KEYS")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .cmd(args)
            .output()
            .map_err(|e| format!("adb {args:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "adb {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for RealAdb {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("adb-bench: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let scratch = std::env::temp_dir().join(format!("lw-adb-bench-{}", std::process::id()));
    let sandbox = scratch.join("phone");
    std::fs::create_dir_all(&sandbox).map_err(|e| e.to_string())?;
    let _cleanup = Cleanup(scratch.clone());

    let keys = TrustedKeys::default();
    let mut config = DaemonConfig::new(sandbox.clone(), keys.clone());
    config.shell = Arc::new(BuiltinShell);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let serial = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    tokio::spawn(AdbDaemon::new(config).serve(listener));

    let real = RealAdb {
        home: scratch.join("home"),
        port: free_port()?,
    };
    std::fs::create_dir_all(&real.home).map_err(|e| e.to_string())?;
    real.run(&["start-server"])?;
    let pubkey = std::fs::read_to_string(real.home.join(".android/adbkey.pub"))
        .map_err(|e| e.to_string())?;
    keys.trust_public_key(&pubkey).map_err(|e| e.to_string())?;
    let ours_key = AdbKey::generate("adb-bench@labwright").map_err(|e| e.to_string())?;
    keys.trust_public_key(&ours_key.public_key_text())
        .map_err(|e| e.to_string())?;
    real.run(&["connect", &serial])?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !real
        .run(&["devices"])?
        .contains(&format!("{serial}\tdevice"))
    {
        if Instant::now() > deadline {
            return Err("adb never showed the simulated phone as a device".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let adb = AdbClient::connect_tcp(&serial, &ours_key, ConnectOptions::default())
        .await
        .map_err(|e| e.to_string())?;

    println!("# adb benchmark — {} runs each", args.runs);
    println!(
        "# machine: {} cores, {}; {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model(),
        real.run(&["version"])?
            .lines()
            .nth(1)
            .unwrap_or("adb")
            .trim()
    );
    println!("# device: labwright's ADB daemon on TCP loopback, built-in shell (input is a no-op)");
    println!();
    println!("## key press round trip (ms per key press, median (min..max) over runs)");
    let mut shell = adb.persistent_shell().await.map_err(|e| e.to_string())?;
    for _ in 0..20 {
        shell
            .key_event("KEYCODE_DPAD_DOWN")
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..args.runs {
        let t = Instant::now();
        for _ in 0..args.presses {
            shell
                .key_event("KEYCODE_DPAD_DOWN")
                .await
                .map_err(|e| e.to_string())?;
        }
        ours.push(t.elapsed().as_secs_f64() * 1e3 / args.presses as f64);
        let t = Instant::now();
        for _ in 0..args.adb_presses {
            real.run(&[
                "-s",
                &serial,
                "shell",
                "input",
                "keyevent",
                "KEYCODE_DPAD_DOWN",
            ])?;
        }
        theirs.push(t.elapsed().as_secs_f64() * 1e3 / args.adb_presses as f64);
    }
    let o = show(
        &format!("labwright persistent shell ({} presses/run)", args.presses),
        "ms",
        &ours,
    );
    let a = show(
        &format!(
            "adb shell input keyevent ({} presses/run)",
            args.adb_presses
        ),
        "ms",
        &theirs,
    );
    println!("speed-up (median): {:.1}x (goal: >= 5x)", a / o);

    println!();
    println!(
        "## push of {} MB (seconds per push, median (min..max) over runs; MB/s from the median)",
        args.push_mb
    );
    let local = scratch.join("push.bin");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..args.push_mb << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&local, &data).map_err(|e| e.to_string())?;
    let local_str = local
        .to_str()
        .ok_or("scratch path is not UTF-8")?
        .to_string();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let t = Instant::now();
        adb.push_file(&local, &format!("/sdcard/ours{run}.bin"))
            .await
            .map_err(|e| e.to_string())?;
        ours.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        real.run(&[
            "-s",
            &serial,
            "push",
            &local_str,
            &format!("/sdcard/adb{run}.bin"),
        ])?;
        theirs.push(t.elapsed().as_secs_f64());
        for name in [format!("ours{run}.bin"), format!("adb{run}.bin")] {
            let p = sandbox.join("sdcard").join(&name);
            let same = std::fs::metadata(&p)
                .map(|m| m.len() == data.len() as u64)
                .unwrap_or(false);
            if !same {
                return Err(format!("{name}: pushed file has the wrong size"));
            }
            let _ = std::fs::remove_file(p);
        }
    }
    let o = show("labwright push_file", "s", &ours);
    let a = show("adb push", "s", &theirs);
    println!(
        "throughput (median): labwright {:.0} MB/s, adb {:.0} MB/s: {:.0} % of adb (goal: >= 90 %)",
        args.push_mb as f64 / o,
        args.push_mb as f64 / a,
        100.0 * a / o
    );
    Ok(())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into())
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
