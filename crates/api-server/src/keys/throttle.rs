//! Throttling of failed authentication, per source address (REST and the host link alike).
//!
//! An address may present `allowed` wrong keys (malformed, unknown or revoked); each further one
//! blocks it for a time that doubles from `first_block` up to [`MAX_BLOCK`]. While blocked,
//! nothing it presents is even looked up: the answer is `rate_limited` (HTTP 429 with
//! `Retry-After`, gRPC `RESOURCE_EXHAUSTED` with a `retry-after` entry). A success resets the
//! address; so does [`FORGET_AFTER`] without failures. A missing key is not a failure (a page
//! asks before it has one).
//!
//! Per address rather than per key prefix: prefixes are shown in the key list, so throttling by
//! prefix would let anyone lock a known key out with wrong keys carrying its prefix.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The longest block.
pub const MAX_BLOCK: Duration = Duration::from_secs(300);
/// An address without a failure for this long starts afresh.
pub const FORGET_AFTER: Duration = Duration::from_secs(900);
/// Addresses tracked at most (the oldest are forgotten past it).
const MAX_TRACKED: usize = 100_000;

pub struct Throttle {
    allowed: u32,
    first_block: Duration,
    state: Mutex<HashMap<IpAddr, Entry>>,
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl Throttle {
    pub fn new(allowed: u32, first_block: Duration) -> Self {
        Self {
            allowed,
            first_block,
            state: Mutex::default(),
        }
    }

    /// The throttle the configuration asks for (`auth_failures_allowed`, `auth_backoff_ms`).
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self::new(
            config.auth_failures_allowed,
            Duration::from_millis(config.auth_backoff_ms),
        )
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long `addr` must still wait, if it is blocked at `now`.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let until = self.state().get(&addr)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failed authentication from `addr`.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let mut state = self.state();
        if state.len() >= MAX_TRACKED && !state.contains_key(&addr) {
            state.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
            if state.len() >= MAX_TRACKED {
                // Still full: forget the quietest half.
                let mut lasts: Vec<Instant> = state.values().map(|e| e.last).collect();
                lasts.sort_unstable();
                let cut = lasts[lasts.len() / 2];
                state.retain(|_, e| e.last > cut);
            }
        }
        let e = state.entry(addr).or_insert(Entry {
            failures: 0,
            last: now,
            blocked_until: None,
        });
        if now.duration_since(e.last) >= FORGET_AFTER {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        if e.failures > self.allowed {
            let doublings = (e.failures - self.allowed - 1).min(20);
            let block = self
                .first_block
                .saturating_mul(1 << doublings)
                .min(MAX_BLOCK);
            e.blocked_until = Some(now + block);
            tracing::warn!(%addr, failures = e.failures, block_secs = block.as_secs_f64(), "failed authentications: address blocked");
        }
    }

    /// Records a successful authentication from `addr`.
    pub fn succeeded(&self, addr: IpAddr) {
        let mut state = self.state();
        if state.contains_key(&addr) {
            state.remove(&addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_allowance_block_with_doubling_backoff_and_success_resets() {
        let t = Throttle::new(3, Duration::from_secs(1));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let now = Instant::now();
        for _ in 0..3 {
            t.failed(a, now);
            assert_eq!(t.blocked(a, now), None);
        }
        t.failed(a, now);
        assert_eq!(t.blocked(a, now), Some(Duration::from_secs(1)));
        assert_eq!(t.blocked(b, now), None, "other addresses are not affected");
        let later = now + Duration::from_secs(1);
        assert_eq!(t.blocked(a, later), None);
        t.failed(a, later);
        assert_eq!(t.blocked(a, later), Some(Duration::from_secs(2)));
        for _ in 0..30 {
            t.failed(a, later);
        }
        assert_eq!(t.blocked(a, later), Some(MAX_BLOCK));
        t.succeeded(a);
        assert_eq!(t.blocked(a, later), None);
        // A long quiet time forgets the count.
        for _ in 0..4 {
            t.failed(b, now);
        }
        t.failed(b, now + FORGET_AFTER + Duration::from_secs(301));
        assert_eq!(
            t.blocked(b, now + FORGET_AFTER + Duration::from_secs(301)),
            None
        );
    }
}
