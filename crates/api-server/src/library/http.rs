//! The test library over REST: test cases (YAML, versioned), navigation trees (YAML or JSON,
//! versioned per device model, with learned edge statistics) and reference images (PNG or JPEG).

use actix_web::{HttpResponse, delete, get, post, put, web};
use labwright_core::{auth::Permission, nav::NavigationTree, testcase, validate};
pub use labwright_wire::rest::library::{
    DeletedView, ReferenceView, TestCaseView, TreeView, ValidationView, VersionView,
};

use crate::{error::ApiError, keys::Caller, library::Library};

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

/// Saves a test case (YAML body, see `docs/testcase.schema.json`) as a new version of its name.
/// Refused (400, every problem listed with its field path, line and column) when
/// `POST /api/v1/testcases/validate` would report a problem: among them a `goto` for a model
/// without a navigation tree and reference images not uploaded yet. The same text as the latest
/// version stores nothing and answers that version (200).
#[utoipa::path(post, path = "/api/v1/testcases", request_body(content = String, content_type = "application/yaml"),
    responses(
        (status = 201, description = "Saved as a new version", body = TestCaseView),
        (status = 200, description = "Unchanged: the latest version already holds this text", body = TestCaseView),
        (status = 400, description = "The test case has problems", body = crate::error::ErrorBody)))]
#[post("/testcases")]
pub async fn put_testcase(
    library: web::Data<Library>,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    let source = text(&body, MAX_TESTCASE_BYTES, "test case")?;
    let (view, created) = library
        .save_testcase(caller.tenant, caller.key_id, &source)
        .await?;
    Ok(if created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// Checks a test case (YAML body) with the rules of a push, saving nothing: every problem with a
/// stable code, its field path and the line and column where it is written.
#[utoipa::path(post, path = "/api/v1/testcases/validate", request_body(content = String, content_type = "application/yaml"),
    responses(
        (status = 200, description = "The report: `valid` and every problem", body = ValidationView),
        (status = 400, description = "The body is not UTF-8 text or too large", body = crate::error::ErrorBody)))]
#[post("/testcases/validate")]
pub async fn validate_testcase(
    library: web::Data<Library>,
    caller: Caller,
    body: web::Bytes,
) -> Result<web::Json<ValidationView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let source = text(&body, MAX_TESTCASE_BYTES, "test case")?;
    Ok(web::Json(
        library.validate_testcase(caller.tenant, &source).await?,
    ))
}

/// Deletes a test case (every version); one that executions ran is archived instead: gone from
/// lists and runs, kept in the history of those executions.
#[utoipa::path(delete, path = "/api/v1/testcases/{name}", params(("name" = String, Path)),
    responses(
        (status = 200, description = "Deleted or archived", body = DeletedView),
        (status = 404, description = "No such test case", body = crate::error::ErrorBody)))]
#[delete("/testcases/{name}")]
pub async fn delete_testcase(
    library: web::Data<Library>,
    caller: Caller,
    name: web::Path<String>,
) -> Result<web::Json<DeletedView>, ApiError> {
    caller.require(Permission::ControlDevices)?;
    Ok(web::Json(
        library.delete_testcase(caller.tenant, &name).await?,
    ))
}

/// The latest version of every test case.
#[utoipa::path(get, path = "/api/v1/testcases", responses((status = 200, body = Vec<TestCaseView>)))]
#[get("/testcases")]
pub async fn list_testcases(
    library: web::Data<Library>,
    caller: Caller,
) -> Result<web::Json<Vec<TestCaseView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    Ok(web::Json(library.testcases(caller.tenant).await?))
}

/// The latest version of a test case, with the list of its versions.
#[utoipa::path(get, path = "/api/v1/testcases/{name}", params(("name" = String, Path)), responses((status = 200, body = TestCaseView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/testcases/{name}")]
pub async fn get_testcase(
    library: web::Data<Library>,
    caller: Caller,
    name: web::Path<String>,
) -> Result<web::Json<TestCaseView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    Ok(web::Json(
        library.testcase(caller.tenant, &name, None).await?,
    ))
}

/// One version of a test case.
#[utoipa::path(get, path = "/api/v1/testcases/{name}/versions/{version}", params(("name" = String, Path), ("version" = i32, Path)), responses((status = 200, body = TestCaseView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/testcases/{name}/versions/{version}")]
pub async fn get_testcase_version(
    library: web::Data<Library>,
    caller: Caller,
    path: web::Path<(String, i32)>,
) -> Result<web::Json<TestCaseView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let (name, version) = path.into_inner();
    Ok(web::Json(
        library
            .testcase(caller.tenant, &name, Some(version))
            .await?,
    ))
}

