//! Docker labels and image names: how the build worker marks what it creates and how the
//! terminal gateway (and the worker's sweeps) recognise it. Several installations may share one
//! engine; each touches only what carries its own [`Installation`] value.

use uuid::Uuid;

/// Label keys on every container and network a worker creates.
pub mod labels {
    /// Its value names the installation ([`super::Installation`]): a sweep only touches what its
    /// own installation made.
    pub const MANAGED: &str = "io.labwright.managed";
    pub const TENANT: &str = "io.labwright.tenant";
    pub const BUILD: &str = "io.labwright.build";
    pub const SESSION: &str = "io.labwright.session";
    /// Unix seconds after which the session must be gone whatever the api-server says (the
    /// extension cap): the safety net if the api-server is unreachable.
    pub const HARD_EXPIRY: &str = "io.labwright.hard-expiry";
    /// Which restart of its session a container is (`0` for the first).
    pub const RESTART: &str = "io.labwright.restart";
}

/// Start of the Linux bridge name of every network a worker creates for a session or a build
/// (`lwsbx` + 10 hex digits of its id: 15 bytes, the kernel's limit). The egress rules
/// (`scripts/sandbox-egress`) match `lwsbx+`.
pub const BRIDGE_PREFIX: &str = "lwsbx";

/// The bridge name of a session's or build's network.
pub fn bridge_name(id: Uuid) -> String {
    let hex = id.simple().to_string();
    format!("{BRIDGE_PREFIX}{}", &hex[..10])
}

/// One installation on a Docker engine, named after its namespace (`default` without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation(String);

impl Installation {
    /// The installation of `namespace` (the broker namespace, `t1.` or `""`).
    pub fn new(namespace: &str) -> Self {
        if namespace.is_empty() {
            Self("default".into())
        } else {
            Self(namespace.trim_end_matches('.').into())
        }
    }

    /// Value of the [`labels::MANAGED`] label on what this installation creates.
    pub fn managed(&self) -> &str {
        &self.0
    }

    /// Docker `label` filter that selects what this installation created.
    pub fn label_filter(&self) -> String {
        format!("{}={}", labels::MANAGED, self.0)
    }

    /// Repository of a build's image. Images carry no labels (each label would be one more build
    /// step, ~0.1 s each with the classic builder): the repository name marks them as this
    /// installation's.
    pub fn image_repository(&self, build_id: Uuid) -> String {
        format!("labwright-{}/build-{}", self.0, build_id.simple())
    }

    /// Docker `reference` filter that selects this installation's images.
    pub fn image_filter(&self) -> String {
        format!("labwright-{}/*", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installation_is_named_after_its_namespace() {
        assert_eq!(Installation::new("").managed(), "default");
        let i = Installation::new("t1a2.");
        assert_eq!(i.managed(), "t1a2");
        assert_eq!(i.label_filter(), "io.labwright.managed=t1a2");
        let b = Uuid::nil();
        assert_eq!(
            i.image_repository(b),
            "labwright-t1a2/build-00000000000000000000000000000000"
        );
        assert_eq!(i.image_filter(), "labwright-t1a2/*");
        assert_eq!(bridge_name(Uuid::max()), "lwsbxffffffffff");
    }
}
