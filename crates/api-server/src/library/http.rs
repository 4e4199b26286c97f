//! The test library over REST: test cases (YAML, versioned), navigation trees (YAML or JSON,
//! versioned per device model, with learned edge statistics) and reference images (PNG or JPEG).

use actix_web::{HttpResponse, get, post, put, web};
use labwright_core::{
    auth::Permission,
    nav::NavigationTree,
    testcase::{self, ValidationEnv},
    validate,
};
pub use labwright_wire::rest::library::{ReferenceView, TestCaseView, TreeView, VersionView};
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::{
    artifacts,
    error::ApiError,
    keys::Caller,
    library::{self, db::TestCaseRow},
};

const MAX_TESTCASE_BYTES: usize = 1 << 20;
const MAX_TREE_BYTES: usize = 4 << 20;
const MAX_REFERENCE_BYTES: usize = 8 << 20;

fn text(body: &[u8], max: usize, what: &str) -> Result<String, ApiError> {
    if body.len() > max {
        return Err(ApiError::InvalidArgument(format!(
            "{what} is larger than {} KiB",
            max / 1024
        )));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::InvalidArgument(format!("{what} is not UTF-8 text")))
}

fn parse_error(e: testcase::ParseError) -> ApiError {
    ApiError::InvalidArgument(e.to_string())
}

fn tc_view(r: TestCaseRow, versions: Option<Vec<VersionView>>) -> TestCaseView {
    TestCaseView {
        id: r.id,
        name: r.name,
        version: r.version,
        created_at: r.created_at,
        source: r.source,
        document: r.document,
        versions,
    }
}

/// Saves a test case (YAML body, see `docs/testcase.schema.json`) as a new version of its name.
/// Syntax errors carry line and column; every other problem is listed with its field path.
#[utoipa::path(post, path = "/api/v1/testcases", request_body(content = String, content_type = "application/yaml"),
    responses((status = 201, body = TestCaseView), (status = 400, body = crate::error::ErrorBody)))]
#[post("/testcases")]
pub async fn put_testcase(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let source = text(&body, MAX_TESTCASE_BYTES, "test case")?;
    let tc = testcase::parse(&source).map_err(parse_error)?;
    let mut conn = crate::db::conn(&state.pool).await?;
    // Checked against the model's tree when there is one; everything that depends on a device
    // is checked again when the test case is run.
    let tree = match &tc.device_model {
        Some(model) => library::tree_with_stats(&mut conn, caller.tenant, model)
            .await?
            .map(|(t, _)| t),
        None => None,
    };
    let env = ValidationEnv {
        nav: tree.as_ref(),
        nav_pending: tree.is_none(),
        ..ValidationEnv::default()
    };
    tc.validate(&env).map_err(library::invalid)?;
    let document = serde_json::to_value(&tc).map_err(|e| ApiError::Internal(e.into()))?;
    let row = crate::library::db::add_testcase(
        &mut conn,
        caller.tenant,
        &tc.name,
        &source,
        document,
        caller.key_id.0,
    )
    .await?;
    tracing::info!(testcase = %row.name, version = row.version, "test case saved");
    Ok(HttpResponse::Created().json(tc_view(row, None)))
}

/// The latest version of every test case.
#[utoipa::path(get, path = "/api/v1/testcases", responses((status = 200, body = Vec<TestCaseView>)))]
#[get("/testcases")]
pub async fn list_testcases(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Vec<TestCaseView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let mut conn = crate::db::conn(&state.pool).await?;
    Ok(web::Json(
        crate::library::db::list_testcases(&mut conn, caller.tenant)
            .await?
            .into_iter()
            .map(|r| tc_view(r, None))
            .collect(),
    ))
}

/// The latest version of a test case, with the list of its versions.
#[utoipa::path(get, path = "/api/v1/testcases/{name}", params(("name" = String, Path)), responses((status = 200, body = TestCaseView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/testcases/{name}")]
pub async fn get_testcase(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
) -> Result<web::Json<TestCaseView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let mut conn = crate::db::conn(&state.pool).await?;
    let row = crate::library::db::get_testcase(&mut conn, caller.tenant, &name, None)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("test case {name:?}")))?;
    let versions = crate::library::db::testcase_versions(&mut conn, caller.tenant, &name)
        .await?
        .into_iter()
        .map(|(version, created_at)| VersionView {
            version,
            created_at,
        })
        .collect();
    Ok(web::Json(tc_view(row, Some(versions))))
}

/// One version of a test case.
#[utoipa::path(get, path = "/api/v1/testcases/{name}/versions/{version}", params(("name" = String, Path), ("version" = i32, Path)), responses((status = 200, body = TestCaseView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/testcases/{name}/versions/{version}")]
pub async fn get_testcase_version(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, i32)>,
) -> Result<web::Json<TestCaseView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let (name, version) = path.into_inner();
    let mut conn = crate::db::conn(&state.pool).await?;
    let row = crate::library::db::get_testcase(&mut conn, caller.tenant, &name, Some(version))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("test case {name:?} version {version}")))?;
    Ok(web::Json(tc_view(row, None)))
}

/// Saves a navigation tree (YAML or JSON, see `docs/navigation-trees.md`) for a device model as a
/// new version. Its reference images must have been uploaded first.
#[utoipa::path(put, path = "/api/v1/navigation-trees/{model}", params(("model" = String, Path)), request_body(content = String, content_type = "application/yaml"),
    responses((status = 201, body = TreeView), (status = 400, body = crate::error::ErrorBody)))]
