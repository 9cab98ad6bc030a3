//! Seeded failure injection: the ways real vehicle clouds misbehave, reproducible from a seed.

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// How often a vehicle's cloud misbehaves. Rates are probabilities per call, in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FailureProfile {
    /// Any call (read or command) finds the car asleep or offline. 1.0 = the car is offline.
    pub unreachable_rate: f64,
    /// A command is refused with a transient error (and does not act).
    pub command_failure_rate: f64,
    /// A command is accepted, but the car never acts on it: what OEM clouds do now and then, and
    /// why the worker must confirm a command by reading the state afterwards.
    pub command_ignored_rate: f64,
    /// Per-vehicle request quota; `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
}

impl FailureProfile {
    /// Never fails.
    pub fn none() -> Self {
        Self::default()
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("unreachable_rate", self.unreachable_rate),
            ("command_failure_rate", self.command_failure_rate),
            ("command_ignored_rate", self.command_ignored_rate),
        ] {
            if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
                return Err(format!("{name} must be in [0, 1]"));
            }
        }
        if let Some(limit) = self.rate_limit
            && (limit.burst == 0 || limit.refill_every.is_zero())
        {
            return Err("rate_limit needs burst ≥ 1 and a non-zero refill_every".into());
        }
        Ok(())
    }
}

/// A token bucket, as Smartcar describes its limits: `burst` calls at once, one more every
/// `refill_every` (Smartcar's application limit is 120 refilling at 2 per minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub burst: u32,
    pub refill_every: Duration,
}

/// Which vehicles a failure profile applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureScope {
    /// Every vehicle without a profile of its own.
    Global,
    Vehicle(Uuid),
}

/// One vehicle's token bucket, measured in simulated time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    tokens: f64,
    refilled_at: Option<DateTime<Utc>>,
}

impl TokenBucket {
    pub fn full() -> Self {
        Self {
            tokens: f64::INFINITY,
            refilled_at: None,
        }
    }

    /// Takes a token, or says how long until one is available.
    pub fn take(&mut self, limit: RateLimit, now: DateTime<Utc>) -> Result<(), Duration> {
        let capacity = f64::from(limit.burst);
        let refill_secs = limit.refill_every.as_secs_f64();
        let elapsed_secs = self
            .refilled_at
            .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(f64::INFINITY);
        self.tokens = (self.tokens + elapsed_secs / refill_secs).min(capacity);
        self.refilled_at = Some(now);
        // Tolerate rounding, so a caller waiting exactly `retry_after` is let through.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            Ok(())
        } else {
            let wait_secs = (1.0 - self.tokens) * refill_secs;
            // Round up to whole milliseconds so retrying after `retry_after` always succeeds;
            // the small allowance keeps float noise from adding a spurious millisecond.
            Err(Duration::from_millis(
                (wait_secs * 1000.0 - 1e-6).ceil().max(1.0) as u64,
            ))
        }
    }
}

/// Rolls a die that comes up true with probability `rate`. Always draws, so the sequence of draws
/// for a given sequence of calls does not depend on the rates.
pub(crate) fn roll(rng: &mut StdRng, rate: f64) -> bool {
    rng.gen_range(0.0..1.0) < rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn bucket_allows_a_burst_then_reports_the_wait_for_the_next_token() {
        let limit = RateLimit {
            burst: 2,
            refill_every: Duration::from_secs(30),
        };
        let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let mut bucket = TokenBucket::full();
        assert!(bucket.take(limit, t0).is_ok());
        assert!(bucket.take(limit, t0).is_ok());
        assert_eq!(bucket.take(limit, t0), Err(Duration::from_secs(30)));
        let later = t0 + chrono::Duration::seconds(10);
        assert_eq!(bucket.take(limit, later), Err(Duration::from_secs(20)));
        assert!(
            bucket
                .take(limit, t0 + chrono::Duration::seconds(30))
                .is_ok()
        );
    }

    #[test]
    fn invalid_rates_are_rejected() {
        let profile = FailureProfile {
            unreachable_rate: 1.5,
            ..FailureProfile::none()
        };
        assert!(profile.validate().is_err());
    }
}
