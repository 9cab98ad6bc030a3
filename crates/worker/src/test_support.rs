//! Plans and instants for the unit tests of the steps.

use chrono::{DateTime, Duration, TimeZone, Utc};
use voltplan_core::planner::{Plan, PlanInterval, PlanMode, Reason};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 11, 12, 22, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A plan charging 10 points per block over the given `[start, end)` minute offsets from `t0`.
pub fn plan_with(blocks: &[(i64, i64)]) -> Plan {
    let mut level = 30.0;
    let intervals: Vec<PlanInterval> = blocks
        .iter()
        .map(|&(a, b)| {
            level += 10.0;
            PlanInterval {
                start: t0() + Duration::minutes(a),
                end: t0() + Duration::minutes(b),
                power_w: 11_000.0,
                reason: Reason::Target,
                energy_kwh: 6.0,
                cost_eur: 0.5,
                battery_level_end: level,
                uses_forecast_prices: false,
            }
        })
        .collect();
    Plan {
        mode: PlanMode::Smart,
        planned_at: t0(),
        time_zone: "Europe/Berlin".to_owned(),
        charging_blocks: intervals.len(),
        intervals,
        energy_kwh: 6.0 * blocks.len() as f64,
        expected_cost_eur: 0.5 * blocks.len() as f64,
        baseline_cost_eur: 1.0 * blocks.len() as f64,
        baseline_average_price_eur_mwh: None,
        baseline_uses_forecast_prices: false,
        savings_eur: 0.5 * blocks.len() as f64,
        average_price_eur_mwh: None,
        start_battery_level: 30.0,
        final_battery_level: level,
        minimum_level: None,
        target_level: Some(level),
        deadline: Some(t0() + Duration::hours(8)),
        battery_level_at_deadline: Some(level),
        ready_by: None,
        pause_until: None,
        feasible: true,
        uses_forecast_prices: false,
        forecast_prices: Vec::new(),
        defaults_applied: Vec::new(),
        explanation: String::new(),
        pricing: None,
        shared_limit: None,
    }
}
