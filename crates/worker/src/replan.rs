//! The plan step's tests: when a kept plan no longer fits the car, and the fingerprint of its
//! inputs.

use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, Utc};
use voltplan_core::planner::Plan;
use voltplan_core::vehicle::{EvSettings, EvState};

use crate::monitor::Observed;
use crate::runtime::VehicleRuntime;

/// The battery level the plan expects at `at`, interpolated within its intervals.
pub fn expected_level_at(plan: &Plan, at: DateTime<Utc>) -> f64 {
    let mut level = plan.start_battery_level;
    for interval in &plan.intervals {
        if at >= interval.end {
            level = interval.battery_level_end;
            continue;
        }
        if at > interval.start {
            let share = (at - interval.start).num_milliseconds() as f64
                / (interval.end - interval.start).num_milliseconds().max(1) as f64;
            level += (interval.battery_level_end - level) * share;
        }
        break;
    }
    level
}

/// The car is further from the plan's expected level than `threshold` percentage points.
pub(crate) fn plan_drifted(
    plan: &Plan,
    level: Option<f64>,
    now: DateTime<Utc>,
    threshold: f64,
) -> bool {
    level.is_some_and(|l| (l - expected_level_at(plan, now)).abs() > threshold)
}

/// A fingerprint of what the plan depends on besides the battery level (drift is checked
/// separately): settings, session, place, boost, fallback and price coverage. A change re-plans.
pub fn plan_inputs_hash(
    settings: &EvSettings,
    state: &EvState,
    rt: &VehicleRuntime,
    observed: &Observed,
    price_coverage_end: Option<DateTime<Utc>>,
) -> u64 {
    let mut h = DefaultHasher::new();
    // Settings have floats; their JSON text is a stable, hashable form.
    serde_json::to_string(settings)
        .unwrap_or_default()
        .hash(&mut h);
    rt.session.as_ref().map(|s| s.id).hash(&mut h);
    observed.plugged_in.hash(&mut h);
    observed.at_home.hash(&mut h);
    crate::boost::boost_active(state).hash(&mut h);
    state.charge_target_max.hash(&mut h);
    state
        .reported_battery_capacity_kwh
        .map(f64::to_bits)
        .hash(&mut h);
    rt.fallback.hash(&mut h);
    price_coverage_end.hash(&mut h);
    // A pause ending changes nothing in the settings but everything in the plan.
    settings
        .pause_power_until
        .is_some_and(|p| p > observed.at)
        .hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{plan_with, t0};
    use chrono::Duration;

    #[test]
    fn expected_level_interpolates_within_blocks_and_holds_between_them() {
        let plan = plan_with(&[(0, 60), (120, 180)]);
        assert_eq!(expected_level_at(&plan, t0() - Duration::minutes(5)), 30.0);
        assert!((expected_level_at(&plan, t0() + Duration::minutes(30)) - 35.0).abs() < 1e-9);
        assert_eq!(expected_level_at(&plan, t0() + Duration::minutes(90)), 40.0);
        assert_eq!(expected_level_at(&plan, t0() + Duration::hours(5)), 50.0);
    }
}
