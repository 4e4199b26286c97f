//! Fleet benchmark: N lightweight simulated hosts in this process, each with its own TCP
//! connection and gRPC stream and a 1 s heartbeat (the real host-agent link code), against one
//! real `api-server` process. Reports connect time, heartbeat round-trip p50/p99, and the
//! server's CPU and RSS per connected host, next to the idle server as baseline and the goals.
//!
//! Run through `scripts/bench-fleet`, which builds release binaries, starts PostgreSQL and
//! RabbitMQ, raises the file limit and gives each run a fresh database.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use labwright_bench::{Process, ServerArgs, admin_key, process_cpu, process_rss, quantile};
use labwright_core::fleet::{HostInfo, RawDevice, RawHello};
use labwright_host_agent::link::{self, LinkError, LinkObserver, LinkParams};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Number of simulated hosts.
    #[arg(long)]
    hosts: usize,
    #[command(flatten)]
    server: ServerArgs,
    /// Seconds of steady state to measure after every host is connected.
    #[arg(long, default_value_t = 20)]
    measure_secs: u64,
    /// REST port of the api-server (default: a free one).
    #[arg(long)]
    http_port: Option<u16>,
    /// gRPC port of the api-server (default: a free one).
    #[arg(long)]
    grpc_port: Option<u16>,
}

#[derive(Default)]
struct Stats {
    connected: AtomicUsize,
    disconnects: AtomicUsize,
    connect_failures: AtomicUsize,
    /// Why links failed or dropped, by message.
    errors: Mutex<std::collections::BTreeMap<String, usize>>,
    /// Heartbeat round trips in microseconds, recorded only while `recording` is set.
    rtts: Mutex<Vec<u32>>,
    recording: std::sync::atomic::AtomicBool,
}

impl LinkObserver for Stats {
    fn connected(&self, _: &str) {
        self.connected.fetch_add(1, Ordering::Relaxed);
    }
    fn heartbeat_acked(&self, rtt: Duration) {
        if self.recording.load(Ordering::Relaxed) {
            let us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
            self.rtts.lock().unwrap_or_else(|p| p.into_inner()).push(us);
        }
    }
    fn disconnected(&self, e: &LinkError) {
        self.disconnects.fetch_add(1, Ordering::Relaxed);
        self.connected.fetch_sub(1, Ordering::Relaxed);
        self.note(format!("dropped: {e}"));
    }
    fn connect_failed(&self, e: &LinkError) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
        self.note(format!("connect failed: {e}"));
    }
}

impl Stats {
    fn note(&self, what: String) {
        let what: String = what.chars().take(120).collect();
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(what)
            .or_default() += 1;
    }
}

