//! Authentication and authorization. API keys (people, CI) and host enrollment tokens are the same
//! thing with different roles: `lw_` followed by 64 hex digits (256 random bits). Only their
//! SHA-256 is stored; the key itself is shown once, at creation, and never logged.
//!
//! This module: key generation and hashing, resolving a key to its [`Caller`], creating keys and
//! tenants. [`http`]: the `Caller` extractor and the `/api/v1/keys` handlers. `bootstrap`: the
//! first start and the secret files.

mod bootstrap;
pub mod db;
pub mod http;

pub use bootstrap::{bootstrap, terminal_key};
pub use http::WEBSOCKET_PROTOCOL;

use labwright_core::{
    auth::{Permission, Role},
    ids::{ApiKeyId, TenantId},
    validate,
};
use sha2::{Digest, Sha256};

use labwright_wire::rest::keys::{CreatedKey, KeyView, WhoAmI};

use self::db::{self as keys, KeyStore};
use crate::error::ApiError;

const KEY_PREFIX: &str = "lw_";
const KEY_HEX_LEN: usize = 64;

/// Who is calling: resolved from a valid, unrevoked key.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: ApiKeyId,
    pub key_name: String,
    pub tenant: TenantId,
    pub role: Role,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not {}",
                self.role,
                describe(permission)
            )))
        }
    }
}

fn describe(p: Permission) -> &'static str {
    match p {
        Permission::ReadFleet => "read the fleet",
        Permission::ControlDevices => "control devices",
        Permission::ManageKeys => "manage keys",
        Permission::ConnectHost => "connect a host",
        Permission::UseSandboxes => "use repo sandboxes",
    }
}

/// A freshly generated key: the secret (shown once) and what is stored.
pub struct GeneratedKey {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
}

pub fn generate_key() -> GeneratedKey {
    let bytes: [u8; 32] = rand::random();
    let secret = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let prefix = secret[..KEY_PREFIX.len() + 8].to_string();
    let hash = hash_key(&secret);
    GeneratedKey {
        secret,
        prefix,
        hash,
    }
}

pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Rejects anything that cannot be a key without touching the database.
fn well_formed(token: &str) -> bool {
    token.len() == KEY_PREFIX.len() + KEY_HEX_LEN
        && token.starts_with(KEY_PREFIX)
        && token[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

/// Extracts the token from `Authorization: Bearer <token>`.
pub fn bearer(header: Option<&str>) -> Result<&str, ApiError> {
    let value = header.ok_or(ApiError::Unauthenticated)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthenticated)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthenticated);
    }
    Ok(token.trim())
}

/// Keys and tenants: resolving a presented key to its [`Caller`] (what the HTTP extractor and
/// the host link need, not the whole application), creating, listing and revoking keys, and
/// creating tenants.
#[derive(Clone)]
pub struct Keys {
    store: KeyStore,
}

impl Keys {
    pub fn new(store: KeyStore) -> Self {
        Self { store }
    }

