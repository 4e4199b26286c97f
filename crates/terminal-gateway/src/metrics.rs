//! Counters for `/metrics` (Prometheus text format). Plain atomics: a handful of series, no
//! label cardinality to manage.

use std::{
    fmt::Write,
    sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
};

/// Why a connection was refused or a terminal failed to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectError {
    MissingTicket,
    BadTicket,
    ExpiredTicket,
    OtherSession,
    ReusedTicket,
    NoSession,
    SessionEnded,
    TooMany,
    Engine,
    KeyRevoked,
}

impl ConnectError {
    pub const ALL: [ConnectError; 10] = [
        Self::MissingTicket,
        Self::BadTicket,
        Self::ExpiredTicket,
        Self::OtherSession,
        Self::ReusedTicket,
        Self::NoSession,
        Self::SessionEnded,
        Self::TooMany,
        Self::Engine,
        Self::KeyRevoked,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::MissingTicket => "missing_ticket",
            Self::BadTicket => "bad_ticket",
            Self::ExpiredTicket => "expired_ticket",
            Self::OtherSession => "other_session",
            Self::ReusedTicket => "reused_ticket",
            Self::NoSession => "no_session",
            Self::SessionEnded => "session_ended",
            Self::TooMany => "too_many",
            Self::Engine => "engine",
            Self::KeyRevoked => "key_revoked",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    pub open: AtomicI64,
    pub opened: AtomicU64,
    /// Keystrokes and pastes, client to shell.
    pub bytes_in: AtomicU64,
    /// Terminal output, shell to client.
    pub bytes_out: AtomicU64,
    /// Shells that could not be ended after their client left.
    pub leaked_shells: AtomicU64,
    pub recordings_failed: AtomicU64,
    connect_errors: [AtomicU64; ConnectError::ALL.len()],
}

impl Metrics {
    pub fn connect_error(&self, e: ConnectError) {
        self.connect_errors[e as usize].fetch_add(1, Relaxed);
    }

    pub fn connect_errors(&self, e: ConnectError) -> u64 {
        self.connect_errors[e as usize].load(Relaxed)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut one = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one(
            "labwright_terminals_open",
            "gauge",
            "Terminals open now.",
            self.open.load(Relaxed).to_string(),
        );
        one(
            "labwright_terminals_opened_total",
            "counter",
            "Terminals opened.",
            self.opened.load(Relaxed).to_string(),
        );
        one(
            "labwright_terminal_leaked_shells_total",
            "counter",
            "Shells that could not be ended after their terminal closed.",
            self.leaked_shells.load(Relaxed).to_string(),
        );
        one(
            "labwright_terminal_recordings_failed_total",
            "counter",
            "Recordings that could not be stored.",
            self.recordings_failed.load(Relaxed).to_string(),
        );
        let _ = writeln!(
            s,
            "# HELP labwright_terminal_bytes_total Terminal bytes by direction.\n\
             # TYPE labwright_terminal_bytes_total counter\n\
             labwright_terminal_bytes_total{{direction=\"in\"}} {}\n\
             labwright_terminal_bytes_total{{direction=\"out\"}} {}",
            self.bytes_in.load(Relaxed),
            self.bytes_out.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP labwright_terminal_connect_errors_total Connections refused, by reason.\n\
             # TYPE labwright_terminal_connect_errors_total counter"
        );
        for e in ConnectError::ALL {
            let _ = writeln!(
                s,
                "labwright_terminal_connect_errors_total{{reason=\"{}\"}} {}",
                e.label(),
                self.connect_errors(e)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_series() {
        let m = Metrics::default();
        for (i, e) in ConnectError::ALL.into_iter().enumerate() {
            assert_eq!(e as usize, i);
        }
        m.connect_error(ConnectError::ReusedTicket);
        m.bytes_out.fetch_add(5, Relaxed);
        let text = m.render();
        assert!(
            text.contains("labwright_terminal_connect_errors_total{reason=\"reused_ticket\"} 1")
        );
        assert!(text.contains("labwright_terminal_connect_errors_total{reason=\"bad_ticket\"} 0"));
        assert!(text.contains("labwright_terminal_bytes_total{direction=\"out\"} 5"));
    }
}
