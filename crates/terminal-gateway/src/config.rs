//! terminal-gateway configuration: a TOML file (`terminal-gateway.example.toml` documents every
//! key) with `LABWRIGHT_<KEY>` environment overrides (all but `shell`, a list), loaded by
//! [`labwright_service::config`]. Unknown keys are errors; every problem is reported at once.

use std::{net::SocketAddr, path::PathBuf};

pub use labwright_service::{ConfigError, LogFormat};
use labwright_service::{Settings, docker::EngineAddr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the WebSocket endpoint (`/terminal/{session}`) and health probes.
    pub listen_addr: SocketAddr,
    /// Address of `/metrics` for operators, apart from the public endpoint (loopback by
    /// default: the counters say how many terminals each reason refused).
    pub metrics_addr: SocketAddr,
    /// File holding the secret the api-server signs terminal tickets with (its
    /// `terminal_secret_file`). At least 32 bytes.
    pub ticket_secret_file: PathBuf,
    /// Docker engine with the session containers: `unix:///path/docker.sock` or
    /// `tcp://host:port`; empty = `DOCKER_HOST` or the default socket.
    pub docker_host: String,
    /// The build workers' (and api-server's) `namespace`: only containers of this installation
    /// are reachable.
    pub namespace: String,
    /// Command run in the container (through its own user), with `TERM` set.
    pub shell: Vec<String>,
    /// `TERM` of the shell.
    pub term: String,
    /// A terminal without a keystroke or resize for this long is closed.
    pub idle_timeout_secs: u64,
    /// Terminals open at once on this gateway, and per tenant.
    pub max_terminals: usize,
    pub max_terminals_per_tenant: usize,
    /// Largest frame accepted from a client.
    pub max_frame_bytes: usize,
    /// Where asciicast v2 recordings of every terminal go: a directory (or `file://` URL), or
    /// `s3://bucket/prefix` (credentials from `AWS_*`); empty = no recording.
    pub recordings_url: String,
    /// A recording stops (with a note in it) past this size.
    pub recording_max_mib: u64,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// HTTP worker threads (0 = one per core).
    pub workers: usize,
    /// The api-server's broker (its `amqp_url`): key revocations come from its events, closing
    /// the revoked key's terminals and refusing its tickets. Empty: revocations are not followed.
    pub amqp_url: String,
    /// The api-server's events exchange (its `events_exchange`).
    pub events_exchange: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            ticket_secret_file: PathBuf::from("/etc/labwright/terminal-secret"),
            docker_host: String::new(),
            namespace: String::new(),
            shell: vec![
                "/bin/sh".into(),
                "-c".into(),
                "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi".into(),
            ],
            term: "xterm-256color".into(),
            idle_timeout_secs: 900,
            max_terminals: 1000,
            max_terminals_per_tenant: 20,
            max_frame_bytes: 64 * 1024,
            recordings_url: String::new(),
            recording_max_mib: 64,
            log_format: LogFormat::Text,
            workers: 0,
            amqp_url: "amqp://guest:guest@127.0.0.1:55672/%2f".into(),
            events_exchange: "labwright.events".into(),
        }
    }
}

impl Config {
    /// Value of the `io.labwright.managed` label on this installation's containers.
    pub fn managed_label(&self) -> String {
        labwright_wire::docker::Installation::new(&self.namespace)
            .managed()
            .to_string()
    }
}

impl Settings for Config {
    fn check(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.shell.is_empty() || self.shell.iter().any(|a| a.contains('\0')) {
            errors.push("shell: must be a non-empty command without NUL bytes".into());
        }
        if self.term.is_empty() || !self.term.bytes().all(|b| b.is_ascii_graphic()) {
            errors.push("term: must be a plain terminal name".into());
        }
        if !(1..=86_400).contains(&self.idle_timeout_secs) {
            errors.push("idle_timeout_secs: must be between 1 and 86400".into());
        }
        if !(1..=100_000).contains(&self.max_terminals) {
            errors.push("max_terminals: must be between 1 and 100000".into());
        }
        if !(1..=self.max_terminals).contains(&self.max_terminals_per_tenant) {
            errors.push("max_terminals_per_tenant: must be between 1 and max_terminals".into());
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_frame_bytes) {
            errors.push("max_frame_bytes: must be between 1024 and 16777216".into());
        }
        if !(1..=4096).contains(&self.recording_max_mib) {
            errors.push("recording_max_mib: must be between 1 and 4096".into());
        }
        if !self.amqp_url.is_empty()
            && !self.amqp_url.starts_with("amqp://")
            && !self.amqp_url.starts_with("amqps://")
        {
            errors.push("amqp_url: must be empty or an amqp:// or amqps:// URL".into());
        }
        if self.events_exchange.is_empty() {
            errors.push("events_exchange: must not be empty".into());
        }
        if !EngineAddr::is_supported(&self.docker_host) {
            errors.push("docker_host: expected unix://, tcp:// or http://".into());
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_example_file_is_the_default_and_overrides_apply() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("terminal-gateway.example.toml");
        let c = Config::load(Some(&path), Vec::new()).expect("example loads");
        assert_eq!(c, Config::default());
        labwright_service::config::assert_example_is_default::<Config>(&path, &[]);
        let c = Config::load(
            Some(&path),
            [
                (
                    "LABWRIGHT_LISTEN_ADDR".to_string(),
                    "127.0.0.1:9999".to_string(),
                ),
                ("LABWRIGHT_MAX_TERMINALS_PER_TENANT".into(), "3".into()),
            ],
        )
        .expect("overrides");
        assert_eq!(c.listen_addr.port(), 9999);
        assert_eq!(c.max_terminals_per_tenant, 3);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Config::load(
            None,
            [
                ("LABWRIGHT_LISTEN_ADDR".to_string(), "nowhere".to_string()),
                ("LABWRIGHT_IDLE_TIMEOUT_SECS".into(), "0".into()),
                ("LABWRIGHT_DOCKER_HOST".into(), "ssh://x".into()),
                ("LABWRIGHT_LOG_FORMAT".into(), "xml".into()),
            ],
        )
        .expect_err("invalid");
        assert_eq!(err.0.len(), 4, "{err}");
    }
}
