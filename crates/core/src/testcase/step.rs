//! The steps of a test case and their YAML/JSON form. A step is a mapping with exactly one action
//! key (`press`, `verify_image`, ...) plus the optional step options `timeout_ms` and
//! `continue_on_failure`:
//!
//! ```yaml
//! - press: ok
//! - verify_image: {reference: settings-title, region: {x: 40, y: 30, width: 320, height: 60}}
//!   timeout_ms: 3000
//!   continue_on_failure: true
//! ```

use std::fmt;

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, MapAccess, Visitor},
    ser::SerializeMap,
};

use crate::{
    frame::Rect,
    nav::{
        KeyName,
        shorthand::{Scalar, Shorthand, deserialize_shorthand},
    },
    uiautomator::Selector,
};

/// One step: an action and its options.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub action: Action,
    /// How long the step may wait for its condition. Applies to `goto` (the whole navigation),
    /// `verify_image`, `verify_black`, `verify_not_black` and `measure_zap`; the test's
    /// `defaults` apply when absent.
    pub timeout_ms: Option<u64>,
    /// When the step fails or errors, go on with the next step instead of stopping the run (the
    /// run still fails).
    pub continue_on_failure: bool,
}

impl Step {
    pub fn new(action: Action) -> Self {
        Step {
            action,
            timeout_ms: None,
            continue_on_failure: false,
        }
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Navigate to a screen of the navigation tree: `goto: settings`.
    Goto(GotoStep),
    /// Press a key: `press: ok` or `press: {key: down, repeat: 3, interval_ms: 200, hold_ms: 0}`.
    Press(PressStep),
    /// Wait: `wait: 500` (milliseconds) or `wait: {ms: 500}`.
    Wait(WaitStep),
    /// Wait for a reference image to appear, disappear, or appear and then disappear.
    VerifyImage(VerifyImageStep),
    /// Wait for the region (default: the whole frame) to be black.
    VerifyBlack(RegionStep),
    /// Wait for the region (default: the whole frame) to show something.
    VerifyNotBlack(RegionStep),
    /// Watch the region for `duration_ms`; passes when the picture moves.
    VerifyMotion(ObserveStep),
    /// Watch the region for `duration_ms`; fails when the picture stays frozen.
    VerifyNotFrozen(ObserveStep),
    /// Listen for `duration_ms`: sound present (optionally at a frequency) or silence.
    VerifyAudio(VerifyAudioStep),
    /// Press a key and measure the zap time (key press to first picture after the black).
    MeasureZap(MeasureZapStep),
    /// Take a named screenshot: `screenshot: after-zap`.
    Screenshot(ScreenshotStep),
    /// Run steps `count` times.
    Repeat(RepeatStep),
    /// Write to the device's console: `serial_send: root` (a line: the text and a newline) or
    /// `serial_send: {text: "\x03", newline: false}`.
    SerialSend(SerialSendStep),
    /// Wait for console output matching a regular expression: `serial_expect: "login:"` or
    /// `serial_expect: {pattern: 'Linux version (?P<version>[0-9.]+)'}`. Named groups that are
    /// numbers become measurements.
    SerialExpect(SerialExpectStep),
    /// Tap the screen at a point or on an element: `tap: {x: 540, y: 1200}` or
    /// `tap: {text: "OK"}`.
    Tap(TapStep),
    /// Swipe: `swipe: {from: {x: 500, y: 1500}, to: {x: 500, y: 500}, duration_ms: 300}`.
    Swipe(SwipeStep),
    /// Type text into the focused field: `input_text: hello`.
    InputText(InputTextStep),
    /// Tap the centre of an element found in the UI hierarchy: `tap_element: OK` (by text) or
    /// `tap_element: {resource_id: "com.x:id/ok"}`; waits up to `timeout_ms` for it.
    TapElement(ElementStep),
    /// Wait for an element to be present (or absent): `verify_element: {text: Done}`,
    /// `verify_element: {content_desc: Spinner, state: absent}`.
    VerifyElement(VerifyElementStep),
    /// Start an app: `launch_app: com.example` or `{package, activity}`.
    LaunchApp(LaunchAppStep),
    /// Force-stop an app: `stop_app: com.example`.
    StopApp(PackageStep),
    /// Install an APK the host provides by name: `install_app: demo.apk`.
    InstallApp(InstallAppStep),
    /// Run a shell command on the device: `shell: "pm path com.x"` or `{command,
    /// expect_output, exit_code}` (exit code 0 unless said otherwise).
    Shell(ShellStep),
    /// Check the console output of the whole run so far for a regular expression:
    /// `verify_log: "Kernel panic"` (seen; with `timeout_ms`, waits that long for it) or
    /// `verify_log: {pattern: "Oops", absent: true}` (never seen so far).
    VerifyLog(VerifyLogStep),
}

/// Every action's name, in the order of [`Action`].
pub const ACTION_NAMES: [&str; 24] = [
    "goto",
    "press",
    "wait",
    "verify_image",
    "verify_black",
    "verify_not_black",
    "verify_motion",
    "verify_not_frozen",
    "verify_audio",
    "measure_zap",
    "screenshot",
    "repeat",
    "serial_send",
    "serial_expect",
    "tap",
    "swipe",
    "input_text",
    "tap_element",
    "verify_element",
    "launch_app",
    "stop_app",
    "install_app",
    "shell",
    "verify_log",
];
const OPTION_NAMES: [&str; 2] = ["timeout_ms", "continue_on_failure"];

impl Action {
    /// The action's key in YAML (`verify_image`), also the `kind` of its step results.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Goto(_) => "goto",
            Action::Press(_) => "press",
            Action::Wait(_) => "wait",
            Action::VerifyImage(_) => "verify_image",
            Action::VerifyBlack(_) => "verify_black",
            Action::VerifyNotBlack(_) => "verify_not_black",
            Action::VerifyMotion(_) => "verify_motion",
            Action::VerifyNotFrozen(_) => "verify_not_frozen",
            Action::VerifyAudio(_) => "verify_audio",
            Action::MeasureZap(_) => "measure_zap",
            Action::Screenshot(_) => "screenshot",
            Action::Repeat(_) => "repeat",
            Action::SerialSend(_) => "serial_send",
            Action::SerialExpect(_) => "serial_expect",
            Action::Tap(_) => "tap",
            Action::Swipe(_) => "swipe",
            Action::InputText(_) => "input_text",
            Action::TapElement(_) => "tap_element",
            Action::VerifyElement(_) => "verify_element",
            Action::LaunchApp(_) => "launch_app",
            Action::StopApp(_) => "stop_app",
            Action::InstallApp(_) => "install_app",
            Action::Shell(_) => "shell",
            Action::VerifyLog(_) => "verify_log",
        }
    }

    /// Whether `timeout_ms` means something for this action.
    pub fn takes_timeout(&self) -> bool {
        matches!(
            self,
            Action::Goto(_)
                | Action::VerifyImage(_)
                | Action::VerifyBlack(_)
                | Action::VerifyNotBlack(_)
                | Action::MeasureZap(_)
                | Action::SerialExpect(_)
                | Action::Tap(_)
                | Action::TapElement(_)
                | Action::VerifyElement(_)
                | Action::Shell(_)
                | Action::VerifyLog(_)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GotoStep {
    pub screen: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PressStep {
    pub key: KeyName,
    /// Number of presses (default 1).
    pub repeat: u32,
    /// Pause between repeated presses.
    pub interval_ms: u64,
    /// Hold the key this long (a long press) instead of a short press.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WaitStep {
    pub ms: u64,
}

/// What `verify_image` waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageMode {
    /// The image is (or becomes) visible.
    #[default]
    Appear,
    /// The image is (or becomes) gone.
    Disappear,
    /// The image becomes visible and then goes away (a banner, a toast), all within the timeout.
    AppearThenDisappear,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyImageStep {
    /// Name of the reference image.
    pub reference: String,
    /// Where to search (default: the whole frame).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Rect>,
    /// Minimum TM_CCOEFF_NORMED score, 0..=1 (default: the test's `defaults.threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub mode: ImageMode,
}

/// A step over a region: `verify_black: {}`, `verify_black:` or `verify_black: {region: {...}}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RegionStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Rect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegionStepFull {
    #[serde(default)]
    region: Option<Rect>,
}

impl From<RegionStepFull> for RegionStep {
    fn from(f: RegionStepFull) -> Self {
        RegionStep { region: f.region }
    }
}

impl Shorthand for RegionStep {
    type Full = RegionStepFull;
    const EXPECTING: &'static str = "{region} or nothing";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Null => Ok(RegionStep::default()),
            _ => Err("expected {region: {x, y, width, height}} or nothing".into()),
        }
    }
}
deserialize_shorthand!(RegionStep);

