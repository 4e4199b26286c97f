//! RabbitMQ for the worker: the bus topology (`labwright_wire::bus`, declared exactly as the
//! api-server declares it), the job consumer (manual acks, prefetch = concurrency), the
//! session-control consumer, and the publisher of build updates (publisher confirms; an update
//! is sent again until confirmed).

use std::time::Duration;

use labwright_core::build::BuildUpdate;
use labwright_wire::bus::{self, Names};
use lapin::{Channel, Connection, ConnectionProperties, Consumer, options::ConfirmSelectOptions};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Broker {
    pub conn: Connection,
    /// Confirm-mode channel for updates.
    pub publish: Channel,
    pub jobs: Consumer,
    pub control: Consumer,
}

/// Why the worker could not connect to the broker.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("connecting to the broker timed out")]
    Timeout,
}

/// Connects, declares the topology, and starts consuming jobs (`prefetch` at a time) and
/// session control messages (on a queue of this worker's own).
pub async fn connect(
    url: &str,
    names: &Names,
    prefetch: u16,
    worker: &str,
) -> Result<Broker, ConnectError> {
    let fut = async {
        let conn = Connection::connect(url, ConnectionProperties::default()).await?;
        let publish = conn.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        bus::declare(&publish, names).await?;
        let jobs_ch = conn.create_channel().await?;
        let jobs = bus::consume_queue(
            &jobs_ch,
            &names.jobs_queue,
            prefetch,
            &format!("{worker}-jobs"),
        )
        .await?;
        let control_ch = conn.create_channel().await?;
        let control = bus::consume_private(
            &control_ch,
            &names.sessions_exchange,
            "",
            &format!("{worker}-control"),
        )
        .await?;
        Ok::<_, ConnectError>(Broker {
            conn,
            publish,
            jobs,
            control,
        })
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .unwrap_or(Err(ConnectError::Timeout))
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
    let body = bus::encode(update);
    let key = bus::build_update_key(update.tenant_id);
    let fut = async {
        if bus::publish_confirmed(ch, exchange, &key, &body, bus::properties()).await? {
            Ok(())
        } else {
            Err(PublishError::Nacked)
        }
    };
    tokio::time::timeout(PUBLISH_TIMEOUT, fut)
        .await
        .unwrap_or(Err(PublishError::Timeout))
}
