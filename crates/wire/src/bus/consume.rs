//! Consumer setup, the same for every consumer of either side, each broker call bounded by
//! [`CALL_TIMEOUT`](super::CALL_TIMEOUT).

use lapin::{
    Channel, Consumer,
    options::{BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};

use super::{BusError, CALL_TIMEOUT};

/// Runs one broker call within [`CALL_TIMEOUT`](super::CALL_TIMEOUT).
pub async fn timed<T>(fut: impl Future<Output = Result<T, lapin::Error>>) -> Result<T, BusError> {
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .map_err(|_| BusError::Timeout)?
        .map_err(BusError::from)
}

/// Consumes the shared `queue` with manual acknowledgements, at most `prefetch` unacknowledged
/// messages at once. `tag` names the consumer (`""`: the broker picks one).
pub async fn consume_queue(
    ch: &Channel,
    queue: &str,
    prefetch: u16,
    tag: &str,
) -> Result<Consumer, BusError> {
    timed(ch.basic_qos(prefetch, BasicQosOptions::default())).await?;
    timed(ch.basic_consume(
        queue.into(),
        tag.into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
}

/// Consumes, without acknowledgements, a queue of the caller's own (exclusive, gone with the
/// connection) bound to `exchange` with `binding`: every consumer sees every message.
pub async fn consume_private(
    ch: &Channel,
    exchange: &str,
    binding: &str,
    tag: &str,
) -> Result<Consumer, BusError> {
    let queue = timed(ch.queue_declare(
        "".into(),
        QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await?;
    timed(ch.queue_bind(
        queue.name().clone(),
        exchange.into(),
        binding.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await?;
    timed(ch.basic_consume(
        queue.name().clone(),
        tag.into(),
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        FieldTable::default(),
    ))
    .await
}

/// Closes a channel that is still open, giving up after [`CALL_TIMEOUT`](super::CALL_TIMEOUT).
pub async fn close_channel(ch: &Channel) {
    if ch.status().connected() {
        let _ = tokio::time::timeout(CALL_TIMEOUT, ch.close(200, "bye".into())).await;
    }
}
