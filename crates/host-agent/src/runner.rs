//! Executions on the host: each run on a blocking thread of its own, its step results turned
//! into spooled reports as they come, and its screenshots encoded at stored quality by a per-run
//! encoder thread, off the run's critical path. The end report queues behind the last
//! screenshot, so the server hears of the end after every picture.

use std::{
    sync::{Arc, atomic::AtomicBool, mpsc},
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use labwright_core::{
    clock::SystemClock,
    frame::Frame,
    jpeg::{self, JpegProfile},
    nav::ReferenceSet,
    run::{self, RunContext, RunOptions, RunVerdict, StepResult, StepSink, Verdict},
};
use labwright_wire::host_link::{
    ExecutionReport, Report, RunExecution, ScreenshotReport, StepReport,
};

use crate::{
    commands::CommandError,
    runtime::{RunningExecution, Runtime},
};

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The run's verdict and a one-line reason for people.
fn summarize(s: &run::RunSummary) -> (Verdict, String) {
    let counts = format!(
        "{} passed, {} failed, {} errors, {} skipped",
        s.steps_passed, s.steps_failed, s.steps_errored, s.steps_skipped
    );
    match s.verdict {
        RunVerdict::Pass => (Verdict::Pass, counts),
        RunVerdict::Fail => (Verdict::Fail, counts),
        RunVerdict::Cancelled => (Verdict::Skipped, format!("cancelled ({counts})")),
        RunVerdict::Error if !s.problems.is_empty() => {
            let problems: Vec<String> = s
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            (
                Verdict::Error,
                format!("not started: {}", problems.join("; ")),
            )
        }
        RunVerdict::Error => (Verdict::Error, counts),
    }
}

/// Work for a run's screenshot encoder, in order.
enum EncodeJob {
    Screenshot { index: u32, frame: Frame },
    Spool(Box<Report>),
}

/// How long the encoder lets the latency-critical step report go first.
const ENCODE_DEFER: Duration = Duration::from_millis(8);

/// Encodes a run's screenshots at stored quality (mozjpeg, full settings: tens of ms each) on a
/// thread of its own, so the run and its step reports never wait for them.
fn spawn_encoder(
    runtime: Arc<Runtime>,
    execution_id: String,
) -> (mpsc::SyncSender<EncodeJob>, JoinHandle<()>) {
    let (tx, rx) = mpsc::sync_channel::<EncodeJob>(32);
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
                    runtime.spool_report(Report::Screenshot(ScreenshotReport {
                        execution_id: execution_id.clone(),
                        index,
                        jpeg,
                    }));
                }
                EncodeJob::Spool(report) => runtime.spool_report(*report),
            }
        }
    });
    (tx, handle)
}

/// Turns step results into spooled reports as the runner produces them; their frames go to the
/// encoder.
struct SpoolSink<'a> {
    runtime: &'a Runtime,
    execution_id: String,
    encoder: mpsc::SyncSender<EncodeJob>,
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
        self.runtime.spool_report(Report::Step(StepReport {
            execution_id: self.execution_id.clone(),
            index: r.index,
            path: r.path,
            kind: r.kind,
            verdict: Some(r.verdict),
            reason: r.reason,
            started_at_unix_micros: r.started_at_us,
            duration_micros: (r.duration_ms * 1000.0) as u64,
            screenshot_jpeg: r.screenshot.unwrap_or_default(),
            measurements: r.measurements.into_iter().collect(),
            screenshot_pending: frame.is_some(),
        }));
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
    /// Starts a run on a blocking thread and returns at once; a resent run already going is
    /// accepted again, a run for a device busy with another is refused as busy.
    pub(crate) fn start_execution(self: &Arc<Self>, run: RunExecution) -> Result<(), CommandError> {
        tracing::debug!(execution_id = %run.execution_id, "run received");
        if self.running().contains_key(&run.execution_id) {
            return Ok(()); // a resent dispatch of a run already going
        }
        if let Some(execution) = self.busy(&run.device_id) {
            return Err(CommandError::Busy {
                device: run.device_id,
                execution,
            });
        }
        let device = self.device(&run.device_id)?.device_arc();
        let mut references = ReferenceSet::new();
        for (name, bytes) in &run.references {
            let image = labwright_core::image_io::decode_gray(bytes).map_err(|e| {
                CommandError::Reference {
                    name: name.clone(),
                    message: e.to_string(),
                }
            })?;
            references.insert(name.clone(), Arc::new(image));
        }
        let cancel = Arc::new(AtomicBool::new(false));
        self.running().insert(
            run.execution_id.clone(),
            RunningExecution {
                device: run.device_id.clone(),
                cancel: cancel.clone(),
            },
        );
        let me = self.clone();
        let execution_id = run.execution_id;
        let testcase = run.testcase;
        let tree = run.navigation_tree;
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
                        console_log: None,
                    }
                }
            };
            let (verdict, reason) = summarize(&summary);
            let end = Box::new(Report::Execution(ExecutionReport {
                execution_id: execution_id.clone(),
                verdict: Some(verdict),
                reason,
                steps_total: summary.steps_passed
                    + summary.steps_failed
                    + summary.steps_errored
                    + summary.steps_skipped,
                cancelled: summary.cancelled,
                edge_observations: summary.edge_observations.clone(),
                finished_at_unix_micros: now_us(),
                console_log: summary.console_log.clone().unwrap_or_default(),
            }));
            drop(sink);
            if let Err(mpsc::SendError(EncodeJob::Spool(end))) = encoder.send(EncodeJob::Spool(end))
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
