//! The driver registry: how a configured device becomes a driven one. Each [`DriverKind`] has a
//! constructor in [`REGISTRY`]; a device is built from its config's `driver` name and `settings`
//! table through it, so adding a driver kind is one constructor and one table row.
//!
//! `composite` devices combine controllers from hardware drivers (`labwright-drivers`: video
//! from V4L2, audio from ALSA, console from a serial port); their constructor opens every node
//! and reports every problem at once. `android` devices connect to adbd in the background: their
//! status (online, offline, unauthorized; online with the `getprop` summary) is read through
//! [`Driver::status`].

use std::{path::Path, sync::Arc};

use labwright_core::fleet::Status;
use labwright_drivers::android::AndroidDevice;

use labwright_core::{
    controller::Device,
    fleet::{Capability, DriverKind},
    sim::{Fault, FaultConfig, SimConfig, SimulatedStb},
};

/// A device as this host drives it: the device behind core's controller traits, plus the
/// host-side extras a driver kind may offer.
pub struct Driver {
    device: Arc<dyn Device>,
    faults: Option<Arc<dyn FaultInjection>>,
    /// Drivers whose device comes and goes on its own (a phone over the network).
    android: Option<Arc<AndroidDevice>>,
}

impl Driver {
    pub fn device(&self) -> &dyn Device {
        self.device.as_ref()
    }

    /// The device, for work on another thread.
    pub fn device_arc(&self) -> Arc<dyn Device> {
        self.device.clone()
    }

    /// Fault injection, for drivers that offer it (the simulator).
    pub fn faults(&self) -> Option<&dyn FaultInjection> {
        self.faults.as_deref()
    }

    /// The device's own status and its detail, for drivers that know it (`None`: online
    /// whenever the host is).
    pub fn status(&self) -> Option<(Status, String)> {
        self.android.as_ref().map(|a| a.status())
    }

    /// Waits (at most `timeout`) until a driver that connects in the background has made its
    /// first attempt, so the hello carries a real status.
    pub fn wait_first_attempt(&self, timeout: std::time::Duration) {
        if let Some(a) = &self.android {
            a.wait_first_attempt(timeout);
        }
    }
}

/// Replaces the faults injected into a device (simulated devices).
pub trait FaultInjection: Send + Sync {
    fn set_faults(&self, faults: &FaultConfig);
}

impl FaultInjection for SimulatedStb {
    fn set_faults(&self, faults: &FaultConfig) {
        self.clear_faults();
        if faults.frozen {
            self.inject(Fault::Frozen);
        }
        if faults.drop_keys > 0 {
            self.inject(Fault::DropKeys {
                count: faults.drop_keys,
            });
        }
        if faults.slow_ms > 0 {
            self.inject(Fault::Slow {
                extra_ms: faults.slow_ms,
            });
        }
        if faults.reboot {
            self.inject(Fault::Reboot);
        }
    }
}

/// Why a configured device could not be built; the message names the device and setting.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("devices.{device}.driver: unknown driver kind {kind:?}")]
    UnknownKind { device: String, kind: String },
    /// The settings table does not fit the driver's settings.
    #[error("devices.{device}.settings: {message}")]
    Settings { device: String, message: String },
    /// A setting's value is invalid; `message` starts with the setting's name.
    #[error("devices.{device}.settings.{message}")]
    Setting { device: String, message: String },
    /// Several settings or device nodes are wrong; each problem starts with its setting's path
    /// under `settings` (`video.format: ...`, `console: /dev/ttyACM0: ...`).
    #[error("{}", problems.iter().map(|p| format!("devices.{device}.settings.{p}")).collect::<Vec<_>>().join("; "))]
    Problems {
        device: String,
        problems: Vec<String>,
    },
}

impl DriverError {
    /// Each problem on its own (one for every variant but `Problems`).
    pub fn messages(&self) -> Vec<String> {
        match self {
            DriverError::Problems { device, problems } => problems
                .iter()
                .map(|p| format!("devices.{device}.settings.{p}"))
                .collect(),
            other => vec![other.to_string()],
        }
    }
}

/// Builds one driver kind's device from its id, settings table and the agent's state directory.
pub type Constructor = fn(&str, &toml::Table, &Path) -> Result<Driver, DriverError>;

/// Every driver kind this host can drive, with its constructor.
pub const REGISTRY: &[(DriverKind, Constructor)] = &[
    (DriverKind::Simulated, simulated),
    (DriverKind::Composite, composite),
    (DriverKind::Android, android),
];

/// The capabilities a configured device declares in the hello: its kind's, or for a composite
/// device the controllers configured.
pub fn capabilities(kind: DriverKind, settings: &toml::Table) -> Vec<Capability> {
    match kind {
        DriverKind::Composite => labwright_drivers::composite::capabilities(settings),
        other => other.capabilities(),
    }
}

/// Builds the driver of one configured device (`driver` is the kind's name, e.g. `simulated`);
/// `state_dir` holds what a driver keeps across restarts (the ADB host key).
pub fn build(
    device: &str,
    driver: &str,
    settings: &toml::Table,
    state_dir: &Path,
) -> Result<Driver, DriverError> {
    let kind = kind(device, driver)?;
    let (_, construct) = REGISTRY
        .iter()
        .find(|(k, _)| *k == kind)
        .ok_or_else(|| unknown(device, driver))?;
    construct(device, settings, state_dir)
}

/// Checks a configured device without side effects where building has some (an `android`
/// device's settings are checked, its key not created and nothing connected).
pub fn check(device: &str, driver: &str, settings: &toml::Table) -> Result<(), DriverError> {
    match kind(device, driver)? {
        DriverKind::Android => labwright_drivers::android::AndroidSettings::from_table(settings)
            .map(|_| ())
            .map_err(|problems| DriverError::Problems {
                device: device.to_string(),
                problems,
            }),
        _ => build(device, driver, settings, Path::new("")).map(|_| ()),
    }
}

