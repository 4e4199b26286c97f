//! The navigation executor: brings a device to a target screen.
//!
//! 1. **Locate**: grab frames until one screen of the tree matches (every check of the screen
//!    passes; among several, the most specific: most image checks, then most checks, then the
//!    best mean score).
//! 2. **Plan** the cheapest path from there ([`super::plan`]).
//! 3. **Take** each edge: press its keys, wait, then wait for the destination to be what the
//!    device is recognised as (a short appear timeout). An edge that leaves the device where it
//!    was is tried again up to its `retries`.
//! 4. When the device ends up anywhere else (a dropped key, a pop-up), **re-locate and re-plan**,
//!    at most `max_replans` times.
//!
//! Every attempt of an edge becomes an [`EdgeObservation`] for the learned statistics. A failure
//! carries the last frame, so the caller can attach a screenshot.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::{
    DirectedEdge, EdgeObservation, NavError, NavigationTree, ReferenceImages, Screen, ScreenCheck,
    plan,
};
use crate::{
    clock::Clock,
    controller::{Device, RemoteControl, VideoCapture},
    frame::{Frame, Gray},
    verify::{self, BlackParams},
};

/// Longest single sleep between two looks at the cancel flag.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// Timing of [`Navigator::goto`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GotoOptions {
    /// The whole navigation.
    pub timeout_ms: u64,
    /// How long the destination of an edge may take to show after its last key press and wait.
    pub appear_timeout_ms: u64,
    /// How long to look for a known screen when the device's whereabouts are unknown.
    pub locate_timeout_ms: u64,
    /// Time between two frames while waiting.
    pub poll_interval_ms: u64,
    /// How often the device may end up somewhere unexpected before navigation gives up.
    pub max_replans: u32,
}

impl Default for GotoOptions {
    fn default() -> Self {
        GotoOptions {
            timeout_ms: 30_000,
            appear_timeout_ms: 3_000,
            locate_timeout_ms: 3_000,
            poll_interval_ms: 40,
            max_replans: 5,
        }
    }
}

/// Where the device is.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    /// The recognised screen, `None` when no screen matches.
    pub screen: Option<String>,
    /// The frame that decided.
    pub frame: Frame,
}

/// A successful navigation.
#[derive(Clone, Debug, PartialEq)]
pub struct GotoReport {
    pub target: String,
    /// Where the device was found first.
    pub started_on: String,
    /// Edge ids taken successfully, in order.
    pub edges_taken: Vec<String>,
    /// Every edge attempt, successful or not.
    pub observations: Vec<EdgeObservation>,
    pub replans: u32,
    /// The frame showing the target.
    pub frame: Frame,
    pub duration_ms: f64,
}

/// A failed navigation, with what is known at the point of failure.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct GotoFailure {
    pub error: NavError,
    /// The last frame seen, for a screenshot.
    pub frame: Option<Frame>,
    /// Edge attempts made before the failure (they still count for the statistics).
    pub observations: Vec<EdgeObservation>,
    /// The last screen the device was recognised on.
    pub last_seen: Option<String>,
}

/// Drives one device through one navigation tree.
#[derive(Clone, Copy)]
pub struct Navigator<'a> {
    pub tree: &'a NavigationTree,
    pub device: &'a dyn Device,
    pub references: &'a dyn ReferenceImages,
    pub clock: &'a dyn Clock,
    pub cancel: &'a AtomicBool,
    pub options: GotoOptions,
}

/// The last frame `seq` recognised and what it showed.
type Memo = Option<(u64, Option<String>)>;

/// An internal stop: the error and the frame at that point.
struct Stop(NavError, Option<Frame>);

impl From<NavError> for Stop {
    fn from(e: NavError) -> Self {
        Stop(e, None)
    }
}

enum EdgeOutcome {
    Arrived(Frame),
    Elsewhere(Located),
}

/// Sleeps on `clock`, looking at `cancel` at least every 50 ms.
pub(crate) fn sleep(clock: &dyn Clock, cancel: &AtomicBool, d: Duration) -> Result<(), NavError> {
    let mut left = d;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(NavError::Cancelled);
        }
        if left.is_zero() {
            return Ok(());
        }
        let step = left.min(SLEEP_SLICE);
        clock.sleep(step);
        left -= step;
    }
}

pub(crate) fn ms_between(from_us: u64, to_us: u64) -> f64 {
    to_us.saturating_sub(from_us) as f64 / 1000.0
}

