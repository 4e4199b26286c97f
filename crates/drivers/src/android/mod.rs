//! The `android` device kind: a phone or Android TV over ADB (`labwright-adb`, no `adb` binary).
//!
//! [`AndroidDevice`] is generic over how it reaches adbd ([`Connector`]: TCP today, USB by
//! serial is future and refused with a clear error). Its own small tokio runtime runs a
//! supervisor that connects with the host key (generated once, stored 0600; its fingerprint
//! logged so a person can accept it on the phone), reads `getprop` and `wm size`, and watches
//! the connection: an unaccepted key is status `error` with the fingerprint to look for, a lost
//! connection `offline` and calls `Unavailable` until it reconnects (with backoff).
//!
//! Controllers: [`RemoteControl`] (key events, text, tap, swipe through ONE persistent shell, so
//! a key press pays no `input` process start), [`VideoCapture`] (`exec:screencap -p`, PNG
//! decoded into a `Frame`), [`Shell`] (`shell,v2` with the exit code) and [`AndroidUi`] (the UI
//! hierarchy by `uiautomator dump`, apps by `am`/`pm`/`monkey`, APKs pushed through sync).

mod keys;
mod props;
#[cfg(test)]
mod tests;

use std::{
    future::Future,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use labwright_adb::{AdbClient, AdbError, AdbKey, ConnectOptions, PersistentShell};
use labwright_core::{
    controller::{
        AndroidUi, ControlError, Device, Key, RemoteControl, Shell, ShellOutput, VideoCapture,
    },
    fleet::Status,
    frame::Frame,
    retry::Backoff,
};
use serde::Deserialize;

pub use keys::{input_text_arg, keycode, shell_quote};
pub use props::{AndroidProps, parse_getprop, parse_wm_size};

/// `[settings]` of an `android` device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AndroidSettings {
    /// adbd over TCP, `HOST:PORT` (`adb tcpip 5555`, wireless debugging, the simulated phone).
    #[serde(default)]
    pub address: Option<String>,
    /// A USB device by serial number (not supported yet).
    #[serde(default)]
    pub serial: Option<String>,
    /// The host's ADB private key (PKCS#8 PEM; adb's own `adbkey` works). Default:
    /// `adbkey` in the agent's state directory, generated on first use with mode 0600.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The timeout of each call (shell command, screenshot), milliseconds.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// How long each connection attempt waits for the key to be accepted, milliseconds.
    #[serde(default = "default_auth_timeout_ms")]
    pub auth_timeout_ms: u64,
    /// The directory of APKs `install_app` steps may name (none: installing is refused).
    #[serde(default)]
    pub apk_dir: Option<PathBuf>,
}

fn default_call_timeout_ms() -> u64 {
    30_000
}

fn default_auth_timeout_ms() -> u64 {
    10_000
}

impl AndroidSettings {
    /// Parses and checks the settings table; every problem starts with its setting's name.
    pub fn from_table(settings: &toml::Table) -> Result<AndroidSettings, Vec<String>> {
        let s: AndroidSettings = toml::Value::Table(settings.clone())
            .try_into()
            .map_err(|e: toml::de::Error| vec![e.message().trim().to_string()])?;
        let mut problems = Vec::new();
        match (&s.address, &s.serial) {
            (_, Some(serial)) => problems.push(format!(
                "serial: adb over usb (serial {serial:?}) is unsupported for now; \
                 use address = \"HOST:PORT\" (adb tcpip)"
            )),
            (None, None) => problems.push("address: required (\"HOST:PORT\" of adbd)".into()),
            (Some(a), None) => {
                if let Err(e) = check_address(a) {
                    problems.push(format!("address: {e}"));
                }
            }
        }
        for (name, v, min, max) in [
            ("call_timeout_ms", s.call_timeout_ms, 100, 600_000),
            ("auth_timeout_ms", s.auth_timeout_ms, 100, 600_000),
        ] {
            if !(min..=max).contains(&v) {
                problems.push(format!("{name}: must be between {min} and {max}"));
            }
        }
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(problems)
        }
    }
}

