//! Scenario tests of the smart-charging planner: each rule of the issue, one at a time.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use voltplan_core::PriceSlot;
use voltplan_core::planner::{
    DeadlineRule, Plan, PlanError, PlanMode, PlanRequest, PlannerSettings, Reason, VehicleSnapshot,
    plan,
};
use voltplan_core::zone::PriceZone;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Hourly slots from `start`.
fn hourly(start: &str, prices: &[f64]) -> Vec<PriceSlot> {
    slots(start, 60, prices)
}

fn slots(start: &str, minutes: i64, prices: &[f64]) -> Vec<PriceSlot> {
    let t0 = utc(start);
    prices
        .iter()
        .enumerate()
        .map(|(i, p)| PriceSlot {
            start: t0 + Duration::minutes(minutes * i as i64),
            end: t0 + Duration::minutes(minutes * (i as i64 + 1)),
            price_eur_mwh: *p,
        })
        .collect()
}

/// 60 kWh car at 40 %, 11 kW, efficiency 1 for round numbers, in UTC-like Lisbon winter time.
fn car() -> VehicleSnapshot {
    VehicleSnapshot {
        battery_level_pct: 40.0,
        battery_capacity_kwh: 60.0,
        is_plugged_in: true,
        is_at_home: true,
        max_charge_power_w: 11_000.0,
        charge_target_max_pct: None,
    }
}

/// 80 % by 06:00 Lisbon (= UTC in January), minimum 20 %.
fn settings() -> PlannerSettings {
    PlannerSettings {
        charge_target_min_pct: 20.0,
        deadline: DeadlineRule::Daily {
            at: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            target_pct: 80.0,
        },
        efficiency: 1.0,
        ..PlannerSettings::new(PriceZone::Pt)
    }
}

/// 18:00 → 06:00 UTC: expensive evening, cheap night (01:00–04:00).
fn night_prices() -> Vec<PriceSlot> {
    hourly(
        "2024-01-10T18:00:00Z",
        &[
            120.0, 110.0, 100.0, 90.0, 80.0, 70.0, 60.0, 20.0, 10.0, 15.0, 50.0, 90.0,
        ],
    )
}

const NOW: &str = "2024-01-10T18:00:00Z";

fn total(plan: &Plan, reason: Reason) -> f64 {
    plan.intervals
        .iter()
        .filter(|i| i.reason == reason)
        .map(|i| i.energy_kwh)
        .sum()
}

#[test]
fn not_plugged_in_gives_no_plan() {
    let v = VehicleSnapshot {
        is_plugged_in: false,
        ..car()
    };
    let p = plan(utc(NOW), &v, &settings(), &night_prices()).unwrap();
    assert_eq!(p.mode, PlanMode::NotPluggedIn);
    assert!(p.intervals.is_empty());
    assert_eq!(p.expected_cost_eur, 0.0);
}

#[test]
fn away_from_home_or_smart_off_charges_now_until_the_cars_own_limit() {
    for (v, s, mode) in [
        (
            VehicleSnapshot {
                is_at_home: false,
                ..car()
            },
            settings(),
            PlanMode::AwayFromHome,
        ),
        (
            car(),
            PlannerSettings {
                is_smart_optimization_active: false,
                ..settings()
            },
            PlanMode::SmartOptimizationOff,
        ),
    ] {
        let v = VehicleSnapshot {
            charge_target_max_pct: Some(90.0),
            ..v
        };
        let p = plan(utc(NOW), &v, &s, &night_prices()).unwrap();
        assert_eq!(p.mode, mode);
        assert_eq!(p.intervals.len(), 1);
        assert_eq!(p.intervals[0].reason, Reason::Uncontrolled);
        assert_eq!(p.intervals[0].start, utc(NOW));
        assert!((p.final_battery_level - 90.0).abs() < 1e-9);
        assert!(
            p.savings_eur.abs() < 1e-9,
            "the baseline is what the car does on its own"
        );
    }
}

