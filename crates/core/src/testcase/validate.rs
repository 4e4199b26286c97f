//! Semantic validation of a test case against what it will run with: the navigation tree, the
//! reference images, the frame size and the device's capabilities. Every problem is reported,
//! each with the path of the offending field as written in the YAML
//! (`steps[3].verify_image.region`).

use crate::{
    fleet::Capability,
    frame::Rect,
    nav::{
        NavigationTree, ReferenceImages, Resolution,
        tree::{MAX_DELAY_MS, MAX_ID_LEN, check_reference, check_region, check_threshold},
    },
    uiautomator::Selector,
    validate::{self, ValidationError},
};

use super::{Action, ProblemCode, Step, TestCase, step_capabilities};

/// Longest timeout, wait or observation a step may ask for (10 minutes).
pub const MAX_STEP_MS: u64 = 600_000;
pub const MAX_REPEAT: u32 = 10_000;
pub const MAX_PRESS_REPEAT: u32 = 1_000;
/// Deepest nesting of `repeat` steps.
pub const MAX_DEPTH: usize = 4;
/// Longest `serial_send` text.
pub const MAX_SERIAL_TEXT: usize = 4_096;
/// Longest `input_text` text, element attribute, and `shell` command.
pub const MAX_INPUT_TEXT: usize = 1_000;
pub const MAX_SHELL_COMMAND: usize = 4_096;
/// Longest swipe.
pub const MAX_SWIPE_MS: u64 = 60_000;
pub const MAX_NAME_LEN: usize = 200;
pub const MAX_DESCRIPTION_LEN: usize = 4_000;

/// What a test case is validated against. Every part is optional: leave out what is not known
/// yet (e.g. the device's capabilities when a test is saved rather than run).
#[derive(Clone, Copy, Default)]
pub struct ValidationEnv<'a> {
    /// The navigation tree of the device model; `goto` steps need one.
    pub nav: Option<&'a NavigationTree>,
    /// The reference images; when given, every `verify_image` reference must exist and fit.
    pub references: Option<&'a dyn ReferenceImages>,
    /// The device's capabilities; when given, every step must be runnable.
    pub capabilities: Option<&'a [Capability]>,
    /// The frame size; defaults to the navigation tree's resolution.
    pub resolution: Option<Resolution>,
    /// The navigation tree is not known yet (a test case being saved before its model's tree):
    /// `goto` steps without `nav` are then not an error; they are checked again before a run.
    pub nav_pending: bool,
    /// The device model that has no navigation tree (for a clearer message on `goto`).
    pub model_without_tree: Option<&'a str>,
}

struct Checker<'a> {
    env: ValidationEnv<'a>,
    resolution: Option<Resolution>,
    errs: Vec<(ProblemCode, ValidationError)>,
}

impl TestCase {
    /// Checks the test case against `env`, returning every problem found.
    pub fn validate(&self, env: &ValidationEnv<'_>) -> Result<(), Vec<ValidationError>> {
        let errs = self.problems(env);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.into_iter().map(|(_, e)| e).collect())
        }
    }

    /// Every problem found against `env`, each with its code.
    pub fn problems(&self, env: &ValidationEnv<'_>) -> Vec<(ProblemCode, ValidationError)> {
        let mut c = Checker {
            env: *env,
            resolution: env.resolution.or(env.nav.map(|n| n.resolution)),
            errs: Vec::new(),
        };
        if let Err(e) = validate::label("name", &self.name, MAX_NAME_LEN) {
            c.invalid(e);
        }
        // Descriptions are prose: line breaks and tabs are fine (YAML `>` and `|` blocks).
        if let Err(e) = validate::optional_text(
            "description",
            &self.description.replace(['\n', '\t'], " "),
            MAX_DESCRIPTION_LEN,
        ) {
            c.invalid(e);
        }
        if let Some(model) = &self.device_model {
            if let Err(e) = validate::slug("device_model", model, MAX_ID_LEN) {
                c.invalid(e);
            }
            if let Some(nav) = env.nav
                && nav.model != *model
            {
                c.coded(
                    ProblemCode::ModelMismatch,
                    ValidationError::new(
                        "device_model",
                        format!(
                            "the test is for {model:?} but the navigation tree is for {:?}",
                            nav.model
                        ),
                    ),
                );
            }
        }
        let d = &self.defaults;
        for (field, v) in [
            ("defaults.timeout_ms", d.timeout_ms),
            ("defaults.goto_timeout_ms", d.goto_timeout_ms),
            ("defaults.observe_ms", d.observe_ms),
        ] {
            c.duration(field, v);
        }
        c.threshold("defaults.threshold", d.threshold);
        if self.steps.is_empty() {
            c.err("steps", "a test case needs at least one step");
        }
        c.steps("", &self.steps, 1);
        c.errs
    }
}

