//! The host's state besides its link: the devices (built through [`crate::drivers`]), the
//! executions running on them, the report spool and the live views. Commands are answered in
//! [`crate::commands`], executions carried out in [`crate::runner`].

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex, MutexGuard, atomic::AtomicBool},
};

use labwright_core::fleet::{RawHello, Status};
use labwright_wire::host_link::Report;
use tokio::sync::Notify;

use crate::{
    config::DeviceConfig,
    drivers::{self, Driver, DriverError},
    spool::{Spool, SpoolError},
};

pub struct Runtime {
    devices: HashMap<String, Driver>,
    pub spool: Spool,
    /// Running executions by id.
    running: Mutex<HashMap<String, RunningExecution>>,
    /// Woken when a report is spooled.
    pub reports: Notify,
    /// Live views in progress.
    pub live: Arc<crate::live::Live>,
    /// Console streams in progress.
    pub consoles: Arc<crate::console::ConsoleWatches>,
    /// The devices' health, between the checks and the link.
    pub health: crate::health::Monitor,
}

/// An execution in progress on one of the devices.
pub(crate) struct RunningExecution {
    /// The device's key.
    pub device: String,
    /// Set to stop the run at its next step.
    pub cancel: Arc<AtomicBool>,
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl Runtime {
    /// Builds every configured device and opens the report spool under `state_dir`.
    pub fn new(devices: &[DeviceConfig], state_dir: &Path) -> Result<Self, RuntimeError> {
        let mut map = HashMap::new();
        for d in devices {
            map.insert(
                d.id.clone(),
                drivers::build(&d.id, &d.driver, &d.settings, state_dir)?,
            );
        }
        let spool = Spool::open(&state_dir.join("spool"))?;
        Ok(Self {
            devices: map,
            spool,
            running: Mutex::new(HashMap::new()),
            reports: Notify::new(),
            live: Arc::default(),
            consoles: Arc::default(),
            health: crate::health::Monitor::default(),
        })
    }

    /// The same runtime with its health checks' schedule and console probes.
    pub fn with_health(mut self, health: crate::health::Monitor) -> Self {
        self.health = health;
        self
    }

    /// Every device's key, sorted.
    pub(crate) fn device_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.devices.keys().cloned().collect();
        keys.sort();
        keys
    }

    pub(crate) fn running(&self) -> MutexGuard<'_, HashMap<String, RunningExecution>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Executions in progress, for the hello after a reconnect.
    /// Also lists runs that ended but whose reports the server has not acknowledged yet, so a
    /// reconnect never gets a finished run written off as lost.
    pub fn running_executions(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.running().keys().cloned().collect();
        ids.extend(self.spool.executions());
        ids.sort();
        ids.dedup();
        ids
    }

    /// Spools a report and wakes the link to send it.
    pub(crate) fn spool_report(&self, report: Report) {
        if let Err(e) = self.spool.push_then(report, || self.reports.notify_one()) {
            tracing::error!(error = %e, "could not write a report to the spool; it will be lost if the agent stops before the server has it");
        }
    }

    /// The statuses of devices whose drivers know their own (a phone that went away), by key.
    pub fn device_statuses(&self) -> Vec<(String, Status, String)> {
        let mut v: Vec<_> = self
            .devices
            .iter()
            .filter_map(|(k, d)| d.status().map(|(s, detail)| (k.clone(), s, detail)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Fills the hello's devices with what their drivers know: their status and its detail (a
    /// phone's detail is its `getprop` summary: model, Android version, serial).
    pub fn complete_hello(&self, hello: &mut RawHello) {
        for dev in &mut hello.devices {
            if let Some((status, detail)) = self.devices.get(&dev.key).and_then(Driver::status) {
                dev.status = Some(status);
                dev.status_detail = detail;
            }
        }
    }

    /// Waits (each at most `timeout`, in parallel) for drivers that connect in the background
    /// to make their first attempt, so the first hello carries their real status.
    pub fn wait_for_devices(&self, timeout: std::time::Duration) {
        std::thread::scope(|s| {
            for d in self.devices.values() {
                s.spawn(move || d.wait_first_attempt(timeout));
            }
        });
    }

    pub(crate) fn driver(&self, key: &str) -> Option<&Driver> {
        self.devices.get(key)
    }

    /// The execution running on `device`, if any.
    pub(crate) fn busy(&self, device: &str) -> Option<String> {
        self.running()
            .iter()
            .find(|(_, r)| r.device == device)
            .map(|(id, _)| id.clone())
    }
}
