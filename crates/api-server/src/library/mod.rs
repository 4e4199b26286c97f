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
    testcase::{self, Action, Problem, ProblemCode, TestCase, ValidationEnv},
};
use uuid::Uuid;

use labwright_wire::rest::library::{
    self as views, DeleteOutcome, DeletedView, ProblemView, ReferenceView, TestCaseView, TreeView,
    ValidationView, VersionView,
};
use sha2::{Digest, Sha256};

use self::db::{LibraryStore, ReferenceRow, Removal, TestCaseRow, TreeRow};
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

fn problem_code(code: ProblemCode) -> views::ProblemCode {
    match code {
        ProblemCode::Syntax => views::ProblemCode::Syntax,
        ProblemCode::UnknownField => views::ProblemCode::UnknownField,
        ProblemCode::MissingField => views::ProblemCode::MissingField,
        ProblemCode::InvalidShape => views::ProblemCode::InvalidShape,
        ProblemCode::InvalidValue => views::ProblemCode::InvalidValue,
        ProblemCode::UnknownScreen => views::ProblemCode::UnknownScreen,
        ProblemCode::UnreachableScreen => views::ProblemCode::UnreachableScreen,
        ProblemCode::NoNavigationTree => views::ProblemCode::NoNavigationTree,
        ProblemCode::ModelMismatch => views::ProblemCode::ModelMismatch,
        ProblemCode::UnknownReference => views::ProblemCode::UnknownReference,
        ProblemCode::ReferenceTooLarge => views::ProblemCode::ReferenceTooLarge,
        ProblemCode::MissingCapability => views::ProblemCode::MissingCapability,
    }
}

fn problem_view(p: Problem) -> ProblemView {
    let number = |n: Option<usize>| n.and_then(|n| u32::try_from(n).ok());
    ProblemView {
        code: problem_code(p.code),
        line: number(p.line),
        column: number(p.column),
        field: p.field,
        message: p.message,
    }
}

