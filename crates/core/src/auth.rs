//! Roles and the permissions they carry. Authentication (key lookup) lives in the api-server; the
//! rules about who may do what live here so every edge applies the same ones.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::validate::ValidationError;

/// What a key may do inside its tenant. Ordered from least to most privileged for people;
/// `Host` is separate: it may only open the host link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read the fleet, executions and results.
    Viewer,
    /// Everything a viewer can, plus run tests, control devices and start sandboxes.
    Operator,
    /// Everything, including managing keys.
    Admin,
    /// A host enrollment token: opens the host link, nothing else.
    Host,
}

/// An action a caller attempts, checked against its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    ReadFleet,
    ControlDevices,
    ManageKeys,
    ConnectHost,
    /// Start repo sandboxes (builds), cancel them, end and extend their sessions. Reading them
    /// is [`Permission::ReadFleet`].
    UseSandboxes,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Admin, Role::Host];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Host => "host",
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Host => permission == ConnectHost,
            Role::Viewer => permission == ReadFleet,
            Role::Operator => matches!(permission, ReadFleet | ControlDevices | UseSandboxes),
            Role::Admin => matches!(
                permission,
                ReadFleet | ControlDevices | ManageKeys | UseSandboxes
            ),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "role",
                    format!("unknown role {s:?} (expected viewer, operator, admin or host)"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_can_only_connect_and_people_cannot_connect_hosts() {
        assert!(Role::Host.allows(Permission::ConnectHost));
        assert!(!Role::Host.allows(Permission::ReadFleet));
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert!(!r.allows(Permission::ConnectHost), "{r}");
            assert!(r.allows(Permission::ReadFleet), "{r}");
        }
        assert!(!Role::Viewer.allows(Permission::ControlDevices));
        assert!(!Role::Viewer.allows(Permission::UseSandboxes));
        assert!(!Role::Host.allows(Permission::UseSandboxes));
        assert!(Role::Operator.allows(Permission::UseSandboxes));
        assert!(Role::Admin.allows(Permission::UseSandboxes));
        assert!(!Role::Operator.allows(Permission::ManageKeys));
        assert!(Role::Admin.allows(Permission::ManageKeys));
    }
}
