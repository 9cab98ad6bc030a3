//! What the planner needs to know about one vehicle and its owner's settings, already normalised
//! (percentages as `f64`, power in W, the deadline rule resolved from the API's fields).

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::vehicle::{BoostState, EvSettings, EvState, WeeklyChargePolicy};
use crate::zone::PriceZone;

/// Charging efficiency used when none is configured: the battery gains 90 % of the grid energy.
pub const DEFAULT_EFFICIENCY: f64 = 0.9;
/// Blocks shorter than this are stretched (at lower power, same energy, same slot) where possible.
pub const DEFAULT_MIN_BLOCK_MINUTES: u32 = 15;
/// The lowest power a car accepts: 6 A on one 230 V phase, the IEC 61851 minimum.
pub const DEFAULT_MIN_CHARGE_POWER_W: f64 = 1380.0;

/// Typed reasons why a request cannot be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("field `{field}`: {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
    #[error("price slot {index} ({start}): {problem}")]
    InvalidPrice {
        index: usize,
        start: DateTime<Utc>,
        problem: String,
    },
}

impl PlanError {
    pub(crate) fn field(field: &'static str, problem: impl Into<String>) -> Self {
        PlanError::InvalidField {
            field,
            problem: problem.into(),
        }
    }
}

/// The vehicle as observed right now.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleSnapshot {
    /// State of charge, 0–100 %.
    pub battery_level_pct: f64,
    pub battery_capacity_kwh: f64,
    pub is_plugged_in: bool,
    /// Within `geo_fence_distance_m` of home (or no coordinates known).
    pub is_at_home: bool,
    /// Grid power the car draws at full speed, W.
    pub max_charge_power_w: f64,
    /// The OEM-detected hard cap (`charge_target_max`), if known.
    pub charge_target_max_pct: Option<f64>,
}

/// When the target level is due.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadlineRule {
    /// No deadline: only the minimum level (and over-charge) apply.
    None,
    /// `minimum_charge_limit` by the next occurrence of `charge_deadline_at`.
    Daily { at: NaiveTime, target_pct: f64 },
    /// The weekday's entry of the weekly charge policy (Monday first); days without entry are
    /// skipped. The weekdays and times are those of `tz`, the policy's own time zone, when it has
    /// one, else of the price zone.
    Weekly {
        days: [Option<(NaiveTime, f64)>; 7],
        tz: Option<Tz>,
    },
}

/// A request field that was absent and whose default went into the planner's input, with that
/// value; named `field` / `value` in JSON after the request field.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "field", content = "value", rename_all = "snake_case")]
pub enum AppliedDefault {
    IsPluggedIn(bool),
    IsSmartOptimizationActive(bool),
    ChargeTargetMin(f64),
    MinimumChargeLimit(f64),
    ChargeDeadlineAt(NaiveTime),
    ExpectedMaxChargePower(f64),
    GeoFenceDistanceM(f64),
    ChargingEfficiency(f64),
    MinBlockMinutes(u32),
    MinChargePowerW(f64),
}

/// The owner's settings that drive the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannerSettings {
    pub price_zone: PriceZone,
    pub is_smart_optimization_active: bool,
    /// Charged to at once, regardless of price (`charge_target_min`).
    pub charge_target_min_pct: f64,
    pub deadline: DeadlineRule,
    pub is_over_charge_allowed: bool,
    pub pause_power_until: Option<DateTime<Utc>>,
    pub boost: bool,
    /// Share of grid energy that ends up in the battery, (0, 1].
    pub efficiency: f64,
    pub min_block_minutes: u32,
    pub min_charge_power_w: f64,
    /// Values that were not given but defaulted (only a `voltplan plan` request knows); the plan
    /// reports them and its explanation names those that shaped it.
    pub defaults: Vec<AppliedDefault>,
    /// The currency of the prices the plan is made on, as the explanation names it: the price
    /// zone's when none (an energy contract's prices may be in another, `voltplan_core::tariff`).
    pub currency: Option<String>,
}

impl PlannerSettings {
    /// Settings with the API defaults (`charge_target_min` 50, `minimum_charge_limit` 100 by 06:00)
    /// and smart optimisation on.
    pub fn new(price_zone: PriceZone) -> Self {
        let six = NaiveTime::from_hms_opt(6, 0, 0).unwrap_or(NaiveTime::MIN);
        PlannerSettings {
            price_zone,
            is_smart_optimization_active: true,
            charge_target_min_pct: 50.0,
            deadline: DeadlineRule::Daily {
                at: six,
                target_pct: 100.0,
            },
            is_over_charge_allowed: false,
            pause_power_until: None,
            boost: false,
            efficiency: DEFAULT_EFFICIENCY,
            min_block_minutes: DEFAULT_MIN_BLOCK_MINUTES,
            min_charge_power_w: DEFAULT_MIN_CHARGE_POWER_W,
            defaults: Vec::new(),
            currency: None,
        }
    }
}

