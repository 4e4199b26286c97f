//! Cloning a user's repository: shallow, only over the transports [`RepoUrl`] allows, with a
//! time and a size limit, no prompts, no hooks, no system or user git configuration.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use std::net::IpAddr;

use labwright_core::build::{
    address,
    source::{RepoUrl, Scheme},
};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    #[error("repository not found or not readable: {0}")]
    NotFound(String),
    #[error("ref {0:?} not found in the repository")]
    RefNotFound(String),
    #[error("repository is larger than {0} MiB")]
    TooBig(u64),
    #[error("clone took longer than {0} s")]
    TooSlow(u64),
    #[error("git failed: {0}")]
    Failed(String),
    #[error("starting git: {0}")]
    Spawn(std::io::Error),
}

/// The addresses a repository's host name resolved to, all checked public: git connects to
/// these and no others (a second lookup could answer differently).
#[derive(Clone, Debug)]
pub struct Pinned {
    pub host: String,
    pub port: u16,
    pub addrs: Vec<IpAddr>,
}

/// Resolves the repository's host and checks every address with
/// [`labwright_core::build::address::is_internal`]; a name with any internal address is refused
/// (the message says which). An IP literal is checked as it is.
pub async fn resolve_public(url: &RepoUrl, timeout: Duration) -> Result<Pinned, String> {
    let host = url.lookup_host().to_string();
    if url.is_private_host() {
        return Err(format!(
            "{} is a private address; this worker does not clone from those",
            url.host()
        ));
    }
    let port = url.port();
    let addrs: Vec<IpAddr> =
        tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| format!("resolving {host} took longer than {} s", timeout.as_secs()))?
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .map(|a| a.ip())
            .collect();
    if addrs.is_empty() {
        return Err(format!("cannot resolve {host}: no address"));
    }
    if let Some(bad) = addrs.iter().find(|a| address::is_internal(**a)) {
        return Err(format!(
            "{host} resolves to {bad}, a loopback, private or otherwise internal address; this \
             worker does not clone from those"
        ));
    }
    Ok(Pinned { host, port, addrs })
}

impl Pinned {
    /// git configuration that makes it connect to the pinned addresses only.
    fn git_config(&self, scheme: Scheme) -> Vec<String> {
        let literal = self.host.parse::<IpAddr>().is_ok();
        match scheme {
            Scheme::Http | Scheme::Https if !literal => {
                let addrs: Vec<String> = self
                    .addrs
                    .iter()
                    .map(|a| match a {
                        IpAddr::V4(v4) => v4.to_string(),
                        IpAddr::V6(v6) => format!("[{v6}]"),
                    })
                    .collect();
                vec![
                    "-c".into(),
                    format!(
                        "http.curloptResolve={}:{}:{}",
                        self.host,
                        self.port,
                        addrs.join(",")
                    ),
                ]
            }
            _ => Vec::new(),
        }
    }

