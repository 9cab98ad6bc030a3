//! Planning devices that share power limits together (issue 15, the core): every device's energy
//! by its deadline at minimum total cost, with every limit of every group in every slot.
//!
//! Limits form a laminar family — a device belongs to at most one innermost group (a site), a group
//! to at most one parent (a feeder) — so the problem is a min-cost flow:
//!
//! ```text
//! source ─need_i─▶ device i ─max_i,t / price_i,t─▶ (group g, slot t) ─limit_g,t─▶ (parent, t) … ─▶ sink
//!                     └──────────── need_i / shortfall penalty ─────────────────────────────────────▶ sink
//! ```
//!
//! A device outside every group sends its slot edges straight to the sink. The shortfall edge
//! carries what the limits do not let through: its penalty is far above any price, higher for the
//! energy a driver needs to reach their minimum level (`urgent_kwh`) than for the rest, so the flow
//! first delivers as much urgent energy as the limits allow, then as much of the rest, then at the
//! least cost. Solved exactly by successive shortest paths with potentials (Dijkstra on reduced
//! costs); every augmentation saturates an edge or a supply, so it ends after finitely many.
//! `crates/core/tests/joint_lp.rs` checks it against an LP.
//!
//! Pure: slots are indexes; what a slot's energy and price are is the caller's business.

pub mod pack;

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One device of a joint plan.
#[derive(Debug, Clone, PartialEq)]
pub struct JointDevice {
    /// Grid energy the device must get over the slots, kWh (its target by its deadline).
    pub need_kwh: f64,
    /// The part of `need_kwh` that brings it to the driver's minimum level: served first when the
    /// limits cannot serve everyone.
    pub urgent_kwh: f64,
    /// Per slot, the most energy the device can draw, kWh (0 where it cannot charge: unplugged,
    /// paused, after its deadline).
    pub max_kwh: Vec<f64>,
    /// Per slot, the price of its energy, per kWh (its own: tariffs differ).
    pub price: Vec<f64>,
    /// The innermost group it belongs to, if any.
    pub group: Option<usize>,
}

/// A set of devices (and groups) whose total draw is limited per slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub parent: Option<usize>,
    /// Per slot, the most energy the group may draw, kWh.
    pub limit_kwh: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JointProblem {
    pub slots: usize,
    pub devices: Vec<JointDevice>,
    pub groups: Vec<Group>,
}

/// The joint plan: energy per device and slot, and what could not be delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct JointPlan {
    /// `kwh[device][slot]`.
    pub kwh: Vec<Vec<f64>>,
    /// Per device, the need the limits left unmet, kWh.
    pub shortfall_kwh: Vec<f64>,
    /// Per device, the unmet part of its urgent energy, kWh.
    pub urgent_shortfall_kwh: Vec<f64>,
    /// Σ kwh × price.
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JointError {
    #[error("device {device}: {problem}")]
    Device { device: usize, problem: String },
    #[error("group {group}: {problem}")]
    Group { group: usize, problem: String },
}

/// Energies below this are zero (a millionth of a Wh-scale kWh figure).
const EPS: f64 = 1e-9;

struct Edge {
    to: usize,
    cap: f64,
    cost: f64,
}

/// A residual graph: edges in pairs (`e`, `e ^ 1`).
struct Graph {
    edges: Vec<Edge>,
    out: Vec<Vec<usize>>,
}

impl Graph {
    fn new(nodes: usize) -> Self {
        Graph {
            edges: Vec::new(),
            out: vec![Vec::new(); nodes],
        }
    }

    fn add(&mut self, from: usize, to: usize, cap: f64, cost: f64) -> usize {
        let id = self.edges.len();
        self.edges.push(Edge { to, cap, cost });
        self.out[from].push(id);
        self.edges.push(Edge {
            to: from,
            cap: 0.0,
            cost: -cost,
        });
        self.out[to].push(id + 1);
        id
    }

    fn flow(&self, edge: usize) -> f64 {
        self.edges[edge ^ 1].cap
    }
}

#[derive(PartialEq)]
struct Visit(f64, usize);

impl Eq for Visit {}

