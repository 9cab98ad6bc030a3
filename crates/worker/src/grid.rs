//! Joint plans of grid groups (issue 15): the vehicles under one outermost group are planned
//! together so that every group's limit holds in every slot, and each vehicle is then planned
//! within the windows that joint plan leaves it.
//!
//! One joint plan, under a lease on the outermost group:
//!
//! 1. each member is planned alone, as it would be without limits (its own prices, rules and
//!    deadline); that plan says what it needs: energy at once (below its minimum level, boost,
//!    a target out of reach) and energy by its deadline;
//! 2. a car charging on its own at the site (smart charging off) is fixed load: its draw lowers
//!    the limits of every group above it;
//! 3. the rest is a min-cost flow (`voltplan_core::joint`) over quarter-hours from now to 36 h
//!    ahead: energy needed at once is served first and as early as possible, the rest where it is
//!    cheapest, every limit in every slot;
//! 4. the flow's energies become on/off windows that keep the limits at every instant
//!    (`voltplan_core::joint::pack`), written to each vehicle with the fingerprint of the inputs
//!    it was planned from; vehicles whose windows changed are cycled at once.
//!
//! A vehicle's cycle plans within its windows; when its inputs differ from the fingerprint
//! (plugged in, new settings, boost), it makes the group due, so the group is planned again
//! within one worker loop. Groups are also planned every `grid_replan_every`, as time and
//! batteries move on.

use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voltplan_core::joint::pack::{PackDevice, PackGroup, PackProblem, pack};
use voltplan_core::joint::{Group, JointDevice, JointProblem, plan_jointly};
use voltplan_core::planner::{
    Plan, PlanInput, PlanInterval, PlanMode, PowerWindow, Reason, SharedLimit, max_charge_power_w,
};
use voltplan_core::vehicle::{EvSettings, EvState};
use voltplan_store::{GridGroupRecord, GridLease, GridMember, GridPlanOutcome, OrgScope, Store};

use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::price_book::{self, PriceBook};
use crate::replan::Fnv1a;
use crate::runtime::VehicleRuntime;
use crate::tariff::{self, Owner, Pricing};

/// How far ahead a joint plan looks: tomorrow's published prices and a morning deadline.
const HORIZON: Duration = Duration::hours(36);
const SLOT: Duration = Duration::minutes(15);
/// On/off windows are cut in cells this long.
const CELL_SECONDS: f64 = 30.0;
/// Stands for "no limit" in the flow, kWh per slot.
const UNLIMITED_KWH: f64 = 1e9;
/// Price of energy needed at once, per kWh: below every real price, rising by `ASAP_STEP` per
/// slot, so it goes first and as early as the limits allow.
const ASAP_PRICE: f64 = -100.0;
const ASAP_STEP: f64 = 0.01;
/// Added per slot to the price of energy due by a deadline: among equal prices, earlier first.
const EARLY_STEP: f64 = 1e-7;
/// Added to the price of the slots in a vehicle's ready margin before its deadline, per kWh.
const MARGIN_PRICE: f64 = 1.0;
/// Window time reserved beyond a car's target energy, kWh: a start that came late or a battery
/// that took a little more tops up inside its own windows instead of missing its target.
const TOP_UP_RESERVE_KWH: f64 = 0.2;
const TOP_UP_RESERVE_SHARE: f64 = 0.02;
/// A measured charging power below this (kW) is a car winding down, not its pace.
const MIN_MEASURED_KW: f64 = 0.5;

/// What a vehicle stores from its group's joint plan (`electric_vehicles.shared_limit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedAssignment {
    /// The outermost group.
    pub root: Uuid,
    /// [`joint_fingerprint`] of the inputs the group planned the vehicle from, hex.
    pub fingerprint: String,
    pub limit: SharedLimit,
}

/// What of a vehicle the joint plan depends on besides its battery level (which the periodic
/// re-plan follows): settings, plug, boost, charge limit, capacity.
pub fn joint_fingerprint(settings: &EvSettings, state: &EvState) -> String {
    let mut h = Fnv1a::new();
    h.text(&serde_json::to_string(settings).unwrap_or_default());
    h.flag(state.is_plugged_in == Some(true));
    h.flag(crate::boost::boost_active(state));
    h.option(state.charge_target_max, |h, max| {
        h.bytes(&max.to_le_bytes())
    });
    h.option(state.reported_battery_capacity_kwh, |h, kwh| {
        h.bytes(&kwh.to_bits().to_le_bytes())
    });
    format!("{:016x}", h.finish())
}

