//! The smart-charging planner: when to charge one vehicle, at what power, for what reason.
//!
//! Pure: `now` and the prices are inputs, nothing is read from the clock or the network.
//! Rules, in priority order: not plugged in → no plan; away from home or smart optimisation off →
//! charge now as the car would on its own; pause → nothing until it ends; boost → full power until
//! full; below `charge_target_min` → full power until reached; then `minimum_charge_limit` by the
//! deadline at minimum expected cost (published prices before forecasts); with over-charge allowed,
//! beyond the target up to `charge_target_max` in published slots priced at or below zero; a target
//! that cannot be met in time → full power now, plan marked infeasible. See `docs/planner.md`.

mod deadline;
mod explain;
mod forecast;
mod input;
mod optimise;
mod output;
mod request;

pub use deadline::{Deadline, next_deadline};
pub use forecast::ForecastBasis;
pub use input::{
    AppliedDefault, DEFAULT_EFFICIENCY, DEFAULT_MIN_BLOCK_MINUTES, DEFAULT_MIN_CHARGE_POWER_W,
    DeadlineRule, PlanError, PlanInput, PlannerSettings, PowerWindow, SharedLimit, VehicleSnapshot,
    deadline_rule, is_at_home, max_charge_power_w, settings_deadline_rule,
};
pub use output::{
    ForecastPrice, Plan, PlanInterval, PlanMode, PlanPricing, PlanSavings, PriceBasis, Reason,
    SharedLimitNote,
};
pub use request::{
    DEFAULT_CHARGE_TARGET_MIN, DEFAULT_GEO_FENCE_M, DEFAULT_MAX_CHARGE_POWER_W,
    DEFAULT_MINIMUM_CHARGE_LIMIT, PlanRequest,
};

use chrono::{DateTime, Duration, Utc};

use forecast::{Segment, build_timeline, hours_between, validated_prices};
use optimise::{Allocation, Chunk, EPS_KWH, layout};

/// The furthest the planner looks ahead; a weekly deadline is at most 7 days away.
const MAX_HORIZON_DAYS: i64 = 8;

impl PlanInput {
    /// Shorthand for [`plan`] with this input.
    pub fn plan(&self, now: DateTime<Utc>, prices: &[PriceSlot]) -> Result<Plan, PlanError> {
        plan(now, &self.vehicle, &self.settings, prices)
    }

    /// Like [`PlanInput::plan`], but aims to reach the target `ready_margin` before the deadline
    /// whenever that fits: a real car charges a little short of the plan (command latency, a
    /// battery that takes less than modelled), and the margin leaves time to top it up before
    /// the deadline. When the target only fits by using the margin, the margin is used; the
    /// plan's `deadline` and feasibility stay those of the real deadline.
    pub fn plan_with_margin(
        &self,
        now: DateTime<Utc>,
        prices: &[PriceSlot],
        ready_margin: Duration,
    ) -> Result<Plan, PlanError> {
        self.plan_within(now, prices, ready_margin, None)
    }

    /// Like [`PlanInput::plan_with_margin`], within the windows a shared power limit leaves the
    /// device (none: unlimited).
    pub fn plan_within(
        &self,
        now: DateTime<Utc>,
        prices: &[PriceSlot],
        ready_margin: Duration,
        shared: Option<&SharedLimit>,
    ) -> Result<Plan, PlanError> {
        self.validate()?;
        let prices = validated_prices(prices)?;
        let mut planner = Planner::new(now, &self.vehicle, &self.settings, &prices);
        planner.ready_margin = ready_margin.max(Duration::zero());
        planner.shared = shared;
        planner.run()
    }
}

use crate::price::PriceSlot;

/// Plans charging from `now` on, with the prices known at `now` (past prices help the forecast).
pub fn plan(
    now: DateTime<Utc>,
    vehicle: &VehicleSnapshot,
    settings: &PlannerSettings,
    prices: &[PriceSlot],
) -> Result<Plan, PlanError> {
    PlanInput {
        vehicle: vehicle.clone(),
        settings: settings.clone(),
    }
    .validate()?;
    let prices = validated_prices(prices)?;
    Planner::new(now, vehicle, settings, &prices).run()
}

