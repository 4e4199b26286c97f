//! Live view: while the server asks (a lease it renews every few seconds), one thread per
//! watched device grabs frames, encodes them (mozjpeg, live profile) and hands them to the link.
//! One stream per device whoever watches: the server fans it out to its viewers.
//!
//! Frames never wait: one that finds the link's queue busy is dropped (the next one is newer),
//! and frames only use the queue while it is mostly empty, so reports and heartbeats are never
//! held back by video.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use labwright_core::{
    controller::Device,
    jpeg::{self, JpegProfile},
};
use labwright_wire::host_link::{FromHost, LiveFrame, LiveView};
use tokio::sync::mpsc;

/// Why a live view could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("device has no video capture")]
    NoVideo,
    #[error("live view thread: {0}")]
    Thread(std::io::Error),
}

/// A live view stops this long after the server last renewed it.
pub const LEASE: Duration = Duration::from_secs(10);
/// Frames are only queued while at least this many places of the link's queue are free.
const FREE_FOR_FRAMES: usize = 8;

struct Stream {
    stop: Arc<AtomicBool>,
    fps: Arc<AtomicU32>,
    quality: Arc<AtomicU32>,
    /// Milliseconds since `epoch` of the last renewal.
    renewed: Arc<AtomicU64>,
}

/// The live views running on this host.
pub struct Live {
    streams: Mutex<HashMap<String, Stream>>,
    epoch: Instant,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }
}

impl Live {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Starts, renews (with new settings) or stops the live view of `device`.
    pub fn set(
        self: &Arc<Self>,
        cmd: &LiveView,
        device: Arc<dyn Device>,
        link: mpsc::Sender<FromHost>,
    ) -> Result<(), LiveError> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if !cmd.on {
            if let Some(s) = streams.remove(&cmd.device_id) {
                s.stop.store(true, Ordering::SeqCst);
            }
            return Ok(());
        }
        if device.video().is_none() {
            return Err(LiveError::NoVideo);
        }
        let fps = cmd.max_fps.clamp(1, 60);
        let quality = cmd.quality.clamp(10, 95);
        if let Some(s) = streams.get(&cmd.device_id)
            && !s.stop.load(Ordering::SeqCst)
        {
            s.fps.store(fps, Ordering::Relaxed);
            s.quality.store(quality, Ordering::Relaxed);
            s.renewed.store(self.now_ms(), Ordering::Relaxed);
            return Ok(());
        }
        let s = Stream {
            stop: Arc::new(AtomicBool::new(false)),
            fps: Arc::new(AtomicU32::new(fps)),
            quality: Arc::new(AtomicU32::new(quality)),
            renewed: Arc::new(AtomicU64::new(self.now_ms())),
        };
        let worker = Worker {
            live: self.clone(),
            device_id: cmd.device_id.clone(),
            device,
            link,
            stop: s.stop.clone(),
            fps: s.fps.clone(),
            quality: s.quality.clone(),
            renewed: s.renewed.clone(),
        };
        std::thread::Builder::new()
            .name(format!("live-{}", cmd.device_id))
            .spawn(move || worker.run())
            .map_err(LiveError::Thread)?;
        tracing::info!(device = %cmd.device_id, fps, quality, "live view started");
        streams.insert(cmd.device_id.clone(), s);
        Ok(())
    }

    /// Stops every live view (the link to the server is gone).
    pub fn stop_all(&self) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        for (_, s) in streams.drain() {
            s.stop.store(true, Ordering::SeqCst);
        }
    }

    pub fn active(&self) -> usize {
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn forget(&self, device_id: &str, stop: &Arc<AtomicBool>) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if streams
            .get(device_id)
            .is_some_and(|s| Arc::ptr_eq(&s.stop, stop))
        {
            streams.remove(device_id);
        }
    }
}

struct Worker {
    live: Arc<Live>,
    device_id: String,
    device: Arc<dyn Device>,
    link: mpsc::Sender<FromHost>,
    stop: Arc<AtomicBool>,
    fps: Arc<AtomicU32>,
    quality: Arc<AtomicU32>,
    renewed: Arc<AtomicU64>,
}

impl Worker {
    fn run(self) {
        let mut last_seq = None;
        let mut next = Instant::now();
        let mut last_sent: Option<Instant> = None;
        let reason = loop {
            if self.stop.load(Ordering::SeqCst) {
                break "stopped by the server";
            }
            if self
                .live
                .now_ms()
                .saturating_sub(self.renewed.load(Ordering::Relaxed))
                > LEASE.as_millis() as u64
            {
                break "lease expired";
            }
            if self.link.is_closed() {
                break "link closed";
            }
            // Look four times per frame period, send at most once per period: a source running
            // at the asked rate is followed without the aliasing a fixed-phase sampler shows (a
            // grab of an unchanged picture costs nothing; a capture device's grab waits for
            // its next frame anyway).
            let period = Duration::from_secs(1) / self.fps.load(Ordering::Relaxed).max(1);
            let poll = period / 4;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next = next.max(Instant::now() - poll) + poll;
            if last_sent.is_some_and(|t| t.elapsed() < period.mul_f32(0.75)) {
                continue;
            }
            let Some(video) = self.device.video() else {
                break "no video";
            };
            let frame = match video.grab() {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!(device = %self.device_id, error = %e, "live view: grab failed");
                    continue;
                }
            };
            // An unchanged screen costs nothing: viewers keep the last frame.
            if last_seq == Some(frame.seq) {
                continue;
            }
            if self.link.capacity() < FREE_FOR_FRAMES {
                continue; // the link is busy: drop this frame, not the reports
            }
            let quality = self.quality.load(Ordering::Relaxed) as u8;
            let jpeg = match jpeg::encode(&frame, quality, JpegProfile::Live) {
                Ok(j) => j,
                Err(e) => {
                    tracing::debug!(device = %self.device_id, error = %e, "live view: encode failed");
                    continue;
                }
            };
            last_seq = Some(frame.seq);
            last_sent = Some(Instant::now());
            let msg = FromHost::LiveFrame(LiveFrame {
                device_id: self.device_id.clone(),
                seq: frame.seq,
                captured_at_unix_micros: frame.captured_at_us,
                width: frame.width,
                height: frame.height,
                jpeg,
            });
            if let Err(mpsc::error::TrySendError::Closed(_)) = self.link.try_send(msg) {
                break "link closed";
            }
        };
        self.live.forget(&self.device_id, &self.stop);
        tracing::info!(device = %self.device_id, reason, "live view stopped");
    }
}
