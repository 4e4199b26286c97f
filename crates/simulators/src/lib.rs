//! Simulated devices that run as their own processes and reach the host-agent only through
//! kernel devices, as real devices on a bench do.

pub mod wired_box;
