//! The message bus between the api-server and build workers (RabbitMQ), declared once for both
//! sides: the exchange and queue names ([`Names`]), the routing keys, the topology
//! ([`declare`]), consumer setup ([`consume_queue`], [`consume_private`]) and the message
//! encoding ([`encode`], [`decode`], [`properties`]).
//!
//! What travels is core's domain messages (`BuildJob`, `BuildUpdate`, `SessionControl`) and the
//! api-server's fleet and execution events, as JSON.
//!
//! Topology (every exchange and queue durable; names prefixed with the namespace):
//! - `labwright.builds`: direct exchange of build jobs (routing key [`JOBS_ROUTING_KEY`]) into
//!   the quorum queue of the same name, consumed by every worker; a job delivered
//!   [`DELIVERY_LIMIT`] times goes to the dead letters;
//! - `labwright.builds.dead`: fanout exchange and queue of dead-lettered jobs (the api-server
//!   fails their builds);
//! - `labwright.sessions`: fanout exchange of session control; each worker binds a private queue;
//! - the events exchange (topic, named by configuration, not prefixed): every tenant event under
//!   `tenant.<id>.<kind>`; the queue `labwright.build-updates` collects build updates
//!   ([`UPDATES_BINDING`]) for the api-server.

mod consume;
mod message;
mod topology;

use std::time::Duration;

use uuid::Uuid;

pub use consume::{close_channel, consume_private, consume_queue, timed};
pub use message::{
    CONTENT_TYPE, DecodeError, decode, encode, event_properties, properties, publish_confirmed,
};
pub use topology::declare;

/// The longest one broker call (declare, qos, consume, ack, close) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A job delivered this many times (its worker died or failed it) goes to the dead letters.
pub const DELIVERY_LIMIT: i64 = 3;
/// Routing key of build jobs on the jobs exchange.
pub const JOBS_ROUTING_KEY: &str = "build";
/// Binding of the build-updates queue on the events exchange.
pub const UPDATES_BINDING: &str = "tenant.*.builds.update";
/// Binding that sees every tenant event on the events exchange.
pub const TENANT_EVENTS_BINDING: &str = "tenant.#";
/// Event kind (after `tenant.<id>.`) published when a key is revoked: every replica closes the
/// key's sockets and host link, and terminal gateways its terminals and tickets.
pub const KEY_REVOKED: &str = "key.revoked";
/// Binding that sees every tenant's key revocations.
pub const KEY_REVOKED_BINDING: &str = "tenant.*.key.revoked";

/// Payload of a [`KEY_REVOKED`] event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyRevoked {
    pub key_id: Uuid,
}

impl KeyRevoked {
    /// The revoked key of a tenant event, if `routing_key` is a [`KEY_REVOKED`] event.
    pub fn from_event(routing_key: &str, payload: &[u8]) -> Option<Uuid> {
        let (_, kind) = parse_tenant_event_key(routing_key)?;
        Self::from_kind(kind, payload)
    }

    /// [`Self::from_event`] for an event whose routing key was already split.
    pub fn from_kind(kind: &str, payload: &[u8]) -> Option<Uuid> {
        if kind != KEY_REVOKED {
            return None;
        }
        serde_json::from_slice::<KeyRevoked>(payload)
            .ok()
            .map(|k| k.key_id)
    }
}

const JOBS_EXCHANGE: &str = "labwright.builds";
const JOBS_QUEUE: &str = "labwright.builds";
const DEAD_EXCHANGE: &str = "labwright.builds.dead";
const DEAD_QUEUE: &str = "labwright.builds.dead";
const SESSIONS_EXCHANGE: &str = "labwright.sessions";
const UPDATES_QUEUE: &str = "labwright.build-updates";

/// Every exchange and queue name of one installation: the repo-sandbox names prefixed with its
/// namespace (`""` by default; tests run side by side on one broker with their own), and the
/// events exchange as configured. Routing keys and bindings are never prefixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Topic exchange of every tenant event (and of build updates).
    pub events_exchange: String,
    /// Direct exchange of build jobs.
    pub jobs_exchange: String,
    /// Quorum queue of build jobs, consumed by every worker.
    pub jobs_queue: String,
    /// Fanout exchange of jobs that failed repeatedly.
    pub dead_exchange: String,
    pub dead_queue: String,
    /// Fanout exchange of session control; each worker binds a queue of its own.
    pub sessions_exchange: String,
    /// Durable queue on the events exchange where the api-server collects build updates.
    pub updates_queue: String,
}

impl Names {
    pub fn new(namespace: &str, events_exchange: &str) -> Self {
        let n = |name: &str| format!("{namespace}{name}");
        Self {
            events_exchange: events_exchange.to_string(),
            jobs_exchange: n(JOBS_EXCHANGE),
            jobs_queue: n(JOBS_QUEUE),
            dead_exchange: n(DEAD_EXCHANGE),
            dead_queue: n(DEAD_QUEUE),
            sessions_exchange: n(SESSIONS_EXCHANGE),
            updates_queue: n(UPDATES_QUEUE),
        }
    }
}

/// Routing key of a tenant event on the events exchange: `tenant.<id>.<kind>`, so consumers can
/// bind per tenant or across tenants.
pub fn tenant_event_key(tenant: Uuid, kind: &str) -> String {
    format!("tenant.{tenant}.{kind}")
}

/// Routing key of a build update (matched by [`UPDATES_BINDING`]).
pub fn build_update_key(tenant: Uuid) -> String {
    tenant_event_key(tenant, "builds.update")
}

/// The tenant and kind (`fleet.device.status`, `execution.step`, ...) of a tenant event's
/// routing key; `None` for any other key.
pub fn parse_tenant_event_key(key: &str) -> Option<(Uuid, &str)> {
    let (tenant, kind) = key.strip_prefix("tenant.")?.split_once('.')?;
    Some((Uuid::parse_str(tenant).ok()?, kind))
}

/// A broker call that failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("broker call timed out")]
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_keys_are_not() {
        let n = Names::new("t1.", "t1.events");
        assert_eq!(n.jobs_exchange, "t1.labwright.builds");
        assert_eq!(n.jobs_queue, "t1.labwright.builds");
        assert_eq!(n.dead_exchange, "t1.labwright.builds.dead");
        assert_eq!(n.dead_queue, "t1.labwright.builds.dead");
        assert_eq!(n.sessions_exchange, "t1.labwright.sessions");
        assert_eq!(n.updates_queue, "t1.labwright.build-updates");
        assert_eq!(n.events_exchange, "t1.events");
        let d = Names::new("", "labwright.events");
        assert_eq!(d.jobs_queue, "labwright.builds");
        assert_eq!(d.events_exchange, "labwright.events");
    }

    #[test]
    fn routing_keys_name_the_tenant_and_kind() {
        let t = Uuid::new_v4();
        assert_eq!(build_update_key(t), format!("tenant.{t}.builds.update"));
        let key = tenant_event_key(t, "fleet.device.status");
        assert_eq!(
            parse_tenant_event_key(&key),
            Some((t, "fleet.device.status"))
        );
        assert_eq!(parse_tenant_event_key("labwright.builds"), None);
        assert_eq!(parse_tenant_event_key("tenant.nope.x"), None);
        assert_eq!(parse_tenant_event_key(&format!("tenant.{t}")), None);
    }
}
