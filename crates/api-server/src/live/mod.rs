//! Live view fan-out: one stream per device from its host (asked for only while someone
//! watches, as a lease renewed every few seconds), shared by every viewer on this replica.
//!
//! Each viewer gets the newest frame when it is ready for one (it acknowledges what it has
//! drawn; at most [`IN_FLIGHT`] frames are on their way to it), so a slow viewer simply sees
//! fewer frames: it never slows the others, the host or the device. A viewer that keeps up with
//! less than half of the frames moves to the **light** tier: the same frames at half the size
//! and lower quality, made here once per frame for all light viewers (only while there are any);
//! it moves back when it keeps up again.

pub mod console;
pub mod http;
pub mod tap;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use labwright_core::ids::HostId;
use labwright_wire::host_link::{self, HostCommand};
use tokio::sync::watch;

use crate::fleet::Registry;

/// Frames per second asked of the host at most: a source's own rate up to 60 Hz (a host sends
/// a picture only when it changed).
pub const FPS: u32 = 60;
/// JPEG quality asked of the host.
pub const QUALITY: u32 = 75;
/// How often the lease on a host's stream is renewed (the host stops after 10 s without).
const RENEW: Duration = Duration::from_secs(3);
/// Frames sent to one viewer and not yet acknowledged.
pub const IN_FLIGHT: u64 = 2;
/// Bytes before the JPEG in a binary frame: captured-at (µs since the epoch), seq, width,
/// height, all big-endian (u64, u64, u32, u32).
pub const HEADER: usize = 24;

/// JPEG quality of the light tier (half size).
pub const LIGHT_QUALITY: u8 = 50;

/// Which version of the stream a viewer gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Full,
    /// Half size, lower quality: for viewers that cannot keep up with the full stream.
    Light,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Full => "full",
            Tier::Light => "light",
        }
    }
}

/// A frame as viewers get it.
#[derive(Debug)]
pub struct Frame {
    pub seq: u64,
    pub captured_at_us: u64,
    pub width: u32,
    pub height: u32,
    /// Header and JPEG, ready to send.
    pub wire: Bytes,
}

impl Frame {
    fn from_host(f: host_link::LiveFrame) -> Self {
        Self::new(f.seq, f.captured_at_unix_micros, f.width, f.height, &f.jpeg)
    }

    fn new(seq: u64, captured_at_us: u64, width: u32, height: u32, jpeg: &[u8]) -> Self {
        let mut wire = Vec::with_capacity(HEADER + jpeg.len());
        wire.extend_from_slice(&captured_at_us.to_be_bytes());
        wire.extend_from_slice(&seq.to_be_bytes());
        wire.extend_from_slice(&width.to_be_bytes());
        wire.extend_from_slice(&height.to_be_bytes());
        wire.extend_from_slice(jpeg);
        Self {
            seq,
            captured_at_us,
            width,
            height,
            wire: wire.into(),
        }
    }

    pub fn jpeg(&self) -> &[u8] {
        &self.wire[HEADER..]
    }

    /// The light-tier version: half the size, lower quality; `None` if the JPEG does not decode.
    pub fn lighter(&self) -> Option<Frame> {
        let full = labwright_core::image_io::decode_frame(self.jpeg()).ok()?;
        let half = full.half();
        let jpeg = labwright_core::jpeg::encode(
            &half,
            LIGHT_QUALITY,
            labwright_core::jpeg::JpegProfile::Live,
        )
        .ok()?;
        Some(Frame::new(
            self.seq,
            self.captured_at_us,
            half.width,
            half.height,
            &jpeg,
        ))
    }
}

type Key = (HostId, String);

struct Stream {
    frames: watch::Sender<Option<Arc<Frame>>>,
    light: watch::Sender<Option<Arc<Frame>>>,
    viewers: AtomicUsize,
    light_viewers: AtomicUsize,
    /// Frames published so far in each tier.
    published: [AtomicU64; 2],
    /// A light frame is being made (frames that arrive meanwhile are not made light).
    transcoding: AtomicBool,
}

impl Stream {
    fn new() -> Self {
        Self {
            frames: watch::channel(None).0,
            light: watch::channel(None).0,
            viewers: AtomicUsize::new(0),
            light_viewers: AtomicUsize::new(0),
            published: [AtomicU64::new(0), AtomicU64::new(0)],
            transcoding: AtomicBool::new(false),
        }
    }
}

/// What the live sockets need: the hub, the event tap, the fleet (to find a device and its
/// host), and the server's shutdown (long-lived sockets close with 1001).
pub struct Live {
    pub hub: Arc<LiveHub>,
    pub tap: Arc<tap::EventTap>,
    pub fleet: Arc<crate::fleet::Fleet>,
    pub shutdown: tokio_util::sync::CancellationToken,
}

pub struct LiveHub {
    /// The live consoles, beside the live views.
    pub consoles: Arc<console::ConsoleHub>,
    registry: Arc<Registry>,
    streams: Mutex<HashMap<Key, Arc<Stream>>>,
}

