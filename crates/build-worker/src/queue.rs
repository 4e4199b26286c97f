//! RabbitMQ for the worker: the topology (declared exactly as the api-server declares it), the
//! job consumer (manual acks, prefetch = concurrency), the session-control consumer, and the
//! publisher of build updates (publisher confirms; an update is sent again until confirmed).

use std::time::Duration;

use labwright_core::build::{BuildUpdate, topology};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind,
    options::{
        BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Queue and exchange names, with an optional prefix (tests run side by side on one broker).
#[derive(Clone, Debug)]
pub struct Names {
    pub namespace: String,
    pub events_exchange: String,
}

impl Names {
    pub fn of(&self, name: &str) -> String {
        format!("{}{name}", self.namespace)
    }
}

/// Declares everything the worker uses; idempotent, identical to the api-server's declaration.
pub async fn declare(ch: &Channel, names: &Names) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let queue_durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        names.of(topology::JOBS_EXCHANGE).into(),
        ExchangeKind::Direct,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        names.of(topology::DEAD_EXCHANGE).into(),
        ExchangeKind::Fanout,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        names.of(topology::DEAD_QUEUE).into(),
        queue_durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        names.of(topology::DEAD_QUEUE).into(),
        names.of(topology::DEAD_EXCHANGE).into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(topology::DELIVERY_LIMIT),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(names.of(topology::DEAD_EXCHANGE).into()),
    );
    ch.queue_declare(names.of(topology::JOBS_QUEUE).into(), queue_durable, args)
        .await?;
    ch.queue_bind(
        names.of(topology::JOBS_QUEUE).into(),
        names.of(topology::JOBS_EXCHANGE).into(),
        topology::JOBS_ROUTING_KEY.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        names.of(topology::SESSIONS_EXCHANGE).into(),
        ExchangeKind::Fanout,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        names.events_exchange.as_str().into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await?;
    // The api-server's queue of updates: declared here too, so updates from a worker that
    // starts first are kept rather than dropped as unroutable.
    ch.queue_declare(
        names.of(topology::UPDATES_QUEUE).into(),
        queue_durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        names.of(topology::UPDATES_QUEUE).into(),
        names.events_exchange.as_str().into(),
        topology::UPDATES_BINDING.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

pub struct Broker {
    pub conn: Connection,
    /// Confirm-mode channel for updates.
    pub publish: Channel,
    pub jobs: Consumer,
    pub control: Consumer,
}

/// Connects, declares the topology, and starts consuming jobs (`prefetch` at a time) and
/// session control messages (on a queue of this worker's own).
pub async fn connect(
    url: &str,
    names: &Names,
    prefetch: u16,
    worker: &str,
) -> Result<Broker, lapin::Error> {
    let fut = async {
        let conn = Connection::connect(url, ConnectionProperties::default()).await?;
        let publish = conn.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        declare(&publish, names).await?;
        let jobs_ch = conn.create_channel().await?;
        jobs_ch
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let jobs = jobs_ch
            .basic_consume(
                names.of(topology::JOBS_QUEUE).into(),
                format!("{worker}-jobs").into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let control_ch = conn.create_channel().await?;
        let q = control_ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        control_ch
            .queue_bind(
                q.name().clone(),
                names.of(topology::SESSIONS_EXCHANGE).into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let control = control_ch
            .basic_consume(
                q.name().clone(),
                format!("{worker}-control").into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok::<_, lapin::Error>(Broker {
            conn,
            publish,
            jobs,
            control,
        })
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .unwrap_or(Err(lapin::Error::from(
            lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed),
        )))
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker did not confirm the update")]
    Nacked,
    #[error("the broker did not answer in time")]
    Timeout,
}

/// Publishes one update (persistent) and waits for the broker's confirm.
pub async fn publish_update(
    ch: &Channel,
    exchange: &str,
    update: &BuildUpdate,
) -> Result<(), PublishError> {
    let body = serde_json::to_vec(update).unwrap_or_default();
    let fut = async {
        let confirm = ch
            .basic_publish(
                ShortString::from(exchange),
                ShortString::from(update.routing_key()),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2),
            )
            .await?
            .await?;
        if confirm.is_ack() {
            Ok(())
        } else {
            Err(PublishError::Nacked)
        }
    };
    tokio::time::timeout(PUBLISH_TIMEOUT, fut)
        .await
        .unwrap_or(Err(PublishError::Timeout))
}