/// A step that watches the picture for a while.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ObserveStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Rect>,
    /// How long to watch (default: the test's `defaults.observe_ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObserveStepFull {
    #[serde(default)]
    region: Option<Rect>,
    #[serde(default)]
    duration_ms: Option<u64>,
}

impl From<ObserveStepFull> for ObserveStep {
    fn from(f: ObserveStepFull) -> Self {
        ObserveStep {
            region: f.region,
            duration_ms: f.duration_ms,
        }
    }
}

impl Shorthand for ObserveStep {
    type Full = ObserveStepFull;
    const EXPECTING: &'static str = "{region, duration_ms} or nothing";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Null => Ok(ObserveStep::default()),
            _ => Err("expected {region, duration_ms} or nothing".into()),
        }
    }
}
deserialize_shorthand!(ObserveStep);

/// What `verify_audio` expects to hear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioExpect {
    Present,
    Silent,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyAudioStep {
    pub expect: AudioExpect,
    /// With `expect: present`: the dominant frequency must be this, within `tolerance_hz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_hz: Option<f64>,
    /// Allowed deviation of the dominant frequency (default 5 % of `frequency_hz`, at least 10 Hz).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_hz: Option<f64>,
    /// How long to listen (default: the test's `defaults.observe_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// `measure_zap: ch_up` or `measure_zap: {key: ch_up, region: {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeasureZapStep {
    pub key: KeyName,
    /// Region watched for the black and the new picture (default: the whole frame).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Rect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MeasureZapStepFull {
    key: KeyName,
    #[serde(default)]
    region: Option<Rect>,
}

