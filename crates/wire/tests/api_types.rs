//! `frontend/src/api-types.ts` is generated from the REST views; this test fails when the
//! checked-in file differs. `LABWRIGHT_UPDATE_API_TYPES=1` rewrites it.

use std::path::PathBuf;

use labwright_wire::rest::typescript::{check_or_update, typescript, views};

#[test]
fn frontend_api_types_match_the_rest_views() {
    let generated = typescript(&views()).expect("the views convert to TypeScript");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../frontend/src/api-types.ts");
    if let Err(e) = check_or_update(&path, &generated) {
        panic!("{e}");
    }
}
