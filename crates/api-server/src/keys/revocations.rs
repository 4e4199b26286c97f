//! Revocation that cuts off: every authenticated [`Caller`](super::Caller) carries a
//! cancellation token of its key, cancelled when the key is revoked, through this replica
//! ([`Keys::revoke`](super::Keys::revoke)) or any other (the `key.revoked` event on the bus, fed in by the composition
//! root). Long-lived connections (the events and live view WebSockets, host links) end on it.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use labwright_core::ids::ApiKeyId;
use tokio_util::sync::CancellationToken;

/// The keys being watched on this replica and the keys known to be revoked.
#[derive(Default)]
pub struct Revocations {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    watched: HashMap<ApiKeyId, CancellationToken>,
    /// Kept for the life of the process (revoked keys never come back): a caller authenticated
    /// just before the revocation and watched just after it still gets a cancelled token.
    revoked: HashSet<ApiKeyId>,
}

impl Revocations {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token cancelled when `key` is revoked (already cancelled if it was).
    pub fn watch(&self, key: ApiKeyId) -> CancellationToken {
        let mut state = self.state();
        if state.revoked.contains(&key) {
            let token = CancellationToken::new();
            token.cancel();
            return token;
        }
        state.watched.entry(key).or_default().clone()
    }

    /// Cancels everything opened with `key`.
    pub fn revoked(&self, key: ApiKeyId) {
        let token = {
            let mut state = self.state();
            if !state.revoked.insert(key) {
                return;
            }
            state.watched.remove(&key)
        };
        if let Some(token) = token {
            tracing::info!(key_id = %key, "closing what the revoked key opened");
            token.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoking_cancels_watchers_before_and_after() {
        let r = Revocations::default();
        let (a, b) = (ApiKeyId::new(), ApiKeyId::new());
        let before = r.watch(a);
        let other = r.watch(b);
        r.revoked(a);
        assert!(before.is_cancelled());
        assert!(r.watch(a).is_cancelled(), "a late watcher is cut off too");
        assert!(!other.is_cancelled());
        r.revoked(a);
    }
}