impl From<MeasureZapStepFull> for MeasureZapStep {
    fn from(f: MeasureZapStepFull) -> Self {
        MeasureZapStep {
            key: f.key,
            region: f.region,
        }
    }
}

impl Shorthand for MeasureZapStep {
    type Full = MeasureZapStepFull;
    const EXPECTING: &'static str = "a key name or {key, region}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        Ok(MeasureZapStep {
            key: KeyName::from_scalar(s, "a key name or {key, region}")?,
            region: None,
        })
    }
}
deserialize_shorthand!(MeasureZapStep);

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScreenshotStep {
    pub name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScreenshotStepFull {
    name: String,
}

impl From<ScreenshotStepFull> for ScreenshotStep {
    fn from(f: ScreenshotStepFull) -> Self {
        ScreenshotStep { name: f.name }
    }
}

impl Shorthand for ScreenshotStep {
    type Full = ScreenshotStepFull;
    const EXPECTING: &'static str = "a screenshot name or {name}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Str(name) => Ok(ScreenshotStep { name }),
            Scalar::Int(n) => Ok(ScreenshotStep {
                name: n.to_string(),
            }),
            Scalar::Null => Err("expected a screenshot name, found nothing".into()),
        }
    }
}
deserialize_shorthand!(ScreenshotStep);

/// `serial_send: text` or `serial_send: {text, newline}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SerialSendStep {
    pub text: String,
    /// Send a newline (`\n`) after the text (default true).
    pub newline: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SerialSendStepFull {
    text: String,
    #[serde(default = "yes")]
    newline: bool,
}

fn yes() -> bool {
    true
}

impl From<SerialSendStepFull> for SerialSendStep {
    fn from(f: SerialSendStepFull) -> Self {
        SerialSendStep {
            text: f.text,
            newline: f.newline,
        }
    }
}

