//! Tenants and API keys (including host enrollment tokens, which are keys with the `host` role).

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable,
    SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use labwright_core::ids::{ApiKeyId, TenantId};
use labwright_wire::bus;
use uuid::Uuid;

use crate::db::{
    DbError, outbox,
    schema::{api_keys, tenants},
};

/// Tenants and keys: the queries, each on a pooled connection.
#[derive(Clone)]
pub struct KeyStore(crate::db::Store);

impl KeyStore {
    pub fn new(pool: crate::db::Pool) -> Self {
        Self(crate::db::Store::new(pool))
    }

    pub async fn create_tenant(&self, name: &str) -> Result<TenantId, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let id = TenantId::new();
        diesel::insert_into(tenants::table)
            .values((tenants::id.eq(id.0), tenants::name.eq(name)))
            .execute(conn)
            .await?;
        Ok(id)
    }

    pub async fn tenant_name(&self, id: TenantId) -> Result<String, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(tenants::table
            .find(id.0)
            .select(tenants::name)
            .first(conn)
            .await?)
    }

    pub async fn count_tenants(&self) -> Result<i64, DbError> {
        count_tenants(&mut *self.0.conn().await?).await
    }

    pub async fn insert(&self, k: NewKey<'_>) -> Result<(), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(k.id.0),
                api_keys::tenant_id.eq(k.tenant.0),
                api_keys::name.eq(k.name),
                api_keys::role.eq(k.role),
                api_keys::prefix.eq(k.prefix),
                api_keys::key_hash.eq(k.key_hash),
                api_keys::host_name.eq(k.host_name),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// The unrevoked key with this hash, if any.
    pub async fn active_by_hash(&self, key_hash: &str) -> Result<Option<KeyRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(api_keys::table
            .filter(api_keys::key_hash.eq(key_hash))
            .filter(api_keys::revoked_at.is_null())
            .select(KeyRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }

    /// Records use, at most once a minute per key, to keep writes off the hot path.
    pub async fn touch(&self, id: Uuid) -> Result<(), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let now = Utc::now();
        diesel::update(
            api_keys::table.find(id).filter(
                api_keys::last_used_at
                    .is_null()
                    .or(api_keys::last_used_at.lt(now - chrono::Duration::minutes(1))),
            ),
        )
        .set(api_keys::last_used_at.eq(now))
        .execute(conn)
        .await?;
        Ok(())
    }

    pub async fn list(&self, tenant: TenantId) -> Result<Vec<KeyRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(api_keys::table
            .filter(api_keys::tenant_id.eq(tenant.0))
            .order(api_keys::created_at.asc())
            .select(KeyRow::as_select())
            .load(conn)
            .await?)
    }

    /// Binds an unbound host token to `host_name` and returns the name the token is bound to (the
    /// given one, or the one it was bound to before). Fails with a unique violation when another
    /// active token of the tenant is bound to that name.
    pub async fn bind_host(
        &self,
        id: ApiKeyId,
        host_name: &str,
    ) -> Result<Option<String>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        diesel::update(
            api_keys::table
                .find(id.0)
                .filter(api_keys::host_name.is_null()),
        )
        .set(api_keys::host_name.eq(host_name))
        .execute(conn)
        .await?;
        Ok(api_keys::table
            .find(id.0)
            .filter(api_keys::revoked_at.is_null())
            .select(api_keys::host_name)
            .first::<Option<String>>(conn)
            .await
            .optional()?
            .flatten())
    }

    /// Revokes a key of the tenant and queues its `key.revoked` event in the same transaction.
    /// Returns false when no such key exists in the tenant.
    pub async fn revoke(&self, tenant: TenantId, id: ApiKeyId) -> Result<bool, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            let found: Option<Uuid> = api_keys::table
                .filter(api_keys::tenant_id.eq(tenant.0))
                .filter(api_keys::id.eq(id.0))
                .select(api_keys::id)
                .first(conn)
                .await
                .optional()?;
            if found.is_none() {
                return Ok(false);
            }
            let changed = diesel::update(
                api_keys::table
                    .find(id.0)
                    .filter(api_keys::revoked_at.is_null()),
            )
            .set(api_keys::revoked_at.eq(Utc::now()))
            .execute(conn)
            .await?;
            if changed > 0 {
                let payload =
                    serde_json::to_value(bus::KeyRevoked { key_id: id.0 }).map_err(|e| {
                        DbError::Query(diesel::result::Error::SerializationError(Box::new(e)))
                    })?;
                outbox::push(conn, tenant, bus::KEY_REVOKED, payload).await?;
            }
            Ok(true)
        })
        .await
    }

    /// Keys revoked since `since` (to catch up on revocations a lagging event reader missed).
    pub async fn revoked_since(&self, since: DateTime<Utc>) -> Result<Vec<ApiKeyId>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(api_keys::table
            .filter(api_keys::revoked_at.ge(since))
            .select(api_keys::id)
            .load::<Uuid>(conn)
            .await?
            .into_iter()
            .map(ApiKeyId)
            .collect())
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct KeyRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Host enrollment tokens: the host name the token is bound to.
    pub host_name: Option<String>,
}

pub struct NewKey<'a> {
    pub id: ApiKeyId,
    pub tenant: TenantId,
    pub name: &'a str,
    pub role: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a str,
    pub host_name: Option<&'a str>,
}

pub async fn tenant_by_name(
    conn: &mut AsyncPgConnection,
    name: &str,
) -> Result<Option<TenantId>, DbError> {
    Ok(tenants::table
        .filter(tenants::name.eq(name))
        .select(tenants::id)
        .first::<Uuid>(conn)
        .await
        .optional()?
        .map(TenantId))
}

pub async fn count_tenants(conn: &mut AsyncPgConnection) -> Result<i64, DbError> {
    Ok(tenants::table.count().get_result(conn).await?)
}