#[test]
fn pause_blocks_charging_until_it_ends() {
    let pause = utc("2024-01-11T02:30:00Z");
    let s = PlannerSettings {
        pause_power_until: Some(pause),
        ..settings()
    };
    let p = plan(utc(NOW), &car(), &s, &night_prices()).unwrap();
    assert!(p.intervals.iter().all(|i| i.start >= pause));
    assert!(p.feasible);
    // 24 kWh: 02:30–04:00 (cheapest after the pause: 10, 15) then the 50-priced hour.
    assert!((p.energy_kwh - 24.0).abs() < 1e-9);
}

#[test]
fn pause_also_delays_minimum_level_and_boost() {
    let pause = utc("2024-01-10T20:00:00Z");
    let v = VehicleSnapshot {
        battery_level_pct: 10.0,
        ..car()
    };
    let s = PlannerSettings {
        pause_power_until: Some(pause),
        ..settings()
    };
    let p = plan(utc(NOW), &v, &s, &night_prices()).unwrap();
    assert_eq!(p.intervals[0].start, pause);
    assert_eq!(p.intervals[0].reason, Reason::MinLevel);
    let s = PlannerSettings { boost: true, ..s };
    let p = plan(utc(NOW), &v, &s, &night_prices()).unwrap();
    assert_eq!(p.mode, PlanMode::Boost);
    assert_eq!(p.intervals[0].start, pause);
}

#[test]
fn boost_charges_at_full_power_now_until_full() {
    let s = PlannerSettings {
        boost: true,
        ..settings()
    };
    let v = VehicleSnapshot {
        charge_target_max_pct: Some(95.0),
        ..car()
    };
    let p = plan(utc(NOW), &v, &s, &night_prices()).unwrap();
    assert_eq!(p.mode, PlanMode::Boost);
    assert_eq!(p.intervals.len(), 1);
    let iv = &p.intervals[0];
    assert_eq!((iv.reason, iv.start), (Reason::Boost, utc(NOW)));
    assert!((iv.power_w - 11_000.0).abs() < 1.0);
    assert!((p.final_battery_level - 95.0).abs() < 1e-9);
    // 33 kWh at 11 kW = 3 h.
    assert_eq!(iv.end, utc("2024-01-10T21:00:00Z"));
}

#[test]
fn below_minimum_charges_now_then_waits_for_cheap_hours() {
    let v = VehicleSnapshot {
        battery_level_pct: 9.0,
        ..car()
    };
    let p = plan(utc(NOW), &v, &settings(), &night_prices()).unwrap();
    let first = &p.intervals[0];
    assert_eq!((first.reason, first.start), (Reason::MinLevel, utc(NOW)));
    // 11 % of 60 kWh = 6.6 kWh at 11 kW = 36 min.
    assert_eq!(first.end, utc("2024-01-10T18:36:00Z"));
    assert!((first.battery_level_end - 20.0).abs() < 1e-9);
    assert!((total(&p, Reason::Target) - 36.0).abs() < 1e-9);
    assert!(p.feasible);
    assert!((p.battery_level_at_deadline.unwrap() - 80.0).abs() < 1e-9);
}

