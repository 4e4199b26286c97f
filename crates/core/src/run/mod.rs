//! The test runner: runs a [`TestCase`] on a device, step by step, and hands every
//! [`StepResult`] to a [`StepSink`] as soon as it is known (the host streams it to the server).
//!
//! The runner is synchronous and blocking, like the controller traits; the host-agent runs it on
//! a blocking thread. It checks the cancel flag between steps and inside every wait. Time comes
//! from a [`Clock`], so a run against the simulator with a manual clock is deterministic.
//!
//! Semantics:
//! - the test case is validated against the context first (navigation tree, references, the
//!   device's capabilities and frame size); a problem stops the run before anything is pressed;
//! - a step that fails or errors stops the run unless it has `continue_on_failure`; the steps
//!   after it are reported as skipped (a skipped `repeat` is reported once, not per iteration);
//! - on cancel, the step in progress and every later step are reported as skipped;
//! - every executed step leaves a JPEG screenshot of the frame that decided its verdict (or, for
//!   steps that look at no frame, of the screen right after the step) when the device has video.
//!
//! Result paths name the step as written (`steps[4].repeat.steps[1]`), followed by the iteration
//! of each enclosing `repeat`, outermost first and counting from 1 (`steps[4].repeat.steps[1]#2`).

pub mod console_log;
mod steps;

pub use console_log::{ConsoleRecorder, MAX_CONSOLE_LOG};
pub use steps::console_pattern;

use std::{
    collections::BTreeMap,
    fmt,
    sync::atomic::{AtomicBool, Ordering},
};

use serde::{Deserialize, Serialize};

use crate::{
    clock::Clock,
    controller::Device,
    nav::{EdgeObservation, GotoOptions, NavigationTree, ReferenceImages, Resolution},
    testcase::{Action, Step, TestCase, ValidationEnv},
    validate::ValidationError,
};

/// Everything a run needs besides the test case.
#[derive(Clone, Copy)]
pub struct RunContext<'a> {
    pub device: &'a dyn Device,
    /// The navigation tree of the device model; `goto` steps need one.
    pub nav: Option<&'a NavigationTree>,
    pub references: &'a dyn ReferenceImages,
    /// Set to stop the run; checked between steps and inside waits.
    pub cancel: &'a AtomicBool,
    pub clock: &'a dyn Clock,
    pub options: RunOptions,
}

/// Tuning of the runner. The defaults suit a 25-60 fps capture.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunOptions {
    /// Time between two frames while waiting for an image or a black screen.
    pub poll_interval_ms: u64,
    /// Time between two frames while measuring a zap (finer, as it is a measurement).
    pub zap_poll_interval_ms: u64,
    /// JPEG quality of screenshots.
    pub screenshot_quality: u8,
    /// Encode each step's screenshot before reporting the step. Off, the step is reported at
    /// once with its decisive frame in [`StepResult::frame`], for the caller to encode off the
    /// run's critical path (the host agent does; stored-quality JPEG takes tens of ms).
    pub encode_screenshots: bool,
    /// Navigation timing; `timeout_ms` is replaced by the step's or the test's goto timeout.
    pub goto: GotoOptions,
    /// Two frames differing by at least this (mean absolute luma difference) show motion.
    pub motion_min_difference: f32,
    /// Level under which audio counts as silent, in dBFS.
    pub silence_dbfs: f32,
    /// Audio is read in pieces of at most this length, so a cancel is noticed.
    pub audio_chunk_ms: u64,
    /// Record the console log of the run ([`RunSummary::console_log`]) on devices with a
    /// console.
    pub record_console: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            poll_interval_ms: 40,
            zap_poll_interval_ms: 10,
            screenshot_quality: 80,
            encode_screenshots: true,
            goto: GotoOptions::default(),
            motion_min_difference: 2.0,
            silence_dbfs: crate::verify::DEFAULT_SILENCE_DBFS,
            audio_chunk_ms: 250,
            record_console: true,
        }
    }
}

/// The verdict of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// The device did not do what the step expects.
    Fail,
    /// The step could not be carried out (device error, missing reference, no video).
    Error,
    /// Not run: an earlier step failed, or the run was cancelled.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Position in the run, counting every reported step (repeat iterations flattened) from 0.
    pub index: u32,
    /// The step as written plus repeat iterations: `steps[4].repeat.steps[1]#2`.
    pub path: String,
    /// The action (`verify_image`).
    pub kind: String,
    pub verdict: Verdict,
    /// What happened, for people.
    pub reason: String,
    /// Microseconds since the Unix epoch (the run's clock).
    pub started_at_us: u64,
    pub duration_ms: f64,
    /// JPEG of the frame that decided the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<Vec<u8>>,
    /// The frame that decided the verdict, when screenshots are not encoded by the runner.
    #[serde(skip)]
    pub frame: Option<crate::frame::Frame>,
    /// Named numbers: `zap_ms`, `score`, `rms_dbfs`, `frequency_hz`, ...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measurements: BTreeMap<String, f64>,
}