/// Whether every check of `screen` passes on `gray`; `Some(mean score)` if so. Image checks score
/// their match, black/not-black checks score 1.
pub(crate) fn screen_score(
    screen: &Screen,
    gray: &Gray,
    refs: &dyn ReferenceImages,
) -> Result<Option<f64>, NavError> {
    let mut total = 0.0;
    for check in &screen.verify {
        let score = match check {
            ScreenCheck::Image {
                reference,
                region,
                threshold,
            } => {
                let img = refs
                    .get(reference)
                    .ok_or_else(|| NavError::MissingReference(reference.clone()))?;
                let m = verify::find_template(gray, &img, *region)?;
                if f64::from(m.score) < *threshold {
                    return Ok(None);
                }
                f64::from(m.score)
            }
            ScreenCheck::Black { region } => {
                if !verify::is_black(gray, *region, BlackParams::default())?.black {
                    return Ok(None);
                }
                1.0
            }
            ScreenCheck::NotBlack { region } => {
                if verify::is_black(gray, *region, BlackParams::default())?.black {
                    return Ok(None);
                }
                1.0
            }
        };
        total += score;
    }
    Ok(Some(total / screen.verify.len().max(1) as f64))
}

/// The screen `gray` shows, if any: among matching screens the most specific (most image
/// checks, then most checks), then the best scoring.
pub(crate) fn recognise(
    tree: &NavigationTree,
    gray: &Gray,
    refs: &dyn ReferenceImages,
) -> Result<Option<String>, NavError> {
    let mut best: Option<((usize, usize, f64), &str)> = None;
    for screen in &tree.screens {
        if let Some(score) = screen_score(screen, gray, refs)? {
            let images = screen
                .verify
                .iter()
                .filter(|c| matches!(c, ScreenCheck::Image { .. }))
                .count();
            let rank = (images, screen.verify.len(), score);
            let better = match &best {
                None => true,
                Some((r, _)) => (rank.0, rank.1)
                    .cmp(&(r.0, r.1))
                    .then(rank.2.total_cmp(&r.2))
                    .is_gt(),
            };
            if better {
                best = Some((rank, &screen.id));
            }
        }
    }
    Ok(best.map(|(_, id)| id.to_owned()))
}