/// The slots of a joint plan: from `now` to the next quarter-hour, then quarter-hours.
fn slots(now: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let first_end = now.duration_trunc(SLOT).unwrap_or(now) + SLOT;
    let mut out = vec![(now, first_end)];
    let mut t = first_end;
    while t < now + HORIZON {
        out.push((t, t + SLOT));
        t += SLOT;
    }
    out
}

fn hours(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds().max(0) as f64 / 3_600_000.0
}

fn overlap_h(slot: (DateTime<Utc>, DateTime<Utc>), from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    hours(slot.0.max(from), slot.1.min(to))
}

/// A limit in an outermost group's tree: a grid group, or a building's connection
/// (`power_limit_w` on the building) inside the group its vehicles sit in.
enum Node<'a> {
    Group(&'a GridGroupRecord),
    Building { id: Uuid, limit_w: i64 },
}

impl Node<'_> {
    fn limit_w(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<i64> {
        match self {
            Node::Group(g) => g.group.limit_w(start, end),
            Node::Building { limit_w, .. } => Some(*limit_w),
        }
    }

    /// How the joint plan's summary names the node.
    fn json(&self) -> serde_json::Value {
        match self {
            Node::Group(g) => serde_json::json!({"grid_group_id": g.id, "name": g.group.name}),
            Node::Building { id, .. } => serde_json::json!({"building_id": id}),
        }
    }
}

/// The limits of one outermost group's tree, its members and who sits where.
struct Tree<'a> {
    root: &'a GridGroupRecord,
    nodes: Vec<Node<'a>>,
    parent: Vec<Option<usize>>,
    /// Innermost node of each member vehicle.
    home_group: HashMap<Uuid, usize>,
    /// Each building connection's node, by (building, the group it sits in).
    building_nodes: HashMap<(Uuid, usize), usize>,
}

impl<'a> Tree<'a> {
    fn groups(&self) -> impl Iterator<Item = &'a GridGroupRecord> + '_ {
        self.nodes.iter().filter_map(|n| match n {
            Node::Group(g) => Some(*g),
            Node::Building { .. } => None,
        })
    }

    /// The node of a building's connection inside `parent`, added on first use.
    fn building(&mut self, id: Uuid, limit_w: i64, parent: usize) -> usize {
        if let Some(&node) = self.building_nodes.get(&(id, parent)) {
            return node;
        }
        self.nodes.push(Node::Building { id, limit_w });
        self.parent.push(Some(parent));
        let node = self.nodes.len() - 1;
        self.building_nodes.insert((id, parent), node);
        node
    }
}

fn tree<'a>(all: &'a [GridGroupRecord], root: Uuid) -> Option<Tree<'a>> {
    let root_index = all.iter().position(|g| g.id == root)?;
    let mut groups = vec![&all[root_index]];
    let mut parent = vec![None];
    let mut at = 0;
    while at < groups.len() {
        let id = groups[at].id;
        for g in all.iter().filter(|g| g.group.parent_id == Some(id)) {
            groups.push(g);
            parent.push(Some(at));
        }
        at += 1;
        if groups.len() > all.len() {
            break; // a cycle the API refused; never loop
        }
    }
    Some(Tree {
        root: &all[root_index],
        nodes: groups.into_iter().map(Node::Group).collect(),
        parent,
        home_group: HashMap::new(),
        building_nodes: HashMap::new(),
    })
}

/// Plans every due outermost group this worker can lease; returns how many it planned.
pub(crate) async fn run_grid_groups(
    store: &dyn Store,
    config: &WorkerConfig,
    now: DateTime<Utc>,
) -> Result<usize, WorkerError> {
    let leases = store
        .claim_grid_groups(&config.worker_id, now, config.lease_for, 8)
        .await?;
    let mut planned = 0;
    for lease in leases {
        let outcome = plan_group(store, config, &lease, now).await?;
        if store.finish_grid_plan(&lease, &outcome).await? {
            planned += 1;
        } else {
            tracing::warn!(group_id = %lease.group_id, "grid group lease lost; nothing written");
        }
    }
    Ok(planned)
}

