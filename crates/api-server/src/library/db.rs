//! The test library of a tenant: versioned test cases, versioned navigation trees (with learned
//! edge statistics) and reference images.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use labwright_core::ids::TenantId;
use uuid::Uuid;

use crate::db::{
    DbError,
    schema::{executions, nav_edge_stats, navigation_trees, reference_images, testcases},
};

/// What deleting a test case did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Every version deleted.
    Deleted { versions: i64 },
    /// Executions ran it: every version archived instead.
    Archived { versions: i64, executions: i64 },
}

/// Takes the transaction-scoped advisory lock named `key` (serialises versioning and deleting
/// per test case name or tree model without locking the table).
async fn lock(conn: &mut AsyncPgConnection, key: String) -> Result<(), DbError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind::<diesel::sql_types::Text, _>(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// The test library's queries, each on a pooled connection.
#[derive(Clone)]
pub struct LibraryStore(crate::db::Store);

impl LibraryStore {
    pub fn new(pool: crate::db::Pool) -> Self {
        Self(crate::db::Store::new(pool))
    }

    /// Stores a new version of the named test case and returns it with `true`; when the latest
    /// version already holds this very text, returns that version with `false` instead.
    pub async fn add_testcase(
        &self,
        tenant: TenantId,
        name: &str,
        source: &str,
        document: serde_json::Value,
        by: Uuid,
    ) -> Result<(TestCaseRow, bool), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            // Serialise versioning per (tenant, name) without locking the table.
            lock(conn, format!("testcase:{tenant}:{name}")).await?;
            let current: Option<TestCaseRow> = testcases::table
                .filter(testcases::tenant_id.eq(tenant.0))
                .filter(testcases::name.eq(name))
                .filter(testcases::archived_at.is_null())
                .order(testcases::version.desc())
                .select(TestCaseRow::as_select())
                .first(conn)
                .await
                .optional()?;
            if let Some(row) = current
                && row.source == source
                && row.document == document
            {
                return Ok((row, false));
            }
            // Archived versions keep their numbers: a name pushed again goes on after them.
            let latest: Option<i32> = testcases::table
                .filter(testcases::tenant_id.eq(tenant.0))
                .filter(testcases::name.eq(name))
                .select(diesel::dsl::max(testcases::version))
                .first(conn)
                .await?;
            let row = diesel::insert_into(testcases::table)
                .values((
                    testcases::id.eq(Uuid::new_v4()),
                    testcases::tenant_id.eq(tenant.0),
                    testcases::name.eq(name),
                    testcases::version.eq(latest.unwrap_or(0) + 1),
                    testcases::source.eq(source),
                    testcases::document.eq(&document),
                    testcases::created_by.eq(by),
                ))
                .returning(TestCaseRow::as_returning())
                .get_result(conn)
                .await?;
            Ok((row, true))
        })
        .await
    }

    /// Deletes every (unarchived) version of a test case, or archives them all when an
    /// execution ran any of them; `None` when there is no such test case.
    pub async fn remove_testcase(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<Removal>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            // The same lock as a push of this name: no version slips in between.
            lock(conn, format!("testcase:{tenant}:{name}")).await?;
            let ids: Vec<Uuid> = testcases::table
                .filter(testcases::tenant_id.eq(tenant.0))
                .filter(testcases::name.eq(name))
                .filter(testcases::archived_at.is_null())
                .select(testcases::id)
                .load(conn)
                .await?;
            if ids.is_empty() {
                return Ok(None);
            }
            let versions = ids.len() as i64;
            let ran: i64 = executions::table
                .filter(executions::tenant_id.eq(tenant.0))
                .filter(executions::testcase_id.eq_any(&ids))
                .count()
                .get_result(conn)
                .await?;
            if ran > 0 {
                diesel::update(testcases::table.filter(testcases::id.eq_any(&ids)))
                    .set(testcases::archived_at.eq(Utc::now()))
                    .execute(conn)
                    .await?;
                return Ok(Some(Removal::Archived {
                    versions,
                    executions: ran,
                }));
            }
            diesel::delete(testcases::table.filter(testcases::id.eq_any(&ids)))
                .execute(conn)
                .await?;
            Ok(Some(Removal::Deleted { versions }))
        })
        .await
    }

    /// The latest version of every test case of the tenant, by name.
    pub async fn list_testcases(&self, tenant: TenantId) -> Result<Vec<TestCaseRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(testcases::table
            .filter(testcases::tenant_id.eq(tenant.0))
            .filter(testcases::archived_at.is_null())
            .distinct_on(testcases::name)
            .order((testcases::name.asc(), testcases::version.desc()))
            .select(TestCaseRow::as_select())
            .load(conn)
            .await?)
    }

    /// A test case by name: the given version, or the latest; never an archived one.
    pub async fn get_testcase(
        &self,
        tenant: TenantId,
        name: &str,
        version: Option<i32>,
    ) -> Result<Option<TestCaseRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let mut q = testcases::table
            .filter(testcases::tenant_id.eq(tenant.0))
            .filter(testcases::name.eq(name))
            .filter(testcases::archived_at.is_null())
            .into_boxed();
        if let Some(v) = version {
            q = q.filter(testcases::version.eq(v));
        }
        Ok(q.order(testcases::version.desc())
            .select(TestCaseRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }

    pub async fn get_testcase_by_id(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<TestCaseRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(testcases::table
            .filter(testcases::tenant_id.eq(tenant.0))
            .filter(testcases::id.eq(id))
            .select(TestCaseRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }

    pub async fn testcase_versions(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Vec<(i32, DateTime<Utc>)>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(testcases::table
            .filter(testcases::tenant_id.eq(tenant.0))
            .filter(testcases::name.eq(name))
            .filter(testcases::archived_at.is_null())
            .order(testcases::version.desc())
            .select((testcases::version, testcases::created_at))
            .load(conn)
            .await?)
    }

    pub async fn add_tree(
        &self,
        tenant: TenantId,
        model: &str,
        document: serde_json::Value,
        by: Uuid,
    ) -> Result<TreeRow, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            lock(conn, format!("tree:{tenant}:{model}")).await?;
            let latest: Option<i32> = navigation_trees::table
                .filter(navigation_trees::tenant_id.eq(tenant.0))
                .filter(navigation_trees::model.eq(model))
                .select(diesel::dsl::max(navigation_trees::version))
                .first(conn)
                .await?;
            Ok(diesel::insert_into(navigation_trees::table)
                .values((
                    navigation_trees::id.eq(Uuid::new_v4()),
                    navigation_trees::tenant_id.eq(tenant.0),
                    navigation_trees::model.eq(model),
                    navigation_trees::version.eq(latest.unwrap_or(0) + 1),
                    navigation_trees::document.eq(&document),
                    navigation_trees::created_by.eq(by),
                ))
                .returning(TreeRow::as_returning())
                .get_result(conn)
                .await?)
        })
        .await
    }

    /// Deletes every version of a model's tree and what navigation learned about its edges;
    /// the number of versions deleted (0: there was none).
    pub async fn remove_tree(&self, tenant: TenantId, model: &str) -> Result<i64, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction::<_, DbError, _>(async move |conn| {
            lock(conn, format!("tree:{tenant}:{model}")).await?;
            let versions = diesel::delete(
                navigation_trees::table
                    .filter(navigation_trees::tenant_id.eq(tenant.0))
                    .filter(navigation_trees::model.eq(model)),
            )
            .execute(conn)
            .await?;
            diesel::delete(
                nav_edge_stats::table
                    .filter(nav_edge_stats::tenant_id.eq(tenant.0))
                    .filter(nav_edge_stats::model.eq(model)),
            )
            .execute(conn)
            .await?;
            Ok(versions as i64)
        })
        .await
    }

    /// The latest tree of every model.
    pub async fn list_trees(&self, tenant: TenantId) -> Result<Vec<TreeRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(navigation_trees::table
            .filter(navigation_trees::tenant_id.eq(tenant.0))
            .distinct_on(navigation_trees::model)
            .order((
                navigation_trees::model.asc(),
                navigation_trees::version.desc(),
            ))
            .select(TreeRow::as_select())
            .load(conn)
            .await?)
    }

    pub async fn latest_tree(
        &self,
        tenant: TenantId,
        model: &str,
    ) -> Result<Option<TreeRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(navigation_trees::table
            .filter(navigation_trees::tenant_id.eq(tenant.0))
            .filter(navigation_trees::model.eq(model))
            .order(navigation_trees::version.desc())
            .select(TreeRow::as_select())
            .first(conn)
            .await
            .optional()?)
    }

    pub async fn edge_stats(
        &self,
        tenant: TenantId,
        model: &str,
    ) -> Result<Vec<EdgeStatRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(nav_edge_stats::table
            .filter(nav_edge_stats::tenant_id.eq(tenant.0))
            .filter(nav_edge_stats::model.eq(model))
            .select(EdgeStatRow::as_select())
            .load(conn)
            .await?)
    }

    /// Folds one observation of an edge into its running statistics (attempts, successes, mean time).
    pub async fn observe_edge(
        &self,
        tenant: TenantId,
        model: &str,
        edge_id: &str,
        duration_ms: f64,
        success: bool,
    ) -> Result<(), DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        use diesel::sql_types::{BigInt, Double, Text, Uuid as SqlUuid};
        crate::db::statement::Statement::new(
            "INSERT INTO nav_edge_stats (tenant_id, model, edge_id, attempts, successes, mean_duration_ms) \
             VALUES ($1, $2, $3, 1, $4, $5) \
             ON CONFLICT (tenant_id, model, edge_id) DO UPDATE SET \
               mean_duration_ms = nav_edge_stats.mean_duration_ms \
                 + (EXCLUDED.mean_duration_ms - nav_edge_stats.mean_duration_ms) / (nav_edge_stats.attempts + 1), \
               attempts = nav_edge_stats.attempts + 1, \
               successes = nav_edge_stats.successes + EXCLUDED.successes, \
               updated_at = now()",
        )
        .bind::<SqlUuid, _>(tenant.0)
        .bind::<Text, _>(model)
        .bind::<Text, _>(edge_id)
        .bind::<BigInt, _>(i64::from(success))
        .bind::<Double, _>(duration_ms)
        .execute(conn)
        .await?;
        Ok(())
    }

    pub async fn put_reference(
        &self,
        tenant: TenantId,
        name: &str,
        width: i32,
        height: i32,
        object_key: &str,
        sha256: &str,
    ) -> Result<ReferenceRow, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(diesel::insert_into(reference_images::table)
            .values((
                reference_images::id.eq(Uuid::new_v4()),
                reference_images::tenant_id.eq(tenant.0),
                reference_images::name.eq(name),
                reference_images::width.eq(width),
                reference_images::height.eq(height),
                reference_images::object_key.eq(object_key),
                reference_images::sha256.eq(sha256),
            ))
            .on_conflict((reference_images::tenant_id, reference_images::name))
            .do_update()
            .set((
                reference_images::width.eq(width),
                reference_images::height.eq(height),
                reference_images::object_key.eq(object_key),
                reference_images::sha256.eq(sha256),
                reference_images::created_at.eq(Utc::now()),
            ))
            .returning(ReferenceRow::as_returning())
            .get_result(conn)
            .await?)
    }

    pub async fn list_references(&self, tenant: TenantId) -> Result<Vec<ReferenceRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        Ok(reference_images::table
            .filter(reference_images::tenant_id.eq(tenant.0))
            .order(reference_images::name.asc())
            .select(ReferenceRow::as_select())
            .load(conn)
            .await?)
    }

    pub async fn references_named(
        &self,
        tenant: TenantId,
        names: &[String],
    ) -> Result<Vec<ReferenceRow>, DbError> {
        let mut pooled = self.0.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        Ok(reference_images::table
            .filter(reference_images::tenant_id.eq(tenant.0))
            .filter(reference_images::name.eq_any(names))
            .select(ReferenceRow::as_select())
            .load(conn)
            .await?)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = testcases)]
pub struct TestCaseRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub version: i32,
    pub source: String,
    pub document: serde_json::Value,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = navigation_trees)]
pub struct TreeRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub model: String,
    pub version: i32,
    pub document: serde_json::Value,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = nav_edge_stats)]
pub struct EdgeStatRow {
    pub edge_id: String,
    pub attempts: i64,
    pub successes: i64,
    pub mean_duration_ms: f64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reference_images)]
pub struct ReferenceRow {
    pub id: Uuid,
    pub name: String,
    pub width: i32,
    pub height: i32,
    pub object_key: String,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}
