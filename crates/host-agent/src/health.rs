//! Device health: each device checked at start, on the configured schedule
//! (`health_interval_ms`), right after a part of it becomes unavailable or comes back (a cheap
//! watch every [`WATCH_EVERY`] sees a driver turn an unplug into `Unavailable` and back), and
//! right after a power switch or a fault change. The rules that turn what a check saw into a
//! health are core's ([`labwright_core::health`]); this module probes the controllers.
//!
//! A check only reads: the latest frame and the capture's frame counter, recent audio, whether
//! the console is open, the power switch's state. The console probe (`console_probes`), the one
//! write, is skipped while an execution holds the device, so a check never disturbs a run.
//!
//! The latest result per device waits in [`Monitor`] until the link sends it; after a reconnect
//! the link sends every device's latest again.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use labwright_core::{
    controller::{ControlError, Device, PowerState},
    health::{self, Finding, VideoObservation},
    verify::screen::{BlackParams, is_black},
};
use labwright_wire::host_link::DeviceHealthReport;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;

/// How often the cheap availability watch runs.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How long a check waits for the capture to deliver a newer frame before calling it frozen.
pub const FROZEN_AFTER: Duration = Duration::from_secs(3);
/// How long a check waits for an answer to the console probe.
pub const PROBE_ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// How much audio a check reads (waiting for samples captured after the call).
const AUDIO_READ: Duration = Duration::from_millis(200);

/// What one check of a device needs besides the device.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Bytes sent to the console; the console must answer (any output) within
    /// [`PROBE_ANSWER_WITHIN`].
    pub console_probe: Option<String>,
    /// An execution holds the device: nothing is written to it.
    pub busy: bool,
    /// How long to wait for a newer frame ([`FROZEN_AFTER`] on hosts).
    pub frozen_after: Duration,
}

/// Checks every part of `device` once (blocking: run it on a blocking thread) and judges the
/// device by core's rules.
pub fn check(device: &dyn Device, opts: &CheckOptions) -> health::Assessment {
    let mut findings: Vec<Finding> = Vec::new();
    let power = device.power().map(|p| p.state());
    if let Some(video) = device.video() {
        findings.push(health::judge_video(&observe_video(
            video,
            opts.frozen_after,
            matches!(power, Some(Ok(PowerState::Off))),
        )));
    }
    if let Some(audio) = device.audio() {
        findings.push(health::judge_audio(
            &audio.read(AUDIO_READ).map(|c| c.samples.len()),
        ));
    }
    if let Some(console) = device.console() {
        let open = console_open(console);
        let answered = match (&open, &opts.console_probe) {
            (Ok(next), Some(probe)) if !opts.busy => Some(
                console
                    .send(probe.as_bytes())
                    .and_then(|()| console.wait(*next, PROBE_ANSWER_WITHIN))
                    .unwrap_or(false),
            ),
            _ => None,
        };
        findings.push(health::judge_console(&open.map(|_| ()), answered));
    }
    if let Some(state) = &power {
        findings.push(health::judge_power(state));
    }
    health::assess(&findings)
}

/// Whether the console is usable now; `Ok` carries the cursor of the next line.
fn console_open(console: &dyn labwright_core::controller::Console) -> Result<u64, ControlError> {
    let next = console.read_since(u64::MAX)?.next;
    // A zero wait only reports what the driver knows: unavailable (unplugged) or not.
    console.wait(next, Duration::ZERO).map(|_| next)
}

