//! What a host does for the server besides staying connected: owns the devices, runs executions
//! on them (on blocking threads), spools their reports, and answers direct commands (key press,
//! screenshot, fault injection).

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use labwright_core::{
    clock::SystemClock,
    controller::{Device, Key},
    jpeg::{self, JpegProfile},
    nav::{NavigationTree, ReferenceSet},
    run::{self, RunContext, RunOptions, RunVerdict, StepResult, StepSink, Verdict},
    sim::{Fault, FaultConfig, SimConfig, SimulatedStb},
    testcase::TestCase,
};
use labwright_wire::v1 as pb;
use tokio::sync::Notify;

use crate::{config::DeviceConfig, spool::Spool};

/// A device and the driver-specific handle behind it.
pub enum Driver {
    Simulated(Arc<SimulatedStb>),
}

impl Driver {
    pub fn device(&self) -> &dyn Device {
        match self {
            Driver::Simulated(s) => s.as_ref(),
        }
    }

    fn as_device_arc(&self) -> Arc<dyn Device> {
        match self {
            Driver::Simulated(s) => s.clone(),
        }
    }
}

/// Builds the driver for one configured device; errors name the device and setting.
pub fn build_driver(d: &DeviceConfig) -> Result<Driver, String> {
    match d.driver.as_str() {
        "simulated" => {
            let config: SimConfig = toml::Value::Table(d.settings.clone())
                .try_into()
                .map_err(|e| format!("devices.{}.settings: {e}", d.id))?;
            let sim =
                SimulatedStb::new(config).map_err(|e| format!("devices.{}.settings.{e}", d.id))?;
            Ok(Driver::Simulated(Arc::new(sim)))
        }
        other => Err(format!(
            "devices.{}.driver: unknown driver kind {other:?}",
            d.id
        )),
    }
}

pub struct Runtime {
    devices: HashMap<String, Driver>,
    pub spool: Spool,
    /// Running executions: id → (device key, cancel flag).
    running: Mutex<HashMap<String, (String, Arc<AtomicBool>)>>,
    /// Woken when a report is spooled.
    pub reports: Notify,
    /// Live views in progress.
    pub live: Arc<crate::live::Live>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn verdict(v: Verdict) -> i32 {
    (match v {
        Verdict::Pass => pb::Verdict::Pass,
        Verdict::Fail => pb::Verdict::Fail,
        Verdict::Error => pb::Verdict::Error,
        Verdict::Skipped => pb::Verdict::Skipped,
    }) as i32
}

/// The run's verdict on the wire and a one-line reason for people.
fn summarize(s: &run::RunSummary) -> (pb::Verdict, String) {
    let counts = format!(
        "{} passed, {} failed, {} errors, {} skipped",
        s.steps_passed, s.steps_failed, s.steps_errored, s.steps_skipped
    );
    match s.verdict {
        RunVerdict::Pass => (pb::Verdict::Pass, counts),
        RunVerdict::Fail => (pb::Verdict::Fail, counts),
        RunVerdict::Cancelled => (pb::Verdict::Skipped, format!("cancelled ({counts})")),
        RunVerdict::Error if !s.problems.is_empty() => {
            let problems: Vec<String> = s
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            (
                pb::Verdict::Error,
                format!("not started: {}", problems.join("; ")),
            )
        }
        RunVerdict::Error => (pb::Verdict::Error, counts),
    }
}

/// Work for a run's screenshot encoder, in order: the end report queues behind the last
/// screenshot so the server hears of the end after every picture.
enum EncodeJob {
    Screenshot {
        index: u32,
        frame: labwright_core::frame::Frame,
    },
    Spool(Box<pb::HostMessage>),
}

/// How long the encoder lets the latency-critical step report go first.
const ENCODE_DEFER: std::time::Duration = std::time::Duration::from_millis(8);

/// Encodes a run's screenshots at stored quality (mozjpeg, full settings: tens of ms each) on a
/// thread of its own, so the run and its step reports never wait for them.
fn spawn_encoder(
    runtime: Arc<Runtime>,
    execution_id: String,
) -> (
    std::sync::mpsc::SyncSender<EncodeJob>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<EncodeJob>(32);
    let handle = std::thread::spawn(move || {
        for job in rx {
            match job {
                EncodeJob::Screenshot { index, frame } => {
                    // Let the step's report (already spooled) reach the server before this encode
                    // takes a core for tens of milliseconds: on a 2-core Pi that is the difference
                    // between a step stored in ~3 ms and in ~6 ms.
                    std::thread::sleep(ENCODE_DEFER);
                    let jpeg = jpeg::encode(&frame, jpeg::DEFAULT_STORED_QUALITY, JpegProfile::Stored).unwrap_or_else(|e| {
                        tracing::warn!(execution_id, index, error = %e, "could not encode a screenshot");
                        Vec::new()
                    });
                    runtime.spool_report(pb::HostMessage {
                        body: Some(pb::host_message::Body::Screenshot(pb::ScreenshotReport {
                            execution_id: execution_id.clone(),
                            index,
                            jpeg,
                        })),
                    });
                }
                EncodeJob::Spool(msg) => runtime.spool_report(*msg),
            }
        }
    });
    (tx, handle)
}

/// Turns step results into spooled reports as the runner produces them.
struct SpoolSink<'a> {
    runtime: &'a Runtime,
    execution_id: String,
    encoder: std::sync::mpsc::SyncSender<EncodeJob>,
}

