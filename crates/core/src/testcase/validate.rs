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
                         verify_not_black, measure_zap, serial_expect and verify_log)"
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