#[put("/navigation-trees/{model}")]
pub async fn put_tree(
    state: web::Data<AppState>,
    caller: Caller,
    model: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    validate::slug("model", &model, labwright_core::fleet::MAX_MODEL_LEN)?;
    let source = text(&body, MAX_TREE_BYTES, "navigation tree")?;
    let mut tree = NavigationTree::from_yaml(&source).map_err(parse_error)?;
    if tree.model != *model {
        return Err(ApiError::InvalidArgument(format!(
            "model: the tree is for {:?}, the URL says {:?}",
            tree.model,
            model.as_str()
        )));
    }
    tree.validate().map_err(library::invalid)?;
    // Statistics are learned by the server, never uploaded.
    tree.stats.clear();
    let mut conn = crate::db::conn(&state.pool).await?;
    let names = library::tree_references(&tree);
    let present = crate::library::db::references_named(&mut conn, caller.tenant, &names).await?;
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !present.iter().any(|r| &r.name == *n))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::InvalidArgument(format!(
            "reference images not uploaded yet: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let document = serde_json::to_value(&tree).map_err(|e| ApiError::Internal(e.into()))?;
    let row =
        crate::library::db::add_tree(&mut conn, caller.tenant, &model, document, caller.key_id.0)
            .await?;
    tracing::info!(model = %row.model, version = row.version, "navigation tree saved");
    Ok(HttpResponse::Created().json(TreeView {
        model: row.model,
        version: row.version,
        created_at: row.created_at,
        document: row.document,
    }))
}

/// The latest tree of every device model.
#[utoipa::path(get, path = "/api/v1/navigation-trees", responses((status = 200, body = Vec<TreeView>)))]
#[get("/navigation-trees")]
pub async fn list_trees(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Vec<TreeView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let mut conn = crate::db::conn(&state.pool).await?;
    let rows = crate::library::db::list_trees(&mut conn, caller.tenant).await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|r| TreeView {
                model: r.model,
                version: r.version,
                created_at: r.created_at,
                document: r.document,
            })
            .collect(),
    ))
}

/// The latest tree of a model, with learned edge statistics.
#[utoipa::path(get, path = "/api/v1/navigation-trees/{model}", params(("model" = String, Path)), responses((status = 200, body = TreeView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/navigation-trees/{model}")]
pub async fn get_tree(
    state: web::Data<AppState>,
    caller: Caller,
    model: web::Path<String>,
) -> Result<web::Json<TreeView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let mut conn = crate::db::conn(&state.pool).await?;
    let row = crate::library::db::latest_tree(&mut conn, caller.tenant, &model)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("navigation tree for {model:?}")))?;
    let (tree, _) = library::tree_with_stats(&mut conn, caller.tenant, &model)
        .await?
        .ok_or_else(|| ApiError::NotFound("tree".into()))?;
    Ok(web::Json(TreeView {
        model: row.model,
        version: row.version,
        created_at: row.created_at,
        document: serde_json::to_value(tree).unwrap_or_default(),
    }))
}

fn ref_view(r: crate::library::db::ReferenceRow) -> ReferenceView {
    ReferenceView {
        url: format!("/api/v1/references/{}", r.name),
        name: r.name,
        width: r.width,
        height: r.height,
        sha256: r.sha256,
        created_at: r.created_at,
    }
}

/// Uploads (or replaces) a reference image: the body is a PNG or JPEG.
#[utoipa::path(put, path = "/api/v1/references/{name}", params(("name" = String, Path)), request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 201, body = ReferenceView), (status = 400, body = crate::error::ErrorBody)))]
#[put("/references/{name}")]
pub async fn put_reference(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    validate::slug("name", &name, 128)?;
    if body.len() > MAX_REFERENCE_BYTES {
        return Err(ApiError::InvalidArgument(format!(
            "image is larger than {} MiB",
            MAX_REFERENCE_BYTES >> 20
        )));
    }
    let bytes = body.to_vec();
    let decoded = tokio::task::spawn_blocking({
        let bytes = bytes.clone();
        move || labwright_core::image_io::decode_gray(&bytes)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| ApiError::InvalidArgument(format!("image: {e}")))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let key = artifacts::reference_key(caller.tenant.0, &name, &sha);
    state
        .artifacts
        .put(&key, bytes)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut conn = crate::db::conn(&state.pool).await?;
    let row = crate::library::db::put_reference(
        &mut conn,
        caller.tenant,
        &name,
        decoded.width as i32,
        decoded.height as i32,
        &key,
        &sha,
    )
    .await?;
    Ok(HttpResponse::Created().json(ref_view(row)))
}

/// Every reference image of the tenant.
#[utoipa::path(get, path = "/api/v1/references", responses((status = 200, body = Vec<ReferenceView>)))]
#[get("/references")]
pub async fn list_references(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Vec<ReferenceView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let mut conn = crate::db::conn(&state.pool).await?;
    Ok(web::Json(
        crate::library::db::list_references(&mut conn, caller.tenant)
            .await?
            .into_iter()
            .map(ref_view)
            .collect(),
    ))
}

/// The image bytes of a reference, as uploaded.
#[utoipa::path(get, path = "/api/v1/references/{name}", params(("name" = String, Path)), responses((status = 200, content_type = "image/png"), (status = 404, body = crate::error::ErrorBody)))]
#[get("/references/{name}")]
pub async fn get_reference(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let mut conn = crate::db::conn(&state.pool).await?;
    let rows =
        crate::library::db::references_named(&mut conn, caller.tenant, std::slice::from_ref(&name))
            .await?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound(format!("reference {name:?}")))?;
    let bytes = state
        .artifacts
        .get(&row.object_key)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let ct = if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        "image/png"
    } else {
        "image/jpeg"
    };
    Ok(HttpResponse::Ok().content_type(ct).body(bytes))
}
