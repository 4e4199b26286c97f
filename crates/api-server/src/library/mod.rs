//! The test library seen from the server: what a test case or navigation tree must satisfy to be
//! stored, what a run needs (the device model's tree with learned statistics, reference images),
//! and folding navigation observations back into edge statistics. The rules themselves live in
//! `labwright_core::{testcase, nav}`; this module feeds them what the database knows.

pub mod db;
pub mod http;

use std::sync::Arc;

use diesel_async::AsyncPgConnection;
use labwright_core::{
    ValidationError,
    fleet::Capability,
    frame::Gray,
    ids::{DeviceId, TenantId},
    nav::{EdgeObservation, EdgeStats, NavigationTree, ReferenceSet, ScreenCheck},
    testcase::{Action, TestCase, ValidationEnv},
};
use uuid::Uuid;

use self::db::ReferenceRow;
use crate::{error::ApiError, fleet::db::DeviceRow};

/// Everything a host needs to run a test case besides the test case itself.
pub struct RunPlan {
    /// The navigation tree (with learned edge statistics), if the test navigates.
    pub tree: Option<serde_json::Value>,
    pub references: Vec<ReferenceRow>,
}

/// Every validation problem, in one `invalid_argument` error.
pub(crate) fn invalid(errors: Vec<ValidationError>) -> ApiError {
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    ApiError::InvalidArgument(list.join("; "))
}

fn stored<T: serde::de::DeserializeOwned>(
    what: &str,
    doc: &serde_json::Value,
) -> Result<T, ApiError> {
    serde_json::from_value(doc.clone())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored {what} no longer parses: {e}")))
}

/// Names of every reference image a test case uses directly.
pub fn testcase_references(tc: &TestCase) -> Vec<String> {
    let mut names: Vec<String> = tc
        .walk()
        .into_iter()
        .filter_map(|(_, step)| match &step.action {
            Action::VerifyImage(v) => Some(v.reference.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

pub fn tree_references(tree: &NavigationTree) -> Vec<String> {
    let mut names: Vec<String> = tree
        .screens
        .iter()
        .flat_map(|s| s.verify.iter())
        .filter_map(|c| match c {
            ScreenCheck::Image { reference, .. } => Some(reference.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn navigates(tc: &TestCase) -> bool {
    tc.walk()
        .iter()
        .any(|(_, s)| matches!(s.action, Action::Goto(_)))
}

/// Stand-ins of the right size for validation: checks need sizes, not pixels.
fn reference_shapes(rows: &[ReferenceRow]) -> ReferenceSet {
    let mut set = ReferenceSet::new();
    for r in rows {
        let (w, h) = (r.width.max(1) as u32, r.height.max(1) as u32);
        if let Ok(g) = Gray::new(w, h, vec![0; w as usize * h as usize]) {
            set.insert(r.name.clone(), Arc::new(g));
        }
    }
    set
}

/// Loads the latest tree of `model` with its learned edge statistics.
pub async fn tree_with_stats(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    model: &str,
) -> Result<Option<(NavigationTree, i32)>, ApiError> {
    let Some(row) = crate::library::db::latest_tree(conn, tenant, model).await? else {
        return Ok(None);
    };
    let mut tree: NavigationTree = stored("navigation tree", &row.document)?;
    for s in crate::library::db::edge_stats(conn, tenant, model).await? {
        tree.stats.insert(
            s.edge_id,
            EdgeStats {
                attempts: s.attempts.max(0) as u64,
                successes: s.successes.max(0) as u64,
                mean_duration_ms: s.mean_duration_ms,
            },
        );
    }
    Ok(Some((tree, row.version)))
}

/// Checks, before anything runs, that `doc` can run on `device`: capabilities, the model's
/// navigation tree and its target screens, and every reference image (present and fitting).
pub async fn check_runnable(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    device: &DeviceRow,
    doc: &serde_json::Value,
) -> Result<(), ApiError> {
    let tc: TestCase = stored("test case", doc)?;
    if device.status != "online" && device.status != "offline" {
        return Err(ApiError::Conflict(format!(
            "device {} is in error: {}",
            device.device_key, device.status_detail
        )));
    }
    if let Some(model) = &tc.device_model
        && model != &device.model
    {
        return Err(ApiError::InvalidArgument(format!(
            "device: test case {:?} is written for model {model}, device {} is a {}",
            tc.name, device.device_key, device.model
        )));
    }
    let capabilities: Vec<Capability> = device
        .capabilities
        .iter()
        .flatten()
        .filter_map(|c| c.parse().ok())
        .collect();
    let tree = if navigates(&tc) {
        Some(
            tree_with_stats(conn, tenant, &device.model)
                .await?
                .ok_or_else(|| {
                    ApiError::InvalidArgument(format!(
                        "test case navigates but model {} has no navigation tree",
                        device.model
                    ))
                })?
                .0,
        )
    } else {
        None
    };
    let mut names = testcase_references(&tc);
    if let Some(t) = &tree {
        names.extend(tree_references(t));
    }
    let rows = crate::library::db::references_named(conn, tenant, &names).await?;
    let shapes = reference_shapes(&rows);
    let env = ValidationEnv {
        nav: tree.as_ref(),
        references: Some(&shapes),
        capabilities: Some(&capabilities),
        resolution: None,
        nav_pending: false,
    };
    tc.validate(&env).map_err(invalid)?;
    if let Some(t) = &tree {
        t.validate_references(&shapes).map_err(invalid)?;
    }
    Ok(())
}

/// The tree and references a run of `doc` on a device of `model` needs.
pub async fn prepare_run(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    model: &str,
    doc: &serde_json::Value,
) -> Result<RunPlan, ApiError> {
    let tc: TestCase = stored("test case", doc)?;
    let tree = if navigates(&tc) {
        tree_with_stats(conn, tenant, model).await?.map(|(t, _)| t)
    } else {
        None
    };
    let mut names = testcase_references(&tc);
    if let Some(t) = &tree {
        names.extend(tree_references(t));
    }
    let references = crate::library::db::references_named(conn, tenant, &names).await?;
    let tree = tree.map(|t| serde_json::to_value(t).unwrap_or_default());
    Ok(RunPlan { tree, references })
}

/// Folds a host's navigation observations into the model's edge statistics.
pub async fn record_edge_observations(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    device: Uuid,
    observations: &[EdgeObservation],
) -> Result<(), ApiError> {
    if observations.is_empty() {
        return Ok(());
    }
    let Some((d, _, _)) = crate::fleet::db::get_device(conn, tenant, DeviceId(device)).await?
    else {
        return Ok(());
    };
    for o in observations.iter().take(10_000) {
        if labwright_core::validate::slug("edge_id", &o.edge_id, 128).is_err()
            || !o.duration_ms.is_finite()
        {
            continue;
        }
        crate::library::db::observe_edge(
            conn,
            tenant,
            &d.model,
            &o.edge_id,
            o.duration_ms.max(0.0),
            o.success,
        )
        .await?;
    }
    Ok(())
}
