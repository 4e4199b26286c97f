//! What each kind of step does. Every verification the runner makes goes through here: template
//! matching, black, motion and freeze checks on polled frames, audio level and frequency, and zap
//! time, all built on [`crate::verify`]. A step returns an [`Outcome`]; the runner adds timing,
//! the screenshot and the index.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crate::{
    controller::{AndroidUi, AudioCapture, Console, ControlError, RemoteControl, VideoCapture},
    frame::{Frame, Gray, Rect},
    nav::{
        EdgeObservation, NavError, Navigator,
        goto::{ms_between, sleep},
    },
    testcase::{Action, AudioExpect, ElementState, ImageMode, Step, TestCase},
    uiautomator::{self, NotFound, Selector, UiNode},
    verify::{self, BlackParams, Expectation, Watch, WatchStatus},
};

use super::{RunContext, Verdict};

/// Shortest pause between two UI dumps (a dump takes the device a while).
const MIN_UI_POLL_MS: u64 = 200;

/// What a step came to.
pub(super) struct Outcome {
    pub verdict: Verdict,
    pub reason: String,
    /// The frame that decided the verdict.
    pub frame: Option<Frame>,
    pub measurements: BTreeMap<String, f64>,
    /// The run was cancelled during the step.
    pub cancelled: bool,
}

impl Outcome {
    fn new(verdict: Verdict, reason: impl Into<String>, frame: Option<Frame>) -> Self {
        Outcome {
            verdict,
            reason: reason.into(),
            frame,
            measurements: BTreeMap::new(),
            cancelled: false,
        }
    }

    fn pass(reason: impl Into<String>, frame: Option<Frame>) -> Self {
        Self::new(Verdict::Pass, reason, frame)
    }

    fn fail(reason: impl Into<String>, frame: Option<Frame>) -> Self {
        Self::new(Verdict::Fail, reason, frame)
    }

    fn error(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Error, reason, None)
    }

    fn cancelled(frame: Option<Frame>) -> Self {
        Outcome {
            cancelled: true,
            ..Self::new(Verdict::Skipped, "cancelled while running", frame)
        }
    }

    fn measure(mut self, name: &str, value: f64) -> Self {
        self.measurements.insert(name.to_owned(), value);
        self
    }
}

/// Ends a step early: an error, or a cancel.
enum Abort {
    Error(String),
    Cancelled(Option<Frame>),
}

impl From<ControlError> for Abort {
    fn from(e: ControlError) -> Self {
        Abort::Error(e.to_string())
    }
}

impl From<verify::VerifyError> for Abort {
    fn from(e: verify::VerifyError) -> Self {
        Abort::Error(format!("verification error: {e}"))
    }
}

impl From<NavError> for Abort {
    fn from(e: NavError) -> Self {
        match e {
            NavError::Cancelled => Abort::Cancelled(None),
            e => Abort::Error(e.to_string()),
        }
    }
}

type StepResult<T> = Result<T, Abort>;

