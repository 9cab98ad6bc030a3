//! Planner throughput: `cargo bench -p voltplan-core --bench planner`.
//! Plain `Instant` timing (no criterion) to keep compile cost small.

use std::hint::black_box;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use voltplan_core::PriceSlot;
use voltplan_core::planner::{DeadlineRule, PlannerSettings, VehicleSnapshot, plan};
use voltplan_core::zone::PriceZone;

/// Day-ahead-like quarter hours: a daily double hump plus deterministic noise, some negatives.
fn prices(start: DateTime<Utc>, slots: usize) -> Vec<PriceSlot> {
    let mut noise = 0x2545_F491_4F6C_DD1Du64;
    (0..slots)
        .map(|i| {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let hour = (i as f64 / 4.0) % 24.0;
            let shape = 80.0 + 40.0 * ((hour - 8.0) / 24.0 * std::f64::consts::TAU).sin();
            let jitter = (noise % 6000) as f64 / 100.0 - 30.0;
            PriceSlot {
                start: start + Duration::minutes(15 * i as i64),
                end: start + Duration::minutes(15 * (i as i64 + 1)),
                price_eur_mwh: ((shape + jitter) * 100.0).round() / 100.0,
            }
        })
        .collect()
}

fn bench(label: &str, slots: usize, over_charge: bool) {
    let start: DateTime<Utc> = "2024-06-12T00:00:00Z".parse().unwrap_or_default();
    let prices = prices(start, slots);
    let vehicle = VehicleSnapshot {
        battery_level_pct: 20.0,
        battery_capacity_kwh: 77.0,
        is_plugged_in: true,
        is_at_home: true,
        max_charge_power_w: 11_000.0,
        charge_target_max_pct: Some(95.0),
    };
    // Deadline near the end of the horizon: 23:00 local on the last day (2024-06-12 is a Wednesday).
    let mut days = [None; 7];
    let last_day = if slots > 96 { 3 } else { 2 };
    days[last_day] = NaiveTime::from_hms_opt(23, 0, 0).map(|t| (t, 90.0));
    let settings = PlannerSettings {
        charge_target_min_pct: 30.0,
        deadline: DeadlineRule::Weekly { days, tz: None },
        is_over_charge_allowed: over_charge,
        ..PlannerSettings::new(PriceZone::DeLu)
    };
    let now = start + Duration::minutes(7);
    let mut runs = 0u64;
    let began = Instant::now();
    while began.elapsed() < StdDuration::from_secs(2) {
        for _ in 0..100 {
            let p = plan(black_box(now), &vehicle, &settings, black_box(&prices));
            black_box(p.is_ok());
        }
        runs += 100;
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{label:<44} {:>10.0} plans/s  ({:.1} µs/plan)",
        runs as f64 / secs,
        secs / runs as f64 * 1e6
    );
}

fn main() {
    bench("96 quarter-hour slots (1 day)", 96, false);
    bench("96 quarter-hour slots, over-charge allowed", 96, true);
    bench("192 quarter-hour slots (2 days)", 192, false);
    bench("192 quarter-hour slots, over-charge allowed", 192, true);
}
