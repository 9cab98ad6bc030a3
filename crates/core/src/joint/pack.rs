//! From a joint plan's energies to on/off windows that keep every limit at every instant.
//!
//! The flow (`super::plan_jointly`) keeps each group's *energy* per slot under its limit. A car
//! steered by start/stop draws its full power or nothing, so two cars with half a slot each must
//! not both start at the slot's beginning. Each slot is cut into cells (30 s by default); devices
//! that charge the whole slot take every cell, then the others, strongest first, take the earliest
//! cells (the latest, when the device charges in the next slot and not the previous one: fewer
//! start/stop commands) where every group above them still has room for their full power. A
//! device's energy is rounded up to whole cells; a device that finds too few free cells gets less
//! than the flow gave it (`packed_kwh`), which the next joint plan makes up. Greedy, not optimal:
//! with powers that do not divide a limit, the flow's energy may not all fit on/off.

/// One device: its innermost group, its power when on, and its energy per slot from the flow.
#[derive(Debug, Clone, PartialEq)]
pub struct PackDevice {
    pub group: Option<usize>,
    pub power_kw: f64,
    pub kwh: Vec<f64>,
}

/// A group's parent and its power limit per slot, kW (after any fixed load).
#[derive(Debug, Clone, PartialEq)]
pub struct PackGroup {
    pub parent: Option<usize>,
    pub limit_kw: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PackProblem {
    /// Each slot's length, seconds (the first may be cut short by `now`).
    pub slot_seconds: Vec<f64>,
    pub cell_seconds: f64,
    pub devices: Vec<PackDevice>,
    pub groups: Vec<PackGroup>,
}

/// `[start, end)` seconds after the start of `slot`, at the device's full power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnWindow {
    pub slot: usize,
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    /// Per device, its windows in time order (adjacent cells merged).
    pub windows: Vec<Vec<OnWindow>>,
    /// Per device and slot, the energy its windows allow, at most the flow's, kWh.
    pub packed_kwh: Vec<Vec<f64>>,
}

/// Power within this of a limit counts as within it (float noise of the flow).
const SLACK_KW: f64 = 1e-6;

