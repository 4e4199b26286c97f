//! Mains power of a device: a GPIO relay ([`gpio`], the Linux GPIO character device) or a smart
//! plug on the local network ([`tasmota`], [`shelly`] Gen1 and Gen2, [`kasa`]).
//!
//! Every switch is a [`Switch`] (write the wanted state, read the state back) over a small
//! transport ([`http::HttpTransport`], [`kasa::KasaTransport`], the GPIO line request), so unit
//! tests drive the protocols with scripted fakes. [`PowerSwitch`] turns any switch into core's
//! [`PowerControl`]: after every switch it reads the state back until the device reports the
//! wanted state (a plug that does not switch is [`PowerError::NotSwitched`], not a silent
//! success), retries unanswered requests with backoff, and keeps `cycle`'s off time at least the
//! configured minimum. Every error has a stable [`PowerError::code`].
//!
//! ```toml
//! [devices.settings.power]
//! driver = "gpio"          # or tasmota, shelly1, shelly2, kasa (see `PowerSettings`)
//! chip = "gpiochip0"
//! line = 17                # or the line's name, "RELAY1"
//! active_low = true
//! ```

pub mod command;
pub mod gpio;
pub mod http;
pub mod kasa;
mod settings;
pub mod shelly;
pub mod tasmota;

#[cfg(test)]
mod tests;

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use labwright_core::{
    controller::{ControlError, PowerControl, PowerState},
    retry::Backoff,
};

pub use settings::{PlugSettings, PowerSettings, open};

use crate::NodeProblem;

/// Why a power switch failed. [`code`](Self::code) is stable (logs, API replies, tests).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PowerError {
    #[error("{target}: no answer within {timeout_ms} ms")]
    Timeout { target: String, timeout_ms: u64 },
    #[error("{target}: unreachable: {detail}")]
    Unreachable { target: String, detail: String },
    #[error("{target}: credentials refused")]
    Unauthorized { target: String },
    #[error("{target}: unexpected reply: {detail}")]
    BadReply { target: String, detail: String },
    #[error("{target}: the device reported an error: {detail}")]
    Device { target: String, detail: String },
    #[error("{target}: switched {wanted} but reports {reported} after {waited_ms} ms")]
    NotSwitched {
        target: String,
        wanted: &'static str,
        reported: &'static str,
        waited_ms: u64,
    },
    #[error("{target}: already in use by {}", consumer_name(consumer))]
    LineBusy {
        target: String,
        line: u32,
        consumer: String,
    },
    #[error("{target}: {detail}")]
    NotFound { target: String, detail: String },
    #[error(transparent)]
    Node(NodeProblem),
    #[error("{target}: {detail}")]
    Io { target: String, detail: String },
    #[error("{0}")]
    Settings(String),
    #[error("{0}")]
    Unsupported(String),
}

impl PowerError {
    /// The stable code of this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "power.timeout",
            Self::Unreachable { .. } => "power.unreachable",
            Self::Unauthorized { .. } => "power.unauthorized",
            Self::BadReply { .. } => "power.bad_reply",
            Self::Device { .. } => "power.device_error",
            Self::NotSwitched { .. } => "power.not_switched",
            Self::LineBusy { .. } => "power.line_busy",
            Self::NotFound { .. } => "power.not_found",
            Self::Node(NodeProblem::Missing { .. }) => "power.not_found",
            Self::Node(NodeProblem::PermissionDenied { .. }) => "power.permission_denied",
            Self::Node(NodeProblem::Busy { .. }) => "power.line_busy",
            Self::Node(NodeProblem::Gone { .. }) => "power.gone",
            Self::Node(NodeProblem::Other { .. }) | Self::Io { .. } => "power.io",
            Self::Settings(_) => "power.settings",
            Self::Unsupported(_) => "power.unsupported",
        }
    }

    /// Worth asking again (the request may not have reached the device, or its answer was lost).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Unreachable { .. })
    }

    pub(crate) fn bad_reply(target: &str, detail: impl Into<String>) -> Self {
        Self::BadReply {
            target: target.to_string(),
            detail: detail.into(),
        }
    }
}

impl From<PowerError> for ControlError {
    fn from(e: PowerError) -> Self {
        let message = format!("{}: {e}", e.code());
        match e {
            PowerError::Timeout { .. } => ControlError::Timeout(message),
            PowerError::Unreachable { .. } | PowerError::Node(NodeProblem::Gone { .. }) => {
                ControlError::Unavailable(message)
            }
            _ => ControlError::Driver(message),
        }
    }
}

fn consumer_name(consumer: &str) -> String {
    if consumer.is_empty() {
        "another program".into()
    } else {
        format!("{consumer:?}")
    }
}