impl Shorthand for SerialSendStep {
    type Full = SerialSendStepFull;
    const EXPECTING: &'static str = "the text of a line or {text, newline}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        let text = match s {
            Scalar::Str(t) => t,
            Scalar::Int(n) => n.to_string(),
            Scalar::Null => String::new(),
        };
        Ok(SerialSendStep {
            text,
            newline: true,
        })
    }
}
deserialize_shorthand!(SerialSendStep);

/// `serial_expect: pattern` or `serial_expect: {pattern}`. Matches console lines (and the line
/// being written, such as a prompt) that arrived since the previous `serial_expect` matched, or
/// since the run started; waits up to the step's `timeout_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SerialExpectStep {
    /// A regular expression (Rust `regex` syntax).
    pub pattern: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SerialExpectStepFull {
    pattern: String,
}

impl From<SerialExpectStepFull> for SerialExpectStep {
    fn from(f: SerialExpectStepFull) -> Self {
        SerialExpectStep { pattern: f.pattern }
    }
}

impl Shorthand for SerialExpectStep {
    type Full = SerialExpectStepFull;
    const EXPECTING: &'static str = "a regular expression or {pattern}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Str(pattern) => Ok(SerialExpectStep { pattern }),
            Scalar::Int(n) => Ok(SerialExpectStep {
                pattern: n.to_string(),
            }),
            Scalar::Null => Err("expected a regular expression, found nothing".into()),
        }
    }
}
deserialize_shorthand!(SerialExpectStep);

/// `verify_log: pattern` or `verify_log: {pattern, absent}`. Looks at every console line since
/// the run started (and the line being written). Seen (the default): passes on the first match,
/// waiting up to the step's `timeout_ms` (no wait without one); `absent: true`: passes when no
/// line so far matches, fails naming the first one that does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyLogStep {
    /// A regular expression (Rust `regex` syntax).
    pub pattern: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyLogStepFull {
    pattern: String,
    #[serde(default)]
    absent: bool,
}

impl From<VerifyLogStepFull> for VerifyLogStep {
    fn from(f: VerifyLogStepFull) -> Self {
        VerifyLogStep {
            pattern: f.pattern,
            absent: f.absent,
        }
    }
}

impl Shorthand for VerifyLogStep {
    type Full = VerifyLogStepFull;
    const EXPECTING: &'static str = "a regular expression or {pattern, absent}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Str(pattern) => Ok(VerifyLogStep {
                pattern,
                absent: false,
            }),
            Scalar::Int(n) => Ok(VerifyLogStep {
                pattern: n.to_string(),
                absent: false,
            }),
            Scalar::Null => Err("expected a regular expression, found nothing".into()),
        }
    }
}
deserialize_shorthand!(VerifyLogStep);

/// A point on the screen, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    pub x: u32,
    pub y: u32,
}

/// `tap: {x, y}` or `tap: {text | resource_id | content_desc}` (the element's centre).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_desc: Option<String>,
}

impl TapStep {
    /// The element to tap, when the step names one.
    pub fn selector(&self) -> Option<Selector> {
        let s = Selector {
            text: self.text.clone(),
            resource_id: self.resource_id.clone(),
            content_desc: self.content_desc.clone(),
        };
        (!s.is_empty()).then_some(s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwipeStep {
    pub from: Point,
    pub to: Point,
    /// How long the finger moves (default 300 ms).
    #[serde(default = "default_swipe_ms")]
    pub duration_ms: u64,
}

fn default_swipe_ms() -> u64 {
    300
}

/// `input_text: hello` or `input_text: {text: hello}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputTextStep {
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputTextFull {
    text: String,
}

impl From<InputTextFull> for InputTextStep {
    fn from(f: InputTextFull) -> Self {
        InputTextStep { text: f.text }
    }
}

impl Shorthand for InputTextStep {
    type Full = InputTextFull;
    const EXPECTING: &'static str = "the text to type or {text}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Str(text) => Ok(InputTextStep { text }),
            Scalar::Int(n) => Ok(InputTextStep {
                text: n.to_string(),
            }),
            Scalar::Null => Err("expected the text to type, found nothing".into()),
        }
    }
}
deserialize_shorthand!(InputTextStep);

/// An element: `OK` (by text) or `{text, resource_id, content_desc}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElementStep {
    #[serde(flatten)]
    pub selector: Selector,
}

