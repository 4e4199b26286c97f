//! The report spool: step and execution reports are written to disk as they are sent and
//! deleted only when the server acknowledges them, so a server (or agent) restart mid-run loses
//! nothing. Reports are resent after every reconnect and, while unacknowledged, periodically.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use labwright_wire::host_link::{Report, ReportAck};

/// Identity of a report: its execution and step index (`None` for the execution's final report),
/// and whether it is the step's screenshot rather than the step.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportKey {
    pub execution_id: String,
    pub step: Option<u32>,
    pub screenshot: bool,
}

/// Oldest execution first; within one, steps in order and the end report last, so the server
/// never hears that a run ended before it has its steps.
impl Ord for ReportKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let rank = |k: &ReportKey| (k.step.is_none(), k.step, k.screenshot);
        self.execution_id
            .cmp(&other.execution_id)
            .then_with(|| rank(self).cmp(&rank(other)))
    }
}

impl PartialOrd for ReportKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ReportKey {
    fn file_name(&self) -> String {
        match (self.step, self.screenshot) {
            (Some(i), false) => format!("{}.step-{i:06}.pb", self.execution_id),
            (Some(i), true) => format!("{}.shot-{i:06}.pb", self.execution_id),
            (None, _) => format!("{}.end.pb", self.execution_id),
        }
    }

    pub fn of(report: &Report) -> Self {
        Self::acked(&report.ack())
    }

    /// The report an acknowledgement is for.
    pub fn acked(ack: &ReportAck) -> Self {
        Self {
            execution_id: ack.execution_id.clone(),
            step: ack.step_index,
            screenshot: ack.screenshot,
        }
    }
}

struct Entry {
    report: Report,
    /// When it was last handed to a connection; `None` = never on the current connection.
    sent_at: Option<Instant>,
}

