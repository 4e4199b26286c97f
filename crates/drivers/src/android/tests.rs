//! The driver against the adb crate's real daemon over loopback TCP, with a scripted shell that
//! answers like Android's commands (getprop, wm size, input, screencap -p, uiautomator, am, pm).

use super::*;
use labwright_adb::{
    AdbDaemon, DaemonConfig, ShellHandler, ShellIo, TrustedKeys, daemon::ExitFuture,
};
use std::sync::atomic::AtomicUsize;

const GETPROP: &str = "[ro.build.version.release]: [14]\n[ro.build.version.sdk]: [34]\n\
[ro.product.manufacturer]: [Labwright]\n[ro.product.model]: [Sim Phone]\n[ro.serialno]: [LW123]\n";

const DUMP: &str = r#"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation="0"><node index="0" text="Hello" resource-id="demo:id/title" class="android.widget.TextView" package="demo" content-desc="" bounds="[0,0][100,50]" /></hierarchy>"#;

/// What the scripted phone saw.
#[derive(Default)]
struct Seen {
    commands: Mutex<Vec<String>>,
    interactive: AtomicUsize,
}

#[derive(Clone)]
struct ScriptedPhone {
    seen: Arc<Seen>,
    sandbox: PathBuf,
    png: Vec<u8>,
}