impl From<Selector> for ElementStep {
    fn from(selector: Selector) -> Self {
        ElementStep { selector }
    }
}

fn text_selector(s: Scalar) -> Result<Selector, String> {
    match s {
        Scalar::Str(text) => Ok(Selector {
            text: Some(text),
            ..Selector::default()
        }),
        Scalar::Int(n) => Ok(Selector {
            text: Some(n.to_string()),
            ..Selector::default()
        }),
        Scalar::Null => {
            Err("expected an element's text or {text, resource_id, content_desc}".into())
        }
    }
}

impl Shorthand for ElementStep {
    type Full = Selector;
    const EXPECTING: &'static str = "an element's text or {text, resource_id, content_desc}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        text_selector(s).map(ElementStep::from)
    }
}
deserialize_shorthand!(ElementStep);

/// What `verify_element` waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementState {
    #[default]
    Present,
    Absent,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyElementStep {
    #[serde(flatten)]
    pub selector: Selector,
    pub state: ElementState,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyElementFull {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    resource_id: Option<String>,
    #[serde(default)]
    content_desc: Option<String>,
    #[serde(default)]
    state: ElementState,
}

impl From<VerifyElementFull> for VerifyElementStep {
    fn from(f: VerifyElementFull) -> Self {
        VerifyElementStep {
            selector: Selector {
                text: f.text,
                resource_id: f.resource_id,
                content_desc: f.content_desc,
            },
            state: f.state,
        }
    }
}

impl Shorthand for VerifyElementStep {
    type Full = VerifyElementFull;
    const EXPECTING: &'static str = "an element's text or {text, resource_id, content_desc, state}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        Ok(VerifyElementStep {
            selector: text_selector(s)?,
            state: ElementState::Present,
        })
    }
}
deserialize_shorthand!(VerifyElementStep);

/// `launch_app: com.example` or `{package, activity}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LaunchAppStep {
    pub package: String,
    /// `.MainActivity` or `com.example/.MainActivity` (default: the launcher activity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LaunchAppFull {
    package: String,
    #[serde(default)]
    activity: Option<String>,
}

impl From<LaunchAppFull> for LaunchAppStep {
    fn from(f: LaunchAppFull) -> Self {
        LaunchAppStep {
            package: f.package,
            activity: f.activity,
        }
    }
}

fn package_scalar(s: Scalar) -> Result<String, String> {
    match s {
        Scalar::Str(p) => Ok(p),
        _ => Err("expected a package name (com.example.app)".into()),
    }
}

impl Shorthand for LaunchAppStep {
    type Full = LaunchAppFull;
    const EXPECTING: &'static str = "a package name or {package, activity}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        Ok(LaunchAppStep {
            package: package_scalar(s)?,
            activity: None,
        })
    }
}
deserialize_shorthand!(LaunchAppStep);

/// `stop_app: com.example` or `{package}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageStep {
    pub package: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackageFull {
    package: String,
}

impl From<PackageFull> for PackageStep {
    fn from(f: PackageFull) -> Self {
        PackageStep { package: f.package }
    }
}

impl Shorthand for PackageStep {
    type Full = PackageFull;
    const EXPECTING: &'static str = "a package name or {package}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        Ok(PackageStep {
            package: package_scalar(s)?,
        })
    }
}
deserialize_shorthand!(PackageStep);

/// `install_app: demo.apk` or `{apk}`: a file of the host's APK directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstallAppStep {
    pub apk: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstallAppFull {
    apk: String,
}

impl From<InstallAppFull> for InstallAppStep {
    fn from(f: InstallAppFull) -> Self {
        InstallAppStep { apk: f.apk }
    }
}

impl Shorthand for InstallAppStep {
    type Full = InstallAppFull;
    const EXPECTING: &'static str = "an apk file name or {apk}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Str(apk) => Ok(InstallAppStep { apk }),
            _ => Err("expected an apk file name (demo.apk)".into()),
        }
    }
}
deserialize_shorthand!(InstallAppStep);

