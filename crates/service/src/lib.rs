//! The chassis every Labwright binary stands on, written once: the typed configuration loader
//! (a TOML file plus `LABWRIGHT_*` environment overrides derived from the config struct),
//! logging, the shutdown signal, retrying a dependency until it is ready, and (feature `docker`)
//! the Docker engine connection.
//!
//! A binary's `main` is then: parse arguments, [`config::load`], [`telemetry::init`], run its
//! library until [`shutdown::signal`].

pub mod config;
#[cfg(feature = "docker")]
pub mod docker;
pub mod ready;
pub mod shutdown;
pub mod telemetry;

pub use config::{ConfigError, Settings};
pub use telemetry::LogFormat;
