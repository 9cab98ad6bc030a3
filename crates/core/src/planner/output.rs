//! The plan handed to the worker, the API and the CLI.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::forecast::ForecastBasis;
use super::input::AppliedDefault;

/// Why the car charges in an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Below `charge_target_min`: charged at once regardless of price.
    MinLevel,
    /// Towards `minimum_charge_limit` by the deadline, in the cheapest slots.
    Target,
    /// Beyond the target, in slots priced at or below zero (`is_over_charge_allowed`).
    OverCharge,
    Boost,
    /// Away from home or smart optimisation off: the car charges as it would on its own.
    Uncontrolled,
    /// The target cannot be reached in time: full power now.
    Infeasible,
}

/// Which rule decided the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    NotPluggedIn,
    AwayFromHome,
    SmartOptimizationOff,
    Boost,
    Smart,
}

/// One command: charge at `power_w` (drawn from the grid) over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInterval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub power_w: f64,
    pub reason: Reason,
    pub energy_kwh: f64,
    pub cost_eur: f64,
    /// Expected state of charge at `end`, %.
    pub battery_level_end: f64,
    /// Part of the interval is priced with a forecast, not a published price.
    pub uses_forecast_prices: bool,
}

/// A price the plan was made with that is not published yet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastPrice {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub price_eur_mwh: f64,
    pub basis: ForecastBasis,
}

/// The planner's answer. Every figure and clock time in `explanation` is one of these fields (or
/// a sum, maximum or count over `intervals`), rounded as shown, in the `time_zone`'s local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub mode: PlanMode,
    /// The instant the plan was made for (`now`).
    pub planned_at: DateTime<Utc>,
    /// The price zone's IANA time zone: the explanation's clock times are local times there.
    pub time_zone: String,
    pub intervals: Vec<PlanInterval>,
    /// Grid energy, kWh.
    pub energy_kwh: f64,
    pub expected_cost_eur: f64,
    /// Cost of the same energy charged at full power from `now` (charging at once on plug-in).
    pub baseline_cost_eur: f64,
    /// `baseline_cost_eur / energy_kwh × 1000`: the average price of charging at once, €/MWh
    /// (null without energy).
    pub baseline_average_price_eur_mwh: Option<f64>,
    /// Part of the baseline is priced with forecasts.
    pub baseline_uses_forecast_prices: bool,
    pub savings_eur: f64,
    /// `expected_cost_eur / energy_kwh × 1000`, €/MWh (null without energy).
    pub average_price_eur_mwh: Option<f64>,
    pub start_battery_level: f64,
    pub final_battery_level: f64,
    /// `charge_target_min` as applied (capped at `charge_target_max`); smart charging only.
    pub minimum_level: Option<f64>,
    /// The level due by the deadline (`minimum_charge_limit` or the weekday's policy entry).
    pub target_level: Option<f64>,
    pub deadline: Option<DateTime<Utc>>,
    pub battery_level_at_deadline: Option<f64>,
    /// When the goal level (the deadline's target, else the plan's final level) is reached.
    pub ready_by: Option<DateTime<Utc>>,
    /// The end of a pause (`pause_power_until`) that holds this plan's charging back.
    pub pause_until: Option<DateTime<Utc>>,
    /// False when the deadline's target cannot be reached in time.
    pub feasible: bool,
    /// Start/stop commands the plan needs (one per contiguous block).
    pub charging_blocks: usize,
    pub uses_forecast_prices: bool,
    /// The forecast prices the plan was made with (up to the deadline or the plan's end) and how
    /// each was made; re-plan when published prices arrive.
    pub forecast_prices: Vec<ForecastPrice>,
    /// Request fields that were absent and whose default the planner used (`voltplan plan`).
    pub defaults_applied: Vec<AppliedDefault>,
    pub explanation: String,
    /// Which prices the plan was made with; set by the worker (the planner only sees a series).
    /// With `basis: customer` every `*_eur` figure above is in `pricing.currency` on the
    /// customer's price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<PlanPricing>,
    /// The grid group whose shared power limit shaped this plan (issue 15), when the device is in
    /// one: the plan charges only in the windows the group's joint plan left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_limit: Option<SharedLimitNote>,
}

/// A plan's savings against charging at once, as sessions book them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanSavings {
    /// The baseline at the day-ahead price, EUR.
    pub day_ahead_baseline_eur: f64,
    /// Baseline minus the plan, both at the day-ahead price, EUR.
    pub day_ahead_savings_eur: f64,
    /// For a plan made on the customer's price: its savings there (`savings_eur`).
    pub customer_savings: Option<f64>,
}

impl Plan {
    /// The plan's savings at the day-ahead price (from `pricing` when it was made on the
    /// customer's price, else its own figures) and on the customer's price.
    pub fn savings(&self) -> PlanSavings {
        let day_ahead = self
            .pricing
            .as_ref()
            .filter(|p| p.basis == PriceBasis::Customer)
            .and_then(|p| p.wholesale_baseline_cost_eur.zip(p.wholesale_cost_eur));
        match day_ahead {
            Some((baseline, cost)) => PlanSavings {
                day_ahead_baseline_eur: baseline,
                day_ahead_savings_eur: baseline - cost,
                customer_savings: Some(self.savings_eur),
            },
            None => PlanSavings {
                day_ahead_baseline_eur: self.baseline_cost_eur,
                day_ahead_savings_eur: self.savings_eur,
                customer_savings: None,
            },
        }
    }
}

/// The price series a plan optimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceBasis {
    /// The price zone's day-ahead price.
    Wholesale,
    /// The customer's price per slot under their energy contract (`voltplan_core::tariff`).
    Customer,
}

/// What a plan's prices were and, on the customer's price, what the same plan costs wholesale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanPricing {
    pub basis: PriceBasis,
    /// The contract that priced the plan (`basis: customer`), or that could not (see `note`).
    pub energy_contract_id: Option<uuid::Uuid>,
    /// Currency of the plan's costs.
    pub currency: String,
    /// The plan's energy priced at the day-ahead price, EUR (`basis: customer` only).
    pub wholesale_cost_eur: Option<f64>,
    /// The baseline (charging at once) at the day-ahead price, EUR (`basis: customer` only).
    pub wholesale_baseline_cost_eur: Option<f64>,
    /// Why a contract the device has did not price the plan.
    pub note: Option<String>,
}

/// Contiguous runs of intervals: each needs one start (and one stop) command.
pub(crate) fn count_blocks(intervals: &[PlanInterval]) -> usize {
    intervals
        .iter()
        .enumerate()
        .filter(|(k, iv)| *k == 0 || intervals[k - 1].end != iv.start)
        .count()
}

/// What a shared power limit did to a plan (see [`super::SharedLimit`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedLimitNote {
    /// The outermost grid group the device shares limits in.
    pub group_id: String,
    pub group_name: String,
    /// Energy the limits leave undelivered by the deadline, kWh (0 when the target is met).
    pub shortfall_kwh: f64,
    /// Where the group lets the device charge: the steering may top a car up inside them.
    #[serde(default)]
    pub windows: Vec<super::PowerWindow>,
}

impl SharedLimitNote {
    /// The window the device may charge in at `now`, if any.
    pub fn window_at(&self, now: DateTime<Utc>) -> Option<&super::PowerWindow> {
        self.windows.iter().find(|w| w.start <= now && now < w.end)
    }
}