/// One member as the flow sees it.
struct Member<'a> {
    member: &'a GridMember,
    group: usize,
    /// Its power when on, for packing its windows: never below what it may draw.
    power_kw: f64,
    /// How fast it fills, kW: its measured power while charging, else `power_kw`.
    energy_kw: f64,
    fingerprint: String,
    /// What it would do alone (none: cannot be planned, left alone).
    plan: Option<Plan>,
    /// Its price per slot, per kWh.
    price: Vec<f64>,
}

async fn plan_group(
    store: &dyn Store,
    config: &WorkerConfig,
    lease: &GridLease,
    now: DateTime<Utc>,
) -> Result<GridPlanOutcome, WorkerError> {
    let org = OrgScope::new(lease.org_id);
    let all = store.list_grid_groups(org).await?;
    let next_plan_at = now + config.grid_replan_every;
    let Some(mut tree) = tree(&all, lease.group_id) else {
        return Ok(GridPlanOutcome {
            joint_plan: "{}".into(),
            next_plan_at,
            assignments: Vec::new(),
        });
    };
    let vehicle_ids: Vec<Uuid> = tree
        .groups()
        .flat_map(|g| g.group.electric_vehicle_ids.iter().copied())
        .collect();
    let building_ids: Vec<Uuid> = tree
        .groups()
        .flat_map(|g| g.group.building_ids.iter().copied())
        .collect();
    let members = store.grid_members(org, &vehicle_ids, &building_ids).await?;
    let homes: Vec<Uuid> = members
        .iter()
        .filter_map(|m| m.vehicle.building_id)
        .collect();
    let connection_limits: HashMap<Uuid, i64> = store
        .building_limits(org, &homes)
        .await?
        .into_iter()
        .collect();
    // A vehicle listed by a group belongs there; else its building's group. Inside it, its
    // building's connection when that has a limit. (Groups are the tree's first nodes.)
    let mut listed: HashMap<Uuid, usize> = HashMap::new();
    let mut by_building: HashMap<Uuid, usize> = HashMap::new();
    for (g, group) in tree.groups().enumerate() {
        listed.extend(group.group.electric_vehicle_ids.iter().map(|id| (*id, g)));
        by_building.extend(group.group.building_ids.iter().map(|id| (*id, g)));
    }
    for m in &members {
        let v = &m.vehicle;
        let in_building = v.building_id.and_then(|b| by_building.get(&b));
        let Some(&group) = listed.get(&v.id).or(in_building) else {
            continue;
        };
        let node = match v
            .building_id
            .and_then(|b| Some((b, *connection_limits.get(&b)?)))
        {
            Some((building, limit_w)) => tree.building(building, limit_w, group),
            None => group,
        };
        tree.home_group.insert(v.id, node);
    }
    let owners: Vec<Owner> = members
        .iter()
        .map(|m| Owner::of_vehicle(&m.vehicle))
        .collect();
    let keys: Vec<_> = owners.iter().map(|o| o.price_key).collect();
    let books = price_book::load_price_books(store, keys.iter().copied(), now).await?;
    let pricing = tariff::load_pricing(store, &owners, &books).await?;
    let slots = slots(now);
    let empty = PriceBook::default();
    let mut inputs = Vec::new();
    for ((m, key), (pricing, _)) in members.iter().zip(&keys).zip(&pricing) {
        let Some(&group) = tree.home_group.get(&m.vehicle.id) else {
            continue;
        };
        let book = books.get(key).map_or(&empty, |b| b.as_ref());
        let v = &m.vehicle;
        let level = m
            .runtime
            .as_deref()
            .and_then(|text| serde_json::from_str::<VehicleRuntime>(text).ok())
            .and_then(|rt| rt.last_level_pct);
        let plan = PlanInput::from_ev(&v.settings, &v.state, m.home, v.price_zone)
            .map(|mut input| {
                // The level the car reports, not the whole percent the API shows (as its cycle).
                if let Some(level) = level {
                    input.vehicle.battery_level_pct = level;
                }
                input
            })
            .and_then(|input| pricing.plan(input, book, (now, config.ready_margin), None))
            .map_err(
                |e| tracing::debug!(vehicle_id = %v.id, error = %e, "member cannot be planned"),
            )
            .ok();
        let power_kw =
            max_charge_power_w(v.settings.expected_max_charge_power, v.state.charge_rate_w)
                / 1000.0;
        // A charging car's measured power says how fast it really fills (a battery tapers near
        // full); its windows are still packed at full power, so a car that speeds up again
        // cannot break a limit.
        let measured_kw = (v.state.is_charging == Some(true))
            .then_some(v.state.charge_rate_w)
            .flatten()
            .map(|w| f64::from(w) / 1000.0)
            .filter(|kw| *kw >= MIN_MEASURED_KW);
        inputs.push(Member {
            member: m,
            group,
            power_kw,
            energy_kw: measured_kw.map_or(power_kw, |kw| kw.min(power_kw)),
            fingerprint: joint_fingerprint(&v.settings, &v.state),
            plan,
            price: slot_prices(pricing, book, &slots),
        });
    }
    let joint = solve(&tree, &inputs, &slots, config.ready_margin);
    let root = tree.root;
    let assignments = inputs
        .iter()
        .zip(&joint.per_member)
        .map(|(m, r)| {
            let assignment = SharedAssignment {
                root: root.id,
                fingerprint: m.fingerprint.clone(),
                limit: SharedLimit {
                    group_id: root.id.to_string(),
                    group_name: root.group.name.clone(),
                    windows: r.windows.clone(),
                    shortfall_kwh: (r.shortfall_kwh.max(0.0) * 100.0).round() / 100.0,
                },
            };
            let text = serde_json::to_string(&assignment).unwrap_or_default();
            (m.member.vehicle.id, text)
        })
        .collect();
    let summary = summary(&tree, &inputs, &joint, &slots, now);
    Ok(GridPlanOutcome {
        joint_plan: summary.to_string(),
        next_plan_at,
        assignments,
    })
}

