//! Labwright's simulated devices, each served over the protocol the real device speaks, for
//! demos, CI and training. One module and one binary per device:
//!
//! - [`phone`]: `labwright-sim-phone`, the simulated Android phone (`labwright_core::sim::phone`)
//!   behind a real ADB daemon (`labwright_adb::AdbDaemon`) over TCP.

pub mod phone;
