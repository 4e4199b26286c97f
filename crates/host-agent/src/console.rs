//! Live console: while the server asks (a lease it renews every few seconds, like the live view),
//! one thread per watched device follows its console and hands new output to the link. A start
//! sends the most recent lines first ([`BACKLOG`]), so a viewer sees what led up to now.
//!
//! Output never blocks the link: when its queue is busy the thread keeps its cursor and sends
//! the lines with the next batch; lines the console dropped meanwhile are counted as missed.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use labwright_core::controller::Device;
use labwright_wire::host_link::{ConsoleOutput, FromHost};
use tokio::sync::mpsc;

/// A console stream stops this long after the server last renewed it.
pub const LEASE: Duration = Duration::from_secs(10);
/// Lines sent when a stream starts.
pub const BACKLOG: u64 = 200;
/// Lines in one message at most.
const BATCH: usize = 500;
/// Output is only queued while at least this many places of the link's queue are free.
const FREE_FOR_OUTPUT: usize = 8;
/// How long one wait for output lasts (the stop flag and lease are checked in between).
const POLL: Duration = Duration::from_millis(250);
/// How long output waits before trying a busy link again.
const BUSY_PAUSE: Duration = Duration::from_millis(50);

struct Stream {
    stop: Arc<AtomicBool>,
    /// Milliseconds since `epoch` of the last renewal.
    renewed: Arc<AtomicU64>,
}

/// Why a console stream could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleWatchError {
    #[error("device has no console")]
    NoConsole,
    #[error("console thread: {0}")]
    Thread(std::io::Error),
}

/// The console streams running on this host.
pub struct ConsoleWatches {
    streams: Mutex<HashMap<String, Stream>>,
    epoch: Instant,
}

impl Default for ConsoleWatches {
    fn default() -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }
}

impl ConsoleWatches {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Starts, renews or stops following the console of `device_id`.
    pub fn set(
        self: &Arc<Self>,
        device_id: &str,
        on: bool,
        device: Arc<dyn Device>,
        link: mpsc::Sender<FromHost>,
    ) -> Result<(), ConsoleWatchError> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if !on {
            if let Some(s) = streams.remove(device_id) {
                s.stop.store(true, Ordering::SeqCst);
            }
            return Ok(());
        }
        if device.console().is_none() {
            return Err(ConsoleWatchError::NoConsole);
        }
        if let Some(s) = streams.get(device_id)
            && !s.stop.load(Ordering::SeqCst)
        {
            s.renewed.store(self.now_ms(), Ordering::Relaxed);
            return Ok(());
        }
        let s = Stream {
            stop: Arc::new(AtomicBool::new(false)),
            renewed: Arc::new(AtomicU64::new(self.now_ms())),
        };
        let worker = Worker {
            watches: self.clone(),
            device_id: device_id.to_string(),
            device,
            link,
            stop: s.stop.clone(),
            renewed: s.renewed.clone(),
        };
        std::thread::Builder::new()
            .name(format!("console-{device_id}"))
            .spawn(move || worker.run())
            .map_err(ConsoleWatchError::Thread)?;
        tracing::info!(device = %device_id, "console stream started");
        streams.insert(device_id.to_string(), s);
        Ok(())
    }

    /// Stops every stream (the link to the server is gone).
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
    watches: Arc<ConsoleWatches>,
    device_id: String,
    device: Arc<dyn Device>,
    link: mpsc::Sender<FromHost>,
    stop: Arc<AtomicBool>,
    renewed: Arc<AtomicU64>,
}

impl Worker {
    fn run(self) {
        let reason = self.follow();
        self.watches.forget(&self.device_id, &self.stop);
        tracing::info!(device = %self.device_id, reason, "console stream stopped");
    }

