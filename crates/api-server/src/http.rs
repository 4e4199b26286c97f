//! The REST API (`/api/v1`), health probes, the OpenAPI document and Swagger UI.

use crate::{
    executions::http as executions,
    fleet::http::{self as fleet, control},
    keys::http as keys,
    library::http as library,
    live::http as live,
    sandboxes::http as sandboxes,
};

use actix_web::{HttpRequest, HttpResponse, Responder, get, web};
pub use labwright_wire::rest::Page;
use serde::Serialize;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{error::ApiError, platform::health};

/// The built web UI (`frontend/dist`), served at `/`.
pub struct Site {
    pub ui_dir: std::path::PathBuf,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Labwright API", description = "Remote test lab: fleet, devices, keys, test runs and repo sandboxes."),
    paths(
        healthz, readyz,
        fleet::list_hosts, fleet::get_host, fleet::ping_host, fleet::list_devices, fleet::get_device,
        keys::whoami, keys::list_keys, keys::create_key, keys::revoke_key,
        control::press, control::screenshot, control::set_faults, control::power, control::reserve, control::keep_reservation, control::release_reservation,
        executions::create_execution, executions::list_executions, executions::get_execution,
        executions::cancel_execution, executions::step_screenshot, executions::execution_console,
        library::put_testcase, library::validate_testcase, library::list_testcases, library::get_testcase, library::get_testcase_version, library::delete_testcase,
        library::put_tree, library::list_trees, library::get_tree, library::delete_tree,
        library::put_reference, library::list_references, library::get_reference,
        sandboxes::create_build, sandboxes::list_builds, sandboxes::get_build, sandboxes::build_logs, sandboxes::cancel_build,
        sandboxes::list_sessions, sandboxes::get_session, sandboxes::delete_session, sandboxes::extend_session, sandboxes::terminal_ticket, sandboxes::session_logs, sandboxes::restart_session,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, crate::error::ErrorCode)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("API key (lw_...)"))
                    .build(),
            ),
        );
    }
}

/// Registers every route on an actix `App`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(8 << 20))
        .app_data(
            web::JsonConfig::default()
                .limit(64 * 1024)
                .error_handler(|err, _| bad_request(err.to_string())),
        )
        .app_data(web::QueryConfig::default().error_handler(|err, _| bad_request(err.to_string())))
        .app_data(web::PathConfig::default().error_handler(|err, _| bad_request(err.to_string())))
        .service(healthz)
        .service(readyz)
        .route("/", web::get().to(ui_index))
        .route("/assets/{name}", web::get().to(ui_asset))
        .service(
            SwaggerUi::new("/swagger-ui/{_:.*}")
                .config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json")),
        )
        .service(
            web::scope("/api/v1")
                // Authentication before any extractor: 401 comes before 400 on every route.
                .wrap(actix_web::middleware::from_fn(keys::authenticate_first))
                .route("/openapi.json", web::get().to(openapi_json))
                .service(fleet::list_hosts)
                .service(fleet::get_host)
                .service(fleet::ping_host)
                .service(fleet::list_devices)
                .service(fleet::get_device)
                .service(keys::whoami)
                .service(keys::list_keys)
                .service(keys::create_key)
                .service(keys::revoke_key)
                .service(control::press)
                .service(control::screenshot)
                .service(control::set_faults)
                .service(control::power)
                .service(control::reserve)
                .service(control::keep_reservation)
                .service(control::release_reservation)
                .service(executions::create_execution)
                .service(executions::list_executions)
                .service(executions::get_execution)
                .service(executions::cancel_execution)
                .service(executions::step_screenshot)
                .service(executions::execution_console)
                .service(library::put_testcase)
                .service(library::validate_testcase)
                .service(library::list_testcases)
                .service(library::get_testcase)
                .service(library::get_testcase_version)
                .service(library::delete_testcase)
                .service(library::put_tree)
                .service(library::list_trees)
                .service(library::get_tree)
                .service(library::delete_tree)
                .service(library::put_reference)
                .service(library::list_references)
                .service(library::get_reference)
                .service(sandboxes::create_build)
                .service(sandboxes::list_builds)
                .service(sandboxes::get_build)
                .service(sandboxes::build_logs)
                .service(sandboxes::cancel_build)
                .service(sandboxes::list_sessions)
                .service(sandboxes::get_session)
                .service(sandboxes::delete_session)
                .service(sandboxes::extend_session)
                .service(sandboxes::terminal_ticket)
                .service(sandboxes::session_logs)
                .service(sandboxes::restart_session)
                .service(live::live)
                .service(live::console)
                .service(live::events),
        )
        .default_service(web::to(not_found));
}

