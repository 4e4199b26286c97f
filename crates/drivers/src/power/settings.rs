//! `[settings.power]`: which switch powers a device, and [`open`], which makes it.
//!
//! ```toml
//! [devices.settings.power]
//! driver = "tasmota"                 # gpio, tasmota, shelly1, shelly2, kasa
//! address = "192.168.1.20"           # host or host:port
//! relay = 1                          # Tasmota: from 1 (default 1); Shelly: from 0 (default 0)
//! user = "admin"                     # Tasmota and Shelly Gen1, with password_file
//! password_file = "/etc/labwright/plug-password"
//! timeout_ms = 3000                  # each request
//! retries = 2                        # extra attempts of an unanswered request
//! settle_ms = 3000                   # how long the read-back may take to show the new state
//! min_off_ms = 1000                  # a power cycle is off at least this long
//! ```

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use super::{
    Power, PowerError, PowerSwitch, Timing,
    gpio::GpioSettings,
    http::UreqHttp,
    kasa::{Kasa, KasaTcp},
    shelly::{ShellyGen1, ShellyGen2},
    tasmota::Tasmota,
};

/// The power switch of a device, by `driver`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "driver", rename_all = "lowercase")]
pub enum PowerSettings {
    /// A relay on a GPIO line.
    Gpio(GpioSettings),
    /// A Tasmota plug (HTTP commands).
    Tasmota(PlugSettings),
    /// A Gen1 Shelly (HTTP `/relay/N`).
    Shelly1(PlugSettings),
    /// A Gen2 or later Shelly (RPC `Switch.Set` / `Switch.GetStatus`).
    Shelly2(PlugSettings),
    /// A TP-Link Kasa plug (the XOR protocol on TCP 9999).
    Kasa(PlugSettings),
}

/// The driver names `driver = "..."` may say.
pub const DRIVERS: &[&str] = &["gpio", "tasmota", "shelly1", "shelly2", "kasa"];

/// A network plug's settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlugSettings {
    /// `host` or `host:port`.
    pub address: String,
    /// Which relay or switch (Tasmota counts from 1, Shelly from 0).
    pub relay: Option<u32>,
    pub user: Option<String>,
    /// A file whose first line is the password (kept out of the config).
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_settle_ms")]
    pub settle_ms: u64,
    #[serde(default = "default_min_off_ms")]
    pub min_off_ms: u64,
}

fn default_timeout_ms() -> u64 {
    3000
}
fn default_retries() -> u32 {
    2
}
fn default_settle_ms() -> u64 {
    3000
}
pub(super) fn default_min_off_ms() -> u64 {
    1000
}

impl PowerSettings {
    /// Parses a `[settings.power]` table; the message is serde's (unknown driver or field).
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        if !table.contains_key("driver") {
            return Err(format!("driver: missing (known: {})", DRIVERS.join(", ")));
        }
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| e.message().trim().to_string())
    }

    /// Every problem with the values, each starting with the setting's name.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let (plug, driver) = match self {
            PowerSettings::Gpio(g) => {
                if g.chip.is_empty() {
                    problems.push("chip: must not be empty".into());
                }
                if g.min_off_ms > 600_000 {
                    problems.push("min_off_ms: must be at most 600000".into());
                }
                return problems;
            }
            PowerSettings::Tasmota(p) => (p, "tasmota"),
            PowerSettings::Shelly1(p) => (p, "shelly1"),
            PowerSettings::Shelly2(p) => (p, "shelly2"),
            PowerSettings::Kasa(p) => (p, "kasa"),
        };
        if plug.address.trim().is_empty() || plug.address.contains(['/', ' ', '?', '#', '@']) {
            problems.push("address: must be a host or host:port".into());
        }
        if !(100..=60_000).contains(&plug.timeout_ms) {
            problems.push("timeout_ms: must be between 100 and 60000".into());
        }
        if plug.retries > 10 {
            problems.push("retries: must be at most 10".into());
        }
        if plug.settle_ms > 60_000 {
            problems.push("settle_ms: must be at most 60000".into());
        }
        if plug.min_off_ms > 600_000 {
            problems.push("min_off_ms: must be at most 600000".into());
        }
        match driver {
            "tasmota" if plug.relay == Some(0) => {
                problems.push("relay: Tasmota relays count from 1".into());
            }
            "kasa" if plug.relay.is_some() => {
                problems.push("relay: a Kasa plug has one relay (strips are not supported)".into());
            }
            _ => {}
        }
        let credentials = plug.user.is_some() || plug.password_file.is_some();
        match driver {
            "kasa" if credentials => {
                problems.push("user: the Kasa protocol has no credentials".into());
            }
            "shelly2" if credentials => problems.push(
                "user: Gen2 Shelly authentication (HTTP digest) is not supported: disable it on the device"
                    .into(),
            ),
            _ if plug.user.is_some() != plug.password_file.is_some() => {
                problems.push("password_file: user and password_file go together".into());
            }
            _ => {}
        }
        problems
    }

    fn timing(&self) -> Timing {
        let base = Timing::default();
        match self {
            PowerSettings::Gpio(g) => Timing {
                min_off: Duration::from_millis(g.min_off_ms),
                ..base
            },
            PowerSettings::Tasmota(p)
            | PowerSettings::Shelly1(p)
            | PowerSettings::Shelly2(p)
            | PowerSettings::Kasa(p) => Timing {
                settle: Duration::from_millis(p.settle_ms),
                retries: p.retries,
                min_off: Duration::from_millis(p.min_off_ms),
                ..base
            },
        }
    }
}