fn http(
    method: &str,
    url: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let auth = format!("Bearer {key}");
    let mut resp = match (method, body) {
        ("POST", Some(b)) => agent
            .post(url)
            .header("Authorization", &auth)
            .send_json(b)?,
        _ => agent.get(url).header("Authorization", &auth).call()?,
    };
    Ok(resp.body_mut().read_json()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http_port = labwright_bench::port_or_free(args.http_port)?;
    let grpc_port = labwright_bench::port_or_free(args.grpc_port)?;
    let namespace = labwright_bench::namespace();
    let data_dir = std::env::temp_dir().join(format!("lw-fleet-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let child = args
        .server
        .command(http_port, grpc_port, &namespace)
        .env("LABWRIGHT_DATABASE_POOL_SIZE", "32")
        .env("LABWRIGHT_HEARTBEAT_INTERVAL_MS", "1000")
        // As `scripts/stack` runs it: glibc's per-thread malloc arenas otherwise keep the
        // connect storm's garbage resident.
        .env(
            "MALLOC_ARENA_MAX",
            std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "2".into()),
        )
        .env("LABWRIGHT_DATA_DIR", &data_dir)
        .env(
            "LABWRIGHT_LOG",
            std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(std::fs::File::create(
            std::env::temp_dir().join(format!("lw-fleet-bench-{}.log", args.hosts)),
        )?)
        .spawn()
        .context("starting api-server")?;
    let server = Process(child);
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{}", http_port);

    let key_path = data_dir.join("admin-key");
    let admin = admin_key(&key_path).context("api-server did not start within 60 s")?;
    // One enrollment token per host: a token is bound to the one host name it says hello as.
    let (base2, admin2, hosts) = (base.clone(), admin.clone(), args.hosts);
    let tokens = tokio::task::spawn_blocking(move || {
        let mut tokens = Vec::with_capacity(hosts);
        for i in 0..hosts {
            let mut token = None;
            for _ in 0..100 {
                if let Ok(v) = http(
                    "POST",
                    &format!("{base2}/api/v1/keys"),
                    &admin2,
                    Some(serde_json::json!({
                        "name": format!("fleet-bench {i}"),
                        "role": "host",
                        "host_name": format!("bench-{i:05}"),
                    })),
                ) {
                    token = v["secret"].as_str().map(str::to_owned);
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            tokens.push(token?);
        }
        Some(tokens)
    })
    .await?
    .context("creating host tokens")?;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = process_rss(pid).context("reading server RSS")?;
    let cpu0 = process_cpu(pid).context("reading server CPU")?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_cpu =
        (process_cpu(pid).unwrap_or(cpu0) - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();

    let stats = Arc::new(Stats::default());
    let stop = CancellationToken::new();
    let connect_started = Instant::now();
    for (i, token) in tokens.iter().enumerate() {
        let params = LinkParams {
            server: format!("http://127.0.0.1:{}", grpc_port),
            token: token.clone(),
            hello: RawHello {
                host_name: format!("bench-{i:05}"),
                agent_version: "bench".into(),
                info: HostInfo::default(),
                devices: vec![RawDevice {
                    key: "stb-1".into(),
                    name: "Simulated STB".into(),
                    model: "sim-stb".into(),
                    driver: "simulated".into(),
                    capabilities: vec!["remote_control".into(), "video_capture".into()],
                    tags: vec![],
                    status: None,
                    status_detail: String::new(),
                }],
            },
            reconnect_max: Duration::from_secs(5),
            report_stats: false,
            runtime: None,
        };
        tokio::spawn(link::run(params, stats.clone(), stop.clone()));
    }
    let mut last_report = Instant::now();
    while stats.connected.load(Ordering::Relaxed) < args.hosts {
        if connect_started.elapsed() > Duration::from_secs(300) {
            bail!(
                "only {} of {} hosts connected after 300 s",
                stats.connected.load(Ordering::Relaxed),
                args.hosts
            );
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  ... {} of {} connected",
                stats.connected.load(Ordering::Relaxed),
                args.hosts
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_time = connect_started.elapsed();
    let retries_during_connect =
        stats.connect_failures.load(Ordering::Relaxed) + stats.disconnects.load(Ordering::Relaxed);

    // Let the connect storm settle, then measure the steady state.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stats.recording.store(true, Ordering::Relaxed);
    let disconnects_before = stats.disconnects.load(Ordering::Relaxed);
    let cpu_a = process_cpu(pid).context("server cpu")?;
    let ta = Instant::now();
    let mut peak_rss = 0;
    for _ in 0..args.measure_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(process_rss(pid).unwrap_or(0));
    }
    let cpu =
        (process_cpu(pid).unwrap_or(cpu_a) - cpu_a).as_secs_f64() / ta.elapsed().as_secs_f64();
    stats.recording.store(false, Ordering::Relaxed);
    let rss = process_rss(pid).unwrap_or(0);
    let mut rtts = std::mem::take(&mut *stats.rtts.lock().unwrap_or_else(|p| p.into_inner()));
    let beats = rtts.len();
    let p50 = quantile(&mut rtts, 0.50) as f64 / 1000.0;
    let p99 = quantile(&mut rtts, 0.99) as f64 / 1000.0;
    let max = quantile(&mut rtts, 1.0) as f64 / 1000.0;
    let drops = stats.disconnects.load(Ordering::Relaxed) - disconnects_before;
    for (what, n) in stats
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        eprintln!("  link event x{n}: {what}");
    }

    let (base3, admin3) = (base.clone(), admin.clone());
    let online = tokio::task::spawn_blocking(move || {
        http(
            "GET",
            &format!("{base3}/api/v1/hosts?status=online&limit=1"),
            &admin3,
            None,
        )
    })
    .await??["total"]
        .as_i64()
        .unwrap_or(-1);
    stop.cancel();

    let n = args.hosts as f64;
    let per_host_kib = (rss.saturating_sub(idle_rss)) as f64 / n / 1024.0;
    println!(
        "hosts={} connect_s={:.2} connect_retries={} online_in_db={}",
        args.hosts,
        connect_time.as_secs_f64(),
        retries_during_connect,
        online
    );
    println!(
        "  heartbeats measured={} over {}s ({:.0}/s)  rtt p50={:.2}ms p99={:.2}ms max={:.2}ms  stream drops={}",
        beats,
        args.measure_secs,
        beats as f64 / args.measure_secs as f64,
        p50,
        p99,
        max,
        drops
    );
    println!(
        "  server cpu={:.1}% of one core (idle baseline {:.1}%) = {:.2} ms cpu per host per s",
        cpu * 100.0,
        idle_cpu * 100.0,
        (cpu - idle_cpu).max(0.0) * 1000.0 / n
    );
    println!(
        "  server rss={:.1} MiB (idle baseline {:.1} MiB, peak {:.1} MiB) = {:.1} KiB per host",
        rss as f64 / 1048576.0,
        idle_rss as f64 / 1048576.0,
        peak_rss as f64 / 1048576.0,
        per_host_kib
    );
    println!(
        "  goals: p99 < 50 ms -> {}; RSS < 50 KiB per host -> {}",
        if p99 < 50.0 { "met" } else { "NOT met" },
        if per_host_kib < 50.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
