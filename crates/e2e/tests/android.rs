//! An Android phone through the whole platform: a host-agent with an `android` device dials a
//! phone (the adb crate's real daemon over TCP, with a demo app answering Android's commands:
//! getprop, wm size, screencap -p, uiautomator dump, input, monkey, am), is refused until the
//! key is accepted on the phone, comes online with its properties, and a test case opens the
//! demo app, taps a button found by its text, types text, verifies elements and passes.

mod support;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use labwright_adb::{
    AdbDaemon, DaemonConfig, ShellHandler, ShellIo, TrustedKeys, daemon::ExitFuture,
};
use support::*;

const WAIT: Duration = Duration::from_secs(90);

const GETPROP: &str = "[ro.build.version.release]: [14]\n[ro.build.version.sdk]: [34]\n\
[ro.product.manufacturer]: [Labwright]\n[ro.product.model]: [Demo Phone]\n[ro.serialno]: [LW-E2E]\n";

#[derive(Default)]
struct Screen {
    app_open: bool,
    greeted: bool,
    name: String,
}

/// The demo phone's shell: a launcher, and the demo app with a "Say hello" button at
/// (100,200)-(500,300), a name field and a greeting shown once the button was tapped.
#[derive(Clone)]
struct DemoPhone {
    screen: Arc<Mutex<Screen>>,
    sandbox: PathBuf,
    png: Arc<Vec<u8>>,
}

impl DemoPhone {
    fn dump(&self) -> String {
        let s = self.screen.lock().expect("lock");
        let mut nodes = String::new();
        if s.app_open {
            nodes.push_str(r#"<node index="0" text="Say hello" resource-id="com.labwright.demo:id/hello" class="android.widget.Button" package="com.labwright.demo" content-desc="" clickable="true" enabled="true" bounds="[100,200][500,300]" />"#);
            nodes.push_str(&format!(
                r#"<node index="1" text="{}" resource-id="com.labwright.demo:id/name" class="android.widget.EditText" package="com.labwright.demo" content-desc="Your name" clickable="true" enabled="true" bounds="[100,400][980,500]" />"#,
                s.name.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;")
            ));
            if s.greeted {
                nodes.push_str(r#"<node index="2" text="Hello!" resource-id="com.labwright.demo:id/greeting" class="android.widget.TextView" package="com.labwright.demo" content-desc="" clickable="false" enabled="true" bounds="[100,600][500,700]" />"#);
            }
        } else {
            nodes.push_str(r#"<node index="0" text="Demo" resource-id="" class="android.widget.TextView" package="com.android.launcher" content-desc="Demo app" clickable="true" enabled="true" bounds="[0,0][200,200]" />"#);
        }
        format!(
            "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">{nodes}</hierarchy>"
        )
    }

    /// One command line: stdout, stderr, exit code.
    fn answer(&self, line: &str) -> (Vec<u8>, String, i32) {
        let ok = |s: &str| (s.as_bytes().to_vec(), String::new(), 0);
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["getprop"] => ok(GETPROP),
            ["wm", "size"] => ok("Physical size: 1080x2400\n"),
            ["screencap", "-p"] => (self.png.as_ref().clone(), String::new(), 0),
            ["uiautomator", "dump", path] => {
                let file = self.sandbox.join(path.trim_start_matches('/'));
                if let Some(dir) = file.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = std::fs::write(&file, self.dump());
                ok(&format!("UI hierchary dumped to: {path}\n"))
            }
            ["cat", path] => match std::fs::read(self.sandbox.join(path.trim_start_matches('/'))) {
                Ok(b) => (b, String::new(), 0),
                Err(_) => (
                    Vec::new(),
                    format!("cat: {path}: No such file or directory\n"),
                    1,
                ),
            },
            ["monkey", "-p", "'com.labwright.demo'", ..] => {
                self.screen.lock().expect("lock").app_open = true;
                ok("Events injected: 1\n")
            }
            ["monkey", ..] => (
                Vec::new(),
                "** No activities found to run, monkey aborted.\n".into(),
                252,
            ),
            ["am", "force-stop", _] => {
                let mut s = self.screen.lock().expect("lock");
                s.app_open = false;
                s.greeted = false;
                ok("")
            }
            ["input", "tap", x, y] => {
                let (x, y): (u32, u32) = (x.parse().unwrap_or(0), y.parse().unwrap_or(0));
                let mut s = self.screen.lock().expect("lock");
                if s.app_open && (100..500).contains(&x) && (200..300).contains(&y) {
                    s.greeted = true;
                }
                ok("")
            }
            ["input", "text", ..] => {
                let arg = line["input text ".len()..].trim();
                let text = arg
                    .trim_matches('\'')
                    .replace(r"'\''", "'")
                    .replace("%s", " ");
                self.screen.lock().expect("lock").name.push_str(&text);
                ok("")
            }
            ["input", "keyevent", ..] => ok(""),
            _ => (
                Vec::new(),
                format!("/system/bin/sh: {line}: not found\n"),
                127,
            ),
        }
    }
}

impl ShellHandler for DemoPhone {
    fn run(&self, command: String, mut io: ShellIo) -> ExitFuture {
        let phone = self.clone();
        Box::pin(async move {
            if !command.is_empty() {
                let (out, err, code) = phone.answer(&command);
                if !out.is_empty() {
                    let _ = io.stdout.send(out).await;
                }
                if !err.is_empty() {
                    let _ = io.stderr.send(err.into_bytes()).await;
                }
                return code;
            }
            // An interactive shell: one line at a time; `echo` expands `$?`.
            let mut pending = Vec::new();
            let mut last = 0;
            while let Some(d) = io.stdin.recv().await {
                pending.extend_from_slice(&d);
                while let Some(at) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=at).collect();
                    let line = String::from_utf8_lossy(&line).trim().to_string();
                    let (out, err, code) = match line.strip_prefix("echo ") {
                        Some(arg) => (
                            format!("{}\n", arg.replace("$?", &last.to_string())).into_bytes(),
                            String::new(),
                            0,
                        ),
                        None => phone.answer(&line),
                    };
                    if !out.is_empty() {
                        let _ = io.stdout.send(out).await;
                    }
                    if !err.is_empty() {
                        let _ = io.stderr.send(err.into_bytes()).await;
                    }
                    last = code;
                }
            }
            last
        })
    }
}

