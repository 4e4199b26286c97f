//! Step dispatch overhead: how much time the platform adds around a device's own work. A real
//! `api-server` process, and this process as the lab host (the real host-agent runtime with a
//! simulated set-top box) over loopback gRPC. Each run is a one-step test case (`press: ok`).
//!
//! overhead = (execution finished_at - created_at) - the step's own duration on the device,
//! where created_at is the API accepting the run and finished_at the server storing its last
//! report: API → queue → lease → dispatch over the host stream → host accepts and runs the step
//! on the device → step report → stored (screenshot to the object store) → execution report →
//! stored. Both timestamps come from the server's clock. Run through `scripts/bench-dispatch`.
//!
//! The floor, measured in the same run and interleaved with the runs (one sample of each after
//! every run): the unavoidable work of one dispatch on this machine, as [`floor`] measures it:
//! one commit of a row like a step result into the same PostgreSQL (durable when the server's
//! commits are), one gRPC round trip to the same api-server over loopback, and one wake-up of a
//! parked task on this (the host's) runtime. The overhead is printed as a multiple of it.

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
    /// REST port of the api-server (default: a free one).
    #[arg(long)]
    http_port: Option<u16>,
    /// gRPC port of the api-server (default: a free one).
    #[arg(long)]
    grpc_port: Option<u16>,
}

/// Overheads, device times, the three phases of each run, step overheads and the floor's three
/// parts measured after each run, in microseconds.
type Samples = (Vec<u32>, Vec<u32>, [Vec<u32>; 3], Vec<u32>, [Vec<u32>; 3]);

/// Rounds the runs are split into (in order) for the spread: each round's p50.
const ROUNDS: usize = 5;

mod floor {
    //! The floor of one step dispatch: what no implementation on this machine can avoid.

    use std::time::{Duration, Instant};

