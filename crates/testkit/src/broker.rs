//! The test RabbitMQ: its URL and a namespace per test, so that tests sharing the broker never
//! see each other's queues and exchanges, and a tap on an exchange.

use crate::env;

/// `LABWRIGHT_TEST_AMQP_URL`.
pub fn amqp_url() -> String {
    env("LABWRIGHT_TEST_AMQP_URL")
}

/// A unique prefix for one test's queues and exchanges: `t` + 12 hex digits + `.`.
pub fn namespace() -> String {
    format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A consumer (no acknowledgements) on a queue of its own, exclusive and auto-deleted, bound to
/// `exchange` with `binding`: what a test reads to see what was published there.
pub async fn tap(channel: &lapin::Channel, exchange: &str, binding: &str) -> lapin::Consumer {
    use lapin::{options::*, types::FieldTable};
    let q = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    channel
        .queue_bind(
            q.name().clone(),
            exchange.into(),
            binding.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    channel
        .basic_consume(
            q.name().clone(),
            "tap".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume")
}