/// `HOST:PORT` with a non-empty host and a port in 1..=65535 (`[::1]:5555` for IPv6).
fn check_address(a: &str) -> Result<(), String> {
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err(format!("{a:?} is not HOST:PORT"));
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{a:?} has no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{a:?} has no valid port (1-65535)")),
    }
}

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// How the driver reaches adbd: one new connection per call.
pub trait Connector: Send + Sync + 'static {
    /// Where it connects, for logs and statuses.
    fn describe(&self) -> String;
    fn connect(
        &self,
        key: AdbKey,
        options: ConnectOptions,
    ) -> BoxFuture<labwright_adb::Result<AdbClient>>;
}

/// adbd over TCP.
#[derive(Debug, Clone)]
pub struct TcpConnector {
    pub address: String,
}

impl Connector for TcpConnector {
    fn describe(&self) -> String {
        format!("tcp:{}", self.address)
    }

    fn connect(
        &self,
        key: AdbKey,
        options: ConnectOptions,
    ) -> BoxFuture<labwright_adb::Result<AdbClient>> {
        let address = self.address.clone();
        Box::pin(async move { AdbClient::connect_tcp(&address, &key, options).await })
    }
}

/// Loads the host key at `path`, generating it (mode 0600, `path.pub` beside it) on first use,
/// and logs its public key and fingerprint so a person can accept it on the phone.
pub fn load_host_key(path: &std::path::Path) -> Result<AdbKey, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let key = AdbKey::load_or_generate(path, "labwright@host")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(
        key = %path.display(),
        fingerprint = %key.fingerprint(),
        public_key = %key.public_key_text(),
        "adb host key; accept this fingerprint on the phone"
    );
    Ok(key)
}

/// The persistent shell of a connection, opened on first use (`None` after a failure).
type ShellSlot = Arc<tokio::sync::Mutex<Option<PersistentShell>>>;

/// What the supervisor knows about the device.
struct State {
    status: Status,
    detail: String,
    /// Set once the first connection attempt ended (either way).
    attempted: bool,
    client: Option<Arc<AdbClient>>,
    /// The persistent shell of the current connection, opened on first use.
    shell: ShellSlot,
    props: AndroidProps,
    screen: (u32, u32),
}

struct Inner {
    name: String,
    state: Mutex<State>,
    changed: Condvar,
    call_timeout: Duration,
    frames: AtomicU64,
    stop: tokio::sync::Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }
}

/// An Android device over ADB.
pub struct AndroidDevice {
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
    /// Where `install_app` finds APKs by name.
    pub apk_dir: Option<PathBuf>,
}

impl Drop for AndroidDevice {
    fn drop(&mut self) {
        self.inner.stop.notify_one();
        self.inner.lock().client = None;
        // Never blocks, even when dropped inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl AndroidDevice {
    /// Builds the device from its settings; the connection is made in the background.
    /// `state_dir` holds the default host key.
    pub fn from_settings(
        name: &str,
        settings: &toml::Table,
        state_dir: &std::path::Path,
    ) -> Result<AndroidDevice, Vec<String>> {
        let s = AndroidSettings::from_table(settings)?;
        let key_path = s.key.clone().unwrap_or_else(|| state_dir.join("adbkey"));
        let key = load_host_key(&key_path).map_err(|e| vec![format!("key: {e}")])?;
        let address = s.address.clone().unwrap_or_default();
        let options = ConnectOptions {
            call_timeout: Duration::from_millis(s.call_timeout_ms),
            auth_timeout: Duration::from_millis(s.auth_timeout_ms),
            ..ConnectOptions::default()
        };
        let mut device = AndroidDevice::start(name, TcpConnector { address }, key, options)
            .map_err(|e| vec![format!("runtime: {e}")])?;
        device.apk_dir = s.apk_dir;
        Ok(device)
    }

    /// Starts the supervisor over `connector`.
    pub fn start(
        name: &str,
        connector: impl Connector,
        key: AdbKey,
        options: ConnectOptions,
    ) -> std::io::Result<AndroidDevice> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .thread_name(format!("adb-{name}"))
            .enable_all()
            .build()?;
        let inner = Arc::new(Inner {
            name: name.to_string(),
            state: Mutex::new(State {
                status: Status::Offline,
                detail: format!("connecting to {}", connector.describe()),
                attempted: false,
                client: None,
                shell: Arc::default(),
                props: AndroidProps::default(),
                screen: (0, 0),
            }),
            changed: Condvar::new(),
            call_timeout: options.call_timeout,
            frames: AtomicU64::new(0),
            stop: tokio::sync::Notify::new(),
        });
        let sup = inner.clone();
        runtime.spawn(async move {
            let stop = sup.clone();
            tokio::select! {
                _ = supervise(sup, Arc::new(connector), key, options) => {}
                _ = stop.stop.notified() => {}
            }
        });
        Ok(AndroidDevice {
            inner,
            runtime: Some(runtime),
            apk_dir: None,
        })
    }

