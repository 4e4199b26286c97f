//! The simulated Android phone: a pure model of a 540x960 portrait phone for demos and CI,
//! served over real ADB by `labwright-sim-phone` (crate `labwright-simulators`).
//!
//! It has a launcher (Home with app icons, an "All apps" list, recent apps), Settings (model,
//! manufacturer, Android version, build, serial), a **demo app** (`com.labwright.demo`: a
//! counter with Increment / Reset / Say hello buttons, a text field, the last key received) and
//! apps installed from APKs ([`apk`]). It reacts to Android input: key events ([`Keycode`]: HOME,
//! BACK, D-pad focus and ENTER, MENU, APP_SWITCH, POWER, digits and letters typed into a focused
//! field, volume and media keys), taps, swipes (up from Home opens the app list, up from the
//! bottom edge goes Home), long presses and `input text`. Apps can be started, force-stopped,
//! cleared, installed and uninstalled.
//!
//! Everything that happens is written to a logcat buffer ([`logcat`], `threadtime` format). The
//! screen is a tree of views ([`ui`]) that is drawn, dumped as `uiautomator dump` XML and
//! hit-tested from the same nodes, so the hierarchy always matches the pixels.
//!
//! **Determinism:** the phone is a pure function of its config and the calls made on it; time
//! is only read for log timestamps (from any [`Clock`]).

pub mod apk;
pub mod keys;
pub mod logcat;
pub mod ui;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::validate::ValidationError;

pub use self::apk::{ApkInfo, InstallFailure};
pub use self::keys::Keycode;
use self::logcat::{LogBuffer, LogEntry};
pub use self::ui::{Action, Bounds, HEIGHT, Look, Node, WIDTH, Window};

/// The launcher's package (Home, All apps, Recents).
pub const LAUNCHER: &str = "com.android.launcher3";
/// The Settings app.
pub const SETTINGS: &str = "com.android.settings";
/// The demo app.
pub const DEMO: &str = "com.labwright.demo";

const SYSTEM_UI: &str = "com.android.systemui";
const SYSTEM_SERVER_PID: u32 = 612;
const DEMO_ACCENT: [u8; 3] = [98, 0, 238];

/// What the phone is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneConfig {
    /// `ro.serialno`, what `adb devices` lists.
    pub serial: String,
    /// `ro.product.model`.
    pub model: String,
    /// `ro.product.manufacturer`.
    pub manufacturer: String,
    /// `ro.build.version.release`.
    pub android_version: String,
    /// `ro.build.version.sdk`.
    pub sdk: u32,
}

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            serial: "LWSIM0001".into(),
            model: "Labwright Sim Phone".into(),
            manufacturer: "Labwright".into(),
            android_version: "14".into(),
            sdk: 34,
        }
    }
}

impl PhoneConfig {
    /// Every field printable and short; the serial in adb's alphabet (no spaces or tabs).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let ok_serial = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
        };
        if !ok_serial(&self.serial) {
            return Err(ValidationError::new(
                "serial",
                "1 to 64 characters of letters, digits, '.', '_', '-' or ':'",
            ));
        }
        for (field, v) in [
            ("model", &self.model),
            ("manufacturer", &self.manufacturer),
            ("android_version", &self.android_version),
        ] {
            if v.trim().is_empty()
                || v.len() > 64
                || v.chars().any(|c| c.is_control() || !c.is_ascii())
            {
                return Err(ValidationError::new(
                    field,
                    "1 to 64 printable ASCII characters",
                ));
            }
        }
        if !(1..=99).contains(&self.sdk) {
            return Err(ValidationError::new("sdk", "between 1 and 99"));
        }
        Ok(())
    }
}

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub label: String,
    /// Part of the system image: cannot be uninstalled.
    pub system: bool,
    /// The launcher activity's class (`com.x.MainActivity`), if the app has one.
    pub activity: Option<String>,
}

/// A screen on the activity stack above Home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    AppList,
    Recents,
    Settings,
    Demo,
    App(String),
}

impl Activity {
    pub fn package(&self) -> &str {
        match self {
            Activity::AppList | Activity::Recents => LAUNCHER,
            Activity::Settings => SETTINGS,
            Activity::Demo => DEMO,
            Activity::App(p) => p,
        }
    }

    /// `package/.Class`, as `am` and logcat write components.
    pub fn component(&self) -> String {
        match self {
            Activity::AppList => format!("{LAUNCHER}/.AllAppsActivity"),
            Activity::Recents => format!("{LAUNCHER}/.RecentsActivity"),
            Activity::Settings => format!("{SETTINGS}/.Settings"),
            Activity::Demo => format!("{DEMO}/.MainActivity"),
            Activity::App(p) => format!("{p}/.MainActivity"),
        }
    }
}

