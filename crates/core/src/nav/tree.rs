//! The navigation tree of one device model: screens (each with the checks that recognise it on a
//! frame), edges (key presses that lead from one screen to another, optionally reversible) and the
//! learned statistics of every edge. This module holds the data model and its validation; planning
//! is in [`super::plan`] and execution in [`super::goto`].

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt,
};

use serde::{Deserialize, Serialize};

use super::{
    ReferenceImages,
    shorthand::{Scalar, Shorthand, deserialize_shorthand},
};
use crate::{
    controller::Key,
    frame::Rect,
    validate::{self, ValidationError},
};

/// Threshold of an image check when none is given (TM_CCOEFF_NORMED score, 0..=1).
pub const DEFAULT_IMAGE_THRESHOLD: f64 = 0.9;
/// Suffix of the id of the edge made by an edge's `reverse` actions: `home-settings.reverse`.
pub const REVERSE_SUFFIX: &str = ".reverse";
pub const MAX_ID_LEN: usize = 63;
/// Longest delay or wait a tree may ask for, in milliseconds.
pub const MAX_DELAY_MS: u64 = 60_000;
pub const MAX_RETRIES: u32 = 10;

/// A remote-control key name as written in a tree or a test case. It is kept as text so that
/// validation can report every unknown name at once (with its field path) instead of stopping at
/// the first; [`KeyName::key`] gives the [`Key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyName(pub String);

impl KeyName {
    pub fn key(&self) -> Result<Key, ValidationError> {
        self.0.parse()
    }

    /// The short form of a key-carrying value (`ok`, `7`); `expecting` names what the error says
    /// was expected when nothing was given.
    pub(crate) fn from_scalar(s: Scalar, expecting: &str) -> Result<Self, String> {
        match s {
            Scalar::Str(k) => Ok(KeyName(k)),
            Scalar::Int(n) => Ok(KeyName(n.to_string())),
            Scalar::Null => Err(format!("expected {expecting}, found nothing")),
        }
    }
}

impl From<Key> for KeyName {
    fn from(k: Key) -> Self {
        KeyName(k.to_string())
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyName {
    /// Accepts a string or a digit written as a number (`press: 7`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyName, E> {
                Ok(KeyName(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Frame size of a device model's video, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub width: u32,
    pub height: u32,
}

/// The navigation tree of one device model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NavigationTree {
    /// The device model this tree is for (e.g. `sim-stb`).
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Frame size the regions of this tree refer to.
    pub resolution: Resolution,
    pub screens: Vec<Screen>,
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// Learned statistics per edge id (reverse edges included), updated from
    /// [`EdgeObservation`]s. Edges without statistics are planned with a prior.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, EdgeStats>,
}

/// One screen (a state of the device UI) and the checks that identify it. A frame shows the
/// screen when every check passes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Screen {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub verify: Vec<ScreenCheck>,
}

/// A check on one frame. Written as a mapping with one key: `image: {...}`, `black: {}` or
/// `not_black: {region: {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScreenCheckRepr", into = "ScreenCheckRepr")]
pub enum ScreenCheck {
    /// The reference image appears inside `region` (the whole frame when absent) with a
    /// TM_CCOEFF_NORMED score of at least `threshold`.
    Image {
        reference: String,
        region: Option<Rect>,
        threshold: f64,
    },
    /// `region` (default: the whole frame) is black.
    Black { region: Option<Rect> },
    /// `region` (default: the whole frame) is not black.
    NotBlack { region: Option<Rect> },
}

/// The serde form of [`ScreenCheck`]: one of the keys set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScreenCheckRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<ImageCheckRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    black: Option<RegionRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_black: Option<RegionRepr>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageCheckRepr {
    reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<Rect>,
    #[serde(default = "default_threshold")]
    threshold: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<Rect>,
}

impl TryFrom<ScreenCheckRepr> for ScreenCheck {
    type Error = String;
    fn try_from(r: ScreenCheckRepr) -> Result<Self, String> {
        match (r.image, r.black, r.not_black) {
            (Some(i), None, None) => Ok(ScreenCheck::Image {
                reference: i.reference,
                region: i.region,
                threshold: i.threshold,
            }),
            (None, Some(b), None) => Ok(ScreenCheck::Black { region: b.region }),
            (None, None, Some(b)) => Ok(ScreenCheck::NotBlack { region: b.region }),
            _ => Err("a check has exactly one of image, black, not_black".to_owned()),
        }
    }
}

impl From<ScreenCheck> for ScreenCheckRepr {
    fn from(c: ScreenCheck) -> Self {
        match c {
            ScreenCheck::Image {
                reference,
                region,
                threshold,
            } => ScreenCheckRepr {
                image: Some(ImageCheckRepr {
                    reference,
                    region,
                    threshold,
                }),
                ..Default::default()
            },
            ScreenCheck::Black { region } => ScreenCheckRepr {
                black: Some(RegionRepr { region }),
                ..Default::default()
            },
            ScreenCheck::NotBlack { region } => ScreenCheckRepr {
                not_black: Some(RegionRepr { region }),
                ..Default::default()
            },
        }
    }
}

fn default_threshold() -> f64 {
    DEFAULT_IMAGE_THRESHOLD
}

/// A way from one screen to another: key presses, then a wait, then the destination is verified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    pub id: String,
    pub from: String,
    pub to: String,
    /// Pressed in order.
    pub actions: Vec<KeyAction>,
    /// Actions leading back from `to` to `from`; they make a second edge with id
    /// `<id>.reverse` and the same `wait_after_ms` and `retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse: Option<Vec<KeyAction>>,
    /// Wait after the last action before the destination is checked.
    #[serde(default)]
    pub wait_after_ms: u64,
    /// How often the edge is tried again when the device is still on `from` afterwards (a
    /// dropped key press).
    #[serde(default)]
    pub retries: u32,
}

