//! Labwright's simulated devices, each a process of its own that the host-agent reaches only the
//! way it reaches the real device, for demos, CI and the hardware-in-the-loop rig. One module and
//! one binary per device:
//!
//! - [`phone`]: `labwright-sim-phone`, the simulated Android phone (`labwright_core::sim::phone`)
//!   behind a real ADB daemon (`labwright_adb::AdbDaemon`) over TCP.
//! - [`wired_box`]: `labwright-wired-box`, the simulated set-top box on kernel devices (V4L2
//!   output, LIRC, a GPIO line, ALSA and a tty), as a real box on a bench.

pub mod phone;
pub mod wired_box;
