//! Test cases written in YAML (or JSON): a name, optional device model and defaults, and a list of
//! steps (see [`step`]). [`parse`] reports syntax and shape errors with their line and column;
//! [`TestCase::validate`] then reports every semantic problem at once (unknown keys and screens,
//! regions outside the frame, missing references, capabilities the device lacks) with field
//! paths such as `steps[3].region`; [`problem::report`] gives each problem a stable code and the
//! line and column where it is written ([`locate::Locator`]). The format is documented in
//! `docs/testcases.md` and `docs/testcase.schema.json`.

pub mod locate;
pub mod problem;
pub mod step;
mod validate;

use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use problem::{Problem, ProblemCode};
pub use step::{
    ACTION_NAMES, Action, AudioExpect, ElementState, ElementStep, GotoStep, ImageMode,
    InputTextStep, InstallAppStep, LaunchAppStep, MeasureZapStep, ObserveStep, PackageStep, Point,
    PressStep, RegionStep, RepeatStep, ScreenshotStep, SerialExpectStep, SerialSendStep, ShellStep,
    Step, SwipeStep, TapStep, VerifyAudioStep, VerifyElementStep, VerifyImageStep, VerifyLogStep,
    WaitStep,
};
pub use validate::ValidationEnv;

use crate::fleet::Capability;

/// A test case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The device model the test is written for; must match the navigation tree's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model: Option<String>,
    #[serde(default)]
    pub defaults: Defaults,
    pub steps: Vec<Step>,
}

/// Test-wide defaults for what steps leave out.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// How long `verify_image`, `verify_black`, `verify_not_black`, `measure_zap` and
    /// `serial_expect` wait.
    pub timeout_ms: u64,
    /// How long a `goto` may take in all.
    pub goto_timeout_ms: u64,
    /// Minimum image match score of `verify_image`.
    pub threshold: f64,
    /// How long `verify_motion`, `verify_not_frozen` and `verify_audio` watch or listen.
    pub observe_ms: u64,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout_ms: 5_000,
            goto_timeout_ms: 30_000,
            threshold: 0.9,
            observe_ms: 1_000,
        }
    }
}

/// A syntax or shape error, with its position in the text when known (1-based).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Parses YAML (JSON is accepted too, being YAML) into any of this crate's documents.
pub(crate) fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    serde_norway::from_str(text).map_err(|e| {
        let loc = e.location();
        let mut message = e.to_string();
        if let Some(l) = &loc {
            // The message repeats the position; it is in the structured fields already.
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        ParseError {
            message,
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
        }
    })
}

/// Parses a test case from YAML or JSON. Only the shape is checked here; call
/// [`TestCase::validate`] for everything else.
pub fn parse(text: &str) -> Result<TestCase, ParseError> {
    parse_yaml(text)
}

impl TestCase {
    /// Serializes to YAML.
    pub fn to_yaml(&self) -> Result<String, ParseError> {
        serde_norway::to_string(self).map_err(|e| ParseError {
            message: e.to_string(),
            line: None,
            column: None,
        })
    }

    /// Every step, depth first, with its path (`steps[2].repeat.steps[0]`).
    pub fn walk(&self) -> Vec<(String, &Step)> {
        fn go<'a>(prefix: &str, steps: &'a [Step], out: &mut Vec<(String, &'a Step)>) {
            for (i, s) in steps.iter().enumerate() {
                let path = if prefix.is_empty() {
                    format!("steps[{i}]")
                } else {
                    format!("{prefix}.repeat.steps[{i}]")
                };
                out.push((path.clone(), s));
                if let Action::Repeat(r) = &s.action {
                    go(&path, &r.steps, out);
                }
            }
        }
        let mut out = Vec::new();
        go("", &self.steps, &mut out);
        out
    }

    /// The capabilities a device needs to run this test, sorted.
    pub fn required_capabilities(&self) -> Vec<Capability> {
        let mut caps: Vec<Capability> = self
            .walk()
            .into_iter()
            .flat_map(|(_, s)| step_capabilities(&s.action))
            .collect();
        caps.sort();
        caps.dedup();
        caps
    }
}

/// What one action needs (a `repeat` needs nothing itself).
pub fn step_capabilities(action: &Action) -> Vec<Capability> {
    use Capability::*;
    match action {
        Action::Goto(_) | Action::MeasureZap(_) => vec![RemoteControl, VideoCapture],
        Action::Press(_) => vec![RemoteControl],
        Action::Wait(_) | Action::Repeat(_) => vec![],
        Action::VerifyImage(_)
        | Action::VerifyBlack(_)
        | Action::VerifyNotBlack(_)
        | Action::VerifyMotion(_)
        | Action::VerifyNotFrozen(_)
        | Action::Screenshot(_) => vec![VideoCapture],
        Action::VerifyAudio(_) => vec![AudioCapture],
        Action::SerialSend(_) | Action::SerialExpect(_) | Action::VerifyLog(_) => vec![Console],
        Action::Tap(_)
        | Action::Swipe(_)
        | Action::InputText(_)
        | Action::TapElement(_)
        | Action::VerifyElement(_)
        | Action::LaunchApp(_)
        | Action::StopApp(_)
        | Action::InstallApp(_) => vec![Touch],
        Action::Shell(_) => vec![Shell],
    }
}

#[cfg(test)]
mod tests;
