//! The live view (`GET /api/v1/devices/{id}/live`) and events (`GET /api/v1/events`) sockets:
//! their close codes and the live view's JSON control messages (`docs/live-view.md`). Frames
//! themselves are binary.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Close codes of the live view and events sockets.
pub mod close {
    pub use super::super::close::{BAD_MESSAGE, GOING_AWAY, KEY_REVOKED, NORMAL};

    close_codes! {
        /// No such device (or another tenant's).
        NO_DEVICE = 4404;
        /// Offline, without video, or its host is connected to another replica.
        UNAVAILABLE = 4409;
        /// The device's host went away while watching.
        ENDED = 4410;
    }
}

/// A live view control message from the viewer (a text frame).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ViewerMessage {
    /// A frame was drawn: the next may come.
    Ack {
        /// The drawn frame's sequence number.
        #[serde(default)]
        seq: Option<u64>,
    },
}

/// A live view control message from the server (a text frame).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LiveMessage {
    /// The stream starts: the device, the frame rate aimed at, and how many frames may be on
    /// their way before the viewer acknowledges one.
    Live {
        device: Uuid,
        fps: u32,
        in_flight: u64,
    },
    /// The viewer was moved to another tier (`full` or `light`, half size).
    Quality { tier: String },
}

impl LiveMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Longest input one console message may carry, in bytes.
pub const MAX_CONSOLE_INPUT: usize = 4096;

/// A message from a live console's viewer (`GET /api/v1/devices/{id}/console`, a text frame).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ConsoleViewerMessage {
    /// Bytes to type into the console (a line with its `\n`, a control character). Only the
    /// holder of the device's reservation may type; anyone else gets a `refused` message.
    Input { data: String },
}

/// One console line as the live console sends it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsoleLineView {
    pub seq: u64,
    /// When the line's first byte arrived on the host, microseconds since the Unix epoch.
    pub at_us: u64,
    pub text: String,
}

/// A live console message from the server (a text frame).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ConsoleMessage {
    /// The stream starts: the device, and whether this viewer may type (it holds the device's
    /// reservation and may control devices; checked again at every input).
    Console { device: Uuid, can_type: bool },
    /// New output: complete lines, the line being written (a prompt), and how many lines were
    /// lost before these (the console or this viewer fell behind).
    Output {
        lines: Vec<ConsoleLineView>,
        partial: String,
        missed: u64,
    },
    /// An input was not typed, and why.
    Refused { message: String },
    /// An input was typed.
    Typed { bytes: usize },
}

impl ConsoleMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
