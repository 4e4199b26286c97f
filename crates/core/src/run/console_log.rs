//! The console log of a run: every console line from the run's start to its end, each stamped
//! with its UTC arrival time, with a marker where each step started and one at the end. Read at
//! every step boundary (the console's own history is bounded, so lines it no longer held are
//! named, not silently skipped) and bounded in size: past [`MAX_CONSOLE_LOG`] bytes lines are
//! counted, not kept, and a truncation marker says how many.

use crate::controller::{Console, ConsoleLine};

use super::{RunVerdict, StepResult, Verdict};

/// Largest console log of one run, in bytes (the end markers always fit).
pub const MAX_CONSOLE_LOG: usize = 1 << 20;
/// Room kept for the closing markers.
const TRAILER: usize = 512;

/// Collects a run's console log as the run goes.
#[derive(Debug)]
pub struct ConsoleRecorder {
    cursor: u64,
    text: String,
    max_bytes: usize,
    dropped_lines: u64,
}

impl ConsoleRecorder {
    /// Starts at the console's next line: output from before the run is not the run's.
    pub fn start(console: &dyn Console, at_us: u64) -> Self {
        Self::with_limit(console, at_us, MAX_CONSOLE_LOG)
    }

    pub fn with_limit(console: &dyn Console, at_us: u64, max_bytes: usize) -> Self {
        let cursor = console.read_since(u64::MAX).map_or(0, |r| r.next);
        let mut r = ConsoleRecorder {
            cursor,
            text: String::new(),
            max_bytes: max_bytes.max(TRAILER * 2),
            dropped_lines: 0,
        };
        r.marker(at_us, "--- run started ---");
        r
    }

    /// The step just reported: its lines after a marker at its start.
    pub fn step(&mut self, console: &dyn Console, result: &StepResult) {
        let lines = self.read(console);
        let (before, during): (Vec<_>, Vec<_>) = lines
            .into_iter()
            .partition(|l| l.at_us < result.started_at_us);
        self.lines(&before);
        if result.verdict != Verdict::Skipped {
            self.marker(
                result.started_at_us,
                &format!(
                    "--- step {}: {} ({}) ---",
                    result.index, result.kind, result.path
                ),
            );
        }
        self.lines(&during);
    }

    /// The rest of the output, the line being written, and the end marker.
    pub fn finish(mut self, console: &dyn Console, at_us: u64, verdict: RunVerdict) -> String {
        let lines = self.read(console);
        self.lines(&lines);
        if let Ok(r) = console.read_since(u64::MAX)
            && !r.partial.is_empty()
        {
            self.line(&ConsoleLine {
                seq: r.next,
                at_us,
                text: r.partial,
            });
        }
        self.max_bytes += TRAILER;
        if self.dropped_lines > 0 {
            let note = format!(
                "--- console log truncated at {} bytes: {} more lines not recorded ---",
                self.max_bytes - TRAILER,
                self.dropped_lines
            );
            self.marker(at_us, &note);
        }
        let verdict = match verdict {
            RunVerdict::Pass => "pass",
            RunVerdict::Fail => "fail",
            RunVerdict::Error => "error",
            RunVerdict::Cancelled => "cancelled",
        };
        self.marker(at_us, &format!("--- run ended: {verdict} ---"));
        self.text
    }

    fn read(&mut self, console: &dyn Console) -> Vec<ConsoleLine> {
        match console.read_since(self.cursor) {
            Ok(r) => {
                self.cursor = r.next;
                if r.missed > 0 {
                    let at = r.lines.first().map_or(0, |l| l.at_us);
                    self.marker(
                        at,
                        &format!(
                            "--- {} console lines lost: the console no longer held them ---",
                            r.missed
                        ),
                    );
                }
                r.lines
            }
            Err(e) => {
                self.marker(0, &format!("--- console unreadable: {e} ---"));
                Vec::new()
            }
        }
    }

    fn lines(&mut self, lines: &[ConsoleLine]) {
        for l in lines {
            self.line(l);
        }
    }

    fn line(&mut self, l: &ConsoleLine) {
        let entry = format!("{} {}\n", utc(l.at_us), l.text);
        if self.text.len() + entry.len() > self.max_bytes - TRAILER {
            self.dropped_lines += 1;
        } else {
            self.text.push_str(&entry);
        }
    }

    fn marker(&mut self, at_us: u64, text: &str) {
        let entry = format!("{} {text}\n", utc(at_us));
        if self.text.len() + entry.len() > self.max_bytes {
            self.dropped_lines += 1;
        } else {
            self.text.push_str(&entry);
        }
    }
}

