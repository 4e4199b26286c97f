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
