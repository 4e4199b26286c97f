//! Test runs and their steps (`/api/v1/executions`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExecution {
    /// Test case name.
    pub testcase: String,
    /// Test case version; the latest when absent.
    pub version: Option<i32>,
    /// Device id.
    pub device: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionView {
    pub id: Uuid,
    pub device_id: Uuid,
    pub testcase_id: Uuid,
    pub testcase: String,
    pub testcase_version: i32,
    /// queued, dispatched, running, passed, failed, error, cancelled, interrupted.
    pub status: String,
    pub reason: String,
    /// Executions queued on the same device ahead of this one (queued executions only).
    pub queue_position: Option<i64>,
    pub steps_total: Option<i32>,
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub steps: Option<Vec<StepView>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepView {
    pub index: i32,
    pub path: String,
    pub kind: String,
    /// pass, fail, error, skipped.
    pub verdict: String,
    pub reason: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub screenshot_url: Option<String>,
    pub measurements: serde_json::Value,
    /// When the server stored the step.
    pub stored_at: DateTime<Utc>,
}