/// `shell: command` or `{command, expect_output, exit_code}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShellStep {
    pub command: String,
    /// A regular expression the output (stdout, then stderr) must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_output: Option<String>,
    /// The exit code wanted (default 0).
    pub exit_code: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShellFull {
    command: String,
    #[serde(default)]
    expect_output: Option<String>,
    #[serde(default)]
    exit_code: i32,
}

impl From<ShellFull> for ShellStep {
    fn from(f: ShellFull) -> Self {
        ShellStep {
            command: f.command,
            expect_output: f.expect_output,
            exit_code: f.exit_code,
        }
    }
}

impl Shorthand for ShellStep {
    type Full = ShellFull;
    const EXPECTING: &'static str = "a command or {command, expect_output, exit_code}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Str(command) => Ok(ShellStep {
                command,
                expect_output: None,
                exit_code: 0,
            }),
            _ => Err("expected a shell command".into()),
        }
    }
}
deserialize_shorthand!(ShellStep);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatStep {
    pub count: u32,
    pub steps: Vec<Step>,
}

// Short forms of the simple steps.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GotoFull {
    screen: String,
}

impl From<GotoFull> for GotoStep {
    fn from(f: GotoFull) -> Self {
        GotoStep { screen: f.screen }
    }
}

impl Shorthand for GotoStep {
    type Full = GotoFull;
    const EXPECTING: &'static str = "a screen id or {screen}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Str(screen) => Ok(GotoStep { screen }),
            _ => Err("expected a screen id".into()),
        }
    }
}
deserialize_shorthand!(GotoStep);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PressFull {
    key: KeyName,
    #[serde(default = "one")]
    repeat: u32,
    #[serde(default)]
    interval_ms: u64,
    #[serde(default)]
    hold_ms: Option<u64>,
}

impl From<PressFull> for PressStep {
    fn from(f: PressFull) -> Self {
        PressStep {
            key: f.key,
            repeat: f.repeat,
            interval_ms: f.interval_ms,
            hold_ms: f.hold_ms,
        }
    }
}

impl Shorthand for PressStep {
    type Full = PressFull;
    const EXPECTING: &'static str = "a key name or {key, repeat, interval_ms, hold_ms}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        Ok(PressStep {
            key: KeyName::from_scalar(s, "a key name")?,
            repeat: 1,
            interval_ms: 0,
            hold_ms: None,
        })
    }
}
deserialize_shorthand!(PressStep);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitFull {
    ms: u64,
}

impl From<WaitFull> for WaitStep {
    fn from(f: WaitFull) -> Self {
        WaitStep { ms: f.ms }
    }
}

