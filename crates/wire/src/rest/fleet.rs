//! Hosts, devices, reservations and host pings (`/api/v1/hosts`, `/api/v1/devices`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostView {
    pub id: Uuid,
    pub name: String,
    /// `online`, `offline` or `error`.
    pub status: String,
    pub agent_version: String,
    pub info: serde_json::Value,
    /// Latest system stats from the host's heartbeats.
    pub stats: Option<serde_json::Value>,
    pub last_seen_at: DateTime<Utc>,
    pub connected_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub device_count: i64,
    pub devices: Option<Vec<DeviceView>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub id: Uuid,
    pub host_id: Uuid,
    pub host_name: String,
    /// The device's id inside its host.
    pub device_key: String,
    pub name: String,
    pub model: String,
    pub driver: String,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub status: String,
    pub status_detail: String,
    pub last_seen_at: DateTime<Utc>,
    /// Who has the device reserved, and until when (absent when nobody does).
    pub reservation: Option<ReservationView>,
    /// `healthy`, `degraded` or `unhealthy`, as its host last checked it (absent before the
    /// first check).
    pub health: Option<String>,
    /// Why it is not healthy: `part: problem` per failing part (video, audio, console, power),
    /// joined by `; `. Empty when healthy.
    #[serde(default)]
    pub health_reason: String,
    /// When the host last checked the device's health.
    pub health_checked_at: Option<DateTime<Utc>>,
    /// The last known mains power state, `on` or `off`, as the switch reported it after the
    /// last power action (absent: unknown).
    pub power_state: Option<String>,
    /// When the power state was last read from the switch.
    pub power_read_at: Option<DateTime<Utc>>,
    /// When the power was last switched (on, off or cycle) through Labwright.
    pub power_switched_at: Option<DateTime<Utc>>,
    /// Who switched it last.
    pub power_switched_by: Option<PowerSwitcher>,
}

/// Who switched a device's power.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PowerSwitcher {
    /// `user` (an API key, from the web UI, the CLI or a script) or `execution`.
    pub kind: String,
    /// The key's or the execution's id.
    pub id: Uuid,
    /// The key's name or the test case's title, at the time.
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservationView {
    /// The name of the key that holds it.
    pub holder: String,
    pub key_id: Uuid,
    pub since: DateTime<Utc>,
    /// The end of the time box.
    pub ends_at: DateTime<Utc>,
    /// When it ends unless kept alive (the page holding it renews it).
    pub until: DateTime<Utc>,
    /// Held by the caller's key.
    pub mine: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PingResult {
    /// Round trip server -> host -> server over the host's stream, in milliseconds.
    pub round_trip_ms: f64,
}