#[test]
fn target_goes_to_the_cheapest_hours_in_one_block() {
    let p = plan(utc(NOW), &car(), &settings(), &night_prices()).unwrap();
    // 24 kWh = 2 h 10 min 54.5 s at 11 kW: 02:00 (10), 03:00 (15), then 01:00 (20) partly.
    assert!(p.feasible);
    assert_eq!(p.charging_blocks, 1);
    assert_eq!(p.intervals.len(), 1);
    let iv = &p.intervals[0];
    assert_eq!(iv.reason, Reason::Target);
    assert_eq!(iv.end, utc("2024-01-11T04:00:00Z"));
    assert!(iv.start > utc("2024-01-11T01:00:00Z") && iv.start < utc("2024-01-11T02:00:00Z"));
    // Cost: 11 kWh at 10, 11 at 15, 2 at 20 → 0.11 + 0.165 + 0.04 = 0.315 €.
    assert!((p.expected_cost_eur - 0.315).abs() < 1e-9);
    // Baseline: 24 kWh from 18:00: 11 at 120, 11 at 110, 2 at 100 → 1.32 + 1.21 + 0.2.
    assert!((p.baseline_cost_eur - 2.73).abs() < 1e-9);
    assert!((p.savings_eur - (2.73 - 0.315)).abs() < 1e-9);
    // Lisbon in January is WET (UTC+0); every figure is one of the plan's own.
    assert_eq!(
        p.explanation,
        "Charging 01:49–04:00 WET at 11 kW, the cheapest hours before 06:00 WET; 80 % by 04:00 WET. \
         Total: 24.0 kWh for 0.32 € (13 €/MWh on average); \
         charging at once would cost 2.73 € (114 €/MWh)."
    );
    assert!(p.ready_by.unwrap() <= utc("2024-01-11T04:00:00Z"));
}

#[test]
fn infeasible_target_charges_at_full_power_now_and_reports_what_it_reaches() {
    // 40 % → 80 % is 24 kWh; only 1.5 h (16.5 kWh) remain until 06:00.
    let now = utc("2024-01-11T04:30:00Z");
    let p = plan(now, &car(), &settings(), &night_prices()).unwrap();
    assert!(!p.feasible);
    assert_eq!(p.intervals[0].start, now);
    assert!(p.intervals.iter().all(|i| i.reason == Reason::Infeasible));
    assert!((p.battery_level_at_deadline.unwrap() - (40.0 + 16.5 / 60.0 * 100.0)).abs() < 1e-9);
    assert!((p.final_battery_level - 80.0).abs() < 1e-9);
    assert!(p.ready_by.unwrap() > p.deadline.unwrap());
    assert!(
        p.explanation.starts_with("Cannot reach 80 % by 06:00 WET"),
        "{}",
        p.explanation
    );
}

#[test]
fn over_charge_uses_slots_at_or_below_zero_up_to_the_cap_only_when_allowed() {
    let prices = hourly(
        "2024-01-10T18:00:00Z",
        &[50.0, -5.0, 0.0, 40.0, -20.0, 30.0],
    );
    let s = PlannerSettings {
        deadline: DeadlineRule::Daily {
            at: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            target_pct: 50.0,
        },
        ..settings()
    };
    let v = VehicleSnapshot {
        charge_target_max_pct: Some(90.0),
        ..car()
    };
    let p = plan(utc(NOW), &v, &s, &prices).unwrap();
    assert!(
        (p.final_battery_level - 50.0).abs() < 1e-9,
        "no over-charge unless allowed"
    );
    assert!(
        p.intervals
            .iter()
            .all(|i| i.end <= utc("2024-01-10T20:00:00Z"))
    );

    let s = PlannerSettings {
        is_over_charge_allowed: true,
        ..s
    };
    let p = plan(utc(NOW), &v, &s, &prices).unwrap();
    // Target 6 kWh in the −5 hour; then −20 (11 kWh), rest of −5 (5 kWh), then 0-priced (8 kWh) → 90 %.
    assert!((p.final_battery_level - 90.0).abs() < 1e-9);
    assert!((total(&p, Reason::Target) - 6.0).abs() < 1e-9);
    assert!((total(&p, Reason::OverCharge) - 24.0).abs() < 1e-9);
    for iv in p
        .intervals
        .iter()
        .filter(|i| i.reason == Reason::OverCharge)
    {
        assert!(iv.cost_eur <= 1e-12);
    }
    assert!((p.expected_cost_eur - (-0.005 * 11.0 - 0.02 * 11.0)).abs() < 1e-9);
}

