//! The Docker engine through bollard: build an image from a context directory, run it as a
//! session container (limits, no capabilities, no new privileges, no Docker socket, non-root
//! where the image allows, a network of its own, labels tying it to its session and tenant), and
//! remove what sessions leave behind.

use std::{collections::HashMap, path::Path, time::Duration};

use bollard::{
    Docker,
    models::{ContainerCreateBody, ContainerUpdateBody, HostConfig, NetworkCreateRequest},
    query_parameters::{
        BuildImageOptions, CreateContainerOptions, EventsOptions, ListContainersOptions,
        ListImagesOptions, ListNetworksOptions, RemoveContainerOptions, RemoveImageOptions,
    },
};
use futures::StreamExt;
use labwright_service::docker::DockerError;
use labwright_wire::docker::{Installation, labels};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("docker engine: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("docker engine address: {0}")]
    Address(String),
    #[error("image build failed: {0}")]
    BuildFailed(String),
    #[error("image build took longer than {0} s")]
    BuildTimeout(u64),
    #[error("build context: {0}")]
    Context(String),
    /// The image asks for something sessions may not have (root).
    #[error("{0}")]
    Refused(String),
}

impl EngineError {
    /// Worth retrying on another worker (the engine is unreachable), as opposed to a failure of
    /// the user's repository.
    pub fn is_infrastructure(&self) -> bool {
        matches!(self, EngineError::Docker(_))
    }
}

/// Limits of a session container.
#[derive(Clone, Debug)]
pub struct Limits {
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
}

/// Limits of an image build: every `RUN` step's container gets them, on a network of the
/// build's own.
#[derive(Clone, Debug)]
pub struct BuildLimits {
    /// Memory of each step, swap included (the classic builder takes an `i32` of bytes).
    pub memory_bytes: i32,
    /// CPU quota per 100 ms period, in microseconds (1 CPU = 100 000).
    pub cpu_quota: i32,
    pub timeout: Duration,
    /// Bytes of build output passed on to the log; past them one line says the rest was cut.
    pub max_log_bytes: u64,
    /// Reuse cached layers (of any tenant's builds).
    pub reuse_cache: bool,
    /// Processes of each step. The classic builder has no parameter for it: each step's
    /// container gets it as it joins the build's network (see [`Engine::limit_build_pids`]).
    pub pids: i64,
}

/// The defaults of the worker's config (`build_*`).
impl Default for BuildLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 1 << 30,
            cpu_quota: CPU_PERIOD,
            timeout: Duration::from_secs(900),
            max_log_bytes: 1 << 20,
            reuse_cache: false,
            pids: 512,
        }
    }
}

const CPU_PERIOD: i32 = 100_000;

/// Lines of build output kept to explain a failure.
const RECENT_LINES: usize = 40;

/// The failing tool's own error among the last lines of a build's output: the last line that
/// says error (npm's `ERR!`, pip's `ERROR:`, a compiler's `error:`…), else the last line the
/// step printed; never the builder's own lines. Colour codes removed.
fn tool_error(recent: &std::collections::VecDeque<String>) -> Option<String> {
    let plain: Vec<String> = recent.iter().map(|l| strip_ansi(l)).collect();
    let own = |l: &str| {
        l.starts_with("Step ")
            || l.starts_with(" ---> ")
            || l.starts_with("--->")
            || l.starts_with("Removing intermediate container")
            || l.starts_with("Successfully ")
            || l.contains("returned a non-zero code")
    };
    let candidates: Vec<&str> = plain
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !own(l))
        .collect();
    let says_error = |l: &&str| {
        let lower = l.to_ascii_lowercase();
        (lower.contains("error") || lower.contains("err!") || lower.contains("fatal"))
            && !lower.contains("complete log")
    };
    candidates
        .iter()
        .rev()
        .find(|l| says_error(l))
        .or(candidates.last())
        .map(|l| l.to_string())
}

/// `line` without ANSI escape sequences (colours, cursor moves).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next_if_eq(&'[').is_some() {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

pub struct SessionSpec<'a> {
    pub session_id: Uuid,
    pub build_id: Uuid,
    pub tenant_id: Uuid,
    pub image: &'a str,
    pub hard_expiry_unix: i64,
    pub limits: &'a Limits,
    /// Which restart of the session this container is (0: the first run).
    pub restart: u32,
}

pub struct Started {
    pub container_id: String,
    pub network: String,
}

