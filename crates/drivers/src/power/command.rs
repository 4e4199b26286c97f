//! `host-agent power --settings FILE on|off|cycle|state`: a technician switches or reads a
//! device's power switch without the agent running. FILE holds the keys of a device's
//! `[settings.power]`, at the top level or in a `[power]` table.

use std::{path::Path, time::Duration};

use super::{PowerError, PowerSettings};

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    On,
    Off,
    Cycle,
    State,
}

impl std::str::FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on" => Ok(Action::On),
            "off" => Ok(Action::Off),
            "cycle" => Ok(Action::Cycle),
            "state" => Ok(Action::State),
            other => Err(format!("unknown action {other:?} (on, off, cycle, state)")),
        }
    }
}

/// Reads the power settings from `path`.
pub fn load(path: &Path) -> Result<PowerSettings, PowerError> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| PowerError::Settings(format!("{shown}: {e}")))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| PowerError::Settings(format!("{shown}: {}", e.to_string().trim())))?;
    let table = match table.get("power") {
        Some(toml::Value::Table(inner)) if !table.contains_key("driver") => inner.clone(),
        _ => table,
    };
    let settings = PowerSettings::from_table(&table)
        .map_err(|e| PowerError::Settings(format!("{shown}: {e}")))?;
    let problems = settings.check();
    if !problems.is_empty() {
        return Err(PowerError::Settings(format!(
            "{shown}: {}",
            problems.join("; ")
        )));
    }
    Ok(settings)
}

/// Does `action` with the switch configured in `path`; the state read back afterwards, and the
/// switch, still open (a GPIO line stays requested until it is dropped: some chips reset a
/// released line).
pub fn run(
    path: &Path,
    action: Action,
    off_for: Duration,
) -> Result<(&'static str, super::Power), PowerError> {
    let power = super::open(&load(path)?)?;
    match action {
        Action::On => power.switch(true)?,
        Action::Off => power.switch(false)?,
        Action::Cycle => power.power_cycle(off_for)?,
        Action::State => {}
    }
    let state = if power.read()? { "on" } else { "off" };
    Ok((state, power))
}
