//! The hardware-in-the-loop rig (`scripts/rig`) for tests: a QEMU guest running Debian's kernel
//! with real kernel devices (vivid, snd-aloop, rc-loopback, a USB CDC-ACM gadget on dummy_hcd),
//! the host's root mounted read-only, and a job directory shared read-write at the same path on
//! both sides. [`Rig::run`] boots it for one shell script and returns what the script printed;
//! [`Rig::spawn`] keeps a guest running in the background (a host-agent dialling the api-server
//! through a forwarded loopback port) until dropped.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

/// The rig script of this checkout.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rig")
}

/// How a guest job ended.
#[derive(Debug)]
pub struct Output {
    /// The job's exit status (124: timed out, 125: the rig failed).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics, showing both streams, unless the job exited 0.
    pub fn assert_success(&self) -> &Self {
        assert_eq!(
            self.status, 0,
            "the rig job failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// One job directory and the rig that boots guests for it.
pub struct Rig {
    job: PathBuf,
    forwards: Vec<u16>,
    udev: bool,
}

impl Rig {
    /// A rig with a new, empty job directory.
    pub fn new() -> Self {
        Self {
            job: crate::temp_dir("rig"),
            forwards: Vec::new(),
            udev: false,
        }
    }

    /// The job directory: the same absolute path in the guest, read-write on both sides.
    pub fn job(&self) -> &Path {
        &self.job
    }

    /// Lets the guest dial `10.0.2.100:port`, which reaches `127.0.0.1:port` on the host.
    pub fn forward(mut self, port: u16) -> Self {
        self.forwards.push(port);
        self
    }

    /// Runs Debian's udevd in the guest: `/dev/v4l/by-path`, `/dev/serial/by-id` and
    /// `/dev/snd/by-path` links and hot-plug events, as on a lab host (a few seconds more boot).
    pub fn udev(mut self) -> Self {
        self.udev = true;
        self
    }

    /// The guest address that reaches the host's `127.0.0.1:port` (after [`Rig::forward`]).
    pub fn host_addr(port: u16) -> String {
        format!("10.0.2.100:{port}")
    }

    fn command(&self, timeout_secs: u32, argv: &[&str]) -> Command {
        let mut cmd = Command::new(script());
        cmd.arg("run")
            .arg("--job")
            .arg(&self.job)
            .arg("--timeout")
            .arg(timeout_secs.to_string());
        if self.udev {
            cmd.arg("--udev");
        }
        for port in &self.forwards {
            cmd.arg("--fwd").arg(port.to_string());
        }
        cmd.arg("--").args(argv).current_dir(&self.job);
        cmd
    }

    /// Boots a guest, runs `script` with bash in the job directory, powers off.
    pub fn run(&self, script: &str) -> Output {
        std::fs::write(self.job.join("job.sh"), script).expect("write job.sh");
        let out = self
            .command(300, &["bash", "-e", "job.sh"])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", self::script().display()));
        Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Boots a guest running `argv` in the background; the guest is powered off when the
    /// returned [`Guest`] is dropped. Its output goes to `stdout` and `stderr` in the job
    /// directory.
    pub fn spawn(&self, argv: &[&str]) -> Guest {
        let child = self
            .command(3600, argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", script().display()));
        Guest {
            child,
            job: self.job.clone(),
        }
    }

    /// A file of the job directory, read as text (empty when missing).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.job.join(name)).unwrap_or_default()
    }
}

impl Default for Rig {
    fn default() -> Self {
        Self::new()
    }
}

/// A guest running in the background.
pub struct Guest {
    child: Child,
    job: PathBuf,
}

impl Guest {
    /// The guest job's output so far (stdout, stderr) and its serial console, for failure
    /// messages.
    pub fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.job.join(name)).unwrap_or_default();
        format!(
            "--- stdout\n{}\n--- stderr\n{}\n--- console\n{}",
            read("stdout"),
            read("stderr"),
            read("console.log")
        )
    }

    /// Whether the guest has ended (and with which exit status of `scripts/rig`).
    pub fn exited(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.code().unwrap_or(-1))
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // SIGTERM: scripts/rig stops QEMU and waits for it (SIGKILL would leave QEMU running).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