impl Checker<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.invalid(ValidationError::new(field, message));
    }

    fn coded(&mut self, code: ProblemCode, e: ValidationError) {
        self.errs.push((code, e));
    }

    fn invalid(&mut self, e: ValidationError) {
        self.coded(ProblemCode::InvalidValue, e);
    }

    fn invalid_all(&mut self, errs: Vec<ValidationError>) {
        for e in errs {
            self.invalid(e);
        }
    }

    fn threshold(&mut self, field: &str, t: f64) {
        let mut errs = Vec::new();
        check_threshold(field, t, &mut errs);
        self.invalid_all(errs);
    }

    fn duration(&mut self, field: &str, ms: u64) {
        if ms == 0 || ms > MAX_STEP_MS {
            self.err(field, format!("must be between 1 and {MAX_STEP_MS} ms"));
        }
    }

    fn region(&mut self, field: &str, region: Option<&Rect>) {
        match self.resolution {
            Some(res) => {
                let mut errs = Vec::new();
                check_region(field, region, res, &mut errs);
                self.invalid_all(errs);
            }
            None => {
                if let Some(r) = region
                    && (r.width == 0 || r.height == 0)
                {
                    self.err(field, "region must not be empty");
                }
            }
        }
    }

    fn key(&mut self, field: &str, key: &crate::nav::KeyName) {
        if let Err(e) = key.key() {
            self.err(field, e.message);
        }
    }

    /// A point on the screen (inside the frame when its size is known).
    fn point(&mut self, field: &str, x: u32, y: u32) {
        if let Some(res) = self.resolution
            && (x >= res.width || y >= res.height)
        {
            self.err(
                field,
                format!(
                    "({x}, {y}) is outside the {}x{} screen",
                    res.width, res.height
                ),
            );
        }
    }

    /// An element selector: at least one attribute, none empty or too long.
    fn selector(&mut self, field: &str, sel: &Selector) {
        if sel.is_empty() {
            self.err(
                field,
                "name the element by text, resource_id or content_desc",
            );
        }
        for (name, v) in [
            ("text", &sel.text),
            ("resource_id", &sel.resource_id),
            ("content_desc", &sel.content_desc),
        ] {
            if let Some(v) = v
                && (v.is_empty() || v.chars().count() > MAX_INPUT_TEXT)
            {
                self.err(
                    format!("{field}.{name}"),
                    format!("must be 1 to {MAX_INPUT_TEXT} characters"),
                );
            }
        }
    }

    /// An Android package name (`com.example.app`).
    fn package(&mut self, field: &str, p: &str) {
        let ok = !p.is_empty()
            && p.len() <= 255
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !part.starts_with(|c: char| c.is_ascii_digit())
            });
        if !ok {
            self.err(
                field,
                format!("{p:?} is not an android package name (com.example.app)"),
            );
        }
    }

    fn steps(&mut self, prefix: &str, steps: &[Step], depth: usize) {
        for (i, s) in steps.iter().enumerate() {
            let at = if prefix.is_empty() {
                format!("steps[{i}]")
            } else {
                format!("{prefix}.steps[{i}]")
            };
            self.step(&at, s, depth);
        }
    }

    fn step(&mut self, at: &str, s: &Step, depth: usize) {
        let name = s.action.name();
        let here = format!("{at}.{name}");
        if let Some(t) = s.timeout_ms {
            if s.action.takes_timeout() {
                self.duration(&format!("{at}.timeout_ms"), t);
            } else {
                self.err(
                    format!("{at}.timeout_ms"),
                    format!(
                        "{name} takes no timeout (timeout_ms applies to goto, verify_image, verify_black, \
                         verify_not_black, measure_zap, serial_expect, tap, tap_element, verify_element, shell and verify_log)"
                    ),
                );
            }
        }
        if let Some(caps) = self.env.capabilities {
            for need in step_capabilities(&s.action) {
                if !caps.contains(&need) {
                    self.coded(
                        ProblemCode::MissingCapability,
                        ValidationError::new(
                            at,
                            format!(
                                "{name} needs {}, which the device does not have",
                                need.as_str()
                            ),
                        ),
                    );
                }
            }
        }
        match &s.action {
            Action::Goto(g) => match self.env.nav {
                None if self.env.nav_pending => {}
                None => self.coded(ProblemCode::NoNavigationTree, ValidationError::new(&here, match &self.env.model_without_tree {
                    Some(model) => format!("goto needs a navigation tree, and model {model} has none yet (push one first: labwright trees push {model} FILE)"),
                    None => "goto needs a navigation tree for the device model".into(),
                })),
                Some(nav) if nav.screen(&g.screen).is_none() => self.coded(
                    ProblemCode::UnknownScreen,
                    ValidationError::new(&here, format!("unknown screen {:?} in the {} navigation tree", g.screen, nav.model)),
                ),
                Some(nav) if !nav.is_reachable_from_elsewhere(&g.screen) => self.coded(
                    ProblemCode::UnreachableScreen,
                    ValidationError::new(&here, format!("unreachable target screen {:?}: no edge of the navigation tree leads to it", g.screen)),
                ),
                Some(_) => {}
            },
            Action::Press(p) => {
                self.key(&format!("{here}.key"), &p.key);
                if p.repeat == 0 || p.repeat > MAX_PRESS_REPEAT {
                    self.err(format!("{here}.repeat"), format!("must be between 1 and {MAX_PRESS_REPEAT}"));
                }
                if p.interval_ms > MAX_DELAY_MS {
                    self.err(format!("{here}.interval_ms"), format!("must be at most {MAX_DELAY_MS}"));
                }
                if let Some(h) = p.hold_ms
                    && (h == 0 || h > MAX_DELAY_MS)
                {
                    self.err(format!("{here}.hold_ms"), format!("must be between 1 and {MAX_DELAY_MS}"));
                }
            }
            Action::Wait(w) => self.duration(&here, w.ms),
            Action::VerifyImage(v) => {
                if v.reference.trim().is_empty() {
                    self.err(format!("{here}.reference"), "must not be empty");
                } else if let Some(refs) = self.env.references {
                    let region = v.region.or(self.resolution.map(|r| Rect::full(r.width, r.height)));
                    match region {
                        Some(region) => {
                            if let Err(e) = check_reference(refs, &v.reference, region) {
                                let code = if refs.get(&v.reference).is_none() {
                                    ProblemCode::UnknownReference
                                } else {
                                    ProblemCode::ReferenceTooLarge
                                };
                                self.coded(code, e.within(&here));
                            }
                        }
                        None if refs.get(&v.reference).is_none() => self.coded(
                            ProblemCode::UnknownReference,
                            ValidationError::new(
                                format!("{here}.reference"),
                                format!("unknown reference image {:?}", v.reference),
                            ),
                        ),
                        None => {}
                    }
                }
                self.region(&format!("{here}.region"), v.region.as_ref());
                if let Some(t) = v.threshold {
                    self.threshold(&format!("{here}.threshold"), t);
                }
            }
            Action::VerifyBlack(r) | Action::VerifyNotBlack(r) => self.region(&format!("{here}.region"), r.region.as_ref()),
            Action::VerifyMotion(o) | Action::VerifyNotFrozen(o) => {
                self.region(&format!("{here}.region"), o.region.as_ref());
                if let Some(d) = o.duration_ms {
                    self.duration(&format!("{here}.duration_ms"), d);
                }
            }
            Action::VerifyAudio(a) => {
                if let Some(f) = a.frequency_hz {
                    if !(f > 0.0 && f < 24_000.0) {
                        self.err(format!("{here}.frequency_hz"), "must be between 0 and 24000 Hz");
                    }
                    if a.expect == super::AudioExpect::Silent {
                        self.err(format!("{here}.frequency_hz"), "a frequency only makes sense with expect: present");
                    }
                }
                if let Some(t) = a.tolerance_hz {
                    if !(t.is_finite() && t >= 0.0) {
                        self.err(format!("{here}.tolerance_hz"), "must be a non-negative number");
                    }
                    if a.frequency_hz.is_none() {
                        self.err(format!("{here}.tolerance_hz"), "needs frequency_hz");
                    }
                }
                if let Some(d) = a.duration_ms {
                    self.duration(&format!("{here}.duration_ms"), d);
                }
            }
            Action::MeasureZap(z) => {
                self.key(&format!("{here}.key"), &z.key);
                self.region(&format!("{here}.region"), z.region.as_ref());
            }
            Action::Screenshot(sc) => {
                if let Err(e) = validate::slug(&format!("{here}.name"), &sc.name, MAX_ID_LEN) {
                    self.invalid(e);
                }
            }
            Action::SerialSend(t) => {
                if t.text.len() > MAX_SERIAL_TEXT {
                    self.err(format!("{here}.text"), format!("at most {MAX_SERIAL_TEXT} bytes"));
                }
                if t.text.is_empty() && !t.newline {
                    self.err(format!("{here}.text"), "nothing to send (empty text and no newline)");
                }
            }
            Action::SerialExpect(x) => {
                if x.pattern.is_empty() {
                    self.err(format!("{here}.pattern"), "must not be empty");
                } else if let Err(e) = crate::run::console_pattern(&x.pattern) {
                    self.err(format!("{here}.pattern"), e);
                }
            }
            Action::Tap(t) => match (t.x, t.y, t.selector()) {
                (Some(x), Some(y), None) => self.point(&here, x, y),
                (None, None, Some(sel)) => self.selector(&here, &sel),
                (None, None, None) => self.err(&here, "tap needs a point {x, y} or an element {text, resource_id or content_desc}"),
                (_, _, Some(_)) => self.err(&here, "tap takes a point or an element, not both"),
                _ => self.err(&here, "a point needs both x and y"),
            },
            Action::Swipe(sw) => {
                self.point(&format!("{here}.from"), sw.from.x, sw.from.y);
                self.point(&format!("{here}.to"), sw.to.x, sw.to.y);
                if sw.duration_ms == 0 || sw.duration_ms > MAX_SWIPE_MS {
                    self.err(format!("{here}.duration_ms"), format!("must be between 1 and {MAX_SWIPE_MS}"));
                }
            }
            Action::InputText(t) => {
                if t.text.is_empty() {
                    self.err(format!("{here}.text"), "nothing to type");
                } else if t.text.chars().count() > MAX_INPUT_TEXT {
                    self.err(format!("{here}.text"), format!("at most {MAX_INPUT_TEXT} characters"));
                } else if t.text.contains(['\n', '\r', '\0']) || t.text.contains("%s") {
                    self.err(format!("{here}.text"), "cannot hold line breaks, NUL or \"%s\" (android's input reads %s as a space)");
                }
            }
            Action::TapElement(e) => self.selector(&here, &e.selector),
            Action::VerifyElement(v) => self.selector(&here, &v.selector),
            Action::LaunchApp(a) => {
                self.package(&format!("{here}.package"), &a.package);
                if let Some(act) = &a.activity
                    && (act.is_empty()
                        || act.len() > 255
                        || !act.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '$')))
                {
                    self.err(format!("{here}.activity"), "must be an activity name (.MainActivity or com.example/.MainActivity)");
                }
            }
            Action::StopApp(p) => self.package(&format!("{here}.package"), &p.package),
            Action::InstallApp(i) => {
                let a = &i.apk;
                if a.is_empty() || a.len() > 255 || a.starts_with('.') || a.contains(['/', '\\', '\0']) || !a.ends_with(".apk") {
                    self.err(format!("{here}.apk"), "must be the file name of an apk (NAME.apk in the host's apk directory)");
                }
            }
            Action::Shell(sh) => {
                if sh.command.trim().is_empty() {
                    self.err(format!("{here}.command"), "must not be empty");
                } else if sh.command.len() > MAX_SHELL_COMMAND || sh.command.contains('\0') {
                    self.err(format!("{here}.command"), format!("at most {MAX_SHELL_COMMAND} bytes, no NUL"));
                }
                if let Some(p) = &sh.expect_output
                    && let Err(e) = crate::run::console_pattern(p)
                {
                    self.err(format!("{here}.expect_output"), e);
                }
                if !(0..=255).contains(&sh.exit_code) {
                    self.err(format!("{here}.exit_code"), "must be between 0 and 255");
                }
            }
            Action::VerifyLog(x) => {
                if x.pattern.is_empty() {
                    self.err(format!("{here}.pattern"), "must not be empty");
                } else if let Err(e) = crate::run::console_pattern(&x.pattern) {
                    self.err(format!("{here}.pattern"), e);
                }
                if x.absent && s.timeout_ms.is_some() {
                    self.err(
                        format!("{at}.timeout_ms"),
                        "verify_log with absent: true checks the run so far and takes no timeout",
                    );
                }
            }
            Action::Repeat(r) => {
                if r.count == 0 || r.count > MAX_REPEAT {
                    self.err(format!("{here}.count"), format!("must be between 1 and {MAX_REPEAT}"));
                }
                if r.steps.is_empty() {
                    self.err(format!("{here}.steps"), "a repeat needs at least one step");
                }
                if depth >= MAX_DEPTH {
                    self.err(&here, format!("repeats may be nested at most {MAX_DEPTH} deep"));
                } else {
                    self.steps(&here, &r.steps, depth + 1);
                }
            }
        }
    }
}
