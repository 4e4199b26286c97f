//! Video capture from a V4L2 node: format negotiation, a capture thread that keeps the latest
//! buffer, conversion to RGB when a frame is asked for, and recovery from unplugging.
//!
//! [`Capture`] is generic over [`VideoDevice`], the node's I/O (`v4l2::V4l2Node` on a host, a
//! scripted fake in tests). Frames carry the kernel's buffer timestamps (monotonic, mapped onto
//! the epoch once per streaming session). When the node goes away, `grab` answers
//! `Unavailable`; the thread reopens it with backoff and streams the same mode again.

pub mod convert;
mod negotiate;
#[cfg(feature = "v4l2")]
pub mod v4l2;

use std::{sync::Arc, time::Duration};

use labwright_core::{
    controller::{ControlError, VideoCapture},
    frame::Frame,
};
use serde::{Deserialize, Serialize};

pub use self::{
    convert::FourCc,
    negotiate::{Mode, Offer, Sizes, negotiate},
};
use crate::{
    NodeProblem,
    timestamp::EpochOffset,
    worker::{Shared, Worker, reopen_backoff},
};

/// A video source's settings (`[devices.settings.video]` with `driver = "v4l2"`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSettings {
    /// The node: a stable path (`/dev/v4l/by-id/usb-...-video-index0`) or `/dev/videoN`.
    pub path: String,
    /// Pixel format (`YUYV`, `NV12`, `RGB3`, `BGR3`, `MJPG`); the best offered when absent.
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// Frames per second; the highest offered at the chosen size when absent.
    #[serde(default)]
    pub fps: Option<u32>,
}

/// What the settings ask of the negotiation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub format: Option<FourCc>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<u32>,
}

impl VideoSettings {
    /// Checks the settings on their own (no device needed); every problem, each starting with
    /// its key.
    pub fn wanted(&self) -> Result<Wanted, Vec<String>> {
        let mut problems = Vec::new();
        if self.path.trim().is_empty() {
            problems.push("path: must name a V4L2 node, e.g. /dev/video0".to_string());
        }
        let format = match self.format.as_deref() {
            None => None,
            Some(f) => match FourCc::parse(f) {
                Some(code) if code.is_supported() => Some(code),
                _ => {
                    problems.push(format!(
                        "format: {f:?} is not a supported pixel format (supported: RGB3, BGR3, YUYV, NV12, MJPG)"
                    ));
                    None
                }
            },
        };
        if self.width.is_some() != self.height.is_some() {
            problems.push("width, height: give both or neither".into());
        }
        for (key, v) in [("width", self.width), ("height", self.height)] {
            if v.is_some_and(|v| v == 0 || v > 16_384) {
                problems.push(format!("{key}: must be between 1 and 16384"));
            }
        }
        if self.fps.is_some_and(|f| f == 0 || f > 1_000) {
            problems.push("fps: must be between 1 and 1000".into());
        }
        if problems.is_empty() {
            Ok(Wanted {
                format,
                width: self.width,
                height: self.height,
                fps: self.fps,
            })
        } else {
            Err(problems)
        }
    }
}

/// The mode a node streams, as the driver applied it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    pub format: FourCc,
    pub width: u32,
    pub height: u32,
    /// Bytes per row (0 for compressed formats).
    pub stride: usize,
    pub fps: Option<u32>,
}

/// One buffer as the driver dequeued it.
#[derive(Clone, Copy, Debug)]
pub struct RawFrame<'a> {
    pub data: &'a [u8],
    /// The buffer's `CLOCK_MONOTONIC` timestamp in microseconds (`None`: the driver set none).
    pub timestamp_us: Option<u64>,
    /// The driver's frame counter.
    pub sequence: u32,
}

