//! The phone's log buffer: lines in logcat's `threadtime` format
//! (`MM-DD HH:MM:SS.mmm  PID  TID L TAG     : message`, UTC), numbered so a streaming reader
//! asks for what came after the last line it saw. Bounded: the oldest lines are dropped.

use std::collections::VecDeque;

/// Lines kept; older ones are dropped like a full ring buffer.
pub const LOG_CAPACITY: usize = 4096;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub time_us: u64,
    pub pid: u32,
    pub tid: u32,
    /// `V`, `D`, `I`, `W`, `E`.
    pub level: char,
    pub tag: String,
    pub message: String,
}

impl LogEntry {
    /// The entry as `logcat -v threadtime` prints it.
    pub fn threadtime(&self) -> String {
        let secs = self.time_us / 1_000_000;
        let ms = (self.time_us / 1000) % 1000;
        let (_, month, day) = civil_from_days((secs / 86_400) as i64);
        let tod = secs % 86_400;
        format!(
            "{month:02}-{day:02} {:02}:{:02}:{:02}.{ms:03} {:5} {:5} {} {:<8}: {}",
            tod / 3600,
            (tod / 60) % 60,
            tod % 60,
            self.pid,
            self.tid,
            self.level,
            self.tag,
            self.message
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The log buffer.
#[derive(Debug, Default)]
pub struct LogBuffer {
    entries: VecDeque<LogEntry>,
    /// Number of the first entry in `entries`.
    first: u64,
}

impl LogBuffer {
    pub fn push(&mut self, entry: LogEntry) {
        if self.entries.len() == LOG_CAPACITY {
            self.entries.pop_front();
            self.first += 1;
        }
        self.entries.push_back(entry);
    }

    /// The number the next entry will get.
    pub fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Entries numbered `from` and later (those already dropped are skipped).
    pub fn since(&self, from: u64) -> impl Iterator<Item = &LogEntry> {
        let skip = from.saturating_sub(self.first) as usize;
        self.entries.iter().skip(skip)
    }

    /// `logcat -c`.
    pub fn clear(&mut self) {
        self.first = self.end();
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: u64, msg: &str) -> LogEntry {
        LogEntry {
            time_us: t,
            pid: 1234,
            tid: 1250,
            level: 'I',
            tag: "Tag".into(),
            message: msg.into(),
        }
    }

    #[test]
    fn threadtime_format() {
        // 2026-12-07 17:30:36.123 UTC
        let t = 1_796_664_636_123_000;
        assert_eq!(
            entry(t, "hello").threadtime(),
            "12-07 17:30:36.123  1234  1250 I Tag     : hello"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn bounded_and_numbered() {
        let mut b = LogBuffer::default();
        for i in 0..LOG_CAPACITY as u64 + 10 {
            b.push(entry(i, &i.to_string()));
        }
        assert_eq!(b.end(), LOG_CAPACITY as u64 + 10);
        assert_eq!(b.since(0).next().map(|e| e.message.as_str()), Some("10"));
        assert_eq!(b.since(b.end() - 1).count(), 1);
        b.clear();
        assert_eq!(b.since(0).count(), 0);
        b.push(entry(1, "after"));
        assert_eq!(b.since(LOG_CAPACITY as u64 + 10).count(), 1);
    }
}