fn unknown(device: &str, driver: &str) -> DriverError {
    DriverError::UnknownKind {
        device: device.to_string(),
        kind: driver.to_string(),
    }
}

fn kind(device: &str, driver: &str) -> Result<DriverKind, DriverError> {
    driver.parse().map_err(|_| unknown(device, driver))
}

fn simulated(device: &str, settings: &toml::Table, _: &Path) -> Result<Driver, DriverError> {
    let settings_error = |message: String| DriverError::Settings {
        device: device.to_string(),
        message,
    };
    let config: SimConfig = toml::Value::Table(settings.clone())
        .try_into()
        .map_err(|e| settings_error(e.to_string()))?;
    // The simulator names the offending setting (`box_name: ...`): keep it in the path.
    let sim = SimulatedStb::new(config).map_err(|e| DriverError::Setting {
        device: device.to_string(),
        message: e.to_string(),
    })?;
    let sim = Arc::new(sim);
    Ok(Driver {
        device: sim.clone(),
        faults: Some(sim),
        android: None,
    })
}

fn android(device: &str, settings: &toml::Table, state_dir: &Path) -> Result<Driver, DriverError> {
    let phone = AndroidDevice::from_settings(device, settings, state_dir).map_err(|problems| {
        DriverError::Problems {
            device: device.to_string(),
            problems,
        }
    })?;
    let phone = Arc::new(phone);
    Ok(Driver {
        device: phone.clone(),
        faults: None,
        android: Some(phone),
    })
}

fn composite(device: &str, settings: &toml::Table, _: &Path) -> Result<Driver, DriverError> {
    let built = labwright_drivers::composite::build(settings).map_err(|problems| {
        DriverError::Problems {
            device: device.to_string(),
            problems,
        }
    })?;
    Ok(Driver {
        device: Arc::new(built),
        faults: None,
        android: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_driver_kind_has_a_constructor() {
        for kind in DriverKind::ALL {
            assert!(
                REGISTRY.iter().any(|(k, _)| *k == kind),
                "{kind:?} has no constructor"
            );
        }
    }

    #[test]
    fn devices_are_built_through_the_registry() {
        let d = build("stb-1", "simulated", &toml::Table::new(), Path::new("")).expect("built");
        assert!(d.device().remote().is_some());
        assert!(d.faults().is_some());
        let e = build("stb-1", "warp", &toml::Table::new(), Path::new(""))
            .err()
            .expect("unknown kind");
        assert_eq!(
            e.to_string(),
            "devices.stb-1.driver: unknown driver kind \"warp\""
        );
        let mut bad = toml::Table::new();
        bad.insert("nonsense".into(), toml::Value::Boolean(true));
        let e = build("stb-1", "simulated", &bad, Path::new(""))
            .err()
            .expect("bad settings");
        assert!(e.to_string().starts_with("devices.stb-1.settings"), "{e}");
    }

    #[test]
    fn composite_devices_report_every_problem_with_its_path() {
        let settings: toml::Table = toml::from_str(
            r#"
            [video]
            driver = "v4l2"
            path = "/dev/labwright-agent-test-video"
            [console]
            driver = "serial"
            path = "/dev/labwright-agent-test-tty"
            "#,
        )
        .expect("toml");
        let e = build("hdmi-1", "composite", &settings, Path::new(""))
            .err()
            .expect("no such nodes");
        let messages = e.messages();
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert!(
            messages[0].starts_with(
                "devices.hdmi-1.settings.video: /dev/labwright-agent-test-video: no such device"
            ),
            "{messages:#?}"
        );
        assert!(
            messages[1]
                .starts_with("devices.hdmi-1.settings.console: /dev/labwright-agent-test-tty"),
            "{messages:#?}"
        );
        assert_eq!(
            capabilities(DriverKind::Composite, &settings),
            vec![Capability::VideoCapture, Capability::Console]
        );
        assert_eq!(
            capabilities(DriverKind::Simulated, &settings),
            DriverKind::Simulated.capabilities()
        );
    }

    #[test]
    fn android_devices_are_checked_without_side_effects_and_usb_is_refused() {
        let table = |s: &str| toml::from_str::<toml::Table>(s).expect("toml");
        let e = check("phone-1", "android", &table("serial = \"R58M\"")).expect_err("usb");
        assert!(
            e.to_string().starts_with(
                "devices.phone-1.settings.serial: adb over usb (serial \"R58M\") is unsupported"
            ),
            "{e}"
        );
        let e = check("phone-1", "android", &table("")).expect_err("no address");
        assert_eq!(
            e.to_string(),
            "devices.phone-1.settings.address: required (\"HOST:PORT\" of adbd)"
        );
        check("phone-1", "android", &table("address = \"127.0.0.1:5555\"")).expect("valid");
        assert_eq!(
            capabilities(DriverKind::Android, &toml::Table::new()),
            vec![
                Capability::RemoteControl,
                Capability::Touch,
                Capability::VideoCapture,
                Capability::Shell
            ]
        );
        // Built, it makes its host key in the state dir and reports its own status.
        let dir = std::env::temp_dir().join(format!("lw-agent-android-{}", std::process::id()));
        let d = build(
            "phone-1",
            "android",
            &table("address = \"127.0.0.1:9\""),
            &dir,
        )
        .expect("built");
        assert!(dir.join("adbkey").exists());
        let (status, _) = d.status().expect("a phone knows its status");
        assert_ne!(status, Status::Online);
        drop(d);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
