//! Navigation trees: how to get a device from the screen it is on to the screen a test needs.
//!
//! - [`tree`]: the data model of one device model's tree (screens with the checks that identify
//!   them, edges of key presses, learned edge statistics) and its validation. The YAML/JSON form
//!   is documented in `docs/navigation-trees.md`.
//! - [`plan`]: the cheapest path between two screens (Dijkstra over the expected edge times).
//! - [`goto`]: the executor. It locates the device, plans, takes edge after edge, verifies the
//!   screen after each, and re-locates and re-plans when the device ends up somewhere else.
//!
//! Everything here is synchronous and blocking, like the controller traits it drives.

pub mod goto;
pub mod plan;
pub(crate) mod shorthand;
pub mod tree;

use std::{collections::HashMap, sync::Arc};

pub use goto::{GotoFailure, GotoOptions, GotoReport, Located, Navigator};
pub use plan::{Path, PlannedEdge, plan};
pub use tree::{
    DirectedEdge, Edge, EdgeObservation, EdgeStats, KeyAction, KeyName, NavigationTree, Resolution,
    Screen, ScreenCheck,
};

use crate::{controller::ControlError, frame::Gray, verify::VerifyError};

/// Reference images by name (`home-title`), as cut from real frames of the device model.
pub trait ReferenceImages: Send + Sync {
    fn get(&self, name: &str) -> Option<Arc<Gray>>;
}

/// Reference images held in memory.
#[derive(Clone, Debug, Default)]
pub struct ReferenceSet {
    images: HashMap<String, Arc<Gray>>,
}

impl ReferenceSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, image: impl Into<Arc<Gray>>) {
        self.images.insert(name.into(), image.into());
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.images.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

impl ReferenceImages for ReferenceSet {
    fn get(&self, name: &str) -> Option<Arc<Gray>> {
        self.images.get(name).cloned()
    }
}

impl<T: ReferenceImages + ?Sized> ReferenceImages for &T {
    fn get(&self, name: &str) -> Option<Arc<Gray>> {
        (**self).get(name)
    }
}

/// Why navigation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NavError {
    #[error("unknown screen {0:?}")]
    UnknownScreen(String),
    #[error("no path from screen {from:?} to screen {to:?}")]
    Unreachable { from: String, to: String },
    /// No screen of the tree matches what the device shows.
    #[error("the device is on no known screen")]
    NotLocated,
    /// The device kept ending up on unexpected screens.
    #[error("lost on the way to {target:?} after {replans} re-plans (last seen on {last_seen})")]
    Lost {
        target: String,
        replans: u32,
        last_seen: String,
    },
    #[error("navigation to {target:?} did not finish within {timeout_ms} ms")]
    Timeout { target: String, timeout_ms: u64 },
    #[error("unknown reference image {0:?}")]
    MissingReference(String),
    #[error("invalid navigation tree: {0}")]
    InvalidTree(String),
    #[error("the device has no {0}")]
    MissingCapability(&'static str),
    #[error(transparent)]
    Device(#[from] ControlError),
    #[error("verification error: {0}")]
    Verify(#[from] VerifyError),
    #[error("cancelled")]
    Cancelled,
}

impl NavError {
    /// A stable, machine-readable code for the API layer.
    pub fn code(&self) -> &'static str {
        match self {
            NavError::UnknownScreen(_) => "unknown_screen",
            NavError::Unreachable { .. } => "unreachable_screen",
            NavError::NotLocated => "not_located",
            NavError::Lost { .. } => "lost",
            NavError::Timeout { .. } => "navigation_timeout",
            NavError::MissingReference(_) => "missing_reference",
            NavError::InvalidTree(_) => "invalid_tree",
            NavError::MissingCapability(_) => "missing_capability",
            NavError::Device(_) => "device_error",
            NavError::Verify(_) => "verify_error",
            NavError::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests;
