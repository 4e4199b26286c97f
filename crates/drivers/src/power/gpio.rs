//! A relay on a GPIO line, through the Linux GPIO character device (uAPI v2, `gpiocdev`): the
//! line is requested as an output once, when the relay is opened, and held until it is dropped,
//! so no other program can drive it meanwhile (and one that holds it already is named).
//!
//! The chip is a path (`/dev/gpiochip0`), a chip name (`gpiochip0`) or a chip label
//! (`pinctrl-bcm2711`, `gpio-sim.0-node0`); the line an offset or a line name. With
//! `active_low`, "on" drives the line low (relay boards that switch on a low input). The state
//! the line takes when the relay is opened is `at_start` (on by default); when it is dropped the
//! line is released as it is (there is no `at_stop`: the agent's config check opens and drops
//! every device before the agent opens them again, so switching at drop would blip the power at
//! every start). Read-back is the value the kernel reports for the requested line.

use serde::Deserialize;

#[cfg(feature = "gpio")]
use super::{PowerError, Switch};

/// A line by offset or by name.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Line {
    Offset(u32),
    Name(String),
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Line::Offset(o) => write!(f, "{o}"),
            Line::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// The state to switch to when the relay is opened.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AtStart {
    /// Powered (a restarted agent does not cut its devices' power).
    #[default]
    On,
    Off,
}

/// `[settings.power]` with `driver = "gpio"`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GpioSettings {
    pub chip: String,
    pub line: Line,
    #[serde(default)]
    pub active_low: bool,
    #[serde(default)]
    pub at_start: AtStart,
    /// The consumer name the kernel shows for the line (`gpioinfo`).
    #[serde(default = "default_consumer")]
    pub consumer: String,
    /// A power cycle keeps the relay off at least this long.
    #[serde(default = "super::settings::default_min_off_ms")]
    pub min_off_ms: u64,
}

fn default_consumer() -> String {
    "labwright".into()
}

/// A relay on a requested GPIO output line.
#[cfg(feature = "gpio")]
pub struct GpioRelay {
    request: gpiocdev::Request,
    offset: u32,
    target: String,
}

/// The chip's device path for `chip`: a path, a name under `/dev`, or a label.
#[cfg(feature = "gpio")]
fn chip_path(chip: &str) -> Result<std::path::PathBuf, PowerError> {
    use std::path::PathBuf;
    if chip.starts_with('/') {
        return Ok(PathBuf::from(chip));
    }
    let by_name = PathBuf::from(format!("/dev/{chip}"));
    if by_name.exists() {
        return Ok(by_name);
    }
    let mut labels = Vec::new();
    for path in gpiocdev::chip::chips().unwrap_or_default() {
        if let Ok(info) = gpiocdev::Chip::from_path(&path).and_then(|c| c.info()) {
            if info.label == chip {
                return Ok(path);
            }
            labels.push(format!("{} ({})", info.name, info.label));
        }
    }
    Err(PowerError::NotFound {
        target: chip.to_string(),
        detail: if labels.is_empty() {
            "no such GPIO chip (this host has none)".into()
        } else {
            format!("no such GPIO chip (this host has: {})", labels.join(", "))
        },
    })
}

#[cfg(feature = "gpio")]
fn io(target: &str, e: impl std::fmt::Display) -> PowerError {
    PowerError::Io {
        target: target.to_string(),
        detail: e.to_string(),
    }
}

#[cfg(feature = "gpio")]
impl GpioRelay {
    /// Requests the line as an output at its `at_start` state.
    pub fn open(s: &GpioSettings) -> Result<Self, PowerError> {
        let path = chip_path(&s.chip)?;
        let shown = path.display().to_string();
        // Opened once by hand first, so a missing node or a missing group reads as such.
        std::fs::File::open(&path)
            .map_err(|e| PowerError::Node(crate::NodeProblem::from_io(&shown, &e)))?;
        let chip = gpiocdev::Chip::from_path(&path).map_err(|e| io(&shown, e))?;
        let info = chip.info().map_err(|e| io(&shown, e))?;
        let offset = match &s.line {
            Line::Offset(o) if *o < info.num_lines => *o,
            Line::Offset(o) => {
                return Err(PowerError::NotFound {
                    target: shown,
                    detail: format!("no line {o} (the chip has {} lines)", info.num_lines),
                });
            }
            Line::Name(name) => {
                chip.find_line_info(name)
                    .ok_or_else(|| PowerError::NotFound {
                        target: shown.clone(),
                        detail: format!("no line named {name:?}"),
                    })?
                    .offset
            }
        };
        let target = format!("{} line {}", info.name, s.line);
        let line = chip.line_info(offset).map_err(|e| io(&target, e))?;
        if line.used {
            return Err(PowerError::LineBusy {
                target,
                line: offset,
                consumer: line.consumer,
            });
        }
        let on = s.at_start == AtStart::On;
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(&path)
            .with_consumer(s.consumer.as_str())
            .with_line(offset)
            .as_output(gpiocdev::line::Value::from(on));
        if s.active_low {
            builder.as_active_low();
        }
        let request = builder.request().map_err(|e| {
            let text = e.to_string();
            if text.to_lowercase().contains("busy") {
                PowerError::LineBusy {
                    target: target.clone(),
                    line: offset,
                    consumer: String::new(),
                }
            } else {
                io(&target, text)
            }
        })?;
        Ok(Self {
            request,
            offset,
            target,
        })
    }
}

#[cfg(feature = "gpio")]
impl Switch for GpioRelay {
    fn write(&mut self, on: bool) -> Result<Option<bool>, PowerError> {
        self.request
            .set_value(self.offset, gpiocdev::line::Value::from(on))
            .map_err(|e| io(&self.target, e))?;
        Ok(None)
    }

    fn read(&mut self) -> Result<bool, PowerError> {
        let v = self
            .request
            .value(self.offset)
            .map_err(|e| io(&self.target, e))?;
        Ok(v == gpiocdev::line::Value::Active)
    }

    fn target(&self) -> String {
        self.target.clone()
    }
}
