//! Test support shared by every crate's tests, the full-stack tests (`labwright-e2e`) and the
//! benchmarks: the environment the tests run in, scratch directories and ports, a fresh
//! PostgreSQL database and a broker namespace per test, a `git daemon`, a TCP proxy to cut a
//! peer off, a REST client, the workspace's binaries, the hardware-in-the-loop rig (`rig`: a
//! QEMU guest with real kernel devices), Debian's real `adb` client with a server of the test's
//! own (`adb`), and [`eventually`].
//!
//! Only generic pieces live here: testkit depends on no Labwright crate, so any crate may
//! dev-depend on it. Helpers panic with a clear message (they are for tests), except those the
//! benchmarks use, which return errors.
//!
//! The services come from `scripts/test`: `LABWRIGHT_TEST_DATABASE_URL`,
//! `LABWRIGHT_TEST_AMQP_URL`, `LABWRIGHT_DOCKER_HOST` (or `DOCKER_HOST`).

pub mod adb;
pub mod binary;
pub mod broker;
pub mod database;
pub mod git;
pub mod http;
pub mod proxy;
pub mod rig;

use std::{future::Future, path::PathBuf, time::Duration};

/// A variable the test environment must set; panics naming it and how to get it set.
pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test"))
}

/// The Docker engine of the tests: `LABWRIGHT_DOCKER_HOST`, else `DOCKER_HOST`.
pub fn docker_host() -> String {
    std::env::var("LABWRIGHT_DOCKER_HOST")
        .or_else(|_| std::env::var("DOCKER_HOST"))
        .unwrap_or_else(|_| {
            panic!("LABWRIGHT_DOCKER_HOST is not set: run the tests through scripts/test")
        })
}

/// A new empty directory under the system's temporary directory, `lw-<tag>-<unique>`.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lw-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A TCP port on loopback that was free a moment ago (for servers that must be told a port
/// before they start, or restarted on the same one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Polls `check` every 50 ms until it returns Some or `timeout` passes (then panics with
/// `what`).
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
