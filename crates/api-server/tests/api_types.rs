//! The REST views behind the web UI's generated types (`frontend/src/api-types.ts`, made from
//! `labwright_wire::rest::typescript::views`) are the schemas of this server's OpenAPI document:
//! every schema the document shares with the views is identical, and the checked-in TypeScript
//! is up to date. Needs no database.

use labwright_api_server::http::ApiDoc;
use labwright_wire::rest::typescript::views;
use utoipa::OpenApi;

fn schemas(doc: &utoipa::openapi::OpenApi) -> serde_json::Map<String, serde_json::Value> {
    let doc = serde_json::to_value(doc).expect("the document serialises");
    doc.pointer("/components/schemas")
        .and_then(serde_json::Value::as_object)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_api_document_uses_the_rest_views() {
    let api = schemas(&ApiDoc::openapi());
    let views = schemas(&views());
    for (name, schema) in &views {
        if let Some(served) = api.get(name) {
            assert_eq!(
                served, schema,
                "schema {name} differs from labwright_wire::rest"
            );
        }
    }
    for name in api.keys() {
        assert!(
            views.contains_key(name) || ["Health", "Readiness"].contains(&name.as_str()),
            "schema {name} of the OpenAPI document is not a labwright_wire::rest view"
        );
    }
}

#[test]
fn frontend_api_types_match_the_rest_views() {
    if let Err(e) = labwright_wire::rest::typescript::check_frontend_api_types() {
        panic!("{e}");
    }
}
