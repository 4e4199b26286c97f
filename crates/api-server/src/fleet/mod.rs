//! The live fleet: which hosts are connected to this replica right now, and the background loop
//! that writes their liveness and status changes to PostgreSQL.
//!
//! Heartbeats are handled in memory (a host's heartbeat never waits for the database) and flushed
//! in one batched statement per interval. Status changes are coalesced per host/device and written
//! with their outbox events; while the database is down they wait here and are retried, so hosts stay
//! connected and nothing is lost.

pub mod db;
pub mod http;

mod flusher;
pub use flusher::FlushTiming;
mod registry;

pub use flusher::run_flusher;
pub use registry::{DisconnectReason, Outbound, Outgoing, Registry};

use chrono::Utc;
use labwright_core::{fleet::Status, ids::HostId};
use uuid::Uuid;

/// A device status change reported on a host's stream, ready to queue.
pub fn registry_change(
    host: HostId,
    connection_id: Uuid,
    device_key: String,
    status: Status,
    detail: String,
) -> registry::Change {
    registry::Change::DeviceStatus {
        host,
        connection_id,
        device_key,
        status,
        detail,
        at: Utc::now(),
    }
}
