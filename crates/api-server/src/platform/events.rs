//! Fleet events to RabbitMQ. Changes are written to the outbox table with the change itself; this
//! module keeps a broker connection (reconnecting with backoff) and moves outbox rows to a durable
//! topic exchange with publisher confirms, deleting a row only once the broker has acknowledged it.
//! Rows naming another exchange (build jobs, session control) are published there.
//!
//! The connection also declares the bus topology (`labwright_wire::bus::declare`), which build
//! workers declare identically.

use std::{sync::Arc, time::Duration};

use diesel_async::AsyncConnection;
use labwright_core::retry::Backoff;
use labwright_wire::bus::{self, Names};
use lapin::{
    Channel, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions},
};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::db::{self, DbError, Pool, outbox};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BATCH: i64 = 200;

pub struct Broker {
    url: String,
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
    /// `names`: the events exchange and the repo-sandbox exchanges and queues.
    pub fn new(url: String, names: Names) -> Arc<Self> {
        Arc::new(Self {
            url,
            names,
            state: Mutex::new(None),
            wake: Notify::new(),
        })
    }

    /// The events exchange.
    pub fn exchange(&self) -> &str {
        &self.names.events_exchange
    }

    /// The exchange and queue names.
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
                bus::declare(&ch, &self.names).await?;
                Ok::<_, lapin::Error>((conn, ch))
            };
            let pair = tokio::time::timeout(CONNECT_TIMEOUT, fut)
                .await
                .map_err(|_| PublishError::Timeout)??;
            tracing::info!(exchange = %self.names.events_exchange, "connected to the message broker");
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
            let body = bus::encode(payload);
            if bus::publish_confirmed(&channel, exchange, routing_key, &body, bus::properties())
                .await?
            {
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
            let mut conn = db::conn(pool).await?;
            let exchange = self.names.events_exchange.clone();
            let n = conn
                .transaction::<_, PublishError, _>(async move |conn| {
                    let mut events = outbox::claim(conn, BATCH).await?;
                    // RETURNING does not keep the subquery's order; consumers expect it.
                    events.sort_unstable_by_key(|e| e.id);
                    let mut confirms = Vec::with_capacity(events.len());
                    for e in &events {
                        let body = bus::encode(&e.payload);
                        let props = bus::event_properties(e.id, e.tenant_id);
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