impl StepSink for SpoolSink<'_> {
    fn step(&mut self, r: StepResult) {
        tracing::trace!(
            execution_id = self.execution_id,
            index = r.index,
            "step ended"
        );
        let index = r.index;
        let frame = r.frame;
        let msg = pb::HostMessage {
            body: Some(pb::host_message::Body::Step(pb::StepReport {
                execution_id: self.execution_id.clone(),
                index: r.index,
                path: r.path,
                kind: r.kind,
                verdict: verdict(r.verdict),
                reason: r.reason,
                started_at_unix_micros: r.started_at_us,
                duration_micros: (r.duration_ms * 1000.0) as u64,
                screenshot_jpeg: r.screenshot.unwrap_or_default(),
                measurements: r.measurements.into_iter().collect(),
                screenshot_pending: frame.is_some(),
            })),
        };
        self.runtime.spool_report(msg);
        if let Some(frame) = frame
            && self
                .encoder
                .send(EncodeJob::Screenshot { index, frame })
                .is_err()
        {
            tracing::error!(execution_id = %self.execution_id, index, "screenshot encoder gone");
        }
    }
}

impl Runtime {
    pub fn new(devices: &[DeviceConfig], state_dir: &Path) -> Result<Self, String> {
        let mut map = HashMap::new();
        for d in devices {
            map.insert(d.id.clone(), build_driver(d)?);
        }
        let spool = Spool::open(&state_dir.join("spool")).map_err(|e| e.to_string())?;
        Ok(Self {
            devices: map,
            spool,
            running: Mutex::new(HashMap::new()),
            reports: Notify::new(),
            live: Arc::default(),
        })
    }

    /// Starts, renews or stops a device's live view; frames go to `link`.
    pub fn live_view(
        &self,
        cmd: &pb::LiveView,
        link: tokio::sync::mpsc::Sender<pb::HostMessage>,
    ) -> Result<(), String> {
        let device = self.driver(&cmd.device_id)?.as_device_arc();
        self.live.set(cmd, device, link)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Arc<AtomicBool>)>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Executions in progress, for the hello after a reconnect.
    /// Also lists runs that ended but whose reports the server has not acknowledged yet, so a
    /// reconnect never gets a finished run written off as lost.
    pub fn running_executions(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.running().keys().cloned().collect();
        ids.extend(self.spool.executions());
        ids.sort();
        ids.dedup();
        ids
    }

    fn spool_report(&self, msg: pb::HostMessage) {
        if let Err(e) = self.spool.push_then(msg, || self.reports.notify_one()) {
            tracing::error!(error = %e, "could not write a report to the spool; it will be lost if the agent stops before the server has it");
        }
    }

    fn driver(&self, key: &str) -> Result<&Driver, String> {
        self.devices
            .get(key)
            .ok_or_else(|| format!("no device {key:?} on this host"))
    }