/// Each slot's price per kWh on the member's pricing; where none is published, the mean of
/// those that are (the single-car planner forecasts; the joint plan needs only an order).
fn slot_prices(
    pricing: &Pricing,
    wholesale: &PriceBook,
    slots: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<f64> {
    let book = pricing.customer().map_or(wholesale, |c| &c.book);
    let known: Vec<Option<f64>> = slots.iter().map(|s| book.price_at(s.0)).collect();
    let published: Vec<f64> = known.iter().flatten().copied().collect();
    let mean = if published.is_empty() {
        0.0
    } else {
        published.iter().sum::<f64>() / published.len() as f64
    };
    known
        .into_iter()
        .map(|p| p.unwrap_or(mean) / 1000.0)
        .collect()
}

/// One member's share of the joint plan.
struct MemberResult {
    windows: Vec<PowerWindow>,
    planned_kwh: f64,
    need_kwh: f64,
    shortfall_kwh: f64,
    fixed: bool,
}

struct Joint {
    per_member: Vec<MemberResult>,
    /// Per group and slot: its limit after fixed load, kW.
    limit_kw: Vec<Vec<f64>>,
    /// Per group and slot: the power its members' windows reserve (each at full power), kW.
    planned_kw: Vec<Vec<f64>>,
    /// Per group and slot: the members' draw if each were planned alone, kW.
    alone_kw: Vec<Vec<f64>>,
    /// Energy the flow gave that on/off windows could not hold, kWh.
    unpacked_kwh: f64,
}

/// Energy of `plan` per slot, by what it is for: (at once, by the deadline, on its own).
fn needs(plan: &Plan, slots: &[(DateTime<Utc>, DateTime<Utc>)]) -> (f64, f64, Vec<f64>) {
    let (mut asap, mut target) = (0.0, 0.0);
    let mut own = vec![0.0; slots.len()];
    for iv in &plan.intervals {
        match iv.reason {
            Reason::MinLevel | Reason::Boost | Reason::Infeasible => asap += iv.energy_kwh,
            Reason::Target => target += iv.energy_kwh,
            Reason::OverCharge => {}
            Reason::Uncontrolled => {
                for (t, kwh) in per_slot(iv, slots) {
                    own[t] += kwh;
                }
            }
        }
    }
    (asap, target, own)
}

/// An interval's energy in each slot it overlaps, spread evenly over its span: (slot, kWh).
fn per_slot<'s>(
    iv: &PlanInterval,
    slots: &'s [(DateTime<Utc>, DateTime<Utc>)],
) -> impl Iterator<Item = (usize, f64)> + 's {
    let (start, end, kwh) = (iv.start, iv.end, iv.energy_kwh);
    let span = hours(start, end);
    let first = slots.partition_point(|s| s.1 <= start);
    slots[first..]
        .iter()
        .take_while(move |s| s.0 < end)
        .enumerate()
        .filter(move |_| span > 0.0)
        .map(move |(k, slot)| (first + k, kwh * overlap_h(*slot, start, end) / span))
}