struct Planner<'a> {
    now: DateTime<Utc>,
    vehicle: &'a VehicleSnapshot,
    settings: &'a PlannerSettings,
    prices: &'a [PriceSlot],
    /// Battery percentage points gained per grid kWh.
    pct_per_grid_kwh: f64,
    cap_pct: f64,
    /// Aim to be ready this long before the deadline when it fits (see `plan_with_margin`).
    ready_margin: Duration,
    /// Where a shared power limit lets the device charge (see `plan_within`).
    shared: Option<&'a SharedLimit>,
}

impl<'a> Planner<'a> {
    fn new(
        now: DateTime<Utc>,
        vehicle: &'a VehicleSnapshot,
        settings: &'a PlannerSettings,
        prices: &'a [PriceSlot],
    ) -> Self {
        Planner {
            now,
            vehicle,
            settings,
            prices,
            pct_per_grid_kwh: settings.efficiency / vehicle.battery_capacity_kwh * 100.0,
            cap_pct: vehicle.charge_target_max_pct.unwrap_or(100.0),
            ready_margin: Duration::zero(),
            shared: None,
        }
    }

    /// Grid energy to go from `from` % to `to` % (zero if already there).
    fn grid_kwh(&self, from: f64, to: f64) -> f64 {
        (to - from).max(0.0) / self.pct_per_grid_kwh
    }

    fn run(&self) -> Result<Plan, PlanError> {
        let level = self.vehicle.battery_level_pct;
        let tz = self.settings.price_zone.time_zone();
        let mode = if !self.vehicle.is_plugged_in {
            PlanMode::NotPluggedIn
        } else if !self.vehicle.is_at_home {
            PlanMode::AwayFromHome
        } else if !self.settings.is_smart_optimization_active {
            PlanMode::SmartOptimizationOff
        } else if self.settings.boost {
            PlanMode::Boost
        } else {
            PlanMode::Smart
        };
        let deadline = match mode {
            PlanMode::Smart => next_deadline(&self.settings.deadline, self.now, tz),
            _ => None,
        };
        if mode == PlanMode::NotPluggedIn {
            return Ok(self.finish(mode, &[], &[], None, level));
        }
        // The car on its own ignores Voltplan's pause; boost and smart charging respect it.
        let charge_start = match mode {
            PlanMode::AwayFromHome | PlanMode::SmartOptimizationOff => self.now,
            _ => self
                .settings
                .pause_power_until
                .map_or(self.now, |p| p.max(self.now)),
        };
        let power_kw = self.vehicle.max_charge_power_w / 1000.0;
        let full_charge_h = self.grid_kwh(level, self.cap_pct) / power_kw;
        let mut until = charge_start
            + Duration::seconds((full_charge_h * 3600.0).ceil() as i64)
            + Duration::hours(1);
        if let Some(d) = deadline {
            until = until.max(d.at);
        }
        if self.settings.is_over_charge_allowed
            && let Some(last) = self.prices.last()
        {
            until = until.max(last.end);
        }
        let until = until.min(self.now + Duration::days(MAX_HORIZON_DAYS));
        let mut cuts = vec![charge_start];
        cuts.extend(deadline.map(|d| d.at));
        if self.ready_margin > Duration::zero() {
            cuts.extend(
                deadline
                    .map(|d| d.at - self.ready_margin)
                    .filter(|t| *t > self.now),
            );
        }
        // The limit binds what Voltplan steers; a car charging on its own does not ask.
        let shared = self
            .shared
            .filter(|_| matches!(mode, PlanMode::Smart | PlanMode::Boost));
        if let Some(shared) = shared {
            cuts.extend(shared.windows.iter().flat_map(|w| [w.start, w.end]));
            cuts.retain(|t| *t > self.now && *t < until);
            cuts.push(charge_start);
        }
        let segments = build_timeline(self.now, until, self.prices, tz, &cuts);
        let usable: Vec<usize> = (0..segments.len())
            .filter(|&i| segments[i].start >= charge_start)
            .collect();
        let mut alloc = Allocation::new(&segments, power_kw);
        if let Some(shared) = shared {
            for (i, s) in segments.iter().enumerate() {
                alloc.cap(i, shared.energy_kwh(s.start, s.end, power_kw));
            }
        }

        match mode {
            PlanMode::AwayFromHome | PlanMode::SmartOptimizationOff => {
                alloc.force(
                    &usable,
                    self.grid_kwh(level, self.cap_pct),
                    Reason::Uncontrolled,
                );
            }
            PlanMode::Boost => {
                alloc.force(&usable, self.grid_kwh(level, self.cap_pct), Reason::Boost);
            }
            _ => self.allocate_smart(&segments, &usable, deadline, &mut alloc),
        }

        let min_block = Duration::minutes(i64::from(self.settings.min_block_minutes));
        let chunks = layout(
            &segments,
            &alloc,
            min_block,
            self.settings.min_charge_power_w,
        );
        Ok(self.finish(mode, &segments, &chunks, deadline, level))
    }