/// The I/O of one V4L2 capture node.
pub trait VideoDevice: Send + 'static {
    /// The node's path, for messages.
    fn path(&self) -> &str;
    /// Opens the node (closing it first if open).
    fn open(&mut self) -> Result<(), NodeProblem>;
    /// Every (format, size) the node offers, with its frame rates.
    fn offers(&mut self) -> Result<Vec<Offer>, NodeProblem>;
    /// Sets the format, size and frame rate; returns what the driver applied.
    fn apply(&mut self, mode: &Mode) -> Result<Applied, NodeProblem>;
    /// Streams buffers into `sink` until it returns false or the node fails. `sink(None)` is
    /// called when no buffer came for a while (about a second), so the caller can stop.
    fn stream(
        &mut self,
        sink: &mut dyn FnMut(Option<RawFrame<'_>>) -> bool,
    ) -> Result<(), NodeProblem>;
    /// Closes the node.
    fn close(&mut self);
}

/// Why a capture could not start; every variant names the node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Node(#[from] NodeProblem),
    /// Nothing the node offers fits the settings; the message lists what it offers.
    #[error("{path}: {message}")]
    NotOffered { path: String, message: String },
    /// The driver changed the mode it was given.
    #[error("{path}: asked for {asked}, the driver applied {applied}")]
    NotApplied {
        path: String,
        asked: String,
        applied: String,
    },
}

/// How long `grab` waits for the first frame of a stream.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(3);

struct Latest {
    raw: Arc<Vec<u8>>,
    captured_at_us: u64,
    seq: u64,
}

#[derive(Default)]
struct State {
    /// Why the node is unusable right now (`None`: streaming).
    unavailable: Option<String>,
    latest: Option<Latest>,
    /// The last converted frame, reused while no newer buffer came.
    converted: Option<Frame>,
    /// Frames counted across streaming sessions (`Frame::seq`).
    frames: u64,
    reopened: u64,
}

/// A running capture from one node, implementing core's [`VideoCapture`].
pub struct Capture {
    path: String,
    applied: Applied,
    worker: Worker<State>,
}

impl Capture {
    /// Opens the node, negotiates the mode and starts streaming on a thread of its own.
    pub fn start<D: VideoDevice>(mut device: D, wanted: Wanted) -> Result<Self, StartError> {
        let path = device.path().to_string();
        let (mode, applied) = open_and_apply(&mut device, &wanted)?;
        let worker = Worker::spawn(
            format!("v4l2 {path}"),
            &path,
            State::default(),
            move |shared| capture_loop(device, mode, &shared),
        )?;
        Ok(Self {
            path,
            applied,
            worker,
        })
    }

    /// The mode the node streams.
    pub fn applied(&self) -> Applied {
        self.applied
    }

    /// How many times the node was reopened after going away.
    pub fn reopened(&self) -> u64 {
        self.worker.shared().lock().reopened
    }

    /// Why the source is unavailable right now, if it is.
    pub fn unavailable(&self) -> Option<String> {
        self.worker.shared().lock().unavailable.clone()
    }
}

fn mode_text(m: &Mode) -> String {
    match m.fps {
        Some(f) => format!("{} {}x{} at {f} fps", m.format, m.width, m.height),
        None => format!("{} {}x{}", m.format, m.width, m.height),
    }
}

fn open_and_apply<D: VideoDevice>(
    device: &mut D,
    wanted: &Wanted,
) -> Result<(Mode, Applied), StartError> {
    let path = device.path().to_string();
    device.open()?;
    let offers = device.offers()?;
    let mode = negotiate(&offers, wanted)
        .map_err(|message| StartError::NotOffered {
            path: path.clone(),
            message,
        })
        .inspect_err(|_| device.close())?;
    let applied = device.apply(&mode).inspect_err(|_| device.close())?;
    if (applied.format, applied.width, applied.height) != (mode.format, mode.width, mode.height) {
        device.close();
        return Err(StartError::NotApplied {
            path,
            asked: mode_text(&mode),
            applied: mode_text(&Mode {
                format: applied.format,
                width: applied.width,
                height: applied.height,
                fps: applied.fps,
            }),
        });
    }
    Ok((mode, applied))
}