#[test]
fn charge_target_max_caps_every_goal() {
    let v = VehicleSnapshot {
        charge_target_max_pct: Some(70.0),
        ..car()
    };
    let p = plan(utc(NOW), &v, &settings(), &night_prices()).unwrap();
    assert!((p.final_battery_level - 70.0).abs() < 1e-9);
    assert_eq!(p.target_level, Some(70.0));
}

#[test]
fn known_prices_are_preferred_to_forecasts_and_forecasts_are_flagged() {
    // Yesterday's night was very cheap (forecast), today's published prices end at 23:00.
    let mut prices = hourly("2024-01-09T18:00:00Z", &[100.0; 12]);
    prices[7].price_eur_mwh = 1.0; // 2024-01-10 01:00 yesterday
    prices.extend(hourly(
        "2024-01-10T18:00:00Z",
        &[90.0, 80.0, 70.0, 60.0, 50.0],
    ));
    // Needs 24 kWh: published 18:00–23:00 holds 55 kWh, so no forecast energy.
    let p = plan(utc(NOW), &car(), &settings(), &prices).unwrap();
    assert!(!p.uses_forecast_prices);
    assert!(!p.forecast_prices.is_empty());
    assert!(
        p.intervals
            .iter()
            .all(|i| i.end <= utc("2024-01-10T23:00:00Z"))
    );
    // Needs 60 kWh (0 → 100 %): 55 published + 5 forecast, in yesterday's cheapest hour.
    let v = VehicleSnapshot {
        battery_level_pct: 0.0,
        ..car()
    };
    let s = PlannerSettings {
        charge_target_min_pct: 0.0,
        deadline: DeadlineRule::Daily {
            at: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            target_pct: 100.0,
        },
        ..settings()
    };
    let p = plan(utc(NOW), &v, &s, &prices).unwrap();
    assert!(p.uses_forecast_prices);
    let forecast: Vec<_> = p
        .intervals
        .iter()
        .filter(|i| i.uses_forecast_prices)
        .collect();
    assert_eq!(forecast.len(), 1);
    assert!(
        forecast[0].start >= utc("2024-01-11T01:00:00Z")
            && forecast[0].end <= utc("2024-01-11T02:00:00Z")
    );
    // 01:00–02:00 yesterday was the only published price at that time of day: the forecast repeats it.
    assert!(
        p.explanation.contains(
            "forecast as the mean price at the same time of day on the previous days given"
        ),
        "{}",
        p.explanation
    );
    assert!(
        p.explanation.contains("relies on them"),
        "{}",
        p.explanation
    );
}

#[test]
fn explanation_uses_the_plans_own_average_and_names_defaults_and_flat_forecasts() {
    // The README's first example: two published prices, the default minimum level of 50 %.
    let json = r#"{"now": "2024-06-03T18:00:00Z", "price_zone": "DE_LU", "battery_level": 30,
        "battery_capacity_kwh": 60, "is_plugged_in": true, "minimum_charge_limit": 80,
        "charge_deadline_at": "06:00", "expected_max_charge_power": 11000,
        "prices": [
            {"start": "2024-06-03T18:00:00Z", "end": "2024-06-03T19:00:00Z", "price_eur_mwh": 120.5},
            {"start": "2024-06-03T19:00:00Z", "end": "2024-06-03T20:00:00Z", "price_eur_mwh": 95.0}]}"#;
    let p = serde_json::from_str::<PlanRequest>(json)
        .unwrap()
        .plan()
        .unwrap();
    let avg = p.average_price_eur_mwh.unwrap();
    let at_once = p.baseline_average_price_eur_mwh.unwrap();
    assert!((at_once - p.baseline_cost_eur / p.energy_kwh * 1000.0).abs() < 1e-9);
    let e = &p.explanation;
    assert!(e.contains(&format!("({avg:.0} €/MWh on average)")), "{e}");
    assert!(
        e.contains(&format!("({at_once:.0} €/MWh, partly at forecast prices)")),
        "{e}"
    );
    assert!(
        e.starts_with("Charging at 11 kW to the 50 % minimum now, then 21:12–23:01 CEST"),
        "{e}"
    );
    assert!(
        e.contains("Prices for 22:00–06:00 CEST are not published yet and are forecast as a flat 108 €/MWh, the mean of all given prices; charging 22:00–23:01 CEST relies on them."),
        "{e}"
    );
    assert!(
        e.ends_with("Defaults used (not in the request): smart charging on, minimum level 50 %, charging efficiency 90 %."),
        "{e}"
    );
    let out = serde_json::to_value(&p).unwrap();
    assert_eq!(
        out["defaults_applied"][0]["field"],
        "is_smart_optimization_active"
    );
    assert_eq!(out["forecast_prices"][0]["basis"], "mean_of_given_prices");
    assert_eq!(out["time_zone"], "Europe/Berlin");
}

