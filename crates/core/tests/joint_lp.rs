//! Property tests of the joint plan (`voltplan_core::joint`): random fleets under random nested
//! limits (a feeder over sites, devices outside any group, per-slot limits with dimming windows,
//! negative and per-device prices, availability gaps, needs the limits cannot meet) against the
//! linear programme solved with good_lp + microlp, lexicographically:
//!
//!   x_i,t ∈ [0, max_i,t];  s_i^u ∈ [0, urgent_i];  s_i^r ∈ [0, need_i − urgent_i];
//!   Σ_t x_i,t + s_i^u + s_i^r = need_i;  Σ_{i under g} x_i,t ≤ limit_g,t for every group g, slot t;
//!   minimise Σ s^u, then Σ (s^u + s^r), then Σ price_i,t · x_i,t.
//!
//! The joint plan must respect every bound and limit, leave the same urgent and total shortfall as
//! the LP (1e-6 kWh), and cost its optimum within 1e-6 relative.

use good_lp::{Expression, Solution, SolverModel, Variable, microlp, variable, variables};
use proptest::prelude::*;
use voltplan_core::joint::pack::{PackDevice, PackGroup, PackProblem, pack};
use voltplan_core::joint::{Group, JointDevice, JointPlan, JointProblem, plan_jointly};

mod support;
use support::Rng;

fn problem(seed: u64) -> JointProblem {
    problem_and_slot_hours(seed).0
}

/// A random problem and the length of its slots, hours.
fn problem_and_slot_hours(seed: u64) -> (JointProblem, f64) {
    let mut r = Rng(seed);
    let slots = r.int(1, 12) as usize;
    // Hourly or quarter-hourly energy per slot at 11 kW.
    let slot_h = r.pick(&[0.25, 1.0]);
    let mut groups = Vec::new();
    let feeder = r.chance(0.7).then(|| {
        groups.push(Group {
            parent: None,
            limit_kwh: (0..slots).map(|_| r.range(0.0, 40.0) * slot_h).collect(),
        });
        0
    });
    let sites = r.int(0, 3) as usize;
    for _ in 0..sites {
        let full = r.range(5.0, 25.0) * slot_h;
        // A §14a-like window: the site is dimmed for a few slots.
        let (from, len) = (r.int(0, slots as i64) as usize, r.int(0, 4) as usize);
        groups.push(Group {
            parent: if r.chance(0.8) { feeder } else { None },
            limit_kwh: (0..slots)
                .map(|t| {
                    if (from..from + len).contains(&t) {
                        4.2 * slot_h
                    } else {
                        full
                    }
                })
                .collect(),
        });
    }
    let base: Vec<f64> = (0..slots).map(|_| r.range(-30.0, 150.0)).collect();
    let devices = (0..r.int(1, 7))
        .map(|_| {
            let power = r.pick(&[3.7, 7.4, 11.0]);
            let (plug, leave) = {
                let a = r.int(0, slots as i64 - 1) as usize;
                let b = r.int(a as i64 + 1, slots as i64) as usize;
                (a, b)
            };
            let max_kwh: Vec<f64> = (0..slots)
                .map(|t| {
                    if (plug..leave).contains(&t) {
                        power * slot_h
                    } else {
                        0.0
                    }
                })
                .collect();
            let reachable: f64 = max_kwh.iter().sum();
            let need = r.range(0.0, 1.3) * reachable;
            // A tariff per device: markup and a time-variable fee.
            let markup = r.range(0.0, 40.0);
            let price = base
                .iter()
                .map(|p| p + markup + if r.chance(0.2) { 60.0 } else { 0.0 })
                .collect();
            let group = if groups.is_empty() || r.chance(0.15) {
                None
            } else {
                Some(r.int(0, groups.len() as i64 - 1) as usize)
            };
            JointDevice {
                need_kwh: need,
                urgent_kwh: if r.chance(0.3) {
                    r.range(0.0, need)
                } else {
                    0.0
                },
                max_kwh,
                price,
                group,
            }
        })
        .collect();
    (
        JointProblem {
            slots,
            devices,
            groups,
        },
        slot_h,
    )
}

/// Whether device `i` is under group `g` (directly or through nested groups).
fn under(p: &JointProblem, i: usize, g: usize) -> bool {
    let mut at = p.devices[i].group;
    while let Some(h) = at {
        if h == g {
            return true;
        }
        at = p.groups[h].parent;
    }
    false
}

struct LpOptimum {
    urgent_shortfall: f64,
    shortfall: f64,
    cost: f64,
}

