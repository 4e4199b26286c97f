//! A fresh PostgreSQL database per test, created on the server of `LABWRIGHT_TEST_DATABASE_URL`.
//! Databases are named `lw_test_*`, so `scripts/test` drops what tests leave behind.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::env;

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_database() -> String {
    let admin = env("LABWRIGHT_TEST_DATABASE_URL");
    let name = format!("lw_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = AsyncPgConnection::establish(&admin)
        .await
        .expect("connect to the test database server");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("database url has a path");
    format!("{base}/{name}")
}
