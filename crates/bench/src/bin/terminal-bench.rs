//! Terminal benchmark (driven by `scripts/bench-terminal`): keystroke echo round trip and output
//! throughput into one container, side by side, through
//! - the Docker engine's exec API directly (the floor: a raw attach, no WebSocket),
//! - the Labwright terminal gateway (release binary, a ticket signed like the api-server's),
//! - Python terminado and a node-pty + ws server, both running `docker exec -it <c> sh`.
//!
//! Every path runs the same shell in the same container. The echo is made by `cat` on a raw
//! terminal (as readline-based shells echo), so each sample crosses the engine both ways.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use labwright_core::terminal::{TicketClaims, TicketKey};
use labwright_terminal_gateway::engine::{Duplex, Engine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    container: String,
    #[arg(long)]
    session: Uuid,
    #[arg(long)]
    tenant: Uuid,
    #[arg(long, default_value = "")]
    docker_host: String,
    /// The containers' `io.labwright.managed` label.
    #[arg(long, default_value = "bench")]
    managed: String,
    /// `ws://host:port` of the gateway.
    #[arg(long)]
    gateway: String,
    #[arg(long)]
    secret_file: std::path::PathBuf,
    #[arg(long)]
    terminado: Option<String>,
    #[arg(long)]
    nodepty: Option<String>,
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Interleaved rounds: each round measures every path once (echo, then one `cat`); the
    /// median and spread over rounds are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The file `cat` prints for the throughput figure.
    #[arg(long, default_value = "/tmp/big")]
    big: String,
}

/// One terminal connection, whatever carries it.
enum Conn {
    Direct(Box<dyn Duplex>),
    Gateway(Ws),
    /// terminado: JSON text frames `["stdin", s]` / `["stdout", s]`.
    Terminado(Ws),
    /// node-pty + ws: text frames of raw terminal text.
    NodePty(Ws),
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Conn {
    async fn send(&mut self, keys: &str) -> anyhow::Result<()> {
        match self {
            Conn::Direct(s) => s.write_all(keys.as_bytes()).await?,
            Conn::Gateway(ws) => {
                ws.send(Message::Binary(keys.as_bytes().to_vec().into()))
                    .await?
            }
            Conn::Terminado(ws) => {
                ws.send(Message::Text(
                    serde_json::json!(["stdin", keys]).to_string().into(),
                ))
                .await?
            }
            Conn::NodePty(ws) => ws.send(Message::Text(keys.into())).await?,
        }
        Ok(())
    }

    /// Terminal output as it comes (empty when the connection ends).
    async fn recv(&mut self, buf: &mut Vec<u8>) -> anyhow::Result<usize> {
        let terminado = matches!(self, Conn::Terminado(_));
        let raw_text = matches!(self, Conn::NodePty(_));
        match self {
            Conn::Direct(s) => {
                let mut chunk = [0u8; 64 * 1024];
                let n = s.read(&mut chunk).await?;
                buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Conn::Gateway(ws) | Conn::NodePty(ws) | Conn::Terminado(ws) => loop {
                let Some(msg) = ws.next().await else {
                    return Ok(0);
                };
                match msg? {
                    Message::Binary(b) => {
                        buf.extend_from_slice(&b);
                        return Ok(b.len());
                    }
                    Message::Text(t) if terminado => {
                        let v: serde_json::Value = serde_json::from_str(t.as_str())?;
                        if v[0] == "stdout"
                            && let Some(s) = v[1].as_str()
                        {
                            buf.extend_from_slice(s.as_bytes());
                            return Ok(s.len());
                        }
                    }
                    Message::Text(t) if raw_text => {
                        buf.extend_from_slice(t.as_bytes());
                        return Ok(t.len());
                    }
                    Message::Close(_) => return Ok(0),
                    _ => {}
                }
            },
        }
    }

    /// Reads until the output (since `from`) contains `needle`.
    async fn until(&mut self, buf: &mut Vec<u8>, from: usize, needle: &[u8]) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut scanned = from;
        loop {
            let start = scanned.saturating_sub(needle.len());
            if buf[start..].windows(needle.len()).any(|w| w == needle) {
                return Ok(());
            }
            scanned = buf.len();
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for {:?}",
                    String::from_utf8_lossy(needle)
                );
            }
            if tokio::time::timeout(Duration::from_secs(60), self.recv(buf)).await?? == 0 {
                bail!(
                    "the terminal closed while waiting for {:?}",
                    String::from_utf8_lossy(needle)
                );
            }
        }
    }
}

