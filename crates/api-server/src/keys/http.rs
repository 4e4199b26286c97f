//! The HTTP side of keys: the [`Caller`] extractor (a bearer key in `Authorization`, or as a
//! WebSocket subprotocol), `/api/v1/keys` (admin only) and `/api/v1/whoami`.

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, dev::Payload, get, post, web};
use labwright_core::{
    auth::{Permission, Role},
    ids::ApiKeyId,
};
pub use labwright_wire::rest::keys::{CreateKey, CreatedKey, KeyView, WhoAmI};
use uuid::Uuid;

use crate::{
    error::ApiError,
    keys::{Caller, Keys, bearer},
};

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
        let auth = req.app_data::<web::Data<Keys>>().cloned();
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| websocket_bearer(req).map(|t| format!("Bearer {t}")));
        Box::pin(async move {
            let auth =
                auth.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("app state missing")))?;
            let token = bearer(header.as_deref())?;
            let caller = auth.authenticate(token).await?;
            if caller.role == Role::Host {
                return Err(ApiError::Forbidden(
                    "host enrollment tokens may only open the host link".into(),
                ));
            }
            Ok(caller)
        })
    }
}

/// The caller's tenant, key and role.
#[utoipa::path(get, path = "/api/v1/whoami", responses((status = 200, body = WhoAmI), (status = 401, body = crate::error::ErrorBody)))]
#[get("/whoami")]
pub async fn whoami(keys: web::Data<Keys>, caller: Caller) -> Result<web::Json<WhoAmI>, ApiError> {
    Ok(web::Json(keys.whoami(&caller).await?))
}

/// Every key of the tenant, revoked ones included.
#[utoipa::path(get, path = "/api/v1/keys", responses((status = 200, body = Vec<KeyView>), (status = 403, body = crate::error::ErrorBody)))]
#[get("/keys")]
pub async fn list_keys(
    keys: web::Data<Keys>,
    caller: Caller,
) -> Result<web::Json<Vec<KeyView>>, ApiError> {
    caller.require(Permission::ManageKeys)?;
    Ok(web::Json(keys.list(caller.tenant).await?))
}

/// Creates a key (or host enrollment token). The secret is returned once.
#[utoipa::path(post, path = "/api/v1/keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
#[post("/keys")]
pub async fn create_key(
    keys: web::Data<Keys>,
    caller: Caller,
    body: web::Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageKeys)?;
    let role: Role = body.role.parse()?;
    let created = keys.create(&caller, body.name.trim(), role).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Revokes a key. Revoked keys stop working at once; hosts using a revoked enrollment token are
/// refused on their next connect.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[delete("/keys/{id}")]
pub async fn revoke_key(
    keys: web::Data<Keys>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageKeys)?;
    keys.revoke(&caller, ApiKeyId(id.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}