fn solve(
    tree: &Tree<'_>,
    members: &[Member<'_>],
    slots: &[(DateTime<Utc>, DateTime<Utc>)],
    ready_margin: Duration,
) -> Joint {
    let n_slots = slots.len();
    let slot_h: Vec<f64> = slots.iter().map(|s| hours(s.0, s.1)).collect();
    let horizon_end = slots.last().map_or(slots[0].1, |s| s.1);
    let mut limit_kwh: Vec<Vec<f64>> = tree
        .nodes
        .iter()
        .map(|node| {
            slots
                .iter()
                .zip(&slot_h)
                .map(|(s, h)| {
                    node.limit_w(s.0, s.1)
                        .map_or(UNLIMITED_KWH, |w| w as f64 / 1000.0 * h)
                })
                .collect()
        })
        .collect();
    let chain = |mut g: Option<usize>| {
        let mut out = Vec::new();
        while let Some(x) = g {
            out.push(x);
            g = tree.parent[x];
        }
        out
    };
    let mut problem = JointProblem {
        slots: n_slots,
        devices: Vec::new(),
        groups: tree
            .parent
            .iter()
            .map(|parent| Group {
                parent: *parent,
                limit_kwh: Vec::new(),
            })
            .collect(),
    };
    // Per member, its pieces in the flow (device indexes: at once, by the deadline).
    let mut pieces: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
    let mut needs_of = vec![0.0; members.len()];
    let mut reserve_of = vec![0.0; members.len()];
    let mut fixed = vec![false; members.len()];
    for (i, m) in members.iter().enumerate() {
        let Some(plan) = &m.plan else { continue };
        let (asap, target, own) = needs(plan, slots);
        match plan.mode {
            PlanMode::SmartOptimizationOff => {
                fixed[i] = true;
                for g in chain(Some(m.group)) {
                    for (t, e) in own.iter().enumerate() {
                        limit_kwh[g][t] = (limit_kwh[g][t] - e).max(0.0);
                    }
                }
                continue;
            }
            PlanMode::Smart | PlanMode::Boost => {}
            _ => continue,
        }
        needs_of[i] = asap + target;
        let from = plan.pause_until.unwrap_or(slots[0].0);
        let by = plan.deadline.unwrap_or(horizon_end);
        let max = |until: DateTime<Utc>| -> Vec<f64> {
            slots
                .iter()
                .map(|s| overlap_h(*s, from, until) * m.energy_kw)
                .collect()
        };
        // Both kinds of energy share the car's power: a private group holds them to it.
        let group = if asap > 1e-9 && target > 1e-9 {
            problem.groups.push(Group {
                parent: Some(m.group),
                limit_kwh: slot_h.iter().map(|h| h * m.energy_kw).collect(),
            });
            limit_kwh.push(Vec::new());
            problem.groups.len() - 1
        } else {
            m.group
        };
        if asap > 1e-9 {
            pieces[i].push(problem.devices.len());
            problem.devices.push(JointDevice {
                need_kwh: asap,
                urgent_kwh: asap,
                max_kwh: max(horizon_end),
                price: (0..n_slots)
                    .map(|t| ASAP_PRICE + ASAP_STEP * t as f64)
                    .collect(),
                group: Some(group),
            });
        }
        reserve_of[i] = if target > 1e-9 {
            TOP_UP_RESERVE_KWH + TOP_UP_RESERVE_SHARE * target
        } else {
            0.0
        };
        if target > 1e-9 {
            // Among equal prices, earlier first, and the last `ready_margin` before the deadline
            // only when nothing else fits: a car that charges slower than planned has time left
            // to catch up at the next joint plan.
            let margin_from = by - ready_margin;
            pieces[i].push(problem.devices.len());
            problem.devices.push(JointDevice {
                need_kwh: target + reserve_of[i],
                urgent_kwh: 0.0,
                max_kwh: max(by.min(horizon_end)),
                price: m
                    .price
                    .iter()
                    .zip(slots)
                    .enumerate()
                    .map(|(t, (p, s))| {
                        let late = if s.1 > margin_from { MARGIN_PRICE } else { 0.0 };
                        p + late + EARLY_STEP * t as f64
                    })
                    .collect(),
                group: Some(group),
            });
        }
    }
    for (g, group) in problem.groups.iter_mut().enumerate() {
        if group.limit_kwh.is_empty() {
            group.limit_kwh = limit_kwh[g].clone();
        }
    }
    let n_groups = tree.nodes.len();
    let flow_and_pack = |problem: &JointProblem| {
        let flow = plan_jointly(problem).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "joint plan refused its problem; members get no windows");
            voltplan_core::joint::JointPlan {
                kwh: vec![vec![0.0; n_slots]; problem.devices.len()],
                shortfall_kwh: problem.devices.iter().map(|d| d.need_kwh).collect(),
                urgent_shortfall_kwh: problem.devices.iter().map(|d| d.urgent_kwh).collect(),
                cost: 0.0,
            }
        });
        let pack_problem = PackProblem {
            slot_seconds: slot_h.iter().map(|h| h * 3600.0).collect(),
            cell_seconds: CELL_SECONDS,
            devices: members
                .iter()
                .enumerate()
                .map(|(i, m)| PackDevice {
                    group: Some(m.group),
                    power_kw: m.power_kw,
                    // At full power: windows as long as the car needs at its own pace.
                    kwh: (0..n_slots)
                        .map(|t| {
                            let flow_kwh: f64 = pieces[i].iter().map(|&d| flow.kwh[d][t]).sum();
                            flow_kwh * m.power_kw / m.energy_kw
                        })
                        .collect(),
                })
                .collect(),
            // The real limits: lowering them (below) only steers the flow.
            groups: (0..n_groups)
                .map(|g| PackGroup {
                    parent: tree.parent[g],
                    limit_kw: limit_kwh[g]
                        .iter()
                        .zip(&slot_h)
                        .map(|(e, h)| if *h > 0.0 { e / h } else { 0.0 })
                        .collect(),
                })
                .collect(),
        };
        let packed = pack(&pack_problem);
        (flow, pack_problem, packed)
    };
    let (mut flow, mut pack_problem, mut packed) = flow_and_pack(&problem);
    // Where on/off windows could not hold what the flow gave (limits that are not a multiple of
    // the cars' powers), lower the limit by that much and plan once more: the flow moves it to
    // slots where it fits.
    let mut lost = vec![vec![0.0; n_slots]; n_groups];
    for (i, m) in members.iter().enumerate() {
        let pace = m.energy_kw / m.power_kw;
        let missing: Vec<f64> = pack_problem.devices[i]
            .kwh
            .iter()
            .zip(&packed.packed_kwh[i])
            .map(|(wanted, got)| ((wanted - got) * pace).max(0.0))
            .collect();
        for g in chain(Some(m.group)) {
            for (lost, missing) in lost[g].iter_mut().zip(&missing) {
                *lost += missing;
            }
        }
    }
    if lost.iter().flatten().any(|e| *e > 1e-6) {
        for (g, lost) in lost.iter().enumerate() {
            for (limit, lost) in problem.groups[g].limit_kwh.iter_mut().zip(lost) {
                *limit = (*limit - lost).max(0.0);
            }
        }
        (flow, pack_problem, packed) = flow_and_pack(&problem);
    }
    let mut planned_kw = vec![vec![0.0; n_slots]; n_groups];
    // What the members would draw planned alone, the herd the joint plan prevents.
    let mut alone_kw = vec![vec![0.0; n_slots]; n_groups];
    for m in members {
        let Some(plan) = &m.plan else { continue };
        for iv in &plan.intervals {
            for (t, kwh) in per_slot(iv, slots) {
                if slot_h[t] > 0.0 {
                    for g in chain(Some(m.group)) {
                        alone_kw[g][t] += kwh / slot_h[t];
                    }
                }
            }
        }
    }
    let mut unpacked_kwh = 0.0;
    let per_member = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            // Back from full-power units to the car's pace.
            let pace = m.energy_kw / m.power_kw;
            let flow_kwh: f64 = pack_problem.devices[i].kwh.iter().sum::<f64>() * pace;
            let packed_kwh: f64 = packed.packed_kwh[i].iter().sum::<f64>() * pace;
            unpacked_kwh += flow_kwh - packed_kwh;
            for g in chain(Some(m.group)) {
                for (t, e) in packed.packed_kwh[i].iter().enumerate() {
                    if slot_h[t] > 0.0 {
                        planned_kw[g][t] += e / slot_h[t];
                    }
                }
            }
            let mut windows: Vec<PowerWindow> = Vec::new();
            for w in &packed.windows[i] {
                let base = slots[w.slot].0;
                let start = base + Duration::milliseconds((w.start_s * 1000.0) as i64);
                let end = base + Duration::milliseconds((w.end_s * 1000.0) as i64);
                match windows.last_mut() {
                    Some(last) if last.end == start => last.end = end,
                    // The car's pace: its own plan then fills the window it needs.
                    _ => windows.push(PowerWindow {
                        start,
                        end,
                        max_power_w: m.energy_kw * 1000.0,
                    }),
                }
            }
            let shortfall: f64 = pieces[i]
                .iter()
                .map(|&d| flow.shortfall_kwh[d])
                .sum::<f64>()
                - reserve_of[i];
            MemberResult {
                windows,
                planned_kwh: packed_kwh,
                need_kwh: needs_of[i],
                shortfall_kwh: shortfall + (flow_kwh - packed_kwh).max(0.0),
                fixed: fixed[i],
            }
        })
        .collect();
    Joint {
        per_member,
        limit_kw: pack_problem
            .groups
            .iter()
            .map(|g| g.limit_kw.clone())
            .collect(),
        planned_kw,
        alone_kw,
        unpacked_kwh,
    }
}