    /// Resolves a presented key to its caller. Failures are logged without the secret.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        if !well_formed(token) {
            tracing::warn!(
                reason = "malformed",
                len = token.len(),
                "authentication failed"
            );
            return Err(ApiError::Unauthenticated);
        }
        let Some(row) = self.store.active_by_hash(&hash_key(token)).await? else {
            tracing::warn!(
                reason = "unknown or revoked",
                prefix = &token[..KEY_PREFIX.len() + 8],
                "authentication failed"
            );
            return Err(ApiError::Unauthenticated);
        };
        let role: Role = row
            .role
            .parse()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored role: {e}")))?;
        if let Err(e) = self.store.touch(row.id).await {
            tracing::debug!(error = %e, "could not record key use");
        }
        Ok(Caller {
            key_id: ApiKeyId(row.id),
            key_name: row.name,
            tenant: TenantId(row.tenant_id),
            role,
        })
    }

    /// Creates a key in the tenant and returns its row id and secret.
    pub async fn create_key(
        &self,
        tenant: TenantId,
        name: &str,
        role: Role,
    ) -> Result<(ApiKeyId, GeneratedKey), ApiError> {
        validate::label("name", name, 100)?;
        let key = generate_key();
        let id = ApiKeyId::new();
        self.store
            .insert(keys::NewKey {
                id,
                tenant,
                name,
                role: role.as_str(),
                prefix: &key.prefix,
                key_hash: &key.hash,
            })
            .await?;
        Ok((id, key))
    }

    /// Creates a key for the API: its view and its secret (shown once).
    pub async fn create(
        &self,
        caller: &Caller,
        name: &str,
        role: Role,
    ) -> Result<CreatedKey, ApiError> {
        let (id, generated) = self.create_key(caller.tenant, name, role).await?;
        tracing::info!(key_id = %id, role = %role, by = %caller.key_id, "api key created");
        let row = self
            .store
            .list(caller.tenant)
            .await?
            .into_iter()
            .find(|k| k.id == id.0)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("created key vanished")))?;
        Ok(CreatedKey {
            key: key_view(row),
            secret: generated.secret,
        })
    }

    /// Every key of the tenant, revoked ones included.
    pub async fn list(&self, tenant: TenantId) -> Result<Vec<KeyView>, ApiError> {
        Ok(self
            .store
            .list(tenant)
            .await?
            .into_iter()
            .map(key_view)
            .collect())
    }

    /// Revokes a key of the tenant (never the caller's own).
    pub async fn revoke(&self, caller: &Caller, id: ApiKeyId) -> Result<(), ApiError> {
        if id == caller.key_id {
            return Err(ApiError::Conflict("a key cannot revoke itself".into()));
        }
        if !self.store.revoke(caller.tenant, id).await? {
            return Err(ApiError::NotFound(format!("key {id}")));
        }
        tracing::info!(key_id = %id, by = %caller.key_id, "api key revoked");
        Ok(())
    }

    /// The caller's tenant, key and role.
    pub async fn whoami(&self, caller: &Caller) -> Result<WhoAmI, ApiError> {
        let tenant_name = self.store.tenant_name(caller.tenant).await?;
        Ok(WhoAmI {
            tenant_id: caller.tenant.0,
            tenant_name,
            key_id: caller.key_id.0,
            key_name: caller.key_name.clone(),
            role: caller.role.to_string(),
        })
    }

    /// Creates a tenant with a first admin key (operator command `api-server create-tenant`).
    pub async fn create_tenant(&self, name: &str) -> Result<(TenantId, GeneratedKey), ApiError> {
        validate::slug("name", name, 63)?;
        let tenant = self.store.create_tenant(name).await.map_err(|e| {
            if e.is_unique_violation() {
                ApiError::Conflict(format!("tenant {name:?} already exists"))
            } else {
                e.into()
            }
        })?;
        let (_, key) = self
            .create_key(tenant, "admin (created with the tenant)", Role::Admin)
            .await?;
        Ok((tenant, key))
    }

    /// How many tenants exist (none: the very first start).
    pub async fn tenant_count(&self) -> Result<i64, ApiError> {
        Ok(self.store.count_tenants().await?)
    }
}

fn key_view(k: keys::KeyRow) -> KeyView {
    KeyView {
        id: k.id,
        name: k.name,
        role: k.role,
        prefix: k.prefix,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
        revoked_at: k.revoked_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_unique_and_hashed() {
        let a = generate_key();
        let b = generate_key();
        assert!(well_formed(&a.secret));
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash, hash_key(&a.secret));
        assert_eq!(a.hash.len(), 64);
        assert!(a.secret.starts_with(&a.prefix));
        assert!(!a.hash.contains(&a.secret[3..]));
    }

    #[test]
    fn malformed_tokens_are_rejected_before_any_lookup() {
        assert!(!well_formed(""));
        assert!(!well_formed("lw_123"));
        assert!(!well_formed(&format!("xx_{}", "a".repeat(64))));
        assert!(!well_formed(&format!("lw_{}", "g".repeat(64))));
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")).expect("ok"), "abc");
        assert_eq!(bearer(Some("bearer  abc ")).expect("ok"), "abc");
        assert!(bearer(Some("Basic abc")).is_err());
        assert!(bearer(Some("abc")).is_err());
        assert!(bearer(None).is_err());
    }
}
