//! Authentication and authorization. API keys (people, CI) and host enrollment tokens are the same
//! thing with different roles: `lw_` followed by 64 hex digits (256 random bits). Only their
//! SHA-256 is stored; the key itself is shown once, at creation, and never logged.
//!
//! This module: key generation and hashing, the [`Keys`] service (resolving a key to its [`Caller`]
//! throttled per address (`throttle`), host token binding, creating keys and tenants, revoking
//! with an immediate cut-off (`revocations`)). [`http`]: the `Caller` extractor, the
//! `authenticate_first` middleware and the `/api/v1/keys` handlers. `bootstrap`: the
//! first start and the secret files.

mod bootstrap;
pub mod db;
pub mod http;
mod revocations;
mod throttle;

pub use bootstrap::{bootstrap, terminal_key};
pub use http::WEBSOCKET_PROTOCOL;
pub use revocations::Revocations;
pub use throttle::Throttle;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use labwright_core::{
    auth::{Permission, Role},
    fleet::MAX_HOST_NAME_LEN,
    ids::{ApiKeyId, TenantId},
    validate,
};
use sha2::{Digest, Sha256};

use labwright_wire::rest::keys::{CreatedKey, KeyView, WhoAmI};

use self::db::{self as keys, KeyStore};
use crate::{error::ApiError, events::Broker};

const KEY_PREFIX: &str = "lw_";
const KEY_HEX_LEN: usize = 64;

/// Who is calling: resolved from a valid, unrevoked key.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: ApiKeyId,
    pub key_name: String,
    pub tenant: TenantId,
    pub role: Role,
    /// Cancelled when the key is revoked (on any replica): what the caller keeps open (a
    /// WebSocket, a host link) ends on it.
    pub revoked: CancellationToken,
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
    revocations: Arc<Revocations>,
    throttle: Arc<Throttle>,
    /// Woken after a revocation is stored, to publish its `key.revoked` event.
    broker: Arc<Broker>,
}

impl Keys {
    pub fn new(store: KeyStore, throttle: Throttle, broker: Arc<Broker>) -> Self {
        Self {
            store,
            revocations: Arc::new(Revocations::default()),
            throttle: Arc::new(throttle),
            broker,
        }
    }

    /// Resolves a presented key to its caller, throttled per `source` address (see
    /// [`throttle`]): a blocked address gets `rate_limited` without any lookup.
    pub async fn authenticate(
        &self,
        token: &str,
        source: Option<std::net::IpAddr>,
    ) -> Result<Caller, ApiError> {
        let now = std::time::Instant::now();
        if let Some(addr) = source
            && let Some(wait) = self.throttle.blocked(addr, now)
        {
            return Err(ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let result = self.resolve(token).await;
        if let Some(addr) = source {
            match &result {
                Ok(_) => self.throttle.succeeded(addr),
                Err(ApiError::Unauthenticated) => self.throttle.failed(addr, now),
                Err(_) => {}
            }
        }
        result
    }

    /// Resolves a presented key to its caller. Failures are logged without the secret.
    async fn resolve(&self, token: &str) -> Result<Caller, ApiError> {
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
        let key_id = ApiKeyId(row.id);
        Ok(Caller {
            key_id,
            key_name: row.name,
            tenant: TenantId(row.tenant_id),
            role,
            revoked: self.revocations.watch(key_id),
        })
    }

    /// Binds a host enrollment token to the host name of its hello: a token not bound yet is
    /// bound to this name now (trust on first use); a token bound to another name is refused,
    /// and so is a name another active token of the tenant is bound to. Keeps one token from
    /// speaking as (and taking over the runs and reports of) a host enrolled with another.
    pub async fn bind_host(&self, caller: &Caller, host_name: &str) -> Result<(), ApiError> {
        let bound = self
            .store
            .bind_host(caller.key_id, host_name)
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    ApiError::Forbidden(format!(
                        "host {host_name:?} is enrolled with another token of this tenant; \
                         use that token, or revoke it first"
                    ))
                } else {
                    e.into()
                }
            })?;
        match bound {
            Some(name) if name == host_name => Ok(()),
            Some(name) => {
                tracing::warn!(key_id = %caller.key_id, bound = %name, presented = %host_name, "host token used for another host");
                Err(ApiError::Forbidden(format!(
                    "this enrollment token is bound to host {name:?}, not {host_name:?}; \
                     create a token for {host_name:?}"
                )))
            }
            None => Err(ApiError::Unauthenticated),
        }
    }

    /// Marks keys revoked since `since` (after the event reader fell behind and may have missed
    /// some).
    pub async fn catch_up(&self, since: chrono::DateTime<chrono::Utc>) -> Result<(), ApiError> {
        for key in self.store.revoked_since(since).await? {
            self.revocations.revoked(key);
        }
        Ok(())
    }

    /// A key revoked on another replica (its `key.revoked` event): cut off here too.
    pub fn revoked_elsewhere(&self, key: ApiKeyId) {
        self.revocations.revoked(key);
    }

    /// Creates a key in the tenant and returns its row id and secret. `host_name` binds a host
    /// enrollment token to one host at once (refused for other roles).
    pub async fn create_key(
        &self,
        tenant: TenantId,
        name: &str,
        role: Role,
        host_name: Option<&str>,
    ) -> Result<(ApiKeyId, GeneratedKey), ApiError> {
        validate::label("name", name, 100)?;
        if let Some(host_name) = host_name {
            if role != Role::Host {
                return Err(ApiError::InvalidArgument(
                    "host_name: only host enrollment tokens are bound to a host".into(),
                ));
            }
            validate::slug("host_name", host_name, MAX_HOST_NAME_LEN)?;
        }
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
                host_name,
            })
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    host_taken(host_name.unwrap_or_default())
                } else {
                    e.into()
                }
            })?;
        Ok((id, key))
    }

    /// Creates a key for the API: its view and its secret (shown once).
    pub async fn create(
        &self,
        caller: &Caller,
        name: &str,
        role: Role,
        host_name: Option<&str>,
    ) -> Result<CreatedKey, ApiError> {
        let (id, generated) = self
            .create_key(caller.tenant, name, role, host_name)
            .await?;
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

    /// Revokes a key of the tenant (never the caller's own): stored with its `key.revoked` event
    /// (which reaches the other replicas and the terminal gateways), and cut off on this replica
    /// at once.
    pub async fn revoke(&self, caller: &Caller, id: ApiKeyId) -> Result<(), ApiError> {
        if id == caller.key_id {
            return Err(ApiError::Conflict("a key cannot revoke itself".into()));
        }
        if !self.store.revoke(caller.tenant, id).await? {
            return Err(ApiError::NotFound(format!("key {id}")));
        }
        self.broker.wake();
        self.revocations.revoked(id);
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
            .create_key(tenant, "admin (created with the tenant)", Role::Admin, None)
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
        host_name: k.host_name,
    }
}

fn host_taken(host_name: &str) -> ApiError {
    ApiError::Conflict(format!(
        "host {host_name:?} is enrolled with another active token; revoke that token first"
    ))
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
