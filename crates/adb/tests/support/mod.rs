//! What the ADB tests share: a simulated phone (our daemon on a loopback port with a sandbox
//! of its own) and reproducible random bytes.

#![allow(dead_code)]

use labwright_adb::{AdbDaemon, DaemonConfig, TrustedKeys};
use std::path::PathBuf;

/// Our daemon on `127.0.0.1:<free port>`, stopped and its sandbox removed on drop.
pub struct Phone {
    /// `127.0.0.1:port`, which is also the serial `adb devices` shows.
    pub addr: String,
    pub sandbox: PathBuf,
    pub keys: TrustedKeys,
    task: tokio::task::JoinHandle<labwright_adb::Result<()>>,
}

impl Phone {
    /// Starts a phone trusting `keys`, after `tweak` adjusted its configuration.
    pub async fn start(keys: TrustedKeys, tweak: impl FnOnce(&mut DaemonConfig)) -> Phone {
        let sandbox = labwright_testkit::temp_dir("adb-phone");
        let mut config = DaemonConfig::new(sandbox.clone(), keys.clone());
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let task = tokio::spawn(AdbDaemon::new(config).serve(listener));
        Phone {
            addr,
            sandbox,
            keys,
            task,
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.sandbox);
    }
}

/// `len` bytes from a xorshift generator seeded with `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
