//! The joint plan (`voltplan_core::joint`): `cargo bench -p voltplan-core --bench joint`.
//! Fleets of cars in sites of five inside feeders, 96 quarter-hours, a §14a-like dimming window on
//! some sites, and a feeder limit that binds in the cheap night. Plain `Instant` timing.

use std::hint::black_box;
use std::time::Instant;

use voltplan_core::joint::pack::{PackDevice, PackGroup, PackProblem, pack};
use voltplan_core::joint::{Group, JointDevice, JointPlan, JointProblem, plan_jointly};

fn fleet(
    cars: usize,
    cars_per_site: usize,
    sites_per_feeder: usize,
    own_prices: bool,
) -> JointProblem {
    let slots = 96;
    let sites = cars.div_ceil(cars_per_site);
    let feeders = sites.div_ceil(sites_per_feeder);
    let mut noise = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        (noise % 10_000) as f64 / 10_000.0
    };
    let price: Vec<f64> = (0..slots)
        .map(|t| {
            let hour = t as f64 / 4.0;
            0.08 + 0.05 * ((hour - 8.0) / 24.0 * std::f64::consts::TAU).sin()
        })
        .collect();
    let mut groups: Vec<Group> = (0..feeders)
        .map(|_| Group {
            parent: None,
            // 2 kW per car on average: binds when everyone wants the cheap hours.
            limit_kwh: vec![2.0 * (cars_per_site * sites_per_feeder) as f64 * 0.25; slots],
        })
        .collect();
    for s in 0..sites {
        let dimmed = s % 4 == 0;
        groups.push(Group {
            parent: Some(s / sites_per_feeder),
            limit_kwh: (0..slots)
                .map(|t| {
                    if dimmed && (68..76).contains(&t) {
                        4.2 * 0.25
                    } else {
                        22.0 * 0.25
                    }
                })
                .collect(),
        });
    }
    let devices = (0..cars)
        .map(|i| {
            let plug = (next() * 24.0) as usize;
            let leave = (plug + 32 + (next() * 40.0) as usize).min(slots);
            let max_kwh: Vec<f64> = (0..slots)
                .map(|t| {
                    if (plug..leave).contains(&t) {
                        11.0 * 0.25
                    } else {
                        0.0
                    }
                })
                .collect();
            let need = next() * 30.0;
            JointDevice {
                need_kwh: need,
                urgent_kwh: need * 0.2 * next(),
                max_kwh,
                // Devices on the zone's price tie slot by slot; own tariffs break the ties.
                price: price
                    .iter()
                    .map(|p| if own_prices { p + 0.01 * next() } else { *p })
                    .collect(),
                group: Some(feeders + i / cars_per_site),
            }
        })
        .collect();
    JointProblem {
        slots,
        devices,
        groups,
    }
}

fn main() {
    // Each feeder is its own flow. Devices on one zone price tie slot by slot and are served a
    // round at a time; own tariffs break the ties and cost many more rounds.
    for (label, cars, own_prices) in [
        ("a street, zone price", 40, false),
        ("a street, own tariffs", 40, true),
        ("a feeder, zone price", 500, false),
        ("a feeder, own tariffs", 500, true),
        ("2,000 sites in 20 feeders, zone price", 10_000, false),
        ("20,000 sites in 200 feeders, zone price", 100_000, false),
    ] {
        let problem = fleet(cars, 5, 100, own_prices);
        let runs = if cars > 100 { 1 } else { 5 };
        let began = Instant::now();
        let mut plan = None;
        for _ in 0..runs {
            plan = black_box(plan_jointly(black_box(&problem)).ok());
        }
        let each = began.elapsed() / runs;
        let Some(plan) = plan else {
            println!("joint plan, {label}: refused");
            continue;
        };
        let windows = on_off(&problem, &plan);
        let began = Instant::now();
        black_box(pack(black_box(&windows)));
        println!(
            "joint plan, {label}: {cars} cars, {} groups, 96 quarter-hours: flow {each:?}, on/off windows {:?}",
            problem.groups.len(),
            began.elapsed()
        );
    }
}

/// The flow's energies as the worker packs them into on/off windows (11 kW cars, 30 s cells).
fn on_off(problem: &JointProblem, plan: &JointPlan) -> PackProblem {
    PackProblem {
        slot_seconds: vec![900.0; problem.slots],
        cell_seconds: 30.0,
        devices: problem
            .devices
            .iter()
            .zip(&plan.kwh)
            .map(|(d, kwh)| PackDevice {
                group: d.group,
                power_kw: 11.0,
                kwh: kwh.clone(),
            })
            .collect(),
        groups: problem
            .groups
            .iter()
            .map(|g| PackGroup {
                parent: g.parent,
                limit_kw: g.limit_kwh.iter().map(|e| e / 0.25).collect(),
            })
            .collect(),
    }
}
