//! The reference LP the planner's property tests compare against (`planner_lp.rs`,
//! `planner_tariff_lp.rs`): every constraint of a plan checked, and its cost against the optimum of
//! the linear programme solved independently with good_lp + microlp (the LP is written out at the
//! top of `planner_lp.rs`).

use chrono::{DateTime, Duration, NaiveTime, Utc};
use good_lp::{Expression, Solution, SolverModel, Variable, microlp, variable, variables};
use voltplan_core::PriceSlot;
use voltplan_core::planner::{
    DeadlineRule, Plan, PlanMode, PlannerSettings, Reason, VehicleSnapshot, next_deadline, plan,
};
use voltplan_core::zone::PriceZone;

use super::support::Rng;

/// Hours between two instants.
pub fn hours(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_nanoseconds().unwrap_or(0) as f64 / 3.6e12
}

/// A slot of the reference LP.
#[derive(Debug, Clone, Copy)]
struct LpSlot {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    price: f64,
    forecast: bool,
}

/// Published and forecast slots clipped to `[from, ∞)` and split at `cut`, rebuilt independently of
/// the planner (it only tells us which forecast prices it assumed).
fn lp_slots(
    prices: &[PriceSlot],
    p: &Plan,
    from: DateTime<Utc>,
    cut: Option<DateTime<Utc>>,
) -> Vec<LpSlot> {
    let mut slots: Vec<LpSlot> = prices
        .iter()
        .map(|s| LpSlot {
            start: s.start,
            end: s.end,
            price: s.price_eur_mwh,
            forecast: false,
        })
        .chain(p.forecast_prices.iter().map(|s| LpSlot {
            start: s.start,
            end: s.end,
            price: s.price_eur_mwh,
            forecast: true,
        }))
        .filter(|s| s.end > from)
        .map(|s| LpSlot {
            start: s.start.max(from),
            ..s
        })
        .collect();
    if let Some(cut) = cut {
        slots = slots
            .into_iter()
            .flat_map(|s| {
                if s.start < cut && cut < s.end {
                    vec![LpSlot { end: cut, ..s }, LpSlot { start: cut, ..s }]
                } else {
                    vec![s]
                }
            })
            .collect();
    }
    slots.sort_by_key(|s| s.start);
    slots
}