/// The demo app's state (lives in its process: gone when it is stopped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoState {
    pub count: u32,
    pub message: String,
    pub text: String,
    pub input_focused: bool,
    pub last_key: Option<String>,
}

/// Why `am start` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The component or package is unknown (`Error type 3`).
    NoActivity(String),
    /// No activity handles the intent.
    Unresolved,
}

/// A snapshot for tests and status lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneStatus {
    pub screen_on: bool,
    /// The foreground activity's component (`com.android.launcher3/.Launcher` on Home).
    pub focused_component: String,
    pub demo: DemoState,
    pub volume: u8,
}

/// The simulated phone.
#[derive(Debug)]
pub struct Phone {
    config: PhoneConfig,
    clock: Arc<dyn Clock>,
    packages: Vec<Package>,
    stack: Vec<Activity>,
    running: BTreeMap<String, u32>,
    next_pid: u32,
    demo: DemoState,
    /// D-pad focus: index among the focusable nodes of the foreground window.
    focus: Option<usize>,
    screen_on: bool,
    volume: u8,
    log: LogBuffer,
    version: u64,
}

impl Phone {
    pub fn new(config: PhoneConfig, clock: Arc<dyn Clock>) -> Result<Phone, ValidationError> {
        config.validate()?;
        let system = |name: &str, label: &str, activity: Option<&str>| Package {
            name: name.into(),
            label: label.into(),
            system: true,
            activity: activity.map(str::to_string),
        };
        let packages = vec![
            system("android", "Android System", None),
            system(LAUNCHER, "Launcher", Some("com.android.launcher3.Launcher")),
            system(SETTINGS, "Settings", Some("com.android.settings.Settings")),
            system(SYSTEM_UI, "System UI", None),
            system("com.android.shell", "Shell", None),
            Package {
                name: DEMO.into(),
                label: "Labwright Demo".into(),
                system: false,
                activity: Some("com.labwright.demo.MainActivity".into()),
            },
        ];
        let mut phone = Phone {
            config,
            clock,
            packages,
            stack: Vec::new(),
            running: BTreeMap::new(),
            next_pid: 2100,
            demo: DemoState::default(),
            focus: None,
            screen_on: true,
            volume: 8,
            log: LogBuffer::default(),
            version: 1,
        };
        phone.log_system('I', "SystemServer", "Entered the Android system server!");
        phone.spawn(LAUNCHER);
        phone.log_system(
            'I',
            "ActivityTaskManager",
            &format!("Displayed {LAUNCHER}/.Launcher: +412ms"),
        );
        Ok(phone)
    }

    pub fn config(&self) -> &PhoneConfig {
        &self.config
    }

