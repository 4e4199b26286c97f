//! The fleet: hosts, the devices attached to them, what those devices can do, and the rules a host's
//! self-description must follow before anything about it is stored.

use std::{collections::HashSet, fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::validate::{self, ValidationError};

/// Most devices one host may declare. A Pi drives a handful; 256 leaves room for USB hubs of phones.
pub const MAX_DEVICES_PER_HOST: usize = 256;
/// Most tags per device.
pub const MAX_TAGS_PER_DEVICE: usize = 32;
pub const MAX_HOST_NAME_LEN: usize = 63;
pub const MAX_DEVICE_KEY_LEN: usize = 63;
pub const MAX_DEVICE_NAME_LEN: usize = 128;
pub const MAX_MODEL_LEN: usize = 64;
pub const MAX_TAG_LEN: usize = 64;
pub const MAX_VERSION_LEN: usize = 64;
pub const MAX_INFO_LEN: usize = 256;

/// Whether a host or device can be used right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Offline,
    /// Reachable but faulty (a device whose driver reports an error).
    Error,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Online, Status::Offline, Status::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Offline => "offline",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "status",
                    format!("unknown status {s:?} (expected online, offline or error)"),
                )
            })
    }
}

/// Something a device can do. A device declares the capabilities its driver provides; an operation
/// needing a capability the device lacks is refused before anything runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Key presses, long presses and text entry (IR, ADB key events, a simulated remote).
    RemoteControl,
    /// Tap and swipe on touch screens, the UI hierarchy and apps (Android over ADB).
    Touch,
    /// Frames from the device screen (HDMI capture, screen recording).
    VideoCapture,
    /// Power on, off, cycle and state (GPIO relay, smart plug).
    Power,
    /// PCM samples of the device's audio output.
    AudioCapture,
    /// A command shell on the device (ADB shell).
    Shell,
    /// The device's text console (serial port), captured continuously.
    Console,
}

impl Capability {
    pub const ALL: [Capability; 7] = [
        Capability::RemoteControl,
        Capability::Touch,
        Capability::VideoCapture,
        Capability::Power,
        Capability::AudioCapture,
        Capability::Shell,
        Capability::Console,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::RemoteControl => "remote_control",
            Capability::Touch => "touch",
            Capability::VideoCapture => "video_capture",
            Capability::Power => "power",
            Capability::AudioCapture => "audio_capture",
            Capability::Shell => "shell",
            Capability::Console => "console",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("capabilities", format!("unknown capability {s:?}"))
            })
    }
}

/// The kind of driver a host uses for a device. Only kinds with a real implementation are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverKind {
    /// The built-in simulated set-top box: a product feature for demos, CI and training.
    Simulated,
    /// A device composed of controllers from hardware drivers (video from V4L2, audio from
    /// ALSA, console from a serial port); which ones is the host's configuration.
    Composite,
    /// An Android phone or TV over ADB (TCP): key events, touch, screenshots, shell, apps.
    Android,
}

impl DriverKind {
    pub const ALL: [DriverKind; 3] = [
        DriverKind::Simulated,
        DriverKind::Composite,
        DriverKind::Android,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Simulated => "simulated",
            DriverKind::Composite => "composite",
            DriverKind::Android => "android",
        }
    }

    /// What a device driven by this kind can do at most (a composite device declares the
    /// controllers it was configured with).
    pub fn capabilities(self) -> Vec<Capability> {
        match self {
            DriverKind::Simulated => vec![
                Capability::RemoteControl,
                Capability::VideoCapture,
                Capability::Power,
                Capability::AudioCapture,
                Capability::Console,
            ],
            DriverKind::Composite => vec![
                Capability::VideoCapture,
                Capability::AudioCapture,
                Capability::Console,
            ],
            DriverKind::Android => vec![
                Capability::RemoteControl,
                Capability::Touch,
                Capability::VideoCapture,
                Capability::Shell,
            ],
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DriverKind {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DriverKind::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = DriverKind::ALL.iter().map(|d| d.as_str()).collect();
                ValidationError::new(
                    "driver",
                    format!("unknown driver kind {s:?} (known: {})", known.join(", ")),
                )
            })
    }
}

