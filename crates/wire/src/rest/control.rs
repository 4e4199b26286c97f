//! Device control: key presses, mains power and reservations (`/api/v1/devices/{id}/...`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerBody {
    /// `on`, `off`, `cycle` (off, 2 s, on) or `state` (only report it).
    pub action: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PowerView {
    /// `on` or `off`, after the action.
    pub state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    /// Length of the time box, 1 to 480 minutes.
    pub minutes: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PressBody {
    /// Key name: up, down, left, right, ok, back, home, menu, info, power, ch_up, ch_down, vol_up, vol_down, mute, play_pause, 0-9.
    pub key: String,
    /// Hold the key this long (long press).
    #[serde(default)]
    pub hold_ms: u32,
}