/// Saves a navigation tree (YAML or JSON, see `docs/navigation-trees.md`) for a device model as a
/// new version. Its reference images must have been uploaded first.
#[utoipa::path(put, path = "/api/v1/navigation-trees/{model}", params(("model" = String, Path)), request_body(content = String, content_type = "application/yaml"),
    responses((status = 201, body = TreeView), (status = 400, body = crate::error::ErrorBody)))]
#[put("/navigation-trees/{model}")]
pub async fn put_tree(
    library: web::Data<Library>,
    caller: Caller,
    model: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ControlDevices)?;
    validate::slug("model", &model, labwright_core::fleet::MAX_MODEL_LEN)?;
    let source = text(&body, MAX_TREE_BYTES, "navigation tree")?;
    let tree = NavigationTree::from_yaml(&source).map_err(parse_error)?;
    if tree.model != *model {
        return Err(ApiError::InvalidArgument(format!(
            "model: the tree is for {:?}, the URL says {:?}",
            tree.model,
            model.as_str()
        )));
    }
    let view = library
        .save_tree(caller.tenant, caller.key_id, tree)
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Deletes a model's navigation tree, every version and what navigation learned about it;
/// refused (409) while test cases written for that model navigate with it, naming them.
#[utoipa::path(delete, path = "/api/v1/navigation-trees/{model}", params(("model" = String, Path)),
    responses(
        (status = 200, description = "Deleted", body = DeletedView),
        (status = 404, description = "The model has no tree", body = crate::error::ErrorBody),
        (status = 409, description = "Test cases use it (named in the message)", body = crate::error::ErrorBody)))]
#[delete("/navigation-trees/{model}")]
pub async fn delete_tree(
    library: web::Data<Library>,
    caller: Caller,
    model: web::Path<String>,
) -> Result<web::Json<DeletedView>, ApiError> {
    caller.require(Permission::ControlDevices)?;
    validate::slug("model", &model, labwright_core::fleet::MAX_MODEL_LEN)?;
    Ok(web::Json(library.delete_tree(caller.tenant, &model).await?))
}

/// The latest tree of every device model.
#[utoipa::path(get, path = "/api/v1/navigation-trees", responses((status = 200, body = Vec<TreeView>)))]
#[get("/navigation-trees")]
pub async fn list_trees(
    library: web::Data<Library>,
    caller: Caller,
) -> Result<web::Json<Vec<TreeView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    Ok(web::Json(library.trees(caller.tenant).await?))
}

/// The latest tree of a model, with learned edge statistics.
#[utoipa::path(get, path = "/api/v1/navigation-trees/{model}", params(("model" = String, Path)), responses((status = 200, body = TreeView), (status = 404, body = crate::error::ErrorBody)))]
#[get("/navigation-trees/{model}")]
pub async fn get_tree(
    library: web::Data<Library>,
    caller: Caller,
    model: web::Path<String>,
) -> Result<web::Json<TreeView>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    Ok(web::Json(library.tree(caller.tenant, &model).await?))
}

/// Uploads (or replaces) a reference image: the body is a PNG or JPEG.
#[utoipa::path(put, path = "/api/v1/references/{name}", params(("name" = String, Path)), request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 201, body = ReferenceView), (status = 400, body = crate::error::ErrorBody)))]
#[put("/references/{name}")]
pub async fn put_reference(
    library: web::Data<Library>,
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
    let view = library
        .save_reference(caller.tenant, &name, body.to_vec())
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Every reference image of the tenant.
#[utoipa::path(get, path = "/api/v1/references", responses((status = 200, body = Vec<ReferenceView>)))]
#[get("/references")]
pub async fn list_references(
    library: web::Data<Library>,
    caller: Caller,
) -> Result<web::Json<Vec<ReferenceView>>, ApiError> {
    caller.require(Permission::ReadFleet)?;
    Ok(web::Json(library.references(caller.tenant).await?))
}

/// The image bytes of a reference, as uploaded.
#[utoipa::path(get, path = "/api/v1/references/{name}", params(("name" = String, Path)), responses((status = 200, content_type = "image/png"), (status = 404, body = crate::error::ErrorBody)))]
#[get("/references/{name}")]
pub async fn get_reference(
    library: web::Data<Library>,
    caller: Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ReadFleet)?;
    let bytes = library.reference_bytes(caller.tenant, &name).await?;
    let ct = if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        "image/png"
    } else {
        "image/jpeg"
    };
    Ok(HttpResponse::Ok().content_type(ct).body(bytes))
}