    /// Changes whenever the screen may look different (the frame sequence number).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The system properties `getprop` lists, sorted by name.
    pub fn properties(&self) -> Vec<(String, String)> {
        let c = &self.config;
        let device = "lwsim";
        let fingerprint = format!(
            "{}/{device}/{device}:{}/LW1A.241207.001/1:userdebug/test-keys",
            c.manufacturer.to_ascii_lowercase().replace(' ', "_"),
            c.android_version
        );
        let mut p: Vec<(String, String)> = [
            ("ro.product.model", c.model.clone()),
            ("ro.product.manufacturer", c.manufacturer.clone()),
            ("ro.product.brand", c.manufacturer.clone()),
            ("ro.product.name", device.into()),
            ("ro.product.device", device.into()),
            ("ro.product.cpu.abi", "x86_64".into()),
            ("ro.build.version.release", c.android_version.clone()),
            ("ro.build.version.sdk", c.sdk.to_string()),
            ("ro.build.id", "LW1A.241207.001".into()),
            ("ro.build.type", "userdebug".into()),
            ("ro.build.fingerprint", fingerprint),
            ("ro.serialno", c.serial.clone()),
            ("ro.boot.serialno", c.serial.clone()),
            ("ro.debuggable", "1".into()),
            ("ro.secure", "1".into()),
            ("ro.sf.lcd_density", "240".into()),
            ("sys.boot_completed", "1".into()),
            ("persist.sys.timezone", "UTC".into()),
            ("service.adb.root", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        p.sort();
        p
    }

    /// One property, if set.
    pub fn property(&self, name: &str) -> Option<String> {
        self.properties()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }

    pub fn status(&self) -> PhoneStatus {
        PhoneStatus {
            screen_on: self.screen_on,
            focused_component: self
                .stack
                .last()
                .map(Activity::component)
                .unwrap_or_else(|| format!("{LAUNCHER}/.Launcher")),
            demo: self.demo.clone(),
            volume: self.volume,
        }
    }

    /// The package in the foreground.
    pub fn foreground(&self) -> &str {
        self.stack.last().map(Activity::package).unwrap_or(LAUNCHER)
    }

    // ---- logging ----

    fn log(&mut self, pid: u32, level: char, tag: &str, message: &str) {
        self.log.push(LogEntry {
            time_us: self.clock.now_us(),
            pid,
            tid: pid,
            level,
            tag: tag.into(),
            message: message.into(),
        });
    }

    fn log_system(&mut self, level: char, tag: &str, message: &str) {
        self.log(SYSTEM_SERVER_PID, level, tag, message);
    }

    fn log_app(&mut self, package: &str, level: char, tag: &str, message: &str) {
        let pid = self
            .running
            .get(package)
            .copied()
            .unwrap_or(SYSTEM_SERVER_PID);
        self.log(pid, level, tag, message);
    }

    /// The number the next log line will get.
    pub fn log_end(&self) -> u64 {
        self.log.end()
    }

    /// Log lines numbered `from` and later, in `threadtime` format.
    pub fn log_since(&self, from: u64) -> Vec<String> {
        self.log.since(from).map(LogEntry::threadtime).collect()
    }

    /// `logcat -c`.
    pub fn log_clear(&mut self) {
        self.log.clear();
    }

    // ---- processes and activities ----

    fn changed(&mut self) {
        self.version += 1;
    }

    fn spawn(&mut self, package: &str) -> u32 {
        if let Some(pid) = self.running.get(package) {
            return *pid;
        }
        let pid = self.next_pid;
        self.next_pid += 1;
        self.running.insert(package.into(), pid);
        let uid = 10_000
            + self
                .packages
                .iter()
                .position(|p| p.name == package)
                .unwrap_or(0);
        self.log_system(
            'I',
            "ActivityManager",
            &format!(
                "Start proc {pid}:{package}/u0a{} for top-activity",
                uid - 10_000
            ),
        );
        pid
    }

    fn activity_for(&self, package: &str) -> Option<Activity> {
        let p = self.package(package)?;
        p.activity.as_ref()?;
        Some(match package {
            LAUNCHER => return None,
            SETTINGS => Activity::Settings,
            DEMO => Activity::Demo,
            other => Activity::App(other.to_string()),
        })
    }

    fn push(&mut self, activity: Activity) {
        let package = activity.package().to_string();
        self.spawn(&package);
        self.stack.retain(|a| *a != activity);
        let component = activity.component();
        self.log_system(
            'I',
            "ActivityTaskManager",
            &format!("START u0 {{act=android.intent.action.MAIN cat=[android.intent.category.LAUNCHER] flg=0x10200000 cmp={component}}} from uid 2000"),
        );
        self.stack.push(activity);
        self.focus = None;
        self.log_system(
            'I',
            "ActivityTaskManager",
            &format!("Displayed {component}: +180ms"),
        );
        if package == DEMO {
            self.log_app(DEMO, 'I', "LabwrightDemo", "onResume");
        }
        self.changed();
    }

    fn go_home(&mut self) {
        self.stack.clear();
        self.focus = None;
        self.demo.input_focused = false;
        self.changed();
    }

    /// Starts a package's launcher activity (`monkey -p`, a launcher tap).
    pub fn launch(&mut self, package: &str) -> Result<String, StartError> {
        if package == LAUNCHER && self.package(LAUNCHER).is_some() {
            self.go_home();
            return Ok(format!("{LAUNCHER}/.Launcher"));
        }
        let activity = self
            .activity_for(package)
            .ok_or_else(|| StartError::NoActivity(package.to_string()))?;
        let component = activity.component();
        self.push(activity);
        Ok(component)
    }

    /// `am start -n package/.Class` (or `package/package.Class`).
    pub fn start_component(&mut self, component: &str) -> Result<String, StartError> {
        let (package, class) = component
            .split_once('/')
            .ok_or_else(|| StartError::NoActivity(component.to_string()))?;
        let class = match class.strip_prefix('.') {
            Some(short) => format!("{package}.{short}"),
            None => class.to_string(),
        };
        let known = match package {
            LAUNCHER => [
                "com.android.launcher3.Launcher",
                "com.android.launcher3.AllAppsActivity",
            ]
            .contains(&class.as_str()),
            _ => self
                .package(package)
                .and_then(|p| p.activity.as_deref())
                .is_some_and(|a| a == class),
        };
        if !known {
            return Err(StartError::NoActivity(format!("{package}/{class}")));
        }
        if class == "com.android.launcher3.AllAppsActivity" {
            self.push(Activity::AppList);
            return Ok(Activity::AppList.component());
        }
        self.launch(package)
    }

    /// `am start -a ACTION [-c CATEGORY]`: MAIN+HOME goes Home, SETTINGS opens Settings.
    pub fn start_action(
        &mut self,
        action: &str,
        category: Option<&str>,
    ) -> Result<String, StartError> {
        match (action, category) {
            ("android.intent.action.MAIN", Some("android.intent.category.HOME")) => {
                self.launch(LAUNCHER)
            }
            ("android.settings.SETTINGS" | "android.settings.DEVICE_INFO_SETTINGS", _) => {
                self.launch(SETTINGS)
            }
            _ => Err(StartError::Unresolved),
        }
    }

    /// `am force-stop`: the app's activities close and its process dies (the demo's counter and
    /// text are lost). Unknown packages are ignored, as on Android.
    pub fn force_stop(&mut self, package: &str) {
        if self.package(package).is_none() {
            return;
        }
        self.log_system(
            'I',
            "ActivityManager",
            &format!("Force stopping {package} appid=10000 user=0: from pid 2000"),
        );
        let before = self.stack.len();
        self.stack.retain(|a| a.package() != package);
        if self.stack.len() != before {
            self.focus = None;
            self.changed();
        }
        if package != LAUNCHER {
            if let Some(pid) = self.running.remove(package) {
                self.log_system(
                    'I',
                    "ActivityManager",
                    &format!(
                        "Killing {pid}:{package}/u0a0 (adj 0): stop {package} due to from pid 2000"
                    ),
                );
            }
            if package == DEMO {
                self.demo = DemoState::default();
                self.changed();
            }
        }
    }

    /// `pm clear`: stops the app and deletes its data; false for an unknown package.
    pub fn clear_data(&mut self, package: &str) -> bool {
        if self.package(package).is_none() {
            return false;
        }
        self.force_stop(package);
        self.log_system(
            'I',
            "ActivityManager",
            &format!("Clearing data for {package}"),
        );
        true
    }

    /// `pm install`: parses the APK and installs (or updates) its package.
    pub fn install(&mut self, apk: &[u8]) -> Result<ApkInfo, InstallFailure> {
        let info = match apk::parse_apk(apk) {
            Ok(i) => i,
            Err(e) => {
                self.log_system('W', "PackageManager", &format!("Install failed: {e}"));
                return Err(e);
            }
        };
        if let Some(existing) = self.package(&info.package) {
            if existing.system {
                return Err(InstallFailure {
                    code: "INSTALL_FAILED_UPDATE_INCOMPATIBLE",
                    message: format!(
                        "Existing package {} signatures do not match newer version; ignoring!",
                        info.package
                    ),
                });
            }
            self.force_stop(&info.package);
            self.packages.retain(|p| p.name != info.package);
        }
        self.packages.push(Package {
            name: info.package.clone(),
            label: info.label.clone(),
            system: false,
            activity: Some(format!("{}.MainActivity", info.package)),
        });
        self.log_system(
            'I',
            "PackageManager",
            &format!(
                "Package {} installed (label {:?})",
                info.package, info.label
            ),
        );
        self.changed();
        Ok(info)
    }

    /// `pm uninstall`: false for an unknown or system package.
    pub fn uninstall(&mut self, package: &str) -> bool {
        match self.package(package) {
            Some(p) if !p.system => {}
            _ => return false,
        }
        self.force_stop(package);
        self.packages.retain(|p| p.name != package);
        self.log_system('I', "PackageManager", &format!("Package {package} removed"));
        self.changed();
        true
    }

    // ---- input ----

    /// A key event (down and up).
    pub fn key(&mut self, key: Keycode) {
        let fg = self.foreground().to_string();
        self.log_system(
            'I',
            "InputDispatcher",
            &format!("Delivering {} ({}) to {fg}", key.name(), key.0),
        );
        if !self.screen_on {
            if matches!(key, Keycode::POWER | Keycode::WAKEUP) {
                self.screen_on = true;
                self.log_system(
                    'I',
                    "PowerManagerService",
                    "Waking up from sleep (uid 1000 reason=WAKE_REASON_POWER_BUTTON)",
                );
                self.changed();
            }
            return;
        }
        if fg == DEMO {
            self.demo.last_key = Some(key.name());
            self.log_app(
                DEMO,
                'I',
                "LabwrightDemo",
                &format!("onKeyUp {}", key.name()),
            );
            self.changed();
        }
        match key {
            Keycode::POWER | Keycode::SLEEP => {
                self.screen_on = false;
                self.log_system(
                    'I',
                    "PowerManagerService",
                    "Going to sleep due to power_button (uid 1000)...",
                );
                self.changed();
            }
            Keycode::WAKEUP => {}
            Keycode::HOME => self.go_home(),
            Keycode::BACK => self.back(),
            Keycode::APP_SWITCH => {
                if self.stack.last() != Some(&Activity::Recents) {
                    self.push(Activity::Recents);
                }
            }
            Keycode::SETTINGS => {
                let _ = self.launch(SETTINGS);
            }
            Keycode::MENU if self.stack.is_empty() => self.push(Activity::AppList),
            Keycode::DPAD_UP | Keycode::DPAD_LEFT => self.move_focus(-1),
            Keycode::DPAD_DOWN | Keycode::DPAD_RIGHT => self.move_focus(1),
            Keycode::DPAD_CENTER | Keycode::ENTER => self.activate_focus(),
            Keycode::VOLUME_UP => self.set_volume(self.volume.saturating_add(1).min(15)),
            Keycode::VOLUME_DOWN => self.set_volume(self.volume.saturating_sub(1)),
            Keycode::VOLUME_MUTE => self.set_volume(0),
            Keycode::DEL if self.editing() => {
                self.demo.text.pop();
                self.text_changed();
            }
            k => {
                if let Some(c) = k.typed_char().filter(|_| self.editing()) {
                    self.demo.text.push(c);
                    self.text_changed();
                }
            }
        }
    }

    fn set_volume(&mut self, v: u8) {
        self.volume = v;
        self.log_system(
            'I',
            "AudioService",
            &format!("setStreamVolume(stream=MUSIC, index={v})"),
        );
        self.changed();
    }

    fn editing(&self) -> bool {
        self.screen_on && self.foreground() == DEMO && self.demo.input_focused
    }

    fn text_changed(&mut self) {
        let t = self.demo.text.clone();
        self.log_app(DEMO, 'I', "LabwrightDemo", &format!("text changed: {t:?}"));
        self.changed();
    }

    fn back(&mut self) {
        if self.editing() {
            // The first BACK hides the keyboard.
            self.demo.input_focused = false;
            self.changed();
            return;
        }
        if let Some(a) = self.stack.pop() {
            self.log_system(
                'I',
                "ActivityTaskManager",
                &format!("Finishing {}", a.component()),
            );
            self.focus = None;
            self.changed();
        }
    }

    fn focusable_count(&self) -> usize {
        self.windows()
            .first()
            .map(|w| w.nodes.iter().filter(|n| n.focusable).count())
            .unwrap_or(0)
    }

    fn move_focus(&mut self, delta: i32) {
        let n = self.focusable_count();
        if n == 0 {
            return;
        }
        self.focus = Some(match self.focus {
            None => 0,
            Some(i) => (i as i32 + delta).clamp(0, n as i32 - 1) as usize,
        });
        self.changed();
    }

    fn activate_focus(&mut self) {
        let Some(i) = self.focus else { return };
        let action = self.windows().first().and_then(|w| {
            w.nodes
                .iter()
                .filter(|n| n.focusable)
                .nth(i)
                .map(|n| n.action.clone())
        });
        if let Some(a) = action {
            self.perform(a);
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::None => {}
            Action::Launch(p) => {
                let _ = self.launch(&p);
            }
            Action::AppList => self.push(Activity::AppList),
            Action::Back => self.back(),
            Action::Home => self.go_home(),
            Action::Recents => {
                if self.stack.last() != Some(&Activity::Recents) {
                    self.push(Activity::Recents);
                }
            }
            Action::Increment(by) => {
                self.demo.count = self.demo.count.saturating_add(by);
                let c = self.demo.count;
                self.log_app(
                    DEMO,
                    'I',
                    "LabwrightDemo",
                    &format!("button increment clicked, count={c}"),
                );
                self.changed();
            }
            Action::Reset => {
                self.demo.count = 0;
                self.log_app(DEMO, 'I', "LabwrightDemo", "button reset clicked, count=0");
                self.changed();
            }
            Action::Hello => {
                self.demo.message = "Hello, Labwright!".into();
                self.log_app(DEMO, 'I', "LabwrightDemo", "button hello clicked");
                self.changed();
            }
            Action::FocusInput => {
                self.demo.input_focused = true;
                self.log_app(DEMO, 'I', "LabwrightDemo", "text field focused");
                self.changed();
            }
        }
    }

    /// A tap at `(x, y)`: whatever clickable view is there is clicked.
    pub fn tap(&mut self, x: i32, y: i32) {
        self.log_system(
            'I',
            "InputDispatcher",
            &format!("Delivering tap ({x}, {y}) to {}", self.foreground()),
        );
        if !self.screen_on {
            return;
        }
        let action = ui::hit(&self.windows(), x, y, false).map(|n| n.action.clone());
        if let Some(a) = action {
            self.focus = None;
            self.perform(a);
        }
    }

    /// A long press at `(x, y)`: a long-clickable view does its long action.
    pub fn long_press(&mut self, x: i32, y: i32) {
        self.log_system(
            'I',
            "InputDispatcher",
            &format!("Delivering long press ({x}, {y}) to {}", self.foreground()),
        );
        if !self.screen_on {
            return;
        }
        let action = ui::hit(&self.windows(), x, y, true).map(|n| n.long_action.clone());
        if let Some(a) = action {
            self.perform(a);
        }
    }

    /// A swipe from `(x1, y1)` to `(x2, y2)` over `duration_ms`: up from the bottom edge goes
    /// Home, up on Home opens All apps, down on a launcher list closes it; a swipe that does not
    /// move is a tap (or a long press when it lasts 500 ms or more).
    pub fn swipe(&mut self, x1: i32, y1: i32, x2: i32, y2: i32, duration_ms: u64) {
        let (dx, dy) = (x2 - x1, y2 - y1);
        if dx.abs() < 16 && dy.abs() < 16 {
            if duration_ms >= 500 {
                self.long_press(x1, y1);
            } else {
                self.tap(x1, y1);
            }
            return;
        }
        self.log_system(
            'I',
            "InputDispatcher",
            &format!(
                "Delivering swipe ({x1}, {y1}) -> ({x2}, {y2}) to {}",
                self.foreground()
            ),
        );
        if !self.screen_on {
            return;
        }
        if dy < -150 && y1 >= ui::NAV_BAR_TOP - 24 {
            self.go_home();
        } else if dy < -150 && self.stack.is_empty() {
            self.push(Activity::AppList);
        } else if dy > 150
            && matches!(
                self.stack.last(),
                Some(Activity::AppList | Activity::Recents)
            )
        {
            self.back();
        }
    }

    /// `input text`: typed into the focused text field, if there is one.
    pub fn text(&mut self, text: &str) {
        self.log_system(
            'I',
            "InputDispatcher",
            &format!(
                "Delivering text ({} chars) to {}",
                text.chars().count(),
                self.foreground()
            ),
        );
        if self.editing() {
            self.demo.text.push_str(text);
            self.text_changed();
        }
    }

    // ---- the screen ----

    /// The screen as views: the foreground window, then the navigation bar. Empty when the
    /// screen is off.
    pub fn windows(&self) -> Vec<Window> {
        if !self.screen_on {
            return Vec::new();
        }
        let content = Bounds {
            x1: 0,
            y1: ui::STATUS_BAR,
            x2: WIDTH as i32,
            y2: ui::NAV_BAR_TOP,
        };
        let mut app = match self.stack.last() {
            None => self.home(content),
            Some(Activity::AppList) => self.app_list(content, "All apps", false),
            Some(Activity::Recents) => self.app_list(content, "Recent apps", true),
            Some(Activity::Settings) => self.settings(content),
            Some(Activity::Demo) => self.demo_screen(content),
            Some(Activity::App(p)) => self.plain_app(content, p),
        };
        if let Some(n) = self
            .focus
            .and_then(|i| app.nodes.iter_mut().filter(|n| n.focusable).nth(i))
        {
            n.focused = true;
        }
        let w = WIDTH as i32 / 3;
        let nav = |i: i32, glyph: &'static str, desc: &str, id: &str, action: Action| {
            Node::new(
                "android.widget.ImageView",
                Bounds::new(i * w, ui::NAV_BAR_TOP, w, HEIGHT as i32 - ui::NAV_BAR_TOP),
                Look::Nav(glyph),
            )
            .id(format!("{SYSTEM_UI}:id/{id}"))
            .desc(desc)
            .on_click(action)
        };
        let bar = Window {
            package: SYSTEM_UI.into(),
            bounds: Bounds {
                x1: 0,
                y1: ui::NAV_BAR_TOP,
                x2: WIDTH as i32,
                y2: HEIGHT as i32,
            },
            background: [0, 0, 0],
            nodes: vec![
                nav(0, "<", "Back", "back", Action::Back),
                nav(1, "O", "Home", "home", Action::Home),
                nav(2, "[]", "Overview", "recent_apps", Action::Recents),
            ],
        };
        vec![app, bar]
    }

    fn icon_color(package: &str) -> [u8; 3] {
        match package {
            SETTINGS => [96, 125, 139],
            DEMO => DEMO_ACCENT,
            other => {
                let h = other.bytes().fold(2_166_136_261u32, |h, b| {
                    (h ^ u32::from(b)).wrapping_mul(16_777_619)
                });
                [
                    (h >> 16) as u8 / 2 + 40,
                    (h >> 8) as u8 / 2 + 40,
                    h as u8 / 2 + 40,
                ]
            }
        }
    }

    fn launchable(&self) -> Vec<&Package> {
        self.packages
            .iter()
            .filter(|p| p.activity.is_some() && p.name != LAUNCHER)
            .collect()
    }

    fn home(&self, content: Bounds) -> Window {
        let mut nodes = Vec::new();
        for (i, p) in self.launchable().into_iter().take(16).enumerate() {
            let (col, row) = ((i % 4) as i32, (i / 4) as i32);
            nodes.push(
                Node::new(
                    "android.widget.TextView",
                    Bounds::new(col * 135, 100 + row * 150, 135, 136),
                    Look::Icon(Self::icon_color(&p.name)),
                )
                .id(format!("{LAUNCHER}:id/icon"))
                .text(p.label.clone())
                .desc(p.label.clone())
                .on_click(Action::Launch(p.name.clone())),
            );
        }
        nodes.push(
            Node::new(
                "android.widget.Button",
                Bounds::new(150, 800, 240, 64),
                Look::Button([66, 66, 66]),
            )
            .id(format!("{LAUNCHER}:id/all_apps_button"))
            .text("All apps")
            .desc("All apps")
            .on_click(Action::AppList),
        );
        Window {
            package: LAUNCHER.into(),
            bounds: content,
            background: [25, 60, 110],
            nodes,
        }
    }

    fn app_list(&self, content: Bounds, title: &str, recents: bool) -> Window {
        let mut nodes = vec![
            Node::new(
                "android.widget.TextView",
                Bounds::new(24, 48, 492, 48),
                Look::Label {
                    scale: 4,
                    color: [33, 33, 33],
                    center: false,
                },
            )
            .id(format!("{LAUNCHER}:id/title"))
            .text(title),
        ];
        let apps: Vec<&Package> = if recents {
            let mut running: Vec<&Package> = self
                .stack
                .iter()
                .rev()
                .filter(|a| !matches!(a, Activity::AppList | Activity::Recents))
                .filter_map(|a| self.package(a.package()))
                .collect();
            running.dedup_by(|a, b| a.name == b.name);
            running
        } else {
            self.launchable()
        };
        if apps.is_empty() {
            nodes.push(
                Node::new(
                    "android.widget.TextView",
                    Bounds::new(0, 400, WIDTH as i32, 48),
                    Look::Label {
                        scale: 3,
                        color: [117, 117, 117],
                        center: true,
                    },
                )
                .text("No recent items"),
            );
        }
        for (i, p) in apps.into_iter().take(11).enumerate() {
            nodes.push(
                Node::new(
                    "android.widget.TextView",
                    Bounds::new(0, 110 + i as i32 * 72, WIDTH as i32, 72),
                    Look::Row(Self::icon_color(&p.name)),
                )
                .id(format!("{LAUNCHER}:id/app_row"))
                .text(p.label.clone())
                .desc(p.name.clone())
                .on_click(Action::Launch(p.name.clone())),
            );
        }
        Window {
            package: LAUNCHER.into(),
            bounds: content,
            background: [245, 245, 245],
            nodes,
        }
    }

    fn app_bar(package: &str, title: &str, color: [u8; 3]) -> Node {
        Node::new(
            "android.widget.TextView",
            Bounds::new(0, ui::STATUS_BAR, WIDTH as i32, 84),
            Look::Bar(color),
        )
        .id(format!("{package}:id/toolbar_title"))
        .text(title)
    }

    fn settings(&self, content: Bounds) -> Window {
        let c = &self.config;
        let rows = [
            ("Device name", c.model.clone()),
            ("Model", c.model.clone()),
            ("Manufacturer", c.manufacturer.clone()),
            ("Android version", c.android_version.clone()),
            ("SDK", c.sdk.to_string()),
            ("Build number", "LW1A.241207.001".to_string()),
            ("Serial number", c.serial.clone()),
            ("Screen", format!("{WIDTH} x {HEIGHT}")),
        ];
        let mut nodes = vec![Self::app_bar(SETTINGS, "Settings", [0, 105, 92])];
        for (i, (title, summary)) in rows.into_iter().enumerate() {
            let y = 130 + i as i32 * 84;
            let label = |scale: u32, color: [u8; 3], y: i32, h: i32, text: String, id: &str| {
                Node::new(
                    "android.widget.TextView",
                    Bounds::new(24, y, 492, h),
                    Look::Label {
                        scale,
                        color,
                        center: false,
                    },
                )
                .id(format!("android:id/{id}"))
                .text(text)
            };
            nodes.push(label(3, [33, 33, 33], y, 36, title.to_string(), "title"));
            nodes.push(label(2, [117, 117, 117], y + 38, 28, summary, "summary"));
        }
        Window {
            package: SETTINGS.into(),
            bounds: content,
            background: [250, 250, 250],
            nodes,
        }
    }

    fn demo_screen(&self, content: Bounds) -> Window {
        let id = |s: &str| format!("{DEMO}:id/{s}");
        let d = &self.demo;
        let label = |scale: u32, y: i32, h: i32, text: String| {
            Node::new(
                "android.widget.TextView",
                Bounds::new(20, y, 500, h),
                Look::Label {
                    scale,
                    color: [33, 33, 33],
                    center: true,
                },
            )
            .text(text)
        };
        let button = |y: i32, text: &str, name: &str, action: Action| {
            Node::new(
                "android.widget.Button",
                Bounds::new(70, y, 400, 72),
                Look::Button(DEMO_ACCENT),
            )
            .id(id(name))
            .text(text)
            .on_click(action)
        };
        let mut input = Node::new(
            "android.widget.EditText",
            Bounds::new(40, 620, 460, 72),
            Look::Edit { hint: "Type here" },
        )
        .id(id("input"))
        .text(d.text.clone())
        .on_click(Action::FocusInput);
        input.focused = d.input_focused;
        let nodes = vec![
            Self::app_bar(DEMO, "Labwright Demo", DEMO_ACCENT),
            label(5, 150, 70, format!("Count: {}", d.count)).id(id("counter")),
            button(250, "Increment", "increment", Action::Increment(1))
                .on_long_click(Action::Increment(10)),
            button(340, "Reset", "reset", Action::Reset),
            button(430, "Say hello", "hello", Action::Hello),
            label(3, 530, 60, d.message.clone()).id(id("message")),
            input,
            label(
                2,
                720,
                40,
                format!("Last key: {}", d.last_key.as_deref().unwrap_or("none")),
            )
            .id(id("last_key")),
            label(2, 770, 40, format!("Volume: {}", self.volume)).id(id("volume")),
        ];
        Window {
            package: DEMO.into(),
            bounds: content,
            background: [255, 255, 255],
            nodes,
        }
    }

    fn plain_app(&self, content: Bounds, package: &str) -> Window {
        let label = self
            .package(package)
            .map(|p| p.label.clone())
            .unwrap_or_else(|| package.to_string());
        let nodes = vec![
            Self::app_bar(package, &label, Self::icon_color(package)),
            Node::new(
                "android.widget.TextView",
                Bounds::new(20, 400, 500, 60),
                Look::Label {
                    scale: 3,
                    color: [33, 33, 33],
                    center: true,
                },
            )
            .text(format!("Hello from {label}")),
        ];
        Window {
            package: package.into(),
            bounds: content,
            background: [255, 255, 255],
            nodes,
        }
    }

    /// The screen as RGB24 ([`WIDTH`] x [`HEIGHT`]); black when the screen is off.
    pub fn render_rgb(&self) -> Vec<u8> {
        let mut buf = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
        if self.screen_on {
            ui::render(&self.windows(), &self.config.model, &mut buf);
        }
        buf
    }

    /// The screen as a PNG (what `screencap -p` writes).
    pub fn screencap_png(&self) -> Vec<u8> {
        encode_png(&self.render_rgb())
    }

    /// The screen in `screencap`'s raw format (see [`encode_raw`]).
    pub fn screencap_raw(&self) -> Vec<u8> {
        encode_raw(&self.render_rgb())
    }

    /// `uiautomator dump` of the current screen; None when the screen is off (Android prints
    /// "ERROR: null root node returned by UiTestAutomationBridge.").
    pub fn ui_dump(&self) -> Option<String> {
        let w = self.windows();
        (!w.is_empty()).then(|| ui::dump(&w))
    }
}

/// A [`WIDTH`] x [`HEIGHT`] RGB24 screen as PNG (fast compression: `screencap -p` is on the
/// critical path of every screenshot a test takes). Callers holding a lock render under it and
/// encode outside.
pub fn encode_png(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Sub,
    );
    // An in-memory buffer of the right size does not fail to encode; a wrong size gives an
    // empty result rather than a panic.
    if image::ImageEncoder::write_image(encoder, rgb, WIDTH, HEIGHT, image::ExtendedColorType::Rgb8)
        .is_err()
    {
        return Vec::new();
    }
    out
}

/// `screencap`'s raw format: width, height, pixel format 1 (RGBA_8888) and colour space 0
/// (little-endian u32 each), then RGBA pixels.
pub fn encode_raw(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + rgb.len() / 3 * 4);
    for v in [WIDTH, HEIGHT, 1, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for px in rgb.chunks_exact(3) {
        out.extend_from_slice(&[px[0], px[1], px[2], 255]);
    }
    out
}

#[cfg(test)]
mod tests;