/// What `GET …/grid-groups/{id}/joint-plan` shows.
fn summary(
    tree: &Tree<'_>,
    members: &[Member<'_>],
    joint: &Joint,
    slots: &[(DateTime<Utc>, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> serde_json::Value {
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let groups: Vec<serde_json::Value> = tree
        .nodes
        .iter()
        .enumerate()
        .map(|(g, node)| {
            let limited = |kw: f64| (kw < UNLIMITED_KWH / 1000.0).then(|| round(kw));
            let mut out = node.json();
            out["slots"] = slots
                .iter()
                .enumerate()
                .map(|(t, s)| {
                    serde_json::json!({
                        "start": s.0,
                        "end": s.1,
                        "limit_kw": limited(joint.limit_kw[g][t]),
                        "planned_kw": round(joint.planned_kw[g][t]),
                        "alone_kw": round(joint.alone_kw[g][t]),
                    })
                })
                .collect();
            out
        })
        .collect();
    let vehicles: Vec<serde_json::Value> = members
        .iter()
        .zip(&joint.per_member)
        .map(|(m, r)| {
            serde_json::json!({
                "electric_vehicle_id": m.member.vehicle.id,
                "sits_in": tree.nodes[m.group].json(),
                "mode": m.plan.as_ref().map(|p| p.mode),
                "fixed_load": r.fixed,
                "need_kwh": round(r.need_kwh),
                "planned_kwh": round(r.planned_kwh),
                "shortfall_kwh": round(r.shortfall_kwh),
                "windows": r.windows,
            })
        })
        .collect();
    serde_json::json!({
        "grid_group_id": tree.root.id,
        "name": tree.root.group.name,
        "planned_at": now,
        "unpacked_kwh": round(joint.unpacked_kwh),
        "groups": groups,
        "electric_vehicles": vehicles,
    })
}
