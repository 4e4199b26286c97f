//! `/api/v1/keys` (admin only) and `/api/v1/whoami`.

use actix_web::{HttpResponse, delete, get, post, web};
use labwright_core::{
    auth::{Permission, Role},
    ids::ApiKeyId,
};
pub use labwright_wire::rest::keys::{CreateKey, CreatedKey, KeyView, WhoAmI};
use uuid::Uuid;

use super::AppState;
use crate::{
    auth::{self, Caller},
    db::{self, keys},
    error::ApiError,
};

/// The caller's tenant, key and role.
#[utoipa::path(get, path = "/api/v1/whoami", responses((status = 200, body = WhoAmI), (status = 401, body = crate::error::ErrorBody)))]
#[get("/whoami")]
pub async fn whoami(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<WhoAmI>, ApiError> {
    let mut conn = db::conn(&state.pool).await?;
    let tenant_name = keys::tenant_name(&mut conn, caller.tenant).await?;
    Ok(web::Json(WhoAmI {
        tenant_id: caller.tenant.0,
        tenant_name,
        key_id: caller.key_id.0,
        key_name: caller.key_name,
        role: caller.role.to_string(),
    }))
}

impl From<keys::KeyRow> for KeyView {
    fn from(k: keys::KeyRow) -> Self {
        Self {
            id: k.id,
            name: k.name,
            role: k.role,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// Every key of the tenant, revoked ones included.
#[utoipa::path(get, path = "/api/v1/keys", responses((status = 200, body = Vec<KeyView>), (status = 403, body = crate::error::ErrorBody)))]
#[get("/keys")]
pub async fn list_keys(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Vec<KeyView>>, ApiError> {
    caller.require(Permission::ManageKeys)?;
    let mut conn = db::conn(&state.pool).await?;
    Ok(web::Json(
        keys::list(&mut conn, caller.tenant)
            .await?
            .into_iter()
            .map(KeyView::from)
            .collect(),
    ))
}

/// Creates a key (or host enrollment token). The secret is returned once.
#[utoipa::path(post, path = "/api/v1/keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
#[post("/keys")]
pub async fn create_key(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageKeys)?;
    let role: Role = body.role.parse()?;
    let (id, generated) =
        auth::create_key(&state.pool, caller.tenant, body.name.trim(), role).await?;
    tracing::info!(key_id = %id, role = %role, by = %caller.key_id, "api key created");
    let mut conn = db::conn(&state.pool).await?;
    let row = keys::list(&mut conn, caller.tenant)
        .await?
        .into_iter()
        .find(|k| k.id == id.0)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("created key vanished")))?;
    Ok(HttpResponse::Created().json(CreatedKey {
        key: row.into(),
        secret: generated.secret,
    }))
}

/// Revokes a key. Revoked keys stop working at once; hosts using a revoked enrollment token are
/// refused on their next connect.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[delete("/keys/{id}")]
pub async fn revoke_key(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageKeys)?;
    let id = ApiKeyId(id.into_inner());
    if id == caller.key_id {
        return Err(ApiError::Conflict("a key cannot revoke itself".into()));
    }
    let mut conn = db::conn(&state.pool).await?;
    if !keys::revoke(&mut conn, caller.tenant, id).await? {
        return Err(ApiError::NotFound(format!("key {id}")));
    }
    tracing::info!(key_id = %id, by = %caller.key_id, "api key revoked");
    Ok(HttpResponse::NoContent().finish())
}