impl PlugSettings {
    fn credentials(&self) -> Result<Option<(String, String)>, PowerError> {
        let (Some(user), Some(file)) = (&self.user, &self.password_file) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| PowerError::Settings(format!("password_file: {}: {e}", file.display())))?;
        let password = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end()
            .to_string();
        Ok(Some((user.clone(), password)))
    }

    fn http(&self, basic: Option<(&str, &str)>) -> UreqHttp {
        UreqHttp::new(&self.address, Duration::from_millis(self.timeout_ms), basic)
    }
}

/// Checks the settings and opens the switch: a GPIO line is requested now (and switched to its
/// `at_start` state, read back); a plug is not contacted until it is used (a plug that is
/// offline while the agent starts must not stop the agent).
pub fn open(settings: &PowerSettings) -> Result<Power, PowerError> {
    let problems = settings.check();
    if !problems.is_empty() {
        return Err(PowerError::Settings(problems.join("; ")));
    }
    let timing = settings.timing();
    let power: Power = match settings {
        PowerSettings::Gpio(g) => open_gpio(g, timing)?,
        PowerSettings::Tasmota(p) => {
            let http = p.http(None);
            Box::new(PowerSwitch::new(
                Tasmota::new(http, p.relay.unwrap_or(1), p.credentials()?),
                timing,
            ))
        }
        PowerSettings::Shelly1(p) => {
            let credentials = p.credentials()?;
            let http = p.http(credentials.as_ref().map(|(u, w)| (u.as_str(), w.as_str())));
            Box::new(PowerSwitch::new(
                ShellyGen1::new(http, p.relay.unwrap_or(0)),
                timing,
            ))
        }
        PowerSettings::Shelly2(p) => Box::new(PowerSwitch::new(
            ShellyGen2::new(p.http(None), p.relay.unwrap_or(0)),
            timing,
        )),
        PowerSettings::Kasa(p) => Box::new(PowerSwitch::new(
            Kasa::new(KasaTcp::new(
                &p.address,
                Duration::from_millis(p.timeout_ms),
            )),
            timing,
        )),
    };
    Ok(power)
}

#[cfg(feature = "gpio")]
fn open_gpio(s: &GpioSettings, timing: Timing) -> Result<Power, PowerError> {
    let relay = PowerSwitch::new(super::gpio::GpioRelay::open(s)?, timing);
    // The request itself drove the line to its `at_start` state: read it back.
    relay.switch(s.at_start == super::gpio::AtStart::On)?;
    Ok(Box::new(relay))
}

#[cfg(not(feature = "gpio"))]
fn open_gpio(_: &GpioSettings, _: Timing) -> Result<Power, PowerError> {
    Err(PowerError::Unsupported(
        "the gpio driver is not built into this agent (cargo feature `gpio`)".into(),
    ))
}