/// The windows a shared power limit leaves one device (issue 15), from its grid group's joint
/// plan: within `windows` it may draw up to each window's power, elsewhere nothing. Applies to
/// the modes Voltplan steers (smart charging and boost); a car charging on its own (away, smart
/// charging off) ignores it, and the joint plan counts its draw as fixed load instead.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SharedLimit {
    pub group_id: String,
    pub group_name: String,
    pub windows: Vec<PowerWindow>,
    /// What the group's limits leave undelivered of this device's need, kWh.
    pub shortfall_kwh: f64,
}

/// `[start, end)` at up to `max_power_w`: the pace the joint plan expects of the device there (a
/// car's measured power while it tapers). The window itself is what keeps the limit: a car steered
/// by start/stop draws whatever it draws while on.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PowerWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub max_power_w: f64,
}

impl SharedLimit {
    /// The most grid energy the windows allow in `[start, end)` at up to `power_kw`, kWh.
    pub fn energy_kwh(&self, start: DateTime<Utc>, end: DateTime<Utc>, power_kw: f64) -> f64 {
        self.windows
            .iter()
            .map(|w| {
                let from = w.start.max(start);
                let to = w.end.min(end);
                if to <= from {
                    return 0.0;
                }
                (to - from).num_milliseconds() as f64 / 3_600_000.0
                    * power_kw.min(w.max_power_w / 1000.0)
            })
            .sum()
    }
}

/// Everything `plan` needs besides `now` and the prices.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    pub vehicle: VehicleSnapshot,
    pub settings: PlannerSettings,
}

impl PlanInput {
    /// Builds the planner's view from what the store keeps about a vehicle.
    ///
    /// `home_coords` are the building's `(latitude, longitude)`; without them (or without the car's
    /// position) the car counts as at home, so optimisation is never silently switched off.
    pub fn from_ev(
        settings: &EvSettings,
        state: &EvState,
        home_coords: Option<(f64, f64)>,
        price_zone: PriceZone,
    ) -> Result<Self, PlanError> {
        let battery_level = state
            .battery_level
            .ok_or_else(|| PlanError::field("battery_level", "unknown"))?;
        // The cloud's capacity wins over what the partner typed in.
        let capacity = state
            .reported_battery_capacity_kwh
            .filter(|c| *c > 0.0)
            .unwrap_or(settings.battery_capacity_kwh);
        let car_coords = state.latitude.zip(state.longitude);
        let vehicle = VehicleSnapshot {
            battery_level_pct: f64::from(battery_level),
            battery_capacity_kwh: capacity,
            is_plugged_in: state.is_plugged_in.unwrap_or(false),
            is_at_home: is_at_home(car_coords, home_coords, settings.geo_fence_distance_m),
            max_charge_power_w: max_charge_power_w(
                settings.expected_max_charge_power,
                state.charge_rate_w,
            ),
            charge_target_max_pct: state.charge_target_max.map(f64::from),
        };
        let deadline = settings_deadline_rule(settings);
        let boost = matches!(
            state.boost_state,
            BoostState::Requested | BoostState::Ongoing
        );
        let input = PlanInput {
            vehicle,
            settings: PlannerSettings {
                price_zone,
                is_smart_optimization_active: settings.is_smart_optimization_active,
                charge_target_min_pct: settings.charge_target_min.map_or(0.0, f64::from),
                deadline,
                is_over_charge_allowed: settings.is_over_charge_allowed.unwrap_or(false),
                pause_power_until: settings.pause_power_until,
                boost,
                ..PlannerSettings::new(price_zone)
            },
        };
        input.validate()?;
        Ok(input)
    }