    fn allocate_smart(
        &self,
        segments: &[Segment],
        usable: &[usize],
        deadline: Option<Deadline>,
        alloc: &mut Allocation,
    ) {
        let level = self.vehicle.battery_level_pct;
        let min_pct = self.settings.charge_target_min_pct.min(self.cap_pct);
        let mut placed = alloc.force(usable, self.grid_kwh(level, min_pct), Reason::MinLevel);
        let mut infeasible = false;
        if let Some(d) = deadline {
            let target_pct = d.target_pct.min(self.cap_pct);
            let need = self.grid_kwh(level + placed * self.pct_per_grid_kwh, target_pct);
            let before: Vec<usize> = usable
                .iter()
                .copied()
                .filter(|&i| segments[i].end <= d.at)
                .collect();
            let room: f64 = before.iter().map(|&i| alloc.remaining(i)).sum();
            let ready_at = d.at - self.ready_margin;
            let early: Vec<usize> = before
                .iter()
                .copied()
                .filter(|&i| segments[i].end <= ready_at)
                .collect();
            let early_room: f64 = early.iter().map(|&i| alloc.remaining(i)).sum();
            if need > room + EPS_KWH {
                infeasible = true;
                placed += alloc.force(usable, need, Reason::Infeasible);
            } else if self.ready_margin > Duration::zero() && need <= early_room + EPS_KWH {
                placed +=
                    alloc.fill_cheapest(segments, &early, need.min(early_room), Reason::Target);
            } else {
                placed += alloc.fill_cheapest(segments, &before, need.min(room), Reason::Target);
            }
        }
        if self.settings.is_over_charge_allowed && !infeasible {
            let headroom = self.grid_kwh(level + placed * self.pct_per_grid_kwh, self.cap_pct);
            let free_energy: Vec<usize> = usable
                .iter()
                .copied()
                .filter(|&i| !segments[i].is_forecast() && segments[i].price_eur_mwh <= 0.0)
                .collect();
            alloc.fill_cheapest(segments, &free_energy, headroom, Reason::OverCharge);
        }
    }

