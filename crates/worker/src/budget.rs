//! A call budget per vehicle cloud: every OEM cloud limits how often an application may call it,
//! and exceeding the limit gets the application throttled or banned for all its cars. The worker
//! therefore never calls a cloud faster than its budget, however many vehicles are due.
//!
//! Rules (also in `docs/worker.md`):
//! - a token bucket per cloud service and worker process: `calls_per_minute` on average, bursts of
//!   up to `burst` calls; time is the injected clock (the sandbox runs on it too);
//! - a command takes a token whenever one is left; a read leaves `command_reserve` tokens for
//!   commands, so reads of a large fleet never starve the start/stop that must happen at a switch;
//! - a call that finds no token is not made: the vehicle is deferred to a time at which the bucket
//!   will have refilled for it, behind the vehicles deferred before it, so a backlog drains at the
//!   budget's rate instead of returning all at once.

use chrono::{DateTime, Duration, Utc};

/// How often one worker may call one cloud.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallBudget {
    pub calls_per_minute: f64,
    /// Calls that may be made at once after a quiet spell.
    pub burst: f64,
    /// Tokens reads leave for commands.
    pub command_reserve: f64,
}

impl CallBudget {
    /// `calls_per_minute` on average, a burst of 10 seconds' worth (at least 1 call), and a tenth
    /// of the burst kept for commands.
    pub fn per_minute(calls_per_minute: f64) -> Self {
        let burst = (calls_per_minute / 6.0).max(1.0);
        Self {
            calls_per_minute,
            burst,
            command_reserve: (burst / 10.0).floor(),
        }
    }
}

/// What a call is for: commands may use the reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Read,
    Command,
}

/// The bucket of one cloud.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    budget: CallBudget,
    tokens: f64,
    updated_at: DateTime<Utc>,
    /// Where the deferred queue ends: the next deferred call comes back after it.
    deferred_until: DateTime<Utc>,
}

impl TokenBucket {
    pub fn new(budget: CallBudget, now: DateTime<Utc>) -> Self {
        Self {
            budget,
            tokens: budget.burst,
            updated_at: now,
            deferred_until: now,
        }
    }

    fn per_second(&self) -> f64 {
        self.budget.calls_per_minute.max(1e-9) / 60.0
    }

    /// Takes a token for a call now, or says when to try again.
    pub fn try_take(&mut self, kind: CallKind, now: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
        if now > self.updated_at {
            let elapsed = (now - self.updated_at).num_milliseconds() as f64 / 1000.0;
            self.tokens = (self.tokens + elapsed * self.per_second()).min(self.budget.burst);
            self.updated_at = now;
        }
        let needed = match kind {
            CallKind::Read => 1.0 + self.budget.command_reserve,
            CallKind::Command => 1.0,
        };
        if self.tokens >= needed {
            self.tokens -= 1.0;
            return Ok(());
        }
        let refill = Duration::milliseconds(
            ((needed - self.tokens) / self.per_second() * 1000.0).ceil() as i64,
        );
        let spacing = Duration::milliseconds((1000.0 / self.per_second()).ceil().max(1.0) as i64);
        let retry_at = (now + refill).max(self.deferred_until.max(now) + spacing);
        self.deferred_until = retry_at;
        Err(retry_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::t0;

    #[test]
    fn a_burst_is_served_then_calls_wait_for_the_rate() {
        // 60 calls per minute, a burst of 10, one token kept for commands.
        let mut bucket = TokenBucket::new(CallBudget::per_minute(60.0), t0());
        for _ in 0..9 {
            assert_eq!(bucket.try_take(CallKind::Read, t0()), Ok(()));
        }
        // The reserve is left for a command.
        let retry = bucket.try_take(CallKind::Read, t0()).unwrap_err();
        assert_eq!(bucket.try_take(CallKind::Command, t0()), Ok(()));
        assert!(bucket.try_take(CallKind::Command, t0()).is_err());
        assert!(retry >= t0() + Duration::seconds(1));
        // A second later one token is back: a command may take it, a read may not.
        let later = t0() + Duration::seconds(1);
        assert_eq!(bucket.try_take(CallKind::Command, later), Ok(()));
    }

    #[test]
    fn deferred_calls_come_back_spread_at_the_budgets_rate() {
        let mut bucket = TokenBucket::new(CallBudget::per_minute(60.0), t0());
        while bucket.try_take(CallKind::Read, t0()).is_ok() {}
        let retries: Vec<_> = (0..100)
            .map(|_| bucket.try_take(CallKind::Read, t0()).unwrap_err())
            .collect();
        for pair in retries.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::seconds(1), "{pair:?}");
        }
        // Over any simulated span, no more calls than the burst plus the rate allow.
        let mut bucket = TokenBucket::new(CallBudget::per_minute(60.0), t0());
        let mut made = 0;
        for second in 0..600 {
            let now = t0() + Duration::milliseconds(second * 100);
            for _ in 0..5 {
                if bucket.try_take(CallKind::Read, now).is_ok() {
                    made += 1;
                }
            }
        }
        // 60 s at 1 call/s plus a burst of 10 (less the reserve of 1 that reads leave).
        assert!((68..=70).contains(&made), "{made}");
    }
}
