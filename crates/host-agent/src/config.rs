//! host-agent configuration: a TOML file (`host-agent.example.toml` documents every key) with
//! `LABWRIGHT_<KEY>` environment overrides of its top-level keys (devices are set in the file),
//! loaded by [`labwright_service::config`]. Unknown keys are errors; every problem is reported at
//! once.

use std::path::PathBuf;

use labwright_core::fleet::{HostInfo, RawDevice, RawHello};
pub use labwright_service::{ConfigError, LogFormat};
use labwright_service::{Settings, config::hostname};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC address of the api-server, e.g. `http://127.0.0.1:50051`.
    pub server: String,
    /// This host's name: its identity inside the tenant. Defaults to the machine's hostname.
    pub host_name: String,
    /// Enrollment token (a key with the `host` role). Prefer `enrollment_token_file`.
    pub enrollment_token: Option<String>,
    /// File holding the enrollment token (first line).
    pub enrollment_token_file: Option<PathBuf>,
    /// Longest wait between reconnect attempts.
    pub reconnect_max_ms: u64,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Where the agent keeps state (the spool of unacknowledged reports).
    pub state_dir: PathBuf,
    /// How often every device's health is checked (also at start, right after a part of a
    /// device becomes unavailable or comes back, and after a power switch).
    pub health_interval_ms: u64,
    /// Console probes of the health checks, by device id: text sent to the device's console,
    /// which must answer (any output) within 5 s. Never sent while an execution holds the device.
    pub console_probes: std::collections::BTreeMap<String, String>,
    /// Devices attached to this host.
    pub devices: Vec<DeviceConfig>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Stable id of the device on this host, e.g. `stb-1`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Device model; navigation trees are per model.
    pub model: String,
    /// Driver kind: `simulated`, or `composite` (controllers from hardware drivers, configured
    /// in `settings.video`, `settings.audio`, `settings.console`).
    pub driver: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Driver-specific settings.
    #[serde(default)]
    pub settings: toml::Table,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: "http://127.0.0.1:50051".into(),
            host_name: String::new(),
            enrollment_token: None,
            enrollment_token_file: None,
            reconnect_max_ms: 30_000,
            log_format: LogFormat::Text,
            state_dir: PathBuf::from("/var/lib/labwright"),
            health_interval_ms: 60_000,
            console_probes: Default::default(),
            devices: Vec::new(),
        }
    }
}

impl Config {
    /// The enrollment token, from the config or its file.
    pub fn token(&self) -> Result<String, String> {
        if let Some(t) = &self.enrollment_token {
            return Ok(t.trim().to_string());
        }
        let path = self
            .enrollment_token_file
            .as_ref()
            .ok_or("no enrollment token configured")?;
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(text.lines().next().unwrap_or_default().trim().to_string())
    }

