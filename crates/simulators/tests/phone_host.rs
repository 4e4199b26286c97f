//! The simulated phone driven by our own ADB host side (`labwright_adb::AdbClient`), in
//! process: properties in the banner and from `getprop`, screenshots, taps found through the
//! uiautomator dump, key presses through a persistent shell, installs pushed through sync,
//! app start/stop and logcat, Android's error outputs and exit codes.

use labwright_adb::{AdbClient, AdbKey, ConnectOptions};
use labwright_core::sim::phone::{PhoneConfig, apk};
use labwright_simulators::phone::{PhoneServerConfig, RunningPhone, start};
use std::sync::OnceLock;
use std::time::Duration;

fn host_key() -> AdbKey {
    static KEY: OnceLock<AdbKey> = OnceLock::new();
    KEY.get_or_init(|| AdbKey::generate("lw-test@host").expect("generate key"))
        .clone()
}

struct Sim {
    running: RunningPhone,
    storage: std::path::PathBuf,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.storage);
    }
}

async fn sim(auto_accept: bool) -> Sim {
    let storage = labwright_testkit::temp_dir("sim-phone");
    let running = start(PhoneServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        phone: PhoneConfig {
            model: "Pixel Sim".into(),
            ..PhoneConfig::default()
        },
        storage: storage.clone(),
        trusted_keys: None,
        auto_accept,
    })
    .await
    .expect("start phone");
    Sim { running, storage }
}