/// Packs every slot (see the module documentation).
pub fn pack(problem: &PackProblem) -> Packed {
    let n = problem.devices.len();
    let mut windows = vec![Vec::new(); n];
    let mut packed_kwh: Vec<Vec<f64>> = problem
        .devices
        .iter()
        .map(|d| vec![0.0; d.kwh.len()])
        .collect();
    let chains: Vec<Vec<usize>> = problem
        .devices
        .iter()
        .map(|d| {
            let mut chain = Vec::new();
            let mut at = d.group;
            while let Some(g) = at {
                chain.push(g);
                at = problem.groups[g].parent;
            }
            chain
        })
        .collect();
    let energy = |i: usize, t: usize| problem.devices[i].kwh.get(t).copied().unwrap_or(0.0);
    for (t, &slot_s) in problem.slot_seconds.iter().enumerate() {
        let cell_s = problem.cell_seconds.max(1.0);
        let cells = (slot_s / cell_s).ceil().max(0.0) as usize;
        if cells == 0 {
            continue;
        }
        let cell_len = |c: usize| (slot_s - c as f64 * cell_s).min(cell_s);
        let mut used: Vec<Vec<f64>> = vec![vec![0.0; cells]; problem.groups.len()];
        let full = |i: usize| {
            let d = &problem.devices[i];
            energy(i, t) >= d.power_kw * slot_s / 3600.0 * (1.0 - 1e-9)
        };
        let mut order: Vec<usize> = (0..n)
            .filter(|&i| energy(i, t) > 1e-9 && problem.devices[i].power_kw > 0.0)
            .collect();
        order.sort_by(|&a, &b| {
            full(b)
                .cmp(&full(a))
                .then(
                    problem.devices[b]
                        .power_kw
                        .total_cmp(&problem.devices[a].power_kw),
                )
                .then(a.cmp(&b))
        });
        for i in order {
            let power = problem.devices[i].power_kw;
            let needed_s = energy(i, t) / power * 3600.0;
            let backwards = energy(i, t.wrapping_sub(1)) <= 1e-9 && energy(i, t + 1) > 1e-9;
            let fits = |c: usize, used: &Vec<Vec<f64>>| {
                chains[i]
                    .iter()
                    .all(|&g| used[g][c] + power <= problem.groups[g].limit_kw[t] + SLACK_KW)
            };
            let mut taken = vec![false; cells];
            let mut got_s = 0.0;
            let scan: Box<dyn Iterator<Item = usize>> = if backwards {
                Box::new((0..cells).rev())
            } else {
                Box::new(0..cells)
            };
            for c in scan {
                if got_s >= needed_s - 1e-6 {
                    break;
                }
                if fits(c, &used) {
                    taken[c] = true;
                    got_s += cell_len(c);
                    for &g in &chains[i] {
                        used[g][c] += power;
                    }
                }
            }
            packed_kwh[i][t] = energy(i, t).min(got_s * power / 3600.0);
            let mut c = 0;
            while c < cells {
                if !taken[c] {
                    c += 1;
                    continue;
                }
                let first = c;
                while c < cells && taken[c] {
                    c += 1;
                }
                windows[i].push(OnWindow {
                    slot: t,
                    start_s: first as f64 * cell_s,
                    end_s: (c as f64 * cell_s).min(slot_s),
                });
            }
        }
    }
    Packed {
        windows,
        packed_kwh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peak power per group over every cell.
    fn peak(problem: &PackProblem, packed: &Packed, group: usize, slot: usize) -> f64 {
        let mut worst: f64 = 0.0;
        let mut at = 0.0;
        while at < problem.slot_seconds[slot] {
            let mid = at + 0.5;
            let p: f64 = packed
                .windows
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    let mut g = problem.devices[*i].group;
                    while let Some(x) = g {
                        if x == group {
                            return true;
                        }
                        g = problem.groups[x].parent;
                    }
                    false
                })
                .filter(|(_, ws)| {
                    ws.iter()
                        .any(|w| w.slot == slot && w.start_s <= mid && mid < w.end_s)
                })
                .map(|(i, _)| problem.devices[i].power_kw)
                .sum();
            worst = worst.max(p);
            at += 1.0;
        }
        worst
    }

    #[test]
    fn partial_devices_take_turns_under_the_limit() {
        // 22 kW feeder, three 11 kW cars: one all slot, two with half a slot each.
        let problem = PackProblem {
            slot_seconds: vec![900.0],
            cell_seconds: 30.0,
            devices: vec![
                PackDevice {
                    group: Some(0),
                    power_kw: 11.0,
                    kwh: vec![11.0 * 0.25],
                },
                PackDevice {
                    group: Some(0),
                    power_kw: 11.0,
                    kwh: vec![11.0 * 0.125],
                },
                PackDevice {
                    group: Some(0),
                    power_kw: 11.0,
                    kwh: vec![11.0 * 0.125],
                },
            ],
            groups: vec![PackGroup {
                parent: None,
                limit_kw: vec![22.0],
            }],
        };
        let packed = pack(&problem);
        assert!(peak(&problem, &packed, 0, 0) <= 22.0 + 1e-9);
        for (i, want) in [2.75, 1.375, 1.375].into_iter().enumerate() {
            assert!((packed.packed_kwh[i][0] - want).abs() < 1e-9, "{packed:?}");
        }
        assert_eq!(packed.windows[1][0].start_s, 0.0);
        assert_eq!(packed.windows[2][0].start_s, 450.0);
    }

    #[test]
    fn nested_limits_hold_and_what_does_not_fit_is_reported() {
        // Site limit 11 kW inside a 15 kW feeder: two 11 kW cars at one site with 60 % of a slot
        // each cannot both fit on/off (1.2 slots of 11 kW), so one gets less.
        let problem = PackProblem {
            slot_seconds: vec![900.0, 600.0],
            cell_seconds: 30.0,
            devices: vec![
                PackDevice {
                    group: Some(1),
                    power_kw: 11.0,
                    kwh: vec![11.0 * 0.25 * 0.6, 0.0],
                },
                PackDevice {
                    group: Some(1),
                    power_kw: 11.0,
                    kwh: vec![11.0 * 0.25 * 0.6, 11.0 / 6.0],
                },
                PackDevice {
                    group: Some(0),
                    power_kw: 4.0,
                    kwh: vec![1.0, 0.5],
                },
            ],
            groups: vec![
                PackGroup {
                    parent: None,
                    limit_kw: vec![15.0, 15.0],
                },
                PackGroup {
                    parent: Some(0),
                    limit_kw: vec![11.0, 11.0],
                },
            ],
        };
        let packed = pack(&problem);
        for slot in 0..2 {
            assert!(peak(&problem, &packed, 0, slot) <= 15.0 + 1e-9);
            assert!(peak(&problem, &packed, 1, slot) <= 11.0 + 1e-9);
        }
        let site: f64 = packed.packed_kwh[0][0] + packed.packed_kwh[1][0];
        assert!((site - 11.0 * 0.25).abs() < 1e-9, "{packed:?}");
        assert!((packed.packed_kwh[1][1] - 11.0 / 6.0).abs() < 1e-9);
        assert!((packed.packed_kwh[2][0] - 1.0).abs() < 1e-9);
    }
}
