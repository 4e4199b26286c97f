//! Shared pieces of Labwright's whole-binary benchmarks: percentiles, process CPU/RSS sampling
//! from `/proc`, the `api-server` child process and the REST calls made to it.

use std::{
    path::Path,
    process::{Child, Command},
    time::{Duration, Instant},
};

/// A child process killed (and reaped) when dropped, so a failing benchmark leaves nothing behind.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The benchmarks' arguments for the `api-server` they start.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// Path of the api-server binary.
    #[arg(long)]
    pub server_bin: String,
    /// An empty database for this run.
    #[arg(long, env = "LABWRIGHT_DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "LABWRIGHT_AMQP_URL")]
    pub amqp_url: String,
}

impl ServerArgs {
    /// The `api-server` listening on loopback `http_port` (REST) and `grpc_port` (host link),
    /// with its database and the broker under `namespace` (its exchange too), so that a
    /// benchmark never shares queues or events with a stack that is running beside it; callers
    /// add their own settings and spawn it.
    pub fn command(&self, http_port: u16, grpc_port: u16, namespace: &str) -> Command {
        let mut command = Command::new(&self.server_bin);
        command
            .env("LABWRIGHT_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("LABWRIGHT_GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("LABWRIGHT_DATABASE_URL", &self.database_url)
            .env("LABWRIGHT_AMQP_URL", &self.amqp_url)
            .env("LABWRIGHT_NAMESPACE", namespace)
            .env("LABWRIGHT_EVENTS_EXCHANGE", format!("{namespace}events"));
        command
    }
}

/// A broker namespace of this benchmark process alone: `bench<pid>.`.
pub fn namespace() -> String {
    format!("bench{}.", std::process::id())
}

/// A loopback TCP port that was free a moment ago: benchmarks never take a fixed port, which a
/// running local stack (`scripts/stack up`) may hold.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `port` if one was given, otherwise a free one.
pub fn port_or_free(port: Option<u16>) -> std::io::Result<u16> {
    port.map_or_else(free_port, Ok)
}

/// The admin key a starting `api-server` writes to `path`, polled every 100 ms; `None` when it
/// has not appeared within 60 s.
pub fn admin_key(path: &Path) -> Option<String> {
    let started = Instant::now();
    loop {
        if let Ok(k) = std::fs::read_to_string(path) {
            return Some(k.trim().to_string());
        }
        if started.elapsed() > Duration::from_secs(60) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTP agent that gives up after `timeout` and returns error statuses as responses.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The body of a REST call.
pub enum Body<'a> {
    Empty,
    Json(serde_json::Value),
    Yaml(&'a [u8]),
}

/// `method` on `url` with bearer `key`: the status and the JSON body (`null` when there is none).
/// POST sends `body`; DELETE and GET send nothing.
pub fn call(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    key: &str,
    body: Body<'_>,
) -> Result<(u16, serde_json::Value), ureq::Error> {
    let auth = format!("Bearer {key}");
    let mut resp = match (method, body) {
        ("POST", Body::Yaml(b)) => a
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/yaml")
            .send(b)?,
        ("POST", Body::Json(j)) => a.post(url).header("Authorization", &auth).send_json(j)?,
        ("DELETE", _) => a.delete(url).header("Authorization", &auth).call()?,
        _ => a.get(url).header("Authorization", &auth).call()?,
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string()?;
    Ok((status, serde_json::from_str(&text).unwrap_or_default()))
}

/// The `q` quantile (0..=1) of `samples` (sorted in place), nearest-rank.
pub fn quantile(samples: &mut [u32], q: f64) -> u32 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Median, minimum and maximum of `v` (NaN for none): how a benchmark reports a figure measured
/// over several rounds, with its spread, rather than one run.
pub fn median_min_max(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match (s.first(), s.last()) {
        (Some(&lo), Some(&hi)) => (s[s.len() / 2], lo, hi),
        _ => (f64::NAN, f64::NAN, f64::NAN),
    }
}

/// CPU time (user + system) a process has used so far.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks; USER_HZ is 100 on every mainstream architecture.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Resident set size of a process, in bytes.
pub fn process_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), 50);
        assert_eq!(quantile(&mut v, 0.99), 99);
        assert_eq!(quantile(&mut v, 1.0), 100);
        assert_eq!(quantile(&mut [], 0.5), 0);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(process_rss(me).expect("rss") > 0);
        assert!(process_cpu(me).is_some());
    }
}