/// One key press of an edge, then `delay_ms` of waiting. Written `ok` or `{key: ok, delay_ms: 300}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyAction {
    pub key: KeyName,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyActionFull {
    key: KeyName,
    #[serde(default)]
    delay_ms: u64,
}

impl From<KeyActionFull> for KeyAction {
    fn from(f: KeyActionFull) -> Self {
        KeyAction {
            key: f.key,
            delay_ms: f.delay_ms,
        }
    }
}

impl Shorthand for KeyAction {
    type Full = KeyActionFull;
    const EXPECTING: &'static str = "a key name or {key, delay_ms}";
    fn from_scalar(s: Scalar) -> Result<Self, String> {
        Ok(KeyAction {
            key: KeyName::from_scalar(s, "a key name or {key, delay_ms}")?,
            delay_ms: 0,
        })
    }
}
deserialize_shorthand!(KeyAction);

impl KeyAction {
    pub fn new(key: Key) -> Self {
        KeyAction {
            key: key.into(),
            delay_ms: 0,
        }
    }
}

/// Learned statistics of one edge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeStats {
    pub attempts: u64,
    pub successes: u64,
    /// Mean duration of all attempts (successful or not), in milliseconds.
    pub mean_duration_ms: f64,
}

/// What happened when an edge was taken once: the input of [`EdgeStats::record`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeObservation {
    pub edge_id: String,
    pub duration_ms: f64,
    pub success: bool,
}

/// Weight of the prior, in attempts: how many real attempts it takes to outweigh it.
const PRIOR_WEIGHT: f64 = 2.0;
/// Success rate assumed for an edge that was never measured.
const PRIOR_SUCCESS_RATE: f64 = 0.9;
/// Time assumed for one key press to take effect and the destination to be checked.
const PRIOR_PRESS_MS: f64 = 250.0;
const PRIOR_CHECK_MS: f64 = 300.0;

