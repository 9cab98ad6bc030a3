//! Slows down guessing of client secrets: after too many failed token requests from one address
//! within a window, further token requests from it are refused until the window ends. Successful
//! requests are never counted, so a busy, well-behaved client is not throttled.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` while the address is blocked.
    pub fn blocked_for(&self, ip: IpAddr, now: DateTime<Utc>) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(&ip)?;
        let ends = entry.started + self.window;
        (entry.failures >= self.max_failures && now < ends)
            .then(|| (ends - now).num_seconds().max(1) as u64)
    }

    pub fn record_failure(&self, ip: IpAddr, now: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Keep memory bounded under a flood of addresses: forget windows that ended.
        if entries.len() > 100_000 {
            let window = self.window;
            entries.retain(|_, w| w.started + window > now);
        }
        let entry = entries.entry(ip).or_insert(Window {
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
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Utc::now();
        for _ in 0..3 {
            assert_eq!(limiter.blocked_for(ip, t0), None);
            limiter.record_failure(ip, t0);
        }
        assert_eq!(
            limiter.blocked_for(ip, t0 + Duration::seconds(10)),
            Some(50)
        );
        assert_eq!(limiter.blocked_for(ip, t0 + Duration::seconds(60)), None);
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(limiter.blocked_for(other, t0), None);
    }
}
