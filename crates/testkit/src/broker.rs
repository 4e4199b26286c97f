//! The test RabbitMQ: its URL and a namespace per test, so that tests sharing the broker never
//! see each other's queues and exchanges.

use crate::env;

/// `LABWRIGHT_TEST_AMQP_URL`.
pub fn amqp_url() -> String {
    env("LABWRIGHT_TEST_AMQP_URL")
}

/// A unique prefix for one test's queues and exchanges: `t` + 12 hex digits + `.`.
pub fn namespace() -> String {
    format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..12])
}