/// Resource figures a host reports with every heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStats {
    pub cpu_percent: f32,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
    pub load1: f32,
    pub uptime_secs: u64,
    pub temperature_c: Option<f32>,
    pub disk_free_bytes: u64,
}

impl HostStats {
    /// Drops values no real machine reports (NaN, negative, absurd), so junk never reaches storage.
    pub fn sanitized(mut self) -> Self {
        let clean = |v: f32, max: f32| {
            if v.is_finite() {
                v.clamp(0.0, max)
            } else {
                0.0
            }
        };
        self.cpu_percent = clean(self.cpu_percent, 100.0);
        self.load1 = clean(self.load1, 1.0e6);
        self.temperature_c = self
            .temperature_c
            .filter(|t| t.is_finite() && (-100.0..=300.0).contains(t));
        self
    }
}

/// Facts about the host machine itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub kernel: String,
}

/// A device as its host describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Id of the device inside its host, stable across restarts (e.g. `stb-1`).
    pub key: String,
    pub name: String,
    pub model: String,
    pub driver: DriverKind,
    pub capabilities: Vec<Capability>,
    pub tags: Vec<String>,
    pub status: Status,
    pub status_detail: String,
}

/// A host's self-description as sent on connect, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawHello {
    pub host_name: String,
    pub agent_version: String,
    pub info: HostInfo,
    pub devices: Vec<RawDevice>,
}

/// A device description before validation; strings as they came off the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawDevice {
    pub key: String,
    pub name: String,
    pub model: String,
    pub driver: String,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub status: Option<Status>,
    pub status_detail: String,
}

/// A validated host self-description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub host_name: String,
    pub agent_version: String,
    pub info: HostInfo,
    pub devices: Vec<DeviceSpec>,
}

