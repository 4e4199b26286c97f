//! The thread each driver runs to read its device continuously: state shared with the
//! controller under a mutex, a condition variable signalled on every change, a stop flag, the
//! thread joined when the controller is dropped, and the backoff between reopen attempts.

use std::{
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use labwright_core::retry::Backoff;

use crate::NodeProblem;

/// State shared between a driver's thread and its controller.
pub struct Shared<S> {
    state: Mutex<S>,
    changed: Condvar,
    stop: AtomicBool,
}

impl<S> Shared<S> {
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the state and wakes every waiter.
    pub fn update<T>(&self, f: impl FnOnce(&mut S) -> T) -> T {
        let out = f(&mut self.lock());
        self.changed.notify_all();
        out
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, waking early when the driver is stopped.
    pub fn pause(&self, d: Duration) {
        let guard = self.lock();
        if !self.stopping() {
            let _ = self.changed.wait_timeout(guard, d);
        }
    }

    /// Waits until `check` answers (re-checked on every change) or `timeout` passes (`None`).
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&mut S) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(v) = check(&mut st) {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A driver's running thread; dropping it stops and joins the thread.
pub struct Worker<S> {
    shared: Arc<Shared<S>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: Send + 'static> Worker<S> {
    /// Starts `run` on a thread named `name` over `state`.
    pub fn spawn(
        name: String,
        path: &str,
        state: S,
        run: impl FnOnce(Arc<Shared<S>>) + Send + 'static,
    ) -> Result<Self, NodeProblem> {
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(for_thread))
            .map_err(|e| NodeProblem::Other {
                path: path.to_string(),
                message: format!("cannot start the driver thread: {e}"),
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }
}

impl<S> Worker<S> {
    pub fn shared(&self) -> &Shared<S> {
        &self.shared
    }
}

impl<S> Drop for Worker<S> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Backoff between attempts to reopen a device that went away: 200 ms doubling to 2 s, with
/// jitter.
pub fn reopen_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(200), Duration::from_secs(2))
}
