//! What every feature stands on: configuration, the error type, the PostgreSQL pool with its
//! migrations, hand-written statements and outbox, the RabbitMQ broker with the outbox publisher,
//! the artifact object store. Nothing here knows a feature.

pub mod artifacts;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod health;
pub mod paging;
