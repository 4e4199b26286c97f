//! `labwright-sim-phone` (the binary) against Debian's real `adb` client: `adb connect`,
//! `adb devices` (`unauthorized` until the key is in the trusted keys file, then `device`),
//! `adb shell getprop`, `adb exec-out screencap -p`, `adb shell input tap` on the demo app's
//! button changing the next screenshot and hierarchy, `adb shell uiautomator dump /dev/tty`,
//! `adb install` (a valid APK, a corrupt one), `adb logcat -d` and following `adb logcat`,
//! `adb push`/`pull`, and SIGTERM. If the real client accepts it, the phone speaks real ADB.
//!
//! Each test runs its own adb server (own HOME, own `ANDROID_ADB_SERVER_PORT`) and its own
//! phone process, both stopped by Drop guards.

use labwright_core::sim::phone::apk;
use labwright_testkit::adb::AdbServer;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The phone binary on a free loopback port, killed on drop.
struct PhoneProcess {
    addr: String,
    storage: PathBuf,
    child: Option<std::process::Child>,
}

impl PhoneProcess {
    async fn start(extra: &[&str]) -> PhoneProcess {
        let storage = labwright_testkit::temp_dir("sim-phone-storage");
        let addr = format!("127.0.0.1:{}", labwright_testkit::free_port());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_labwright-sim-phone"))
            .args([
                "--listen",
                &addr,
                "--serial",
                "LWTEST42",
                "--model",
                "Sim Phone X",
            ])
            .arg("--storage")
            .arg(&storage)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start labwright-sim-phone");
        let phone = PhoneProcess {
            addr,
            storage,
            child: Some(child),
        };
        labwright_testkit::eventually(Duration::from_secs(60), "the phone listening", || async {
            tokio::net::TcpStream::connect(&phone.addr)
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        phone
    }
}

impl Drop for PhoneProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.storage);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The centre of the node whose `attr` is `value` in a uiautomator dump.
fn centre_of(xml: &str, attr: &str, value: &str) -> (i32, i32) {
    let re = regex::Regex::new(&format!(
        r#"<node [^>]*{attr}="{}"[^>]*bounds="\[(\d+),(\d+)\]\[(\d+),(\d+)\]""#,
        regex::escape(value)
    ))
    .expect("regex");
    let c = re
        .captures(xml)
        .unwrap_or_else(|| panic!("no node with {attr}={value} in {xml}"));
    let n = |i: usize| c[i].parse::<i32>().expect("number");
    ((n(1) + n(3)) / 2, (n(2) + n(4)) / 2)
}

async fn connected(extra: &[&str]) -> (PhoneProcess, AdbServer) {
    let phone = PhoneProcess::start(extra).await;
    let adb = AdbServer::new();
    let started = adb.run(&["start-server"]).await;
    assert!(started.status.success(), "adb start-server: {started:?}");
    // What `connect` prints depends on how fast the key is accepted; `devices` is the judge.
    adb.run(&["connect", &phone.addr]).await;
    (phone, adb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_adb_sees_drives_and_reads_the_phone() {
    let (phone, adb) = connected(&["--auto-accept"]).await;
    let s = phone.addr.as_str();
    adb.wait_for_state(s, "device").await;

    let out = adb
        .run(&["-s", s, "shell", "getprop", "ro.product.model"])
        .await;
    assert_eq!(
        (text(&out.stdout), out.status.code()),
        ("Sim Phone X\n".into(), Some(0))
    );
    let out = adb.run(&["-s", s, "shell", "getprop", "ro.serialno"]).await;
    assert_eq!(text(&out.stdout), "LWTEST42\n");
    let out = adb.run(&["-s", s, "shell", "nosuchtool"]).await;
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        text(&out.stderr),
        "/system/bin/sh: nosuchtool: inaccessible or not found\n"
    );

    let out = adb
        .run(&[
            "-s",
            s,
            "shell",
            "am",
            "start",
            "-n",
            "com.labwright.demo/.MainActivity",
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    let before = adb.run(&["-s", s, "exec-out", "screencap", "-p"]).await;
    assert!(before.status.success(), "{before:?}");
    let img = image::load_from_memory(&before.stdout).expect("a valid PNG");
    assert_eq!((img.width(), img.height()), (540, 960));

    let dump = adb
        .run(&["-s", s, "shell", "uiautomator", "dump", "/dev/tty"])
        .await;
    let xml = text(&dump.stdout);
    assert!(
        xml.starts_with(
            "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">"
        ),
        "{xml}"
    );
    assert!(xml.contains("text=\"Count: 0\""));
    let (x, y) = centre_of(&xml, "text", "Increment");
    let out = adb
        .run(&[
            "-s",
            s,
            "shell",
            "input",
            "tap",
            &x.to_string(),
            &y.to_string(),
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    let after = adb.run(&["-s", s, "exec-out", "screencap", "-p"]).await;
    assert_ne!(before.stdout, after.stdout, "the tap changed the screen");
    let xml = text(
        &adb.run(&["-s", s, "shell", "uiautomator", "dump", "/dev/tty"])
            .await
            .stdout,
    );
    assert!(xml.contains("text=\"Count: 1\""), "{xml}");

    // Typing into the field.
    let (x, y) = centre_of(&xml, "resource-id", "com.labwright.demo:id/input");
    adb.run(&[
        "-s",
        s,
        "shell",
        "input",
        "tap",
        &x.to_string(),
        &y.to_string(),
    ])
    .await;
    adb.run(&["-s", s, "shell", "input", "text", "lab%swright"])
        .await;
    adb.run(&["-s", s, "shell", "input", "keyevent", "KEYCODE_HOME"])
        .await;
    adb.run(&[
        "-s",
        s,
        "shell",
        "am",
        "start",
        "-n",
        "com.labwright.demo/.MainActivity",
    ])
    .await;
    let xml = text(
        &adb.run(&["-s", s, "shell", "uiautomator", "dump", "/dev/tty"])
            .await
            .stdout,
    );
    assert!(
        xml.contains("text=\"lab wright\" resource-id=\"com.labwright.demo:id/input\""),
        "{xml}"
    );

    let log = adb.run(&["-s", s, "logcat", "-d"]).await;
    assert!(log.status.success(), "{log:?}");
    let log = text(&log.stdout);
    assert!(
        log.contains("cmp=com.labwright.demo/.MainActivity} from uid 2000"),
        "{log}"
    );
    assert!(
        log.contains("LabwrightDemo: button increment clicked, count=1"),
        "{log}"
    );

    // `adb logcat` follows new lines until it is stopped.
    let mut follower = adb
        .command(&["-s", s, "logcat"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("adb logcat");
    let mut stdout = follower.stdout.take().expect("stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let contains = |what: &'static str| {
        let seen = seen.clone();
        move || {
            let seen = seen.clone();
            async move { seen.lock().expect("lock").contains(what).then_some(()) }
        }
    };
    labwright_testkit::eventually(
        Duration::from_secs(60),
        "logcat's buffer",
        contains("count=1"),
    )
    .await;
    adb.run(&[
        "-s",
        s,
        "shell",
        "input",
        "keyevent",
        "KEYCODE_MEDIA_PLAY_PAUSE",
    ])
    .await;
    labwright_testkit::eventually(
        Duration::from_secs(60),
        "a new line in adb logcat",
        contains("Delivering KEYCODE_MEDIA_PLAY_PAUSE (85)"),
    )
    .await;
    let _ = follower.kill().await;
    reader.abort();
    // The phone keeps serving after the follower went away.
    let out = adb.run(&["-s", s, "shell", "echo", "ok"]).await;
    assert_eq!(text(&out.stdout), "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_adb_installs_pushes_and_pulls() {
    let (phone, adb) = connected(&["--auto-accept"]).await;
    let s = phone.addr.as_str();
    adb.wait_for_state(s, "device").await;
    let local = labwright_testkit::temp_dir("sim-phone-local");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();

    std::fs::write(
        local.join("demo.apk"),
        apk::build_demo_apk("com.example.demo2", "Demo Two"),
    )
    .expect("write");
    let out = adb
        .run(&["-s", s, "install", &path(&local.join("demo.apk"))])
        .await;
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("Success"), "{out:?}");
    let out = adb.run(&["-s", s, "shell", "pm", "list", "packages"]).await;
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l == "package:com.example.demo2"),
        "{out:?}"
    );

    std::fs::write(local.join("corrupt.apk"), b"PK\x03\x04 this is no zip").expect("write");
    let out = adb
        .run(&["-s", s, "install", &path(&local.join("corrupt.apk"))])
        .await;
    assert!(!out.status.success(), "{out:?}");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("INSTALL_PARSE_FAILED_NOT_APK"), "{all}");

    let out = adb.run(&["-s", s, "uninstall", "com.example.demo2"]).await;
    assert!(text(&out.stdout).contains("Success"), "{out:?}");
    let out = adb
        .run(&["-s", s, "shell", "pm", "list", "packages", "demo2"])
        .await;
    assert_eq!(text(&out.stdout), "");

    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(local.join("up.bin"), &data).expect("write");
    let out = adb
        .run(&[
            "-s",
            s,
            "push",
            &path(&local.join("up.bin")),
            "/sdcard/Download/up.bin",
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::read(phone.storage.join("sdcard/Download/up.bin")).expect("pushed") == data);
    let out = adb
        .run(&[
            "-s",
            s,
            "pull",
            "/sdcard/Download/up.bin",
            &path(&local.join("down.bin")),
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::read(local.join("down.bin")).expect("pulled") == data);
    let out = adb
        .run(&["-s", s, "shell", "screencap", "-p", "/sdcard/shot.png"])
        .await;
    assert!(out.status.success(), "{out:?}");
    let out = adb
        .run(&[
            "-s",
            s,
            "pull",
            "/sdcard/shot.png",
            &path(&local.join("shot.png")),
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    let img = image::open(local.join("shot.png")).expect("png");
    assert_eq!((img.width(), img.height()), (540, 960));
    let _ = std::fs::remove_dir_all(&local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_adb_is_unauthorized_until_its_key_is_trusted_and_sigterm_stops_the_phone() {
    let keys_dir = labwright_testkit::temp_dir("sim-phone-keys");
    let keys_file = keys_dir.join("adb_keys");
    std::fs::write(&keys_file, "").expect("write");
    let (mut phone, adb) = connected(&["--trusted-keys", keys_file.to_str().expect("utf-8")]).await;
    let s = phone.addr.clone();
    adb.wait_for_state(&s, "unauthorized").await;
    let out = adb.run(&["-s", &s, "shell", "echo", "hi"]).await;
    assert!(
        !out.status.success(),
        "no shell while unauthorized: {out:?}"
    );
    // "Tapping Allow": the host's key goes into the phone's adb_keys.
    std::fs::write(&keys_file, adb.public_key()).expect("write key");
    adb.wait_for_state(&s, "device").await;
    let out = adb.run(&["-s", &s, "shell", "echo", "hi"]).await;
    assert_eq!(text(&out.stdout), "hi\n");

    let mut child = phone.child.take().expect("child");
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = labwright_testkit::eventually(
        Duration::from_secs(60),
        "the phone exits on SIGTERM",
        || {
            let polled = child.try_wait().ok().flatten();
            async move { polled }
        },
    )
    .await;
    assert!(status.success(), "exit status {status:?}");
    let _ = std::fs::remove_dir_all(&keys_dir);
}
