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
    /// An interactive lock (the default, as the web UI holds one): it ends unless renewed with
    /// `PUT` at least every 60 s. `false`: the reservation lasts its whole time box whether or
    /// not anything renews it (`labwright reserve`).
    #[serde(default = "interactive")]
    pub keep_alive: bool,
}

fn interactive() -> bool {
    true
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