/// Checks the plan for one instance against every constraint and the LP optimum; returns which
/// kind of check decided it.
pub fn check_plan(
    now: &DateTime<Utc>,
    v: &VehicleSnapshot,
    s: &PlannerSettings,
    prices: &[PriceSlot],
) -> Result<Checked, String> {
    let p = plan(*now, v, s, prices).map_err(|e| format!("plan failed: {e}"))?;
    let power_kw = v.max_charge_power_w / 1000.0;
    let pct_per_kwh = s.efficiency / v.battery_capacity_kwh * 100.0;
    let cap = v.charge_target_max_pct.unwrap_or(100.0);
    let grid = |from: f64, to: f64| (to - from).max(0.0) / pct_per_kwh;
    let tol_kwh = 1e-6 * v.battery_capacity_kwh.max(1.0);

    // Shape: ordered, disjoint, within power, energy consistent with power × time (±1 s rounding).
    for w in p.intervals.windows(2) {
        prop_ok(w[0].end <= w[1].start, "intervals overlap or are unordered")?;
    }
    for iv in &p.intervals {
        prop_ok(
            iv.start >= *now && iv.end > iv.start,
            "interval before now or empty",
        )?;
        prop_ok(
            iv.power_w <= v.max_charge_power_w * (1.0 + 1e-9) && iv.power_w > 0.0,
            "power out of range",
        )?;
        let e = iv.power_w / 1000.0 * hours(iv.start, iv.end);
        prop_ok(
            (e - iv.energy_kwh).abs() <= power_kw / 3600.0 * 2.0 + 1e-9,
            "energy ≠ power × duration",
        )?;
    }
    prop_ok(
        p.final_battery_level <= cap.max(v.battery_level_pct) + 1e-6,
        "above charge_target_max",
    )?;
    let energy: f64 = p.intervals.iter().map(|i| i.energy_kwh).sum();
    prop_ok(
        (energy - p.energy_kwh).abs() <= tol_kwh,
        "energy does not add up",
    )?;

    let smart = v.is_plugged_in && v.is_at_home && s.is_smart_optimization_active;
    if !v.is_plugged_in {
        return prop_ok(p.intervals.is_empty(), "charging while unplugged")
            .map(|_| Checked::Unplugged);
    }
    if !smart || s.boost {
        // Charge now (after a pause for boost), one block, up to the car's cap.
        let start = if smart {
            s.pause_power_until.map_or(*now, |t| t.max(*now))
        } else {
            *now
        };
        if let Some(first) = p.intervals.first() {
            prop_ok(
                first.start == start,
                "uncontrolled/boost does not start at once",
            )?;
        }
        prop_ok(
            p.charging_blocks <= 1,
            "uncontrolled/boost split into blocks",
        )?;
        return prop_ok(
            (p.final_battery_level - cap.max(v.battery_level_pct)).abs() < 1e-6,
            "boost/uncontrolled not to the cap",
        )
        .map(|_| Checked::ChargeNow);
    }
    prop_ok(p.mode == PlanMode::Smart, "wrong mode")?;
    let start = s.pause_power_until.map_or(*now, |t| t.max(*now));
    prop_ok(
        p.intervals.iter().all(|i| i.start >= start),
        "charging during the pause",
    )?;
    let min_pct = s.charge_target_min_pct.min(cap);
    let deadline = next_deadline(&s.deadline, *now, s.price_zone.time_zone());
    let target_pct = deadline.map(|d| d.target_pct.min(cap));
    let ceiling = if s.is_over_charge_allowed {
        cap
    } else {
        min_pct.max(target_pct.unwrap_or(0.0))
    };
    prop_ok(
        p.final_battery_level <= ceiling.max(v.battery_level_pct) + 1e-6,
        "above the ceiling",
    )?;
    for iv in p
        .intervals
        .iter()
        .filter(|i| i.reason == Reason::OverCharge)
    {
        prop_ok(
            iv.cost_eur <= 1e-12 && !iv.uses_forecast_prices,
            "over-charge at a positive or forecast price",
        )?;
    }

    let slots = lp_slots(prices, &p, start, deadline.map(|d| d.at));
    if let (Some(d), Some(target)) = (deadline, target_pct) {
        let reachable = v.battery_level_pct
            + slots
                .iter()
                .filter(|x| x.end <= d.at)
                .map(|x| power_kw * hours(x.start, x.end))
                .sum::<f64>()
                * pct_per_kwh;
        let at_deadline = p.battery_level_at_deadline.unwrap_or(f64::NAN);
        if p.feasible {
            prop_ok(
                at_deadline >= target - 1e-6,
                "feasible plan misses the deadline",
            )?;
        } else {
            prop_ok(
                reachable < target + 1e-6,
                "marked infeasible although reachable",
            )?;
            prop_ok(
                (at_deadline - reachable.min(100.0)).abs() < 1e-6,
                &format!("infeasible plan reaches {at_deadline}, not the reachable {reachable}"),
            )?;
            return Ok(Checked::Infeasible);
        }
    }

    // The reference LP.
    let mut vars = variables!();
    let mut remaining_forced = grid(v.battery_level_pct, min_pct);
    let mut a: Vec<Variable> = Vec::new();
    let mut o: Vec<Option<Variable>> = Vec::new();
    for x in &slots {
        let ub = power_kw * hours(x.start, x.end);
        let lb = ub.min(remaining_forced);
        remaining_forced -= lb;
        a.push(vars.add(variable().min(lb).max(ub)));
        let free = s.is_over_charge_allowed && !x.forecast && x.price <= 0.0;
        o.push(free.then(|| vars.add(variable().min(0.0).max(ub))));
    }
    let sum = |idx: &mut dyn Iterator<Item = usize>, with_o: bool| -> Expression {
        idx.fold(Expression::from(0.0), |acc, i| {
            let mut acc = acc + a[i];
            if with_o && let Some(oi) = o[i] {
                acc += oi;
            }
            acc
        })
    };
    let constraints = |extra: Option<f64>| {
        let mut cs = Vec::new();
        for i in 0..slots.len() {
            if let Some(oi) = o[i] {
                cs.push(
                    (Expression::from(a[i]) + oi)
                        .leq(power_kw * hours(slots[i].start, slots[i].end)),
                );
            }
        }
        cs.push(sum(&mut (0..slots.len()), false).leq(grid(
            v.battery_level_pct,
            min_pct.max(target_pct.unwrap_or(0.0)),
        )));
        cs.push(sum(&mut (0..slots.len()), true).leq(grid(v.battery_level_pct, cap)));
        if let (Some(d), Some(t)) = (deadline, target_pct) {
            cs.push(
                sum(
                    &mut (0..slots.len()).filter(|&i| slots[i].end <= d.at),
                    false,
                )
                .geq(grid(v.battery_level_pct, t)),
            );
        }
        if let Some(f) = extra {
            cs.push(sum(&mut (0..slots.len()).filter(|&i| slots[i].forecast), false).leq(f));
        }
        cs
    };
    let forecast_energy = sum(&mut (0..slots.len()).filter(|&i| slots[i].forecast), false);
    let stage1 = vars
        .clone()
        .minimise(forecast_energy.clone())
        .using(microlp)
        .with_all(constraints(None))
        .solve()
        .map_err(|e| format!("LP stage 1: {e}"))?;
    let min_forecast = stage1.eval(&forecast_energy);
    let cost: Expression = (0..slots.len()).fold(Expression::from(0.0), |acc, i| {
        let mut acc = acc + slots[i].price / 1000.0 * a[i];
        if let Some(oi) = o[i] {
            acc += slots[i].price / 1000.0 * oi;
        }
        acc
    });
    let stage2 = vars
        .minimise(cost.clone())
        .using(microlp)
        .with_all(constraints(Some(min_forecast + 1e-9)))
        .solve()
        .map_err(|e| format!("LP stage 2: {e}"))?;
    let lp_cost = stage2.eval(&cost);
    let tol = 1e-6 * lp_cost.abs().max(0.01);
    prop_ok(
        (p.expected_cost_eur - lp_cost).abs() <= tol,
        &format!("cost {} ≠ LP optimum {lp_cost}", p.expected_cost_eur),
    )?;
    Ok(Checked::LpOptimal)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Unplugged,
    ChargeNow,
    Infeasible,
    LpOptimal,
}