/// How a session's container ended by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub session_id: Uuid,
    pub tenant_id: Uuid,
    pub exit_code: i64,
    pub oom_killed: bool,
    /// When the engine saw it end (Unix milliseconds).
    pub at_unix_ms: i64,
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    /// Named by the `managed` label on everything this installation creates: sweeps touch only
    /// their own installation's containers when several share an engine.
    installation: Installation,
}

/// Name of a session's container and network.
pub fn session_name(session_id: Uuid) -> String {
    format!("lw-s-{}", session_id.simple())
}

/// The network every build runs its `RUN` steps on: one bridge for the engine, without traffic
/// between its containers (`enable_icc=false`), apart from the sessions' networks and Docker's
/// default bridge, made once and never removed (a network per build costs the engine ~0.25 s to
/// create and remove, on every build's critical path). Shared by every installation on the
/// engine, so it carries no installation's label and no sweep removes it.
const BUILD_NETWORK: &str = "lw-builds";

/// The bridge name of [`BUILD_NETWORK`] (a fixed id: `lwsbx` + 10 hex digits).
const BUILD_NETWORK_ID: Uuid = Uuid::from_u128(0x6275_696c_6473_0000_0000_0000_0000_0001);

/// The generated Dockerfile's name in the build context; `.dockerignore` lists it so that
/// `COPY . /app` does not put it in the image.
const GENERATED: &str = ".labwright.Dockerfile";