    /// The URL git is given: for `git://`, the host replaced by the pinned address (the git
    /// protocol has no other way to pin it).
    fn url(&self, url: &RepoUrl) -> String {
        if url.scheme() != Scheme::Git || self.host.parse::<IpAddr>().is_ok() {
            return url.as_str().to_string();
        }
        let addr = match self.addrs[0] {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        url.as_str().replacen(
            &format!("git://{}", url.host()),
            &format!("git://{addr}"),
            1,
        )
    }

    /// The ssh option that makes ssh connect to the pinned address.
    fn ssh_option(&self) -> Option<String> {
        (self.host.parse::<IpAddr>().is_err()).then(|| format!(" -o HostName={}", self.addrs[0]))
    }
}

pub struct CloneLimits {
    pub timeout: Duration,
    pub max_bytes: u64,
}

/// Clones `url` at `git_ref` (a branch, a tag, a full commit id, or a commit id's first 7 to 39
/// hex digits) into `dest`, which must not exist. Every line git prints goes to `log`. Leaves `dest` without its `.git` directory.
pub async fn clone(
    url: &RepoUrl,
    pin: Option<&Pinned>,
    git_ref: Option<&str>,
    dest: &Path,
    limits: &CloneLimits,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), CloneError> {
    let home = dest.with_extension("home");
    std::fs::create_dir_all(&home).map_err(CloneError::Spawn)?;
    let result = tokio::time::timeout(
        limits.timeout,
        clone_inner(
            &Target::new(url, pin),
            git_ref,
            dest,
            &home,
            limits.max_bytes,
            log,
        ),
    )
    .await
    .unwrap_or(Err(CloneError::TooSlow(limits.timeout.as_secs())));
    let _ = std::fs::remove_dir_all(&home);
    result?;
    let _ = std::fs::remove_dir_all(dest.join(".git"));
    Ok(())
}

/// What git is told: the URL to use and the configuration that pins it.
struct Target {
    url: String,
    config: Vec<String>,
    ssh: String,
}

impl Target {
    fn new(url: &RepoUrl, pin: Option<&Pinned>) -> Self {
        let mut ssh = String::from(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=15",
        );
        let Some(pin) = pin else {
            return Self {
                url: url.as_str().to_string(),
                config: Vec::new(),
                ssh,
            };
        };
        if url.scheme() == Scheme::Ssh
            && let Some(option) = pin.ssh_option()
        {
            ssh.push_str(&option);
        }
        Self {
            url: pin.url(url),
            config: pin.git_config(url.scheme()),
            ssh,
        }
    }
}

async fn clone_inner(
    target: &Target,
    git_ref: Option<&str>,
    dest: &Path,
    home: &Path,
    max_bytes: u64,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), CloneError> {
    let is_commit =
        git_ref.is_some_and(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()));
    if is_commit {
        // A commit is not a branch: init, fetch that one commit, check it out.
        std::fs::create_dir_all(dest).map_err(CloneError::Spawn)?;
        git(
            target,
            home,
            Some(dest),
            &["init", "-q"],
            max_bytes,
            dest,
            log,
        )
        .await?;
        git(
            target,
            home,
            Some(dest),
            &["remote", "add", "origin", "--", target.url.as_str()],
            max_bytes,
            dest,
            log,
        )
        .await?;
        let sha = git_ref.unwrap_or_default();
        git(
            target,
            home,
            Some(dest),
            &["fetch", "--depth", "1", "--no-tags", "origin", sha],
            max_bytes,
            dest,
            log,
        )
        .await
        .map_err(|e| not_found_ref(e, sha))?;
        git(
            target,
            home,
            Some(dest),
            &["checkout", "-q", "FETCH_HEAD"],
            max_bytes,
            dest,
            log,
        )
        .await?;
        return Ok(());
    }
    let dest_str = dest.to_string_lossy().into_owned();
    let mut args = vec![
        "clone",
        "--depth",
        "1",
        "--single-branch",
        "--no-tags",
        "--progress",
    ];
    if let Some(r) = git_ref {
        args.extend(["--branch", r]);
    }
    args.extend(["--", target.url.as_str(), dest_str.as_str()]);
    let cloned = git(target, home, None, &args, max_bytes, dest, log)
        .await
        .map_err(|e| match git_ref {
            Some(r) => not_found_ref(e, r),
            None => e,
        });
    match (cloned, git_ref) {
        (Err(CloneError::RefNotFound(_)), Some(r)) if is_short_commit(r) => {
            // Not a branch or tag: a commit's short id. A server fetches only full ids, so the
            // history is cloned (within the size limit) and the id resolved here.
            let _ = std::fs::remove_dir_all(dest);
            let args = [
                "clone",
                "--no-checkout",
                "--no-tags",
                "--progress",
                "--",
                target.url.as_str(),
                dest_str.as_str(),
            ];
            git(target, home, None, &args, max_bytes, dest, log).await?;
            let commit = format!("{r}^{{commit}}");
            git(
                target,
                home,
                Some(dest),
                &["checkout", "-q", "--detach", commit.as_str()],
                max_bytes,
                dest,
                log,
            )
            .await
            .map_err(|_| CloneError::RefNotFound(r.to_string()))
        }
        (result, _) => result,
    }
}

