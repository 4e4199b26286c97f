//! Test support: poll a condition until it holds (a liveness deadline, not a timing assertion).

use std::time::{Duration, Instant};

/// Polls `f` every few milliseconds until it returns `Some`, panicking with `what` after 20 s.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