    /// What this host says about itself on connect.
    pub fn hello(&self) -> RawHello {
        RawHello {
            host_name: self.host_name.clone(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            info: host_info(),
            devices: self
                .devices
                .iter()
                .map(|d| RawDevice {
                    key: d.id.clone(),
                    name: d.name.clone(),
                    model: d.model.clone(),
                    driver: d.driver.clone(),
                    capabilities: d
                        .driver
                        .parse::<labwright_core::fleet::DriverKind>()
                        .map(|k| {
                            crate::drivers::capabilities(k, &d.settings)
                                .iter()
                                .map(|c| c.as_str().to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                    tags: d.tags.clone(),
                    status: None,
                    status_detail: String::new(),
                })
                .collect(),
        }
    }
}

impl Settings for Config {
    const OPTIONAL_KEYS: &'static [&'static str] = &["enrollment_token", "enrollment_token_file"];

    fn complete(&mut self) {
        if self.host_name.is_empty() {
            self.host_name = hostname().unwrap_or_default();
        }
    }

    fn check(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !self.server.starts_with("http://") && !self.server.starts_with("https://") {
            errors.push("server: must be an http:// or https:// URL".into());
        }
        if !(100..=3_600_000).contains(&self.reconnect_max_ms) {
            errors.push("reconnect_max_ms: must be between 100 and 3600000".into());
        }
        if !(1_000..=86_400_000).contains(&self.health_interval_ms) {
            errors.push("health_interval_ms: must be between 1000 and 86400000".into());
        }
        for (id, probe) in &self.console_probes {
            match self.devices.iter().find(|d| &d.id == id) {
                None => errors.push(format!("console_probes.{id}: no such device")),
                Some(d)
                    if !crate::drivers::capabilities(
                        d.driver
                            .parse()
                            .unwrap_or(labwright_core::fleet::DriverKind::Simulated),
                        &d.settings,
                    )
                    .contains(&labwright_core::fleet::Capability::Console) =>
                {
                    errors.push(format!("console_probes.{id}: the device has no console"))
                }
                Some(_) if probe.is_empty() || probe.len() > 256 => {
                    errors.push(format!("console_probes.{id}: must be 1 to 256 bytes"))
                }
                Some(_) => {}
            }
        }
        if self.enrollment_token.is_none() && self.enrollment_token_file.is_none() {
            errors.push("enrollment_token or enrollment_token_file: one is required".into());
        }
        if let Err(e) = self.hello().validate() {
            errors.push(format!("{e}"));
        }
        for d in &self.devices {
            if let Err(e) = crate::drivers::check(&d.id, &d.driver, &d.settings) {
                errors.extend(e.messages());
            }
        }
        errors
    }
}

fn host_info() -> HostInfo {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_default();
    HostInfo {
        hostname: read("/proc/sys/kernel/hostname"),
        os,
        arch: std::env::consts::ARCH.into(),
        kernel: read("/proc/sys/kernel/osrelease"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn example_file_loads_and_declares_a_simulated_device() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("host-agent.example.toml");
        let c = Config::load(Some(&path), []).expect("example config loads");
        labwright_service::config::assert_example_is_default::<Config>(
            &path,
            &["host_name", "enrollment_token_file", "devices"],
        );
        assert_eq!(c.server, Config::default().server);
        assert_eq!(c.reconnect_max_ms, Config::default().reconnect_max_ms);
        let hello = c.hello().validate().expect("valid hello");
        assert_eq!(
            hello.devices[0].driver,
            labwright_core::fleet::DriverKind::Simulated
        );
        assert!(!hello.devices[0].capabilities.is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let dir = std::env::temp_dir().join(format!("lw-agent-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("bad.toml");
        std::fs::write(
            &p,
            "server = \"grpc://x\"\nhost_name = \"pi 1\"\n[[devices]]\nid = \"a\"\nname = \"A\"\nmodel = \"m\"\ndriver = \"warp\"\n",
        )
        .expect("write");
        let err = Config::load(Some(&p), []).expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("server:"), "{text}");
        assert!(text.contains("enrollment_token"), "{text}");
        assert!(text.contains("host_name"), "{text}");
    }

    #[test]
    fn composite_device_problems_are_reported_with_the_others() {
        let dir = std::env::temp_dir().join(format!("lw-agent-cfg-hw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("hw.toml");
        std::fs::write(
            &p,
            r#"
server = "grpc://x"
enrollment_token = "t"
[[devices]]
id = "hdmi-1"
name = "HDMI 1"
model = "stb"
driver = "composite"
[devices.settings.video]
driver = "v4l2"
path = "/dev/labwright-cfg-test-video"
format = "YUYV"
[devices.settings.audio]
driver = "alsa"
pcm = "hw:LabwrightCfgTestCard,1,0"
rate = 1
[devices.settings.console]
driver = "serial"
path = "/dev/labwright-cfg-test-tty"
"#,
        )
        .expect("write");
        let err = Config::load(Some(&p), []).expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("server:"), "{text}");
        assert!(
            text.contains("devices.hdmi-1.settings.audio.rate: must be between 8000 and 384000"),
            "{text}"
        );
        // A settings problem stops before any node is opened; without it, each missing node is
        // named.
        std::fs::write(
            &p,
            std::fs::read_to_string(&p)
                .expect("read")
                .replace("rate = 1\n", ""),
        )
        .expect("write");
        let text = Config::load(Some(&p), []).expect_err("invalid").to_string();
        assert!(
            text.contains(
                "devices.hdmi-1.settings.video: /dev/labwright-cfg-test-video: no such device"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "devices.hdmi-1.settings.console: /dev/labwright-cfg-test-tty: no such device"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "devices.hdmi-1.settings.audio: hw:LabwrightCfgTestCard,1,0: no such card or PCM"
            ),
            "{text}"
        );
    }

    #[test]
    fn env_overrides_the_file() {
        let env = [
            (
                "LABWRIGHT_SERVER".to_string(),
                "http://10.0.0.1:1".to_string(),
            ),
            ("LABWRIGHT_HOST_NAME".to_string(), "pi-9".to_string()),
            ("LABWRIGHT_ENROLLMENT_TOKEN".to_string(), "tok".to_string()),
        ];
        let c = Config::load(None, env).expect("valid");
        assert_eq!(c.server, "http://10.0.0.1:1");
        assert_eq!(c.host_name, "pi-9");
        assert_eq!(c.token().expect("token"), "tok");
    }
}
