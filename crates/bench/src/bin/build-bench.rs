//! Repo sandboxes: submit-to-running time through the platform against `docker build` +
//! `docker run` of the same Dockerfile by hand, side by side, with a warm image cache; then a
//! burst of builds submitted at once to two workers. Real processes throughout: a release
//! `api-server`, two `build-worker`s, RabbitMQ, PostgreSQL, the Docker engine, a `git daemon`.
//! Run through `scripts/bench-builds`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use labwright_bench::{Body, Process, ServerArgs, admin_key, call};
use labwright_testkit::git::{self, GitDaemon};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10)]
    runs: usize,
    #[arg(long, default_value_t = 20)]
    burst: usize,
    #[command(flatten)]
    server: ServerArgs,
    #[arg(long)]
    worker_bin: String,
    #[arg(long, env = "LABWRIGHT_DOCKER_HOST")]
    docker_host: String,
    #[arg(long, default_value = "labwright/runtime:12")]
    base_image: String,
    /// REST port of the api-server (default: a free one).
    #[arg(long)]
    http_port: Option<u16>,
    /// gRPC port of the api-server (default: a free one).
    #[arg(long)]
    grpc_port: Option<u16>,
}

fn agent() -> ureq::Agent {
    labwright_bench::agent(Duration::from_secs(30))
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The `q` quantile of sorted samples (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A repository with a Dockerfile, committed, in `root/name`.
fn make_repo(root: &Path, name: &str, base: &str) -> anyhow::Result<PathBuf> {
    let dir = root.join(name);
    let dockerfile =
        format!("FROM {base}\nCOPY app.sh /app/app.sh\nCMD [\"sh\", \"/app/app.sh\"]\n");
    git::commit(
        &dir,
        &[
            ("Dockerfile", &dockerfile),
            ("app.sh", "echo up\nexec sleep 600\n"),
        ],
    )
    .context("commit the repository")?;
    Ok(dir)
}

/// Submits a build and polls (every 5 ms) until it runs; returns the elapsed time and ids.
fn submit_until_running(
    a: &ureq::Agent,
    base: &str,
    key: &str,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<(Duration, String)> {
    let started = Instant::now();
    let (status, b) = call(
        a,
        "POST",
        &format!("{base}/api/v1/builds"),
        key,
        Body::Json(serde_json::json!({"repo_url": url})),
    )?;
    if status != 201 {
        bail!("submit: {status} {b}");
    }
    let id = b["id"].as_str().context("id")?.to_string();
    loop {
        let (_, b) = call(
            a,
            "GET",
            &format!("{base}/api/v1/builds/{id}"),
            key,
            Body::Empty,
        )?;
        match b["stage"].as_str() {
            Some("running") => return Ok((started.elapsed(), id)),
            Some("failed" | "cancelled" | "expired" | "stopped") => {
                bail!("build {id} ended {}: {}", b["stage"], b["reason"])
            }
            _ => {}
        }
        if started.elapsed() > timeout {
            bail!("build {id} not running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http_port = labwright_bench::port_or_free(args.http_port)?;
    let grpc_port = labwright_bench::port_or_free(args.grpc_port)?;
    let scratch = std::env::temp_dir().join(format!("lw-build-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let namespace = labwright_bench::namespace();
    let exchange = format!("{namespace}events");
    let docker = |c: &mut Command| {
        c.env("DOCKER_HOST", &args.docker_host);
    };

    let repo = make_repo(&scratch.join("repos"), "app", &args.base_image)?;
    // A free port, never the stack's git daemon (19418), which would answer for this one.
    let git_port = labwright_bench::free_port()?;
    let _git = GitDaemon::spawn(&scratch.join("repos"), git_port).context("git daemon")?;
    let url = format!("git://127.0.0.1:{git_port}/app");

    let server = Process(
        args.server
            .command(http_port, grpc_port, &namespace)
            .env("LABWRIGHT_BUILDS_ALLOW_PRIVATE_HOSTS", "true")
            .env("LABWRIGHT_DATA_DIR", scratch.join("data"))
            .env("LABWRIGHT_ARTIFACTS_URL", scratch.join("artifacts"))
            .env("LABWRIGHT_LOG", "warn")
            .spawn()
            .context("starting api-server")?,
    );
    let _ = &server;
    let workers: Vec<Process> = (0..2)
        .map(|i| {
            Command::new(&args.worker_bin)
                .env("LABWRIGHT_AMQP_URL", &args.server.amqp_url)
                .env("LABWRIGHT_EVENTS_EXCHANGE", &exchange)
                .env("LABWRIGHT_NAMESPACE", &namespace)
                .env("LABWRIGHT_DOCKER_HOST", &args.docker_host)
                .env("LABWRIGHT_SCRATCH_DIR", scratch.join(format!("worker-{i}")))
                .env("LABWRIGHT_ALLOW_PRIVATE_HOSTS", "true")
                .env("LABWRIGHT_WORKER_NAME", format!("bench-{i}"))
                .env("LABWRIGHT_LOG", "warn")
                .spawn()
                .map(Process)
                .context("starting build-worker")
        })
        .collect::<anyhow::Result<_>>()?;
    let _ = &workers;

    let base = format!("http://127.0.0.1:{}", http_port);
    let started = Instant::now();
    let key = admin_key(&scratch.join("data/admin-key")).context("api-server did not start")?;
    let a = agent();
    while call(&a, "GET", &format!("{base}/readyz"), &key, Body::Empty)
        .map(|r| r.0)
        .ok()
        != Some(200)
    {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("api-server not ready");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let end_session = |id: &str| {
        let _ = call(
            &a,
            "DELETE",
            &format!("{base}/api/v1/sessions/{id}"),
            &key,
            Body::Empty,
        );
    };

    println!(
        "small repository (Dockerfile: FROM {}, COPY, CMD), warm image cache, {} runs each, alternating",
        args.base_image, args.runs
    );
    // Warm-up: the layer cache holds the repository's layers for both paths.
    let (_, id) = submit_until_running(&a, &base, &key, &url, Duration::from_secs(120))?;
    end_session(&id);
    let mut platform = Vec::new();
    let mut by_hand = Vec::new();
    for i in 0..args.runs {
        let (t, id) = submit_until_running(&a, &base, &key, &url, Duration::from_secs(120))?;
        platform.push(ms(t));
        end_session(&id);

        let name = format!("lw-bench-hand-{}-{i}", std::process::id());
        let t0 = Instant::now();
        let image = run(Command::new("docker")
            .args(["build", "-q", "-t", &format!("lw-bench-hand:{i}")])
            .arg(&repo)
            .tap(docker))?;
        run(Command::new("docker")
            .args(["run", "-d", "--name", &name, &image])
            .tap(docker))?;
        by_hand.push(ms(t0.elapsed()));
        let _ = run(Command::new("docker").args(["rm", "-f", &name]).tap(docker));
        let _ = run(Command::new("docker")
            .args(["rmi", "-f", &format!("lw-bench-hand:{i}")])
            .tap(docker));
    }
    platform.sort_by(f64::total_cmp);
    by_hand.sort_by(f64::total_cmp);
    let (p50, h50) = (quantile(&platform, 0.5), quantile(&by_hand, 0.5));
    println!(
        "  by hand (docker build -q + docker run -d, the docker CLI):  p50 {h50:.0} ms  min {:.0}  max {:.0}",
        by_hand[0],
        by_hand[by_hand.len() - 1]
    );
    println!(
        "  through Labwright (POST /builds -> running, polled every 5 ms): p50 {p50:.0} ms  min {:.0}  max {:.0}",
        platform[0],
        platform[platform.len() - 1]
    );
    let overhead = p50 - h50;
    println!(
        "  added overhead (p50): {overhead:.0} ms  (goal <= 300 ms -> {})",
        if overhead <= 300.0 { "met" } else { "NOT met" }
    );

    println!(
        "burst: {} builds submitted at once, two workers",
        args.burst
    );
    let t0 = Instant::now();
    let handles: Vec<_> = (0..args.burst)
        .map(|_| {
            let (base, key, url) = (base.clone(), key.clone(), url.clone());
            std::thread::spawn(move || {
                submit_until_running(&agent(), &base, &key, &url, Duration::from_secs(600))
            })
        })
        .collect();
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok((t, id))) => ok.push((t, id)),
            Ok(Err(e)) => failed.push(e.to_string()),
            Err(_) => failed.push("client thread panicked".into()),
        }
    }
    let total = t0.elapsed();
    let mut times: Vec<f64> = ok.iter().map(|(t, _)| ms(*t)).collect();
    times.sort_by(f64::total_cmp);
    println!(
        "  running: {} of {}, failed: {}, lost: {}; total {:.1} s; per build p50 {:.0} ms, max {:.0} ms",
        ok.len(),
        args.burst,
        failed.len(),
        args.burst - ok.len() - failed.len(),
        total.as_secs_f64(),
        quantile(&times, 0.5),
        times.last().copied().unwrap_or(0.0)
    );
    for f in &failed {
        println!("  failed: {f}");
    }
    for (_, id) in &ok {
        end_session(id);
    }
    std::thread::sleep(Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&scratch);
    if !failed.is_empty() {
        bail!("{} builds failed", failed.len());
    }
    Ok(())
}

trait Tap {
    fn tap(&mut self, f: impl Fn(&mut Self)) -> &mut Self;
}

impl Tap for Command {
    fn tap(&mut self, f: impl Fn(&mut Self)) -> &mut Self {
        f(self);
        self
    }
}
