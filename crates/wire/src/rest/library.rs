//! Test cases, navigation trees and reference images (`/api/v1/testcases`,
//! `/api/v1/navigation-trees`, `/api/v1/references`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestCaseView {
    pub id: Uuid,
    pub name: String,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    /// The YAML as uploaded.
    pub source: String,
    /// The parsed test case.
    pub document: serde_json::Value,
    pub versions: Option<Vec<VersionView>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionView {
    pub version: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TreeView {
    pub model: String,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    /// The tree, with `stats` holding what navigation has learned about each edge.
    pub document: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReferenceView {
    pub name: String,
    pub width: i32,
    pub height: i32,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub url: String,
}

/// What kind of problem a test case has (`POST /api/v1/testcases/validate`). Stable: clients
/// match on these, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// Not YAML (or JSON) at all.
    Syntax,
    /// A key the format does not know.
    UnknownField,
    /// A required key is absent.
    MissingField,
    /// A value of the wrong kind (a list for a number, a step without an action).
    InvalidShape,
    /// A value out of its range or format.
    InvalidValue,
    /// `goto` a screen the navigation tree does not have.
    UnknownScreen,
    /// `goto` a screen no edge of the navigation tree leads to.
    UnreachableScreen,
    /// The test navigates but its device model has no navigation tree yet.
    NoNavigationTree,
    /// The test's device model is not the navigation tree's.
    ModelMismatch,
    /// A reference image that is not uploaded.
    UnknownReference,
    /// A reference image larger than the region it is looked for in.
    ReferenceTooLarge,
    /// A step needs a capability the device lacks.
    MissingCapability,
}

/// One problem of a test case, where it is written.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProblemView {
    pub code: ProblemCode,
    /// The field path (`steps[3].verify_image.region`); absent for syntax and shape errors.
    pub field: Option<String>,
    /// What is wrong, for people.
    pub message: String,
    /// 1-based line of the YAML where the problem is; absent for an empty document.
    pub line: Option<u32>,
    /// 1-based column (in characters) on that line.
    pub column: Option<u32>,
}

/// The answer of `POST /api/v1/testcases/validate`: every problem the server would refuse the
/// test case for, nothing saved.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidationView {
    /// Whether a push of this text would be accepted.
    pub valid: bool,
    /// The test case's name, when the text parses.
    pub name: Option<String>,
    /// Every problem, in the order the document is checked.
    pub problems: Vec<ProblemView>,
}

/// What a `DELETE` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeleteOutcome {
    /// Gone, every version.
    Deleted,
    /// Hidden from lists and runs, kept for the history of the executions that ran it.
    Archived,
}

/// The answer of deleting a test case or a navigation tree.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeletedView {
    /// The test case's name or the tree's model.
    pub name: String,
    pub outcome: DeleteOutcome,
    /// How many versions were deleted or archived.
    pub versions: i64,
    /// How many executions ran it (why it was archived rather than deleted).
    pub executions: i64,
}