impl ScriptedPhone {
    /// One command line: (stdout, stderr, exit code).
    fn answer(&self, line: &str) -> (Vec<u8>, String, i32) {
        lock(&self.seen.commands).push(line.to_string());
        let words: Vec<&str> = line.split_whitespace().collect();
        let ok = |s: &str| (s.as_bytes().to_vec(), String::new(), 0);
        match words.as_slice() {
            ["getprop"] => ok(GETPROP),
            ["wm", "size"] => ok("Physical size: 64x48\n"),
            ["input", "keyevent", code] | ["input", "keyevent", "--longpress", code] => {
                if code.starts_with("KEYCODE_") {
                    ok("")
                } else {
                    (Vec::new(), format!("Error: unknown keycode {code}\n"), 1)
                }
            }
            ["input", ..] => ok(""),
            ["screencap", "-p"] => (self.png.clone(), String::new(), 0),
            ["uiautomator", "dump", path] => {
                let file = self.sandbox.join(path.trim_start_matches('/'));
                if let Some(dir) = file.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = std::fs::write(&file, DUMP);
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
            ["pm", "install", "-r", path] => {
                let path = path.trim_matches('\'');
                match std::fs::read(self.sandbox.join(path.trim_start_matches('/'))) {
                    Ok(b) if b.starts_with(b"PK") => ok("Success\n"),
                    _ => ok("Failure [INSTALL_PARSE_FAILED_NOT_APK: not an apk]\n"),
                }
            }
            ["pm", "list", "packages"] => ok("package:com.b\npackage:com.a\n"),
            ["am", "force-stop", _] | ["rm", ..] => ok(""),
            ["monkey", "-p", "'demo'", ..] => ok("Events injected: 1\n"),
            ["monkey", ..] => (
                Vec::new(),
                "** No activities found to run, monkey aborted.\n".into(),
                252,
            ),
            ["sleep", _] => {
                std::thread::sleep(Duration::from_secs(3));
                ok("")
            }
            ["exit", n] => (Vec::new(), String::new(), n.parse().unwrap_or(1)),
            _ => (
                Vec::new(),
                format!("/system/bin/sh: {line}: not found\n"),
                127,
            ),
        }
    }
}

impl ShellHandler for ScriptedPhone {
    fn run(&self, command: String, mut io: ShellIo) -> ExitFuture {
        let phone = self.clone();
        Box::pin(async move {
            if !command.is_empty() {
                let phone2 = phone.clone();
                let (out, err, code) = tokio::task::spawn_blocking(move || phone2.answer(&command))
                    .await
                    .unwrap_or((Vec::new(), String::new(), 255));
                if !out.is_empty() {
                    let _ = io.stdout.send(out).await;
                }
                if !err.is_empty() {
                    let _ = io.stderr.send(err.into_bytes()).await;
                }
                return code;
            }
            // An interactive shell: one line at a time, `echo` expands `$?`.
            phone.seen.interactive.fetch_add(1, Ordering::SeqCst);
            let mut pending = Vec::new();
            let mut last = 0;
            while let Some(d) = io.stdin.recv().await {
                pending.extend_from_slice(&d);
                while let Some(at) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=at).collect();
                    let line = String::from_utf8_lossy(&line).trim().to_string();
                    if let Some(arg) = line.strip_prefix("echo ") {
                        let arg = arg.replace("$?", &last.to_string());
                        let _ = io.stdout.send(format!("{arg}\n").into_bytes()).await;
                        last = 0;
                        continue;
                    }
                    let (out, err, code) = phone.answer(&line);
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A phone: the adb daemon behind a TCP proxy that a test can cut (as if the cable were pulled).
struct Phone {
    _rt: tokio::runtime::Runtime,
    address: String,
    keys: TrustedKeys,
    seen: Arc<Seen>,
    sandbox: tempdir::Dir,
    cut: Arc<tokio::sync::Notify>,
    /// While set, the proxy drops every new connection (the phone is unplugged).
    unplugged: Arc<std::sync::atomic::AtomicBool>,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "lw-android-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn test_png() -> Vec<u8> {
    let mut rgb = Vec::new();
    for y in 0..48u32 {
        for x in 0..64u32 {
            rgb.extend_from_slice(&[(x * 4) as u8, (y * 5) as u8, 200]);
        }
    }
    let frame = Frame::from_rgb(64, 48, rgb, 0, 0).expect("frame");
    labwright_core::image_io::encode_png(&frame).expect("png")
}

impl Phone {
    fn start(trusted: Option<&AdbKey>) -> Phone {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sandbox = tempdir::Dir::new("phone");
        let keys = TrustedKeys::default();
        if let Some(k) = trusted {
            keys.trust_public_key(&k.public_key_text()).expect("trust");
        }
        let seen = Arc::new(Seen::default());
        let shell = ScriptedPhone {
            seen: seen.clone(),
            sandbox: sandbox.0.clone(),
            png: test_png(),
        };
        let mut config = DaemonConfig::new(sandbox.0.clone(), keys.clone());
        config.shell = Arc::new(shell);
        let daemon = AdbDaemon::new(config);
        let cut = Arc::new(tokio::sync::Notify::new());
        let unplugged = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gone = unplugged.clone();
        let address = rt.block_on(async {
            let inner = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let inner_addr = inner.local_addr().expect("addr");
            tokio::spawn(daemon.serve(inner));
            let outer = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let outer_addr = outer.local_addr().expect("addr");
            let cut = cut.clone();
            tokio::spawn(async move {
                while let Ok((mut a, _)) = outer.accept().await {
                    if gone.load(Ordering::SeqCst) {
                        continue;
                    }
                    let cut = cut.clone();
                    tokio::spawn(async move {
                        let Ok(mut b) = tokio::net::TcpStream::connect(inner_addr).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                            _ = cut.notified() => {}
                        }
                    });
                }
            });
            outer_addr.to_string()
        });
        Phone {
            _rt: rt,
            address,
            keys,
            seen,
            sandbox,
            cut,
            unplugged,
        }
    }

    fn commands(&self) -> Vec<String> {
        lock(&self.seen.commands).clone()
    }
}

fn options() -> ConnectOptions {
    ConnectOptions {
        call_timeout: Duration::from_secs(30),
        auth_timeout: Duration::from_secs(1),
        handshake_timeout: Duration::from_secs(30),
        ..ConnectOptions::default()
    }
}

/// One key for every test (RSA generation takes a while).
fn key() -> AdbKey {
    static KEY: std::sync::OnceLock<AdbKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| AdbKey::generate("test@host").expect("key"))
        .clone()
}

const BOUND: Duration = Duration::from_secs(60);

fn online(phone: &Phone, key: &AdbKey, opts: ConnectOptions) -> AndroidDevice {
    let mut d = AndroidDevice::start(
        "phone-1",
        TcpConnector {
            address: phone.address.clone(),
        },
        key.clone(),
        opts,
    )
    .expect("start");
    assert!(d.wait_online(BOUND), "not online: {:?}", d.status());
    let apks = phone.sandbox.0.join("host-apks");
    std::fs::create_dir_all(&apks).expect("apk dir");
    std::fs::write(apks.join("demo.apk"), b"PK\x03\x04 pretend zip").expect("apk");
    std::fs::write(apks.join("corrupt.apk"), b"not a zip").expect("apk");
    d.apk_dir = Some(apks);
    d
}

#[test]
fn comes_online_with_its_properties_and_screen_size() {
    let k = key();
    let phone = Phone::start(Some(&k));
    let d = online(&phone, &k, options());
    let (status, detail) = d.status();
    assert_eq!(status, Status::Online);
    assert_eq!(
        detail,
        "Labwright Sim Phone · Android 14 (API 34) · serial LW123"
    );
    assert_eq!(d.properties().model(), Some("Sim Phone"));
    assert_eq!(d.resolution(), (64, 48));
    assert_eq!(
        d.capabilities(),
        labwright_core::fleet::DriverKind::Android.capabilities()
    );
}

#[test]
fn keys_text_and_touch_go_through_one_persistent_shell() {
    let k = key();
    let phone = Phone::start(Some(&k));
    let d = online(&phone, &k, options());
    d.press(Key::Home).expect("home");
    d.press(Key::Ok).expect("ok");
    d.press(Key::Digit(4)).expect("4");
    RemoteControl::long_press(&d, Key::Back, Duration::from_secs(1)).expect("long");
    d.text("hi there").expect("text");
    AndroidUi::tap(&d, 10, 20).expect("tap");
    AndroidUi::swipe(&d, (1, 2), (3, 4), Duration::from_millis(300)).expect("swipe");
    AndroidUi::long_press(&d, 5, 6, Duration::from_millis(700)).expect("long press");
    let input: Vec<String> = phone
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("input"))
        .collect();
    assert_eq!(
        input,
        vec![
            "input keyevent KEYCODE_HOME",
            "input keyevent KEYCODE_DPAD_CENTER",
            "input keyevent KEYCODE_4",
            "input keyevent --longpress KEYCODE_BACK",
            "input text 'hi%sthere'",
            "input tap 10 20",
            "input swipe 1 2 3 4 300",
            "input swipe 5 6 5 6 700",
        ]
    );
    assert_eq!(phone.seen.interactive.load(Ordering::SeqCst), 1);
    let e = d.text("two\nlines").expect_err("line break");
    assert!(matches!(e, ControlError::Invalid(_)), "{e:?}");
}

#[test]
fn screenshots_are_decoded_pngs() {
    let k = key();
    let phone = Phone::start(Some(&k));
    let d = online(&phone, &k, options());
    let f1 = d.grab().expect("frame");
    assert_eq!((f1.width, f1.height), (64, 48));
    assert_eq!(f1.pixel(10, 2), [40, 10, 200]);
    let f2 = d.grab().expect("frame");
    assert!(f2.seq > f1.seq);
    assert!(f1.captured_at_us > 0);
}

#[test]
fn shell_commands_report_output_and_exit_code_and_time_out() {
    let k = key();
    let phone = Phone::start(Some(&k));
    let d = online(&phone, &k, options());
    let out = Shell::run(&d, "getprop", Duration::from_secs(30)).expect("getprop");
    assert_eq!(out.exit_code, 0);
    assert!(out.stdout.contains("[ro.serialno]: [LW123]"));
    let out = Shell::run(&d, "exit 3", Duration::from_secs(30)).expect("exit");
    assert_eq!(out.exit_code, 3);
    let out = Shell::run(&d, "nonsense", Duration::from_secs(30)).expect("nonsense");
    assert_eq!(out.exit_code, 127);
    assert!(out.stderr.contains("not found"));
    let e = Shell::run(&d, "sleep 3", Duration::from_millis(200)).expect_err("timeout");
    assert!(matches!(e, ControlError::Timeout(_)), "{e:?}");
    // The connection survives a timed-out call.
    assert_eq!(
        Shell::run(&d, "exit 0", Duration::from_secs(30))
            .expect("after")
            .exit_code,
        0
    );
}

#[test]
fn ui_dump_and_apps() {
    let k = key();
    let phone = Phone::start(Some(&k));
    let d = online(&phone, &k, options());
    let xml = d.ui_dump().expect("dump");
    assert!(
        xml.starts_with("<?xml") && xml.ends_with("</hierarchy>"),
        "{xml}"
    );
    assert!(xml.contains("text=\"Hello\""));
    d.launch_app("demo", None).expect("launch");
    let e = d.launch_app("com.missing", None).expect_err("missing");
    assert!(e.to_string().contains("No activities found"), "{e}");
    let e = d.launch_app("x; rm -rf /", None).expect_err("bad name");
    assert!(matches!(e, ControlError::Invalid(_)), "{e:?}");
    d.stop_app("demo").expect("stop");
    assert_eq!(d.list_apps().expect("list"), vec!["com.a", "com.b"]);
    d.install_app("demo.apk").expect("install");
    let e = d.install_app("corrupt.apk").expect_err("corrupt apk");
    assert!(
        e.to_string().contains("INSTALL_PARSE_FAILED_NOT_APK"),
        "{e}"
    );
    for bad in ["../demo.apk", "demo", ".apk", "missing.apk"] {
        let e = d.install_app(bad).expect_err(bad);
        assert!(matches!(e, ControlError::Invalid(_)), "{bad}: {e:?}");
    }
    assert!(
        phone
            .commands()
            .iter()
            .any(|c| c.starts_with("pm install -r '/data/local/tmp/labwright-"))
    );
    let _ = &phone.sandbox;
}

#[test]
fn unauthorized_until_the_key_is_accepted() {
    let k = key();
    let phone = Phone::start(None);
    let d = AndroidDevice::start(
        "phone-1",
        TcpConnector {
            address: phone.address.clone(),
        },
        k.clone(),
        options(),
    )
    .expect("start");
    let want = format!(
        "unauthorized: accept the key with fingerprint {} on the phone",
        k.fingerprint()
    );
    assert!(
        d.wait_until(BOUND, |st| st.status == Status::Error && st.detail == want),
        "{:?}",
        d.status()
    );
    let e = d.press(Key::Home).expect_err("unauthorized");
    assert!(matches!(e, ControlError::Unavailable(_)), "{e:?}");
    // A person taps "Allow" on the phone for the fingerprint shown.
    let deadline = Instant::now() + BOUND;
    while !phone.keys.accept(&k.fingerprint()) {
        assert!(Instant::now() < deadline, "the key was never offered");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.wait_online(BOUND), "{:?}", d.status());
    d.press(Key::Home).expect("home");
}

#[test]
fn a_lost_connection_is_unavailable_then_reconnected() {
    let k = key();
    let phone = Phone::start(Some(&k));
    let d = online(&phone, &k, options());
    d.press(Key::Up).expect("up");
    phone.unplugged.store(true, Ordering::SeqCst);
    phone.cut.notify_waiters();
    assert!(
        d.wait_until(BOUND, |st| st.status == Status::Offline),
        "{:?}",
        d.status()
    );
    let e = d.press(Key::Down).expect_err("unplugged");
    assert!(matches!(e, ControlError::Unavailable(_)), "{e:?}");
    phone.unplugged.store(false, Ordering::SeqCst);
    assert!(d.wait_online(BOUND), "{:?}", d.status());
    // Keys work again on the new connection, through a new persistent shell.
    d.press(Key::Down).expect("down");
    assert!(phone.seen.interactive.load(Ordering::SeqCst) >= 2);
}

#[test]
fn settings_are_checked() {
    let table = |s: &str| toml::from_str::<toml::Table>(s).expect("toml");
    let e = AndroidSettings::from_table(&table("serial = \"ABC\"")).expect_err("usb");
    assert!(e[0].starts_with("serial: adb over usb"), "{e:?}");
    assert!(e[0].contains("unsupported"), "{e:?}");
    let e = AndroidSettings::from_table(&table("")).expect_err("nothing");
    assert_eq!(e, vec!["address: required (\"HOST:PORT\" of adbd)"]);
    let e = AndroidSettings::from_table(&table("address = \"phone\"\ncall_timeout_ms = 1"))
        .expect_err("bad");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("address:"));
    assert!(e[1].starts_with("call_timeout_ms:"));
    let e =
        AndroidSettings::from_table(&table("address = \"a:1\"\nwarp = 1")).expect_err("unknown");
    assert!(e[0].contains("unknown field"), "{e:?}");
    for ok in ["127.0.0.1:5555", "phone.lab:5555", "[::1]:5555"] {
        AndroidSettings::from_table(&table(&format!("address = \"{ok}\""))).expect(ok);
    }
}

#[test]
fn the_host_key_is_created_once_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempdir::Dir::new("key");
    let settings = toml::from_str::<toml::Table>("address = \"127.0.0.1:9\"").expect("toml");
    let d = AndroidDevice::from_settings("p", &settings, &dir.0).expect("device");
    let path = dir.0.join("adbkey");
    let mode = std::fs::metadata(&path).expect("key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = std::fs::read(&path).expect("read");
    drop(d);
    let _d = AndroidDevice::from_settings("p", &settings, &dir.0).expect("device");
    assert_eq!(std::fs::read(&path).expect("read"), first);
    assert!(dir.0.join("adbkey.pub").exists());
}
