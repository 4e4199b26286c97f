//! The event tap: every event this installation publishes (fleet, executions, builds), read back
//! from the broker by each replica through a queue of its own, for the web UI's live updates
//! (`GET /api/v1/events`, a WebSocket). Reading from the broker rather than from this replica's
//! publisher means a browser sees changes made through any replica.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use labwright_core::retry::Backoff;
use labwright_wire::bus;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::events::Broker;

/// Events a slow browser may fall behind by before it is told to reload.
const BACKLOG: usize = 1024;

#[derive(Debug)]
pub struct TapEvent {
    pub tenant: Uuid,
    /// The routing key after `tenant.<id>.`: `fleet.device.status`, `execution.step`, ...
    pub kind: String,
    pub payload: Arc<str>,
}

pub struct EventTap {
    tx: broadcast::Sender<Arc<TapEvent>>,
}

impl EventTap {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            tx: broadcast::channel(BACKLOG).0,
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<TapEvent>> {
        self.tx.subscribe()
    }

    /// Parses `tenant.<uuid>.<kind>`.
    fn event(routing_key: &str, payload: &[u8]) -> Option<TapEvent> {
        let (tenant, kind) = bus::parse_tenant_event_key(routing_key)?;
        Some(TapEvent {
            tenant,
            kind: kind.to_string(),
            payload: std::str::from_utf8(payload).ok()?.into(),
        })
    }

    /// Reads events until shutdown, reconnecting with backoff.
    pub async fn run(self: Arc<Self>, broker: Arc<Broker>, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            let res = self.session(&broker, &shutdown, &mut backoff).await;
            match res {
                Ok(()) => return,
                Err(e) => {
                    let delay = backoff.next_delay();
                    if backoff.worth_logging() {
                        tracing::warn!(error = %e, "event tap: broker unavailable");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn session(
        &self,
        broker: &Broker,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), String> {
        let channel = broker.open_channel().await.map_err(|e| e.to_string())?;
        // A queue of this replica's own: exclusive, gone with the connection.
        let mut consumer =
            bus::consume_private(&channel, broker.exchange(), bus::TENANT_EVENTS_BINDING, "")
                .await
                .map_err(|e| e.to_string())?;
        backoff.reset();
        loop {
            let d = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                d = consumer.next() => d,
            };
            let d = match d {
                None => return Err("the consumer ended".into()),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(d)) => d,
            };
            if let Some(e) = Self::event(d.routing_key.as_str(), &d.data) {
                // Nobody listening is fine.
                let _ = self.tx.send(Arc::new(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_name_the_tenant_and_kind() {
        let t = Uuid::new_v4();
        let e = EventTap::event(&format!("tenant.{t}.fleet.device.status"), b"{}").expect("event");
        assert_eq!((e.tenant, e.kind.as_str()), (t, "fleet.device.status"));
        assert!(EventTap::event("labwright.builds", b"{}").is_none());
        assert!(EventTap::event("tenant.nope.x", b"{}").is_none());
        assert!(EventTap::event(&format!("tenant.{t}.x"), &[0xff]).is_none());
    }
}
