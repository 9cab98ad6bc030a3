//! The JSON request of `voltplan plan`: the API's EV field names plus `now` and `prices`.
//!
//! Absent fields take the Podero API defaults (`charge_target_min` 50, `minimum_charge_limit` 100,
//! `charge_deadline_at` 06:00, `expected_max_charge_power` 3600, `geo_fence_distance_m` 100), except
//! that a request is for a plugged-in car under smart optimisation unless it says otherwise. An
//! explicit `null` switches a limit off (no minimum level, no deadline).

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::input::{
    DEFAULT_EFFICIENCY, DEFAULT_MIN_BLOCK_MINUTES, DEFAULT_MIN_CHARGE_POWER_W, PlanError,
    PlanInput, PlannerSettings, VehicleSnapshot, deadline_rule, is_at_home,
};
use super::output::Plan;
use crate::price::PriceSlot;
use crate::vehicle::{BoostState, DailyChargeTarget, WeeklyChargePolicy};
use crate::zone::PriceZone;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    pub now: DateTime<Utc>,
    pub price_zone: PriceZone,
    #[serde(default)]
    pub prices: Vec<PriceSlot>,
    pub battery_level: f64,
    #[serde(deserialize_with = "number_or_numeric_string")]
    pub battery_capacity_kwh: f64,
    #[serde(default = "yes")]
    pub is_plugged_in: bool,
    #[serde(default = "yes")]
    pub is_smart_optimization_active: bool,
    #[serde(default = "default_charge_target_min")]
    pub charge_target_min: Option<f64>,
    #[serde(default = "default_minimum_charge_limit")]
    pub minimum_charge_limit: Option<f64>,
    #[serde(default = "default_deadline", with = "hh_mm")]
    pub charge_deadline_at: Option<NaiveTime>,
    #[serde(default)]
    pub is_charge_policy_enabled: Option<bool>,
    #[serde(default)]
    pub weekly_charge_policy: Option<WeeklyPolicyRequest>,
    #[serde(default)]
    pub charge_target_max: Option<f64>,
    #[serde(default = "default_max_power")]
    pub expected_max_charge_power: f64,
    #[serde(default)]
    pub charge_rate_w: Option<f64>,
    #[serde(default)]
    pub is_over_charge_allowed: Option<bool>,
    #[serde(default)]
    pub pause_power_until: Option<DateTime<Utc>>,
    /// Charge now at full power (same as `boost_state` `requested`/`ongoing`).
    #[serde(default)]
    pub boost: bool,
    #[serde(default)]
    pub boost_state: Option<BoostState>,
    /// The car's position.
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
    /// The building's position; without it the car counts as at home.
    #[serde(default)]
    pub home_latitude: Option<f64>,
    #[serde(default)]
    pub home_longitude: Option<f64>,
    #[serde(default = "default_geo_fence")]
    pub geo_fence_distance_m: f64,
    #[serde(default = "default_efficiency")]
    pub charging_efficiency: f64,
    #[serde(default = "default_min_block")]
    pub min_block_minutes: u32,
    #[serde(default = "default_min_power")]
    pub min_charge_power_w: f64,
}

/// The API's `ChargeWeeklyPolicySchema` data: `mon` … `sun`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WeeklyPolicyRequest {
    #[serde(default)]
    pub mon: Option<DayPolicyRequest>,
    #[serde(default)]
    pub tue: Option<DayPolicyRequest>,
    #[serde(default)]
    pub wed: Option<DayPolicyRequest>,
    #[serde(default)]
    pub thu: Option<DayPolicyRequest>,
    #[serde(default)]
    pub fri: Option<DayPolicyRequest>,
    #[serde(default)]
    pub sat: Option<DayPolicyRequest>,
    #[serde(default)]
    pub sun: Option<DayPolicyRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayPolicyRequest {
    pub charge_percentage: i32,
    #[serde(with = "hh_mm_required")]
    pub charge_deadline: NaiveTime,
}