impl Shorthand for WaitStep {
    type Full = WaitFull;
    const EXPECTING: &'static str = "milliseconds or {ms}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        match s {
            Scalar::Int(ms) => Ok(WaitStep { ms }),
            _ => Err("expected a number of milliseconds".into()),
        }
    }
}
deserialize_shorthand!(WaitStep);

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len =
            1 + usize::from(self.timeout_ms.is_some()) + usize::from(self.continue_on_failure);
        let mut m = s.serialize_map(Some(len))?;
        let name = self.action.name();
        match &self.action {
            Action::Goto(v) => m.serialize_entry(name, v)?,
            Action::Press(v) => m.serialize_entry(name, v)?,
            Action::Wait(v) => m.serialize_entry(name, v)?,
            Action::VerifyImage(v) => m.serialize_entry(name, v)?,
            Action::VerifyBlack(v) | Action::VerifyNotBlack(v) => m.serialize_entry(name, v)?,
            Action::VerifyMotion(v) | Action::VerifyNotFrozen(v) => m.serialize_entry(name, v)?,
            Action::VerifyAudio(v) => m.serialize_entry(name, v)?,
            Action::MeasureZap(v) => m.serialize_entry(name, v)?,
            Action::Screenshot(v) => m.serialize_entry(name, v)?,
            Action::Repeat(v) => m.serialize_entry(name, v)?,
            Action::SerialSend(v) => m.serialize_entry(name, v)?,
            Action::SerialExpect(v) => m.serialize_entry(name, v)?,
            Action::Tap(v) => m.serialize_entry(name, v)?,
            Action::Swipe(v) => m.serialize_entry(name, v)?,
            Action::InputText(v) => m.serialize_entry(name, v)?,
            Action::TapElement(v) => m.serialize_entry(name, v)?,
            Action::VerifyElement(v) => m.serialize_entry(name, v)?,
            Action::LaunchApp(v) => m.serialize_entry(name, v)?,
            Action::StopApp(v) => m.serialize_entry(name, v)?,
            Action::InstallApp(v) => m.serialize_entry(name, v)?,
            Action::Shell(v) => m.serialize_entry(name, v)?,
            Action::VerifyLog(v) => m.serialize_entry(name, v)?,
        }
        if let Some(t) = self.timeout_ms {
            m.serialize_entry("timeout_ms", &t)?;
        }
        if self.continue_on_failure {
            m.serialize_entry("continue_on_failure", &true)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = Step;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a step: a mapping with one of {}",
            ACTION_NAMES.join(", ")
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
        let mut action: Option<Action> = None;
        let mut timeout_ms = None;
        let mut continue_on_failure = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "timeout_ms" => {
                    if timeout_ms.is_some() {
                        return Err(de::Error::duplicate_field("timeout_ms"));
                    }
                    timeout_ms = Some(map.next_value::<u64>()?);
                }
                "continue_on_failure" => {
                    if continue_on_failure.is_some() {
                        return Err(de::Error::duplicate_field("continue_on_failure"));
                    }
                    continue_on_failure = Some(map.next_value::<bool>()?);
                }
                name if ACTION_NAMES.contains(&name) => {
                    if let Some(first) = &action {
                        return Err(de::Error::custom(format!(
                            "a step has exactly one action, found both {} and {name}",
                            first.name()
                        )));
                    }
                    action = Some(action_value(name, &mut map)?);
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown step field `{other}`, expected one of {} (or {})",
                        ACTION_NAMES.join(", "),
                        OPTION_NAMES.join(", ")
                    )));
                }
            }
        }
        let action = action.ok_or_else(|| {
            de::Error::custom(format!(
                "a step needs an action: one of {}",
                ACTION_NAMES.join(", ")
            ))
        })?;
        Ok(Step {
            action,
            timeout_ms,
            continue_on_failure: continue_on_failure.unwrap_or(false),
        })
    }
}

fn action_value<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Action, A::Error> {
    Ok(match name {
        "goto" => Action::Goto(map.next_value()?),
        "press" => Action::Press(map.next_value()?),
        "wait" => Action::Wait(map.next_value()?),
        "verify_image" => Action::VerifyImage(map.next_value()?),
        "verify_black" => Action::VerifyBlack(map.next_value()?),
        "verify_not_black" => Action::VerifyNotBlack(map.next_value()?),
        "verify_motion" => Action::VerifyMotion(map.next_value()?),
        "verify_not_frozen" => Action::VerifyNotFrozen(map.next_value()?),
        "verify_audio" => Action::VerifyAudio(map.next_value()?),
        "measure_zap" => Action::MeasureZap(map.next_value()?),
        "screenshot" => Action::Screenshot(map.next_value()?),
        "repeat" => Action::Repeat(map.next_value()?),
        "serial_send" => Action::SerialSend(map.next_value()?),
        "serial_expect" => Action::SerialExpect(map.next_value()?),
        "tap" => Action::Tap(map.next_value()?),
        "swipe" => Action::Swipe(map.next_value()?),
        "input_text" => Action::InputText(map.next_value()?),
        "tap_element" => Action::TapElement(map.next_value()?),
        "verify_element" => Action::VerifyElement(map.next_value()?),
        "launch_app" => Action::LaunchApp(map.next_value()?),
        "stop_app" => Action::StopApp(map.next_value()?),
        "install_app" => Action::InstallApp(map.next_value()?),
        "shell" => Action::Shell(map.next_value()?),
        "verify_log" => Action::VerifyLog(map.next_value()?),
        other => return Err(de::Error::unknown_field(other, &ACTION_NAMES)),
    })
}
