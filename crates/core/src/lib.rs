//! Labwright's domain: tenants, hosts, devices, device models and capabilities.
//!
//! **Architecture Invariant:** this crate knows nothing of actix, diesel, tonic or lapin. It holds
//! domain types, validation and (in later issues) controller traits, drivers, verification and
//! navigation. Edge crates map their wire and storage types onto these. CI checks the invariant with
//! `cargo tree -p labwright-core -i <crate>`.

pub mod auth;
pub mod build;
pub mod clock;
pub mod controller;
pub mod execution;
pub mod fleet;
pub mod frame;
pub mod health;
pub mod ids;
pub mod image_io;
pub mod jpeg;
pub mod nav;
pub mod retry;
pub mod run;
#[cfg(feature = "sim")]
pub mod sim;
pub mod terminal;
pub mod testcase;
pub mod uiautomator;
pub mod validate;
pub mod verify;

pub use execution::ExecutionStatus;
pub use validate::ValidationError;
