//! Hardware drivers behind core's controller traits: video capture from V4L2 (`video`), audio
//! capture from ALSA (`audio`), the serial console (`serial`), and [`composite`], the device that
//! combines them as a host's configuration says.
//!
//! Each driver is generic over a small transport trait for its device I/O ([`video::VideoDevice`],
//! [`audio::PcmSource`], [`serial::PortOpener`]), so unit tests drive it with a fake transport
//! and hosts with the real one. The real transports sit behind default-on cargo features (`v4l2`,
//! `alsa`, `serial`): they link system libraries that core never sees. The pixel conversions
//! (`video::convert`) are pure and always built.

pub mod composite;
pub mod device_node;
pub mod discover;
pub mod timestamp;
mod worker;

#[cfg(test)]
mod eventually;

#[cfg(feature = "android")]
pub mod android;
pub mod audio;
pub mod ir;
pub mod power;
pub mod serial;
pub mod video;

pub use device_node::NodeProblem;
