//! REST views: the JSON bodies the api-server's `/api/v1` handlers serialise and accept, and the
//! error body with its stable codes, declared once for the server, the CLI and (generated into
//! `frontend/src/api-types.ts`) the web UI.
//!
//! One file per area. Conversions from storage rows stay in the api-server; this module knows
//! nothing of actix, diesel or the database.

pub mod builds;
pub mod control;
pub mod error;
pub mod executions;
pub mod fleet;
pub mod keys;
pub mod library;
pub mod typescript;

use serde::{Deserialize, Serialize};

pub use builds::{
    BuildView, CreateBuild, Durations, ExtendSession, SessionSummary, SessionView, TerminalTicket,
};
pub use control::{PowerBody, PowerView, PressBody, ReserveBody};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use executions::{CreateExecution, ExecutionView, StepView};
pub use fleet::{DeviceView, HostView, PingResult, PowerSwitcher, ReservationView};
pub use keys::{CreateKey, CreatedKey, KeyView, WhoAmI};
pub use library::{
    DeleteOutcome, DeletedView, ProblemCode, ProblemView, ReferenceView, TestCaseView, TreeView,
    ValidationView, VersionView,
};

/// A page of results with the total that matched.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}
