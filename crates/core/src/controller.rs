//! Device controller traits. A device exposes one controller per capability it has; everything it
//! lacks is `None`, and optional operations of a controller default to [`ControlError::Unsupported`].
//! The traits are synchronous: drivers talk to hardware (USB, V4L2, GPIO, serial) with blocking
//! calls, and async callers run them on a blocking thread.

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{fleet::Capability, frame::Frame, validate::ValidationError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The device (or this driver) cannot do that.
    #[error("{0} is not supported by this device")]
    Unsupported(&'static str),
    /// The device did not answer in time.
    #[error("device timed out: {0}")]
    Timeout(String),
    /// The device is off, unplugged or otherwise not usable right now.
    #[error("device unavailable: {0}")]
    Unavailable(String),
    /// The request itself was wrong (unknown key, bad coordinates).
    #[error("{0}")]
    Invalid(String),
    /// The driver failed (I/O error, protocol error).
    #[error("driver error: {0}")]
    Driver(String),
}

/// A remote-control key. Names are lowercase (`up`, `ok`, `ch_up`, `3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Key {
    Up,
    Down,
    Left,
    Right,
    Ok,
    Back,
    Home,
    Menu,
    Info,
    Power,
    ChannelUp,
    ChannelDown,
    VolumeUp,
    VolumeDown,
    Mute,
    PlayPause,
    Digit(u8),
}

impl Key {
    const NAMED: [(Key, &'static str); 16] = [
        (Key::Up, "up"),
        (Key::Down, "down"),
        (Key::Left, "left"),
        (Key::Right, "right"),
        (Key::Ok, "ok"),
        (Key::Back, "back"),
        (Key::Home, "home"),
        (Key::Menu, "menu"),
        (Key::Info, "info"),
        (Key::Power, "power"),
        (Key::ChannelUp, "ch_up"),
        (Key::ChannelDown, "ch_down"),
        (Key::VolumeUp, "vol_up"),
        (Key::VolumeDown, "vol_down"),
        (Key::Mute, "mute"),
        (Key::PlayPause, "play_pause"),
    ];

    /// Every key name, for documentation and error messages.
    pub fn names() -> Vec<String> {
        let mut v: Vec<String> = Self::NAMED.iter().map(|(_, n)| n.to_string()).collect();
        v.extend((0..=9).map(|d| d.to_string()));
        v
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Digit(d) => write!(f, "{d}"),
            k => f.write_str(
                Self::NAMED
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, s)| *s)
                    .unwrap_or("?"),
            ),
        }
    }
}

impl FromStr for Key {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((k, _)) = Self::NAMED.iter().find(|(_, n)| *n == s) {
            return Ok(*k);
        }
        match s.as_bytes() {
            [d @ b'0'..=b'9'] => Ok(Key::Digit(d - b'0')),
            _ => Err(ValidationError::new(
                "key",
                format!("unknown key {s:?} (known: {})", Key::names().join(", ")),
            )),
        }
    }
}

impl TryFrom<String> for Key {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Key> for String {
    fn from(k: Key) -> String {
        k.to_string()
    }
}

/// Key presses and other input.
pub trait RemoteControl: Send + Sync {
    fn press(&self, key: Key) -> Result<(), ControlError>;

    fn long_press(&self, _key: Key, _hold: Duration) -> Result<(), ControlError> {
        Err(ControlError::Unsupported("long press"))
    }

    fn text(&self, _text: &str) -> Result<(), ControlError> {
        Err(ControlError::Unsupported("text entry"))
    }

    fn tap(&self, _x: u32, _y: u32) -> Result<(), ControlError> {
        Err(ControlError::Unsupported("tap"))
    }

    fn swipe(
        &self,
        _from: (u32, u32),
        _to: (u32, u32),
        _duration: Duration,
    ) -> Result<(), ControlError> {
        Err(ControlError::Unsupported("swipe"))
    }
}

/// Frames from the device's screen.
pub trait VideoCapture: Send + Sync {
    /// The most recent frame. Two calls in quick succession may return the same frame (same `seq`).
    fn grab(&self) -> Result<Frame, ControlError>;