/// The verdict of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunVerdict {
    /// Every step passed.
    Pass,
    /// A step failed (and none errored).
    Fail,
    /// A step errored, or the test case is not valid for this device.
    Error,
    Cancelled,
}

/// A validation problem that kept the run from starting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl From<ValidationError> for Problem {
    fn from(e: ValidationError) -> Self {
        Problem {
            field: e.field,
            message: e.message,
        }
    }
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub verdict: RunVerdict,
    pub steps_passed: u32,
    pub steps_failed: u32,
    pub steps_errored: u32,
    pub steps_skipped: u32,
    /// Every navigation edge attempt, for the tree's learned statistics.
    pub edge_observations: Vec<EdgeObservation>,
    pub cancelled: bool,
    /// Why the run did not start (empty when it did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    pub duration_ms: f64,
    /// The console lines of the run with step markers ([`console_log`]), when the device has a
    /// console and [`RunOptions::record_console`] is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_log: Option<String>,
}

/// Receives step results as they happen.
pub trait StepSink {
    fn step(&mut self, result: StepResult);
}

impl<F: FnMut(StepResult)> StepSink for F {
    fn step(&mut self, result: StepResult) {
        self(result)
    }
}

/// Runs `testcase` on `ctx.device`, reporting each step to `sink`.
pub fn run_testcase(
    ctx: &RunContext<'_>,
    testcase: &TestCase,
    sink: &mut dyn StepSink,
) -> RunSummary {
    let started = ctx.clock.now_us();
    let caps = ctx.device.capabilities();
    let env = ValidationEnv {
        nav: ctx.nav,
        references: Some(ctx.references),
        capabilities: Some(&caps),
        resolution: ctx.device.video().map(|v| {
            let (width, height) = v.resolution();
            Resolution { width, height }
        }),
        nav_pending: false,
        model_without_tree: None,
    };
    let mut problems: Vec<Problem> = Vec::new();
    if let Some(nav) = ctx.nav
        && let Err(errs) = nav.validate()
    {
        problems.extend(
            errs.into_iter()
                .map(|e| Problem::from(e.within("navigation_tree"))),
        );
    }
    if let Err(errs) = testcase.validate(&env) {
        problems.extend(errs.into_iter().map(Problem::from));
    }
    // Console output from before the run is not the run's.
    let console_start = ctx
        .device
        .console()
        .and_then(|c| c.read_since(u64::MAX).ok())
        .map_or(0, |r| r.next);
    let mut runner = Runner {
        ctx,
        testcase,
        sink,
        next_index: 0,
        counts: [0; 4],
        observations: Vec::new(),
        console_from: console_start,
        console_start,
        recorder: ctx
            .device
            .console()
            .filter(|_| ctx.options.record_console)
            .map(|c| ConsoleRecorder::start(c, started)),
        cancelled: false,
    };
    if problems.is_empty() {
        runner.steps(&testcase.steps, "", "");
    }
    let [passed, failed, errored, skipped] = runner.counts;
    let cancelled = runner.cancelled;
    let verdict = if cancelled {
        RunVerdict::Cancelled
    } else if !problems.is_empty() || errored > 0 {
        RunVerdict::Error
    } else if failed > 0 {
        RunVerdict::Fail
    } else {
        RunVerdict::Pass
    };
    let ended = ctx.clock.now_us();
    let console_log = runner
        .recorder
        .take()
        .zip(ctx.device.console())
        .map(|(r, c)| r.finish(c, ended, verdict));
    RunSummary {
        verdict,
        steps_passed: passed,
        steps_failed: failed,
        steps_errored: errored,
        steps_skipped: skipped,
        edge_observations: runner.observations,
        cancelled,
        problems,
        duration_ms: crate::nav::goto::ms_between(started, ended),
        console_log,
    }
}

/// Whether the run goes on after a step.
enum Flow {
    Continue,
    /// Stop; later steps are skipped with this reason.
    Stop(String),
}