    fn follow(&self) -> &'static str {
        let Some(console) = self.device.console() else {
            return "no console";
        };
        let mut cursor = match console.read_since(u64::MAX) {
            Ok(r) => r.next.saturating_sub(BACKLOG),
            Err(_) => 0,
        };
        // What the viewer was last sent of the line being written.
        let mut sent_partial: Option<String> = None;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return "stopped by the server";
            }
            if self
                .watches
                .now_ms()
                .saturating_sub(self.renewed.load(Ordering::Relaxed))
                > LEASE.as_millis() as u64
            {
                return "lease expired";
            }
            if self.link.is_closed() {
                return "link closed";
            }
            let read = match console.read_since(cursor) {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(device = %self.device_id, error = %e, "console stream: read failed");
                    std::thread::sleep(POLL);
                    continue;
                }
            };
            let fresh = !read.lines.is_empty()
                || read.missed > 0
                || sent_partial.as_deref() != Some(read.partial.as_str());
            let mut unsent = fresh;
            if fresh && self.link.capacity() >= FREE_FOR_OUTPUT {
                let mut lines = read.lines;
                let more = lines.len() > BATCH;
                lines.truncate(BATCH);
                let next = lines.last().map_or(read.next, |l| l.seq + 1);
                let next = if more { next } else { read.next };
                let msg = FromHost::ConsoleOutput(ConsoleOutput {
                    device_id: self.device_id.clone(),
                    lines,
                    partial: if more {
                        String::new()
                    } else {
                        read.partial.clone()
                    },
                    missed: read.missed,
                });
                match self.link.try_send(msg) {
                    Ok(()) => {
                        unsent = false;
                        cursor = next;
                        sent_partial = (!more).then_some(read.partial);
                        if more {
                            continue;
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return "link closed",
                    Err(mpsc::error::TrySendError::Full(_)) => {}
                }
            }
            if unsent {
                // Output waits for room on the link: look again shortly.
                std::thread::sleep(BUSY_PAUSE);
            } else if console.wait(cursor, POLL).is_err() {
                std::thread::sleep(POLL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use labwright_core::sim::{SimConfig, SimulatedStb};

    use super::*;

    /// The next console output sent to the link, within a generous bound.
    fn next_output(rx: &mut mpsc::Receiver<FromHost>) -> ConsoleOutput {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.try_recv() {
                Ok(FromHost::ConsoleOutput(o)) => return o,
                Ok(other) => panic!("unexpected message {other:?}"),
                Err(mpsc::error::TryRecvError::Empty) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("no console output: {e:?}"),
            }
        }
    }

    #[test]
    fn a_watched_console_streams_its_backlog_then_new_output_until_stopped() {
        let stb = Arc::new(SimulatedStb::new(SimConfig::default()).expect("sim"));
        let device: Arc<dyn Device> = stb.clone();
        let watches = Arc::new(ConsoleWatches::default());
        let (tx, mut rx) = mpsc::channel(64);
        watches
            .set("stb-1", true, device.clone(), tx.clone())
            .expect("started");
        // Renewing keeps the one stream.
        watches
            .set("stb-1", true, device.clone(), tx.clone())
            .expect("renewed");
        assert_eq!(watches.active(), 1);
        let first = next_output(&mut rx);
        assert_eq!(first.device_id, "stb-1");
        assert!(
            first.lines.iter().any(|l| l.text.contains("Linux version")),
            "{first:?}"
        );
        assert_eq!(first.partial, "labwright-stb login: ");
        labwright_core::controller::Console::send(stb.as_ref(), b"root\n").expect("typed");
        let mut seen = Vec::new();
        while !seen.iter().any(|t: &String| t.starts_with("Welcome to")) {
            seen.extend(next_output(&mut rx).lines.into_iter().map(|l| l.text));
        }
        assert!(
            seen.contains(&"labwright-stb login: root".to_string()),
            "{seen:?}"
        );
        watches
            .set("stb-1", false, device.clone(), tx.clone())
            .expect("stopped");
        assert_eq!(watches.active(), 0);
        let no_console: Arc<dyn Device> = Arc::new(NoConsole);
        assert!(matches!(
            watches.set("x", true, no_console, tx),
            Err(ConsoleWatchError::NoConsole)
        ));
    }

    struct NoConsole;
    impl Device for NoConsole {}
}