    /// Frame size this source produces.
    fn resolution(&self) -> (u32, u32);

    /// How many frames the capture has delivered so far, counting a new frame even when the
    /// picture did not change; a health check tells a frozen capture by a count that stops.
    /// `None` when [`Frame::seq`] already counts every captured frame.
    fn delivered(&self) -> Option<u64> {
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    On,
    Off,
}

/// Mains power of the device (relay, smart plug, or the device's own standby).
pub trait PowerControl: Send + Sync {
    fn set(&self, state: PowerState) -> Result<(), ControlError>;
    fn state(&self) -> Result<PowerState, ControlError>;

    /// Off, wait, on.
    fn cycle(&self, off_for: Duration) -> Result<(), ControlError> {
        self.set(PowerState::Off)?;
        std::thread::sleep(off_for);
        self.set(PowerState::On)
    }
}

/// Mono 16-bit PCM captured from the device's audio output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioChunk {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
    /// Capture time of the first sample, microseconds since the Unix epoch.
    pub started_at_us: u64,
}

pub trait AudioCapture: Send + Sync {
    /// Captures `duration` of audio (blocking for about that long).
    fn read(&self, duration: Duration) -> Result<AudioChunk, ControlError>;

    /// The most recent `duration` of audio, without waiting (sources that capture continuously
    /// into a ring buffer). Shorter than asked when less has been captured so far.
    fn recent(&self, _duration: Duration) -> Result<AudioChunk, ControlError> {
        Err(ControlError::Unsupported("reading recent audio"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// A command shell on the device (ADB shell, serial console).
pub trait Shell: Send + Sync {
    fn run(&self, command: &str, timeout: Duration) -> Result<ShellOutput, ControlError>;
}

/// A touch screen device's UI and apps (Android over ADB). Coordinates are screen pixels.
pub trait AndroidUi: Send + Sync {
    fn tap(&self, x: u32, y: u32) -> Result<(), ControlError>;

    fn swipe(
        &self,
        from: (u32, u32),
        to: (u32, u32),
        duration: Duration,
    ) -> Result<(), ControlError>;

    /// A touch held at one point (a swipe that does not move).
    fn long_press(&self, x: u32, y: u32, hold: Duration) -> Result<(), ControlError> {
        self.swipe((x, y), (x, y), hold)
    }

    /// Types text into the focused field.
    fn input_text(&self, text: &str) -> Result<(), ControlError>;

    /// The current screen's UI hierarchy, as `uiautomator dump` writes it (XML).
    fn ui_dump(&self) -> Result<String, ControlError>;

    /// Starts an app: its launcher activity, or `activity` (`.Main`, `com.x/.Main`) when given.
    fn launch_app(&self, package: &str, activity: Option<&str>) -> Result<(), ControlError>;

    /// Force-stops an app.
    fn stop_app(&self, package: &str) -> Result<(), ControlError>;

    /// Clears an app's data.
    fn clear_app(&self, _package: &str) -> Result<(), ControlError> {
        Err(ControlError::Unsupported("clearing app data"))
    }

    /// Installs (or replaces) an APK the host provides by name (a file of the driver's APK
    /// directory: test cases never name host paths).
    fn install_app(&self, _apk: &str) -> Result<(), ControlError> {
        Err(ControlError::Unsupported("installing apps"))
    }

    /// Installed packages' names.
    fn list_apps(&self) -> Result<Vec<String>, ControlError> {
        Err(ControlError::Unsupported("listing apps"))
    }
}

/// One line of a device's console output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLine {
    /// Position of the line in the console's output since the driver started; increases by one
    /// per line.
    pub seq: u64,
    /// When the line's first byte arrived, microseconds since the Unix epoch.
    pub at_us: u64,
    /// The line without its terminator; invalid UTF-8 replaced by U+FFFD.
    pub text: String,
}

/// What a console read returns: complete lines from the cursor on, the line still being written
/// (no terminator yet, e.g. a `login: ` prompt) and the cursor for the next read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsoleRead {
    pub lines: Vec<ConsoleLine>,
    pub partial: String,
    /// `seq` of the next line to come; pass it to the next [`Console::read_since`].
    pub next: u64,
    /// Lines older than the cursor that the console no longer holds (its buffer is bounded).
    pub missed: u64,
}

/// A device's text console (a serial port), captured continuously.
pub trait Console: Send + Sync {
    /// Writes bytes to the device.
    fn send(&self, data: &[u8]) -> Result<(), ControlError>;

    /// Lines with `seq >= from` still held, and the partial line.
    fn read_since(&self, from: u64) -> Result<ConsoleRead, ControlError>;

    /// Blocks until output newer than `from` (a line or a longer partial line) arrives or
    /// `timeout` passes; returns whether something arrived.
    fn wait(&self, from: u64, timeout: Duration) -> Result<bool, ControlError>;
}

/// A device under test: one optional controller per capability.
pub trait Device: Send + Sync {
    fn remote(&self) -> Option<&dyn RemoteControl> {
        None
    }
    fn video(&self) -> Option<&dyn VideoCapture> {
        None
    }
    fn power(&self) -> Option<&dyn PowerControl> {
        None
    }
    fn audio(&self) -> Option<&dyn AudioCapture> {
        None
    }
    fn shell(&self) -> Option<&dyn Shell> {
        None
    }
    fn console(&self) -> Option<&dyn Console> {
        None
    }
    /// Touch, UI hierarchy and apps ([`Capability::Touch`]).
    fn android_ui(&self) -> Option<&dyn AndroidUi> {
        None
    }

    /// The capabilities this device has, derived from its controllers.
    fn capabilities(&self) -> Vec<Capability> {
        let mut caps = Vec::new();
        if self.remote().is_some() {
            caps.push(Capability::RemoteControl);
        }
        if self.android_ui().is_some() {
            caps.push(Capability::Touch);
        }
        if self.video().is_some() {
            caps.push(Capability::VideoCapture);
        }
        if self.power().is_some() {
            caps.push(Capability::Power);
        }
        if self.audio().is_some() {
            caps.push(Capability::AudioCapture);
        }
        if self.shell().is_some() {
            caps.push(Capability::Shell);
        }
        if self.console().is_some() {
            caps.push(Capability::Console);
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_names_and_json() {
        for name in Key::names() {
            let k: Key = name.parse().expect("known key");
            assert_eq!(k.to_string(), name);
        }
        assert_eq!(
            serde_json::to_string(&Key::ChannelUp).expect("json"),
            "\"ch_up\""
        );
        assert_eq!(
            serde_json::from_str::<Key>("\"7\"").expect("digit"),
            Key::Digit(7)
        );
        let e = "warp".parse::<Key>().expect_err("unknown");
        assert!(e.message.contains("unknown key \"warp\""));
        assert!("10".parse::<Key>().is_err());
    }

    struct OnlyRemote;
    impl RemoteControl for OnlyRemote {
        fn press(&self, _: Key) -> Result<(), ControlError> {
            Ok(())
        }
    }
    impl Device for OnlyRemote {
        fn remote(&self) -> Option<&dyn RemoteControl> {
            Some(self)
        }
    }

    #[test]
    fn missing_capabilities_are_none_and_optional_operations_unsupported() {
        let d = OnlyRemote;
        assert_eq!(d.capabilities(), vec![Capability::RemoteControl]);
        assert!(d.video().is_none());
        let r = d.remote().expect("remote");
        assert!(r.press(Key::Ok).is_ok());
        assert_eq!(r.tap(1, 1), Err(ControlError::Unsupported("tap")));
    }
}
