//! Property tests: on thousands of random instances (negative prices, DST days, partial slots,
//! caps, pauses, forecasts, infeasible deadlines) the plan respects every constraint, its cost equals
//! the optimum of the linear programme solved independently with good_lp + microlp, and infeasible
//! plans reach the highest level reachable by the deadline.
//!
//! The LP (grid energy `a_i` towards the targets and `o_i` over-charge, per slot `i`):
//!   0 ≤ a_i + o_i ≤ P·h_i;  o_i = 0 unless over-charge is allowed and slot i is published at ≤ 0;
//!   a_i ≥ forced_i (full power from the start until `charge_target_min`);
//!   Σ_{i ≤ deadline} a_i ≥ E(target);  Σ a_i ≤ E(max(min, target));  Σ a_i + o_i ≤ E(cap);
//!   lexicographic: first minimise forecast energy Σ_{forecast} a_i, then cost Σ p_i (a_i + o_i).

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use voltplan_core::PriceSlot;
use voltplan_core::planner::{PlannerSettings, VehicleSnapshot, plan};
use voltplan_core::zone::PriceZone;

#[path = "support/lp.rs"]
mod lp;
mod support;
use lp::{Checked, check_plan, random_car};
use support::Rng;

#[derive(Debug, Clone)]
struct Instance {
    now: DateTime<Utc>,
    vehicle: VehicleSnapshot,
    settings: PlannerSettings,
    prices: Vec<PriceSlot>,
}

fn instance(seed: u64) -> Instance {
    let mut r = Rng(seed);
    let zone = [PriceZone::DeLu, PriceZone::At, PriceZone::Pt, PriceZone::Uk][r.int(0, 3) as usize];
    // Days around both 2024 DST switches, and an ordinary day.
    let day = [
        "2024-03-30",
        "2024-03-31",
        "2024-10-26",
        "2024-10-27",
        "2024-06-12",
    ][r.int(0, 4) as usize];
    let day_start: DateTime<Utc> = format!("{day}T00:00:00Z").parse().unwrap_or_default();
    let step_min = if r.chance(0.5) { 15 } else { 60 };
    let first = day_start + Duration::hours(r.int(-6, 18));
    let n = (r.int(4, 40) * 60 / step_min) as usize;
    let tie_prices = r.chance(0.4);
    let prices: Vec<PriceSlot> = (0..n)
        .map(|i| {
            let raw = r.range(-60.0, 220.0);
            let price = if tie_prices {
                (raw / 40.0).round() * 40.0
            } else {
                (raw * 100.0).round() / 100.0
            };
            PriceSlot {
                start: first + Duration::minutes(step_min * i as i64),
                end: first + Duration::minutes(step_min * (i as i64 + 1)),
                price_eur_mwh: price,
            }
        })
        .collect();
    // `now` anywhere in the first half, at any second: partial slots.
    let now = first + Duration::seconds(r.int(0, (n as i64 * step_min * 60) / 2));
    let (vehicle, settings) = random_car(&mut r, zone, now);
    Instance {
        now,
        vehicle,
        settings,
        prices,
    }
}

/// Checks one instance; returns which kind of check decided it.
fn check(inst: &Instance) -> Result<Checked, String> {
    check_plan(&inst.now, &inst.vehicle, &inst.settings, &inst.prices)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn plans_hold_constraints_and_match_the_lp_optimum(seed in any::<u64>()) {
        let inst = instance(seed);
        if let Err(why) = check(&inst) {
            return Err(TestCaseError::fail(format!("seed {seed}: {why}\n{inst:#?}")));
        }
    }
}

#[test]
fn generator_covers_the_interesting_cases() {
    let mut infeasible = 0;
    let mut negative = 0;
    let mut forecast = 0;
    let mut paused = 0;
    let mut lp = 0;
    for seed in 0..500 {
        let inst = instance(seed);
        lp += usize::from(check(&inst) == Ok(Checked::LpOptimal));
        let Ok(p) = plan(inst.now, &inst.vehicle, &inst.settings, &inst.prices) else {
            continue;
        };
        infeasible += usize::from(!p.feasible);
        negative += usize::from(inst.prices.iter().any(|x| x.price_eur_mwh < 0.0));
        forecast += usize::from(p.uses_forecast_prices);
        paused += usize::from(
            inst.settings
                .pause_power_until
                .is_some_and(|t| t > inst.now),
        );
    }
    assert!(
        infeasible > 10 && negative > 100 && forecast > 10 && paused > 20 && lp > 250,
        "{infeasible} {negative} {forecast} {paused} {lp}"
    );
}

/// `SEED=… cargo test -p voltplan-core --test planner_lp show_seed -- --ignored --nocapture`
#[test]
#[ignore]
fn show_seed() {
    let (seed, _) = support::seed_from_env(1);
    let inst = instance(seed);
    let p = plan(inst.now, &inst.vehicle, &inst.settings, &inst.prices);
    println!("{inst:#?}\n{p:#?}\n{:?}", check(&inst));
}
