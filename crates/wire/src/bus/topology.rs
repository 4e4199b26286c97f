//! The topology, declared identically by the api-server and every build worker: whichever starts
//! first creates it, and a difference in any argument would be a channel error on the side that
//! declares second.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

use super::{DELIVERY_LIMIT, JOBS_ROUTING_KEY, Names, UPDATES_BINDING};

/// Declares, idempotently and durable, the events exchange and the repo-sandbox topology (see
/// the [module](super) documentation). The updates queue is declared by workers too, so updates
/// from a worker that starts before any api-server are kept rather than dropped as unroutable.
pub async fn declare(ch: &Channel, names: &Names) -> Result<(), lapin::Error> {
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let exchange = async |name: &str, kind: ExchangeKind| {
        ch.exchange_declare(
            ShortString::from(name),
            kind,
            durable_exchange,
            FieldTable::default(),
        )
        .await
    };
    let bind = async |queue: &str, exchange: &str, key: &str| {
        ch.queue_bind(
            ShortString::from(queue),
            ShortString::from(exchange),
            ShortString::from(key),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    };

    exchange(&names.events_exchange, ExchangeKind::Topic).await?;
    exchange(&names.jobs_exchange, ExchangeKind::Direct).await?;
    exchange(&names.dead_exchange, ExchangeKind::Fanout).await?;
    exchange(&names.sessions_exchange, ExchangeKind::Fanout).await?;

    ch.queue_declare(
        ShortString::from(names.dead_queue.as_str()),
        durable_queue,
        FieldTable::default(),
    )
    .await?;
    bind(&names.dead_queue, &names.dead_exchange, "").await?;

    ch.queue_declare(
        ShortString::from(names.jobs_queue.as_str()),
        durable_queue,
        jobs_queue_arguments(names),
    )
    .await?;
    bind(&names.jobs_queue, &names.jobs_exchange, JOBS_ROUTING_KEY).await?;

    ch.queue_declare(
        ShortString::from(names.updates_queue.as_str()),
        durable_queue,
        FieldTable::default(),
    )
    .await?;
    bind(
        &names.updates_queue,
        &names.events_exchange,
        UPDATES_BINDING,
    )
    .await?;
    Ok(())
}

/// The jobs queue: quorum, dead-lettered after [`DELIVERY_LIMIT`] deliveries.
fn jobs_queue_arguments(names: &Names) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(names.dead_exchange.as_str().into()),
    );
    args
}
