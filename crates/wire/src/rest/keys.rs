//! The caller and API keys (`/api/v1/whoami`, `/api/v1/keys`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub key_id: Uuid,
    pub key_name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    /// First characters of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Host enrollment tokens only: the one host name the token may open the host link as (set
    /// at creation, or by the token's first hello).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    /// `viewer`, `operator`, `admin`, or `host` (a host enrollment token).
    pub role: String,
    /// Host enrollment tokens only: bind the token to this host name now. Without it, the token
    /// is bound to the host name of its first hello.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: KeyView,
    /// The key itself. Shown only in this response; store it now.
    pub secret: String,
}
