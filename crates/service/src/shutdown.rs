//! The shutdown signal of every binary: the first SIGTERM or SIGINT (Ctrl-C).

use tokio::signal::unix::{SignalKind, signal as unix_signal};
use tokio_util::sync::CancellationToken;

/// Resolves on the first SIGTERM or SIGINT. If SIGTERM cannot be listened for, only SIGINT
/// counts.
pub async fn signal() {
    match unix_signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _interrupted = tokio::signal::ctrl_c().await;
        }
    }
}

/// A token cancelled on the first SIGTERM or SIGINT (by a task spawned on the current runtime);
/// `then` runs first, to say what stopping means for this binary.
pub fn token(then: impl FnOnce() + Send + 'static) -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        signal().await;
        then();
        cancel.cancel();
    });
    token
}