pub struct Spool {
    dir: PathBuf,
    entries: Mutex<BTreeMap<ReportKey, Entry>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("report spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Spool {
    /// Opens the spool directory, loading reports left by an earlier run of the agent.
    /// Unreadable files are moved aside (`*.corrupt`) rather than lost silently.
    pub fn open(dir: &Path) -> Result<Self, SpoolError> {
        let io = |source| SpoolError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut entries = BTreeMap::new();
        for item in std::fs::read_dir(dir).map_err(io)? {
            let path = item.map_err(io)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pb") {
                continue;
            }
            let decoded = std::fs::read(&path)
                .ok()
                .and_then(|b| Report::from_bytes(&b).ok());
            match decoded {
                Some(report) => {
                    entries.insert(
                        ReportKey::of(&report),
                        Entry {
                            report,
                            sent_at: None,
                        },
                    );
                }
                None => {
                    tracing::warn!(path = %path.display(), "unreadable spooled report moved aside");
                    let _ = std::fs::rename(&path, path.with_extension("corrupt"));
                }
            }
        }
        if !entries.is_empty() {
            tracing::info!(
                reports = entries.len(),
                "unacknowledged reports found; they will be sent"
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ReportKey, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a report and persists it (fsync'd). See [`Spool::push_then`].
    pub fn push(&self, report: Report) -> Result<(), SpoolError> {
        self.push_then(report, || {})
    }

    /// Queues a report for sending, calls `queued` (which wakes the sender), then persists it
    /// (fsync'd). The send does not wait for the disk: a crash before the fsync loses nothing
    /// that a crash a moment earlier would not have, and the step reaches the server ~0.5 ms
    /// sooner. If the server acknowledges the report before the file is in place, the file is
    /// removed at once instead of lingering until the next start.
    pub fn push_then(&self, report: Report, queued: impl FnOnce()) -> Result<(), SpoolError> {
        let key = ReportKey::of(&report);
        let bytes = report.to_bytes();
        let path = self.dir.join(key.file_name());
        self.lock().insert(
            key.clone(),
            Entry {
                report,
                sent_at: None,
            },
        );
        queued();
        let tmp = path.with_extension("tmp");
        let io = |source| SpoolError::Io {
            path: path.clone(),
            source,
        };
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        // Under the lock, so an acknowledgement cannot slip between the rename and the check.
        let entries = self.lock();
        std::fs::rename(&tmp, &path).map_err(io)?;
        if !entries.contains_key(&key) {
            let _ = std::fs::remove_file(&path);
        }
        Ok(())
    }

    /// The server stored the report: forget it.
    pub fn ack(&self, ack: &ReportAck) {
        let key = ReportKey::acked(ack);
        if self.lock().remove(&key).is_some() {
            let _ = std::fs::remove_file(self.dir.join(key.file_name()));
        }
    }

    /// A new connection: everything is unsent on it.
    pub fn reset_sent(&self) {
        for e in self.lock().values_mut() {
            e.sent_at = None;
        }
    }

    /// Reports to send now: never sent on this connection, or unacknowledged for `resend_after`.
    /// Marks them sent. Oldest execution and lowest step first.
    pub fn due(&self, resend_after: Duration) -> Vec<Report> {
        let now = Instant::now();
        self.lock()
            .values_mut()
            .filter(|e| {
                e.sent_at
                    .is_none_or(|t| now.duration_since(t) >= resend_after)
            })
            .map(|e| {
                e.sent_at = Some(now);
                e.report.clone()
            })
            .collect()
    }

    /// Executions that still have reports waiting for the server.
    pub fn executions(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().keys().map(|k| k.execution_id.clone()).collect();
        ids.dedup();
        ids
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use labwright_wire::host_link::{ExecutionReport, StepReport};

    use super::*;

    fn step(exec: &str, index: u32) -> Report {
        Report::Step(StepReport {
            execution_id: exec.into(),
            index,
            path: String::new(),
            kind: String::new(),
            verdict: None,
            reason: "ok".into(),
            started_at_unix_micros: 0,
            duration_micros: 0,
            screenshot_jpeg: Vec::new(),
            measurements: Default::default(),
            screenshot_pending: false,
        })
    }

    #[test]
    fn a_report_acknowledged_before_it_reached_the_disk_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("lw-spool-early-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spool = Spool::open(&dir).expect("open");
        spool
            .push_then(step("e1", 0), || {
                assert_eq!(
                    spool.due(Duration::from_secs(10)).len(),
                    1,
                    "sendable at once"
                );
                spool.ack(&ReportAck {
                    execution_id: "e1".into(),
                    step_index: Some(0),
                    screenshot: false,
                });
            })
            .expect("push");
        assert!(spool.is_empty());
        let files: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
        assert!(files.is_empty(), "left behind: {files:?}");
        assert!(Spool::open(&dir).expect("reopen").is_empty());
    }

    #[test]
    fn reports_survive_a_restart_until_acknowledged() {
        let dir = std::env::temp_dir().join(format!("lw-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spool = Spool::open(&dir).expect("open");
        spool.push(step("e1", 0)).expect("push");
        spool.push(step("e1", 1)).expect("push");
        spool
            .push(Report::Execution(ExecutionReport {
                execution_id: "e1".into(),
                verdict: None,
                reason: String::new(),
                steps_total: 0,
                cancelled: false,
                edge_observations: Vec::new(),
                finished_at_unix_micros: 0,
                console_log: String::new(),
            }))
            .expect("push");
        assert_eq!(spool.due(Duration::from_secs(10)).len(), 3);
        assert!(
            spool.due(Duration::from_secs(10)).is_empty(),
            "not resent before the resend delay"
        );
        spool.ack(&ReportAck {
            execution_id: "e1".into(),
            step_index: Some(0),
            screenshot: false,
        });
        drop(spool);

        std::fs::write(dir.join("garbage.pb"), b"\xff\xff\xff").expect("write");
        let reopened = Spool::open(&dir).expect("reopen");
        assert_eq!(
            reopened.len(),
            2,
            "acknowledged report gone, the others kept"
        );
        assert!(
            dir.join("garbage.corrupt").exists(),
            "corrupt files are kept aside"
        );
        let due = reopened.due(Duration::from_secs(10));
        let keys: Vec<_> = due.iter().map(ReportKey::of).collect();
        assert_eq!(
            keys,
            vec![
                ReportKey {
                    execution_id: "e1".into(),
                    step: Some(1),
                    screenshot: false,
                },
                ReportKey {
                    execution_id: "e1".into(),
                    step: None,
                    screenshot: false,
                },
            ],
            "steps first, the end report last"
        );
        reopened.reset_sent();
        assert_eq!(
            reopened.due(Duration::from_secs(10)).len(),
            2,
            "a new connection resends everything"
        );
        reopened.ack(&ReportAck {
            execution_id: "e1".into(),
            step_index: None,
            screenshot: false,
        });
        reopened.ack(&ReportAck {
            execution_id: "e1".into(),
            step_index: Some(1),
            screenshot: false,
        });
        assert!(reopened.is_empty());
        assert!(Spool::open(&dir).expect("reopen").is_empty());
    }
}