    use anyhow::Context;
    use futures::{SinkExt, StreamExt, channel::mpsc};
    // gRPC's own reflection protocol (not Labwright's wire types): a bidirectional stream that
    // any tonic server can offer, used here only as a loopback round trip.
    use grpc_reflection::v1::{
        ServerReflectionRequest, ServerReflectionResponse,
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    use tonic_reflection::pb as grpc_reflection;

    pub struct Floor {
        db: tokio_postgres::Client,
        insert: tokio_postgres::Statement,
        grpc_tx: mpsc::Sender<ServerReflectionRequest>,
        grpc_rx: tonic::Streaming<ServerReflectionResponse>,
        wake_tx: tokio::sync::mpsc::Sender<Instant>,
        woken_rx: tokio::sync::mpsc::Receiver<Duration>,
    }

    impl Floor {
        /// Connects to `database_url` (a table of its own, like `execution_steps`) and to the
        /// api-server's gRPC `server` (its reflection service: one bidirectional stream, as the
        /// host link is), and starts the task to wake.
        pub async fn connect(database_url: &str, server: &str) -> anyhow::Result<Self> {
            let (db, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
                .await
                .context("floor: connecting to PostgreSQL")?;
            tokio::spawn(connection);
            db.batch_execute(
                "CREATE TABLE IF NOT EXISTS bench_floor_steps (
                    execution_id UUID NOT NULL, idx INTEGER NOT NULL, tenant_id UUID NOT NULL,
                    path TEXT NOT NULL, kind TEXT NOT NULL, verdict TEXT NOT NULL,
                    reason TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL,
                    duration_ms DOUBLE PRECISION NOT NULL, screenshot_key TEXT,
                    measurements JSONB NOT NULL DEFAULT '{}',
                    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    PRIMARY KEY (execution_id, idx))",
            )
            .await
            .context("floor: creating its table")?;
            let insert = db
                .prepare(
                    "INSERT INTO bench_floor_steps (execution_id, idx, tenant_id, path, kind, verdict, \
                     reason, started_at, duration_ms, screenshot_key) \
                     VALUES (gen_random_uuid(), 0, gen_random_uuid(), 'steps[0]', 'press', 'pass', '', \
                     now(), $1, $2)",
                )
                .await
                .context("floor: preparing the insert")?;
            let mut client = ServerReflectionClient::new(
                tonic::transport::Endpoint::from_shared(server.to_string())
                    .context("floor: gRPC address")?
                    .connect()
                    .await
                    .context("floor: connecting to the gRPC server")?,
            );
            let (grpc_tx, requests) = mpsc::channel(1);
            let grpc_rx = client
                .server_reflection_info(requests)
                .await
                .context("floor: opening the reflection stream")?
                .into_inner();
            let (wake_tx, mut wake_rx) = tokio::sync::mpsc::channel::<Instant>(1);
            let (woken_tx, woken_rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(async move {
                while let Some(sent) = wake_rx.recv().await {
                    if woken_tx.send(sent.elapsed()).await.is_err() {
                        break;
                    }
                }
            });
            Ok(Self {
                db,
                insert,
                grpc_tx,
                grpc_rx,
                wake_tx,
                woken_rx,
            })
        }

        /// One sample of each part, in microseconds: commit, gRPC round trip, wake-up. The
        /// parts are taken apart from each other with idle gaps, so that each starts from
        /// parked threads, as a dispatch does.
        pub async fn sample(&mut self) -> anyhow::Result<[u32; 3]> {
            let gap = Duration::from_millis(2);
            let started = Instant::now();
            self.db
                .execute(&self.insert, &[&0.05f64, &"screenshots/bench.jpg"])
                .await
                .context("floor: commit")?;
            let commit = started.elapsed();
            tokio::time::sleep(gap).await;

            let started = Instant::now();
            self.grpc_tx
                .send(ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(MessageRequest::ListServices(String::new())),
                })
                .await
                .context("floor: gRPC send")?;
            self.grpc_rx
                .next()
                .await
                .context("floor: gRPC stream ended")?
                .context("floor: gRPC reply")?;
            let grpc = started.elapsed();
            tokio::time::sleep(gap).await;

            self.wake_tx
                .send(Instant::now())
                .await
                .context("floor: wake-up task ended")?;
            let wake = self
                .woken_rx
                .recv()
                .await
                .context("floor: wake-up task ended")?;
            let us = |d: Duration| d.as_micros().min(u128::from(u32::MAX)) as u32;
            Ok([us(commit), us(grpc), us(wake)])
        }
    }
}

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
    let http_port = labwright_bench::port_or_free(args.http_port)?;
    let grpc_port = labwright_bench::port_or_free(args.grpc_port)?;
    let namespace = labwright_bench::namespace();
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let dir = std::env::temp_dir().join(format!("lw-dispatch-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Process(
        args.server
            .command(http_port, grpc_port, &namespace)
            .env("LABWRIGHT_GRPC_REFLECTION", "true")
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
    let base = format!("http://127.0.0.1:{}", http_port);
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
        server: format!("http://127.0.0.1:{}", grpc_port),
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

    let mut floor = floor::Floor::connect(
        &args.server.database_url,
        &format!("http://127.0.0.1:{grpc_port}"),
    )
    .await?;
    let handle = tokio::runtime::Handle::current();
    let (b, a) = (base.clone(), admin.clone());
    let (overheads, device_times, phases, step_overheads, floors) =
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
            // 200: the same text was saved before.
            if status != 201 && status != 200 {
                bail!("saving the test case: {body}");
            }
            let mut overheads = Vec::new();
            let mut device_times = Vec::new();
            let mut phases: [Vec<u32>; 3] = Default::default();
            let mut step_overheads = Vec::new();
            let mut floors: [Vec<u32>; 3] = Default::default();
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
                for (slot, v) in floors.iter_mut().zip(handle.block_on(floor.sample())?) {
                    slot.push(v);
                }
            }
            Ok((overheads, device_times, phases, step_overheads, floors))
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
    let rounds = round_p50s(&so, ROUNDS);
    let floor_total: Vec<u32> = (0..so.len())
        .map(|i| floors.iter().map(|f| f[i]).sum())
        .collect();
    let floor_rounds = round_p50s(&floor_total, ROUNDS);
    let ratios: Vec<f64> = rounds
        .iter()
        .zip(&floor_rounds)
        .map(|(&d, &f)| f64::from(d) / f64::from(f.max(1)))
        .collect();
    let [mut fc, mut fg, mut fw] = floors;
    let floor_p50 =
        ms(quantile(&mut fc, 0.5)) + ms(quantile(&mut fg, 0.5)) + ms(quantile(&mut fw, 0.5));
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
        "  floor, measured after every run (p50 of each part): one commit of a step-like row {:.3}ms \
         (p99 {:.3}), one gRPC round trip over loopback {:.3}ms (p99 {:.3}), one wake-up of a parked task {:.3}ms \
         (p99 {:.3}): floor {:.3}ms",
        ms(quantile(&mut fc, 0.5)),
        ms(quantile(&mut fc, 0.99)),
        ms(quantile(&mut fg, 0.5)),
        ms(quantile(&mut fg, 0.99)),
        ms(quantile(&mut fw, 0.5)),
        ms(quantile(&mut fw, 0.99)),
        floor_p50
    );
    let (r, rmin, rmax) = labwright_bench::median_min_max(&ratios);
    let ms_of = |v: &[u32]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        (ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]))
    };
    let (d, dmin, dmax) = ms_of(&rounds);
    let (f, fmin, fmax) = ms_of(&floor_rounds);
    println!(
        "  over {} rounds of {} runs (median [min-max] of the rounds' p50): dispatch {d:.2}ms [{dmin:.2}-{dmax:.2}], \
         floor {f:.3}ms [{fmin:.3}-{fmax:.3}], dispatch = {r:.2}x floor [{rmin:.2}-{rmax:.2}]",
        rounds.len(),
        so.len() / rounds.len().max(1)
    );
    println!(
        "  goal: step dispatch p50 <= 2x the floor -> {} ({:.2}x over all runs: {p50:.2}ms against {floor_p50:.3}ms)",
        if r <= 2.0 { "met" } else { "NOT met" },
        p50 / floor_p50
    );
    Ok(())
}

/// The p50 of each of `rounds` consecutive, equal slices of `samples` (in run order).
fn round_p50s(samples: &[u32], rounds: usize) -> Vec<u32> {
    let size = (samples.len() / rounds.max(1)).max(1);
    samples
        .chunks(size)
        .filter(|c| c.len() == size)
        .map(|c| quantile(&mut c.to_vec(), 0.5))
        .collect()
}
