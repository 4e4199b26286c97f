//! Step dispatch overhead: how much time the platform adds around a device's own work. A real
//! `api-server` process, and this process as the lab host (the real host-agent runtime with a
//! simulated set-top box) over loopback gRPC. Each run is a one-step test case (`press: ok`).
//!
//! overhead = (execution finished_at - created_at) - the step's own duration on the device,
//! where created_at is the API accepting the run and finished_at the server storing its last
//! report: API → queue → lease → dispatch over the host stream → host accepts and runs the step
//! on the device → step report → stored (screenshot to the object store) → execution report →
//! stored. Both timestamps come from the server's clock. Run through `scripts/bench-dispatch`.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use clap::Parser;
use labwright_bench::{Body, Process, ServerArgs, admin_key, quantile};
use labwright_host_agent::{config::DeviceConfig, link, runtime::Runtime};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200)]
    runs: usize,
    #[command(flatten)]
    server: ServerArgs,
    #[arg(long, default_value_t = 18180)]
    http_port: u16,
    #[arg(long, default_value_t = 15151)]
    grpc_port: u16,
}

/// Overheads, device times, and the three phases of each run, in microseconds.
type Samples = (Vec<u32>, Vec<u32>, [Vec<u32>; 3], Vec<u32>);

/// A REST call on a fresh agent, as every measured run makes it.
fn call(
    method: &str,
    url: &str,
    key: &str,
    body: Body<'_>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let agent = labwright_bench::agent(Duration::from_secs(10));
    Ok(labwright_bench::call(&agent, method, url, key, body)?)
}

fn ts(v: &serde_json::Value) -> anyhow::Result<chrono_like::Micros> {
    chrono_like::parse(v.as_str().context("timestamp")?)
}

/// RFC 3339 timestamps (as the API prints them) to microseconds, without a date library.
mod chrono_like {
    pub type Micros = i64;

