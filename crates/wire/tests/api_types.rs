//! `frontend/src/api-types.ts` is generated from the REST views and the WebSocket close codes;
//! this test fails when the checked-in file differs. `LABWRIGHT_UPDATE_API_TYPES=1` rewrites it.

#[test]
fn frontend_api_types_match_the_rest_views() {
    if let Err(e) = labwright_wire::rest::typescript::check_frontend_api_types() {
        panic!("{e}");
    }
}