fn observe_video(
    video: &dyn labwright_core::controller::VideoCapture,
    frozen_after: Duration,
    power_off: bool,
) -> VideoObservation {
    let started = Instant::now();
    let frame = video.grab();
    let counter = |seq: u64| video.delivered().unwrap_or(seq);
    let (black, advanced) = match &frame {
        Ok(f) => {
            let black = is_black(&f.to_gray(), None, BlackParams::default())
                .map(|b| b.black)
                .unwrap_or(false);
            let first = counter(f.seq);
            let deadline = started + frozen_after;
            let mut advanced = false;
            while !advanced {
                let now = match video.delivered() {
                    Some(n) => Some(n),
                    None => video.grab().ok().map(|g| g.seq),
                };
                advanced = now.is_some_and(|n| n != first);
                if advanced || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (black, advanced)
        }
        Err(_) => (false, false),
    };
    VideoObservation {
        frame: frame.map(|_| black),
        advanced,
        waited_ms: frozen_after.as_millis() as u64,
        power_off,
    }
}

/// Which parts of a device are unavailable right now, cheaply: a change of this is a reason to
/// check the device at once.
pub fn availability(device: &dyn Device) -> Vec<bool> {
    let unavailable = |r: Result<(), ControlError>| matches!(r, Err(ControlError::Unavailable(_)));
    let mut parts = Vec::new();
    if let Some(v) = device.video() {
        parts.push(unavailable(v.grab().map(|_| ())));
    }
    if let Some(a) = device.audio() {
        parts.push(unavailable(a.recent(Duration::from_millis(1)).map(|_| ())));
    }
    if let Some(c) = device.console() {
        parts.push(unavailable(console_open(c).map(|_| ())));
    }
    parts
}

#[derive(Clone, Debug)]
struct Entry {
    report: DeviceHealthReport,
    sent: bool,
}

/// The health of this host's devices, between the checks and the link.
pub struct Monitor {
    every: Duration,
    console_probes: HashMap<String, String>,
    latest: Mutex<HashMap<String, Entry>>,
    /// Woken when a result is waiting to be sent.
    pub ready: Notify,
    recheck: Mutex<HashSet<String>>,
    recheck_now: Notify,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new(Duration::from_secs(60), HashMap::new())
    }
}

impl Monitor {
    pub fn new(every: Duration, console_probes: HashMap<String, String>) -> Self {
        Self {
            every,
            console_probes,
            latest: Mutex::default(),
            ready: Notify::new(),
            recheck: Mutex::default(),
            recheck_now: Notify::new(),
        }
    }

    fn latest(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for a check of `device` now (after a power switch or a fault change).
    pub fn recheck(&self, device: &str) {
        self.recheck
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device.to_string());
        self.recheck_now.notify_one();
    }

    /// The latest results not sent yet; they count as sent from now on.
    pub fn take_unsent(&self) -> Vec<DeviceHealthReport> {
        let mut latest = self.latest();
        let mut out: Vec<DeviceHealthReport> = latest
            .values_mut()
            .filter(|e| !e.sent)
            .map(|e| {
                e.sent = true;
                e.report.clone()
            })
            .collect();
        out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        out
    }

    /// A new stream: every device's latest result is to be sent again.
    pub fn resend_all(&self) {
        for e in self.latest().values_mut() {
            e.sent = false;
        }
    }

    /// The latest result of a device (for tests and the CLI).
    pub fn current(&self, device: &str) -> Option<DeviceHealthReport> {
        self.latest().get(device).map(|e| e.report.clone())
    }

    fn record(&self, report: DeviceHealthReport) {
        let previous = self.latest().insert(
            report.device_id.clone(),
            Entry {
                report: report.clone(),
                sent: false,
            },
        );
        let changed = previous
            .is_none_or(|p| (p.report.health, &p.report.reason) != (report.health, &report.reason));
        if changed {
            tracing::info!(device = %report.device_id, health = ?report.health, reason = %report.reason, "device health");
        }
        self.ready.notify_one();
    }
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Checks one device on a blocking thread and records the result.
async fn check_one(rt: &Arc<Runtime>, key: String) {
    let Some(device) = rt.driver(&key).map(|d| d.device_arc()) else {
        return;
    };
    let opts = CheckOptions {
        console_probe: rt.health.console_probes.get(&key).cloned(),
        busy: rt.busy(&key).is_some(),
        frozen_after: FROZEN_AFTER,
    };
    let assessed = match tokio::task::spawn_blocking(move || check(device.as_ref(), &opts)).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(device = %key, error = %e, "health check failed to run");
            return;
        }
    };
    rt.health.record(DeviceHealthReport {
        device_id: key,
        health: Some(assessed.health),
        reason: assessed.reason,
        checked_at_unix_micros: unix_micros(),
    });
}