impl<'a> Navigator<'a> {
    fn video(&self) -> Result<&'a dyn VideoCapture, NavError> {
        self.device
            .video()
            .ok_or(NavError::MissingCapability("video capture"))
    }

    fn remote(&self) -> Result<&'a dyn RemoteControl, NavError> {
        self.device
            .remote()
            .ok_or(NavError::MissingCapability("remote control"))
    }

    fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    fn sleep_ms(&self, ms: u64) -> Result<(), NavError> {
        sleep(self.clock, self.cancel, Duration::from_millis(ms))
    }

    /// One look: grab a frame and recognise it.
    pub fn look(&self) -> Result<Located, NavError> {
        self.look_memo(&mut None)
    }

    /// A look that reuses the previous answer while the source repeats the same frame (`seq`):
    /// a static menu is recognised once, not on every poll.
    fn look_memo(&self, memo: &mut Memo) -> Result<Located, NavError> {
        let frame = self.video()?.grab()?;
        if let Some((seq, screen)) = memo
            && *seq == frame.seq
        {
            return Ok(Located {
                screen: screen.clone(),
                frame,
            });
        }
        let screen = recognise(self.tree, &frame.to_gray(), self.references)?;
        *memo = Some((frame.seq, screen.clone()));
        Ok(Located { screen, frame })
    }

    /// Looks until a known screen shows or `locate_timeout_ms` passes (the device may be in a
    /// transition: black while zapping, an animation).
    pub fn locate(&self) -> Result<Located, NavError> {
        self.locate_inner(u64::MAX, &mut None)
            .map_err(|Stop(error, _)| error)
    }

    fn locate_inner(&self, deadline_us: u64, memo: &mut Memo) -> Result<Located, Stop> {
        let until = self
            .now_us()
            .saturating_add(self.options.locate_timeout_ms * 1000)
            .min(deadline_us);
        loop {
            let l = self.look_memo(memo)?;
            if l.screen.is_some() || self.now_us() >= until {
                return Ok(l);
            }
            self.sleep_ms(self.options.poll_interval_ms)
                .map_err(|e| Stop(e, Some(l.frame)))?;
        }
    }

    /// Waits until the device is recognised as `to`, at most `timeout_ms`. Returns whether it
    /// got there, and the last look. Gives up early when the device settles on a third screen
    /// (neither `from` nor `to`, seen on two looks in a row): waiting longer would not help.
    fn wait_for(
        &self,
        from: &str,
        to: &str,
        timeout_ms: u64,
        deadline_us: u64,
        memo: &mut Memo,
    ) -> Result<(bool, Located), Stop> {
        let until = self
            .now_us()
            .saturating_add(timeout_ms * 1000)
            .min(deadline_us);
        let mut elsewhere: Option<String> = None;
        loop {
            let l = self.look_memo(memo)?;
            if l.screen.as_deref() == Some(to) {
                return Ok((true, l));
            }
            let third = l.screen.clone().filter(|s| s != from);
            if third.is_some() && third == elsewhere {
                return Ok((false, l));
            }
            elsewhere = third;
            if self.now_us() >= until {
                return Ok((false, l));
            }
            self.sleep_ms(self.options.poll_interval_ms)
                .map_err(|e| Stop(e, Some(l.frame)))?;
        }
    }

    fn take_edge(
        &self,
        edge: &DirectedEdge<'_>,
        observations: &mut Vec<EdgeObservation>,
        deadline_us: u64,
        memo: &mut Memo,
    ) -> Result<EdgeOutcome, Stop> {
        let remote = self.remote()?;
        let mut attempt = 0;
        loop {
            let started = self.now_us();
            for a in edge.actions {
                let key = a.key.key().map_err(|e| {
                    NavError::InvalidTree(format!("edge {}: {}", edge.id, e.message))
                })?;
                remote.press(key).map_err(NavError::Device)?;
                self.sleep_ms(a.delay_ms)?;
            }
            self.sleep_ms(edge.wait_after_ms)?;
            let (arrived, l) = self.wait_for(
                edge.from,
                edge.to,
                self.options.appear_timeout_ms,
                deadline_us,
                memo,
            )?;
            observations.push(EdgeObservation {
                edge_id: edge.id.clone(),
                duration_ms: ms_between(started, self.now_us()),
                success: arrived,
            });
            if arrived {
                return Ok(EdgeOutcome::Arrived(l.frame));
            }
            if l.screen.as_deref() == Some(edge.from) && attempt < edge.retries {
                attempt += 1;
                continue;
            }
            return Ok(EdgeOutcome::Elsewhere(l));
        }
    }

    /// Brings the device to screen `target`.
    pub fn goto(&self, target: &str) -> Result<GotoReport, Box<GotoFailure>> {
        let mut observations = Vec::new();
        let mut last_seen = None;
        let result = self.goto_inner(target, &mut observations, &mut last_seen);
        result.map_err(|Stop(error, frame)| {
            Box::new(GotoFailure {
                error,
                frame,
                observations,
                last_seen,
            })
        })
    }

    fn goto_inner(
        &self,
        target: &str,
        observations: &mut Vec<EdgeObservation>,
        last_seen: &mut Option<String>,
    ) -> Result<GotoReport, Stop> {
        if self.tree.screen(target).is_none() {
            return Err(NavError::UnknownScreen(target.to_owned()).into());
        }
        self.video()?;
        self.remote()?;
        let started = self.now_us();
        let deadline = started.saturating_add(self.options.timeout_ms * 1000);
        let edges = self.tree.directed_edges();
        let mut memo = None;
        let mut here = self.locate_inner(deadline, &mut memo)?;
        let mut started_on = None;
        let mut replans = 0;
        let mut edges_taken = Vec::new();
        loop {
            let Some(current) = here.screen.clone() else {
                return Err(Stop(NavError::NotLocated, Some(here.frame)));
            };
            *last_seen = Some(current.clone());
            let started_on = started_on.get_or_insert_with(|| current.clone()).clone();
            if current == target {
                return Ok(GotoReport {
                    target: target.to_owned(),
                    started_on,
                    edges_taken,
                    observations: std::mem::take(observations),
                    replans,
                    frame: here.frame,
                    duration_ms: ms_between(started, self.now_us()),
                });
            }
            if self.now_us() >= deadline {
                return Err(Stop(
                    NavError::Timeout {
                        target: target.to_owned(),
                        timeout_ms: self.options.timeout_ms,
                    },
                    Some(here.frame),
                ));
            }
            let path =
                plan(self.tree, &current, target).map_err(|e| Stop(e, Some(here.frame.clone())))?;
            let mut next = None;
            for step in &path.edges {
                let Some(edge) = edges.iter().find(|e| e.id == step.edge_id) else {
                    return Err(NavError::InvalidTree(format!(
                        "planned edge {} is missing",
                        step.edge_id
                    ))
                    .into());
                };
                match self.take_edge(edge, observations, deadline, &mut memo)? {
                    EdgeOutcome::Arrived(frame) => {
                        edges_taken.push(edge.id.clone());
                        *last_seen = Some(edge.to.to_owned());
                        next = Some(Located {
                            screen: Some(edge.to.to_owned()),
                            frame,
                        });
                    }
                    EdgeOutcome::Elsewhere(l) => {
                        replans += 1;
                        if replans > self.options.max_replans {
                            let seen = l
                                .screen
                                .clone()
                                .unwrap_or_else(|| "no known screen".to_owned());
                            return Err(Stop(
                                NavError::Lost {
                                    target: target.to_owned(),
                                    replans: replans - 1,
                                    last_seen: seen,
                                },
                                Some(l.frame),
                            ));
                        }
                        next = Some(if l.screen.is_some() {
                            l
                        } else {
                            self.locate_inner(deadline, &mut memo)?
                        });
                        break;
                    }
                }
            }
            here = match next {
                Some(l) => l,
                // An empty path: current == target was handled above.
                None => self.look_memo(&mut memo)?,
            };
        }
    }
}
