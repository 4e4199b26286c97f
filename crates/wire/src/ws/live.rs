//! The live view (`GET /api/v1/devices/{id}/live`) and events (`GET /api/v1/events`) sockets:
//! their close codes (`docs/live-view.md`).

/// Close codes of the live view and events sockets.
pub mod close {
    pub use super::super::close::{BAD_MESSAGE, GOING_AWAY, KEY_REVOKED, NORMAL};

    /// No such device (or another tenant's).
    pub const NO_DEVICE: u16 = 4404;
    /// Offline, without video, or its host is connected to another replica.
    pub const UNAVAILABLE: u16 = 4409;
    /// The device's host went away while watching.
    pub const ENDED: u16 = 4410;
}
