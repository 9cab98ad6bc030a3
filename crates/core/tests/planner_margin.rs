//! `PlanInput::plan_with_margin`: the worker's plans aim to be ready a little before the deadline
//! so a car that charged short can be topped up in time, but never give up a reachable target
//! for the margin.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use voltplan_core::PriceSlot;
use voltplan_core::planner::{DeadlineRule, PlanInput, PlannerSettings, VehicleSnapshot};
use voltplan_core::zone::PriceZone;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Quarter-hours from 02:00 to 06:00 UTC: 100 €/MWh, except the last quarter-hour before the
/// deadline, which is the cheapest of the night.
fn prices() -> Vec<PriceSlot> {
    let t0 = utc("2024-01-11T02:00:00Z");
    (0..16)
        .map(|i| PriceSlot {
            start: t0 + Duration::minutes(15 * i),
            end: t0 + Duration::minutes(15 * (i + 1)),
            price_eur_mwh: if i == 15 { 10.0 } else { 100.0 + i as f64 },
        })
        .collect()
}

/// 60 kWh, 11 kW, efficiency 1, at `level` %, 80 % due by 06:00 Lisbon (= UTC in January).
fn input(level: f64) -> PlanInput {
    PlanInput {
        vehicle: VehicleSnapshot {
            battery_level_pct: level,
            battery_capacity_kwh: 60.0,
            is_plugged_in: true,
            is_at_home: true,
            max_charge_power_w: 11_000.0,
            charge_target_max_pct: None,
        },
        settings: PlannerSettings {
            charge_target_min_pct: 0.0,
            deadline: DeadlineRule::Daily {
                at: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
                target_pct: 80.0,
            },
            efficiency: 1.0,
            ..PlannerSettings::new(PriceZone::Pt)
        },
    }
}

#[test]
fn the_plan_is_ready_a_margin_before_the_deadline_when_that_fits() {
    let now = utc("2024-01-11T02:00:00Z");
    let deadline = utc("2024-01-11T06:00:00Z");
    // 6 kWh: fits easily before 05:45.
    let plain = input(70.0).plan(now, &prices()).unwrap();
    assert!(
        plain.intervals.iter().any(|i| i.end == deadline),
        "without a margin the cheapest quarter-hour, the last one, is used"
    );
    let early = input(70.0)
        .plan_with_margin(now, &prices(), Duration::minutes(15))
        .unwrap();
    let last_end = early.intervals.iter().map(|i| i.end).max().unwrap();
    assert!(
        last_end <= deadline - Duration::minutes(15),
        "ready by {last_end}"
    );
    assert_eq!(
        early.deadline,
        Some(deadline),
        "the deadline itself is unchanged"
    );
    assert!(early.feasible);
    assert!((early.energy_kwh - plain.energy_kwh).abs() < 1e-9);
}

#[test]
fn the_margin_is_used_when_the_target_only_fits_with_it() {
    let now = utc("2024-01-11T02:00:00Z");
    // 42 kWh at 11 kW needs 3 h 49 min of the 4 h left: the margin is needed.
    let plan = input(10.0)
        .plan_with_margin(now, &prices(), Duration::minutes(15))
        .unwrap();
    assert!(
        plan.feasible,
        "a reachable target is never given up for the margin"
    );
    assert!((plan.battery_level_at_deadline.unwrap() - 80.0).abs() < 1e-6);
}