/// A commit id's first hex digits (git's short form), not a full one.
fn is_short_commit(r: &str) -> bool {
    (7..40).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

fn not_found_ref(e: CloneError, r: &str) -> CloneError {
    match e {
        CloneError::Failed(m) | CloneError::NotFound(m)
            if m.contains("Remote branch")
                || m.contains("couldn't find remote ref")
                || m.contains("not our ref") =>
        {
            CloneError::RefNotFound(r.to_string())
        }
        other => other,
    }
}

/// Runs one git command with a hardened environment, streaming its output to `log` and
/// killing it if `watch` grows past `max_bytes`.
async fn git(
    target: &Target,
    home: &Path,
    cwd: Option<&Path>,
    args: &[&str],
    max_bytes: u64,
    watch: &Path,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), CloneError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args([
        "-c",
        "protocol.allow=never",
        "-c",
        "protocol.https.allow=always",
        "-c",
        "protocol.http.allow=always",
        "-c",
        "protocol.ssh.allow=always",
        "-c",
        "protocol.git.allow=always",
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "credential.helper=",
        "-c",
        "advice.detachedHead=false",
        // A redirect could lead anywhere, past the address checks: never followed.
        "-c",
        "http.followRedirects=false",
    ])
    .args(&target.config)
    .args(args)
    .env_clear()
    .env(
        "PATH",
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
    )
    .env("HOME", home)
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_ASKPASS", "/bin/false")
    .env("GIT_LFS_SKIP_SMUDGE", "1")
    .env("GIT_ALLOW_PROTOCOL", "https:http:ssh:git")
    .env("GIT_SSH_COMMAND", &target.ssh)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(CloneError::Spawn)?;
    let stderr = child.stderr.take();
    let stdout = child.stdout.take();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
    for pipe in [
        stderr.map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        stdout.map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            // Progress lines end in '\r'; split on both.
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf);
                        if let Some(last) = text.split('\r').map(str::trim).rfind(|l| !l.is_empty())
                            && tx.send(last.to_string()).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let mut tail: Vec<String> = Vec::new();
    let mut size_check = tokio::time::interval(Duration::from_millis(250));
    let status = loop {
        tokio::select! {
            line = rx.recv() => {
                if let Some(line) = line {
                    let line = hide_paths(line);
                    tail.push(line.clone());
                    if tail.len() > 20 {
                        tail.remove(0);
                    }
                    log(line);
                }
            }
            _ = size_check.tick() => {
                let watch = watch.to_path_buf();
                let size = tokio::task::spawn_blocking(move || dir_size(&watch)).await.unwrap_or(0);
                if size > max_bytes {
                    let _ = child.kill().await;
                    return Err(CloneError::TooBig(max_bytes >> 20));
                }
            }
            status = child.wait() => break status.map_err(CloneError::Spawn)?,
        }
    };
    while let Ok(line) = rx.try_recv() {
        let line = hide_paths(line);
        tail.push(line.clone());
        log(line);
    }
    if dir_size(watch) > max_bytes {
        return Err(CloneError::TooBig(max_bytes >> 20));
    }
    if status.success() {
        return Ok(());
    }
    let text = tail.join("\n");
    let lower = text.to_lowercase();
    if lower.contains("not found")
        || lower.contains("does not appear to be a git repository")
        || lower.contains("could not read from remote repository")
        || lower.contains("could not resolve host")
        || lower.contains("connection refused")
        || lower.contains("authentication failed")
        || lower.contains("terminal prompts disabled")
        || lower.contains("repository not exported")
        || lower.contains("access denied")
    {
        return Err(CloneError::NotFound(last_line(&text)));
    }
    Err(CloneError::Failed(last_line(&text)))
}

/// git names the worker's scratch directory in "Cloning into '…'": not the user's business.
fn hide_paths(line: String) -> String {
    if line.starts_with("Cloning into ") {
        "Cloning the repository".to_string()
    } else {
        line
    }
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
        .or_else(|| text.lines().last())
        .unwrap_or("no output")
        .to_string()
}

/// Bytes under `dir`, not following symlinks.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}
