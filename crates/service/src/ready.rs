//! Retry until ready: a dependency a binary cannot work without (the Docker engine) is tried
//! with capped, jittered backoff until it answers or the binary is told to stop.

use std::{fmt::Display, future::Future, time::Duration};

use labwright_core::retry::Backoff;
use tokio_util::sync::CancellationToken;

/// The backoff of [`until_ready`] loops at start: from 0.5 s up to 10 s.
pub fn start_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(500), Duration::from_secs(10))
}

/// Calls `attempt` until it succeeds, waiting `backoff` between failures (logged as a warning on
/// the first and every 20th). `None` when `shutdown` is cancelled first.
pub async fn until_ready<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut backoff: Backoff,
    mut attempt: F,
) -> Option<T>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = attempt() => r,
        };
        match result {
            Ok(v) => return Some(v),
            Err(e) => {
                let delay = backoff.next_delay();
                if backoff.worth_logging() {
                    tracing::warn!(error = %e, attempts = backoff.attempts(), "cannot reach the {what}; retrying");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fast() -> Backoff {
        Backoff::new(Duration::from_millis(1), Duration::from_millis(5))
    }

    #[tokio::test]
    async fn retries_until_the_dependency_answers() {
        let calls = AtomicU32::new(0);
        let got = until_ready("test peer", &CancellationToken::new(), fast(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err("refused")
            } else {
                Ok(42)
            }
        })
        .await;
        assert_eq!(got, Some(42));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn stops_when_cancelled() {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            stop.cancel();
        });
        let got: Option<()> = until_ready("test peer", &shutdown, fast(), || async {
            Err::<(), _>("refused")
        })
        .await;
        assert_eq!(got, None);
    }
}