#[test]
fn now_inside_a_slot_uses_only_its_remainder() {
    let now = utc("2024-01-11T02:40:00Z");
    let v = VehicleSnapshot {
        battery_level_pct: 70.0,
        ..car()
    };
    let p = plan(now, &v, &settings(), &night_prices()).unwrap();
    // 6 kWh needed; 02:40–03:00 at 10 €/MWh holds 3.67 kWh, the rest at 15.
    assert_eq!(p.intervals[0].start, now);
    assert!((p.expected_cost_eur - (11.0 / 3.0 * 0.010 + (6.0 - 11.0 / 3.0) * 0.015)).abs() < 1e-9);
}

#[test]
fn quarter_hour_slots_and_equal_prices_form_one_block() {
    // 96 quarter hours of the same price: charge early, in one block.
    let prices = slots("2024-01-10T06:00:00Z", 15, &[50.0; 96]);
    let p = plan(utc("2024-01-10T06:00:00Z"), &car(), &settings(), &prices).unwrap();
    assert_eq!(p.charging_blocks, 1);
    assert_eq!(p.intervals[0].start, utc("2024-01-10T06:00:00Z"));
}

#[test]
fn dst_spring_forward_day_deadline_and_hourly_slots() {
    // Berlin, 2024-03-31: 23 local hours; 06:00 CEST = 04:00 UTC.
    let prices = hourly(
        "2024-03-30T23:00:00Z",
        &[80.0, 70.0, 60.0, 10.0, 90.0, 90.0],
    );
    let s = PlannerSettings {
        price_zone: PriceZone::DeLu,
        ..settings()
    };
    let v = VehicleSnapshot {
        battery_level_pct: 70.0,
        ..car()
    };
    let p = plan(utc("2024-03-30T23:00:00Z"), &v, &s, &prices).unwrap();
    assert_eq!(p.deadline, Some(utc("2024-03-31T04:00:00Z")));
    assert!(p.intervals.iter().all(|i| i.start >= utc("2024-03-31T02:00:00Z") && i.end <= utc("2024-03-31T03:00:00Z")));
}

#[test]
fn invalid_inputs_name_the_field() {
    let v = VehicleSnapshot {
        battery_capacity_kwh: 0.0,
        ..car()
    };
    let err = plan(utc(NOW), &v, &settings(), &night_prices()).unwrap_err();
    assert!(matches!(
        err,
        PlanError::InvalidField {
            field: "battery_capacity_kwh",
            ..
        }
    ));
    let v = VehicleSnapshot {
        battery_level_pct: 120.0,
        ..car()
    };
    assert!(
        plan(utc(NOW), &v, &settings(), &night_prices())
            .unwrap_err()
            .to_string()
            .contains("battery_level")
    );
    let mut prices = night_prices();
    prices[3].end = prices[3].start;
    assert!(matches!(
        plan(utc(NOW), &car(), &settings(), &prices),
        Err(PlanError::InvalidPrice { index: 3, .. })
    ));
}

