//! Minimal sd_notify: `READY=1`, `STOPPING=1` and watchdog pings over `$NOTIFY_SOCKET`.
//! Without systemd (no `NOTIFY_SOCKET`) every call is a no-op.

use std::{os::unix::net::UnixDatagram, time::Duration};

pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    if let Err(e) = sock.send_to(state.as_bytes(), &path) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Half the watchdog period systemd asked for, if it asked.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
