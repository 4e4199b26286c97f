//! Debian's real `adb` client (package `adb`), the judge of every ADB peer we write: a server of
//! the test's own (own HOME, own `ANDROID_ADB_SERVER_PORT`), killed on drop, so tests never share
//! or meet the machine's adb server.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

/// An adb server of our own, killed on drop.
pub struct AdbServer {
    /// The server's HOME (its key pair is in `.android/`).
    pub home: PathBuf,
    port: u16,
}

impl AdbServer {
    /// Panics, naming the package, when Debian's `adb` is not installed.
    pub fn new() -> AdbServer {
        assert!(
            std::process::Command::new("adb")
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "Debian's adb client is missing: scripts/test installs it (package adb)"
        );
        AdbServer {
            home: crate::temp_dir("adb-home"),
            port: crate::free_port(),
        }
    }

    /// `adb ARGS` against this server (no stdin, killed when dropped).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("adb");
        c.args(args)
            .env("HOME", &self.home)
            .env("ANDROID_ADB_SERVER_PORT", self.port.to_string())
            .env("TMPDIR", &self.home)
            .env_remove("ANDROID_SDK_HOME")
            .env_remove("ADB_VENDOR_KEYS")
            .env_remove("ANDROID_SERIAL")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs `adb ARGS` to its end (at most 120 s).
    pub async fn run(&self, args: &[&str]) -> Output {
        match tokio::time::timeout(Duration::from_secs(120), self.command(args).output()).await {
            Ok(o) => o.expect("run adb"),
            Err(_) => panic!("adb {args:?} did not finish in 120 s"),
        }
    }

    /// The state `adb devices` shows for `serial`.
    pub async fn state_of(&self, serial: &str) -> Option<String> {
        let out = self.run(&["devices"]).await;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.strip_prefix(&format!("{serial}\t"))
                .map(|s| s.trim().to_string())
        })
    }

    /// Waits (up to 60 s) until `adb devices` shows `serial` in state `want`.
    pub async fn wait_for_state(&self, serial: &str, want: &str) {
        crate::eventually(
            Duration::from_secs(60),
            &format!("adb devices: {serial} {want}"),
            || async { (self.state_of(serial).await.as_deref() == Some(want)).then_some(()) },
        )
        .await;
    }

    /// The public key this server offers (`<base64> <name>`).
    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.home.join(".android/adbkey.pub"))
            .expect("adb server's public key")
    }
}

impl Default for AdbServer {
    fn default() -> Self {
        AdbServer::new()
    }
}

impl Drop for AdbServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("adb")
            .arg("kill-server")
            .env("HOME", &self.home)
            .env("ANDROID_ADB_SERVER_PORT", self.port.to_string())
            .stdin(std::process::Stdio::null())
            .output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