pub(super) fn execute(
    ctx: &RunContext<'_>,
    tc: &TestCase,
    step: &Step,
    observations: &mut Vec<EdgeObservation>,
    console_from: &mut u64,
    console_start: u64,
) -> Outcome {
    let s = Steps { ctx, tc };
    let result = match &step.action {
        Action::Goto(g) => return s.goto(&g.screen, step.timeout_ms, observations),
        Action::Press(p) => s.press(p),
        Action::Wait(w) => s
            .sleep_ms(w.ms)
            .map(|()| Outcome::pass(format!("waited {} ms", w.ms), None)),
        Action::VerifyImage(v) => {
            s.verify_image(v, step.timeout_ms.unwrap_or(tc.defaults.timeout_ms))
        }
        Action::VerifyBlack(r) => s.verify_black(
            r.region,
            true,
            step.timeout_ms.unwrap_or(tc.defaults.timeout_ms),
        ),
        Action::VerifyNotBlack(r) => s.verify_black(
            r.region,
            false,
            step.timeout_ms.unwrap_or(tc.defaults.timeout_ms),
        ),
        Action::VerifyMotion(o) => {
            s.verify_motion(o.region, o.duration_ms.unwrap_or(tc.defaults.observe_ms))
        }
        Action::VerifyNotFrozen(o) => {
            s.verify_not_frozen(o.region, o.duration_ms.unwrap_or(tc.defaults.observe_ms))
        }
        Action::VerifyAudio(a) => s.verify_audio(a),
        Action::MeasureZap(z) => {
            s.measure_zap(z, step.timeout_ms.unwrap_or(tc.defaults.timeout_ms))
        }
        Action::Screenshot(sc) => s.video().and_then(|v| {
            Ok(Outcome::pass(
                format!("screenshot {:?}", sc.name),
                Some(v.grab()?),
            ))
        }),
        Action::Repeat(_) => Ok(Outcome::error("a repeat is not a single step")),
        Action::SerialSend(t) => s.serial_send(t),
        Action::SerialExpect(x) => s.serial_expect(
            x,
            step.timeout_ms.unwrap_or(tc.defaults.timeout_ms),
            console_from,
        ),
        Action::VerifyLog(x) => s.verify_log(x, step.timeout_ms.unwrap_or(0), console_start),
        Action::Tap(t) => match (t.x, t.y, t.selector()) {
            (Some(x), Some(y), _) => s.ui().and_then(|ui| {
                ui.tap(x, y)?;
                Ok(Outcome::pass(format!("tapped ({x}, {y})"), None))
            }),
            (_, _, Some(sel)) => {
                s.tap_element(&sel, step.timeout_ms.unwrap_or(tc.defaults.timeout_ms))
            }
            _ => Ok(Outcome::error("tap needs a point or an element")),
        },
        Action::Swipe(sw) => s.ui().and_then(|ui| {
            ui.swipe(
                (sw.from.x, sw.from.y),
                (sw.to.x, sw.to.y),
                Duration::from_millis(sw.duration_ms),
            )?;
            Ok(Outcome::pass(
                format!(
                    "swiped ({}, {}) to ({}, {}) in {} ms",
                    sw.from.x, sw.from.y, sw.to.x, sw.to.y, sw.duration_ms
                ),
                None,
            ))
        }),
        Action::InputText(t) => s.ui().and_then(|ui| {
            ui.input_text(&t.text)?;
            Ok(Outcome::pass(format!("typed {:?}", t.text), None))
        }),
        Action::TapElement(e) => s.tap_element(
            &e.selector,
            step.timeout_ms.unwrap_or(tc.defaults.timeout_ms),
        ),
        Action::VerifyElement(v) => {
            s.verify_element(v, step.timeout_ms.unwrap_or(tc.defaults.timeout_ms))
        }
        Action::LaunchApp(a) => s.ui().and_then(|ui| {
            ui.launch_app(&a.package, a.activity.as_deref())?;
            Ok(Outcome::pass(format!("launched {}", a.package), None))
        }),
        Action::StopApp(p) => s.ui().and_then(|ui| {
            ui.stop_app(&p.package)?;
            Ok(Outcome::pass(format!("stopped {}", p.package), None))
        }),
        Action::InstallApp(i) => s.ui().and_then(|ui| {
            ui.install_app(&i.apk)?;
            Ok(Outcome::pass(format!("installed {}", i.apk), None))
        }),
        Action::Shell(sh) => s.shell(sh, step.timeout_ms.unwrap_or(DEFAULT_SHELL_TIMEOUT_MS)),
    };
    match result {
        Ok(o) => o,
        Err(Abort::Error(reason)) => Outcome::error(reason),
        Err(Abort::Cancelled(frame)) => Outcome::cancelled(frame),
    }
}

/// How long a `shell` step's command may run when the step gives no `timeout_ms`.
pub const DEFAULT_SHELL_TIMEOUT_MS: u64 = 30_000;

/// Compiles a `serial_expect` pattern (bounded in size: patterns come from test authors).
pub fn console_pattern(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            format!(
                "not a valid regular expression: {}",
                text.lines().last().unwrap_or_default().trim()
            )
        })
}

/// A frame for the screenshot of a step that looked at none; `None` without video or on error.
pub(super) fn grab_quietly(ctx: &RunContext<'_>) -> Option<Frame> {
    ctx.device.video().and_then(|v| v.grab().ok())
}

/// The JPEG of a screenshot; `None` if encoding fails (the step result is worth more than its
/// picture).
pub(super) fn encode_screenshot(frame: &Frame, quality: u8) -> Option<Vec<u8>> {
    crate::jpeg::encode(frame, quality, crate::jpeg::JpegProfile::Stored).ok()
}

struct Steps<'c, 'a> {
    ctx: &'c RunContext<'a>,
    tc: &'c TestCase,
}

fn region_text(region: Option<Rect>) -> String {
    match region {
        Some(r) => format!("region {}x{}+{}+{}", r.width, r.height, r.x, r.y),
        None => "the frame".to_owned(),
    }
}