/// Starts the demo phone on a loopback port; returns its address and trusted keys.
async fn start_phone() -> (String, TrustedKeys, PathBuf) {
    let sandbox = temp_dir("phone");
    let keys = TrustedKeys::default();
    let rgb: Vec<u8> = (0..1080 * 2400).flat_map(|_| [30u8, 60, 90]).collect();
    let frame = labwright_core::frame::Frame::from_rgb(1080, 2400, rgb, 0, 0).expect("frame");
    let png = labwright_core::image_io::encode_png(&frame).expect("png");
    let mut config = DaemonConfig::new(sandbox.clone(), keys.clone());
    config.serial = "LW-E2E".into();
    config.shell = Arc::new(DemoPhone {
        screen: Arc::default(),
        sandbox: sandbox.clone(),
        png: Arc::new(png),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    tokio::spawn(AdbDaemon::new(config).serve(listener));
    (address, keys, sandbox)
}

const DEMO_TEST: &str = r#"
name: demo-app-says-hello
description: open the demo app, greet, type a name
steps:
  - launch_app: com.labwright.demo
  - tap_element: Say hello
  - verify_element: Hello!
  - tap: {resource_id: name}
  - input_text: Ada Lovelace
  - verify_element: {text: Ada Lovelace, content_desc: Your name}
  - verify_element: {text: Goodbye, state: absent}
    timeout_ms: 1000
  - stop_app: com.labwright.demo
  - verify_element: {content_desc: Demo app}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_is_refused_until_its_key_is_accepted_then_runs_a_demo_app_test() {
    let (address, keys, _sandbox) = start_phone().await;
    let db = fresh_database().await;
    let s = TestServer::start(test_config(&db)).await;
    let base = s.url("");
    let token = s.create_key("host", "phone host").await;
    let settings = format!("address = \"{address}\"\nauth_timeout_ms = 1000\n");
    let device = labwright_host_agent::config::DeviceConfig {
        id: "phone-1".into(),
        name: "Demo phone".into(),
        model: "demo-phone".into(),
        driver: "android".into(),
        tags: vec![],
        settings: toml::from_str(&settings).expect("settings"),
    };
    let _agent = spawn_host(
        s.grpc(),
        &token,
        "phone-host",
        vec![device],
        &temp_dir("agent"),
    );

    // The phone has not accepted the agent's key: the fleet says so, with the fingerprint.
    let (id, detail) = eventually(WAIT, "phone unauthorized", || async {
        let (_, page) = s.get(&s.admin_key, "/api/v1/devices").await;
        let d = page["items"].as_array()?.first()?.clone();
        let detail = d["status_detail"].as_str()?.to_string();
        (d["status"] == "error" && detail.starts_with("unauthorized: accept the key"))
            .then(|| (d["id"].as_str().map(str::to_owned), detail))
    })
    .await;
    let id = id.expect("device id");
    let pending = eventually(WAIT, "key offered", || async {
        keys.pending().into_iter().next()
    })
    .await;
    assert_eq!(
        detail,
        format!(
            "unauthorized: accept the key with fingerprint {} on the phone",
            pending.fingerprint
        )
    );

    // A person taps "Allow": the phone comes online with its properties and capabilities.
    assert!(keys.accept(&pending.fingerprint));
    let d = eventually(WAIT, "phone online", || async {
        let (_, d) = s.get(&s.admin_key, &format!("/api/v1/devices/{id}")).await;
        (d["status"] == "online").then_some(d)
    })
    .await;
    assert_eq!(
        d["status_detail"], "Labwright Demo Phone · Android 14 (API 34) · serial LW-E2E",
        "{d}"
    );
    assert_eq!(
        d["capabilities"],
        serde_json::json!(["remote_control", "touch", "video_capture", "shell"]),
        "{d}"
    );
    assert_eq!(d["driver"], "android", "{d}");

    // The demo app test case passes, every step with its screenshot.
    push_testcase(&base, &s.admin_key, DEMO_TEST).await;
    let e = run(&base, &s.admin_key, "demo-app-says-hello", &id).await;
    let e_id = e["id"].as_str().expect("id").to_string();
    let e = eventually(WAIT, "execution finished", || async {
        let (_, e) = s
            .get(&s.admin_key, &format!("/api/v1/executions/{e_id}"))
            .await;
        ["passed", "failed", "error", "cancelled", "interrupted"]
            .contains(&e["status"].as_str()?)
            .then_some(e)
    })
    .await;
    assert_eq!(e["status"], "passed", "{e:#}");
    let steps = e["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 9, "{e:#}");
    assert!(
        steps[1]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("tapped text \"Say hello\" at (300, 250)")),
        "{e:#}"
    );
}