    /// Handles a command from the server. Long work (runs) continues after the answer.
    pub async fn handle(self: &Arc<Self>, cmd: pb::Command) -> pb::CommandResult {
        let id = cmd.command_id.clone();
        // A run for a device that is busy with another run: say so with a code the server
        // acts on (it requeues the run rather than failing it).
        if let Some(pb::command::Kind::RunExecution(run)) = &cmd.kind
            && let Some(other) = self.busy(&run.device_id).filter(|o| o != &run.execution_id)
        {
            return pb::CommandResult {
                command_id: id,
                ok: false,
                error: format!("device {} is running execution {other}", run.device_id),
                payload: Vec::new(),
                code: "busy".into(),
            };
        }
        let outcome: Result<Vec<u8>, String> = match cmd.kind {
            Some(pb::command::Kind::Ping(p)) => Ok(p.payload),
            Some(pb::command::Kind::RunExecution(run)) => {
                self.start_execution(run).map(|()| Vec::new())
            }
            Some(pb::command::Kind::CancelExecution(c)) => {
                match self.running().get(&c.execution_id) {
                    Some((_, flag)) => {
                        flag.store(true, Ordering::SeqCst);
                        Ok(Vec::new())
                    }
                    None => Err(format!("execution {} is not running here", c.execution_id)),
                }
            }
            Some(pb::command::Kind::PressKey(p)) => self.press(p).await,
            Some(pb::command::Kind::CaptureScreenshot(s)) => self.screenshot(&s.device_id).await,
            Some(pb::command::Kind::SetFaults(f)) => self.set_faults(&f),
            Some(pb::command::Kind::Power(p)) => self.power(p).await,
            // The link answers these itself (they need its sender).
            Some(pb::command::Kind::LiveView(_)) => Err("live view through the link only".into()),
            None => Err("unknown command (this agent is older than the server)".into()),
        };
        match outcome {
            Ok(payload) => pb::CommandResult {
                command_id: id,
                ok: true,
                error: String::new(),
                payload,
                code: String::new(),
            },
            Err(error) => pb::CommandResult {
                command_id: id,
                ok: false,
                error,
                payload: Vec::new(),
                code: "refused".into(),
            },
        }
    }

    fn busy(&self, device: &str) -> Option<String> {
        self.running()
            .iter()
            .find(|(_, (d, _))| d == device)
            .map(|(id, _)| id.clone())
    }