    pub fn parse(s: &str) -> anyhow::Result<Micros> {
        // 2026-11-24T10:15:08.634060Z
        let (date, time) = s
            .split_once('T')
            .ok_or_else(|| anyhow::anyhow!("timestamp {s}"))?;
        let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap_or(0)).collect();
        let time = time.trim_end_matches('Z');
        let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
        let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap_or(0)).collect();
        let micros: i64 = format!("{:0<6}", &frac[..frac.len().min(6)])
            .parse()
            .unwrap_or(0);
        let days = days_from_civil(d[0], d[1], d[2]);
        Ok(((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1_000_000) + micros)
    }

    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let dir = std::env::temp_dir().join(format!("lw-dispatch-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Process(
        args.server
            .command(args.http_port, args.grpc_port)
            .env("LABWRIGHT_DATA_DIR", dir.join("data"))
            .env("LABWRIGHT_ARTIFACTS_URL", dir.join("artifacts"))
            .env(
                "LABWRIGHT_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
            .context("starting api-server")?,
    );
    let _ = &server;
    let base = format!("http://127.0.0.1:{}", args.http_port);
    let admin = admin_key(&dir.join("data/admin-key")).context("api-server did not start")?;
    let (b, a) = (base.clone(), admin.clone());
    let token = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        for _ in 0..100 {
            if let Ok((201, v)) = call(
                "POST",
                &format!("{b}/api/v1/keys"),
                &a,
                Body::Json(serde_json::json!({"name": "bench", "role": "host"})),
            ) {
                return v["secret"].as_str().map(str::to_owned).context("secret");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("could not create a host token")
    })
    .await??;

    let device = DeviceConfig {
        id: "stb-1".into(),
        name: "Bench STB".into(),
        model: "sim-stb".into(),
        driver: "simulated".into(),
        tags: vec![],
        settings: toml::Table::new(),
    };
    let config = labwright_host_agent::Config {
        server: format!("http://127.0.0.1:{}", args.grpc_port),
        host_name: "bench-host".into(),
        enrollment_token: Some(token.clone()),
        state_dir: dir.join("agent"),
        devices: vec![device],
        ..labwright_host_agent::Config::default()
    };
    let runtime =
        Arc::new(Runtime::new(&config.devices, &config.state_dir).map_err(|e| anyhow::anyhow!(e))?);
    let stop = CancellationToken::new();
    let params = link::LinkParams {
        server: config.server.clone(),
        token,
        hello: config.hello(),
        reconnect_max: Duration::from_secs(1),
        report_stats: false,
        runtime: Some(runtime),
    };
    tokio::spawn(link::run(params, Arc::new(link::LogObserver), stop.clone()));

    let (b, a) = (base.clone(), admin.clone());
    let (overheads, device_times, phases, step_overheads) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<Samples> {
            let device_id = loop {
                let (_, page) = call(
                    "GET",
                    &format!("{b}/api/v1/devices?status=online"),
                    &a,
                    Body::Empty,
                )?;
                if let Some(id) = page["items"].get(0).and_then(|d| d["id"].as_str()) {
                    break id.to_string();
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let (status, body) = call(
                "POST",
                &format!("{b}/api/v1/testcases"),
                &a,
                Body::Yaml(b"name: One key\nsteps:\n  - press: ok\n"),
            )?;
            if status != 201 {
                bail!("saving the test case: {body}");
            }
            let mut overheads = Vec::new();
            let mut device_times = Vec::new();
            let mut phases: [Vec<u32>; 3] = Default::default();
            let mut step_overheads = Vec::new();
            for i in 0..args.runs + 10 {
                let (status, e) = call(
                    "POST",
                    &format!("{b}/api/v1/executions"),
                    &a,
                    Body::Json(serde_json::json!({"testcase": "One key", "device": device_id})),
                )?;
                if status != 201 {
                    bail!("run {i}: {e}");
                }
                let id = e["id"].as_str().context("id")?.to_string();
                let done = loop {
                    let (_, e) = call(
                        "GET",
                        &format!("{b}/api/v1/executions/{id}"),
                        &a,
                        Body::Empty,
                    )?;
                    if e["finished_at"].is_string() {
                        break e;
                    }
                    // Timings come from the server's timestamps; polling slowly keeps the load off it.
                    std::thread::sleep(Duration::from_millis(25));
                };
                if done["status"] != "passed" {
                    bail!("run {i} did not pass: {done}");
                }
                if i < 10 {
                    continue; // warm-up
                }
                let total_us = ts(&done["finished_at"])? - ts(&done["created_at"])?;
                let device_us: f64 = done["steps"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .map(|x| x["duration_ms"].as_f64().unwrap_or(0.0) * 1000.0)
                            .sum()
                    })
                    .unwrap_or(0.0);
                overheads.push((total_us as f64 - device_us).max(0.0) as u32);
                let created = ts(&done["created_at"])?;
                let dispatched = ts(&done["dispatched_at"])?;
                let step_start = ts(&done["steps"][0]["started_at"])?;
                let step_end = step_start + device_us as i64;
                let finished = ts(&done["finished_at"])?;
                let stored = ts(&done["steps"][0]["stored_at"])?;
                step_overheads.push(((stored - created) as f64 - device_us).max(0.0) as u32);
                for (slot, v) in phases.iter_mut().zip([
                    dispatched - created,
                    step_start - dispatched,
                    finished - step_end,
                ]) {
                    slot.push(v.max(0) as u32);
                }
                device_times.push(device_us as u32);
            }
            Ok((overheads, device_times, phases, step_overheads))
        })
        .await??;
    stop.cancel();

    let (mut o, mut d) = (overheads, device_times);
    let ms = |v: u32| v as f64 / 1000.0;
    println!(
        "runs={} (after 10 warm-up runs), one `press: ok` step each, sequential",
        o.len()
    );
    println!(
        "  device's own time (baseline): p50={:.2}ms p99={:.2}ms",
        ms(quantile(&mut d, 0.5)),
        ms(quantile(&mut d, 0.99))
    );
    let mut so = step_overheads;
    let p50 = ms(quantile(&mut so, 0.5));
    println!(
        "  step dispatch overhead (API accepts the run -> step result persisted, beyond the device): p50={:.2}ms p99={:.2}ms max={:.2}ms",
        p50,
        ms(quantile(&mut so, 0.99)),
        ms(quantile(&mut so, 1.0))
    );
    println!(
        "  whole run until finished (incl. the stored-quality mozjpeg screenshot, encoded off the step's path): p50={:.2}ms p99={:.2}ms",
        ms(quantile(&mut o, 0.5)),
        ms(quantile(&mut o, 0.99))
    );
    let [mut a, mut b2, mut c] = phases;
    println!(
        "  run phases (p50): queue+lease {:.2}ms, dispatch to step start {:.2}ms, step end to run finished {:.2}ms",
        ms(quantile(&mut a, 0.5)),
        ms(quantile(&mut b2, 0.5)),
        ms(quantile(&mut c, 0.5))
    );
    println!(
        "  goal: step dispatch p50 <= 5 ms beyond the device's own delay -> {}",
        if p50 <= 5.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