struct Paths<'a> {
    args: &'a Args,
    engine: Engine,
    key: TicketKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Direct,
    Gateway,
    Terminado,
    NodePty,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Direct => "docker exec API, direct (floor)",
            Path::Gateway => "labwright terminal-gateway",
            Path::Terminado => "terminado 0.18 (Python)",
            Path::NodePty => "node-pty 1.1 + ws 8 (Node)",
        }
    }
}

impl Paths<'_> {
    async fn connect(&self, path: Path) -> anyhow::Result<Conn> {
        let a = self.args;
        let ws = |url: String| async move {
            let (ws, _) = tokio_tungstenite::connect_async(&url)
                .await
                .with_context(|| format!("connecting {url}"))?;
            anyhow::Ok(ws)
        };
        Ok(match path {
            Path::Direct => {
                let att = self
                    .engine
                    .start_shell(&a.container, &["sh".to_string()], "xterm", Uuid::new_v4())
                    .await?;
                Conn::Direct(att.stream)
            }
            Path::Gateway => {
                let ticket = self.key.sign(&TicketClaims {
                    jti: Uuid::new_v4(),
                    tenant: a.tenant,
                    session: a.session,
                    container: a.container.clone(),
                    key: Uuid::nil(),
                    exp: chrono_now() + 30,
                });
                Conn::Gateway(
                    ws(format!(
                        "{}/terminal/{}?ticket={ticket}",
                        a.gateway, a.session
                    ))
                    .await?,
                )
            }
            Path::Terminado => {
                Conn::Terminado(ws(a.terminado.clone().context("--terminado")?).await?)
            }
            Path::NodePty => Conn::NodePty(ws(a.nodepty.clone().context("--nodepty")?).await?),
        })
    }

    /// A terminal whose shell has become `cat` on a raw terminal: every byte sent comes back.
    async fn echoing(&self, path: Path) -> anyhow::Result<Conn> {
        let mut c = self.connect(path).await?;
        let mut buf = Vec::new();
        c.send("stty raw -echo; echo RE\"\"ADY; exec cat\n").await?;
        c.until(&mut buf, 0, b"READY").await?;
        // Let the exec of cat happen before timing anything.
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.send("x").await?;
        let from = buf.len();
        c.until(&mut buf, from, b"x").await?;
        Ok(c)
    }

    /// Round trips of one keystroke, in nanoseconds.
    async fn latency(&self, path: Path) -> anyhow::Result<Vec<u32>> {
        let mut c = self.echoing(path).await?;
        let mut buf = Vec::new();
        let mut samples = Vec::with_capacity(self.args.samples);
        // A few unmeasured to warm the path.
        for i in 0..self.args.samples + 50 {
            let key = [b'a' + (i % 26) as u8];
            let key = std::str::from_utf8(&key).unwrap_or("a");
            buf.clear();
            let t = Instant::now();
            c.send(key).await?;
            while buf.is_empty() {
                if c.recv(&mut buf).await? == 0 {
                    bail!("{}: closed", path.name());
                }
            }
            let dt = t.elapsed();
            if buf.as_slice() != key.as_bytes() {
                bail!(
                    "{}: sent {key:?}, got {:?}",
                    path.name(),
                    String::from_utf8_lossy(&buf)
                );
            }
            if i >= 50 {
                samples.push(u32::try_from(dt.as_nanos()).unwrap_or(u32::MAX));
            }
        }
        Ok(samples)
    }

    /// Bytes per second of `cat big` reaching the client.
    async fn throughput(&self, path: Path) -> anyhow::Result<(f64, usize)> {
        let mut c = self.connect(path).await?;
        let mut buf = Vec::new();
        c.send("echo RE\"\"ADY\n").await?;
        c.until(&mut buf, 0, b"READY\r\n").await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        buf.clear();
        let t = Instant::now();
        c.send(&format!("cat {}; echo EN\"\"D-MARK\n", self.args.big))
            .await?;
        c.until(&mut buf, 0, b"END-MARK\r\n").await?;
        let secs = t.elapsed().as_secs_f64();
        Ok((buf.len() as f64 / secs, buf.len()))
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn ms(ns: u32) -> f64 {
    f64::from(ns) / 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secret = std::fs::read(&args.secret_file).context("secret file")?;
    let paths = Paths {
        engine: Engine::connect(&args.docker_host, args.managed.clone()).await?,
        key: TicketKey::from_secret(&secret).map_err(anyhow::Error::msg)?,
        args: &args,
    };
    let mut all = vec![Path::Direct, Path::Gateway];
    if args.terminado.is_some() {
        all.push(Path::Terminado);
    }
    if args.nodepty.is_some() {
        all.push(Path::NodePty);
    }
    // Rounds: every path once per round (echo samples, then one `cat`), in the same order, so
    // that load which comes and goes hits every path alike; each figure is the median over
    // rounds with its spread, never one run.
    let rounds = args.runs.max(1);
    let mut p50s = vec![Vec::new(); all.len()];
    let mut p99s = vec![Vec::new(); all.len()];
    let mut rates = vec![Vec::new(); all.len()];
    let mut bytes = 0;
    for round in 0..rounds {
        for (i, &path) in all.iter().enumerate() {
            let mut lat = paths.latency(path).await?;
            p50s[i].push(ms(labwright_bench::quantile(&mut lat, 0.5)));
            p99s[i].push(ms(labwright_bench::quantile(&mut lat, 0.99)));
            let (r, n) = paths.throughput(path).await?;
            rates[i].push(r / 1e6);
            bytes = n;
            eprintln!(
                "  round {}/{rounds} {:<34} p50 {:.3} ms  p99 {:.3} ms  {:.1} MB/s",
                round + 1,
                path.name(),
                p50s[i][round],
                p99s[i][round],
                rates[i][round]
            );
        }
    }
    println!(
        "\n{rounds} interleaved rounds; each round: {} echo samples and one `cat` of {bytes} bytes per path; median [min-max] over rounds",
        args.samples
    );
    println!("\n| path | echo p50 | echo p99 | `cat` throughput |\n|---|---|---|---|");
    let fmt = |v: &[f64], digits: usize| {
        let (m, lo, hi) = labwright_bench::median_min_max(v);
        format!("{m:.digits$} [{lo:.digits$}-{hi:.digits$}]")
    };
    for (i, path) in all.iter().enumerate() {
        println!(
            "| {} | {} ms | {} ms | {} MB/s |",
            path.name(),
            fmt(&p50s[i], 3),
            fmt(&p99s[i], 3),
            fmt(&rates[i], 1)
        );
    }
    // Gateway against the floor, round by round (both measured in the same round).
    let per_round = |v: &[Vec<f64>], f: fn(f64, f64) -> f64| -> Vec<f64> {
        v[1].iter().zip(&v[0]).map(|(&g, &d)| f(g, d)).collect()
    };
    let dp50 = per_round(&p50s, |g, d| g - d);
    let dp99 = per_round(&p99s, |g, d| g - d);
    let share = per_round(&rates, |g, d| g / d * 100.0);
    let (m50, m99, msh) = (
        labwright_bench::median_min_max(&dp50).0,
        labwright_bench::median_min_max(&dp99).0,
        labwright_bench::median_min_max(&share).0,
    );
    println!(
        "\ngateway vs direct exec, per round: p50 {} ms (goal <= +0.100), p99 {} ms (goal <= +0.300), \
         throughput {} % (goal >= 95)",
        fmt_signed(&dp50),
        fmt_signed(&dp99),
        fmt(&share, 1)
    );
    let met = |v: &[f64], ok: fn(f64) -> bool| v.iter().filter(|&&x| ok(x)).count();
    println!(
        "goals on the medians: p50 {}, p99 {}, throughput {} (rounds meeting each: {}/{rounds}, {}/{rounds}, {}/{rounds})",
        if m50 <= 0.1 { "met" } else { "MISSED" },
        if m99 <= 0.3 { "met" } else { "MISSED" },
        if msh >= 95.0 { "met" } else { "MISSED" },
        met(&dp50, |x| x <= 0.1),
        met(&dp99, |x| x <= 0.3),
        met(&share, |x| x >= 95.0),
    );
    let med = |v: &[f64]| labwright_bench::median_min_max(v).0;
    for i in 2..all.len() {
        let ahead = med(&p50s[1]) <= med(&p50s[i])
            && med(&p99s[1]) <= med(&p99s[i])
            && med(&rates[1]) >= med(&rates[i]);
        println!(
            "gateway vs {} (medians): {}",
            all[i].name(),
            if ahead {
                "ahead on every figure"
            } else {
                "NOT ahead on every figure"
            }
        );
    }
    Ok(())
}

fn fmt_signed(v: &[f64]) -> String {
    let (m, lo, hi) = labwright_bench::median_min_max(v);
    format!("{m:+.3} [{lo:+.3} to {hi:+.3}]")
}
