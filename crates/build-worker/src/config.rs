//! build-worker configuration: a TOML file (`build-worker.example.toml` shows every key) with
//! `LABWRIGHT_<KEY>` environment overrides (`LABWRIGHT_BUILD_IMAGES__<STACK>` for a base image),
//! loaded by [`labwright_service::config`]. Unknown keys are errors; every problem is reported
//! at once.

use std::path::PathBuf;

pub use labwright_service::{ConfigError, LogFormat};
use labwright_service::{Settings, config::hostname};
use serde::{Deserialize, Serialize};

use crate::detect::BaseImages;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// RabbitMQ URL (`amqp://user:password@host:port/vhost`).
    pub amqp_url: String,
    /// Topic exchange where build updates go (the api-server's events exchange).
    pub events_exchange: String,
    /// Prefix of every queue and exchange name (the api-server's and the terminal gateway's
    /// `namespace`: one setting, `LABWRIGHT_NAMESPACE`), so several installations or test runs
    /// can share one broker.
    pub namespace: String,
    /// Docker engine: `unix:///path/docker.sock` or `tcp://host:port`; empty = `DOCKER_HOST` or
    /// the default socket.
    pub docker_host: String,
    /// This worker's name in logs and container labels. Defaults to the hostname.
    pub worker_name: String,
    /// Jobs worked on at once (the AMQP prefetch).
    pub concurrency: u16,
    /// Where repositories are cloned (one directory per job, removed after).
    pub scratch_dir: PathBuf,
    /// Clone limits.
    pub clone_timeout_secs: u64,
    pub clone_max_mib: u64,
    /// Limits of an image build (the session's own are below): its time, the memory (swap
    /// included) and CPUs of each `RUN` step, and the bytes of build output kept in its log.
    pub build_timeout_secs: u64,
    pub build_memory_mib: u64,
    pub build_cpus: f64,
    pub build_pids: i64,
    pub build_log_max_kib: u64,
    /// Reuse layers of earlier builds. The engine has one build cache for every tenant, so a
    /// `RUN` step could get a layer another tenant's build made: off unless all builds are
    /// trusted alike.
    pub build_reuse_cache: bool,
    /// Clone from loopback and private addresses (a lab-local git server). Off for a shared
    /// service: a user could otherwise make the worker reach internal hosts.
    pub allow_private_hosts: bool,
    /// Limits of every session container.
    pub session_memory_mib: u64,
    pub session_cpus: f64,
    pub session_pids: i64,
    /// Bytes of a session container's output (each run) sent to the api-server, which keeps it
    /// as the session's log; past them one line says the rest was cut.
    pub session_log_max_kib: u64,
    /// Seconds between sweeps of expired and orphaned containers.
    pub sweep_interval_secs: u64,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Base images per stack.
    pub build_images: BaseImages,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            amqp_url: "amqp://127.0.0.1:5672/%2f".into(),
            events_exchange: "labwright.events".into(),
            namespace: String::new(),
            docker_host: String::new(),
            worker_name: String::new(),
            concurrency: 2,
            scratch_dir: PathBuf::from("/var/lib/labwright/builds"),
            clone_timeout_secs: 120,
            clone_max_mib: 512,
            build_timeout_secs: 900,
            build_memory_mib: 1024,
            build_cpus: 1.0,
            build_pids: 512,
            build_log_max_kib: 1024,
            build_reuse_cache: false,
            allow_private_hosts: false,
            session_memory_mib: 512,
            session_cpus: 1.0,
            session_pids: 256,
            session_log_max_kib: 1024,
            sweep_interval_secs: 30,
            log_format: LogFormat::Text,
            build_images: BaseImages::default(),
        }
    }
}

impl Settings for Config {
    fn complete(&mut self) {
        if self.worker_name.is_empty() {
            self.worker_name = hostname().unwrap_or_else(|| "build-worker".into());
        }
    }

    fn check(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !self.amqp_url.starts_with("amqp://") && !self.amqp_url.starts_with("amqps://") {
            errors.push("amqp_url: must be an amqp:// or amqps:// URL".into());
        }
        if !(1..=64).contains(&self.concurrency) {
            errors.push("concurrency: must be between 1 and 64".into());
        }
        if !(1..=3600).contains(&self.clone_timeout_secs) {
            errors.push("clone_timeout_secs: must be between 1 and 3600".into());
        }
        if !(1..=65536).contains(&self.clone_max_mib) {
            errors.push("clone_max_mib: must be between 1 and 65536".into());
        }
        if !(1..=86400).contains(&self.build_timeout_secs) {
            errors.push("build_timeout_secs: must be between 1 and 86400".into());
        }
        // The classic builder takes a build's memory as an i32 of bytes.
        if !(16..=2047).contains(&self.build_memory_mib) {
            errors.push("build_memory_mib: must be between 16 and 2047".into());
        }
        if !(self.build_cpus >= 0.01 && self.build_cpus <= 64.0) {
            errors.push("build_cpus: must be between 0.01 and 64".into());
        }
        if !(8..=1_000_000).contains(&self.build_pids) {
            errors.push("build_pids: must be between 8 and 1000000".into());
        }
        if !(1..=1_048_576).contains(&self.build_log_max_kib) {
            errors.push("build_log_max_kib: must be between 1 and 1048576".into());
        }
        if !(16..=1_048_576).contains(&self.session_memory_mib) {
            errors.push("session_memory_mib: must be between 16 and 1048576".into());
        }
        if !(self.session_cpus > 0.0 && self.session_cpus <= 256.0) {
            errors.push("session_cpus: must be above 0 and at most 256".into());
        }
        if !(8..=1_000_000).contains(&self.session_pids) {
            errors.push("session_pids: must be between 8 and 1000000".into());
        }
        if !(1..=3600).contains(&self.sweep_interval_secs) {
            errors.push("sweep_interval_secs: must be between 1 and 3600".into());
        }
        if let Err(e) = labwright_core::validate::slug("worker_name", &self.worker_name, 64) {
            errors.push(e.to_string());
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_example_config_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("build-worker.example.toml");
        let text = std::fs::read_to_string(&path).expect("example config");
        let example: Config = toml::from_str(&text).expect("example parses");
        assert_eq!(example, Config::default());
        labwright_service::config::assert_example_is_default::<Config>(&path, &[]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let env = [
            ("LABWRIGHT_AMQP_URL", "http://x"),
            ("LABWRIGHT_CONCURRENCY", "0"),
            ("LABWRIGHT_CLONE_TIMEOUT_SECS", "soon"),
            ("LABWRIGHT_WORKER_NAME", "bad name"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let err = Config::load(None, env).expect_err("invalid");
        let text = err.to_string();
        for field in [
            "amqp_url",
            "concurrency",
            "CLONE_TIMEOUT_SECS",
            "worker_name",
        ] {
            assert!(text.contains(field), "{field} missing from: {text}");
        }
    }
}