    fn finish(
        &self,
        mode: PlanMode,
        segments: &[Segment],
        chunks: &[Chunk],
        deadline: Option<Deadline>,
        start_level: f64,
    ) -> Plan {
        let intervals = optimise::intervals_from_chunks(chunks, start_level, self.pct_per_grid_kwh);
        let energy_kwh: f64 = chunks.iter().map(|c| c.energy_kwh).sum();
        let expected_cost_eur: f64 = chunks
            .iter()
            .map(|c| c.energy_kwh * c.price_eur_mwh / 1000.0)
            .sum();
        let (baseline_cost_eur, baseline_uses_forecast_prices) =
            self.baseline_cost(segments, energy_kwh);
        let final_battery_level = start_level + energy_kwh * self.pct_per_grid_kwh;
        let target_level = deadline.map(|d| d.target_pct.min(self.cap_pct));
        let battery_level_at_deadline = deadline.map(|d| {
            start_level
                + chunks
                    .iter()
                    .filter(|c| c.end <= d.at)
                    .map(|c| c.energy_kwh)
                    .sum::<f64>()
                    * self.pct_per_grid_kwh
        });
        let feasible = match (target_level, battery_level_at_deadline) {
            (Some(target), Some(at_deadline)) => at_deadline >= target - 1e-6,
            _ => true,
        };
        let minimum_level = (mode == PlanMode::Smart)
            .then(|| self.settings.charge_target_min_pct.min(self.cap_pct));
        let goal = match (mode, target_level, minimum_level) {
            (PlanMode::Smart, Some(t), _) => t,
            (PlanMode::Smart, None, Some(min)) => min,
            _ => final_battery_level,
        };
        let ready_by = self.when_level_reached(chunks, start_level, goal);
        // The car on its own ignores Voltplan's pause (see `run`).
        let pause_until = match mode {
            PlanMode::Boost | PlanMode::Smart => {
                self.settings.pause_power_until.filter(|p| *p > self.now)
            }
            _ => None,
        };
        let horizon_end = [deadline.map(|d| d.at), chunks.last().map(|c| c.end)]
            .into_iter()
            .flatten()
            .max();
        let forecast_prices: Vec<ForecastPrice> = segments
            .iter()
            .filter(|s| horizon_end.is_some_and(|h| s.start < h))
            .filter_map(|s| {
                Some(ForecastPrice {
                    start: s.start,
                    end: s.end,
                    price_eur_mwh: s.price_eur_mwh,
                    basis: s.basis?,
                })
            })
            .collect();
        let uses_forecast_prices = chunks.iter().any(|c| c.forecast);
        let per_mwh = |eur: f64| (energy_kwh > EPS_KWH).then(|| eur / energy_kwh * 1000.0);
        let mut plan = Plan {
            mode,
            planned_at: self.now,
            time_zone: self.settings.price_zone.time_zone().name().to_owned(),
            charging_blocks: output::count_blocks(&intervals),
            intervals,
            energy_kwh,
            expected_cost_eur,
            baseline_cost_eur,
            baseline_average_price_eur_mwh: per_mwh(baseline_cost_eur),
            baseline_uses_forecast_prices,
            savings_eur: baseline_cost_eur - expected_cost_eur,
            average_price_eur_mwh: per_mwh(expected_cost_eur),
            start_battery_level: start_level,
            final_battery_level,
            minimum_level,
            target_level,
            deadline: deadline.map(|d| d.at),
            battery_level_at_deadline,
            ready_by,
            pause_until,
            feasible,
            uses_forecast_prices,
            forecast_prices,
            defaults_applied: self.settings.defaults.clone(),
            explanation: String::new(),
            pricing: None,
            shared_limit: self
                .shared
                .filter(|_| matches!(mode, PlanMode::Smart | PlanMode::Boost))
                .map(|s| SharedLimitNote {
                    group_id: s.group_id.clone(),
                    group_name: s.group_name.clone(),
                    shortfall_kwh: s.shortfall_kwh,
                    windows: s.windows.clone(),
                }),
        };
        plan.explanation = explain::explain(&plan, self.settings, self.vehicle.max_charge_power_w);
        plan
    }

    /// Charging the same grid energy at full power from `now`, as the car would on plug-in; also
    /// whether any of it falls on a forecast price.
    fn baseline_cost(&self, segments: &[Segment], energy_kwh: f64) -> (f64, bool) {
        let power_kw = self.vehicle.max_charge_power_w / 1000.0;
        let mut left = energy_kwh;
        let mut cost = 0.0;
        let mut forecast = false;
        for s in segments {
            if left <= 0.0 {
                break;
            }
            let take = (s.hours() * power_kw).min(left);
            cost += take * s.price_eur_mwh / 1000.0;
            forecast |= take > EPS_KWH && s.is_forecast();
            left -= take;
        }
        (cost, forecast)
    }

    fn when_level_reached(&self, chunks: &[Chunk], start: f64, goal: f64) -> Option<DateTime<Utc>> {
        if start >= goal - 1e-9 {
            return Some(self.now);
        }
        let mut level = start;
        for c in chunks {
            let gain = c.energy_kwh * self.pct_per_grid_kwh;
            if level + gain >= goal - 1e-9 {
                let share = ((goal - level) / gain).clamp(0.0, 1.0);
                let secs = (hours_between(c.start, c.end) * share * 3600.0).ceil() as i64;
                return Some((c.start + Duration::seconds(secs)).min(c.end));
            }
            level += gain;
        }
        None
    }
}