fn lp(p: &JointProblem) -> Result<LpOptimum, String> {
    let mut vars = variables!();
    let x: Vec<Vec<Variable>> = p
        .devices
        .iter()
        .map(|d| {
            (0..p.slots)
                .map(|t| vars.add(variable().min(0.0).max(d.max_kwh[t])))
                .collect()
        })
        .collect();
    let su: Vec<Variable> = p
        .devices
        .iter()
        .map(|d| vars.add(variable().min(0.0).max(d.urgent_kwh)))
        .collect();
    let sr: Vec<Variable> = p
        .devices
        .iter()
        .map(|d| {
            vars.add(
                variable()
                    .min(0.0)
                    .max((d.need_kwh - d.urgent_kwh).max(0.0)),
            )
        })
        .collect();
    let total = |vs: &[Variable]| vs.iter().fold(Expression::from(0.0), |acc, v| acc + *v);
    let urgent = total(&su);
    let shortfall = total(&su) + total(&sr);
    let cost = p
        .devices
        .iter()
        .enumerate()
        .flat_map(|(i, d)| (0..p.slots).map(move |t| (i, t, d.price[t])))
        .fold(Expression::from(0.0), |acc, (i, t, price)| {
            acc + price * x[i][t]
        });
    let constraints = |extra: &[(Expression, f64)]| {
        let mut cs = Vec::new();
        for (i, d) in p.devices.iter().enumerate() {
            cs.push((total(&x[i]) + su[i] + sr[i]).eq(d.need_kwh));
        }
        for (g, group) in p.groups.iter().enumerate() {
            for (t, limit) in group.limit_kwh.iter().enumerate() {
                let draw = (0..p.devices.len())
                    .filter(|&i| under(p, i, g))
                    .fold(Expression::from(0.0), |acc, i| acc + x[i][t]);
                cs.push(draw.leq(*limit));
            }
        }
        for (expr, bound) in extra {
            cs.push(expr.clone().leq(*bound));
        }
        cs
    };
    let stage = |objective: &Expression, extra: &[(Expression, f64)]| {
        vars.clone()
            .minimise(objective.clone())
            .using(microlp)
            .with_all(constraints(extra))
            .solve()
            .map(|s| s.eval(objective))
            .map_err(|e| format!("LP: {e}"))
    };
    let min_urgent = stage(&urgent, &[])?;
    let min_shortfall = stage(&shortfall, &[(urgent.clone(), min_urgent + 1e-9)])?;
    let min_cost = stage(
        &cost,
        &[
            (urgent.clone(), min_urgent + 1e-9),
            (shortfall.clone(), min_shortfall + 1e-9),
        ],
    )?;
    Ok(LpOptimum {
        urgent_shortfall: min_urgent,
        shortfall: min_shortfall,
        cost: min_cost,
    })
}

fn ok(holds: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if holds { Ok(()) } else { Err(what()) }
}

fn check(p: &JointProblem) -> Result<JointPlan, String> {
    let plan = plan_jointly(p).map_err(|e| format!("refused: {e}"))?;
    let tol = 1e-6;
    for (i, d) in p.devices.iter().enumerate() {
        for t in 0..p.slots {
            let x = plan.kwh[i][t];
            ok(x >= -tol && x <= d.max_kwh[t] + tol, || {
                format!("device {i} slot {t}: {x} outside [0, {}]", d.max_kwh[t])
            })?;
        }
        let delivered: f64 = plan.kwh[i].iter().sum();
        ok(
            (delivered + plan.shortfall_kwh[i] - d.need_kwh).abs() <= tol,
            || format!("device {i}: {delivered} + shortfall ≠ need {}", d.need_kwh),
        )?;
    }
    for (g, group) in p.groups.iter().enumerate() {
        for t in 0..p.slots {
            let draw: f64 = (0..p.devices.len())
                .filter(|&i| under(p, i, g))
                .map(|i| plan.kwh[i][t])
                .sum();
            ok(draw <= group.limit_kwh[t] + tol, || {
                format!("group {g} slot {t}: {draw} over {}", group.limit_kwh[t])
            })?;
        }
    }
    let best = lp(p)?;
    let urgent: f64 = plan.urgent_shortfall_kwh.iter().sum();
    let shortfall: f64 = plan.shortfall_kwh.iter().sum();
    ok((urgent - best.urgent_shortfall).abs() <= tol, || {
        format!("urgent shortfall {urgent} ≠ LP {}", best.urgent_shortfall)
    })?;
    ok((shortfall - best.shortfall).abs() <= tol, || {
        format!("shortfall {shortfall} ≠ LP {}", best.shortfall)
    })?;
    ok(
        (plan.cost - best.cost).abs() <= 1e-6 * best.cost.abs().max(1.0),
        || format!("cost {} ≠ LP optimum {}", plan.cost, best.cost),
    )?;
    Ok(plan)
}

