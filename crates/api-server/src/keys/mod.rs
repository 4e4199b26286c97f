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

use self::db as keys;
use crate::{db::Pool, error::ApiError};

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

/// Resolves a presented key to its caller. Failures are logged without the secret.
pub async fn authenticate(pool: &Pool, token: &str) -> Result<Caller, ApiError> {
    if !well_formed(token) {
        tracing::warn!(
            reason = "malformed",
            len = token.len(),
            "authentication failed"
        );
        return Err(ApiError::Unauthenticated);
    }
    let mut conn = crate::db::conn(pool).await?;
    let Some(row) = keys::active_by_hash(&mut conn, &hash_key(token)).await? else {
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
    if let Err(e) = keys::touch(&mut conn, row.id).await {
        tracing::debug!(error = %e, "could not record key use");
    }
    Ok(Caller {
        key_id: ApiKeyId(row.id),
        key_name: row.name,
        tenant: TenantId(row.tenant_id),
        role,
    })
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

/// What the HTTP extractor ([`Caller`]'s `FromRequest`, in [`http`]) needs from the app: a way
/// to resolve a key, not the whole application state.
#[derive(Clone)]
pub struct Authenticator {
    pool: Pool,
}

impl Authenticator {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// [`authenticate`] against this authenticator's database.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        authenticate(&self.pool, token).await
    }
}

/// Creates a key in the tenant and returns its row id and secret.
pub async fn create_key(
    pool: &Pool,
    tenant: TenantId,
    name: &str,
    role: Role,
) -> Result<(ApiKeyId, GeneratedKey), ApiError> {
    validate::label("name", name, 100)?;
    let key = generate_key();
    let id = ApiKeyId::new();
    let mut conn = crate::db::conn(pool).await?;
    keys::insert(
        &mut conn,
        keys::NewKey {
            id,
            tenant,
            name,
            role: role.as_str(),
            prefix: &key.prefix,
            key_hash: &key.hash,
        },
    )
    .await?;
    Ok((id, key))
}

/// Creates a tenant with a first admin key (operator command `api-server create-tenant`).
pub async fn create_tenant(pool: &Pool, name: &str) -> Result<(TenantId, GeneratedKey), ApiError> {
    validate::slug("name", name, 63)?;
    let tenant = {
        let mut conn = crate::db::conn(pool).await?;
        keys::create_tenant(&mut conn, name).await.map_err(|e| {
            if e.is_unique_violation() {
                ApiError::Conflict(format!("tenant {name:?} already exists"))
            } else {
                e.into()
            }
        })?
    };
    let (_, key) = create_key(pool, tenant, "admin (created with the tenant)", Role::Admin).await?;
    Ok((tenant, key))
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