/// How a request appears in the access log: method and path, never the query string (a client
/// may put a key, a ticket or a token there).
pub fn logged_request(req: &actix_web::dev::ServiceRequest) -> String {
    let redacted = if req.query_string().is_empty() {
        ""
    } else {
        "?<redacted>"
    };
    format!("{} {}{redacted}", req.method(), req.path())
}

fn bad_request(message: String) -> actix_web::Error {
    ApiError::InvalidArgument(message).into()
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "route {} {}",
        req.method(),
        req.path()
    )))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", security(), responses((status = 200, body = Health)))]
#[get("/healthz")]
async fn healthz() -> impl Responder {
    web::Json(Health { status: "ok" })
}

#[derive(Serialize, utoipa::ToSchema)]
struct Readiness {
    status: &'static str,
    database: &'static str,
    broker: &'static str,
}

/// PostgreSQL and RabbitMQ are reachable (503 otherwise).
#[utoipa::path(get, path = "/readyz", security(), responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
#[get("/readyz")]
async fn readyz(health: web::Data<health::Health>) -> impl Responder {
    let (db_ok, broker_ok) = health.check().await;
    let body = Readiness {
        status: if db_ok && broker_ok {
            "ready"
        } else {
            "not_ready"
        },
        database: if db_ok { "ok" } else { "unavailable" },
        broker: if broker_ok { "ok" } else { "unavailable" },
    };
    if db_ok && broker_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The web UI's content security policy: its own scripts and styles only, never framed (no
/// clickjacking), WebSockets to this server and the terminal gateway (another origin), images
/// from this server and the blobs the live view draws.
///
/// `'unsafe-eval'` is there for the test case editor's in-browser schema check (Ajv compiles
/// the schema into a function); without it the whole UI fails to start. To drop it, validate
/// in the editor with the server's own rules (issue 16's validate endpoint) or ship Ajv's
/// precompiled ("standalone") validator. Inline and foreign scripts stay forbidden.
pub const UI_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The web UI's page (a single page: navigation is in the URL fragment).
async fn ui_index(site: web::Data<Site>) -> HttpResponse {
    ui_file(&site, "index.html").await
}

/// The web UI's scripts, styles and fonts (content-hashed names: cached for good).
async fn ui_asset(site: web::Data<Site>, name: web::Path<String>) -> HttpResponse {
    let name = name.into_inner();
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return HttpResponse::NotFound().finish();
    }
    ui_file(&site, &format!("assets/{name}")).await
}

async fn ui_file(site: &Site, rel: &str) -> HttpResponse {
    let path = site.ui_dir.join(rel);
    let content_type = match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let cache = if rel == "index.html" {
                "no-cache"
            } else {
                "public, max-age=31536000, immutable"
            };
            HttpResponse::Ok()
                .content_type(content_type)
                .insert_header(("cache-control", cache))
                .insert_header(("x-content-type-options", "nosniff"))
                .insert_header(("content-security-policy", UI_CSP))
                .insert_header(("x-frame-options", "DENY"))
                .insert_header(("referrer-policy", "no-referrer"))
                .body(bytes)
        }
        Err(_) if rel == "index.html" => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("The web UI is not built: run `npm ci && npm run build` in frontend/ (scripts/stack up does)."),
        Err(_) => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test};

    #[actix_web::test]
    async fn the_access_log_never_shows_a_query_string() {
        let req = test::TestRequest::get()
            .uri("/api/v1/hosts?key=lw_0123456789abcdef&x=1")
            .to_srv_request();
        let line = super::logged_request(&req);
        assert_eq!(line, "GET /api/v1/hosts?<redacted>");
        let req = test::TestRequest::get().uri("/healthz").to_srv_request();
        assert_eq!(super::logged_request(&req), "GET /healthz");
    }

    #[actix_web::test]
    async fn openapi_document_and_swagger_ui_are_served() {
        let app = test::init_service(App::new().configure(super::configure)).await;
        for path in ["/api/v1/openapi.json", "/swagger-ui/", "/healthz"] {
            let resp =
                test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            assert_eq!(resp.status(), 200, "{path}");
        }
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/nope").to_request()).await;
        assert_eq!(resp.status(), 404);
        // Under /api/v1 a key comes first, even for a route that does not exist.
        let err = test::try_call_service(
            &app,
            test::TestRequest::get().uri("/api/v1/nope").to_request(),
        )
        .await
        .expect_err("no key");
        assert_eq!(err.error_response().status(), 401);
    }
}