    /// Rejects values the planner cannot reason about, naming the offending API field.
    pub fn validate(&self) -> Result<(), PlanError> {
        let v = &self.vehicle;
        let s = &self.settings;
        check_pct("battery_level", v.battery_level_pct)?;
        if !(v.battery_capacity_kwh.is_finite() && v.battery_capacity_kwh > 0.0) {
            return Err(PlanError::field(
                "battery_capacity_kwh",
                "must be a positive number",
            ));
        }
        if !(v.max_charge_power_w.is_finite() && v.max_charge_power_w > 0.0) {
            return Err(PlanError::field(
                "expected_max_charge_power",
                "must be positive (W)",
            ));
        }
        if let Some(max) = v.charge_target_max_pct {
            check_pct("charge_target_max", max)?;
        }
        check_pct("charge_target_min", s.charge_target_min_pct)?;
        match &s.deadline {
            DeadlineRule::None => {}
            DeadlineRule::Daily { target_pct, .. } => {
                check_pct("minimum_charge_limit", *target_pct)?
            }
            DeadlineRule::Weekly { days, .. } => {
                for (_, pct) in days.iter().flatten() {
                    check_pct("weekly_charge_policy", *pct)?;
                }
            }
        }
        if !(s.efficiency.is_finite() && s.efficiency > 0.0 && s.efficiency <= 1.0) {
            return Err(PlanError::field("charging_efficiency", "must be in (0, 1]"));
        }
        if !(s.min_charge_power_w.is_finite() && s.min_charge_power_w >= 0.0) {
            return Err(PlanError::field(
                "min_charge_power_w",
                "must be a non-negative number",
            ));
        }
        Ok(())
    }
}

fn check_pct(field: &'static str, value: f64) -> Result<(), PlanError> {
    if value.is_finite() && (0.0..=100.0).contains(&value) {
        Ok(())
    } else {
        Err(PlanError::field(
            field,
            format!("{value} is not a percentage in 0–100"),
        ))
    }
}

/// `expected_max_charge_power`, or the observed rate when the car already charges faster.
pub fn max_charge_power_w(expected_max_charge_power: i32, charge_rate_w: Option<i32>) -> f64 {
    f64::from(expected_max_charge_power.max(charge_rate_w.unwrap_or(0)))
}

/// The deadline rule of an EV's stored settings (see [`deadline_rule`]).
pub fn settings_deadline_rule(settings: &EvSettings) -> DeadlineRule {
    let policy_enabled = settings.is_charge_policy_enabled.unwrap_or(false);
    deadline_rule(
        settings.charge_deadline_at,
        settings.minimum_charge_limit.map(f64::from),
        policy_enabled
            .then_some(settings.weekly_charge_policy.as_ref())
            .flatten(),
    )
}

/// The deadline rule from the API's fields: the weekly policy when it is enabled and present,
/// otherwise `minimum_charge_limit` by `charge_deadline_at`. A policy's `timezone` that is not an
/// IANA name (the API refuses those) falls back to the price zone's.
pub fn deadline_rule(
    charge_deadline_at: Option<NaiveTime>,
    minimum_charge_limit: Option<f64>,
    weekly_policy: Option<&WeeklyChargePolicy>,
) -> DeadlineRule {
    if let Some(policy) = weekly_policy {
        let days = policy.days.clone().map(|day| {
            day.map(|d| {
                (
                    d.charge_deadline,
                    f64::from(d.charge_percentage.clamp(0, 100)),
                )
            })
        });
        let tz = policy
            .timezone
            .as_deref()
            .and_then(|name| name.parse().ok());
        return DeadlineRule::Weekly { days, tz };
    }
    match (charge_deadline_at, minimum_charge_limit) {
        (Some(at), Some(target_pct)) => DeadlineRule::Daily { at, target_pct },
        _ => DeadlineRule::None,
    }
}

/// Great-circle distance test; missing coordinates on either side count as "at home".
pub fn is_at_home(car: Option<(f64, f64)>, home: Option<(f64, f64)>, fence_m: f64) -> bool {
    match (car, home) {
        (Some(car), Some(home)) => haversine_m(car, home) <= fence_m,
        _ => true,
    }
}

fn haversine_m((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geo_fence_uses_distance_and_defaults_to_home() {
        let home = (48.2082, 16.3738);
        // ~55 m north.
        assert!(is_at_home(Some((48.2087, 16.3738)), Some(home), 100.0));
        assert!(!is_at_home(Some((48.2200, 16.3738)), Some(home), 100.0));
        assert!(is_at_home(None, Some(home), 100.0));
        assert!(is_at_home(Some(home), None, 100.0));
    }

    #[test]
    fn observed_charge_rate_wins_when_higher() {
        assert_eq!(max_charge_power_w(3600, Some(7400)), 7400.0);
        assert_eq!(max_charge_power_w(11000, Some(7400)), 11000.0);
        assert_eq!(max_charge_power_w(11000, None), 11000.0);
    }
}