    /// The device's status and its detail (`unauthorized: accept the key …`, the properties
    /// summary when online).
    pub fn status(&self) -> (Status, String) {
        let st = self.inner.lock();
        (st.status, st.detail.clone())
    }

    /// What `getprop` said on the last connection.
    pub fn properties(&self) -> AndroidProps {
        self.inner.lock().props.clone()
    }

    /// Waits until the first connection attempt ended (or `timeout`); true if it did.
    pub fn wait_first_attempt(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.attempted)
    }

    /// Waits until the device is online (or `timeout`); true if it is.
    pub fn wait_online(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.status == Status::Online)
    }

    fn wait_until(&self, timeout: Duration, check: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.inner.lock();
        loop {
            if check(&st) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .inner
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn client(&self) -> Result<(Arc<AdbClient>, ShellSlot), ControlError> {
        let st = self.inner.lock();
        match &st.client {
            Some(c) if c.is_connected() => Ok((c.clone(), st.shell.clone())),
            _ => Err(ControlError::Unavailable(format!(
                "{}: {}",
                self.inner.name, st.detail
            ))),
        }
    }

    /// Runs `f` on the driver's runtime and waits for it (at most `timeout` plus a grace).
    fn call<T, F>(
        &self,
        timeout: Duration,
        f: impl FnOnce(Arc<AdbClient>, ShellSlot) -> F,
    ) -> Result<T, ControlError>
    where
        T: Send + 'static,
        F: Future<Output = labwright_adb::Result<T>> + Send + 'static,
    {
        let (client, shell) = self.client()?;
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| ControlError::Unavailable("driver stopped".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let fut = f(client, shell);
        rt.spawn(async move {
            let r = match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(AdbError::Timeout(timeout)),
            };
            let _ = tx.send(r);
        });
        match rx.recv_timeout(timeout + Duration::from_secs(5)) {
            Ok(r) => r.map_err(control_error),
            Err(_) => Err(ControlError::Timeout(format!(
                "no answer from {} within {timeout:?}",
                self.inner.name
            ))),
        }
    }

    /// Runs a `shell,v2` command with the exit code.
    fn shell_v2(&self, command: &str, timeout: Duration) -> Result<ShellOutput, ControlError> {
        let command = command.to_string();
        let out = self.call(timeout, move |c, _| async move {
            c.shell_with_timeout(&command, timeout).await
        })?;
        Ok(ShellOutput {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            exit_code: out.exit_code,
        })
    }

    /// Runs a command that must succeed (exit code 0), returning its stdout.
    fn checked(&self, command: &str) -> Result<String, ControlError> {
        let out = self.shell_v2(command, self.inner.call_timeout)?;
        if out.exit_code != 0 {
            return Err(ControlError::Driver(format!(
                "`{command}` exited with {}: {}",
                out.exit_code,
                first_line(&out.stderr, &out.stdout)
            )));
        }
        Ok(out.stdout)
    }

    /// Runs one `input …` line through the persistent shell (opened on first use, reopened
    /// after a failure); a non-zero status of the command is an error.
    fn input(&self, line: String) -> Result<(), ControlError> {
        let timeout = self.inner.call_timeout;
        let shown = line.clone();
        let out = self.call(timeout, move |client, slot| async move {
            let mut guard = slot.lock().await;
            if guard.is_none() {
                *guard = Some(client.persistent_shell().await?);
            }
            let Some(shell) = guard.as_mut() else {
                return Err(AdbError::Protocol("persistent shell missing".into()));
            };
            match shell.run(&format!("{line}\necho $?")).await {
                Ok(out) => Ok(out),
                Err(e) => {
                    // Out of step after a failure: the next call opens a new one.
                    *guard = None;
                    Err(e)
                }
            }
        })?;
        let text = String::from_utf8_lossy(&out);
        // The last line is the status `echo $?` printed; a shell that does not expand `$?`
        // prints something else, taken as success.
        let mut lines: Vec<&str> = text.lines().collect();
        let status = lines.pop().and_then(|l| l.trim().parse::<i32>().ok());
        match status {
            Some(code) if code != 0 => Err(ControlError::Driver(format!(
                "`{shown}` exited with {code}: {}",
                lines.join(" ").trim()
            ))),
            _ => Ok(()),
        }
    }
}

fn first_line<'a>(a: &'a str, b: &'a str) -> &'a str {
    let pick = if a.trim().is_empty() { b } else { a };
    pick.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// An ADB failure as a controller error.
fn control_error(e: AdbError) -> ControlError {
    match e {
        AdbError::Unavailable(m) => ControlError::Unavailable(m),
        e @ AdbError::Unauthorized { .. } => ControlError::Unavailable(e.to_string()),
        AdbError::Timeout(d) => ControlError::Timeout(format!("adb call took over {d:?}")),
        AdbError::Unsupported(m) => ControlError::Unsupported(m),
        e => ControlError::Driver(format!("{} ({})", e, e.code())),
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Connects, reads the properties, watches the connection, and starts over with backoff.
async fn supervise(
    inner: Arc<Inner>,
    connector: Arc<dyn Connector>,
    key: AdbKey,
    options: ConnectOptions,
) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    let target = connector.describe();
    loop {
        match connector.connect(key.clone(), options.clone()).await {
            Ok(client) => {
                let client = Arc::new(client);
                match probe(&client, options.call_timeout).await {
                    Ok((props, screen)) => {
                        backoff.reset();
                        let summary = props.summary();
                        tracing::info!(device = %inner.name, %target, properties = %summary, "android device online");
                        inner.update(|st| {
                            st.status = Status::Online;
                            st.detail = summary;
                            st.attempted = true;
                            st.client = Some(client.clone());
                            st.shell = Arc::default();
                            st.props = props;
                            st.screen = screen.unwrap_or(st.screen);
                        });
                        while client.is_connected() {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        tracing::warn!(device = %inner.name, %target, "android device connection lost; reconnecting");
                        inner.update(|st| {
                            st.status = Status::Offline;
                            st.detail = format!("connection to {target} lost; reconnecting");
                            st.client = None;
                        });
                    }
                    Err(e) => {
                        tracing::warn!(device = %inner.name, %target, error = %e, "android device did not answer getprop");
                        inner.update(|st| {
                            st.status = Status::Error;
                            st.detail = format!("{target}: getprop failed: {e}");
                            st.attempted = true;
                        });
                    }
                }
            }
            Err(AdbError::Unauthorized { fingerprint }) => {
                if backoff.worth_logging() {
                    tracing::warn!(device = %inner.name, %target, %fingerprint, "android device has not accepted the host key");
                }
                inner.update(|st| {
                    st.status = Status::Error;
                    st.detail = format!(
                        "unauthorized: accept the key with fingerprint {fingerprint} on the phone"
                    );
                    st.attempted = true;
                });
            }
            Err(e) => {
                if backoff.worth_logging() {
                    tracing::warn!(device = %inner.name, %target, error = %e, code = e.code(), "android device unreachable");
                }
                inner.update(|st| {
                    st.status = Status::Offline;
                    st.detail = format!("{target}: {e}");
                    st.attempted = true;
                });
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// `getprop` (required) and `wm size` (optional) of a new connection.
async fn probe(
    client: &AdbClient,
    timeout: Duration,
) -> labwright_adb::Result<(AndroidProps, Option<(u32, u32)>)> {
    let out = client.shell_with_timeout("getprop", timeout).await?;
    if out.exit_code != 0 {
        return Err(AdbError::Protocol(format!(
            "getprop exited with {}",
            out.exit_code
        )));
    }
    let props = parse_getprop(&String::from_utf8_lossy(&out.stdout));
    let screen = match client.shell_with_timeout("wm size", timeout).await {
        Ok(o) if o.exit_code == 0 => parse_wm_size(&String::from_utf8_lossy(&o.stdout)),
        _ => None,
    };
    Ok((props, screen))
}

impl Device for AndroidDevice {
    fn remote(&self) -> Option<&dyn RemoteControl> {
        Some(self)
    }
    fn video(&self) -> Option<&dyn VideoCapture> {
        Some(self)
    }
    fn shell(&self) -> Option<&dyn Shell> {
        Some(self)
    }
    fn android_ui(&self) -> Option<&dyn AndroidUi> {
        Some(self)
    }
}

impl RemoteControl for AndroidDevice {
    fn press(&self, key: Key) -> Result<(), ControlError> {
        self.input(format!("input keyevent {}", keycode(key)))
    }

    fn long_press(&self, key: Key, _hold: Duration) -> Result<(), ControlError> {
        self.input(format!("input keyevent --longpress {}", keycode(key)))
    }

    fn text(&self, text: &str) -> Result<(), ControlError> {
        AndroidUi::input_text(self, text)
    }

    fn tap(&self, x: u32, y: u32) -> Result<(), ControlError> {
        AndroidUi::tap(self, x, y)
    }

    fn swipe(&self, from: (u32, u32), to: (u32, u32), d: Duration) -> Result<(), ControlError> {
        AndroidUi::swipe(self, from, to, d)
    }
}

impl AndroidUi for AndroidDevice {
    fn tap(&self, x: u32, y: u32) -> Result<(), ControlError> {
        self.input(format!("input tap {x} {y}"))
    }

    fn swipe(&self, from: (u32, u32), to: (u32, u32), d: Duration) -> Result<(), ControlError> {
        self.input(format!(
            "input swipe {} {} {} {} {}",
            from.0,
            from.1,
            to.0,
            to.1,
            d.as_millis()
        ))
    }

    fn input_text(&self, text: &str) -> Result<(), ControlError> {
        if text.is_empty() {
            return Ok(());
        }
        if text.contains(['\n', '\r', '\0']) || text.contains("%s") {
            return Err(ControlError::Invalid(
                "text to type cannot hold line breaks, NUL or \"%s\"".into(),
            ));
        }
        self.input(format!("input text {}", input_text_arg(text)))
    }

    fn ui_dump(&self) -> Result<String, ControlError> {
        const DUMP: &str = "/sdcard/window_dump.xml";
        let out = self.checked(&format!("uiautomator dump {DUMP}"))?;
        // Some builds print the XML itself; otherwise read the file it wrote.
        if let Some(xml) = extract_hierarchy(&out) {
            return Ok(xml);
        }
        let xml = self.checked(&format!("cat {DUMP}"))?;
        extract_hierarchy(&xml).ok_or_else(|| {
            ControlError::Driver(format!("uiautomator wrote no hierarchy to {DUMP}"))
        })
    }

    fn launch_app(&self, package: &str, activity: Option<&str>) -> Result<(), ControlError> {
        check_package(package)?;
        let out = match activity {
            Some(a) => {
                let component = if a.contains('/') {
                    a.to_string()
                } else {
                    format!("{package}/{a}")
                };
                self.shell_v2(
                    &format!("am start -W -n {}", shell_quote(&component)),
                    self.inner.call_timeout,
                )?
            }
            None => self.shell_v2(
                &format!(
                    "monkey -p {} -c android.intent.category.LAUNCHER 1",
                    shell_quote(package)
                ),
                self.inner.call_timeout,
            )?,
        };
        let text = format!("{}\n{}", out.stdout, out.stderr);
        if out.exit_code != 0
            || text.contains("Error:")
            || text.contains("No activities found")
            || text.contains("monkey aborted")
        {
            return Err(ControlError::Invalid(format!(
                "could not launch {package}: {}",
                first_line(&out.stderr, &out.stdout)
            )));
        }
        Ok(())
    }

    fn stop_app(&self, package: &str) -> Result<(), ControlError> {
        check_package(package)?;
        self.checked(&format!("am force-stop {}", shell_quote(package)))
            .map(|_| ())
    }

    fn clear_app(&self, package: &str) -> Result<(), ControlError> {
        check_package(package)?;
        let out = self.checked(&format!("pm clear {}", shell_quote(package)))?;
        if !out.contains("Success") {
            return Err(ControlError::Invalid(format!(
                "could not clear {package}: {}",
                out.trim()
            )));
        }
        Ok(())
    }

    fn install_app(&self, apk: &str) -> Result<(), ControlError> {
        let dir = self.apk_dir.as_ref().ok_or(ControlError::Unsupported(
            "installing apps (no apk_dir is configured for this device)",
        ))?;
        if apk.is_empty()
            || apk.starts_with('.')
            || apk.contains(['/', '\\', '\0'])
            || !apk.ends_with(".apk")
        {
            return Err(ControlError::Invalid(format!(
                "{apk:?} is not the file name of an apk (NAME.apk in the host's apk directory)"
            )));
        }
        let local = dir.join(apk);
        let size = std::fs::metadata(&local)
            .map_err(|e| ControlError::Invalid(format!("apk {apk:?}: {e}")))?
            .len();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let remote = format!("/data/local/tmp/labwright-{}-{n}.apk", std::process::id());
        let timeout = self.inner.call_timeout + Duration::from_secs(size / (8 << 20));
        let r = remote.clone();
        self.call(
            timeout,
            move |c, _| async move { c.push_file(&local, &r).await },
        )?;
        let out = self.shell_v2(&format!("pm install -r {}", shell_quote(&remote)), timeout);
        let _ = self.shell_v2(
            &format!("rm -f {}", shell_quote(&remote)),
            self.inner.call_timeout,
        );
        let out = out?;
        if out.exit_code != 0 || !out.stdout.contains("Success") {
            return Err(ControlError::Invalid(format!(
                "installing {apk} failed: {}",
                first_line(&out.stderr, &out.stdout)
            )));
        }
        Ok(())
    }

    fn list_apps(&self) -> Result<Vec<String>, ControlError> {
        let out = self.checked("pm list packages")?;
        let mut apps: Vec<String> = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("package:"))
            .map(String::from)
            .collect();
        apps.sort();
        Ok(apps)
    }
}

/// An Android package name: dot-separated identifiers.
fn check_package(p: &str) -> Result<(), ControlError> {
    let ok = !p.is_empty()
        && p.len() <= 255
        && p.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !part.starts_with(|c: char| c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!(
            "{p:?} is not an android package name"
        )))
    }
}

/// The `<hierarchy …>…</hierarchy>` document inside `text` (with its XML declaration).
fn extract_hierarchy(text: &str) -> Option<String> {
    let start = text.find("<?xml").or_else(|| text.find("<hierarchy"))?;
    let end = text[start..].find("</hierarchy>")? + start + "</hierarchy>".len();
    Some(text[start..end].to_string())
}

impl VideoCapture for AndroidDevice {
    fn grab(&self) -> Result<Frame, ControlError> {
        let png = self.call(self.inner.call_timeout, |c, _| async move {
            c.exec("screencap -p").await
        })?;
        let captured_at_us = now_us();
        let mut frame = labwright_core::image_io::decode_frame(&png).map_err(|e| {
            ControlError::Driver(format!(
                "screencap -p gave no usable png: {e} ({})",
                e.code()
            ))
        })?;
        frame.captured_at_us = captured_at_us;
        frame.seq = self.inner.frames.fetch_add(1, Ordering::Relaxed) + 1;
        let size = (frame.width, frame.height);
        self.inner.lock().screen = size;
        Ok(frame)
    }

    fn resolution(&self) -> (u32, u32) {
        self.inner.lock().screen
    }
}

impl Shell for AndroidDevice {
    fn run(&self, command: &str, timeout: Duration) -> Result<ShellOutput, ControlError> {
        self.shell_v2(command, timeout)
    }
}