impl WeeklyPolicyRequest {
    fn to_policy(&self) -> WeeklyChargePolicy {
        let day = |d: &Option<DayPolicyRequest>| {
            d.as_ref().map(|d| DailyChargeTarget {
                charge_percentage: d.charge_percentage,
                charge_deadline: d.charge_deadline,
            })
        };
        WeeklyChargePolicy {
            days: [
                day(&self.mon),
                day(&self.tue),
                day(&self.wed),
                day(&self.thu),
                day(&self.fri),
                day(&self.sat),
                day(&self.sun),
            ],
        }
    }
}

impl PlanRequest {
    /// The validated planner input this request describes.
    pub fn to_input(&self) -> Result<PlanInput, PlanError> {
        let car = self.latitude.zip(self.longitude);
        let home = self.home_latitude.zip(self.home_longitude);
        let max_power = self
            .expected_max_charge_power
            .max(self.charge_rate_w.unwrap_or(0.0));
        let policy = self
            .weekly_charge_policy
            .as_ref()
            .map(WeeklyPolicyRequest::to_policy);
        let policy_enabled = self.is_charge_policy_enabled.unwrap_or(false);
        let boost = self.boost
            || matches!(
                self.boost_state,
                Some(BoostState::Requested | BoostState::Ongoing)
            );
        let input = PlanInput {
            vehicle: VehicleSnapshot {
                battery_level_pct: self.battery_level,
                battery_capacity_kwh: self.battery_capacity_kwh,
                is_plugged_in: self.is_plugged_in,
                is_at_home: is_at_home(car, home, self.geo_fence_distance_m),
                max_charge_power_w: max_power,
                charge_target_max_pct: self.charge_target_max,
            },
            settings: PlannerSettings {
                price_zone: self.price_zone,
                is_smart_optimization_active: self.is_smart_optimization_active,
                charge_target_min_pct: self.charge_target_min.unwrap_or(0.0),
                deadline: deadline_rule(
                    self.charge_deadline_at,
                    self.minimum_charge_limit,
                    policy.as_ref().filter(|_| policy_enabled),
                ),
                is_over_charge_allowed: self.is_over_charge_allowed.unwrap_or(false),
                pause_power_until: self.pause_power_until,
                boost,
                efficiency: self.charging_efficiency,
                min_block_minutes: self.min_block_minutes,
                min_charge_power_w: self.min_charge_power_w,
            },
        };
        input.validate()?;
        Ok(input)
    }

    /// Plans this request.
    pub fn plan(&self) -> Result<Plan, PlanError> {
        self.to_input()?.plan(self.now, &self.prices)
    }
}

fn yes() -> bool {
    true
}
fn default_charge_target_min() -> Option<f64> {
    Some(50.0)
}
fn default_minimum_charge_limit() -> Option<f64> {
    Some(100.0)
}
fn default_deadline() -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(6, 0, 0)
}
fn default_max_power() -> f64 {
    3600.0
}
fn default_geo_fence() -> f64 {
    100.0
}
fn default_efficiency() -> f64 {
    DEFAULT_EFFICIENCY
}
fn default_min_block() -> u32 {
    DEFAULT_MIN_BLOCK_MINUTES
}
fn default_min_power() -> f64 {
    DEFAULT_MIN_CHARGE_POWER_W
}

/// Capacities arrive as `79.5` from some clouds and `"79.5"` from others.
fn number_or_numeric_string<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrString {
        Number(f64),
        String(String),
    }
    match NumberOrString::deserialize(d)? {
        NumberOrString::Number(n) => Ok(n),
        NumberOrString::String(s) => s.trim().parse().map_err(|_| {
            serde::de::Error::custom(format!("battery_capacity_kwh: {s:?} is not a number"))
        }),
    }
}

fn parse_hh_mm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

/// `"HH:MM"` or `"HH:MM:SS"`; `null` allowed.
mod hh_mm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<NaiveTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.format("%H:%M:%S").to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                super::parse_hh_mm(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "charge_deadline_at: {s:?} is not HH:MM or HH:MM:SS"
                    ))
                })
            })
            .transpose()
    }
}

mod hh_mm_required {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M:%S").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_hh_mm(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("charge_deadline: {s:?} is not HH:MM or HH:MM:SS"))
        })
    }
}
