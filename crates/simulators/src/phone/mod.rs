//! `labwright-sim-phone`: the simulated Android phone (`labwright_core::sim::phone::Phone`)
//! served over real ADB (`labwright_adb::AdbDaemon`) on a TCP address, like a phone with
//! wireless debugging on. Its shell ([`shell::PhoneShell`]) runs Android's commands against
//! the phone; sync (push/pull) and installs use a storage directory of its own.
//!
//! Key trust is Android's: a host key that is not trusted waits, `unauthorized`, until it is
//! accepted. It is accepted when it appears in the `--trusted-keys` file (adb_keys format, one
//! `<base64> <comment>` line per key, re-read while the phone runs: appending the key is
//! "tapping Allow"), or at once with `--auto-accept` (demos and CI: as if a person always taps
//! Allow). The fingerprint of every waiting key is logged.

pub mod shell;

use anyhow::Context as _;
use labwright_adb::{AdbDaemon, DaemonConfig, TrustedKeys};
use labwright_core::clock::SystemClock;
use labwright_core::sim::phone::{Phone, PhoneConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

pub use shell::PhoneShell;

/// How often the trusted-keys file and pending keys are looked at.
const KEY_POLL: Duration = Duration::from_millis(200);

/// The phone shared by every ADB stream; every change wakes streaming readers (`logcat`).
#[derive(Clone)]
pub struct SharedPhone {
    phone: Arc<Mutex<Phone>>,
    changed: Arc<watch::Sender<u64>>,
}

impl SharedPhone {
    pub fn new(phone: Phone) -> SharedPhone {
        SharedPhone {
            phone: Arc::new(Mutex::new(phone)),
            changed: Arc::new(watch::channel(0).0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phone> {
        self.phone.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the phone.
    pub fn read<T>(&self, f: impl FnOnce(&Phone) -> T) -> T {
        f(&self.lock())
    }

    /// Changes the phone and tells the watchers.
    pub fn update<T>(&self, f: impl FnOnce(&mut Phone) -> T) -> T {
        let out = f(&mut self.lock());
        self.changed.send_modify(|v| *v += 1);
        out
    }

    /// Notified after every [`update`](Self::update).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// What to serve.
#[derive(Debug, Clone)]
pub struct PhoneServerConfig {
    pub listen: SocketAddr,
    pub phone: PhoneConfig,
    /// The phone's storage (sync's root): `/sdcard/x` is `storage/sdcard/x`.
    pub storage: PathBuf,
    /// adb_keys file of trusted host keys, re-read while running.
    pub trusted_keys: Option<PathBuf>,
    /// Accept every host key at once ("the person taps Allow").
    pub auto_accept: bool,
}

/// A phone being served.
pub struct RunningPhone {
    /// The address it listens on (the port chosen when `listen` had port 0).
    pub addr: SocketAddr,
    pub phone: SharedPhone,
    pub keys: TrustedKeys,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningPhone {
    /// Stops listening and drops every connection's acceptor (connections end with the runtime
    /// or when their host closes them).
    pub fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for RunningPhone {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Reads an adb_keys file into `keys`; returns how many keys it trusted. Bad lines are logged
/// and skipped.
fn load_keys(path: &std::path::Path, keys: &TrustedKeys) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let mut n = 0;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match keys.trust_public_key(line) {
            Ok(_) => n += 1,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "bad line in trusted keys file")
            }
        }
    }
    n
}

/// Binds, then serves the phone in the background.
pub async fn start(config: PhoneServerConfig) -> anyhow::Result<RunningPhone> {
    let phone = Phone::new(config.phone.clone(), Arc::new(SystemClock))
        .map_err(|e| anyhow::anyhow!("invalid phone config: {e}"))?;
    for dir in ["sdcard", "data/local/tmp"] {
        std::fs::create_dir_all(config.storage.join(dir))
            .with_context(|| format!("create {}", config.storage.join(dir).display()))?;
    }
    let phone = SharedPhone::new(phone);
    let keys = TrustedKeys::default();
    if let Some(path) = &config.trusted_keys {
        let n = load_keys(path, &keys);
        tracing::info!(file = %path.display(), keys = n, "trusted host keys loaded");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let props = phone.read(|p| {
        let want = ["ro.product.name", "ro.product.model", "ro.product.device"];
        p.properties()
            .into_iter()
            .filter(|(k, _)| want.contains(&k.as_str()))
            .collect::<Vec<_>>()
    });
    let mut daemon_config = DaemonConfig::new(config.storage.clone(), keys.clone());
    daemon_config.serial = config.phone.serial.clone();
    daemon_config.properties = props;
    daemon_config.shell = Arc::new(PhoneShell {
        phone: phone.clone(),
        storage: config.storage.clone(),
    });
    let daemon = AdbDaemon::new(daemon_config);
    let serve = tokio::spawn(async move {
        if let Err(e) = daemon.serve(listener).await {
            tracing::error!(error = %e, "adb listener failed");
        }
    });
    let watcher = tokio::spawn(watch_keys(
        keys.clone(),
        config.trusted_keys.clone(),
        config.auto_accept,
    ));
    tracing::info!(%addr, serial = %config.phone.serial, model = %config.phone.model, auto_accept = config.auto_accept, "simulated phone listening (adb connect {addr})");
    Ok(RunningPhone {
        addr,
        phone,
        keys,
        tasks: vec![serve, watcher],
    })
}

/// Accepts waiting keys: all of them with `auto_accept`, else those that appear in the trusted
/// keys file. Tells once per key how to accept it.
async fn watch_keys(keys: TrustedKeys, file: Option<PathBuf>, auto_accept: bool) {
    let mut told = std::collections::HashSet::new();
    let mut seen_mtime: Option<SystemTime> = None;
    loop {
        tokio::time::sleep(KEY_POLL).await;
        if let Some(path) = &file {
            let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if mtime.is_some() && mtime != seen_mtime {
                seen_mtime = mtime;
                load_keys(path, &keys);
            }
        }
        for pending in keys.pending() {
            if auto_accept {
                if keys.accept(&pending.fingerprint) {
                    tracing::info!(fingerprint = %pending.fingerprint, "host key accepted (--auto-accept)");
                }
            } else if told.insert(pending.fingerprint.clone()) {
                match &file {
                    Some(f) => {
                        tracing::warn!(fingerprint = %pending.fingerprint, file = %f.display(), "host key unauthorized: append it to the trusted keys file to allow it")
                    }
                    None => {
                        tracing::warn!(fingerprint = %pending.fingerprint, "host key unauthorized: restart with --trusted-keys FILE or --auto-accept to allow it")
                    }
                }
            }
        }
    }
}

/// Serves until `shutdown` resolves.
pub async fn run(
    config: PhoneServerConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let running = start(config).await?;
    shutdown.await;
    tracing::info!("simulated phone stopping");
    running.stop();
    Ok(())
}
