//! Fleet events to RabbitMQ. Changes are written to the outbox table with the change itself; this
//! module keeps a broker connection (reconnecting with backoff) and moves outbox rows to a durable
//! topic exchange with publisher confirms, deleting a row only once the broker has acknowledged it.

use std::{sync::Arc, time::Duration};

use diesel_async::AsyncConnection;
use labwright_core::retry::Backoff;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::db::{self, DbError, Pool, outbox};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BATCH: i64 = 200;

pub struct Broker {
    url: String,
    exchange: String,
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
    pub fn new(url: String, exchange: String) -> Arc<Self> {
        Arc::new(Self {
            url,
            exchange,
            state: Mutex::new(None),
            wake: Notify::new(),
        })
    }

    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// A connected channel in confirm mode with the exchange declared; connects if needed.
    pub async fn channel(&self) -> Result<Channel, PublishError> {
        let mut state = self.state.lock().await;
        if let Some((conn, ch)) = state.as_ref()
            && conn.status().connected()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        *state = None;
        let fut = async {
            let conn = Connection::connect(&self.url, ConnectionProperties::default()).await?;
            let ch = conn.create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            ch.exchange_declare(
                ShortString::from(self.exchange.as_str()),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
            Ok::<_, lapin::Error>((conn, ch))
        };
        let (conn, ch) = tokio::time::timeout(CONNECT_TIMEOUT, fut)
            .await
            .map_err(|_| PublishError::Timeout)??;
        tracing::info!(exchange = %self.exchange, "connected to the message broker");
        *state = Some((conn, ch.clone()));
        Ok(ch)
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
            let mut conn = db::conn(pool).await?;
            let exchange = self.exchange.clone();
            let n = conn
                .transaction::<_, PublishError, _>(async move |conn| {
                    let events = outbox::claim(conn, BATCH).await?;
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
                                exchange.as_str().into(),
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