#[test]
fn json_request_uses_api_field_names_and_defaults() {
    let json = r#"{
        "now": "2024-01-10T18:00:00Z",
        "price_zone": "PT",
        "battery_level": 40,
        "battery_capacity_kwh": "60",
        "charge_target_min": 20,
        "minimum_charge_limit": 80,
        "charge_deadline_at": "06:00",
        "expected_max_charge_power": 11000,
        "charging_efficiency": 1.0,
        "prices": [
            {"start": "2024-01-10T18:00:00Z", "end": "2024-01-10T19:00:00Z", "price_eur_mwh": 120},
            {"start": "2024-01-10T19:00:00Z", "end": "2024-01-11T06:00:00Z", "price_eur_mwh": 30}
        ]
    }"#;
    let req: PlanRequest = serde_json::from_str(json).unwrap();
    assert_eq!(req.charge_deadline_at, NaiveTime::from_hms_opt(6, 0, 0));
    assert!(req.is_plugged_in && req.is_smart_optimization_active);
    let p = req.plan().unwrap();
    assert!(p.feasible);
    assert!((p.expected_cost_eur - 24.0 * 0.030).abs() < 1e-9);
    let out = serde_json::to_value(&p).unwrap();
    for key in [
        "intervals",
        "expected_cost_eur",
        "baseline_cost_eur",
        "energy_kwh",
        "final_battery_level",
        "feasible",
        "explanation",
    ] {
        assert!(out.get(key).is_some(), "{key} missing");
    }
    assert_eq!(out["intervals"][0]["reason"], "target");

    let with_seconds = json.replace("\"06:00\"", "\"06:00:00\"");
    assert!(serde_json::from_str::<PlanRequest>(&with_seconds).is_ok());
    let bad = json.replace("\"06:00\"", "\"6 o'clock\"");
    let err = serde_json::from_str::<PlanRequest>(&bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("charge_deadline_at"), "{err}");
    let bad = json.replace("\"60\"", "\"sixty\"");
    assert!(
        serde_json::from_str::<PlanRequest>(&bad)
            .unwrap_err()
            .to_string()
            .contains("battery_capacity_kwh")
    );
}

#[test]
fn weekly_policy_is_used_when_enabled() {
    let json = r#"{
        "now": "2024-01-10T18:00:00Z", "price_zone": "PT", "battery_level": 40, "battery_capacity_kwh": 60,
        "is_charge_policy_enabled": true,
        "weekly_charge_policy": {"fri": {"charge_percentage": 90, "charge_deadline": "07:30"}}
    }"#;
    let req: PlanRequest = serde_json::from_str(json).unwrap();
    let p = req.plan().unwrap();
    // 2024-01-10 is a Wednesday; the next policy day is Friday 07:30 Lisbon (UTC in winter).
    assert_eq!(p.deadline, Some(utc("2024-01-12T07:30:00Z")));
    assert_eq!(p.target_level, Some(90.0));
}

#[test]
fn weekly_policy_in_a_request_may_name_its_own_time_zone() {
    let json = r#"{
        "now": "2024-01-10T18:00:00Z", "price_zone": "PT", "battery_level": 40, "battery_capacity_kwh": 60,
        "is_charge_policy_enabled": true,
        "weekly_charge_policy": {"fri": {"charge_percentage": 90, "charge_deadline": "07:30"},
                                 "timezone": "Europe/Vienna"}
    }"#;
    let req: PlanRequest = serde_json::from_str(json).unwrap();
    let p = req.plan().unwrap();
    // Friday 07:30 in Vienna (CET) rather than in Lisbon (WET): an hour earlier in UTC.
    assert_eq!(p.deadline, Some(utc("2024-01-12T06:30:00Z")));

    let bad = json.replace("Europe/Vienna", "Europe/Atlantis");
    let err = serde_json::from_str::<PlanRequest>(&bad).unwrap_err();
    assert!(err.to_string().contains("timezone"), "{err}");
}

