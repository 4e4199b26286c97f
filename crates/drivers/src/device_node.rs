//! Why a device node could not be used, in words a lab owner can act on: the node is missing, the
//! agent's user lacks the group that owns it (named, e.g. `video`, `audio`, `dialout`), another
//! program holds it, or it went away (unplugged).

use std::{io, path::Path};

/// A problem opening or using a device node. The message names the node and, for a permission
/// problem, the group to join.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeProblem {
    #[error("{path}: no such device (not plugged in, or the driver is not loaded)")]
    Missing { path: String },
    #[error("{path}: permission denied{}", group_hint(.group.as_deref()))]
    PermissionDenied { path: String, group: Option<String> },
    #[error("{path}: busy (another program has it open)")]
    Busy { path: String },
    #[error("{path}: device gone (unplugged)")]
    Gone { path: String },
    #[error("{path}: {message}")]
    Other { path: String, message: String },
}

fn group_hint(group: Option<&str>) -> String {
    match group {
        Some(g) => format!(
            " (the node belongs to group `{g}`: add the agent's user to it, e.g. `usermod -aG {g} labwright`)"
        ),
        None => " (the agent's user may not open it)".into(),
    }
}

impl NodeProblem {
    /// Classifies an I/O error on `path` (an `open`, `read` or `ioctl` of the node).
    pub fn from_io(path: &str, e: &io::Error) -> Self {
        Self::from_errno(path, e.raw_os_error(), &e.to_string())
    }

    /// Classifies an errno (`None`: not an OS error) with `message` for the other cases.
    pub fn from_errno(path: &str, errno: Option<i32>, message: &str) -> Self {
        let path = path.to_string();
        match errno {
            Some(libc_errno::ENOENT) => Self::Missing { path },
            Some(libc_errno::EACCES | libc_errno::EPERM) => {
                let group = owning_group(Path::new(&path));
                Self::PermissionDenied { path, group }
            }
            Some(libc_errno::EBUSY) => Self::Busy { path },
            Some(libc_errno::ENODEV | libc_errno::ENXIO | libc_errno::ESHUTDOWN) => {
                Self::Gone { path }
            }
            _ => Self::Other {
                path,
                message: message.to_string(),
            },
        }
    }

    /// The device went away or is not there: worth retrying later (hot-plug).
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Missing { .. } | Self::Gone { .. })
    }
}

/// Error numbers as `nix` names them, so the match above reads as errno names.
mod libc_errno {
    use nix::errno::Errno;
    pub const ENOENT: i32 = Errno::ENOENT as i32;
    pub const EACCES: i32 = Errno::EACCES as i32;
    pub const EPERM: i32 = Errno::EPERM as i32;
    pub const EBUSY: i32 = Errno::EBUSY as i32;
    pub const ENODEV: i32 = Errno::ENODEV as i32;
    pub const ENXIO: i32 = Errno::ENXIO as i32;
    pub const ESHUTDOWN: i32 = Errno::ESHUTDOWN as i32;
}

/// The name of the group owning `path` (following symlinks such as `/dev/v4l/by-id/...`).
pub fn owning_group(path: &Path) -> Option<String> {
    let st = nix::sys::stat::stat(path).ok()?;
    let gid = nix::unistd::Gid::from_raw(st.st_gid);
    match nix::unistd::Group::from_gid(gid) {
        Ok(Some(g)) => Some(g.name),
        _ => Some(gid.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_and_name_the_node() {
        let missing = NodeProblem::from_io(
            "/dev/video9",
            &io::Error::from_raw_os_error(libc_errno::ENOENT),
        );
        assert!(missing.is_absent());
        assert!(
            missing
                .to_string()
                .starts_with("/dev/video9: no such device")
        );
        let gone = NodeProblem::from_errno("/dev/ttyACM0", Some(libc_errno::ENODEV), "x");
        assert_eq!(
            gone,
            NodeProblem::Gone {
                path: "/dev/ttyACM0".into()
            }
        );
        let busy = NodeProblem::from_errno("/dev/video0", Some(libc_errno::EBUSY), "x");
        assert!(busy.to_string().contains("busy"), "{busy}");
        assert!(!busy.is_absent());
        let other = NodeProblem::from_errno("/dev/video0", Some(5), "input/output error");
        assert_eq!(other.to_string(), "/dev/video0: input/output error");
    }

    #[test]
    fn permission_denied_names_the_group_owning_the_node() {
        // /dev/null exists everywhere; its group is root's (gid 0).
        let p = NodeProblem::from_errno("/dev/null", Some(libc_errno::EACCES), "x");
        let NodeProblem::PermissionDenied { group, .. } = &p else {
            panic!("not a permission problem: {p:?}")
        };
        let group = group.clone().expect("group of /dev/null");
        assert!(
            p.to_string().contains(&format!(
                "add the agent's user to it, e.g. `usermod -aG {group}"
            )),
            "{p}"
        );
        let unknown = NodeProblem::from_errno("/nonexistent/x", Some(libc_errno::EPERM), "x");
        assert!(unknown.to_string().contains("may not open it"), "{unknown}");
    }
}
