//! Cloning a user's repository: shallow, only over the transports [`RepoUrl`] allows, with a
//! time and a size limit, no prompts, no hooks, no system or user git configuration.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use labwright_core::build::source::RepoUrl;
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

pub struct CloneLimits {
    pub timeout: Duration,
    pub max_bytes: u64,
}

/// Clones `url` at `git_ref` (a branch, a tag, or a full commit id) into `dest`, which must not
/// exist. Every line git prints goes to `log`. Leaves `dest` without its `.git` directory.
pub async fn clone(
    url: &RepoUrl,
    git_ref: Option<&str>,
    dest: &Path,
    limits: &CloneLimits,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), CloneError> {
    let home = dest.with_extension("home");
    std::fs::create_dir_all(&home).map_err(CloneError::Spawn)?;
    let result = tokio::time::timeout(
        limits.timeout,
        clone_inner(url, git_ref, dest, &home, limits.max_bytes, log),
    )
    .await
    .unwrap_or(Err(CloneError::TooSlow(limits.timeout.as_secs())));
    let _ = std::fs::remove_dir_all(&home);
    result?;
    let _ = std::fs::remove_dir_all(dest.join(".git"));
    Ok(())
}

async fn clone_inner(
    url: &RepoUrl,
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
        git(home, Some(dest), &["init", "-q"], max_bytes, dest, log).await?;
        git(
            home,
            Some(dest),
            &["remote", "add", "origin", "--", url.as_str()],
            max_bytes,
            dest,
            log,
        )
        .await?;
        let sha = git_ref.unwrap_or_default();
        git(
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
    args.extend(["--", url.as_str(), dest_str.as_str()]);
    git(home, None, &args, max_bytes, dest, log)
        .await
        .map_err(|e| match git_ref {
            Some(r) => not_found_ref(e, r),
            None => e,
        })
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
    ])
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
    .env(
        "GIT_SSH_COMMAND",
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=15",
    )
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
