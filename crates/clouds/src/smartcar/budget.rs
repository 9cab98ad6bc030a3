//! Per-vehicle call budgets: a token bucket per car, in memory and per process, so Voltplan stays
//! under Smartcar's advice and the OEMs' own quotas before Smartcar (or the car maker) throttles.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::config::CallBudget;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated_at: DateTime<Utc>,
    budget: CallBudget,
}

/// Buckets by Voltplan's vehicle id.
#[derive(Debug, Default)]
pub(crate) struct CallBudgets {
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

impl CallBudgets {
    /// Takes one call from the vehicle's bucket, or says how long until one is available.
    pub(crate) fn try_take(
        &self,
        vehicle: Uuid,
        budget: CallBudget,
        now: DateTime<Utc>,
    ) -> Result<(), Duration> {
        let capacity = f64::from(budget.capacity);
        let refill_secs = budget.refill_every.as_secs_f64();
        if capacity <= 0.0 || refill_secs <= 0.0 {
            // A zero budget would refuse forever; treat it as "no budget" rather than a lock-out.
            return Ok(());
        }
        let per_second = capacity / refill_secs;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = buckets.entry(vehicle).or_insert(Bucket {
            tokens: capacity,
            updated_at: now,
            budget,
        });
        if bucket.budget != budget {
            // The make (or the configuration) changed: keep the fill level within the new size.
            bucket.budget = budget;
            bucket.tokens = bucket.tokens.min(capacity);
        }
        let elapsed = (now - bucket.updated_at).to_std().unwrap_or_default();
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * per_second).min(capacity);
        bucket.updated_at = now.max(bucket.updated_at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second;
            Err(Duration::from_secs_f64(wait.ceil().max(1.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).single().unwrap()
    }

    #[test]
    fn a_full_bucket_allows_its_capacity_then_refuses_until_refilled() {
        let budgets = CallBudgets::default();
        let car = Uuid::from_u128(1);
        let budget = CallBudget::per_hour(3);
        for _ in 0..3 {
            assert_eq!(budgets.try_take(car, budget, t0()), Ok(()));
        }
        // One call refills every 20 minutes.
        assert_eq!(
            budgets.try_take(car, budget, t0()),
            Err(Duration::from_secs(1200))
        );
        let later = t0() + chrono::Duration::minutes(20);
        assert_eq!(budgets.try_take(car, budget, later), Ok(()));
        assert!(budgets.try_take(car, budget, later).is_err());
    }

    #[test]
    fn vehicles_have_their_own_buckets() {
        let budgets = CallBudgets::default();
        let budget = CallBudget::per_day(1);
        assert_eq!(budgets.try_take(Uuid::from_u128(1), budget, t0()), Ok(()));
        assert_eq!(budgets.try_take(Uuid::from_u128(2), budget, t0()), Ok(()));
        assert!(budgets.try_take(Uuid::from_u128(1), budget, t0()).is_err());
    }
}
