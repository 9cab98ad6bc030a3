//! When to cycle a vehicle next. Adaptive: slow while nothing can happen, fast around planned
//! switches and while a command awaits confirmation; never later than the next planned switch.
//!
//! Rules (also in `docs/worker.md`):
//! - unplugged: `idle_interval` (default 5 min);
//! - plugged in: `plugged_interval` (5 min), `active_interval` (1 min) within `near_switch`
//!   (10 min) of the next planned start or stop, while a boost is requested or running, while the
//!   car tops up to its target after the plan's last block, and while
//!   a command awaits confirmation (then right after its expected effect);
//! - never after the next planned switch, the end of a pause, or a pending retry;
//! - revoked authorisation: `revoked_interval` (15 min); read failures: backoff;
//! - never sooner than `min_interval` (5 s).

use chrono::{DateTime, Duration, Utc};
use voltplan_clouds::CloudError;
use voltplan_core::planner::Plan;
use voltplan_core::vehicle::{EvSettings, EvState};

use crate::config::WorkerConfig;
use crate::monitor::Observed;
use crate::runtime::VehicleRuntime;

/// The next start or stop of the plan after `now` (the ends of contiguous blocks only).
pub fn next_switch(plan: &Plan, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let intervals = &plan.intervals;
    let mut switches = Vec::with_capacity(intervals.len() * 2);
    for (k, interval) in intervals.iter().enumerate() {
        if k == 0 || intervals[k - 1].end != interval.start {
            switches.push(interval.start);
        }
        if intervals
            .get(k + 1)
            .is_none_or(|next| next.start != interval.end)
        {
            switches.push(interval.end);
        }
    }
    switches.into_iter().filter(|s| *s > now).min()
}

pub fn next_cycle_at(
    state: &EvState,
    rt: &VehicleRuntime,
    settings: &EvSettings,
    plan: Option<&Plan>,
    observed: &Observed,
    now: DateTime<Utc>,
    cfg: &WorkerConfig,
) -> DateTime<Utc> {
    if state.lifecycle_state == crate::monitor::LIFECYCLE_ERROR {
        return now + cfg.revoked_interval;
    }
    let mut next = if observed.plugged_in {
        now + cfg.plugged_interval
    } else {
        now + cfg.idle_interval
    };
    if observed.plugged_in {
        let switch = plan.and_then(|p| next_switch(p, now));
        if let Some(switch) = switch {
            if switch - now <= cfg.near_switch {
                next = next.min(now + cfg.active_interval);
            }
            next = next.min(switch);
        }
        let topping_up = plan.is_some_and(|p| crate::steer::tops_up(p, observed, now));
        if crate::boost::boost_active(state) || topping_up {
            next = next.min(now + cfg.active_interval);
        }
        // Topping up inside a grid group's window stops at its end, to the second.
        if topping_up
            && let Some(end) = plan
                .and_then(|p| p.shared_limit.as_ref())
                .and_then(|s| s.window_at(now))
                .map(|w| w.end)
        {
            next = next.min(end);
        }
        if let Some(pending) = &rt.pending {
            let confirm_at = if pending.accepted {
                pending.effective_at + Duration::seconds(1)
            } else {
                now + cfg.active_interval
            };
            next = next.min(confirm_at.max(now + cfg.min_interval));
        }
        if let Some(until) = settings.pause_power_until.filter(|p| *p > now) {
            next = next.min(until);
        }
    }
    if let Some(retry) = rt.retry_at.filter(|r| *r > now) {
        next = next.min(retry);
    }
    next.max(now + cfg.min_interval)
}

/// After a failed read: back off, or wait for a human when only one can help.
pub fn after_read_failure(
    rt: &VehicleRuntime,
    state: &EvState,
    error: &CloudError,
    now: DateTime<Utc>,
    cfg: &WorkerConfig,
) -> DateTime<Utc> {
    if state.lifecycle_state == crate::monitor::LIFECYCLE_ERROR {
        return now + cfg.revoked_interval;
    }
    let factor = 1i32 << rt.read_failures.saturating_sub(1).min(16);
    let backoff = (cfg.retry_base * factor).min(cfg.idle_interval);
    let wait = match error {
        CloudError::RateLimited { retry_after } => Duration::from_std(*retry_after)
            .unwrap_or(backoff)
            .max(backoff),
        _ => backoff,
    };
    now + wait.max(cfg.min_interval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{plan_with, t0};

    #[test]
    fn next_switch_skips_the_joint_of_contiguous_intervals() {
        let plan = plan_with(&[(0, 30), (30, 60), (120, 150)]);
        let at = |m: i64| t0() + Duration::minutes(m);
        assert_eq!(next_switch(&plan, at(-10)), Some(at(0)));
        assert_eq!(next_switch(&plan, at(10)), Some(at(60)));
        assert_eq!(next_switch(&plan, at(70)), Some(at(120)));
        assert_eq!(next_switch(&plan, at(150)), None);
    }
}
