//! The box's mains: the level of a GPIO line, read from a file whose first character is `0` or
//! `1` (gpio-sim's `sim_gpioN/value`: the level the line is driven to by whoever requested it,
//! the agent's relay; its pull when nobody drives it). Polled every [`POLL`]; a relay click is
//! far longer than that.

use std::{
    path::{Path, PathBuf},
    thread,
    time::Duration,
};

use super::WiredError;

/// How often the line is read.
pub const POLL: Duration = Duration::from_millis(20);

pub struct MainsLine {
    path: PathBuf,
    active_low: bool,
}

/// Whether the line's text says powered.
pub fn powered(text: &str, active_low: bool) -> Result<bool, String> {
    let high = match text.trim() {
        "1" => true,
        "0" => false,
        other => return Err(format!("expected 0 or 1, read {other:?}")),
    };
    Ok(high != active_low)
}

impl MainsLine {
    /// Checks that the line can be read.
    pub fn open(path: &Path, active_low: bool) -> Result<MainsLine, WiredError> {
        let line = MainsLine {
            path: path.to_path_buf(),
            active_low,
        };
        line.read()
            .map_err(|e| WiredError::Power(format!("{}: {e}", path.display())))?;
        Ok(line)
    }

    fn read(&self) -> Result<bool, String> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| e.to_string())?;
        powered(&text, self.active_low)
    }

    /// Calls `switched(on)` with the state at start and at every change, forever. A read that
    /// fails keeps the last state.
    pub fn run(self, mut switched: impl FnMut(bool)) {
        let mut last = None;
        loop {
            match self.read() {
                Ok(on) if last != Some(on) => {
                    tracing::info!(on, "mains switched");
                    switched(on);
                    last = Some(on);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "power line unreadable")
                }
            }
            thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_active_low() {
        assert_eq!(powered("1\n", false), Ok(true));
        assert_eq!(powered("0\n", false), Ok(false));
        assert_eq!(powered("1\n", true), Ok(false));
        assert_eq!(powered("0", true), Ok(true));
        assert!(powered("on", false).is_err());
    }

    #[test]
    fn a_missing_line_is_a_start_error() {
        let e = MainsLine::open(Path::new("/nonexistent/sim_gpio5/value"), false)
            .err()
            .expect("error");
        assert_eq!(e.code(), "wired.power");
        assert!(
            e.to_string().contains("/nonexistent/sim_gpio5/value"),
            "{e}"
        );
    }
}