/// One viewer's subscription; leaving (drop) ends the host's stream with the last viewer.
pub struct Viewer {
    hub: Arc<LiveHub>,
    key: Key,
    stream: Arc<Stream>,
    full: watch::Receiver<Option<Arc<Frame>>>,
    light: watch::Receiver<Option<Arc<Frame>>>,
    tier: Tier,
}

impl Viewer {
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The receiver of the viewer's current tier.
    pub fn frames(&mut self) -> &mut watch::Receiver<Option<Arc<Frame>>> {
        match self.tier {
            Tier::Full => &mut self.full,
            Tier::Light => &mut self.light,
        }
    }

    /// Frames published so far in the viewer's current tier.
    pub fn published(&self) -> u64 {
        self.stream.published[self.tier as usize].load(Ordering::Relaxed)
    }

    pub fn set_tier(&mut self, tier: Tier) {
        if tier == self.tier {
            return;
        }
        match tier {
            Tier::Light => self.stream.light_viewers.fetch_add(1, Ordering::SeqCst),
            Tier::Full => {
                let before = self.stream.light_viewers.fetch_sub(1, Ordering::SeqCst);
                if before == 1 {
                    // Nobody is served light frames now: the next light viewer must not get a
                    // stale one.
                    self.stream.light.send_replace(None);
                }
                before
            }
        };
        self.tier = tier;
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.set_tier(Tier::Full);
        let mut streams = self.hub.lock();
        if self.stream.viewers.fetch_sub(1, Ordering::SeqCst) == 1 {
            streams.remove(&self.key);
            // Under the lock: a viewer arriving now asks for a new stream after this stop.
            self.hub.ask(self.key.0, &self.key.1, false);
        }
    }
}

impl LiveHub {
    pub fn new(registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(Self {
            consoles: console::ConsoleHub::new(registry.clone()),
            registry,
            streams: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Stream>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Viewers of a device on this replica (0 when nobody watches).
    pub fn viewers(&self, host: HostId, device_key: &str) -> usize {
        self.lock()
            .get(&(host, device_key.to_string()))
            .map_or(0, |s| s.viewers.load(Ordering::SeqCst))
    }

    /// A frame from a host's stream (dropped when nobody watches any more).
    pub fn publish(&self, host: HostId, frame: host_link::LiveFrame) {
        let stream = self.lock().get(&(host, frame.device_id.clone())).cloned();
        let Some(s) = stream else {
            return;
        };
        let frame = Arc::new(Frame::from_host(frame));
        s.frames.send_replace(Some(frame.clone()));
        s.published[Tier::Full as usize].fetch_add(1, Ordering::Relaxed);
        if s.light_viewers.load(Ordering::SeqCst) > 0 && !s.transcoding.swap(true, Ordering::SeqCst)
        {
            // Off the host's reader: a decode and an encode of a small picture.
            tokio::task::spawn_blocking(move || {
                if let Some(light) = frame.lighter() {
                    s.light.send_replace(Some(Arc::new(light)));
                    s.published[Tier::Light as usize].fetch_add(1, Ordering::Relaxed);
                }
                s.transcoding.store(false, Ordering::SeqCst);
            });
        }
    }

    /// Starts watching a device (the caller checked the tenant owns it). The first viewer starts
    /// the host's stream and keeps its lease renewed while anyone watches.
    pub fn watch(self: &Arc<Self>, host: HostId, device_key: &str) -> Viewer {
        let key = (host, device_key.to_string());
        // Counted under the lock: a last viewer leaving at the same moment cannot remove the
        // stream between our finding it and our joining it.
        let (stream, first) = {
            let mut streams = self.lock();
            let (s, first) = match streams.get(&key) {
                Some(s) => (s.clone(), false),
                None => {
                    let s = Arc::new(Stream::new());
                    streams.insert(key.clone(), s.clone());
                    (s, true)
                }
            };
            s.viewers.fetch_add(1, Ordering::SeqCst);
            if first {
                self.ask(host, device_key, true);
            }
            (s, first)
        };
        if first {
            let hub = Arc::downgrade(self);
            let weak_stream = Arc::downgrade(&stream);
            let device_key = device_key.to_string();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(RENEW);
                every.tick().await;
                loop {
                    every.tick().await;
                    let (Some(hub), Some(s)) = (hub.upgrade(), weak_stream.upgrade()) else {
                        return;
                    };
                    if s.viewers.load(Ordering::SeqCst) == 0 {
                        return;
                    }
                    hub.ask(host, &device_key, true);
                }
            });
        }
        Viewer {
            hub: self.clone(),
            full: stream.frames.subscribe(),
            light: stream.light.subscribe(),
            tier: Tier::Full,
            key,
            stream,
        }
    }

    /// Sends the host a live-view command; its answer is not waited for (a refusal shows as
    /// no frames, and the lease is renewed anyway).
    fn ask(&self, host: HostId, device_key: &str, on: bool) {
        let Some(tenant) = self.registry.tenant_of(host) else {
            return;
        };
        let cmd = HostCommand::LiveView(host_link::LiveView {
            device_id: device_key.to_string(),
            on,
            max_fps: FPS,
            quality: QUALITY,
        });
        let _ = self.registry.send_command(tenant, host, cmd);
    }
}
