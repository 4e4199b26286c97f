//! api-server configuration: a TOML file (`api-server.example.toml` documents every key) with
//! `LABWRIGHT_<KEY>` environment overrides, loaded by [`labwright_service::config`]. Unknown keys
//! are errors; every problem is reported at once.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use labwright_service::Settings;
pub use labwright_service::{ConfigError, LogFormat};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the REST API (and Swagger UI).
    pub http_addr: SocketAddr,
    /// Address of the gRPC server (host link, reflection).
    pub grpc_addr: SocketAddr,
    /// PostgreSQL URL. May carry a password: never logged.
    pub database_url: String,
    /// Most PostgreSQL connections in the pool.
    pub database_pool_size: u32,
    /// RabbitMQ URL. May carry a password: never logged.
    pub amqp_url: String,
    /// Topic exchange that fleet events are published on.
    pub events_exchange: String,
    /// How often hosts send a heartbeat (told to each host when it connects).
    pub heartbeat_interval_ms: u64,
    /// Heartbeats a host may miss before it and its devices are marked offline.
    pub missed_heartbeats: u32,
    /// Directory for server-side state such as the first admin key file.
    pub data_dir: PathBuf,
    /// `text` (readable) or `json`.
    pub log_format: LogFormat,
    /// Where screenshots and reference images go: a directory (or `file://` URL), or
    /// `s3://bucket/prefix` for any S3-compatible store (credentials from `AWS_*` variables).
    pub artifacts_url: String,
    /// Accept builds of repositories on private, loopback or link-local hosts (the local stack
    /// and tests; never on a shared deployment: a build would reach the internal network).
    pub builds_allow_private_hosts: bool,
    /// Prefix of every repo-sandbox exchange and queue name (`""`: the plain names). Lets
    /// several deployments, or tests, share one broker; workers must be given the same one.
    pub namespace: String,
    /// Seconds a session lives before it expires, unless extended.
    pub session_ttl_secs: u64,
    /// Seconds after its start past which a session is never extended (workers remove it then
    /// whatever happens).
    pub session_max_ttl_secs: u64,
    /// Base URL of the terminal gateway as browsers reach it (`ws://` or `wss://`); terminal
    /// tickets come with `<terminal_url>/terminal/<session>?ticket=…`.
    pub terminal_url: String,
    /// Secret shared with the terminal gateway to sign terminal tickets (at least 32 bytes).
    /// Empty: `<data_dir>/terminal-secret`, created on first start.
    pub terminal_secret_file: String,
    /// The built web UI, served at `/`.
    pub ui_dir: PathBuf,
    /// Wrong keys an address may present (REST and host link together) before it is blocked.
    pub auth_failures_allowed: u32,
    /// The first block after those, in milliseconds; each further failure doubles it (at most
    /// 5 minutes).
    pub auth_backoff_ms: u64,
    /// Serve gRPC server reflection on the host link's port (tools like grpcurl); off by default.
    pub grpc_reflection: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            database_url: "postgres://labwright@127.0.0.1:55432/labwright".into(),
            database_pool_size: 16,
            amqp_url: "amqp://guest:guest@127.0.0.1:55672/%2f".into(),
            events_exchange: "labwright.events".into(),
            heartbeat_interval_ms: 5_000,
            missed_heartbeats: 3,
            data_dir: PathBuf::from(".labwright/api-server"),
            log_format: LogFormat::Text,
            artifacts_url: ".labwright/artifacts".into(),
            builds_allow_private_hosts: false,
            namespace: String::new(),
            session_ttl_secs: 1800,
            session_max_ttl_secs: 14_400,
            terminal_url: "ws://127.0.0.1:8090".into(),
            terminal_secret_file: String::new(),
            ui_dir: PathBuf::from("frontend/dist"),
            auth_failures_allowed: 10,
            auth_backoff_ms: 1_000,
            grpc_reflection: false,
        }
    }
}