pub fn prop_ok(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_owned()) }
}

/// A random car and its owner's settings at `now` (plugged in and at home mostly, any level, cap,
/// power, minimum, daily deadline, pause, boost, efficiency and shortest block).
pub fn random_car(
    r: &mut Rng,
    zone: PriceZone,
    now: DateTime<Utc>,
) -> (VehicleSnapshot, PlannerSettings) {
    let level = if r.chance(0.1) {
        0.0
    } else {
        r.range(0.0, 100.0)
    };
    let deadline_at = NaiveTime::from_hms_opt(
        r.int(0, 23) as u32,
        [0, 15, 30, 45][r.int(0, 3) as usize],
        0,
    )
    .unwrap_or(NaiveTime::MIN);
    let vehicle = VehicleSnapshot {
        battery_level_pct: level,
        battery_capacity_kwh: r.range(10.0, 100.0),
        is_plugged_in: r.chance(0.97),
        is_at_home: r.chance(0.93),
        max_charge_power_w: [1400.0, 3700.0, 7400.0, 11_000.0, 22_000.0][r.int(0, 4) as usize]
            * r.range(0.8, 1.0),
        charge_target_max_pct: r.chance(0.4).then(|| r.range(40.0, 100.0)),
    };
    let settings = PlannerSettings {
        is_smart_optimization_active: r.chance(0.93),
        charge_target_min_pct: if r.chance(0.3) {
            0.0
        } else {
            r.range(0.0, 70.0)
        },
        deadline: if r.chance(0.1) {
            DeadlineRule::None
        } else {
            DeadlineRule::Daily {
                at: deadline_at,
                target_pct: r.range(20.0, 100.0),
            }
        },
        is_over_charge_allowed: r.chance(0.4),
        pause_power_until: r
            .chance(0.2)
            .then(|| now + Duration::seconds(r.int(-3600, 10 * 3600))),
        boost: r.chance(0.05),
        efficiency: r.range(0.8, 1.0),
        min_block_minutes: [0, 15, 30][r.int(0, 2) as usize],
        ..PlannerSettings::new(zone)
    };
    (vehicle, settings)
}