async fn connect(s: &Sim) -> AdbClient {
    AdbClient::connect_tcp(
        &s.running.addr.to_string(),
        &host_key(),
        ConnectOptions::default(),
    )
    .await
    .expect("connect")
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_host_side_drives_the_phone() {
    let s = sim(true).await;
    let adb = connect(&s).await;
    assert_eq!(adb.device().state, "device");
    assert_eq!(adb.device().property("ro.product.model"), Some("Pixel Sim"));

    let out = adb
        .shell("getprop ro.product.model")
        .await
        .expect("getprop");
    assert_eq!(
        (text(&out.stdout), out.exit_code),
        ("Pixel Sim\n".into(), 0)
    );
    let all = adb.shell("getprop").await.expect("getprop");
    assert!(text(&all.stdout).contains("[ro.build.version.sdk]: [34]\n"));
    let out = adb.shell("wm size").await.expect("wm");
    assert_eq!(text(&out.stdout), "Physical size: 540x960\n");

    // Unknown commands fail like Android's shell.
    let out = adb.shell("frobnicate --now").await.expect("shell");
    assert_eq!(out.exit_code, 127);
    assert_eq!(
        text(&out.stderr),
        "/system/bin/sh: frobnicate: inaccessible or not found\n"
    );
    let out = adb
        .shell("input keyevent KEYCODE_NOPE")
        .await
        .expect("shell");
    assert_eq!(out.exit_code, 1);

    // Open the demo app, tap Increment found through the hierarchy.
    let out = adb
        .shell("am start -n com.labwright.demo/.MainActivity")
        .await
        .expect("am");
    assert_eq!(
        (text(&out.stdout), out.exit_code),
        (
            "Starting: Intent { cmp=com.labwright.demo/.MainActivity }\n".into(),
            0
        )
    );
    let before = adb.exec("screencap -p").await.expect("screencap");
    let dump = adb.shell("uiautomator dump /dev/tty").await.expect("dump");
    let xml = text(&dump.stdout);
    assert!(
        xml.ends_with("</hierarchy>UI hierchary dumped to: /dev/tty\n"),
        "{xml}"
    );
    let (x, y) = centre_of(&xml, "resource-id", "com.labwright.demo:id/increment");
    let out = adb.shell(&format!("input tap {x} {y}")).await.expect("tap");
    assert_eq!(out.exit_code, 0);
    let after = adb.exec("screencap -p").await.expect("screencap");
    assert_ne!(before, after, "the counter changed on screen");
    let img = image::load_from_memory(&after).expect("png");
    assert_eq!((img.width(), img.height()), (540, 960));
    assert_eq!(s.running.phone.read(|p| p.status().demo.count), 1);

    // A file dump lands in storage.
    let out = adb.shell("uiautomator dump").await.expect("dump");
    assert_eq!(
        text(&out.stdout),
        "UI hierchary dumped to: /sdcard/window_dump.xml\n"
    );
    let saved =
        std::fs::read_to_string(s.storage.join("sdcard/window_dump.xml")).expect("dump file");
    assert!(saved.contains("text=\"Count: 1\""));

    // Key presses through a persistent shell (no process start each).
    let mut sh = adb.persistent_shell().await.expect("persistent shell");
    let (ix, iy) = centre_of(&saved, "resource-id", "com.labwright.demo:id/input");
    sh.run(&format!("input tap {ix} {iy}"))
        .await
        .expect("tap input");
    sh.run("input text hello%sphone").await.expect("text");
    sh.key_event("KEYCODE_DEL").await.expect("key");
    sh.key_event("8").await.expect("key");
    sh.close().await.expect("close");
    assert_eq!(
        s.running.phone.read(|p| p.status().demo.text),
        "hello phon1"
    );

    // Install pushed through sync, then start, stop, clear, uninstall.
    let local = labwright_testkit::temp_dir("sim-phone-apk");
    std::fs::write(
        local.join("hello.apk"),
        apk::build_demo_apk("com.example.hello", "Hello"),
    )
    .expect("write apk");
    adb.push_file(&local.join("hello.apk"), "/data/local/tmp/hello.apk")
        .await
        .expect("push");
    let out = adb
        .shell("pm install -r /data/local/tmp/hello.apk")
        .await
        .expect("pm install");
    assert_eq!((text(&out.stdout), out.exit_code), ("Success\n".into(), 0));
    let out = adb.shell("pm list packages -3").await.expect("pm list");
    assert_eq!(
        text(&out.stdout),
        "package:com.example.hello\npackage:com.labwright.demo\n"
    );
    std::fs::write(local.join("bad.apk"), b"not a zip at all").expect("write");
    adb.push_file(&local.join("bad.apk"), "/data/local/tmp/bad.apk")
        .await
        .expect("push");
    let out = adb
        .shell("pm install /data/local/tmp/bad.apk")
        .await
        .expect("pm install");
    assert_eq!(out.exit_code, 1);
    assert!(
        text(&out.stdout).starts_with("Failure [INSTALL_PARSE_FAILED_NOT_APK: "),
        "{out:?}"
    );
    let out = adb
        .shell("monkey -p com.example.hello -c android.intent.category.LAUNCHER 1")
        .await
        .expect("monkey");
    assert_eq!(out.exit_code, 0);
    let out = adb.shell("dumpsys window").await.expect("dumpsys");
    assert!(text(&out.stdout).contains(
        "mCurrentFocus=Window{1a2b3c4 u0 com.example.hello/com.example.hello.MainActivity}"
    ));
    let out = adb.shell("am force-stop com.labwright.demo && pm clear com.example.hello && pm uninstall com.example.hello").await.expect("shell");
    assert_eq!(
        (text(&out.stdout), out.exit_code),
        ("Success\nSuccess\n".into(), 0)
    );
    let out = adb
        .shell("pm uninstall com.android.settings")
        .await
        .expect("shell");
    assert_eq!(
        (text(&out.stdout), out.exit_code),
        ("Failure [DELETE_FAILED_INTERNAL_ERROR]\n".into(), 1)
    );
    let out = adb.shell("am start -n com.nope/.Main").await.expect("am");
    assert_eq!(out.exit_code, 1);
    assert!(text(&out.stderr).contains("Error type 3"));

    // logcat -d has the app start, the tap and the keys.
    let log = text(&adb.shell("logcat -d").await.expect("logcat").stdout);
    assert!(log.starts_with("--------- beginning of main\n"));
    for want in [
        "I ActivityTaskManager: START u0 {act=android.intent.action.MAIN cat=[android.intent.category.LAUNCHER] flg=0x10200000 cmp=com.labwright.demo/.MainActivity}",
        "LabwrightDemo: button increment clicked, count=1",
        "InputDispatcher: Delivering KEYCODE_DEL (67) to com.labwright.demo",
        "Force stopping com.labwright.demo",
    ] {
        assert!(log.contains(want), "{want} in {log}");
    }
    let _ = std::fs::remove_dir_all(&local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_logcat_follows_until_the_stream_closes() {
    let s = sim(true).await;
    let adb = connect(&s).await;
    let mut stream = adb.open("shell:logcat").await.expect("open logcat");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(c)) = stream.read_chunk().await {
            sink.lock().expect("lock").extend_from_slice(&c);
        }
    });
    let wanted = "Delivering KEYCODE_HOME (3)";
    // The buffer so far first, then the key pressed after it was printed.
    labwright_testkit::eventually(Duration::from_secs(60), "logcat's first lines", || {
        let seen = seen.clone();
        async move {
            text(&seen.lock().expect("lock"))
                .starts_with("--------- beginning of main\n")
                .then_some(())
        }
    })
    .await;
    let start_len = seen.lock().expect("lock").len();
    assert!(!text(&seen.lock().expect("lock")).contains(wanted));
    // A key pressed after the follower started shows up in it.
    adb.shell("input keyevent 3").await.expect("key");
    labwright_testkit::eventually(
        Duration::from_secs(60),
        "the key in streaming logcat",
        || {
            let seen = seen.clone();
            async move {
                text(&seen.lock().expect("lock"))
                    .contains(wanted)
                    .then_some(())
            }
        },
    )
    .await;
    assert!(seen.lock().expect("lock").len() > start_len);
    reader.abort();
    // The connection stays usable after the follower is closed.
    let out = adb.shell("echo still here").await.expect("shell");
    assert_eq!(text(&out.stdout), "still here\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_waits_unauthorized_until_accepted() {
    let s = sim(false).await;
    let addr = s.running.addr.to_string();
    let connecting = tokio::spawn(async move {
        let options = ConnectOptions {
            auth_timeout: Duration::from_secs(120),
            ..ConnectOptions::default()
        };
        AdbClient::connect_tcp(&addr, &host_key(), options).await
    });
    let pending =
        labwright_testkit::eventually(Duration::from_secs(30), "a pending key", || async {
            s.running.keys.pending().into_iter().next()
        })
        .await;
    assert_eq!(pending.fingerprint, host_key().fingerprint());
    assert!(
        !connecting.is_finished(),
        "no connection before the key is accepted"
    );
    assert!(s.running.keys.accept(&pending.fingerprint));
    let adb = connecting.await.expect("join").expect("connect");
    assert_eq!(adb.device().state, "device");
}