impl Config {
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// How long a host may stay silent before it is marked offline.
    pub fn offline_after(&self) -> Duration {
        self.heartbeat_interval() * self.missed_heartbeats
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }

    pub fn session_max_ttl(&self) -> Duration {
        Duration::from_secs(self.session_max_ttl_secs)
    }

    /// Reads the optional TOML file, then applies `LABWRIGHT_*` variables from `env` (see
    /// [`labwright_service::config`]).
    pub fn load(
        path: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        labwright_service::config::load(path, env)
    }
}

impl Settings for Config {
    fn check(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !(50..=600_000).contains(&self.heartbeat_interval_ms) {
            errors.push("heartbeat_interval_ms: must be between 50 and 600000".into());
        }
        if !(1..=100).contains(&self.missed_heartbeats) {
            errors.push("missed_heartbeats: must be between 1 and 100".into());
        }
        if !(1..=1000).contains(&self.database_pool_size) {
            errors.push("database_pool_size: must be between 1 and 1000".into());
        }
        if !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
        {
            errors.push("database_url: must be a postgres:// URL".into());
        }
        if !self.amqp_url.starts_with("amqp://") && !self.amqp_url.starts_with("amqps://") {
            errors.push("amqp_url: must be an amqp:// or amqps:// URL".into());
        }
        if !(self.terminal_url.starts_with("ws://") || self.terminal_url.starts_with("wss://"))
            || self.terminal_url.contains(['?', '#'])
        {
            errors.push("terminal_url: must be a ws:// or wss:// URL without query".into());
        }
        if self.events_exchange.is_empty() {
            errors.push("events_exchange: must not be empty".into());
        }
        if !(1..=10_000).contains(&self.auth_failures_allowed) {
            errors.push("auth_failures_allowed: must be between 1 and 10000".into());
        }
        if !(1..=300_000).contains(&self.auth_backoff_ms) {
            errors.push("auth_backoff_ms: must be between 1 and 300000".into());
        }
        if self.namespace.len() > 64
            || !self
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            errors
                .push("namespace: at most 64 letters, digits, dots, dashes and underscores".into());
        }
        if !(60..=7 * 86_400).contains(&self.session_ttl_secs) {
            errors.push("session_ttl_secs: must be between 60 and 604800".into());
        }
        if self.session_max_ttl_secs < self.session_ttl_secs
            || self.session_max_ttl_secs > 30 * 86_400
        {
            errors.push(
                "session_max_ttl_secs: must be at least session_ttl_secs and at most 2592000"
                    .into(),
            );
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_matches_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("api-server.example.toml");
        let loaded = Config::load(Some(&path), []).expect("example config loads");
        assert_eq!(loaded, Config::default());
        labwright_service::config::assert_example_is_default::<Config>(&path, &[]);
    }

    #[test]
    fn env_overrides_apply_and_all_errors_are_reported() {
        let env = [
            (
                "LABWRIGHT_HEARTBEAT_INTERVAL_MS".to_string(),
                "250".to_string(),
            ),
            ("LABWRIGHT_LOG_FORMAT".to_string(), "json".to_string()),
        ];
        let c = Config::load(None, env).expect("valid");
        assert_eq!(c.heartbeat_interval_ms, 250);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.offline_after(), Duration::from_millis(750));

        let bad = [
            ("LABWRIGHT_HTTP_ADDR".to_string(), "nowhere".to_string()),
            ("LABWRIGHT_MISSED_HEARTBEATS".to_string(), "0".to_string()),
            ("LABWRIGHT_LOG_FORMAT".to_string(), "xml".to_string()),
        ];
        let err = Config::load(None, bad).expect_err("invalid");
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = std::env::temp_dir().join(format!("lw-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("c.toml");
        std::fs::write(&p, "htp_addr = \"127.0.0.1:1\"\n").expect("write");
        let err = Config::load(Some(&p), []).expect_err("unknown key");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
