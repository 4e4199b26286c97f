//! Tenants and API keys (including host enrollment tokens, which are keys with the `host` role).

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable,
    SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use labwright_core::ids::{ApiKeyId, TenantId};
use uuid::Uuid;

use crate::db::{
    DbError,
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
        create_tenant(&mut *self.0.conn().await?, name).await
    }

    pub async fn tenant_name(&self, id: TenantId) -> Result<String, DbError> {
        tenant_name(&mut *self.0.conn().await?, id).await
    }

    pub async fn count_tenants(&self) -> Result<i64, DbError> {
        count_tenants(&mut *self.0.conn().await?).await
    }

    pub async fn insert(&self, k: NewKey<'_>) -> Result<(), DbError> {
        insert(&mut *self.0.conn().await?, k).await
    }

    pub async fn active_by_hash(&self, key_hash: &str) -> Result<Option<KeyRow>, DbError> {
        active_by_hash(&mut *self.0.conn().await?, key_hash).await
    }

    pub async fn touch(&self, id: Uuid) -> Result<(), DbError> {
        touch(&mut *self.0.conn().await?, id).await
    }

    pub async fn list(&self, tenant: TenantId) -> Result<Vec<KeyRow>, DbError> {
        list(&mut *self.0.conn().await?, tenant).await
    }

    pub async fn revoke(&self, tenant: TenantId, id: ApiKeyId) -> Result<bool, DbError> {
        revoke(&mut *self.0.conn().await?, tenant, id).await
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
}

pub struct NewKey<'a> {
    pub id: ApiKeyId,
    pub tenant: TenantId,
    pub name: &'a str,
    pub role: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a str,
}

pub async fn create_tenant(conn: &mut AsyncPgConnection, name: &str) -> Result<TenantId, DbError> {
    let id = TenantId::new();
    diesel::insert_into(tenants::table)
        .values((tenants::id.eq(id.0), tenants::name.eq(name)))
        .execute(conn)
        .await?;
    Ok(id)
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

pub async fn tenant_name(conn: &mut AsyncPgConnection, id: TenantId) -> Result<String, DbError> {
    Ok(tenants::table
        .find(id.0)
        .select(tenants::name)
        .first(conn)
        .await?)
}

pub async fn count_tenants(conn: &mut AsyncPgConnection) -> Result<i64, DbError> {
    Ok(tenants::table.count().get_result(conn).await?)
}

pub async fn insert(conn: &mut AsyncPgConnection, k: NewKey<'_>) -> Result<(), DbError> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(k.id.0),
            api_keys::tenant_id.eq(k.tenant.0),
            api_keys::name.eq(k.name),
            api_keys::role.eq(k.role),
            api_keys::prefix.eq(k.prefix),
            api_keys::key_hash.eq(k.key_hash),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The unrevoked key with this hash, if any.
pub async fn active_by_hash(
    conn: &mut AsyncPgConnection,
    key_hash: &str,
) -> Result<Option<KeyRow>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(key_hash))
        .filter(api_keys::revoked_at.is_null())
        .select(KeyRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Records use, at most once a minute per key, to keep writes off the hot path.
pub async fn touch(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), DbError> {
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

pub async fn list(conn: &mut AsyncPgConnection, tenant: TenantId) -> Result<Vec<KeyRow>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::tenant_id.eq(tenant.0))
        .order(api_keys::created_at.asc())
        .select(KeyRow::as_select())
        .load(conn)
        .await?)
}

/// Revokes a key of the tenant. Returns false when no such key exists in the tenant.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: ApiKeyId,
) -> Result<bool, DbError> {
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
    diesel::update(
        api_keys::table
            .find(id.0)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    Ok(true)
}
