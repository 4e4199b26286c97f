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
    /// Check the console output of the whole run so far for a regular expression:
    /// `verify_log: "Kernel panic"` (seen; with `timeout_ms`, waits that long for it) or
    /// `verify_log: {pattern: "Oops", absent: true}` (never seen so far).
    VerifyLog(VerifyLogStep),
}

/// Every action's name, in the order of [`Action`].
pub const ACTION_NAMES: [&str; 15] = [
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
        "verify_log" => Action::VerifyLog(map.next_value()?),
        other => return Err(de::Error::unknown_field(other, &ACTION_NAMES)),
    })
}
