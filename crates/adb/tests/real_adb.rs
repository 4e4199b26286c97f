//! Our daemon against Debian's real `adb` client (package `adb`): `adb connect`, `adb
//! devices` (unauthorized, then device once the key is accepted), `adb shell` (stdout, stderr,
//! exit codes), `adb exec-out` byte-exact, `adb push`/`adb pull` byte-exact, and a pull
//! outside the sandbox refused. If the real client accepts it, the daemon speaks real ADB.
//!
//! Each test runs its own adb server (own HOME, own `ANDROID_ADB_SERVER_PORT`), killed by a
//! Drop guard.

mod support;

use labwright_adb::TrustedKeys;
use labwright_testkit::adb::AdbServer;
use std::path::Path;
use std::time::Duration;
use support::{Phone, random_bytes};

async fn phone() -> Phone {
    Phone::start(TrustedKeys::default(), |_| {}).await
}

/// Starts the server, connects it to the phone and gets it trusted the way a person would:
/// `unauthorized` first, then `device` once the offered key is accepted.
async fn connected(phone: &Phone) -> AdbServer {
    let adb = AdbServer::new();
    let started = adb.run(&["start-server"]).await;
    assert!(started.status.success(), "adb start-server: {started:?}");
    adb.run(&["connect", &phone.addr]).await;
    adb.wait_for_state(&phone.addr, "unauthorized").await;
    let offered = labwright_testkit::eventually(
        Duration::from_secs(60),
        "the key offered to the phone",
        || async { phone.keys.pending().into_iter().next() },
    )
    .await;
    let (raw, _) = labwright_adb::auth::parse_public_key(adb.public_key().as_bytes())
        .expect("adbkey.pub parses");
    assert_eq!(
        offered.fingerprint,
        labwright_adb::auth::fingerprint(&raw),
        "the prompt shows the server's key"
    );
    assert!(phone.keys.accept(&offered.fingerprint));
    adb.wait_for_state(&phone.addr, "device").await;
    adb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_adb_connects_after_the_key_is_accepted_and_runs_shell_commands() {
    let phone = phone().await;
    let adb = connected(&phone).await;
    let s = phone.addr.as_str();

    let out = adb.run(&["-s", s, "shell", "echo", "hello", "adb"]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello adb\n");

    let out = adb
        .run(&["-s", s, "shell", "echo to-stderr >&2; exit 7"])
        .await;
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");

    let out = adb.run(&["-s", s, "shell", "true"]).await;
    assert_eq!(out.status.code(), Some(0));

    // A second connection of the same server is trusted by its signature alone.
    adb.run(&["disconnect", s]).await;
    adb.run(&["connect", s]).await;
    adb.wait_for_state(s, "device").await;
    assert_eq!(
        adb.run(&["-s", s, "shell", "echo", "again"]).await.stdout,
        b"again\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_adb_exec_out_push_and_pull_are_byte_exact() {
    let phone = phone().await;
    let adb = connected(&phone).await;
    let s = phone.addr.as_str();

    let blob = random_bytes(2 << 20, 5);
    std::fs::write(phone.sandbox.join("blob.bin"), &blob).unwrap();
    let out = adb.run(&["-s", s, "exec-out", "cat blob.bin"]).await;
    assert!(
        out.status.success(),
        "exec-out: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == blob,
        "exec-out differs: {} vs {} bytes",
        out.stdout.len(),
        blob.len()
    );

    let local = labwright_testkit::temp_dir("adb-real-local");
    let up = random_bytes(5 << 20, 9);
    std::fs::write(local.join("up.bin"), &up).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let out = adb
        .run(&[
            "-s",
            s,
            "push",
            &path(&local.join("up.bin")),
            "/sdcard/Download/up.bin",
        ])
        .await;
    assert!(out.status.success(), "push: {out:?}");
    assert!(
        std::fs::read(phone.sandbox.join("sdcard/Download/up.bin")).unwrap() == up,
        "pushed file differs"
    );

    let out = adb
        .run(&[
            "-s",
            s,
            "pull",
            "/sdcard/Download/up.bin",
            &path(&local.join("down.bin")),
        ])
        .await;
    assert!(out.status.success(), "pull: {out:?}");
    assert!(
        std::fs::read(local.join("down.bin")).unwrap() == up,
        "pulled file differs"
    );

    let out = adb.run(&["-s", s, "shell", "ls", "sdcard/Download"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "up.bin\n");

    let out = adb
        .run(&[
            "-s",
            s,
            "pull",
            "/../../../etc/passwd",
            &path(&local.join("passwd")),
        ])
        .await;
    assert!(
        !out.status.success(),
        "a pull outside the sandbox is refused: {out:?}"
    );
    assert!(!local.join("passwd").exists());
    let out = adb
        .run(&[
            "-s",
            s,
            "push",
            &path(&local.join("up.bin")),
            "/sdcard/../../escaped.bin",
        ])
        .await;
    assert!(
        !out.status.success(),
        "a push outside the sandbox is refused: {out:?}"
    );
    assert!(!phone.sandbox.parent().unwrap().join("escaped.bin").exists());

    let _ = std::fs::remove_dir_all(&local);
}