impl EdgeStats {
    pub fn record(&mut self, duration_ms: f64, success: bool) {
        let duration_ms = if duration_ms.is_finite() {
            duration_ms.max(0.0)
        } else {
            0.0
        };
        let total = self.mean_duration_ms * self.attempts as f64 + duration_ms;
        self.attempts += 1;
        if success {
            self.successes += 1;
        }
        self.mean_duration_ms = total / self.attempts as f64;
    }

    /// Expected time in milliseconds to get across the edge: mean duration over success rate, both
    /// smoothed towards a prior (`prior_ms`, 90 % success) worth two attempts, so an unmeasured
    /// edge costs its estimate and a failing one grows expensive without becoming infinite.
    pub fn expected_cost_ms(&self, prior_ms: f64) -> f64 {
        let n = self.attempts as f64;
        let mean = (self.mean_duration_ms * n + prior_ms * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT);
        let rate = (self.successes as f64 + PRIOR_SUCCESS_RATE * PRIOR_WEIGHT) / (n + PRIOR_WEIGHT);
        mean / rate.max(1e-3)
    }
}

/// An edge in one direction: the forward edge or the reverse edge made from `reverse`.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectedEdge<'a> {
    pub id: String,
    pub from: &'a str,
    pub to: &'a str,
    pub actions: &'a [KeyAction],
    pub wait_after_ms: u64,
    pub retries: u32,
}

impl DirectedEdge<'_> {
    /// The planning estimate before anything is measured: presses, delays and the wait.
    pub fn prior_ms(&self) -> f64 {
        let delays: u64 = self.actions.iter().map(|a| a.delay_ms).sum();
        self.actions.len() as f64 * PRIOR_PRESS_MS
            + delays as f64
            + self.wait_after_ms as f64
            + PRIOR_CHECK_MS
    }
}

impl NavigationTree {
    /// Parses a tree from YAML (JSON is YAML too).
    pub fn from_yaml(text: &str) -> Result<Self, crate::testcase::ParseError> {
        crate::testcase::parse_yaml(text)
    }

    pub fn screen(&self, id: &str) -> Option<&Screen> {
        self.screens.iter().find(|s| s.id == id)
    }

