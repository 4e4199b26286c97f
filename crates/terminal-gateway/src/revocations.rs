//! Key revocations, learned from the api-server's events (`key.revoked` on the events exchange,
//! through a private queue of this gateway): a revoked key's open terminals are closed
//! ([`close::KEY_REVOKED`](labwright_wire::ws::terminal::close::KEY_REVOKED)) and the tickets
//! it was issued before the revocation are refused. The gateway still holds no database
//! connection and no key.
//!
//! A revoked key is remembered for [`REMEMBER_SECS`], far longer than any ticket it was issued
//! can live (`TICKET_TTL_SECS`): the api-server refuses revoked keys, so no newer ticket exists.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use labwright_core::retry::Backoff;
use labwright_wire::bus::{self, KeyRevoked};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a revoked key's id is kept (ten times a ticket's life).
pub const REMEMBER_SECS: i64 = labwright_core::terminal::TICKET_TTL_SECS * 10;

#[derive(Default)]
pub struct Revocations {
    state: Mutex<State>,
    /// The event feed is connected (a revocation made while it is not is missed).
    connected: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Keys with open terminals here (and how many): cancelled on revocation.
    open: HashMap<Uuid, (CancellationToken, usize)>,
    /// Revoked keys and when we learned it (unix seconds).
    revoked: HashMap<Uuid, i64>,
}

impl Revocations {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token of a terminal opened with a ticket of `key` (cancelled when the key is
    /// revoked), released when dropped; `None` if the key is revoked.
    pub fn watch(&self, key: Uuid) -> Option<Watch<'_>> {
        let mut state = self.state();
        if state.revoked.contains_key(&key) {
            return None;
        }
        let (token, n) = state.open.entry(key).or_default();
        *n += 1;
        Some(Watch {
            revocations: self,
            key,
            token: token.clone(),
        })
    }

    /// Records `key` as revoked at `now` and closes its terminals.
    pub fn revoked(&self, key: Uuid, now: i64) {
        let token = {
            let mut state = self.state();
            state.revoked.retain(|_, at| *at + REMEMBER_SECS >= now);
            state.revoked.insert(key, now);
            state.open.remove(&key)
        };
        if let Some((token, _)) = token {
            tracing::info!(%key, "key revoked: closing its terminals");
            token.cancel();
        }
    }

    /// A terminal [`watch`](Self::watch)ing `key` ended: forgets the key's token with its last
    /// terminal.
    fn release(&self, key: Uuid) {
        let mut state = self.state();
        if let Some((_, n)) = state.open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                state.open.remove(&key);
            }
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Follows `key.revoked` events on `exchange` until `shutdown`, reconnecting with backoff.
    pub async fn follow(&self, amqp_url: String, exchange: String, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            let res = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.session(&amqp_url, &exchange, &mut backoff) => r,
            };
            self.connected.store(false, Ordering::Relaxed);
            let delay = backoff.next_delay();
            if backoff.worth_logging() {
                tracing::warn!(error = %res, "revocation feed: broker unavailable");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn session(&self, amqp_url: &str, exchange: &str, backoff: &mut Backoff) -> String {
        let connect = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default());
        let conn = match tokio::time::timeout(bus::CALL_TIMEOUT, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "connecting timed out".into(),
        };
        let channel = match bus::timed(conn.create_channel()).await {
            Ok(c) => c,
            Err(e) => return e.to_string(),
        };
        // The exchange is the api-server's: declared here too (same arguments), so the gateway
        // may start first.
        if let Err(e) = bus::timed(channel.exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        ))
        .await
        {
            return e.to_string();
        }
        let mut consumer =
            match bus::consume_private(&channel, exchange, bus::KEY_REVOKED_BINDING, "").await {
                Ok(c) => c,
                Err(e) => return e.to_string(),
            };
        self.connected.store(true, Ordering::Relaxed);
        backoff.reset();
        tracing::info!("revocation feed: following key revocations");
        loop {
            match consumer.next().await {
                None => return "the consumer ended".into(),
                Some(Err(e)) => return e.to_string(),
                Some(Ok(d)) => {
                    if let Some(key) = KeyRevoked::from_event(d.routing_key.as_str(), &d.data) {
                        self.revoked(key, chrono::Utc::now().timestamp());
                    }
                }
            }
        }
    }
}

/// One terminal's watch on its key's revocation.
pub struct Watch<'a> {
    revocations: &'a Revocations,
    key: Uuid,
    pub token: CancellationToken,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.revocations.release(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_key_closes_its_terminals_and_opens_no_more_until_forgotten() {
        let r = Revocations::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let open = r.watch(a).expect("a may open");
        let other = r.watch(b).expect("b may open");
        r.revoked(a, 1000);
        assert!(open.token.is_cancelled());
        assert!(!other.token.is_cancelled());
        assert!(r.watch(a).is_none());
        drop((open, other));
        assert!(r.state().open.is_empty());
        // Remembered well past any ticket's life, then forgotten.
        r.revoked(b, 1000 + REMEMBER_SECS);
        assert!(r.watch(a).is_none());
        r.revoked(b, 1001 + REMEMBER_SECS);
        assert!(r.watch(a).is_some());
        assert!(r.state().open.is_empty());
    }
}