/// `2026-12-07T17:30:36.123456Z` for microseconds since the Unix epoch.
pub fn utc(us: u64) -> String {
    let secs = us / 1_000_000;
    let micros = us % 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::{sync::Mutex, time::Duration};

    use super::*;
    use crate::controller::{ConsoleRead, ControlError};

    /// A console holding at most `held` lines, written by the test.
    struct Fake {
        lines: Mutex<Vec<ConsoleLine>>,
        held: usize,
    }

    impl Fake {
        fn new(held: usize) -> Self {
            Fake {
                lines: Mutex::new(Vec::new()),
                held,
            }
        }

        fn print(&self, at_us: u64, text: &str) {
            let mut lines = self.lines.lock().expect("lock");
            let seq = lines.len() as u64;
            lines.push(ConsoleLine {
                seq,
                at_us,
                text: text.into(),
            });
        }
    }

    impl Console for Fake {
        fn send(&self, _: &[u8]) -> Result<(), ControlError> {
            Ok(())
        }
        fn read_since(&self, from: u64) -> Result<ConsoleRead, ControlError> {
            let lines = self.lines.lock().expect("lock");
            let next = lines.len() as u64;
            let oldest = next.saturating_sub(self.held as u64);
            Ok(ConsoleRead {
                lines: lines
                    .iter()
                    .filter(|l| l.seq >= from.max(oldest))
                    .cloned()
                    .collect(),
                partial: "login: ".into(),
                next,
                missed: oldest.saturating_sub(from.min(next)),
            })
        }
        fn wait(&self, _: u64, _: Duration) -> Result<bool, ControlError> {
            Ok(false)
        }
    }

    fn step(index: u32, started_at_us: u64, verdict: Verdict) -> StepResult {
        StepResult {
            index,
            path: format!("steps[{index}]"),
            kind: "press".into(),
            verdict,
            reason: String::new(),
            started_at_us,
            duration_ms: 0.0,
            screenshot: None,
            frame: None,
            measurements: Default::default(),
        }
    }

    const T0: u64 = 1_796_664_636_000_000;

    #[test]
    fn lines_of_the_run_come_with_step_markers_in_time_order() {
        let c = Fake::new(100);
        c.print(T0 - 1, "before the run");
        let mut r = ConsoleRecorder::start(&c, T0);
        c.print(T0 + 5, "between runs of steps");
        c.print(T0 + 20, "during step 0");
        r.step(&c, &step(0, T0 + 10, Verdict::Pass));
        c.print(T0 + 40, "during step 1");
        r.step(&c, &step(1, T0 + 30, Verdict::Fail));
        r.step(&c, &step(2, T0 + 50, Verdict::Skipped));
        let log = r.finish(&c, T0 + 60, RunVerdict::Fail);
        let texts: Vec<&str> = log
            .lines()
            .map(|l| l.split_once(' ').expect("stamped").1)
            .collect();
        assert_eq!(
            texts,
            vec![
                "--- run started ---",
                "between runs of steps",
                "--- step 0: press (steps[0]) ---",
                "during step 0",
                "--- step 1: press (steps[1]) ---",
                "during step 1",
                "login: ",
                "--- run ended: fail ---",
            ]
        );
        assert!(log.starts_with("2026-12-07T17:30:36.000000Z --- run started ---\n"));
    }

    #[test]
    fn lost_lines_are_named() {
        let c = Fake::new(3);
        let mut r = ConsoleRecorder::start(&c, T0);
        for i in 0..5 {
            c.print(T0 + i, &format!("early {i}"));
        }
        r.step(&c, &step(0, T0, Verdict::Pass));
        let log = r.finish(&c, T0 + 500, RunVerdict::Pass);
        assert!(
            log.contains("--- 2 console lines lost: the console no longer held them ---"),
            "{log}"
        );
        assert!(
            log.contains(" early 4\n") && !log.contains(" early 1\n"),
            "{log}"
        );
    }

    #[test]
    fn a_full_log_is_truncated_with_a_marker_and_still_ends() {
        let c = Fake::new(1000);
        let mut r = ConsoleRecorder::with_limit(&c, T0, 2048);
        for i in 0..100 {
            c.print(T0 + 100 + i, &format!("line {i:03} {}", "x".repeat(40)));
        }
        r.step(&c, &step(0, T0 + 100, Verdict::Pass));
        let log = r.finish(&c, T0 + 500, RunVerdict::Pass);
        assert!(log.len() <= 2048 + 512, "{}", log.len());
        assert!(log.contains(" line 000 "), "{log}");
        assert!(!log.contains(" line 099 "), "{log}");
        assert!(
            log.contains("--- console log truncated at 2048 bytes:"),
            "{log}"
        );
        assert!(log.trim_end().ends_with("--- run ended: pass ---"), "{log}");
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(utc(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(utc(1_796_664_636_123_456), "2026-12-07T17:30:36.123456Z");
    }
}