impl Engine {
    /// Connects to `host` (`unix://…`, `tcp://…`, or empty for `DOCKER_HOST`/the default
    /// socket) and agrees on an API version the engine speaks.
    pub async fn connect(host: &str, namespace: &str) -> Result<Self, EngineError> {
        let docker = match labwright_service::docker::connect(host, 600).await {
            Ok(c) => c.docker,
            Err(DockerError::Engine(e)) => return Err(EngineError::Docker(e)),
            Err(e @ DockerError::Address(_)) => return Err(EngineError::Address(e.to_string())),
        };
        let installation = Installation::new(namespace);
        Ok(Self {
            docker,
            installation,
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Tag of a build's image (see [`Installation::image_repository`]).
    pub fn image_tag(&self, build_id: Uuid) -> String {
        format!("{}:latest", self.installation.image_repository(build_id))
    }

    /// Builds `context` into an image tagged [`Engine::image_tag`]. `dockerfile` is a generated
    /// Dockerfile to use instead of the context's own. Every output line goes to `log`.
    pub async fn build(
        &self,
        context: &Path,
        dockerfile: Option<&str>,
        build_id: Uuid,
        limits: &BuildLimits,
        log: &mut (dyn FnMut(String) + Send),
    ) -> Result<String, EngineError> {
        let dir = context.to_path_buf();
        let generated = dockerfile.map(str::to_owned);
        let tar = tokio::task::spawn_blocking(move || context_tar(&dir, generated.as_deref()))
            .await
            .map_err(|e| EngineError::Context(e.to_string()))?
            .map_err(|e| EngineError::Context(e.to_string()))?;
        let network = self.ensure_build_network().await?;
        self.build_on(tar, dockerfile.is_some(), build_id, &network, limits, log)
            .await
    }

    /// The build network, created if missing (two workers racing both succeed).
    async fn ensure_build_network(&self) -> Result<String, EngineError> {
        let (name, id) = (BUILD_NETWORK.to_string(), BUILD_NETWORK_ID);
        let exists = self
            .docker
            .inspect_network(
                &name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await;
        match exists {
            Ok(_) => return Ok(name),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        match self.create_network(&name, id, HashMap::new()).await {
            Ok(()) => Ok(name),
            Err(EngineError::Docker(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                ..
            })) => Ok(name),
            Err(e) => Err(e),
        }
    }

    /// A bridge network without traffic between its containers, on a bridge named for the
    /// egress rules ([`labwright_wire::docker::bridge_name`]).
    async fn create_network(
        &self,
        name: &str,
        id: Uuid,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        self.docker
            .create_network(NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".into()),
                labels: Some(labels),
                options: Some(HashMap::from([
                    (
                        "com.docker.network.bridge.enable_icc".to_string(),
                        "false".to_string(),
                    ),
                    (
                        "com.docker.network.bridge.name".to_string(),
                        labwright_wire::docker::bridge_name(id),
                    ),
                ])),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn build_on(
        &self,
        tar: Vec<u8>,
        generated: bool,
        build_id: Uuid,
        network: &str,
        limits: &BuildLimits,
        log: &mut (dyn FnMut(String) + Send),
    ) -> Result<String, EngineError> {
        let timeout = limits.timeout;
        let tag = self.image_tag(build_id);
        let options = BuildImageOptions {
            dockerfile: if generated { GENERATED } else { "Dockerfile" }.into(),
            t: Some(tag.clone()),
            rm: true,
            forcerm: true,
            nocache: !limits.reuse_cache,
            memory: Some(limits.memory_bytes),
            memswap: Some(limits.memory_bytes),
            cpuperiod: Some(CPU_PERIOD),
            cpuquota: Some(limits.cpu_quota),
            networkmode: Some(network.to_string()),
            ..Default::default()
        };
        let mut logged: u64 = 0;
        let mut cut = false;
        let max_log = limits.max_log_bytes;
        // The last lines of output (kept past the log cap): a failure names the tool's own error.
        let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut log_line = |line: &str| {
            if recent.len() == RECENT_LINES {
                recent.pop_front();
            }
            recent.push_back(line.chars().take(512).collect());
            if cut {
                return;
            }
            logged += line.len() as u64 + 1;
            if logged > max_log {
                cut = true;
                log(format!(
                    "build log truncated: it passed {max_log} bytes; the build goes on, its \
                     later output is not kept"
                ));
            } else {
                log(line.to_string());
            }
        };
        let pids = self.limit_build_pids(network, limits.pids);
        let run = async {
            let mut stream =
                self.docker
                    .build_image(options, None, Some(bollard::body_full(tar.into())));
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| match e {
                    bollard::errors::Error::DockerStreamError { error } => {
                        EngineError::BuildFailed(error)
                    }
                    bollard::errors::Error::DockerResponseServerError { message, .. } => {
                        EngineError::BuildFailed(message)
                    }
                    other => EngineError::Docker(other),
                })?;
                if let Some(detail) = info.error_detail {
                    return Err(EngineError::BuildFailed(
                        detail.message.unwrap_or_else(|| "unknown error".into()),
                    ));
                }
                for text in [info.stream, info.status].into_iter().flatten() {
                    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                        log_line(line);
                    }
                }
            }
            Ok(())
        };
        let result = tokio::time::timeout(timeout, run).await;
        pids.abort();
        match result.map_err(|_| EngineError::BuildTimeout(timeout.as_secs()))? {
            Ok(()) => Ok(tag),
            Err(EngineError::BuildFailed(message)) => {
                Err(EngineError::BuildFailed(match tool_error(&recent) {
                    Some(line) => format!("{message}: {line}"),
                    None => message,
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// Gives every container that joins `network` (a build's `RUN` steps) a pids limit, through
    /// the engine's events from now on (replayed from a second ago, so a step that starts before
    /// the subscription is not missed). A step runs a moment before its limit lands; its memory
    /// limit bounds what it can fork meanwhile.
    fn limit_build_pids(&self, network: &str, pids: i64) -> tokio::task::JoinHandle<()> {
        let docker = self.docker.clone();
        let since = (chrono::Utc::now().timestamp() - 1).to_string();
        let filters = HashMap::from([
            ("type".to_string(), vec!["network".to_string()]),
            ("event".to_string(), vec!["connect".to_string()]),
            ("network".to_string(), vec![network.to_string()]),
        ]);
        tokio::spawn(async move {
            let mut events = docker.events(Some(EventsOptions {
                since: Some(since),
                filters: Some(filters),
                ..Default::default()
            }));
            while let Some(Ok(event)) = events.next().await {
                let Some(container) = event
                    .actor
                    .and_then(|a| a.attributes)
                    .and_then(|a| a.get("container").cloned())
                else {
                    continue;
                };
                let update = ContainerUpdateBody {
                    pids_limit: Some(pids),
                    ..Default::default()
                };
                if let Err(e) = docker.update_container(&container, update).await {
                    tracing::debug!(container, error = %e, "build step pids limit not set");
                }
            }
        })
    }

    /// Starts a session: a bridge network of its own and the container on it.
    pub async fn start_session(&self, spec: &SessionSpec<'_>) -> Result<Started, EngineError> {
        let name = session_name(spec.session_id);
        // A redelivered job finds what its first attempt left: start clean.
        self.remove_session(spec.session_id).await?;
        let labels = self.session_labels(spec);
        self.create_network(&name, spec.session_id, labels).await?;
        self.run_container(spec).await
    }

    /// The labels of a session's network and container.
    fn session_labels(&self, spec: &SessionSpec<'_>) -> HashMap<String, String> {
        HashMap::from([
            (
                labels::MANAGED.to_string(),
                self.installation.managed().to_string(),
            ),
            (labels::SESSION.to_string(), spec.session_id.to_string()),
            (labels::BUILD.to_string(), spec.build_id.to_string()),
            (labels::TENANT.to_string(), spec.tenant_id.to_string()),
            (
                labels::HARD_EXPIRY.to_string(),
                spec.hard_expiry_unix.to_string(),
            ),
        ])
    }

    /// Creates and starts a session's container (its network exists).
    async fn run_container(&self, spec: &SessionSpec<'_>) -> Result<Started, EngineError> {
        let name = session_name(spec.session_id);
        let mut labels = self.session_labels(spec);
        labels.insert(labels::RESTART.to_string(), spec.restart.to_string());
        // Never root: the image's own USER if it names one (refused below if that is uid 0 in
        // any spelling), else nobody.
        let image_user = self
            .docker
            .inspect_image(spec.image)
            .await?
            .config
            .and_then(|c| c.user)
            .unwrap_or_default();
        let user = if image_user.is_empty() {
            "65534:65534".to_string()
        } else {
            image_user
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.to_string()),
            user: Some(user.clone()),
            labels: Some(labels),
            tty: Some(false),
            open_stdin: Some(false),
            host_config: Some(HostConfig {
                memory: Some(spec.limits.memory_bytes),
                memory_swap: Some(spec.limits.memory_bytes),
                nano_cpus: Some(spec.limits.nano_cpus),
                pids_limit: Some(spec.limits.pids),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                network_mode: Some(name.clone()),
                init: Some(true),
                privileged: Some(false),
                auto_remove: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await?;
        if let Err(e) = self.refuse_root(&created.id, &user).await {
            self.remove_session(spec.session_id).await?;
            return Err(e);
        }
        self.docker.start_container(&created.id, None).await?;
        Ok(Started {
            container_id: created.id,
            network: name,
        })
    }

    /// Makes a session's container again from its image, for its restart number `restart` (the
    /// network and image stay; a running app is killed first), with the session's tenant.
    /// `None`: this engine has no container for the session, or it is that restart (or a later
    /// one) already.
    pub async fn restart_session(
        &self,
        session_id: Uuid,
        restart: u32,
        limits: &Limits,
    ) -> Result<Option<(Started, Uuid)>, EngineError> {
        let name = session_name(session_id);
        let inspected = match self.docker.inspect_container(&name, None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let config = inspected.config.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        if labels.get(labels::MANAGED).map(String::as_str) != Some(self.installation.managed()) {
            return Ok(None);
        }
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        if label(labels::RESTART).parse::<u32>().unwrap_or(0) >= restart {
            return Ok(None);
        }
        let (Ok(build_id), Ok(tenant_id), Some(image)) = (
            label(labels::BUILD).parse::<Uuid>(),
            label(labels::TENANT).parse::<Uuid>(),
            config.image,
        ) else {
            return Ok(None);
        };
        self.remove_container(&name).await?;
        let started = self
            .run_container(&SessionSpec {
                session_id,
                build_id,
                tenant_id,
                image: &image,
                hard_expiry_unix: label(labels::HARD_EXPIRY).parse().unwrap_or(0),
                limits,
                restart,
            })
            .await?;
        Ok(Some((started, tenant_id)))
    }

    /// How a session's container ended, if it ended by itself: `exited` (not being removed,
    /// not gone, not running) and labelled by this installation.
    pub async fn exit_of(&self, container: &str) -> Result<Option<Exit>, EngineError> {
        let c = match self.docker.inspect_container(container, None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
        if labels.get(labels::MANAGED).map(String::as_str) != Some(self.installation.managed()) {
            return Ok(None);
        }
        let parse = |k: &str| labels.get(k).and_then(|v| v.parse::<Uuid>().ok());
        let (Some(session_id), Some(tenant_id), Some(state)) =
            (parse(labels::SESSION), parse(labels::TENANT), c.state)
        else {
            return Ok(None);
        };
        if state.status != Some(bollard::models::ContainerStateStatusEnum::EXITED) {
            return Ok(None);
        }
        let at_unix_ms = state
            .finished_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(
                || chrono::Utc::now().timestamp_millis(),
                |t| t.timestamp_millis(),
            );
        Ok(Some(Exit {
            session_id,
            tenant_id,
            exit_code: state.exit_code.unwrap_or(-1),
            oom_killed: state.oom_killed.unwrap_or(false),
            at_unix_ms,
        }))
    }

    /// The ids of this installation's containers that die, from the engine's events since
    /// `since_unix` (replayed from the engine's recent events), as they happen.
    pub fn container_deaths(
        &self,
        since_unix: i64,
    ) -> impl futures::Stream<Item = Result<(String, i64), EngineError>> + use<> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), vec!["die".to_string()]),
            ("label".to_string(), vec![self.installation.label_filter()]),
        ]);
        self.docker
            .events(Some(EventsOptions {
                since: Some(since_unix.to_string()),
                filters: Some(filters),
                ..Default::default()
            }))
            .filter_map(|e| async move {
                match e {
                    Err(e) => Some(Err(EngineError::Docker(e))),
                    Ok(ev) => {
                        let id = ev.actor.and_then(|a| a.id)?;
                        Some(Ok((id, ev.time.unwrap_or(0))))
                    }
                }
            })
    }

    /// A container's output (stdout and stderr) from its start, following it until it stops.
    pub fn output(
        &self,
        container: &str,
    ) -> impl futures::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + use<>
    {
        self.docker.logs(
            container,
            Some(bollard::query_parameters::LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        )
    }

    /// Refuses a container whose user is root: `0`, `root`, `00`, `+0`, with any group, or a
    /// name that the image's own `/etc/passwd` gives uid 0.
    async fn refuse_root(&self, container: &str, user: &str) -> Result<(), EngineError> {
        let name = user.split(':').next().unwrap_or(user);
        let passwd = if name.parse::<i64>().is_ok() || name == "root" {
            None
        } else {
            self.read_file(container, "/etc/passwd").await?
        };
        match crate::user::check(user, passwd.as_deref()) {
            Ok(()) => Ok(()),
            Err(why) => Err(EngineError::Refused(why)),
        }
    }

    /// A small regular file from a created container (`None` if it is missing or not a regular
    /// file).
    async fn read_file(&self, container: &str, path: &str) -> Result<Option<String>, EngineError> {
        let mut stream = self.docker.download_from_container(
            container,
            Some(bollard::query_parameters::DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => bytes.extend_from_slice(&c),
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            if bytes.len() > 4 << 20 {
                return Ok(None);
            }
        }
        let mut archive = tar::Archive::new(bytes.as_slice());
        let Ok(mut entries) = archive.entries() else {
            return Ok(None);
        };
        let Some(Ok(mut entry)) = entries.next() else {
            return Ok(None);
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Ok(None);
        }
        let mut text = String::new();
        use std::io::Read;
        Ok(entry.read_to_string(&mut text).ok().map(|_| text))
    }

    /// Removes a session's container, network and image. Returns whether a container was there.
    pub async fn remove_session(&self, session_id: Uuid) -> Result<bool, EngineError> {
        let name = session_name(session_id);
        let mut removed = false;
        let mut image = None;
        match self.docker.inspect_container(&name, None).await {
            Ok(c) => {
                // Only the image its build made (never a base image it might run).
                image = c
                    .config
                    .and_then(|c| c.labels)
                    .and_then(|l| l.get(labels::BUILD).and_then(|b| b.parse::<Uuid>().ok()))
                    .map(|b| self.image_tag(b));
                self.remove_container(&name).await?;
                removed = true;
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        match self.docker.remove_network(&name).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(image) = image {
            self.remove_image_quietly(&image).await;
        }
        Ok(removed)
    }

    /// Removes a container, running or not, with its anonymous volumes.
    async fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .remove_container(
                name,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await?;
        Ok(())
    }

    async fn remove_image_quietly(&self, image: &str) {
        if let Err(e) = self
            .docker
            .remove_image(
                image,
                Some(RemoveImageOptions {
                    force: true,
                    ..Default::default()
                }),
                None,
            )
            .await
            && !is_not_found(&e)
        {
            tracing::debug!(image, error = %e, "image not removed");
        }
    }

    /// Sessions (by their labels) that have containers on this engine, with their state.
    pub async fn sessions(&self) -> Result<Vec<SessionContainer>, EngineError> {
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([(
                    "label".to_string(),
                    vec![self.installation.label_filter()],
                )])),
                ..Default::default()
            }))
            .await?;
        Ok(containers
            .into_iter()
            .filter_map(|c| {
                let labels = c.labels.unwrap_or_default();
                let parse = |k: &str| labels.get(k).and_then(|v| v.parse::<Uuid>().ok());
                Some(SessionContainer {
                    session_id: parse(labels::SESSION)?,
                    build_id: parse(labels::BUILD)?,
                    tenant_id: parse(labels::TENANT)?,
                    hard_expiry_unix: labels
                        .get(labels::HARD_EXPIRY)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    created_unix: c.created.unwrap_or(0),
                    container_id: c.id.clone().unwrap_or_default(),
                    running: c.state.map(|s| s.to_string()) == Some("running".into()),
                })
            })
            .collect())
    }

    /// Removes labelled networks without containers and labelled images without a session
    /// container that are older than `min_age` (younger ones may belong to a build in progress).
    pub async fn remove_leftovers(&self, min_age: Duration) -> Result<usize, EngineError> {
        let now = chrono::Utc::now().timestamp();
        let managed =
            HashMap::from([("label".to_string(), vec![self.installation.label_filter()])]);
        let mut removed = 0;
        let in_use: std::collections::HashSet<String> = self
            .sessions()
            .await?
            .into_iter()
            .map(|s| self.image_tag(s.build_id))
            .collect();
        let images = self
            .docker
            .list_images(Some(ListImagesOptions {
                all: false,
                filters: Some(HashMap::from([(
                    "reference".to_string(),
                    vec![self.installation.image_filter()],
                )])),
                ..Default::default()
            }))
            .await?;
        for image in images {
            let old = now - image.created > min_age.as_secs() as i64;
            let used = image.repo_tags.iter().any(|t| in_use.contains(t));
            if old && !used && image.containers <= 0 {
                self.remove_image_quietly(&image.id).await;
                removed += 1;
            }
        }
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(managed),
            }))
            .await?;
        for n in networks {
            let Some(name) = n.name else { continue };
            // A young network may be a session starting; an old one in use refuses removal.
            let created = n
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|c| c.timestamp())
                .unwrap_or(now);
            if now - created > min_age.as_secs() as i64
                && self.docker.remove_network(&name).await.is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The build context as a tar: the directory, plus the generated Dockerfile if there is one,
/// listed in `.dockerignore` (the repository's own lines kept) so that it stays out of the image.
fn context_tar(dir: &Path, generated: Option<&str>) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let Some(text) = generated else {
        builder.append_dir_all(".", dir)?;
        return builder.into_inner();
    };
    let mut ignore = String::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let path = entry.path();
        if name == ".dockerignore" {
            if path.symlink_metadata()?.is_file() {
                ignore = std::fs::read_to_string(&path).unwrap_or_default();
            }
            continue;
        }
        if name == GENERATED {
            continue;
        }
        if path.symlink_metadata()?.is_dir() {
            builder.append_dir_all(&name, &path)?;
        } else {
            builder.append_path_with_name(&path, &name)?;
        }
    }
    if !ignore.is_empty() && !ignore.ends_with('\n') {
        ignore.push('\n');
    }
    ignore.push_str(GENERATED);
    ignore.push('\n');
    for (name, data) in [(GENERATED, text), (".dockerignore", ignore.as_str())] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, data.as_bytes())?;
    }
    builder.into_inner()
}

#[derive(Clone, Debug)]
pub struct SessionContainer {
    pub session_id: Uuid,
    pub build_id: Uuid,
    pub tenant_id: Uuid,
    pub hard_expiry_unix: i64,
    pub created_unix: i64,
    pub container_id: String,
    pub running: bool,
}

/// Gone already, or going: another worker on the same engine got the same `Stop` (it is fanned
/// out to every worker) and is removing it.
fn is_not_found(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => true,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message,
        } => message.contains("already in progress"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_build_names_the_tools_own_error() {
        let recent = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            tool_error(&recent(&[
                "Step 3/5 : RUN npm install",
                " ---> Running in 0123",
                "npm \u{1b}[31mERR!\u{1b}[0m 404 Not Found - GET https://registry/left-padd",
                "npm ERR! A complete log of this run can be found in: /root/.npm/x.log",
                "The command '/bin/sh -c npm install' returned a non-zero code: 1",
            ])),
            Some("npm ERR! 404 Not Found - GET https://registry/left-padd".into())
        );
        assert_eq!(
            tool_error(&recent(&[
                "Step 2/2 : RUN false",
                " ---> Running in 1",
                "boom"
            ])),
            Some("boom".into())
        );
        assert_eq!(tool_error(&recent(&["Step 2/2 : RUN false"])), None);
    }
}