    async fn press(self: &Arc<Self>, p: pb::PressKey) -> Result<Vec<u8>, String> {
        if let Some(e) = self.busy(&p.device_id) {
            return Err(format!("device is running execution {e}"));
        }
        let key: Key = p
            .key
            .parse()
            .map_err(|e: labwright_core::ValidationError| e.to_string())?;
        let device = self.driver(&p.device_id)?.as_device_arc();
        tokio::task::spawn_blocking(move || {
            let remote = device.remote().ok_or("device has no remote control")?;
            let res = if p.hold_ms > 0 {
                remote.long_press(key, std::time::Duration::from_millis(u64::from(p.hold_ms)))
            } else {
                remote.press(key)
            };
            res.map(|()| Vec::new()).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn power(self: &Arc<Self>, p: pb::Power) -> Result<Vec<u8>, String> {
        use labwright_core::controller::PowerState;
        let action = pb::PowerAction::try_from(p.action)
            .ok()
            .filter(|a| *a != pb::PowerAction::Unspecified)
            .ok_or("unknown power action")?;
        if action != pb::PowerAction::State
            && let Some(e) = self.busy(&p.device_id)
        {
            return Err(format!("device is running execution {e}"));
        }
        let device = self.driver(&p.device_id)?.as_device_arc();
        tokio::task::spawn_blocking(move || {
            let power = device.power().ok_or("device has no power control")?;
            let done = match action {
                pb::PowerAction::On => power.set(PowerState::On),
                pb::PowerAction::Off => power.set(PowerState::Off),
                pb::PowerAction::Cycle => power.cycle(std::time::Duration::from_secs(2)),
                pb::PowerAction::State | pb::PowerAction::Unspecified => Ok(()),
            };
            done.map_err(|e| e.to_string())?;
            let state = power.state().map_err(|e| e.to_string())?;
            Ok(match state {
                PowerState::On => b"on".to_vec(),
                PowerState::Off => b"off".to_vec(),
            })
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn screenshot(self: &Arc<Self>, device: &str) -> Result<Vec<u8>, String> {
        let device = self.driver(device)?.as_device_arc();
        tokio::task::spawn_blocking(move || {
            let frame = device
                .video()
                .ok_or("device has no video capture")?
                .grab()
                .map_err(|e| e.to_string())?;
            jpeg::encode(&frame, 85, JpegProfile::Live).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    fn set_faults(&self, f: &pb::SetFaults) -> Result<Vec<u8>, String> {
        let Driver::Simulated(sim) = self.driver(&f.device_id)?;
        let faults: FaultConfig =
            serde_json::from_str(&f.faults_json).map_err(|e| format!("faults: {e}"))?;
        sim.clear_faults();
        if faults.frozen {
            sim.inject(Fault::Frozen);
        }
        if faults.drop_keys > 0 {
            sim.inject(Fault::DropKeys {
                count: faults.drop_keys,
            });
        }
        if faults.slow_ms > 0 {
            sim.inject(Fault::Slow {
                extra_ms: faults.slow_ms,
            });
        }
        if faults.reboot {
            sim.inject(Fault::Reboot);
        }
        Ok(Vec::new())
    }

    fn start_execution(self: &Arc<Self>, run: pb::RunExecution) -> Result<(), String> {
        tracing::debug!(execution_id = %run.execution_id, "run received");
        if self.running().contains_key(&run.execution_id) {
            return Ok(()); // a resent dispatch of a run already going
        }
        if let Some(e) = self.busy(&run.device_id) {
            return Err(format!("device {} is running execution {e}", run.device_id));
        }
        let device = self.driver(&run.device_id)?.as_device_arc();
        let testcase: TestCase =
            serde_json::from_str(&run.testcase_json).map_err(|e| format!("test case: {e}"))?;
        let tree: Option<NavigationTree> = if run.navigation_tree_json.is_empty() {
            None
        } else {
            Some(
                serde_json::from_str(&run.navigation_tree_json)
                    .map_err(|e| format!("navigation tree: {e}"))?,
            )
        };
        let mut references = ReferenceSet::new();
        for (name, bytes) in &run.references {
            let image = labwright_core::image_io::decode_gray(bytes)
                .map_err(|e| format!("reference {name}: {e}"))?;
            references.insert(name.clone(), Arc::new(image));
        }
        let cancel = Arc::new(AtomicBool::new(false));
        self.running().insert(
            run.execution_id.clone(),
            (run.device_id.clone(), cancel.clone()),
        );
        let me = self.clone();
        let execution_id = run.execution_id;
        tracing::info!(execution_id, device = %run.device_id, testcase = %testcase.name, "execution started");
        tokio::task::spawn_blocking(move || {
            let (encoder, encoder_thread) = spawn_encoder(me.clone(), execution_id.clone());
            let mut sink = SpoolSink {
                runtime: &me,
                execution_id: execution_id.clone(),
                encoder: encoder.clone(),
            };
            let ctx = RunContext {
                device: device.as_ref(),
                nav: tree.as_ref(),
                references: &references,
                cancel: &cancel,
                clock: &SystemClock,
                options: RunOptions {
                    encode_screenshots: false,
                    ..RunOptions::default()
                },
            };
            // A bug in a driver or the runner must not leave the run (and the device) busy forever.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run::run_testcase(&ctx, &testcase, &mut sink)
            }));
            let summary = match outcome {
                Ok(summary) => summary,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(execution_id, panic = what, "the runner crashed");
                    run::RunSummary {
                        verdict: RunVerdict::Error,
                        steps_passed: 0,
                        steps_failed: 0,
                        steps_errored: 0,
                        steps_skipped: 0,
                        edge_observations: Vec::new(),
                        cancelled: false,
                        problems: vec![run::Problem {
                            field: "runner".into(),
                            message: format!("crashed: {what}"),
                        }],
                        duration_ms: 0.0,
                    }
                }
            };
            let (run_verdict, reason) = summarize(&summary);
            let report = pb::ExecutionReport {
                execution_id: execution_id.clone(),
                verdict: run_verdict as i32,
                reason,
                steps_total: summary.steps_passed
                    + summary.steps_failed
                    + summary.steps_errored
                    + summary.steps_skipped,
                cancelled: summary.cancelled,
                edge_observations_json: serde_json::to_string(&summary.edge_observations)
                    .unwrap_or_default(),
                finished_at_unix_micros: now_us(),
            };
            drop(sink);
            let end = Box::new(pb::HostMessage {
                body: Some(pb::host_message::Body::Execution(report)),
            });
            if let Err(std::sync::mpsc::SendError(EncodeJob::Spool(end))) =
                encoder.send(EncodeJob::Spool(end))
            {
                me.spool_report(*end);
            }
            drop(encoder);
            if encoder_thread.join().is_err() {
                tracing::error!(execution_id, "the screenshot encoder crashed");
            }
            me.running().remove(&execution_id);
            tracing::info!(execution_id, verdict = ?summary.verdict, "execution finished");
        });
        Ok(())
    }
}
