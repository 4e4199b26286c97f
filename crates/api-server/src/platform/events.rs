//! Fleet events to RabbitMQ. Changes are written to the outbox table with the change itself; this
//! module keeps a broker connection (reconnecting with backoff) and moves outbox rows to a durable
//! topic exchange with publisher confirms, deleting a row only once the broker has acknowledged it.
//! Rows naming another exchange (build jobs, session control) are published there.
//!
//! The connection also declares the repo-sandbox topology ([`declare_topology`]), which build
//! workers declare identically.

use std::{sync::Arc, time::Duration};

use diesel_async::AsyncConnection;
use labwright_core::retry::Backoff;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::{
    db::{DbError, Pool, outbox},
    sandboxes::Names,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BATCH: i64 = 200;

pub struct Broker {
    url: String,
    exchange: String,
    names: Names,
    state: Mutex<Option<(Connection, Channel)>>,
    wake: Notify,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("broker did not confirm event {0}")]
    Nacked(i64),
    #[error("broker connection timed out")]
    Timeout,
}

impl From<diesel::result::Error> for PublishError {
    fn from(e: diesel::result::Error) -> Self {
        PublishError::Db(e.into())
    }
}

impl Broker {
    /// `names`: the repo-sandbox exchanges and queues (see [`Names`]).
    pub fn new(url: String, exchange: String, names: Names) -> Arc<Self> {
        Arc::new(Self {
            url,
            exchange,
            names,
            state: Mutex::new(None),
            wake: Notify::new(),
        })
    }

    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The repo-sandbox exchange and queue names.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// A connected channel in confirm mode with the exchanges and queues declared; connects if
    /// needed.
    pub async fn channel(&self) -> Result<Channel, PublishError> {
        let mut state = self.state.lock().await;
        Ok(self.connected(&mut state).await?.1.clone())
    }

    /// A new channel of its own on the shared connection (for a consumer), connecting if needed.
    pub async fn open_channel(&self) -> Result<Channel, PublishError> {
        let mut state = self.state.lock().await;
        let (conn, _) = self.connected(&mut state).await?;
        tokio::time::timeout(CONNECT_TIMEOUT, conn.create_channel())
            .await
            .map_err(|_| PublishError::Timeout)?
            .map_err(PublishError::from)
    }

    async fn connected<'s>(
        &self,
        state: &'s mut Option<(Connection, Channel)>,
    ) -> Result<&'s (Connection, Channel), PublishError> {
        let alive = state
            .as_ref()
            .is_some_and(|(conn, ch)| conn.status().connected() && ch.status().connected());
        if !alive {
            *state = None;
            let fut = async {
                let conn = Connection::connect(&self.url, ConnectionProperties::default()).await?;
                let ch = conn.create_channel().await?;
                ch.confirm_select(ConfirmSelectOptions::default()).await?;
                declare_topology(&ch, &self.exchange, &self.names).await?;
                Ok::<_, lapin::Error>((conn, ch))
            };
            let pair = tokio::time::timeout(CONNECT_TIMEOUT, fut)
                .await
                .map_err(|_| PublishError::Timeout)??;
            tracing::info!(exchange = %self.exchange, "connected to the message broker");
            *state = Some(pair);
        }
        state.as_ref().ok_or(PublishError::Timeout)
    }

    /// Publishes one message straight to `exchange` and waits for the broker's confirm. For
    /// messages that describe no change and may be lost (a periodic snapshot); everything else
    /// goes through the outbox.
    pub async fn publish_now(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &serde_json::Value,
    ) -> Result<(), PublishError> {
        let fut = async {
            let channel = self.channel().await?;
            let body = serde_json::to_vec(payload).unwrap_or_default();
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            let confirm = channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await?
                .await?;
            if confirm.is_ack() {
                Ok(())
            } else {
                Err(PublishError::Nacked(0))
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT * 2, fut)
            .await
            .map_err(|_| PublishError::Timeout)?
    }

    /// Readiness: can we talk to the broker right now (connecting if needed)?
    pub async fn ready(&self) -> bool {
        self.channel().await.is_ok()
    }

    /// Asks the publisher to drain the outbox now rather than at its next tick.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes outbox events until the outbox is empty. Returns how many were published.
    pub async fn drain_outbox(&self, pool: &Pool) -> Result<usize, PublishError> {
        let mut total = 0;
        loop {
            let channel = self.channel().await?;
            let mut conn = crate::db::conn(pool).await?;
            let exchange = self.exchange.clone();
            let n = conn
                .transaction::<_, PublishError, _>(async move |conn| {
                    let mut events = outbox::claim(conn, BATCH).await?;
                    // RETURNING does not keep the subquery's order; consumers expect it.
                    events.sort_unstable_by_key(|e| e.id);
                    let mut confirms = Vec::with_capacity(events.len());
                    for e in &events {
                        let body = serde_json::to_vec(&e.payload).unwrap_or_default();
                        let mut headers = FieldTable::default();
                        headers.insert(
                            "tenant_id".into(),
                            AMQPValue::LongString(e.tenant_id.to_string().into()),
                        );
                        let props = BasicProperties::default()
                            .with_content_type("application/json".into())
                            .with_delivery_mode(2)
                            .with_message_id(e.id.to_string().into())
                            .with_headers(headers);
                        let confirm = channel
                            .basic_publish(
                                if e.exchange.is_empty() {
                                    exchange.as_str().into()
                                } else {
                                    e.exchange.as_str().into()
                                },
                                e.routing_key.as_str().into(),
                                BasicPublishOptions::default(),
                                &body,
                                props,
                            )
                            .await?;
                        confirms.push((e.id, confirm));
                    }
                    for (id, confirm) in confirms {
                        if !confirm.await?.is_ack() {
                            return Err(PublishError::Nacked(id));
                        }
                    }
                    Ok(events.len())
                })
                .await?;
            total += n;
            if (n as i64) < BATCH {
                return Ok(total);
            }
        }
    }

    /// Background loop: drains the outbox when woken and at least once a second, retrying with
    /// capped backoff while the broker or the database is down.
    pub async fn run_publisher(self: Arc<Self>, pool: Pool, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match self.drain_outbox(&pool).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(published = n, "fleet events published");
                    }
                    backoff.reset();
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    if backoff.worth_logging() {
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "publishing fleet events failed");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}

/// Declares, idempotently and durable, the events exchange and the repo-sandbox topology exactly
/// as core's [`labwright_core::build::topology`] describes it (names prefixed by the namespace,
/// see [`Names`]). Build workers declare the same names with the same arguments: any difference
/// is a channel error on whichever side declares second.
pub async fn declare_topology(
    ch: &Channel,
    events_exchange: &str,
    names: &Names,
) -> Result<(), lapin::Error> {
    use labwright_core::build::topology;

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

    exchange(events_exchange, ExchangeKind::Topic).await?;
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

    let mut jobs_args = FieldTable::default();
    jobs_args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    jobs_args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(topology::DELIVERY_LIMIT),
    );
    jobs_args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(names.dead_exchange.as_str().into()),
    );
    ch.queue_declare(
        ShortString::from(names.jobs_queue.as_str()),
        durable_queue,
        jobs_args,
    )
    .await?;
    bind(
        &names.jobs_queue,
        &names.jobs_exchange,
        topology::JOBS_ROUTING_KEY,
    )
    .await?;

    ch.queue_declare(
        ShortString::from(names.updates_queue.as_str()),
        durable_queue,
        FieldTable::default(),
    )
    .await?;
    bind(
        &names.updates_queue,
        events_exchange,
        topology::UPDATES_BINDING,
    )
    .await?;
    Ok(())
}
