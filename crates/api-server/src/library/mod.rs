//! The test library seen from the server: what a test case or navigation tree must satisfy to be
//! stored, what a run needs (the device model's tree with learned statistics, reference images),
//! and folding navigation observations back into edge statistics. The rules themselves live in
//! `labwright_core::{testcase, nav}`; this module feeds them what the database knows.

pub mod db;
pub mod http;

use std::sync::Arc;

use labwright_core::{
    ValidationError,
    fleet::Capability,
    frame::Gray,
    ids::{ApiKeyId, DeviceId, TenantId},
    nav::{EdgeObservation, EdgeStats, NavigationTree, ReferenceSet, ScreenCheck},
    testcase::{Action, TestCase, ValidationEnv},
};
use uuid::Uuid;

use labwright_wire::rest::library::{ReferenceView, TestCaseView, TreeView, VersionView};
use sha2::{Digest, Sha256};

use self::db::{LibraryStore, ReferenceRow, TestCaseRow, TreeRow};
use crate::{
    artifacts::{self, Artifacts},
    error::ApiError,
    fleet::db::{DeviceRow, FleetStore},
};

/// Everything a host needs to run a test case besides the test case itself.
pub struct RunPlan {
    /// The navigation tree (with learned edge statistics), if the test navigates.
    pub tree: Option<serde_json::Value>,
    pub references: Vec<ReferenceRow>,
}

