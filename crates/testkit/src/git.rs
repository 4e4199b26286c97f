//! Repositories served by a real `git daemon` on loopback (`git://127.0.0.1:<port>/<name>`), as
//! the build worker clones them.

use std::{
    io,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{eventually, free_port, temp_dir};

/// A `git daemon` serving every repository under its root; killed when dropped.
pub struct GitDaemon {
    pub root: PathBuf,
    pub port: u16,
    child: Child,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GitDaemon {
    /// Serves `root` on `port` (returns at once; the daemon may take a moment to listen).
    pub fn spawn(root: &Path, port: u16) -> io::Result<Self> {
        let child = Command::new(daemon_bin()?)
            .args([
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                "--export-all",
                &format!("--base-path={}", root.display()),
                &root.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Self {
            root: root.to_path_buf(),
            port,
            child,
        })
    }

    /// A daemon on a free port over a new empty root, once it accepts connections.
    pub async fn start() -> Self {
        let daemon = Self::spawn(&temp_dir("git"), free_port()).expect("git daemon");
        let port = daemon.port;
        eventually(Duration::from_secs(10), "git daemon up", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        })
        .await;
        daemon
    }

    /// Creates repository `name` with `files` committed on branch `main`; returns its URL.
    pub fn repo(&self, name: &str, files: &[(&str, &str)]) -> String {
        commit(&self.root.join(name), files).expect("commit repository");
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

/// Writes `files` (paths relative to `dir`) and commits them as the first commit of branch `main`.
pub fn commit(dir: &Path, files: &[(&str, &str)]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (path, content) in files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, content)?;
    }
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &["commit", "-q", "-m", "initial"],
    ] {
        let out = Command::new("git")
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .current_dir(dir)
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    Ok(())
}

/// `git-daemon` itself: `git daemon` runs it as a child, which outlives a kill of `git`.
fn daemon_bin() -> io::Result<PathBuf> {
    let out = Command::new("git").arg("--exec-path").output()?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("git-daemon"))
}
