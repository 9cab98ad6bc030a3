//! Planning a wallbox session on an energy target (the module documentation of `wallbox`).

use chrono::{DateTime, Utc};
use voltplan_core::PriceZone;
use voltplan_core::planner::{
    DEFAULT_EFFICIENCY, DeadlineRule, PlanInput, PlannerSettings, VehicleSnapshot,
};
use voltplan_core::vehicle::BoostState;
use voltplan_core::wallbox::{WallboxSettings, WallboxState};
use voltplan_store::ocpp::TransactionRecord;

use super::types::{CarLevel, WallboxObserved};
use crate::replan::Fnv1a;

/// The energy a session is planned to deliver when neither the partner nor the charger's
/// history says: about a quarter of a mid-size battery, more than the typical daily need.
pub const COLD_START_NEED_KWH: f64 = 15.0;
/// Closed sessions needed before their median replaces the cold start.
const LEARN_FROM_SESSIONS: usize = 3;
/// How many past sessions the median is taken over.
const LEARN_WINDOW: usize = 10;

/// The session's energy target and its source (see the module's documentation).
pub(super) fn session_need(
    settings: &WallboxSettings,
    transactions: &[TransactionRecord],
) -> (f64, &'static str) {
    if let Some(kwh) = settings
        .session_energy_kwh
        .filter(|k| k.is_finite() && *k > 0.0)
    {
        return (kwh, "setting");
    }
    let mut past: Vec<f64> = transactions
        .iter()
        .rev()
        .filter_map(|t| Some((t.meter_stop_wh? - t.meter_start_wh) as f64 / 1000.0))
        .filter(|kwh| *kwh > 0.5)
        .take(LEARN_WINDOW)
        .collect();
    if past.len() < LEARN_FROM_SESSIONS {
        return (COLD_START_NEED_KWH, "default");
    }
    past.sort_by(f64::total_cmp);
    (past[past.len() / 2], "learned")
}

/// The grid energy the car on the cable needs to reach the wallbox's `minimum_charge_limit`
/// (capped by the car's own limit), with the planner's charging losses.
pub(super) fn car_need_kwh(settings: &WallboxSettings, car: &CarLevel) -> f64 {
    let target = settings
        .minimum_charge_limit
        .map_or(100.0, f64::from)
        .min(car.charge_target_max_pct.unwrap_or(100.0));
    ((target - car.level_pct).max(0.0) / 100.0 * car.capacity_kwh) / DEFAULT_EFFICIENCY
}

pub(super) fn plan_input(
    settings: &WallboxSettings,
    state: &WallboxState,
    observed: &WallboxObserved,
    zone: PriceZone,
) -> PlanInput {
    let deadline = match settings.charge_deadline_at {
        Some(at) => DeadlineRule::Daily {
            at,
            target_pct: 100.0,
        },
        None => DeadlineRule::None,
    };
    PlanInput {
        vehicle: VehicleSnapshot {
            battery_level_pct: observed.level_pct(),
            battery_capacity_kwh: observed.need_kwh,
            is_plugged_in: observed.open.is_some(),
            is_at_home: true,
            max_charge_power_w: f64::from(settings.charge_power_max_w.max(1)),
            charge_target_max_pct: None,
        },
        settings: PlannerSettings {
            price_zone: zone,
            is_smart_optimization_active: settings.is_smart_optimization_active,
            charge_target_min_pct: settings
                .charge_target_min
                .map_or(0.0, f64::from)
                .clamp(0.0, 100.0),
            deadline,
            is_over_charge_allowed: false,
            pause_power_until: settings.pause_power_until,
            boost: matches!(
                state.boost_state,
                BoostState::Requested | BoostState::Ongoing
            ),
            // The need is metered at the charger: no charging losses to add.
            efficiency: 1.0,
            ..PlannerSettings::new(zone)
        },
    }
}

pub(super) fn inputs_hash(
    settings: &WallboxSettings,
    state: &WallboxState,
    observed: &WallboxObserved,
    coverage_end: Option<DateTime<Utc>>,
) -> u64 {
    let mut h = Fnv1a::new();
    h.text(&serde_json::to_string(settings).unwrap_or_default());
    h.option(observed.open.as_ref().map(|t| t.id), |h, id| {
        h.bytes(&id.to_le_bytes())
    });
    h.flag(matches!(
        state.boost_state,
        BoostState::Requested | BoostState::Ongoing
    ));
    h.bytes(&observed.need_kwh.to_bits().to_le_bytes());
    h.option(coverage_end, |h, end| {
        h.bytes(&end.timestamp().to_le_bytes())
    });
    h.flag(settings.pause_power_until.is_some_and(|p| p > observed.at));
    h.finish()
}