async fn check_many(rt: &Arc<Runtime>, keys: Vec<String>) {
    let mut set = tokio::task::JoinSet::new();
    for key in keys {
        let rt = rt.clone();
        set.spawn(async move { check_one(&rt, key).await });
    }
    while set.join_next().await.is_some() {}
}

/// Runs the checks until `shutdown`: every device at once, then on the schedule, on availability
/// changes and when asked.
pub async fn run(rt: Arc<Runtime>, shutdown: CancellationToken) {
    let mut full = tokio::time::interval(rt.health.every);
    full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = tokio::time::interval(WATCH_EVERY);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: HashMap<String, Vec<bool>> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = full.tick() => check_many(&rt, rt.device_keys()).await,
            _ = rt.health.recheck_now.notified() => {
                let keys: Vec<String> = rt.health.recheck.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
                check_many(&rt, keys).await;
            }
            _ = watch.tick() => {
                let mut changed = Vec::new();
                for key in rt.device_keys() {
                    let Some(device) = rt.driver(&key).map(|d| d.device_arc()) else { continue };
                    let Ok(now) = tokio::task::spawn_blocking(move || availability(device.as_ref())).await else { continue };
                    if seen.insert(key.clone(), now.clone()).is_some_and(|before| before != now) {
                        tracing::info!(device = %key, "a part of the device became unavailable or came back; checking it");
                        changed.push(key);
                    }
                }
                if !changed.is_empty() {
                    check_many(&rt, changed).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use labwright_core::{
        clock::SystemClock,
        controller::PowerControl,
        health::Health,
        sim::{Fault, SimConfig, SimulatedStb},
    };

    use super::*;

    fn opts() -> CheckOptions {
        CheckOptions {
            frozen_after: Duration::from_millis(300),
            ..CheckOptions::default()
        }
    }

    fn stb() -> SimulatedStb {
        SimulatedStb::with_clock(SimConfig::default(), Arc::new(SystemClock)).expect("sim")
    }

    #[test]
    fn a_running_box_on_a_static_menu_is_healthy() {
        let stb = stb();
        let a = check(&stb, &opts());
        assert_eq!((a.health, a.reason.as_str()), (Health::Healthy, ""));
    }

    #[test]
    fn a_frozen_picture_degrades_the_box_until_it_runs_again() {
        let stb = stb();
        stb.inject(Fault::Frozen);
        let a = check(&stb, &opts());
        assert_eq!(a.health, Health::Degraded);
        assert_eq!(a.reason, "video: frozen: no new frame in 300 ms");
        stb.clear_faults();
        assert_eq!(check(&stb, &opts()).health, Health::Healthy);
    }

    #[test]
    fn a_box_switched_off_is_degraded_with_a_black_picture() {
        let stb = stb();
        stb.set(PowerState::Off).expect("off");
        let a = check(&stb, &opts());
        assert_eq!(a.health, Health::Degraded);
        assert_eq!(a.reason, "video: picture is black (power is off)");
        assert_eq!(
            availability(&stb),
            vec![false, false, false],
            "video, audio and the console are there"
        );
    }

    #[test]
    fn results_wait_until_sent_and_are_resent_after_a_reconnect() {
        let m = Monitor::default();
        assert!(m.take_unsent().is_empty());
        let report = DeviceHealthReport {
            device_id: "stb-1".into(),
            health: Some(Health::Healthy),
            reason: String::new(),
            checked_at_unix_micros: 1,
        };
        m.record(report.clone());
        assert_eq!(m.take_unsent(), vec![report.clone()]);
        assert!(m.take_unsent().is_empty());
        m.resend_all();
        assert_eq!(m.take_unsent(), vec![report]);
    }
}
