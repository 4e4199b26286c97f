//! The workspace's binaries for tests in another package (Cargo sets `CARGO_BIN_EXE_<name>` only
//! for the binaries of the test's own package). They are built once per test process with the
//! cargo, target directory and profile that built the test, so they are never stale; under
//! `cargo test --workspace --all-targets` (what `scripts/test` runs) they are already built and
//! this only checks them.

use std::{path::PathBuf, process::Command, sync::OnceLock};

/// The path of the workspace binary `bin`, built (or found up to date) first.
pub fn cargo_bin(bin: &str) -> PathBuf {
    static PROFILE_DIR: OnceLock<PathBuf> = OnceLock::new();
    PROFILE_DIR.get_or_init(build_bins).join(bin)
}

/// Builds every binary of the workspace (the same feature set as `--workspace` tests, so
/// nothing is rebuilt for a different one) and returns `<target>/<profile dir>`.
fn build_bins() -> PathBuf {
    // The test runs as <target>/<profile dir>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable under <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target directory");
    let profile = match profile_dir.file_name().and_then(|p| p.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("no profile directory in {}", profile_dir.display()),
    };
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--workspace",
            "--bins",
            "--profile",
            profile,
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .unwrap_or_else(|e| panic!("cargo build --workspace --bins: {e}"));
    assert!(
        status.success(),
        "cargo build --workspace --bins failed: {status}"
    );
    profile_dir
}
