//! The HTTP side of keys: the [`Caller`] extractor (a bearer key in `Authorization`, or as a
//! WebSocket subprotocol), `/api/v1/keys` (admin only) and `/api/v1/whoami`.

use std::{future::Future, pin::Pin};

use actix_web::{
    FromRequest, HttpMessage, HttpRequest, HttpResponse,
    body::MessageBody,
    delete,
    dev::{Payload, ServiceRequest, ServiceResponse},
    get,
    middleware::Next,
    post, web,
};
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

impl Caller {
    /// Authenticates the request's key (a bearer header, or a WebSocket subprotocol). Host
    /// enrollment tokens are refused: they only open the host link.
    async fn resolve(req: HttpRequest) -> Result<Caller, ApiError> {
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| websocket_bearer(&req).map(|t| format!("Bearer {t}")));
        let token = bearer(header.as_deref())?;
        let auth = req
            .app_data::<web::Data<Keys>>()
            .cloned()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("app state missing")))?;
        let source = req.peer_addr().map(|a| a.ip());
        let caller = auth.authenticate(token, source).await?;
        if caller.role == Role::Host {
            return Err(ApiError::Forbidden(
                "host enrollment tokens may only open the host link".into(),
            ));
        }
        Ok(caller)
    }
}

/// Routes under `/api/v1` that answer without a key.
const PUBLIC: &[&str] = &["/api/v1/openapi.json"];

/// Middleware of the `/api/v1` scope: authenticates every request before anything else looks at
/// it (path, query or body extractors), so a request without a valid key gets 401 whatever else
/// is wrong with it. The [`Caller`] is left in the request's extensions for the handler.
pub async fn authenticate_first(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !PUBLIC.contains(&req.path()) {
        let caller = Caller::resolve(req.request().clone()).await?;
        req.extensions_mut().insert(caller);
    }
    // PostgreSQL text cannot hold NUL: refused here, with a code, for every path and query
    // parameter (it was a 500 from the database).
    if has_nul(req.uri().path()) || req.uri().query().is_some_and(has_nul) {
        return Err(ApiError::InvalidArgument(
            "the path and query must not contain NUL bytes (%00)".into(),
        )
        .into());
    }
    next.call(req).await
}

/// Whether a raw (percent-encoded) path or query holds a NUL byte.
fn has_nul(raw: &str) -> bool {
    raw.contains('\0')
        || raw
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Resolved by `authenticate_first` already (every route under /api/v1).
        if let Some(caller) = req.extensions().get::<Caller>().cloned() {
            return Box::pin(std::future::ready(Ok(caller)));
        }
        Box::pin(Caller::resolve(req.clone()))
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
    let created = keys
        .create(&caller, body.name.trim(), role, body.host_name.as_deref())
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Revokes a key. Revoked keys stop working at once: their open WebSockets, host links and
/// terminals are closed (on every replica and gateway) and their terminal tickets refused.
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