fn word(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// One switch: a relay or a plug's output. Implementations do one request per call; retries,
/// read-back and timing are [`PowerSwitch`]'s.
pub trait Switch: Send {
    /// Asks the device to switch; `Some(state)` when its answer says the state it now has.
    fn write(&mut self, on: bool) -> Result<Option<bool>, PowerError>;
    /// The state the device reports.
    fn read(&mut self) -> Result<bool, PowerError>;
    /// What is switched, for messages (`tasmota 192.168.1.20 relay 1`, `gpiochip0 line 17`).
    fn target(&self) -> String;
}

/// Timing of a [`PowerSwitch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long the read-back may take to show the wanted state.
    pub settle: Duration,
    /// Between two read-backs.
    pub poll: Duration,
    /// Extra attempts for a request that got no answer (timeout, connection refused).
    pub retries: u32,
    /// First retry delay (doubling, with jitter, capped at 8 times this).
    pub retry_base: Duration,
    /// `cycle` keeps the power off at least this long, whatever the caller asks.
    pub min_off: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(3),
            poll: Duration::from_millis(100),
            retries: 2,
            retry_base: Duration::from_millis(200),
            min_off: Duration::from_secs(1),
        }
    }
}

/// A [`Switch`] as core's [`PowerControl`]: switched under a lock, checked by reading back.
pub struct PowerSwitch<S: Switch> {
    switch: Mutex<S>,
    timing: Timing,
}

impl<S: Switch> PowerSwitch<S> {
    pub fn new(switch: S, timing: Timing) -> Self {
        Self {
            switch: Mutex::new(switch),
            timing,
        }
    }

    pub fn target(&self) -> String {
        self.lock().target()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, S> {
        // A panic while switching leaves the switch usable: its state is on the device.
        self.switch.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_retries<T>(
        &self,
        s: &mut S,
        mut op: impl FnMut(&mut S) -> Result<T, PowerError>,
    ) -> Result<T, PowerError> {
        let mut backoff = Backoff::new(self.timing.retry_base, self.timing.retry_base * 8);
        loop {
            match op(s) {
                Err(e) if e.is_transient() && backoff.attempts() < self.timing.retries => {
                    let delay = backoff.next_delay();
                    tracing::debug!(target_switch = %s.target(), code = e.code(), ?delay, "power request retried");
                    std::thread::sleep(delay);
                }
                other => return other,
            }
        }
    }

    /// Switches and waits until the device reports the wanted state.
    pub fn switch(&self, on: bool) -> Result<(), PowerError> {
        let mut s = self.lock();
        let started = Instant::now();
        // The answer to the write is checked (a bad reply is an error) but not trusted: only the
        // state read back afterwards counts.
        self.with_retries(&mut s, |s| s.write(on))?;
        let deadline = started + self.timing.settle;
        loop {
            let now = self.with_retries(&mut s, |s| s.read())?;
            if now == on {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PowerError::NotSwitched {
                    target: s.target(),
                    wanted: word(on),
                    reported: word(now),
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(self.timing.poll);
        }
    }

    /// The state the device reports.
    pub fn read(&self) -> Result<bool, PowerError> {
        let mut s = self.lock();
        self.with_retries(&mut s, |s| s.read())
    }

    /// Off for at least the minimum off time, then on.
    pub fn power_cycle(&self, off_for: Duration) -> Result<(), PowerError> {
        self.switch(false)?;
        std::thread::sleep(off_for.max(self.timing.min_off));
        self.switch(true)
    }
}

impl<S: Switch> PowerControl for PowerSwitch<S> {
    fn set(&self, state: PowerState) -> Result<(), ControlError> {
        Ok(self.switch(state == PowerState::On)?)
    }

    fn state(&self) -> Result<PowerState, ControlError> {
        Ok(if self.read()? {
            PowerState::On
        } else {
            PowerState::Off
        })
    }

    fn cycle(&self, off_for: Duration) -> Result<(), ControlError> {
        Ok(self.power_cycle(off_for)?)
    }
}

/// A configured power switch of any kind, ready to use.
pub type Power = Box<dyn PowerDevice>;

/// [`PowerControl`] plus the error codes of the driver: what hosts hold.
pub trait PowerDevice: PowerControl {
    fn switch(&self, on: bool) -> Result<(), PowerError>;
    fn read(&self) -> Result<bool, PowerError>;
    fn power_cycle(&self, off_for: Duration) -> Result<(), PowerError>;
    fn target(&self) -> String;
}

impl<S: Switch> PowerDevice for PowerSwitch<S> {
    fn switch(&self, on: bool) -> Result<(), PowerError> {
        PowerSwitch::switch(self, on)
    }
    fn read(&self) -> Result<bool, PowerError> {
        PowerSwitch::read(self)
    }
    fn power_cycle(&self, off_for: Duration) -> Result<(), PowerError> {
        PowerSwitch::power_cycle(self, off_for)
    }
    fn target(&self) -> String {
        PowerSwitch::target(self)
    }
}
