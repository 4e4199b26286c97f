//! The Docker engine connection (feature `docker`), for the build worker and the terminal
//! gateway: the engine's address, connecting, and agreeing on an API version.

use std::path::PathBuf;

use bollard::Docker;

/// The socket used when neither the config nor `DOCKER_HOST` names one.
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Where the engine listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineAddr {
    /// A Unix socket path.
    Unix(PathBuf),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("unsupported Docker host {0:?}: expected unix://, tcp:// or http://")]
    Address(String),
    #[error("Docker engine: {0}")]
    Engine(#[from] bollard::errors::Error),
}

impl EngineAddr {
    /// `unix:///path`, `tcp://host:port` or `http://host:port`; empty = `DOCKER_HOST`, else the
    /// default socket.
    pub fn parse(host: &str) -> Result<Self, DockerError> {
        let host = if host.is_empty() {
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_SOCKET.into())
        } else {
            host.to_string()
        };
        if let Some(p) = host.strip_prefix("unix://") {
            Ok(Self::Unix(PathBuf::from(p)))
        } else if let Some(a) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            Ok(Self::Tcp(a.trim_end_matches('/').to_string()))
        } else {
            Err(DockerError::Address(host))
        }
    }

    /// Whether `host` (a config value) has a supported form; empty is (it means `DOCKER_HOST`).
    pub fn is_supported(host: &str) -> bool {
        host.is_empty()
            || host.starts_with("unix://")
            || host.starts_with("tcp://")
            || host.starts_with("http://")
    }
}

/// A connected engine: the client (on the API version agreed with the engine) and its address.
#[derive(Clone)]
pub struct Connection {
    pub docker: Docker,
    pub addr: EngineAddr,
}

impl Connection {
    /// The agreed API version, as in request paths: `v1.41`.
    pub fn version_path(&self) -> String {
        let v = self.docker.client_version();
        format!("v{}.{}", v.major_version, v.minor_version)
    }
}

/// Connects to the engine at `host` (see [`EngineAddr::parse`]) with a request timeout of
/// `timeout_secs`, agrees on the API version and checks the engine answers.
pub async fn connect(host: &str, timeout_secs: u64) -> Result<Connection, DockerError> {
    let addr = EngineAddr::parse(host)?;
    let docker = match &addr {
        EngineAddr::Unix(p) => Docker::connect_with_unix(
            &p.to_string_lossy(),
            timeout_secs,
            bollard::API_DEFAULT_VERSION,
        )?,
        EngineAddr::Tcp(a) => Docker::connect_with_http(
            &format!("tcp://{a}"),
            timeout_secs,
            bollard::API_DEFAULT_VERSION,
        )?,
    };
    let docker = docker.negotiate_version().await?;
    docker.ping().await?;
    Ok(Connection { docker, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            EngineAddr::parse("unix:///run/docker.sock").expect("unix"),
            EngineAddr::Unix("/run/docker.sock".into())
        );
        assert_eq!(
            EngineAddr::parse("tcp://10.0.0.1:2375").expect("tcp"),
            EngineAddr::Tcp("10.0.0.1:2375".into())
        );
        assert_eq!(
            EngineAddr::parse("http://docker:2375/").expect("http"),
            EngineAddr::Tcp("docker:2375".into())
        );
        assert!(matches!(
            EngineAddr::parse("ssh://x"),
            Err(DockerError::Address(_))
        ));
        assert!(EngineAddr::is_supported(""));
        assert!(!EngineAddr::is_supported("ssh://x"));
    }
}