    /// Every edge in both directions, forward edges first in file order.
    pub fn directed_edges(&self) -> Vec<DirectedEdge<'_>> {
        let mut out = Vec::with_capacity(self.edges.len() * 2);
        for e in &self.edges {
            out.push(DirectedEdge {
                id: e.id.clone(),
                from: &e.from,
                to: &e.to,
                actions: &e.actions,
                wait_after_ms: e.wait_after_ms,
                retries: e.retries,
            });
        }
        for e in &self.edges {
            if let Some(rev) = &e.reverse {
                out.push(DirectedEdge {
                    id: format!("{}{REVERSE_SUFFIX}", e.id),
                    from: &e.to,
                    to: &e.from,
                    actions: rev,
                    wait_after_ms: e.wait_after_ms,
                    retries: e.retries,
                });
            }
        }
        out
    }

    /// Planning cost of an edge in milliseconds (see [`EdgeStats::expected_cost_ms`]).
    pub fn edge_cost_ms(&self, edge: &DirectedEdge<'_>) -> f64 {
        self.stats
            .get(&edge.id)
            .copied()
            .unwrap_or_default()
            .expected_cost_ms(edge.prior_ms())
    }

    /// Folds observations into the learned statistics. Observations of unknown edges are ignored.
    pub fn record(&mut self, observations: &[EdgeObservation]) {
        let known: HashSet<String> = self.directed_edges().into_iter().map(|e| e.id).collect();
        for o in observations {
            if known.contains(&o.edge_id) {
                self.stats
                    .entry(o.edge_id.clone())
                    .or_default()
                    .record(o.duration_ms, o.success);
            }
        }
    }

    /// Whether `target` can be reached from at least one other screen. A `goto` to a screen no
    /// edge leads to could only succeed by luck, so validation refuses it before anything runs.
    pub fn is_reachable_from_elsewhere(&self, target: &str) -> bool {
        let edges = self.directed_edges();
        // Walk backwards from the target.
        let mut seen: HashSet<&str> = HashSet::from([target]);
        let mut stack = vec![target];
        while let Some(s) = stack.pop() {
            for e in edges.iter().filter(|e| e.to == s) {
                if seen.insert(e.from) {
                    stack.push(e.from);
                }
            }
        }
        seen.len() > 1
    }

    /// Screens that `target` cannot be reached from.
    pub fn screens_that_cannot_reach(&self, target: &str) -> Vec<&str> {
        self.screens
            .iter()
            .map(|s| s.id.as_str())
            .filter(|s| *s != target && super::plan::plan(self, s, target).is_err())
            .collect()
    }

    /// Checks the tree's structure and returns every problem found.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut errs = Vec::new();
        if let Err(e) = validate::slug("model", &self.model, MAX_ID_LEN) {
            errs.push(e);
        }
        let Resolution { width, height } = self.resolution;
        if width == 0 || height == 0 {
            errs.push(ValidationError::new(
                "resolution",
                "width and height must be positive",
            ));
        }
        if self.screens.is_empty() {
            errs.push(ValidationError::new(
                "screens",
                "a tree needs at least one screen",
            ));
        }
        let mut screen_ids: HashMap<&str, usize> = HashMap::new();
        for (i, s) in self.screens.iter().enumerate() {
            let at = format!("screens[{i}]");
            if let Err(e) = validate::slug("id", &s.id, MAX_ID_LEN) {
                errs.push(e.within(&at));
            }
            if let Some(first) = screen_ids.insert(&s.id, i) {
                errs.push(ValidationError::new(
                    format!("{at}.id"),
                    format!("duplicate screen id {:?} (also screens[{first}])", s.id),
                ));
            }
            if s.verify.is_empty() {
                errs.push(ValidationError::new(
                    format!("{at}.verify"),
                    "a screen needs at least one check",
                ));
            }
            for (j, c) in s.verify.iter().enumerate() {
                check_screen_check(&format!("{at}.verify[{j}]"), c, self.resolution, &mut errs);
            }
        }
        let mut edge_ids: HashMap<String, String> = HashMap::new();
        for (i, e) in self.edges.iter().enumerate() {
            let at = format!("edges[{i}]");
            if let Err(err) = validate::slug("id", &e.id, MAX_ID_LEN) {
                errs.push(err.within(&at));
            }
            let mut ids = vec![e.id.clone()];
            if e.reverse.is_some() {
                ids.push(format!("{}{REVERSE_SUFFIX}", e.id));
            }
            for id in ids {
                if let Some(first) = edge_ids.insert(id.clone(), at.clone()) {
                    errs.push(ValidationError::new(
                        format!("{at}.id"),
                        format!("duplicate edge id {id:?} (also {first})"),
                    ));
                }
            }
            for (field, screen) in [("from", &e.from), ("to", &e.to)] {
                if !screen_ids.contains_key(screen.as_str()) {
                    errs.push(ValidationError::new(
                        format!("{at}.{field}"),
                        format!("unknown screen {screen:?}"),
                    ));
                }
            }
            if e.from == e.to {
                errs.push(ValidationError::new(
                    format!("{at}.to"),
                    "an edge must lead to another screen",
                ));
            }
            check_actions(&format!("{at}.actions"), &e.actions, &mut errs);
            if let Some(rev) = &e.reverse {
                check_actions(&format!("{at}.reverse"), rev, &mut errs);
            }
            if e.wait_after_ms > MAX_DELAY_MS {
                errs.push(ValidationError::new(
                    format!("{at}.wait_after_ms"),
                    format!("must be at most {MAX_DELAY_MS}"),
                ));
            }
            if e.retries > MAX_RETRIES {
                errs.push(ValidationError::new(
                    format!("{at}.retries"),
                    format!("must be at most {MAX_RETRIES}"),
                ));
            }
        }
        for (id, st) in &self.stats {
            let at = format!("stats.{id}");
            if !edge_ids.contains_key(id) {
                errs.push(ValidationError::new(&at, "statistics of an unknown edge"));
            }
            if st.successes > st.attempts {
                errs.push(ValidationError::new(
                    format!("{at}.successes"),
                    "must not exceed attempts",
                ));
            }
            if !st.mean_duration_ms.is_finite() || st.mean_duration_ms < 0.0 {
                errs.push(ValidationError::new(
                    format!("{at}.mean_duration_ms"),
                    "must be a non-negative number",
                ));
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// Checks that every image reference of the tree exists and fits in its region.
    pub fn validate_references(
        &self,
        refs: &dyn ReferenceImages,
    ) -> Result<(), Vec<ValidationError>> {
        let mut errs = Vec::new();
        for (i, s) in self.screens.iter().enumerate() {
            for (j, c) in s.verify.iter().enumerate() {
                if let ScreenCheck::Image {
                    reference, region, ..
                } = c
                {
                    let region =
                        region.unwrap_or(Rect::full(self.resolution.width, self.resolution.height));
                    if let Err(e) = check_reference(refs, reference, region) {
                        errs.push(e.within(&format!("screens[{i}].verify[{j}]")));
                    }
                }
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}

/// Checks that `name` exists and that the image fits in `region`; the error names field `reference`.
pub(crate) fn check_reference(
    refs: &dyn ReferenceImages,
    name: &str,
    region: Rect,
) -> Result<(), ValidationError> {
    match refs.get(name) {
        None => Err(ValidationError::new(
            "reference",
            format!("unknown reference image {name:?}"),
        )),
        Some(img) if img.width > region.width || img.height > region.height => {
            Err(ValidationError::new(
                "reference",
                format!(
                    "reference image {name:?} ({}x{}) is larger than its region ({}x{})",
                    img.width, img.height, region.width, region.height
                ),
            ))
        }
        Some(_) => Ok(()),
    }
}

pub(crate) fn check_threshold(field: &str, t: f64, errs: &mut Vec<ValidationError>) {
    if !(0.0..=1.0).contains(&t) {
        errs.push(ValidationError::new(
            field,
            format!("threshold must be between 0 and 1, got {t}"),
        ));
    }
}

pub(crate) fn check_region(
    field: &str,
    region: Option<&Rect>,
    res: Resolution,
    errs: &mut Vec<ValidationError>,
) {
    if let Some(r) = region
        && let Err(e) = r.check_within(field, res.width, res.height)
    {
        errs.push(e);
    }
}

fn check_screen_check(at: &str, c: &ScreenCheck, res: Resolution, errs: &mut Vec<ValidationError>) {
    match c {
        ScreenCheck::Image {
            reference,
            region,
            threshold,
        } => {
            if reference.trim().is_empty() {
                errs.push(ValidationError::new(
                    format!("{at}.image.reference"),
                    "must not be empty",
                ));
            }
            check_region(&format!("{at}.image.region"), region.as_ref(), res, errs);
            check_threshold(&format!("{at}.image.threshold"), *threshold, errs);
        }
        ScreenCheck::Black { region } => {
            check_region(&format!("{at}.black.region"), region.as_ref(), res, errs)
        }
        ScreenCheck::NotBlack { region } => check_region(
            &format!("{at}.not_black.region"),
            region.as_ref(),
            res,
            errs,
        ),
    }
}

fn check_actions(at: &str, actions: &[KeyAction], errs: &mut Vec<ValidationError>) {
    if actions.is_empty() {
        errs.push(ValidationError::new(at, "needs at least one key press"));
    }
    for (i, a) in actions.iter().enumerate() {
        if let Err(e) = a.key.key() {
            errs.push(ValidationError::new(format!("{at}[{i}].key"), e.message));
        }
        if a.delay_ms > MAX_DELAY_MS {
            errs.push(ValidationError::new(
                format!("{at}[{i}].delay_ms"),
                format!("must be at most {MAX_DELAY_MS}"),
            ));
        }
    }
}