#[test]
fn the_explanation_names_the_currency_of_the_prices() {
    let euro = plan(utc(NOW), &car(), &settings(), &night_prices()).unwrap();
    assert!(euro.explanation.contains(" €"), "{}", euro.explanation);
    // A contract in francs (`voltplan_core::tariff`): its prices are francs per MWh.
    let francs = PlannerSettings {
        currency: Some("CHF".into()),
        ..settings()
    };
    let p = plan(utc(NOW), &car(), &francs, &night_prices()).unwrap();
    assert!(p.explanation.contains(" CHF/MWh"), "{}", p.explanation);
    assert!(!p.explanation.contains('€'), "{}", p.explanation);
    // The United Kingdom's market is in pounds.
    let uk = PlannerSettings {
        price_zone: PriceZone::Uk,
        ..settings()
    };
    let p = plan(utc(NOW), &car(), &uk, &night_prices()).unwrap();
    assert!(p.explanation.contains(" £/MWh"), "{}", p.explanation);
}

#[test]
fn a_shared_limit_keeps_charging_inside_its_windows() {
    use voltplan_core::planner::{PlanInput, PowerWindow, SharedLimit};
    // 24 kWh due by 06:00; the group leaves this car the evening (18:00–19:00, at 5.5 kW) and
    // 02:00–04:00 (at 11 kW), though 01:00–04:00 is cheapest.
    let shared = SharedLimit {
        group_id: "feeder".into(),
        group_name: "Feeder 7".into(),
        windows: vec![
            PowerWindow {
                start: utc("2024-01-10T18:00:00Z"),
                end: utc("2024-01-10T19:00:00Z"),
                max_power_w: 5_500.0,
            },
            PowerWindow {
                start: utc("2024-01-11T02:00:00Z"),
                end: utc("2024-01-11T04:00:00Z"),
                max_power_w: 11_000.0,
            },
        ],
        shortfall_kwh: 0.0,
    };
    let input = PlanInput {
        vehicle: car(),
        settings: settings(),
    };
    let p = input
        .plan_within(utc(NOW), &night_prices(), Duration::zero(), Some(&shared))
        .unwrap();
    let inside = |start: DateTime<Utc>, end: DateTime<Utc>, power: f64| {
        shared
            .windows
            .iter()
            .any(|w| w.start <= start && end <= w.end && power <= w.max_power_w + 1e-6)
    };
    for i in &p.intervals {
        assert!(
            inside(i.start, i.end, i.power_w),
            "{i:?} outside {shared:?}"
        );
    }
    // 22 kWh fit in the night window, the last 2 in the evening one.
    assert!((p.energy_kwh - 24.0).abs() < 1e-6, "{p:?}");
    assert!(p.feasible);
    assert_eq!(p.shared_limit.as_ref().unwrap().group_name, "Feeder 7");
    assert!(p.explanation.contains("Feeder 7"), "{}", p.explanation);

    // No windows: nothing to charge, the target out of reach, and the plan says why.
    let none = SharedLimit {
        windows: Vec::new(),
        shortfall_kwh: 24.0,
        ..shared.clone()
    };
    let p = input
        .plan_within(utc(NOW), &night_prices(), Duration::zero(), Some(&none))
        .unwrap();
    assert!(p.intervals.is_empty(), "{p:?}");
    assert!(!p.feasible);
    assert!(p.explanation.contains("24.0 kWh"), "{}", p.explanation);

    // A car charging on its own (smart charging off) ignores the windows.
    let own = PlanInput {
        vehicle: car(),
        settings: PlannerSettings {
            is_smart_optimization_active: false,
            ..settings()
        },
    };
    let p = own
        .plan_within(utc(NOW), &night_prices(), Duration::zero(), Some(&none))
        .unwrap();
    assert_eq!(p.mode, PlanMode::SmartOptimizationOff);
    assert_eq!(p.intervals[0].start, utc(NOW));
    assert!(p.shared_limit.is_none());
}