struct Runner<'r, 'a> {
    ctx: &'r RunContext<'a>,
    testcase: &'r TestCase,
    sink: &'r mut dyn StepSink,
    next_index: u32,
    /// Passed, failed, errored, skipped.
    counts: [u32; 4],
    observations: Vec<EdgeObservation>,
    /// The first console line `serial_expect` looks at: after its last match, or the run's start.
    console_from: u64,
    /// The first console line of the run, where `verify_log` looks from.
    console_start: u64,
    recorder: Option<ConsoleRecorder>,
    cancelled: bool,
}

impl Runner<'_, '_> {
    fn emit(&mut self, mut result: StepResult) {
        result.index = self.next_index;
        self.next_index += 1;
        let slot = match result.verdict {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Error => 2,
            Verdict::Skipped => 3,
        };
        self.counts[slot] += 1;
        if let (Some(rec), Some(console)) = (self.recorder.as_mut(), self.ctx.device.console()) {
            rec.step(console, &result);
        }
        self.sink.step(result);
    }

    fn skip(&mut self, path: String, step: &Step, reason: &str) {
        let now = self.ctx.clock.now_us();
        self.emit(StepResult {
            index: 0,
            path,
            kind: step.action.name().to_owned(),
            verdict: Verdict::Skipped,
            reason: reason.to_owned(),
            started_at_us: now,
            duration_ms: 0.0,
            screenshot: None,
            frame: None,
            measurements: BTreeMap::new(),
        });
    }

    /// Runs `steps` (written at `prefix`, inside repeat iterations `iters`).
    fn steps(&mut self, steps: &[Step], prefix: &str, iters: &str) -> Flow {
        let mut stop: Option<String> = None;
        for (i, step) in steps.iter().enumerate() {
            let at = if prefix.is_empty() {
                format!("steps[{i}]")
            } else {
                format!("{prefix}.repeat.steps[{i}]")
            };
            if let Some(reason) = &stop {
                self.skip(format!("{at}{iters}"), step, reason);
                continue;
            }
            if self.ctx.cancel.load(Ordering::Relaxed) {
                self.cancelled = true;
                let reason = "cancelled".to_owned();
                self.skip(format!("{at}{iters}"), step, &reason);
                stop = Some(reason);
                continue;
            }
            let flow = match &step.action {
                Action::Repeat(r) => {
                    let mut flow = Flow::Continue;
                    for n in 1..=r.count {
                        if let Flow::Stop(reason) =
                            self.steps(&r.steps, &at, &format!("{iters}#{n}"))
                        {
                            flow = if step.continue_on_failure && !self.cancelled {
                                Flow::Continue
                            } else {
                                Flow::Stop(reason)
                            };
                            break;
                        }
                    }
                    flow
                }
                _ => self.leaf(step, format!("{at}{iters}")),
            };
            if let Flow::Stop(reason) = flow {
                stop = Some(reason);
            }
        }
        match stop {
            Some(reason) => Flow::Stop(reason),
            None => Flow::Continue,
        }
    }

    fn leaf(&mut self, step: &Step, path: String) -> Flow {
        let started = self.ctx.clock.now_us();
        let outcome = steps::execute(
            self.ctx,
            self.testcase,
            step,
            &mut self.observations,
            &mut self.console_from,
            self.console_start,
        );
        let ended = self.ctx.clock.now_us();
        let cancelled = outcome.cancelled;
        let frame = match outcome.frame {
            Some(f) => Some(f),
            None if !cancelled => steps::grab_quietly(self.ctx),
            None => None,
        };
        let (screenshot, frame) = if self.ctx.options.encode_screenshots {
            (
                frame.and_then(|f| {
                    steps::encode_screenshot(&f, self.ctx.options.screenshot_quality)
                }),
                None,
            )
        } else {
            (None, frame)
        };
        let verdict = outcome.verdict;
        self.emit(StepResult {
            index: 0,
            path: path.clone(),
            kind: step.action.name().to_owned(),
            verdict,
            reason: outcome.reason,
            started_at_us: started,
            duration_ms: crate::nav::goto::ms_between(started, ended),
            screenshot,
            frame,
            measurements: outcome.measurements,
        });
        if cancelled {
            self.cancelled = true;
            return Flow::Stop("cancelled".to_owned());
        }
        match verdict {
            Verdict::Fail | Verdict::Error if !step.continue_on_failure => {
                Flow::Stop(format!("skipped: {path} did not pass ({verdict})"))
            }
            _ => Flow::Continue,
        }
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests;

#[cfg(test)]
mod android_tests;