fn capture_loop<D: VideoDevice>(mut device: D, mode: Mode, shared: &Shared<State>) {
    let path = device.path().to_string();
    let wanted = Wanted {
        format: Some(mode.format),
        width: Some(mode.width),
        height: Some(mode.height),
        fps: mode.fps,
    };
    let mut open = true;
    let mut backoff = reopen_backoff();
    while !shared.stopping() {
        if !open {
            match open_and_apply(&mut device, &wanted) {
                Ok(_) => {
                    open = true;
                    backoff.reset();
                    shared.update(|st| {
                        st.unavailable = None;
                        st.reopened += 1;
                    });
                    tracing::info!(path = %path, "video source back");
                }
                Err(e) => {
                    set_unavailable(shared, e.to_string());
                    shared.pause(backoff.next_delay());
                    continue;
                }
            }
        }
        let offset = EpochOffset::now();
        let result = device.stream(&mut |frame| {
            if let Some(f) = frame {
                keep(shared, f, &offset);
            }
            !shared.stopping()
        });
        if let Err(problem) = result {
            tracing::warn!(path = %path, %problem, "video source lost");
            set_unavailable(shared, problem.to_string());
            device.close();
            open = false;
        }
    }
    device.close();
}

fn set_unavailable(shared: &Shared<State>, why: String) {
    shared.update(|st| {
        st.unavailable = Some(why);
        st.latest = None;
    });
}

fn keep(shared: &Shared<State>, frame: RawFrame<'_>, offset: &EpochOffset) {
    let captured_at_us = match frame.timestamp_us {
        Some(ts) if ts > 0 => offset.to_epoch_us(ts),
        _ => crate::timestamp::epoch_now_us(),
    };
    shared.update(|st| {
        // Reuse the previous buffer when no grab holds it.
        let mut raw = match st.latest.take() {
            Some(l) => Arc::try_unwrap(l.raw).unwrap_or_default(),
            None => Vec::new(),
        };
        raw.clear();
        raw.extend_from_slice(frame.data);
        st.frames += 1;
        st.latest = Some(Latest {
            raw: Arc::new(raw),
            captured_at_us,
            seq: st.frames,
        });
        st.unavailable = None;
    });
}

/// What `grab` found once a frame was there.
enum Found {
    Cached(Frame),
    Raw(Arc<Vec<u8>>, u64, u64),
}

impl VideoCapture for Capture {
    fn grab(&self) -> Result<Frame, ControlError> {
        let shared = self.worker.shared();
        let found = shared.wait_for(FIRST_FRAME_WAIT, |st| {
            if let Some(why) = &st.unavailable {
                return Some(Err(ControlError::Unavailable(why.clone())));
            }
            let latest = st.latest.as_ref()?;
            Some(Ok(
                match st.converted.as_ref().filter(|f| f.seq == latest.seq) {
                    Some(f) => Found::Cached(f.clone()),
                    None => Found::Raw(latest.raw.clone(), latest.captured_at_us, latest.seq),
                },
            ))
        });
        let (raw, at, seq) = match found {
            None => {
                return Err(ControlError::Timeout(format!(
                    "{}: no frame within {} s",
                    self.path,
                    FIRST_FRAME_WAIT.as_secs()
                )));
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(Found::Cached(f))) => return Ok(f),
            Some(Ok(Found::Raw(raw, at, seq))) => (raw, at, seq),
        };
        let a = self.applied;
        let mut rgb = Vec::new();
        convert::to_rgb(a.format, a.width, a.height, a.stride, &raw, &mut rgb)
            .map_err(|e| ControlError::Driver(format!("{}: {e}", self.path)))?;
        let frame = Frame::from_rgb(a.width, a.height, rgb, at, seq)
            .map_err(|e| ControlError::Driver(format!("{}: {}", self.path, e.message)))?;
        shared.lock().converted = Some(frame.clone());
        Ok(frame)
    }

    fn resolution(&self) -> (u32, u32) {
        (self.applied.width, self.applied.height)
    }

    /// Buffers dequeued so far, without converting one.
    fn delivered(&self) -> Option<u64> {
        Some(self.worker.shared().lock().frames)
    }
}

#[cfg(test)]
mod tests;