impl<'a> Steps<'_, 'a> {
    fn now(&self) -> u64 {
        self.ctx.clock.now_us()
    }

    fn sleep_ms(&self, ms: u64) -> StepResult<()> {
        sleep(self.ctx.clock, self.ctx.cancel, Duration::from_millis(ms)).map_err(Abort::from)
    }

    /// Sleeps one poll interval; a cancel keeps the last frame for the screenshot.
    fn poll_pause(&self, ms: u64, last: &Frame) -> StepResult<()> {
        sleep(self.ctx.clock, self.ctx.cancel, Duration::from_millis(ms)).map_err(|e| match e {
            NavError::Cancelled => Abort::Cancelled(Some(last.clone())),
            e => Abort::from(e),
        })
    }

    fn video(&self) -> StepResult<&'a dyn VideoCapture> {
        self.ctx
            .device
            .video()
            .ok_or_else(|| Abort::Error("the device has no video capture".into()))
    }

    fn remote(&self) -> StepResult<&'a dyn RemoteControl> {
        self.ctx
            .device
            .remote()
            .ok_or_else(|| Abort::Error("the device has no remote control".into()))
    }

    fn console(&self) -> StepResult<&'a dyn Console> {
        self.ctx
            .device
            .console()
            .ok_or_else(|| Abort::Error("the device has no console".into()))
    }

    fn serial_send(&self, t: &crate::testcase::SerialSendStep) -> StepResult<Outcome> {
        let console = self.console()?;
        let mut bytes = t.text.clone().into_bytes();
        if t.newline {
            bytes.push(b'\n');
        }
        console.send(&bytes)?;
        Ok(Outcome::pass(
            format!("sent {:?} to the console", String::from_utf8_lossy(&bytes)),
            grab_quietly(self.ctx),
        ))
    }

    /// Looks through the console lines from `from` on (and the line being written) for the
    /// pattern, waiting for new output until `timeout_ms` passes. A match moves `from` past the
    /// matching line; named groups that are numbers become measurements.
    fn serial_expect(
        &self,
        x: &crate::testcase::SerialExpectStep,
        timeout_ms: u64,
        from: &mut u64,
    ) -> StepResult<Outcome> {
        let console = self.console()?;
        let re = console_pattern(&x.pattern).map_err(Abort::Error)?;
        let deadline = std::time::Instant::now() + Duration::from_millis(timeout_ms);
        let mut cursor = *from;
        let mut missed = 0;
        let mut last_line = String::new();
        loop {
            if self.ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(Abort::Cancelled(None));
            }
            let read = console.read_since(cursor)?;
            missed += read.missed;
            let found = read
                .lines
                .iter()
                .map(|l| (l.text.as_str(), l.seq + 1))
                .chain(std::iter::once((read.partial.as_str(), read.next + 1)))
                .find_map(|(text, next)| re.captures(text).map(|c| (text, next, c)));
            if let Some((text, next, caps)) = found {
                *from = next;
                let mut o = Outcome::pass(
                    format!("console matched /{}/: {text:?}", x.pattern),
                    grab_quietly(self.ctx),
                );
                for name in re.capture_names().flatten() {
                    if let Some(v) = caps
                        .name(name)
                        .and_then(|m| m.as_str().trim().parse::<f64>().ok())
                    {
                        o = o.measure(name, v);
                    }
                }
                return Ok(o);
            }
            if let Some(l) = read.lines.last() {
                last_line.clone_from(&l.text);
            }
            cursor = read.next;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let mut reason = format!(
                    "no console output matched /{}/ within {timeout_ms} ms",
                    x.pattern
                );
                if !last_line.is_empty() {
                    reason.push_str(&format!(" (last line: {last_line:?})"));
                }
                if missed > 0 {
                    reason.push_str(&format!("; {missed} older lines were no longer held"));
                }
                return Ok(Outcome::fail(reason, grab_quietly(self.ctx)));
            }
            console.wait(cursor, left.min(Duration::from_millis(100)))?;
        }
    }

    fn ui(&self) -> StepResult<&'a dyn AndroidUi> {
        self.ctx
            .device
            .android_ui()
            .ok_or_else(|| Abort::Error("the device has no touch screen".into()))
    }

    /// Dumps the UI hierarchy until `selector` matches (`want_present`) or no longer matches,
    /// or `timeout_ms` passes. `Ok(Ok(node))` when present was wanted and found; `Ok(Err(_))`
    /// when the wait ran out (with the closest elements when it wanted one present).
    fn wait_element(
        &self,
        selector: &Selector,
        want_present: bool,
        timeout_ms: u64,
    ) -> StepResult<Result<Option<UiNode>, NotFound>> {
        let ui = self.ui()?;
        let deadline = self.now() + timeout_ms * 1000;
        let pause = self.ctx.options.poll_interval_ms.max(MIN_UI_POLL_MS);
        loop {
            let xml = ui.ui_dump()?;
            let nodes = uiautomator::parse(&xml).map_err(|e| Abort::Error(e.to_string()))?;
            match (uiautomator::find(&nodes, selector), want_present) {
                (Ok(n), true) => return Ok(Ok(Some(n.clone()))),
                (Err(_), false) => return Ok(Ok(None)),
                (found, _) => {
                    if self.now() >= deadline {
                        return Ok(Err(match found {
                            Err(nf) => nf,
                            Ok(_) => NotFound {
                                selector: selector.clone(),
                                closest: Vec::new(),
                            },
                        }));
                    }
                }
            }
            self.sleep_ms(pause)?;
        }
    }

    fn tap_element(&self, selector: &Selector, timeout_ms: u64) -> StepResult<Outcome> {
        match self.wait_element(selector, true, timeout_ms)? {
            Ok(Some(node)) => {
                let (x, y) = node.center();
                self.ui()?.tap(x, y)?;
                Ok(Outcome::pass(
                    format!("tapped {} at ({x}, {y})", node.label()),
                    None,
                ))
            }
            Ok(None) => Ok(Outcome::error("element lookup returned nothing")),
            Err(nf) => Ok(Outcome::fail(
                format!("{nf} within {timeout_ms} ms"),
                grab_quietly(self.ctx),
            )),
        }
    }

    fn verify_element(
        &self,
        v: &crate::testcase::VerifyElementStep,
        timeout_ms: u64,
    ) -> StepResult<Outcome> {
        let present = v.state == ElementState::Present;
        match self.wait_element(&v.selector, present, timeout_ms)? {
            Ok(Some(node)) => Ok(Outcome::pass(
                format!(
                    "{} is present at {}x{}+{}+{}",
                    node.label(),
                    node.bounds.width,
                    node.bounds.height,
                    node.bounds.x,
                    node.bounds.y
                ),
                None,
            )),
            Ok(None) => Ok(Outcome::pass(
                format!("no element with {}", v.selector),
                None,
            )),
            Err(nf) if present => Ok(Outcome::fail(
                format!("{nf} within {timeout_ms} ms"),
                grab_quietly(self.ctx),
            )),
            Err(_) => Ok(Outcome::fail(
                format!(
                    "an element with {} is still present after {timeout_ms} ms",
                    v.selector
                ),
                grab_quietly(self.ctx),
            )),
        }
    }

    fn shell(&self, sh: &crate::testcase::ShellStep, timeout_ms: u64) -> StepResult<Outcome> {
        let shell = self
            .ctx
            .device
            .shell()
            .ok_or_else(|| Abort::Error("the device has no shell".into()))?;
        let pattern = match &sh.expect_output {
            Some(p) => Some(console_pattern(p).map_err(Abort::Error)?),
            None => None,
        };
        let out = shell.run(&sh.command, Duration::from_millis(timeout_ms))?;
        let shown = |s: &str| {
            let s = s.trim();
            if s.chars().count() > 200 {
                format!("{}…", s.chars().take(200).collect::<String>())
            } else {
                s.to_owned()
            }
        };
        let mut problems = Vec::new();
        if out.exit_code != sh.exit_code {
            problems.push(format!(
                "exited with {} (expected {}){}",
                out.exit_code,
                sh.exit_code,
                if out.stderr.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", shown(&out.stderr))
                }
            ));
        }
        if let Some(re) = &pattern
            && !re.is_match(&out.stdout)
            && !re.is_match(&out.stderr)
        {
            problems.push(format!(
                "output {:?} does not match /{}/",
                shown(&out.stdout),
                re.as_str()
            ));
        }
        let o = if problems.is_empty() {
            Outcome::pass(
                format!(
                    "`{}` exited with {}: {:?}",
                    sh.command,
                    out.exit_code,
                    shown(&out.stdout)
                ),
                None,
            )
        } else {
            Outcome::fail(format!("`{}` {}", sh.command, problems.join("; ")), None)
        };
        Ok(o.measure("exit_code", f64::from(out.exit_code)))
    }

    /// Looks through every console line from `start` (the run's first) on, and the line being
    /// written. Seen: passes on the first match, waiting for new output up to `timeout_ms`.
    /// Absent: fails on the first match, passes otherwise (no wait).
    fn verify_log(
        &self,
        x: &crate::testcase::VerifyLogStep,
        timeout_ms: u64,
        start: u64,
    ) -> StepResult<Outcome> {
        let console = self.console()?;
        let re = console_pattern(&x.pattern).map_err(Abort::Error)?;
        let deadline = std::time::Instant::now() + Duration::from_millis(timeout_ms);
        let mut cursor = start;
        let mut missed = 0;
        let mut looked = 0u64;
        loop {
            if self.ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(Abort::Cancelled(None));
            }
            let read = console.read_since(cursor)?;
            missed += read.missed;
            looked += read.lines.len() as u64;
            let found = read
                .lines
                .iter()
                .map(|l| l.text.as_str())
                .chain(std::iter::once(read.partial.as_str()))
                .find(|text| re.is_match(text));
            let missed_note = if missed > 0 {
                format!("; {missed} older lines of the run were no longer held")
            } else {
                String::new()
            };
            match (found, x.absent) {
                (Some(text), true) => {
                    return Ok(Outcome::fail(
                        format!("console showed /{}/: {text:?}", x.pattern),
                        grab_quietly(self.ctx),
                    ));
                }
                (Some(text), false) => {
                    return Ok(Outcome::pass(
                        format!("console showed /{}/: {text:?}", x.pattern),
                        grab_quietly(self.ctx),
                    ));
                }
                (None, true) if missed > 0 => {
                    return Err(Abort::Error(format!(
                        "cannot tell whether /{}/ was absent: {missed} older lines of the run \
                         were no longer held",
                        x.pattern
                    )));
                }
                (None, true) => {
                    return Ok(Outcome::pass(
                        format!(
                            "no console line of the run matched /{}/ ({looked} lines)",
                            x.pattern
                        ),
                        grab_quietly(self.ctx),
                    )
                    .measure("lines", looked as f64));
                }
                (None, false) => {}
            }
            cursor = read.next;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(Outcome::fail(
                    format!(
                        "no console line of the run matched /{}/ ({looked} lines, waited \
                         {timeout_ms} ms){missed_note}",
                        x.pattern
                    ),
                    grab_quietly(self.ctx),
                ));
            }
            console.wait(cursor, left.min(Duration::from_millis(100)))?;
        }
    }

    fn audio(&self) -> StepResult<&'a dyn AudioCapture> {
        self.ctx
            .device
            .audio()
            .ok_or_else(|| Abort::Error("the device has no audio capture".into()))
    }

    fn reference(&self, name: &str) -> StepResult<Arc<Gray>> {
        self.ctx
            .references
            .get(name)
            .ok_or_else(|| Abort::Error(format!("unknown reference image {name:?}")))
    }

    fn goto(
        &self,
        screen: &str,
        timeout_ms: Option<u64>,
        observations: &mut Vec<EdgeObservation>,
    ) -> Outcome {
        let Some(tree) = self.ctx.nav else {
            return Outcome::error("goto needs a navigation tree for the device model");
        };
        let mut options = self.ctx.options.goto;
        options.timeout_ms = timeout_ms.unwrap_or(self.tc.defaults.goto_timeout_ms);
        let nav = Navigator {
            tree,
            device: self.ctx.device,
            references: self.ctx.references,
            clock: self.ctx.clock,
            cancel: self.ctx.cancel,
            options,
        };
        match nav.goto(screen) {
            Ok(report) => {
                observations.extend(report.observations.iter().cloned());
                let how = if report.edges_taken.is_empty() {
                    "already there".to_owned()
                } else {
                    format!("via {}", report.edges_taken.join(", "))
                };
                let replans = if report.replans > 0 {
                    format!(", {} re-plans", report.replans)
                } else {
                    String::new()
                };
                Outcome::pass(
                    format!("reached {screen} from {} {how}{replans}", report.started_on),
                    Some(report.frame),
                )
                .measure("nav_ms", report.duration_ms)
                .measure("edges", report.edges_taken.len() as f64)
                .measure("replans", f64::from(report.replans))
            }
            Err(failure) => {
                observations.extend(failure.observations.iter().cloned());
                let verdict = match &failure.error {
                    NavError::Cancelled => return Outcome::cancelled(failure.frame),
                    NavError::UnknownScreen(_)
                    | NavError::Unreachable { .. }
                    | NavError::NotLocated
                    | NavError::Lost { .. }
                    | NavError::Timeout { .. } => Verdict::Fail,
                    _ => Verdict::Error,
                };
                let seen = match &failure.last_seen {
                    Some(s) => format!(" (last seen on {s})"),
                    None => String::new(),
                };
                Outcome::new(
                    verdict,
                    format!("cannot go to {screen}: {}{seen}", failure.error),
                    failure.frame,
                )
            }
        }
    }

    fn press(&self, p: &crate::testcase::PressStep) -> StepResult<Outcome> {
        let remote = self.remote()?;
        let key = p.key.key().map_err(|e| Abort::Error(e.message))?;
        for n in 0..p.repeat {
            if n > 0 {
                self.sleep_ms(p.interval_ms)?;
            }
            match p.hold_ms {
                Some(h) => remote.long_press(key, Duration::from_millis(h))?,
                None => remote.press(key)?,
            }
        }
        let what = match (p.hold_ms, p.repeat) {
            (Some(h), 1) => format!("held {key} for {h} ms"),
            (Some(h), n) => format!("held {key} for {h} ms, {n} times"),
            (None, 1) => format!("pressed {key}"),
            (None, n) => format!("pressed {key} {n} times"),
        };
        Ok(Outcome::pass(what, None))
    }

    /// Polls frames until `watch` decides; `present` says whether the thing is in a frame and
    /// gives its score.
    fn watch(
        &self,
        expectation: Expectation,
        timeout_ms: u64,
        mut present: impl FnMut(&Gray) -> StepResult<(bool, f64)>,
    ) -> StepResult<Watched> {
        let video = self.video()?;
        let started = self.now();
        let mut watch = Watch::new(expectation, started, timeout_ms.saturating_mul(1000));
        let mut best = f64::NEG_INFINITY;
        // The source repeats a frame (same `seq`) while nothing changes: judge it once.
        let mut memo: Option<(u64, (bool, f64))> = None;
        loop {
            let frame = video.grab()?;
            // The clock's reading, not the frame's capture time: a frozen source still counts
            // as looked at.
            let at = self.now();
            let (is_present, score) = match memo {
                Some((seq, judged)) if seq == frame.seq => judged,
                _ => {
                    let judged = present(&frame.to_gray())?;
                    memo = Some((frame.seq, judged));
                    judged
                }
            };
            best = best.max(score);
            let status = watch.observe(at, is_present);
            let status = if status.is_final() {
                status
            } else {
                watch.tick(self.now())
            };
            match status {
                WatchStatus::Pending => {
                    self.poll_pause(self.ctx.options.poll_interval_ms, &frame)?
                }
                WatchStatus::Passed {
                    appeared_at_us,
                    disappeared_at_us,
                } => {
                    return Ok(Watched {
                        passed: true,
                        frame,
                        best,
                        last: score,
                        appeared_ms: appeared_at_us.map(|t| ms_between(started, t)),
                        disappeared_ms: disappeared_at_us.map(|t| ms_between(started, t)),
                    });
                }
                WatchStatus::TimedOut { appeared_at_us } => {
                    return Ok(Watched {
                        passed: false,
                        frame,
                        best,
                        last: score,
                        appeared_ms: appeared_at_us.map(|t| ms_between(started, t)),
                        disappeared_ms: None,
                    });
                }
            }
        }
    }

    fn verify_image(
        &self,
        v: &crate::testcase::VerifyImageStep,
        timeout_ms: u64,
    ) -> StepResult<Outcome> {
        let reference = self.reference(&v.reference)?;
        let threshold = v.threshold.unwrap_or(self.tc.defaults.threshold);
        let expectation = match v.mode {
            ImageMode::Appear => Expectation::Appear,
            ImageMode::Disappear => Expectation::Disappear,
            ImageMode::AppearThenDisappear => Expectation::AppearThenDisappear,
        };
        let w = self.watch(expectation, timeout_ms, |gray| {
            let m = verify::find_template(gray, &reference, v.region)?;
            Ok((f64::from(m.score) >= threshold, f64::from(m.score)))
        })?;
        let name = &v.reference;
        let (verdict, reason) = match (v.mode, w.passed) {
            (ImageMode::Appear, true) => (
                Verdict::Pass,
                format!("{name} found (score {:.3} >= {threshold})", w.last),
            ),
            (ImageMode::Appear, false) => (
                Verdict::Fail,
                format!(
                    "{name} did not appear within {timeout_ms} ms (best score {:.3} < {threshold})",
                    w.best
                ),
            ),
            (ImageMode::Disappear, true) => (
                Verdict::Pass,
                format!("{name} is gone (score {:.3} < {threshold})", w.last),
            ),
            (ImageMode::Disappear, false) => (
                Verdict::Fail,
                format!(
                    "{name} did not disappear within {timeout_ms} ms (score {:.3} >= {threshold})",
                    w.last
                ),
            ),
            (ImageMode::AppearThenDisappear, true) => {
                (Verdict::Pass, format!("{name} appeared and disappeared"))
            }
            (ImageMode::AppearThenDisappear, false) if w.appeared_ms.is_some() => (
                Verdict::Fail,
                format!("{name} appeared but did not disappear within {timeout_ms} ms"),
            ),
            (ImageMode::AppearThenDisappear, false) => (
                Verdict::Fail,
                format!(
                    "{name} did not appear within {timeout_ms} ms (best score {:.3} < {threshold})",
                    w.best
                ),
            ),
        };
        let mut o = Outcome::new(verdict, reason, Some(w.frame))
            .measure("score", w.last)
            .measure("best_score", w.best);
        if let Some(t) = w.appeared_ms {
            o = o.measure("appeared_ms", t);
        }
        if let Some(t) = w.disappeared_ms {
            o = o.measure("disappeared_ms", t);
        }
        Ok(o)
    }

    fn verify_black(
        &self,
        region: Option<Rect>,
        black: bool,
        timeout_ms: u64,
    ) -> StepResult<Outcome> {
        let mut luma = 0.0;
        let w = self.watch(Expectation::Appear, timeout_ms, |gray| {
            let r = verify::is_black(gray, region, BlackParams::default())?;
            luma = f64::from(r.mean_luma);
            Ok((r.black == black, f64::from(r.dark_fraction)))
        })?;
        let (what, not) = if black {
            ("black", "not black")
        } else {
            ("not black", "black")
        };
        let o = if w.passed {
            Outcome::pass(format!("{} is {what}", region_text(region)), Some(w.frame))
        } else {
            Outcome::fail(
                format!("{} still {not} after {timeout_ms} ms", region_text(region)),
                Some(w.frame),
            )
        };
        Ok(o.measure("mean_luma", luma)
            .measure("dark_fraction", w.last))
    }

    fn verify_motion(&self, region: Option<Rect>, duration_ms: u64) -> StepResult<Outcome> {
        let video = self.video()?;
        let until = self.now().saturating_add(duration_ms.saturating_mul(1000));
        let mut prev = video.grab()?;
        let mut prev_gray = prev.to_gray();
        let mut largest: f32 = 0.0;
        loop {
            self.poll_pause(self.ctx.options.poll_interval_ms, &prev)?;
            let frame = video.grab()?;
            let gray = frame.to_gray();
            let m = verify::motion(
                &prev_gray,
                &gray,
                region,
                self.ctx.options.motion_min_difference,
            )?;
            largest = largest.max(m.difference);
            if m.moving {
                return Ok(Outcome::pass(
                    format!(
                        "motion in {} (difference {:.1})",
                        region_text(region),
                        m.difference
                    ),
                    Some(frame),
                )
                .measure("difference", f64::from(m.difference)));
            }
            if self.now() >= until {
                return Ok(Outcome::fail(
                    format!(
                        "no motion in {} for {duration_ms} ms (largest difference {largest:.2} < {})",
                        region_text(region),
                        self.ctx.options.motion_min_difference
                    ),
                    Some(frame),
                )
                .measure("difference", f64::from(largest)));
            }
            prev = frame;
            prev_gray = gray;
        }
    }

    fn verify_not_frozen(&self, region: Option<Rect>, duration_ms: u64) -> StepResult<Outcome> {
        let video = self.video()?;
        let started = self.now();
        let until = started.saturating_add(duration_ms.saturating_mul(1000));
        let first = video.grab()?;
        let mut prev_gray = first.to_gray();
        let mut still_since = started;
        let mut longest_still_us = 0;
        let mut changes = 0u32;
        let mut last = first;
        loop {
            self.poll_pause(self.ctx.options.poll_interval_ms, &last)?;
            let frame = video.grab()?;
            let at = self.now();
            let gray = frame.to_gray();
            let frozen = verify::is_frozen(
                &[prev_gray, gray.clone()],
                region,
                self.ctx.options.motion_min_difference,
            )?;
            if frozen {
                longest_still_us = longest_still_us.max(at - still_since);
            } else {
                changes += 1;
                still_since = at;
            }
            prev_gray = gray;
            last = frame;
            if at >= until {
                break;
            }
        }
        let longest_ms = longest_still_us as f64 / 1000.0;
        let o = if changes > 0 {
            Outcome::pass(
                format!(
                    "the picture in {} changed {changes} times in {duration_ms} ms",
                    region_text(region)
                ),
                Some(last),
            )
        } else {
            Outcome::fail(
                format!(
                    "the picture in {} is frozen: no change for {duration_ms} ms",
                    region_text(region)
                ),
                Some(last),
            )
        };
        Ok(o.measure("frozen_ms", longest_ms)
            .measure("changes", f64::from(changes)))
    }

    fn verify_audio(&self, a: &crate::testcase::VerifyAudioStep) -> StepResult<Outcome> {
        let audio = self.audio()?;
        let duration_ms = a.duration_ms.unwrap_or(self.tc.defaults.observe_ms);
        let chunk_ms = self.ctx.options.audio_chunk_ms.max(1);
        let mut samples: Vec<i16> = Vec::new();
        let mut sample_rate = 0;
        let mut left = duration_ms;
        while left > 0 {
            if self.ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(Abort::Cancelled(None));
            }
            let piece = left.min(chunk_ms);
            let chunk = audio.read(Duration::from_millis(piece))?;
            sample_rate = chunk.sample_rate;
            samples.extend_from_slice(&chunk.samples);
            left -= piece;
        }
        let frame = grab_quietly(self.ctx);
        let dbfs = verify::rms_dbfs(&samples);
        let silent = verify::is_silent(&samples, self.ctx.options.silence_dbfs);
        let freq = verify::dominant_frequency(&samples, sample_rate);
        let mut o = match a.expect {
            AudioExpect::Silent if silent => {
                Outcome::pass(format!("silent ({dbfs:.1} dBFS)"), frame)
            }
            AudioExpect::Silent => {
                Outcome::fail(format!("expected silence, heard {dbfs:.1} dBFS"), frame)
            }
            AudioExpect::Present if silent => Outcome::fail(
                format!("expected sound, but it is silent ({dbfs:.1} dBFS) for {duration_ms} ms"),
                frame,
            ),
            AudioExpect::Present => match (a.frequency_hz, freq) {
                (None, _) => Outcome::pass(format!("sound present ({dbfs:.1} dBFS)"), frame),
                (Some(want), Some(got)) => {
                    let tolerance = a.tolerance_hz.unwrap_or((want * 0.05).max(10.0));
                    if (f64::from(got) - want).abs() <= tolerance {
                        Outcome::pass(
                            format!("tone at {got:.1} Hz (expected {want} ± {tolerance} Hz)"),
                            frame,
                        )
                    } else {
                        Outcome::fail(
                            format!("tone at {got:.1} Hz, expected {want} ± {tolerance} Hz"),
                            frame,
                        )
                    }
                }
                (Some(want), None) => Outcome::fail(
                    format!("no dominant frequency found (expected {want} Hz)"),
                    frame,
                ),
            },
        };
        o = o.measure("rms_dbfs", f64::from(dbfs));
        if let Some(f) = freq {
            o = o.measure("frequency_hz", f64::from(f));
        }
        Ok(o)
    }

    /// Presses the key and follows the frames: the first black frame after the press, then the
    /// first good frame after it. The zap time is key press to that good frame (see
    /// [`verify::zap_time`], which this computes incrementally so frames need not be kept).
    fn measure_zap(
        &self,
        z: &crate::testcase::MeasureZapStep,
        timeout_ms: u64,
    ) -> StepResult<Outcome> {
        let remote = self.remote()?;
        let video = self.video()?;
        let key = z.key.key().map_err(|e| Abort::Error(e.message))?;
        let pressed_at = self.now();
        remote.press(key)?;
        let until = pressed_at.saturating_add(timeout_ms.saturating_mul(1000));
        let mut black_since: Option<u64> = None;
        let mut memo: Option<(u64, bool)> = None;
        loop {
            let frame = video.grab()?;
            let at = frame.captured_at_us;
            if at >= pressed_at {
                let black = match memo {
                    Some((seq, black)) if seq == frame.seq => black,
                    _ => {
                        let black =
                            verify::is_black(&frame.to_gray(), z.region, BlackParams::default())?
                                .black;
                        memo = Some((frame.seq, black));
                        black
                    }
                };
                match (black_since, black) {
                    (None, true) => black_since = Some(at),
                    (Some(since), false) => {
                        let zap_ms = ms_between(pressed_at, at);
                        return Ok(Outcome::pass(
                            format!("zap with {key} took {zap_ms:.0} ms"),
                            Some(frame),
                        )
                        .measure("zap_ms", zap_ms)
                        .measure("black_ms", ms_between(since, at)));
                    }
                    _ => {}
                }
            }
            if self.now() >= until {
                let reason = match black_since {
                    None => format!("no black screen within {timeout_ms} ms of pressing {key}"),
                    Some(_) => format!("still black {timeout_ms} ms after pressing {key}"),
                };
                return Ok(Outcome::fail(reason, Some(frame)));
            }
            self.poll_pause(self.ctx.options.zap_poll_interval_ms, &frame)?;
        }
    }
}

/// What [`Steps::watch`] saw.
struct Watched {
    passed: bool,
    /// The deciding (or last) frame.
    frame: Frame,
    best: f64,
    /// Score of the deciding frame.
    last: f64,
    appeared_ms: Option<f64>,
    disappeared_ms: Option<f64>,
}