impl RawHello {
    /// Validates every field, naming the first offending one (e.g. `devices[3].device_id`).
    pub fn validate(self) -> Result<Hello, ValidationError> {
        validate::slug("host_name", &self.host_name, MAX_HOST_NAME_LEN)?;
        validate::label("agent_version", &self.agent_version, MAX_VERSION_LEN)?;
        validate::optional_text("info.hostname", &self.info.hostname, MAX_INFO_LEN)?;
        validate::optional_text("info.os", &self.info.os, MAX_INFO_LEN)?;
        validate::optional_text("info.arch", &self.info.arch, MAX_INFO_LEN)?;
        validate::optional_text("info.kernel", &self.info.kernel, MAX_INFO_LEN)?;
        if self.devices.len() > MAX_DEVICES_PER_HOST {
            return Err(ValidationError::new(
                "devices",
                format!(
                    "{} devices declared, at most {MAX_DEVICES_PER_HOST} allowed",
                    self.devices.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut devices = Vec::with_capacity(self.devices.len());
        for (i, d) in self.devices.into_iter().enumerate() {
            let at = format!("devices[{i}]");
            if !seen.insert(d.key.clone()) {
                return Err(ValidationError::new(
                    format!("{at}.device_id"),
                    format!("duplicate device id {:?}", d.key),
                ));
            }
            devices.push(d.validate().map_err(|e| e.within(&at))?);
        }
        Ok(Hello {
            host_name: self.host_name,
            agent_version: self.agent_version,
            info: self.info,
            devices,
        })
    }
}

impl RawDevice {
    pub fn validate(self) -> Result<DeviceSpec, ValidationError> {
        validate::slug("device_id", &self.key, MAX_DEVICE_KEY_LEN)?;
        validate::label("name", &self.name, MAX_DEVICE_NAME_LEN)?;
        validate::slug("model", &self.model, MAX_MODEL_LEN)?;
        let driver: DriverKind = self.driver.parse()?;
        let mut capabilities = Vec::with_capacity(self.capabilities.len());
        for (i, c) in self.capabilities.iter().enumerate() {
            let cap: Capability = c.parse().map_err(|e: ValidationError| {
                ValidationError::new(format!("capabilities[{i}]"), e.message)
            })?;
            if !capabilities.contains(&cap) {
                capabilities.push(cap);
            }
        }
        capabilities.sort();
        if self.tags.len() > MAX_TAGS_PER_DEVICE {
            return Err(ValidationError::new(
                "tags",
                format!("at most {MAX_TAGS_PER_DEVICE} tags allowed"),
            ));
        }
        for (i, t) in self.tags.iter().enumerate() {
            validate::slug(&format!("tags[{i}]"), t, MAX_TAG_LEN)?;
        }
        let mut tags = self.tags;
        tags.sort();
        tags.dedup();
        validate::optional_text("status_detail", &self.status_detail, MAX_INFO_LEN)?;
        Ok(DeviceSpec {
            key: self.key,
            name: self.name,
            model: self.model,
            driver,
            capabilities,
            tags,
            status: self.status.unwrap_or(Status::Online),
            status_detail: self.status_detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(key: &str) -> RawDevice {
        RawDevice {
            key: key.into(),
            name: "Living room STB".into(),
            model: "sim-stb".into(),
            driver: "simulated".into(),
            capabilities: vec![
                "video_capture".into(),
                "remote_control".into(),
                "video_capture".into(),
            ],
            tags: vec!["lab-a".into(), "hdmi".into()],
            status: None,
            status_detail: String::new(),
        }
    }

    fn hello(devices: Vec<RawDevice>) -> RawHello {
        RawHello {
            host_name: "pi-01".into(),
            agent_version: "0.1.0".into(),
            info: HostInfo::default(),
            devices,
        }
    }

    #[test]
    fn a_good_hello_validates_and_normalises() {
        let h = hello(vec![device("stb-1"), device("stb-2")])
            .validate()
            .expect("valid");
        assert_eq!(h.devices.len(), 2);
        assert_eq!(
            h.devices[0].capabilities,
            vec![Capability::RemoteControl, Capability::VideoCapture]
        );
        assert_eq!(
            h.devices[0].tags,
            vec!["hdmi".to_string(), "lab-a".to_string()]
        );
        assert_eq!(h.devices[0].status, Status::Online);
    }

    #[test]
    fn bad_hellos_name_the_offending_field() {
        let cases: Vec<(RawHello, &str)> = vec![
            (
                RawHello {
                    host_name: String::new(),
                    ..hello(vec![])
                },
                "host_name",
            ),
            (
                RawHello {
                    host_name: "x".repeat(64),
                    ..hello(vec![])
                },
                "host_name",
            ),
            (
                hello(vec![device("a"), device("a")]),
                "devices[1].device_id",
            ),
            (
                hello(
                    (0..=MAX_DEVICES_PER_HOST)
                        .map(|i| device(&format!("d{i}")))
                        .collect(),
                ),
                "devices",
            ),
            (
                hello(vec![RawDevice {
                    driver: "teleporter".into(),
                    ..device("a")
                }]),
                "devices[0].driver",
            ),
            (
                hello(vec![RawDevice {
                    capabilities: vec!["fly".into()],
                    ..device("a")
                }]),
                "devices[0].capabilities[0]",
            ),
            (
                hello(vec![RawDevice {
                    name: String::new(),
                    ..device("a")
                }]),
                "devices[0].name",
            ),
            (
                hello(vec![RawDevice {
                    tags: vec!["a b".into()],
                    ..device("a")
                }]),
                "devices[0].tags[0]",
            ),
        ];
        for (raw, field) in cases {
            let err = raw.validate().expect_err(field);
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn stats_are_sanitised() {
        let s = HostStats {
            cpu_percent: f32::NAN,
            load1: -1.0,
            temperature_c: Some(f32::INFINITY),
            ..Default::default()
        }
        .sanitized();
        assert_eq!(s.cpu_percent, 0.0);
        assert_eq!(s.load1, 0.0);
        assert_eq!(s.temperature_c, None);
    }

    #[test]
    fn enums_round_trip_through_their_names() {
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>().expect("cap"), c);
        }
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().expect("status"), s);
        }
        assert_eq!(
            "simulated".parse::<DriverKind>().expect("driver"),
            DriverKind::Simulated
        );
        assert!("adb2".parse::<DriverKind>().is_err());
    }
}
