//! The transactional outbox: events are inserted in the same transaction as the change they
//! describe, then published to RabbitMQ and deleted only once the broker has confirmed them.
//! Other messages that must leave with a change (build jobs, session control) go the same way,
//! each row naming its own exchange (`''` is the events exchange).

use diesel::{ExpressionMethods, QueryableByName, sql_types};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use labwright_core::ids::TenantId;
use uuid::Uuid;

use super::{DbError, schema::outbox_events};

/// Queues an event. `kind` is the routing-key suffix (e.g. `fleet.host.online`); the full routing
/// key is `tenant.<tenant id>.<kind>` so consumers can bind per tenant or across tenants.
pub async fn push(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    kind: &str,
    payload: serde_json::Value,
) -> Result<(), DbError> {
    diesel::insert_into(outbox_events::table)
        .values((
            outbox_events::tenant_id.eq(tenant.0),
            outbox_events::routing_key.eq(labwright_wire::bus::tenant_event_key(tenant.0, kind)),
            outbox_events::payload.eq(payload),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Queues a message for `exchange` (never `''`) with `routing_key` verbatim: build jobs and
/// session control, which are not tenant events.
pub async fn push_to(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    exchange: &str,
    routing_key: &str,
    payload: serde_json::Value,
) -> Result<(), DbError> {
    debug_assert!(!exchange.is_empty(), "'' is the events exchange: use push");
    diesel::insert_into(outbox_events::table)
        .values((
            outbox_events::tenant_id.eq(tenant.0),
            outbox_events::exchange.eq(exchange),
            outbox_events::routing_key.eq(routing_key),
            outbox_events::payload.eq(payload),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, QueryableByName)]
pub struct OutboxEvent {
    #[diesel(sql_type = sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = sql_types::Uuid)]
    pub tenant_id: Uuid,
    /// `''`: the events exchange.
    #[diesel(sql_type = sql_types::Text)]
    pub exchange: String,
    #[diesel(sql_type = sql_types::Text)]
    pub routing_key: String,
    #[diesel(sql_type = sql_types::Jsonb)]
    pub payload: serde_json::Value,
}

/// Deletes and returns the oldest `limit` events not locked by another replica. Call inside a
/// transaction and commit only after the broker confirmed them: a rollback puts them back.
pub async fn claim(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<OutboxEvent>, DbError> {
    Ok(super::statement::Statement::new(
        "DELETE FROM outbox_events WHERE id IN \
           (SELECT id FROM outbox_events ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, tenant_id, exchange, routing_key, payload",
    )
    .bind::<sql_types::BigInt, _>(limit)
    .load(conn)
    .await?)
}

pub async fn pending(conn: &mut AsyncPgConnection) -> Result<i64, DbError> {
    use diesel::QueryDsl;
    Ok(outbox_events::table.count().get_result(conn).await?)
}