fn testcase_view(r: TestCaseRow, versions: Option<Vec<VersionView>>) -> TestCaseView {
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

fn tree_view(r: TreeRow) -> TreeView {
    TreeView {
        model: r.model,
        version: r.version,
        created_at: r.created_at,
        document: r.document,
    }
}

fn reference_view(r: ReferenceRow) -> ReferenceView {
    ReferenceView {
        url: format!("/api/v1/references/{}", r.name),
        name: r.name,
        width: r.width,
        height: r.height,
        sha256: r.sha256,
        created_at: r.created_at,
    }
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

/// The test library: test cases, navigation trees and reference images as stored, and what a
/// run needs from them.
pub struct Library {
    store: LibraryStore,
    fleet: FleetStore,
    artifacts: Artifacts,
}

impl Library {
    pub fn new(store: LibraryStore, fleet: FleetStore, artifacts: Artifacts) -> Self {
        Self {
            store,
            fleet,
            artifacts,
        }
    }

    /// Stores a parsed test case as the next version of its name, checked against its model's
    /// tree when there is one (everything that depends on a device is checked again when it runs).
    pub async fn save_testcase(
        &self,
        tenant: TenantId,
        by: ApiKeyId,
        tc: &TestCase,
        source: &str,
    ) -> Result<TestCaseView, ApiError> {
        let tree = match &tc.device_model {
            Some(model) => self.tree_with_stats(tenant, model).await?.map(|(t, _)| t),
            None => None,
        };
        let env = ValidationEnv {
            nav: tree.as_ref(),
            nav_pending: tree.is_none(),
            ..ValidationEnv::default()
        };
        tc.validate(&env).map_err(invalid)?;
        let document = serde_json::to_value(tc).map_err(|e| ApiError::Internal(e.into()))?;
        let row = self
            .store
            .add_testcase(tenant, &tc.name, source, document, by.0)
            .await?;
        tracing::info!(testcase = %row.name, version = row.version, "test case saved");
        Ok(testcase_view(row, None))
    }

    /// The latest version of every test case.
    pub async fn testcases(&self, tenant: TenantId) -> Result<Vec<TestCaseView>, ApiError> {
        Ok(self
            .store
            .list_testcases(tenant)
            .await?
            .into_iter()
            .map(|r| testcase_view(r, None))
            .collect())
    }

    /// A test case's `version` with nothing more, or its latest version with the list of them.
    pub async fn testcase(
        &self,
        tenant: TenantId,
        name: &str,
        version: Option<i32>,
    ) -> Result<TestCaseView, ApiError> {
        let row = self
            .store
            .get_testcase(tenant, name, version)
            .await?
            .ok_or_else(|| match version {
                Some(v) => ApiError::NotFound(format!("test case {name:?} version {v}")),
                None => ApiError::NotFound(format!("test case {name:?}")),
            })?;
        if version.is_some() {
            return Ok(testcase_view(row, None));
        }
        let versions = self
            .store
            .testcase_versions(tenant, name)
            .await?
            .into_iter()
            .map(|(version, created_at)| VersionView {
                version,
                created_at,
            })
            .collect();
        Ok(testcase_view(row, Some(versions)))
    }

    /// Stores a validated tree as the next version of its model's, once every reference image
    /// it names is uploaded. Statistics are learned by the server, never uploaded.
    pub async fn save_tree(
        &self,
        tenant: TenantId,
        by: ApiKeyId,
        mut tree: NavigationTree,
    ) -> Result<TreeView, ApiError> {
        tree.validate().map_err(invalid)?;
        tree.stats.clear();
        let names = tree_references(&tree);
        let present = self.store.references_named(tenant, &names).await?;
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
        let row = self
            .store
            .add_tree(tenant, &tree.model, document, by.0)
            .await?;
        tracing::info!(model = %row.model, version = row.version, "navigation tree saved");
        Ok(tree_view(row))
    }

    /// The latest tree of every device model.
    pub async fn trees(&self, tenant: TenantId) -> Result<Vec<TreeView>, ApiError> {
        Ok(self
            .store
            .list_trees(tenant)
            .await?
            .into_iter()
            .map(tree_view)
            .collect())
    }

    /// The latest tree of a model, with learned edge statistics.
    pub async fn tree(&self, tenant: TenantId, model: &str) -> Result<TreeView, ApiError> {
        let row = self
            .store
            .latest_tree(tenant, model)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("navigation tree for {model:?}")))?;
        let (tree, _) = self
            .tree_with_stats(tenant, model)
            .await?
            .ok_or_else(|| ApiError::NotFound("tree".into()))?;
        Ok(TreeView {
            document: serde_json::to_value(tree).unwrap_or_default(),
            ..tree_view(row)
        })
    }

    /// Stores (or replaces) a reference image: the bytes in the artifact store, its size and
    /// digest in the database.
    pub async fn save_reference(
        &self,
        tenant: TenantId,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<ReferenceView, ApiError> {
        let decoded = tokio::task::spawn_blocking({
            let bytes = bytes.clone();
            move || labwright_core::image_io::decode_gray(&bytes)
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::InvalidArgument(format!("image: {e}")))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let key = artifacts::reference_key(tenant.0, name, &sha);
        self.artifacts
            .put(&key, bytes)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        let row = self
            .store
            .put_reference(
                tenant,
                name,
                decoded.width as i32,
                decoded.height as i32,
                &key,
                &sha,
            )
            .await?;
        Ok(reference_view(row))
    }

    /// Every reference image of the tenant.
    pub async fn references(&self, tenant: TenantId) -> Result<Vec<ReferenceView>, ApiError> {
        Ok(self
            .store
            .list_references(tenant)
            .await?
            .into_iter()
            .map(reference_view)
            .collect())
    }

    /// A reference image's bytes, as uploaded.
    pub async fn reference_bytes(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<bytes::Bytes, ApiError> {
        let row = self
            .store
            .references_named(tenant, std::slice::from_ref(&name.to_string()))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::NotFound(format!("reference {name:?}")))?;
        let bytes = self
            .artifacts
            .get(&row.object_key)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(bytes)
    }

    /// Loads the latest tree of `model` with its learned edge statistics.
    pub async fn tree_with_stats(
        &self,
        tenant: TenantId,
        model: &str,
    ) -> Result<Option<(NavigationTree, i32)>, ApiError> {
        let Some(row) = self.store.latest_tree(tenant, model).await? else {
            return Ok(None);
        };
        let mut tree: NavigationTree = stored("navigation tree", &row.document)?;
        for s in self.store.edge_stats(tenant, model).await? {
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
        &self,
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
                self.tree_with_stats(tenant, &device.model)
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
        let rows = self.store.references_named(tenant, &names).await?;
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
        &self,
        tenant: TenantId,
        model: &str,
        doc: &serde_json::Value,
    ) -> Result<RunPlan, ApiError> {
        let tc: TestCase = stored("test case", doc)?;
        let tree = if navigates(&tc) {
            self.tree_with_stats(tenant, model).await?.map(|(t, _)| t)
        } else {
            None
        };
        let mut names = testcase_references(&tc);
        if let Some(t) = &tree {
            names.extend(tree_references(t));
        }
        let references = self.store.references_named(tenant, &names).await?;
        let tree = tree.map(|t| serde_json::to_value(t).unwrap_or_default());
        Ok(RunPlan { tree, references })
    }

    /// Folds a host's navigation observations into the model's edge statistics.
    pub async fn record_edge_observations(
        &self,
        tenant: TenantId,
        device: Uuid,
        observations: &[EdgeObservation],
    ) -> Result<(), ApiError> {
        if observations.is_empty() {
            return Ok(());
        }
        let Some((d, _, _)) = self.fleet.get_device(tenant, DeviceId(device)).await? else {
            return Ok(());
        };
        for o in observations.iter().take(10_000) {
            if labwright_core::validate::slug("edge_id", &o.edge_id, 128).is_err()
                || !o.duration_ms.is_finite()
            {
                continue;
            }
            self.store
                .observe_edge(
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
}