impl Ord for Visit {
    fn cmp(&self, other: &Self) -> Ordering {
        // A min-heap on distance; distances are finite.
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}

impl PartialOrd for Visit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl JointProblem {
    fn validate(&self) -> Result<(), JointError> {
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        for (g, group) in self.groups.iter().enumerate() {
            let bad = |problem: &str| JointError::Group {
                group: g,
                problem: problem.to_owned(),
            };
            if group.limit_kwh.len() != self.slots {
                return Err(bad("one limit per slot"));
            }
            if !group.limit_kwh.iter().all(|l| finite_nonneg(*l)) {
                return Err(bad("limits are finite and not negative"));
            }
            // Parents come first or later, but the chain must end: at most `groups` steps.
            let mut at = group.parent;
            for _ in 0..=self.groups.len() {
                match at {
                    None => break,
                    Some(p) if p >= self.groups.len() => return Err(bad("unknown parent")),
                    Some(p) => at = self.groups[p].parent,
                }
            }
            if at.is_some() {
                return Err(bad("groups nest in a cycle"));
            }
        }
        for (i, d) in self.devices.iter().enumerate() {
            let bad = |problem: &str| JointError::Device {
                device: i,
                problem: problem.to_owned(),
            };
            if d.max_kwh.len() != self.slots || d.price.len() != self.slots {
                return Err(bad("one maximum and one price per slot"));
            }
            if !finite_nonneg(d.need_kwh) || !finite_nonneg(d.urgent_kwh) {
                return Err(bad("energies are finite and not negative"));
            }
            if d.urgent_kwh > d.need_kwh + EPS {
                return Err(bad("urgent energy is part of the need"));
            }
            if !d.max_kwh.iter().all(|m| finite_nonneg(*m))
                || !d.price.iter().all(|p| p.is_finite())
            {
                return Err(bad("maxima are finite and not negative, prices finite"));
            }
            if d.group.is_some_and(|g| g >= self.groups.len()) {
                return Err(bad("unknown group"));
            }
        }
        Ok(())
    }
}

/// The cheapest joint plan that delivers as much urgent energy, then as much energy, as the limits
/// allow (see the module documentation).
pub fn plan_jointly(problem: &JointProblem) -> Result<JointPlan, JointError> {
    problem.validate()?;
    // Devices under different outermost groups (feeders) share no limit: each feeder is its own
    // flow, which keeps every graph small. A device outside every group is alone.
    let root = |mut g: usize| {
        while let Some(p) = problem.groups[g].parent {
            g = p;
        }
        g
    };
    let mut components: std::collections::BTreeMap<(bool, usize), Vec<usize>> =
        std::collections::BTreeMap::new();
    for (i, d) in problem.devices.iter().enumerate() {
        let key = d.group.map_or((false, i), |g| (true, root(g)));
        components.entry(key).or_default().push(i);
    }
    let mut plan = JointPlan {
        kwh: vec![Vec::new(); problem.devices.len()],
        shortfall_kwh: vec![0.0; problem.devices.len()],
        urgent_shortfall_kwh: vec![0.0; problem.devices.len()],
        cost: 0.0,
    };
    for devices in components.values() {
        // The component's own groups (its devices' groups and their ancestors), renumbered.
        let mut renumber: std::collections::BTreeMap<usize, usize> =
            std::collections::BTreeMap::new();
        for &i in devices {
            let mut at = problem.devices[i].group;
            while let Some(g) = at {
                let next = renumber.len();
                renumber.entry(g).or_insert(next);
                at = problem.groups[g].parent;
            }
        }
        let mut groups = vec![
            Group {
                parent: None,
                limit_kwh: Vec::new(),
            };
            renumber.len()
        ];
        for (&old, &new) in &renumber {
            groups[new] = Group {
                parent: problem.groups[old].parent.map(|p| renumber[&p]),
                limit_kwh: problem.groups[old].limit_kwh.clone(),
            };
        }
        let part = JointProblem {
            slots: problem.slots,
            devices: devices
                .iter()
                .map(|&i| JointDevice {
                    group: problem.devices[i].group.map(|g| renumber[&g]),
                    ..problem.devices[i].clone()
                })
                .collect(),
            groups,
        };
        let solved = solve(&part);
        for (k, &i) in devices.iter().enumerate() {
            plan.kwh[i] = solved.kwh[k].clone();
            plan.shortfall_kwh[i] = solved.shortfall_kwh[k];
            plan.urgent_shortfall_kwh[i] = solved.urgent_shortfall_kwh[k];
        }
        plan.cost += solved.cost;
    }
    Ok(plan)
}

/// One flow over all of `problem` (validated).
fn solve(problem: &JointProblem) -> JointPlan {
    let (n_dev, n_slots, n_groups) = (problem.devices.len(), problem.slots, problem.groups.len());
    let source = 0;
    let sink = 1;
    let device_node = |i: usize| 2 + i;
    let group_node = |g: usize, t: usize| 2 + n_dev + g * n_slots + t;
    let mut graph = Graph::new(2 + n_dev + n_groups * n_slots);

    // Every unit of a device's need goes through exactly one of its slot or shortfall edges, so a
    // constant added to all of them shifts the total by a constant: it makes every cost ≥ 0, which
    // Dijkstra needs on the first round.
    let lowest = problem
        .devices
        .iter()
        .flat_map(|d| d.price.iter().copied())
        .fold(0.0_f64, f64::min);
    let shift = -lowest;
    let highest = problem
        .devices
        .iter()
        .flat_map(|d| d.price.iter().copied())
        .fold(0.0_f64, |a, p| a.max(p.abs()));
    // Above any path's price (a path holds one priced edge), so shortfall is the last resort;
    // urgent shortfall far above that.
    let penalty = 1e3 * (highest + shift + 1.0);
    let urgent_penalty = 1e3 * penalty;

    for g in 0..n_groups {
        for t in 0..n_slots {
            let up = problem.groups[g].parent.map_or(sink, |p| group_node(p, t));
            graph.add(group_node(g, t), up, problem.groups[g].limit_kwh[t], 0.0);
        }
    }
    let mut slot_edges: Vec<Vec<Option<usize>>> = Vec::with_capacity(n_dev);
    let mut shortfall_edges = Vec::with_capacity(n_dev);
    for (i, d) in problem.devices.iter().enumerate() {
        graph.add(source, device_node(i), d.need_kwh, 0.0);
        let edges = (0..n_slots)
            .map(|t| {
                (d.max_kwh[t] > EPS).then(|| {
                    let to = d.group.map_or(sink, |g| group_node(g, t));
                    graph.add(device_node(i), to, d.max_kwh[t], d.price[t] + shift)
                })
            })
            .collect();
        slot_edges.push(edges);
        let urgent = graph.add(device_node(i), sink, d.urgent_kwh, urgent_penalty + shift);
        let rest = graph.add(
            device_node(i),
            sink,
            (d.need_kwh - d.urgent_kwh).max(0.0),
            penalty + shift,
        );
        shortfall_edges.push((urgent, rest));
    }

    successive_shortest_paths(&mut graph, source, sink);

    let mut plan = JointPlan {
        kwh: vec![vec![0.0; n_slots]; n_dev],
        shortfall_kwh: vec![0.0; n_dev],
        urgent_shortfall_kwh: vec![0.0; n_dev],
        cost: 0.0,
    };
    for (i, d) in problem.devices.iter().enumerate() {
        for (t, edge) in slot_edges[i].iter().enumerate() {
            if let Some(e) = edge {
                let kwh = graph.flow(*e).max(0.0);
                plan.kwh[i][t] = kwh;
                plan.cost += kwh * d.price[t];
            }
        }
        let (urgent, rest) = shortfall_edges[i];
        plan.urgent_shortfall_kwh[i] = graph.flow(urgent).max(0.0);
        plan.shortfall_kwh[i] = plan.urgent_shortfall_kwh[i] + graph.flow(rest).max(0.0);
    }
    plan
}

/// Sends as much flow as the source's edges carry, along cheapest paths: primal-dual. Each round
/// finds the distances from the source on reduced costs (Dijkstra, stopped at the sink), moves the
/// potentials, and then sends a blocking flow over the edges whose reduced cost is zero (Dinic), so
/// the many devices that tie on a price are served in one round. The shortfall edges make every
/// supply deliverable, so all of it arrives.
fn successive_shortest_paths(graph: &mut Graph, source: usize, sink: usize) {
    let n = graph.out.len();
    let mut potential = vec![0.0; n];
    let mut dist = vec![f64::INFINITY; n];
    let mut level = vec![u32::MAX; n];
    let mut next_edge = vec![0usize; n];
    let mut via: Vec<Option<usize>> = vec![None; n];
    loop {
        dist.fill(f64::INFINITY);
        via.fill(None);
        dist[source] = 0.0;
        let mut heap = BinaryHeap::new();
        heap.push(Visit(0.0, source));
        while let Some(Visit(d, u)) = heap.pop() {
            if d > dist[u] {
                continue;
            }
            if u == sink {
                break;
            }
            for &e in &graph.out[u] {
                let edge = &graph.edges[e];
                if edge.cap <= EPS {
                    continue;
                }
                // Reduced costs are ≥ 0 up to rounding.
                let reduced = (edge.cost + potential[u] - potential[edge.to]).max(0.0);
                let next = d + reduced;
                if next < dist[edge.to] {
                    dist[edge.to] = next;
                    via[edge.to] = Some(e);
                    heap.push(Visit(next, edge.to));
                }
            }
        }
        let to_sink = dist[sink];
        if !to_sink.is_finite() {
            return;
        }
        // Nodes beyond the sink move by the sink's distance: reduced costs stay ≥ 0.
        for (p, d) in potential.iter_mut().zip(&dist) {
            *p += d.min(to_sink);
        }
        let mut sent = false;
        // Blocking flows on the admissible graph until the sink is cut off from it.
        loop {
            level.fill(u32::MAX);
            level[source] = 0;
            let mut queue = std::collections::VecDeque::from([source]);
            while let Some(u) = queue.pop_front() {
                for &e in &graph.out[u] {
                    let edge = &graph.edges[e];
                    if edge.cap > EPS
                        && level[edge.to] == u32::MAX
                        && admissible(edge, potential[u], potential[edge.to])
                    {
                        level[edge.to] = level[u] + 1;
                        queue.push_back(edge.to);
                    }
                }
            }
            if level[sink] == u32::MAX {
                break;
            }
            next_edge.fill(0);
            loop {
                let pushed = push_along(
                    graph,
                    (&level, &potential, &mut next_edge),
                    source,
                    sink,
                    f64::INFINITY,
                );
                if pushed <= EPS {
                    break;
                }
                sent = true;
            }
        }
        if !sent {
            // Rounding kept the path Dijkstra found out of the admissible graph: push along it.
            let mut push = f64::INFINITY;
            let mut at = sink;
            while let Some(e) = via[at] {
                push = push.min(graph.edges[e].cap);
                at = graph.edges[e ^ 1].to;
            }
            if push <= EPS {
                return;
            }
            let mut at = sink;
            while let Some(e) = via[at] {
                graph.edges[e].cap -= push;
                graph.edges[e ^ 1].cap += push;
                at = graph.edges[e ^ 1].to;
            }
        }
    }
}

/// An edge on some cheapest path: zero reduced cost, up to rounding.
fn admissible(edge: &Edge, from: f64, to: f64) -> bool {
    let reduced = edge.cost + from - to;
    reduced <= 1e-9 * (1.0 + edge.cost.abs())
}

/// One augmenting path of the level graph (depth-first, each node resuming at its next edge).
fn push_along(
    graph: &mut Graph,
    (level, potential, next_edge): (&[u32], &[f64], &mut [usize]),
    u: usize,
    sink: usize,
    limit: f64,
) -> f64 {
    if u == sink {
        return limit;
    }
    while next_edge[u] < graph.out[u].len() {
        let e = graph.out[u][next_edge[u]];
        let (to, cap) = (graph.edges[e].to, graph.edges[e].cap);
        if cap > EPS
            && level[to] == level[u] + 1
            && admissible(&graph.edges[e], potential[u], potential[to])
        {
            let pushed = push_along(
                graph,
                (level, potential, next_edge),
                to,
                sink,
                limit.min(cap),
            );
            if pushed > EPS {
                graph.edges[e].cap -= pushed;
                graph.edges[e ^ 1].cap += pushed;
                return pushed;
            }
        }
        next_edge[u] += 1;
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(need: f64, max: &[f64], price: &[f64], group: Option<usize>) -> JointDevice {
        JointDevice {
            need_kwh: need,
            urgent_kwh: 0.0,
            max_kwh: max.to_vec(),
            price: price.to_vec(),
            group,
        }
    }

    #[test]
    fn a_shared_limit_spreads_two_cars_over_the_cheap_hours() {
        // Two 11 kW cars need 11 kWh each; the site takes 11 kWh per hour; hour 1 is cheapest.
        let price = [30.0, 10.0, 20.0, 40.0];
        let max = [11.0; 4];
        let problem = JointProblem {
            slots: 4,
            devices: vec![
                device(11.0, &max, &price, Some(0)),
                device(11.0, &max, &price, Some(0)),
            ],
            groups: vec![Group {
                parent: None,
                limit_kwh: vec![11.0; 4],
            }],
        };
        let plan = plan_jointly(&problem).unwrap();
        let per_slot: Vec<f64> = (0..4).map(|t| plan.kwh[0][t] + plan.kwh[1][t]).collect();
        assert!((per_slot[1] - 11.0).abs() < 1e-9 && (per_slot[2] - 11.0).abs() < 1e-9);
        assert!((plan.cost - 330.0).abs() < 1e-6, "{plan:?}");
        assert_eq!(plan.shortfall_kwh, vec![0.0, 0.0]);
    }

    #[test]
    fn urgent_energy_wins_when_the_limit_cannot_serve_both() {
        let max = [11.0, 11.0];
        let price = [10.0, 10.0];
        let mut urgent = device(11.0, &max, &price, Some(0));
        urgent.urgent_kwh = 8.0;
        let problem = JointProblem {
            slots: 2,
            devices: vec![device(11.0, &max, &price, Some(0)), urgent],
            groups: vec![Group {
                parent: None,
                limit_kwh: vec![5.0, 5.0],
            }],
        };
        let plan = plan_jointly(&problem).unwrap();
        assert!(plan.urgent_shortfall_kwh[1] < 1e-9, "{plan:?}");
        let delivered: f64 = plan.kwh.iter().flatten().sum();
        assert!((delivered - 10.0).abs() < 1e-9);
        assert!((plan.shortfall_kwh[0] + plan.shortfall_kwh[1] - 12.0).abs() < 1e-9);
    }

    #[test]
    fn nested_limits_and_negative_prices() {
        // A feeder (group 0) of 15 kWh per slot over two sites of 10 kWh; slot 0 is paid for.
        let price = [-5.0, 20.0];
        let max = [11.0, 11.0];
        let problem = JointProblem {
            slots: 2,
            devices: vec![
                device(10.0, &max, &price, Some(1)),
                device(10.0, &max, &price, Some(2)),
            ],
            groups: vec![
                Group {
                    parent: None,
                    limit_kwh: vec![15.0, 15.0],
                },
                Group {
                    parent: Some(0),
                    limit_kwh: vec![10.0, 10.0],
                },
                Group {
                    parent: Some(0),
                    limit_kwh: vec![10.0, 10.0],
                },
            ],
        };
        let plan = plan_jointly(&problem).unwrap();
        assert!(
            (plan.kwh[0][0] + plan.kwh[1][0] - 15.0).abs() < 1e-9,
            "{plan:?}"
        );
        assert!((plan.cost - (15.0 * -5.0 + 5.0 * 20.0)).abs() < 1e-6);
    }

    #[test]
    fn refuses_malformed_problems() {
        let problem = JointProblem {
            slots: 1,
            devices: vec![device(1.0, &[1.0], &[1.0], Some(0))],
            groups: vec![Group {
                parent: Some(0),
                limit_kwh: vec![1.0],
            }],
        };
        assert!(matches!(
            plan_jointly(&problem),
            Err(JointError::Group { .. })
        ));
    }
}