/// Packs a joint plan into on/off windows and checks every group's power at every instant, and
/// that no device gets more than the flow gave it. Windows start and end on the 30 s cells, so the
/// middle of each cell stands for every instant in it.
fn check_windows(p: &JointProblem, slot_h: f64, plan: &JointPlan) -> Result<(), String> {
    let power = |i: usize| p.devices[i].max_kwh.iter().copied().fold(0.0, f64::max) / slot_h;
    let problem = PackProblem {
        slot_seconds: vec![slot_h * 3600.0; p.slots],
        cell_seconds: 30.0,
        devices: (0..p.devices.len())
            .map(|i| PackDevice {
                group: p.devices[i].group,
                power_kw: power(i),
                kwh: plan.kwh[i].clone(),
            })
            .collect(),
        groups: p
            .groups
            .iter()
            .map(|g| PackGroup {
                parent: g.parent,
                limit_kw: g.limit_kwh.iter().map(|e| e / slot_h).collect(),
            })
            .collect(),
    };
    let packed = pack(&problem);
    for (i, windows) in packed.windows.iter().enumerate() {
        for t in 0..p.slots {
            ok(packed.packed_kwh[i][t] <= plan.kwh[i][t] + 1e-9, || {
                format!("device {i} slot {t}: packed more than the flow gave")
            })?;
            let on_s: f64 = windows
                .iter()
                .filter(|w| w.slot == t)
                .map(|w| w.end_s - w.start_s)
                .sum();
            ok(
                on_s * power(i) / 3600.0 >= packed.packed_kwh[i][t] - 1e-9,
                || format!("device {i} slot {t}: windows shorter than its packed energy"),
            )?;
        }
    }
    for (g, group) in p.groups.iter().enumerate() {
        for t in 0..p.slots {
            let mut second = 15.0;
            while second < slot_h * 3600.0 {
                let draw: f64 = (0..p.devices.len())
                    .filter(|&i| under(p, i, g))
                    .filter(|&i| {
                        packed.windows[i]
                            .iter()
                            .any(|w| w.slot == t && w.start_s <= second && second < w.end_s)
                    })
                    .map(power)
                    .sum();
                ok(draw <= group.limit_kwh[t] / slot_h + 1e-6, || {
                    format!("group {g} slot {t} second {second}: {draw} kW")
                })?;
                second += 30.0;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn on_off_windows_hold_every_limit_at_every_instant(seed in any::<u64>()) {
        let (p, slot_h) = problem_and_slot_hours(seed);
        let plan = plan_jointly(&p).map_err(|e| TestCaseError::fail(format!("seed {seed}: {e}")))?;
        if let Err(why) = check_windows(&p, slot_h, &plan) {
            return Err(TestCaseError::fail(format!("seed {seed}: {why}\n{p:#?}")));
        }
    }

    #[test]
    fn joint_plans_hold_every_limit_and_match_the_lp(seed in any::<u64>()) {
        let p = problem(seed);
        if let Err(why) = check(&p) {
            return Err(TestCaseError::fail(format!("seed {seed}: {why}\n{p:#?}")));
        }
    }
}

#[test]
fn generator_covers_nested_binding_and_short_cases() {
    let (mut nested, mut binding, mut short, mut urgent_short, mut negative) = (0, 0, 0, 0, 0);
    for seed in 0..300 {
        let p = problem(seed);
        let Ok(plan) = check(&p) else { continue };
        nested += usize::from(p.groups.iter().any(|g| g.parent.is_some()));
        binding += usize::from(p.groups.iter().enumerate().any(|(g, group)| {
            (0..p.slots).any(|t| {
                let draw: f64 = (0..p.devices.len())
                    .filter(|&i| under(&p, i, g))
                    .map(|i| plan.kwh[i][t])
                    .sum();
                draw > 0.0 && (draw - group.limit_kwh[t]).abs() < 1e-9
            })
        }));
        short += usize::from(plan.shortfall_kwh.iter().any(|s| *s > 1e-6));
        urgent_short += usize::from(plan.urgent_shortfall_kwh.iter().any(|s| *s > 1e-6));
        negative += usize::from(p.devices.iter().any(|d| d.price.iter().any(|x| *x < 0.0)));
    }
    assert!(
        nested > 100 && binding > 50 && short > 50 && urgent_short > 5 && negative > 50,
        "{nested} {binding} {short} {urgent_short} {negative}"
    );
}
