//! Live console fan-out: one console stream per device from its host (asked for only while
//! someone watches, a lease renewed like the live view's), shared by every viewer on this
//! replica. The hub keeps the device's most recent lines so a viewer joining a running stream
//! sees what led up to now; each viewer then follows a bounded broadcast (a viewer too slow for
//! it is told how many outputs it missed, it never slows the others).

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use labwright_core::{controller::ConsoleLine, ids::HostId};
use labwright_wire::host_link::{ConsoleOutput, HostCommand};
use tokio::sync::broadcast;

use crate::fleet::Registry;

/// How often the lease on a host's console stream is renewed (the host stops after 10 s without).
const RENEW: Duration = Duration::from_secs(3);
/// Lines kept for viewers who join a running stream.
pub const RECENT_LINES: usize = 200;
/// Outputs buffered per viewer.
const BUFFER: usize = 256;

type Key = (HostId, String);

struct Stream {
    tx: broadcast::Sender<Arc<ConsoleOutput>>,
    viewers: AtomicUsize,
    recent: Mutex<(VecDeque<ConsoleLine>, String)>,
}

pub struct ConsoleHub {
    registry: Arc<Registry>,
    streams: Mutex<HashMap<Key, Arc<Stream>>>,
}

/// One viewer's subscription; leaving (drop) ends the host's stream with the last viewer.
pub struct ConsoleViewer {
    hub: Arc<ConsoleHub>,
    key: Key,
    stream: Arc<Stream>,
    pub output: broadcast::Receiver<Arc<ConsoleOutput>>,
}

impl ConsoleViewer {
    /// What the console showed most recently: its last lines and the line being written.
    pub fn recent(&self) -> (Vec<ConsoleLine>, String) {
        let recent = self.stream.recent.lock().unwrap_or_else(|p| p.into_inner());
        (recent.0.iter().cloned().collect(), recent.1.clone())
    }
}

impl Drop for ConsoleViewer {
    fn drop(&mut self) {
        let mut streams = self.hub.lock();
        if self.stream.viewers.fetch_sub(1, Ordering::SeqCst) == 1 {
            streams.remove(&self.key);
            self.hub.ask(self.key.0, &self.key.1, false);
        }
    }
}

impl ConsoleHub {
    pub fn new(registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(Self {
            registry,
            streams: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Stream>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Console watchers of a device on this replica.
    pub fn viewers(&self, host: HostId, device_key: &str) -> usize {
        self.lock()
            .get(&(host, device_key.to_string()))
            .map_or(0, |s| s.viewers.load(Ordering::SeqCst))
    }

    /// Output from a host's console stream (dropped when nobody watches any more).
    pub fn publish(&self, host: HostId, output: ConsoleOutput) {
        let stream = self.lock().get(&(host, output.device_id.clone())).cloned();
        let Some(s) = stream else {
            return;
        };
        {
            let mut recent = s.recent.lock().unwrap_or_else(|p| p.into_inner());
            for l in &output.lines {
                // A resent backlog (the host restarted its stream) is not shown twice.
                if recent.0.back().is_some_and(|last| l.seq <= last.seq) {
                    continue;
                }
                recent.0.push_back(l.clone());
            }
            while recent.0.len() > RECENT_LINES {
                recent.0.pop_front();
            }
            recent.1.clone_from(&output.partial);
        }
        let _ = s.tx.send(Arc::new(output));
    }

    /// Starts watching a device's console (the caller checked the tenant owns it). The first
    /// viewer starts the host's stream and keeps its lease renewed while anyone watches.
    pub fn watch(self: &Arc<Self>, host: HostId, device_key: &str) -> ConsoleViewer {
        let key = (host, device_key.to_string());
        let (stream, output, first) = {
            let mut streams = self.lock();
            let (s, first) = match streams.get(&key) {
                Some(s) => (s.clone(), false),
                None => {
                    let s = Arc::new(Stream {
                        tx: broadcast::channel(BUFFER).0,
                        viewers: AtomicUsize::new(0),
                        recent: Mutex::default(),
                    });
                    streams.insert(key.clone(), s.clone());
                    (s, true)
                }
            };
            s.viewers.fetch_add(1, Ordering::SeqCst);
            let output = s.tx.subscribe();
            if first {
                self.ask(host, device_key, true);
            }
            (s, output, first)
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
        ConsoleViewer {
            hub: self.clone(),
            key,
            stream,
            output,
        }
    }

    /// Sends the host a console-watch command; its answer is not waited for.
    fn ask(&self, host: HostId, device_key: &str, on: bool) {
        let Some(tenant) = self.registry.tenant_of(host) else {
            return;
        };
        let cmd = HostCommand::ConsoleWatch {
            device_id: device_key.to_string(),
            on,
        };
        let _ = self.registry.send_command(tenant, host, cmd);
    }
}