/// Every problem of a test case's text, in one `invalid_argument` error: a syntax or shape
/// error as `line L, column C: ...`, the others as `field: ... (line L, column C)`.
fn refused(problems: &[Problem]) -> ApiError {
    let list: Vec<String> = problems
        .iter()
        .map(|p| {
            let at = match (p.line, p.column) {
                (Some(l), Some(c)) => Some(format!("line {l}, column {c}")),
                _ => None,
            };
            match (&p.field, at) {
                (Some(field), Some(at)) => format!("{field}: {} ({at})", p.message),
                (Some(field), None) => format!("{field}: {}", p.message),
                (None, Some(at)) => format!("{at}: {}", p.message),
                (None, None) => p.message.clone(),
            }
        })
        .collect();
    ApiError::InvalidArgument(list.join("; "))
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

    /// Every problem of a test case's text against what the library holds: its syntax and
    /// shape, then (once it parses) its model's navigation tree (which must exist when the test
    /// navigates and names its model) and its reference images (which must be uploaded and fit
    /// their regions). What depends on a device is checked again when it runs.
    pub async fn check_testcase(
        &self,
        tenant: TenantId,
        source: &str,
    ) -> Result<(Option<TestCase>, Vec<Problem>), ApiError> {
        let tc = match testcase::parse(source) {
            Ok(tc) => tc,
            Err(e) => return Ok((None, vec![Problem::from_parse(source, &e)])),
        };
        let tree = match &tc.device_model {
            Some(model) => self.tree_with_stats(tenant, model).await?.map(|(t, _)| t),
            None => None,
        };
        let rows = self
            .store
            .references_named(tenant, &testcase_references(&tc))
            .await?;
        let shapes = reference_shapes(&rows);
        let env = ValidationEnv {
            nav: tree.as_ref(),
            references: Some(&shapes),
            // Without a model, the tree is the one of the device it will run on.
            nav_pending: tc.device_model.is_none(),
            model_without_tree: tc.device_model.as_deref().filter(|_| tree.is_none()),
            ..ValidationEnv::default()
        };
        let problems = testcase::problem::report(source, &tc, &env);
        Ok((Some(tc), problems))
    }

    /// The answer of the validate endpoint: every problem of `source`, nothing saved.
    pub async fn validate_testcase(
        &self,
        tenant: TenantId,
        source: &str,
    ) -> Result<ValidationView, ApiError> {
        let (tc, problems) = self.check_testcase(tenant, source).await?;
        Ok(ValidationView {
            valid: problems.is_empty(),
            name: tc.map(|t| t.name),
            problems: problems.into_iter().map(problem_view).collect(),
        })
    }

    /// Stores a test case's text as the next version of its name once it has no problem
    /// ([`Library::check_testcase`]); `false` with the latest version when that version already
    /// holds this very text (nothing stored).
    pub async fn save_testcase(
        &self,
        tenant: TenantId,
        by: ApiKeyId,
        source: &str,
    ) -> Result<(TestCaseView, bool), ApiError> {
        let (tc, problems) = self.check_testcase(tenant, source).await?;
        let tc = match tc {
            Some(tc) if problems.is_empty() => tc,
            _ => return Err(refused(&problems)),
        };
        let document = serde_json::to_value(&tc).map_err(|e| ApiError::Internal(e.into()))?;
        let (row, created) = self
            .store
            .add_testcase(tenant, &tc.name, source, document, by.0)
            .await?;
        if created {
            tracing::info!(testcase = %row.name, version = row.version, "test case saved");
        }
        Ok((testcase_view(row, None), created))
    }

    /// Deletes a test case, every version; archives it instead when executions ran it (their
    /// history keeps it; lists, runs and new pushes no longer see it).
    pub async fn delete_testcase(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<DeletedView, ApiError> {
        let removal = self
            .store
            .remove_testcase(tenant, name)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("test case {name:?}")))?;
        let (outcome, versions, executions) = match removal {
            Removal::Deleted { versions } => (DeleteOutcome::Deleted, versions, 0),
            Removal::Archived {
                versions,
                executions,
            } => (DeleteOutcome::Archived, versions, executions),
        };
        tracing::info!(testcase = %name, ?outcome, versions, "test case removed");
        Ok(DeletedView {
            name: name.to_owned(),
            outcome,
            versions,
            executions,
        })
    }

    /// Deletes a model's navigation tree (every version, and its learned statistics), refused
    /// while a test case written for that model navigates with it (naming them).
    pub async fn delete_tree(
        &self,
        tenant: TenantId,
        model: &str,
    ) -> Result<DeletedView, ApiError> {
        if self.store.latest_tree(tenant, model).await?.is_none() {
            return Err(ApiError::NotFound(format!("navigation tree for {model:?}")));
        }
        let mut users: Vec<String> = Vec::new();
        for row in self.store.list_testcases(tenant).await? {
            let tc: TestCase = stored("test case", &row.document)?;
            if tc.device_model.as_deref() == Some(model) && navigates(&tc) {
                users.push(format!("{:?}", tc.name));
            }
        }
        if !users.is_empty() {
            return Err(ApiError::Conflict(format!(
                "the navigation tree for {model:?} is used by test case{} {}: delete {} or change {} first",
                if users.len() == 1 { "" } else { "s" },
                users.join(", "),
                if users.len() == 1 { "it" } else { "them" },
                if users.len() == 1 {
                    "its device_model"
                } else {
                    "their device_model"
                },
            )));
        }
        let versions = self.store.remove_tree(tenant, model).await?;
        tracing::info!(model = %model, versions, "navigation tree deleted");
        Ok(DeletedView {
            name: model.to_owned(),
            outcome: DeleteOutcome::Deleted,
            versions,
            executions: 0,
        })
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
            model_without_tree: None,
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
