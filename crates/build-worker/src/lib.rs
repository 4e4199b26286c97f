//! The build worker: consumes build jobs from RabbitMQ, clones the repository, detects its stack,
//! builds an image through the Docker engine and runs it as a sandbox session with limits and an
//! expiry, reporting every stage and log line back as events.

pub mod config;
pub mod detect;
pub mod dockerfile;
pub mod engine;
pub mod git;
pub mod queue;
pub mod sessions;
pub mod user;
pub mod worker;

pub use config::Config;
