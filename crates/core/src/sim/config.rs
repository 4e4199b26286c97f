//! Configuration of a simulated set-top box, as found in a host's `[devices.settings]` table.
//! Every field has a default, unknown keys are rejected, and [`SimConfig::validate`] reports the
//! first out-of-range value with its field name.

use serde::{Deserialize, Serialize};

use crate::validate::{self, ValidationError};

/// Highest channel count: the tone of the last channel (440 Hz + 110 Hz per channel) must stay
/// well below the 24 kHz Nyquist limit of 48 kHz audio.
pub const MAX_CHANNELS: u32 = 99;

/// How the simulated box looks and behaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Shown in the header of every menu screen.
    pub box_name: String,
    /// Time between a key press and the box reacting to it.
    pub key_delay_ms: u64,
    /// How long the picture stays black while changing channel.
    pub zap_ms: u64,
    /// How long the boot screen is shown after power on.
    pub boot_ms: u64,
    /// How long the channel banner stays up after a zap or `info`.
    pub banner_ms: u64,
    /// Channels `1..=channels` exist.
    pub channels: u32,
    /// Channel tuned when Live TV is first opened.
    pub start_channel: u32,
    /// Frame rate of the live picture (menus are static between changes).
    pub fps: u32,
    /// Faults active from the start.
    pub faults: FaultConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            box_name: "Labwright STB".to_string(),
            key_delay_ms: 120,
            zap_ms: 800,
            boot_ms: 1500,
            banner_ms: 4000,
            channels: 9,
            start_channel: 1,
            fps: 30,
            faults: FaultConfig::default(),
        }
    }
}

/// Faults active when the box starts. At run time use [`super::SimulatedStb::inject`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// The video output is stuck on its last frame.
    pub frozen: bool,
    /// The next `drop_keys` key presses are lost.
    pub drop_keys: u32,
    /// Extra reaction delay added to every key press.
    pub slow_ms: u64,
    /// The box starts with a reboot (black, boot screen, Home) instead of already on Home.
    pub reboot: bool,
}

impl SimConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate::label("box_name", &self.box_name, 40)?;
        if !self
            .box_name
            .chars()
            .all(|c| c.is_ascii_graphic() || c == ' ')
        {
            return Err(ValidationError::new("box_name", "must be printable ASCII"));
        }
        let max_ms = |field: &str, v: u64| {
            if v > 60_000 {
                Err(ValidationError::new(field, "must be at most 60000 ms"))
            } else {
                Ok(())
            }
        };
        max_ms("key_delay_ms", self.key_delay_ms)?;
        max_ms("zap_ms", self.zap_ms)?;
        max_ms("boot_ms", self.boot_ms)?;
        max_ms("banner_ms", self.banner_ms)?;
        max_ms("faults.slow_ms", self.faults.slow_ms)?;
        if !(1..=MAX_CHANNELS).contains(&self.channels) {
            return Err(ValidationError::new(
                "channels",
                format!("must be between 1 and {MAX_CHANNELS}"),
            ));
        }
        if !(1..=self.channels).contains(&self.start_channel) {
            return Err(ValidationError::new(
                "start_channel",
                format!("must be between 1 and channels ({})", self.channels),
            ));
        }
        if !(1..=120).contains(&self.fps) {
            return Err(ValidationError::new("fps", "must be between 1 and 120"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_from_toml_with_defaults() {
        let c: SimConfig = toml::from_str(
            r#"
            box_name = "Demo box"
            zap_ms = 400
            channels = 12
            [faults]
            drop_keys = 2
            "#,
        )
        .expect("valid config");
        assert_eq!(c.box_name, "Demo box");
        assert_eq!(c.zap_ms, 400);
        assert_eq!(c.channels, 12);
        assert_eq!(c.key_delay_ms, 120);
        assert_eq!(c.fps, 30);
        assert_eq!(
            c.faults,
            FaultConfig {
                drop_keys: 2,
                ..FaultConfig::default()
            }
        );
        c.validate().expect("in range");
        let empty: SimConfig = toml::from_str("").expect("empty is the default");
        assert_eq!(empty, SimConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let e = toml::from_str::<SimConfig>("zap_time = 3").expect_err("unknown key");
        assert!(e.to_string().contains("zap_time"), "{e}");
        let e = toml::from_str::<SimConfig>("[faults]\nmelt = true").expect_err("unknown fault");
        assert!(e.to_string().contains("melt"), "{e}");
        let bad = |c: SimConfig| c.validate().expect_err("invalid").field;
        assert_eq!(
            bad(SimConfig {
                channels: 0,
                ..SimConfig::default()
            }),
            "channels"
        );
        assert_eq!(
            bad(SimConfig {
                start_channel: 10,
                ..SimConfig::default()
            }),
            "start_channel"
        );
        assert_eq!(
            bad(SimConfig {
                fps: 0,
                ..SimConfig::default()
            }),
            "fps"
        );
        assert_eq!(
            bad(SimConfig {
                box_name: "caf\u{e9}".into(),
                ..SimConfig::default()
            }),
            "box_name"
        );
        assert_eq!(
            bad(SimConfig {
                zap_ms: 120_000,
                ..SimConfig::default()
            }),
            "zap_ms"
        );
    }
}
