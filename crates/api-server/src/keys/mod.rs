//! Authentication and authorization. API keys (people, CI) and host enrollment tokens are the same
//! thing with different roles: `lw_` followed by 64 hex digits (256 random bits). Only their
//! SHA-256 is stored; the key itself is shown once, at creation, and never logged.

pub mod db;
pub mod http;

use std::{future::Future, path::Path, pin::Pin};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use labwright_core::{
    auth::{Permission, Role},
    ids::{ApiKeyId, TenantId},
    terminal::TicketKey,
    validate,
};
use sha2::{Digest, Sha256};

use self::db as keys;
use crate::{db::Pool, error::ApiError, http::AppState};

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

/// Browsers cannot set headers on a WebSocket: they offer the key as a subprotocol
/// (`new WebSocket(url, ["labwright", "bearer.<key>"])`), and the server answers `labwright`.
/// Only on WebSocket upgrades, never for plain requests.
fn websocket_bearer(req: &HttpRequest) -> Option<String> {
    let upgrade = req.headers().get("upgrade")?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return None;
    }
    req.headers()
        .get_all("sec-websocket-protocol")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("bearer.").map(str::to_owned))
}

/// The subprotocol the server answers WebSocket clients with.
pub const WEBSOCKET_PROTOCOL: &str = "labwright";

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| websocket_bearer(req).map(|t| format!("Bearer {t}")));
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("app state missing")))?;
            let token = bearer(header.as_deref())?;
            let caller = authenticate(&state.pool, token).await?;
            if caller.role == Role::Host {
                return Err(ApiError::Forbidden(
                    "host enrollment tokens may only open the host link".into(),
                ));
            }
            Ok(caller)
        })
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

/// On the very first start (no tenant yet) creates the `default` tenant and an admin key, written to
/// `<data_dir>/admin-key` with mode 0600. The key never appears in logs, only the file's path.
pub async fn bootstrap(pool: &Pool, data_dir: &Path) -> anyhow::Result<()> {
    let count = {
        let mut conn = crate::db::conn(pool).await?;
        keys::count_tenants(&mut conn).await?
    };
    if count > 0 {
        return Ok(());
    }
    let (_, key) = create_tenant(pool, "default")
        .await
        .map_err(|e| anyhow::anyhow!("creating the default tenant: {e}"))?;
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("admin-key");
    write_secret_file(&path, &key.secret, false)?;
    tracing::info!(path = %path.display(), "first start: created tenant \"default\" and its admin key; read it from this file");
    Ok(())
}

/// The key terminal tickets are signed with: `terminal_secret_file`, or
/// `<data_dir>/terminal-secret`, created (mode 0600) if it does not exist yet.
pub fn terminal_key(config: &crate::config::Config) -> anyhow::Result<TicketKey> {
    use anyhow::Context;
    let path = if config.terminal_secret_file.is_empty() {
        config.data_dir.join("terminal-secret")
    } else {
        std::path::PathBuf::from(&config.terminal_secret_file)
    };
    if config.terminal_secret_file.is_empty() && !path.exists() {
        std::fs::create_dir_all(&config.data_dir)?;
        // `create_new`: a replica starting at the same moment keeps the secret the first wrote.
        match write_secret_file(&path, &TicketKey::generate_secret(), true) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created the terminal ticket secret; give it to the terminal gateway")
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }
    let secret = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    TicketKey::from_secret(&secret).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Writes a secret (mode 0600). `fresh`: fail with `AlreadyExists` rather than replace one.
fn write_secret_file(path: &Path, secret: &str, fresh: bool) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .create_new(fresh)
        .truncate(!fresh)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")
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
