//! Slows down guessing of client secrets: after too many failed token requests from one client
//! address, or for one client id, within a window, further failures are answered 429 until the
//! window ends. Only failures are counted and throttled: a request with the right secret always
//! gets its token, so an attacker can lock out neither a partner's address (behind a shared
//! proxy) nor its client id. Counting per client id as well catches guesses spread over many
//! addresses.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureKey {
    Address(IpAddr),
    /// The SHA-256 of the client id as sent: fixed-size, whatever an attacker sends.
    Client([u8; 32]),
}

pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<FailureKey, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

/// Entries kept before windows that ended are forgotten.
const PRUNE_ABOVE: usize = 100_000;

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` while `key` has used up its failures.
    pub fn blocked_for(&self, key: &FailureKey, now: DateTime<Utc>) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(key)?;
        let ends = entry.started + self.window;
        (entry.failures >= self.max_failures && now < ends)
            .then(|| (ends - now).num_seconds().max(1) as u64)
    }

    pub fn record_failure(&self, key: FailureKey, now: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Keep memory bounded under a flood of addresses or ids: forget windows that ended.
        if entries.len() > PRUNE_ABOVE {
            let window = self.window;
            entries.retain(|_, w| w.started + window > now);
        }
        let entry = entries.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if entry.started + self.window <= now {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        entry.failures += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::seconds(60));
        let ip = FailureKey::Address("127.0.0.1".parse().unwrap());
        let t0 = Utc::now();
        for _ in 0..3 {
            assert_eq!(limiter.blocked_for(&ip, t0), None);
            limiter.record_failure(ip.clone(), t0);
        }
        assert_eq!(
            limiter.blocked_for(&ip, t0 + Duration::seconds(10)),
            Some(50)
        );
        assert_eq!(limiter.blocked_for(&ip, t0 + Duration::seconds(60)), None);
        let other = FailureKey::Address("127.0.0.2".parse().unwrap());
        assert_eq!(limiter.blocked_for(&other, t0), None);
        let client = FailureKey::Client([0; 32]);
        assert_eq!(limiter.blocked_for(&client, t0), None);
    }
}
