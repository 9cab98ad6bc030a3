//! Recently verified bearer tokens, so a busy client's calls skip the token lookup. An entry is
//! trusted for at most `ttl` of real time: a token revoked elsewhere (another replica, the admin
//! CLI) stops working within that bound; one revoked through this server stops at once. Expiry is
//! still checked against the injected clock on every call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use voltplan_store::AccessToken;

pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<Vec<u8>, (AccessToken, Instant)>>,
}

/// Entries beyond this are dropped wholesale; a cold cache only costs one lookup per token.
const MAX_ENTRIES: usize = 100_000;

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, token_hash: &[u8]) -> Option<AccessToken> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(token_hash)
            .filter(|(_, verified)| verified.elapsed() < self.ttl)
            .map(|(token, _)| token.clone())
    }

    pub fn insert(&self, token_hash: Vec<u8>, token: AccessToken) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(token_hash, (token, Instant::now()));
    }

    pub fn remove(&self, token_hash: &[u8]) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> AccessToken {
        AccessToken {
            client_id: "c".into(),
            org_id: uuid::Uuid::nil(),
            expires_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn entries_live_for_the_ttl_and_can_be_dropped() {
        let cache = TokenCache::new(Duration::from_secs(60));
        cache.insert(vec![1], token());
        assert!(cache.get(&[1]).is_some());
        cache.remove(&[1]);
        assert!(cache.get(&[1]).is_none());
        let disabled = TokenCache::new(Duration::ZERO);
        disabled.insert(vec![3], token());
        assert!(disabled.get(&[3]).is_none());
    }
}
