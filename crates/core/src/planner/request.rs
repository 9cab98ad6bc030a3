//! The JSON request of `voltplan plan`: the API's EV field names plus `now` and `prices`.
//!
//! Absent fields take the Podero API defaults (`charge_target_min` 50, `minimum_charge_limit` 100,
//! `charge_deadline_at` 06:00, `expected_max_charge_power` 3600, `geo_fence_distance_m` 100), except
//! that a request is for a plugged-in car under smart optimisation unless it says otherwise. An
//! explicit `null` switches a limit off (no minimum level, no deadline). Every default taken is
//! recorded, so the plan can say which values it assumed (`defaults_applied`, the explanation).
//! `docs/planner.md` lists every field.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::input::{
    AppliedDefault, DEFAULT_EFFICIENCY, DEFAULT_MIN_BLOCK_MINUTES, DEFAULT_MIN_CHARGE_POWER_W,
    DeadlineRule, PlanError, PlanInput, PlannerSettings, VehicleSnapshot, deadline_rule,
    is_at_home,
};
use super::output::Plan;
use crate::price::PriceSlot;
use crate::vehicle::{BoostState, DailyChargeTarget, WeeklyChargePolicy, canonical_time_zone};
use crate::zone::PriceZone;

/// A `voltplan plan` request. Read through `RawPlanRequest`, which tells absent fields from given
/// ones: every default taken is listed in `defaults` and reported by the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawPlanRequest")]
pub struct PlanRequest {
    pub now: DateTime<Utc>,
    pub price_zone: PriceZone,
    pub prices: Vec<PriceSlot>,
    pub battery_level: f64,
    pub battery_capacity_kwh: f64,
    pub is_plugged_in: bool,
    pub is_smart_optimization_active: bool,
    pub charge_target_min: Option<f64>,
    pub minimum_charge_limit: Option<f64>,
    #[serde(with = "hh_mm")]
    pub charge_deadline_at: Option<NaiveTime>,
    pub is_charge_policy_enabled: Option<bool>,
    pub weekly_charge_policy: Option<WeeklyPolicyRequest>,
    pub charge_target_max: Option<f64>,
    pub expected_max_charge_power: f64,
    pub charge_rate_w: Option<f64>,
    pub is_over_charge_allowed: Option<bool>,
    pub pause_power_until: Option<DateTime<Utc>>,
    /// Charge now at full power (same as `boost_state` `requested`/`ongoing`).
    pub boost: bool,
    pub boost_state: Option<BoostState>,
    /// The car's position.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// The building's position; without it the car counts as at home.
    pub home_latitude: Option<f64>,
    pub home_longitude: Option<f64>,
    pub geo_fence_distance_m: f64,
    pub charging_efficiency: f64,
    pub min_block_minutes: u32,
    pub min_charge_power_w: f64,
    /// The fields that were absent and took their default, in field order (not serialised: a
    /// serialised request states every value).
    #[serde(skip_serializing)]
    pub defaults: Vec<AppliedDefault>,
}

/// The request as written: `None` = absent (default applies); for the fields where `null` means
/// "off", `Some(None)` = an explicit `null`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct RawPlanRequest {
    now: DateTime<Utc>,
    price_zone: PriceZone,
    #[serde(default)]
    prices: Vec<PriceSlot>,
    battery_level: f64,
    #[serde(deserialize_with = "number_or_numeric_string")]
    battery_capacity_kwh: f64,
    #[serde(default, deserialize_with = "given")]
    is_plugged_in: Option<bool>,
    #[serde(default, deserialize_with = "given")]
    is_smart_optimization_active: Option<bool>,
    #[serde(default, deserialize_with = "given_or_null")]
    charge_target_min: Option<Option<f64>>,
    #[serde(default, deserialize_with = "given_or_null")]
    minimum_charge_limit: Option<Option<f64>>,
    #[serde(default, deserialize_with = "deadline_given_or_null")]
    charge_deadline_at: Option<Option<NaiveTime>>,
    #[serde(default)]
    is_charge_policy_enabled: Option<bool>,
    #[serde(default)]
    weekly_charge_policy: Option<WeeklyPolicyRequest>,
    #[serde(default)]
    charge_target_max: Option<f64>,
    #[serde(default, deserialize_with = "given")]
    expected_max_charge_power: Option<f64>,
    #[serde(default)]
    charge_rate_w: Option<f64>,
    #[serde(default)]
    is_over_charge_allowed: Option<bool>,
    #[serde(default)]
    pause_power_until: Option<DateTime<Utc>>,
    #[serde(default)]
    boost: bool,
    #[serde(default)]
    boost_state: Option<BoostState>,
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    home_latitude: Option<f64>,
    #[serde(default)]
    home_longitude: Option<f64>,
    #[serde(default, deserialize_with = "given")]
    geo_fence_distance_m: Option<f64>,
    #[serde(default, deserialize_with = "given")]
    charging_efficiency: Option<f64>,
    #[serde(default, deserialize_with = "given")]
    min_block_minutes: Option<u32>,
    #[serde(default, deserialize_with = "given")]
    min_charge_power_w: Option<f64>,
}

impl From<RawPlanRequest> for PlanRequest {
    fn from(raw: RawPlanRequest) -> Self {
        let mut defaults = Vec::new();
        let d = &mut defaults;
        let is_plugged_in = or_default(raw.is_plugged_in, true, d, AppliedDefault::IsPluggedIn);
        let is_smart_optimization_active = or_default(
            raw.is_smart_optimization_active,
            true,
            d,
            AppliedDefault::IsSmartOptimizationActive,
        );
        let charge_target_min = or_default(
            raw.charge_target_min,
            Some(DEFAULT_CHARGE_TARGET_MIN),
            d,
            |_| AppliedDefault::ChargeTargetMin(DEFAULT_CHARGE_TARGET_MIN),
        );
        let minimum_charge_limit = or_default(
            raw.minimum_charge_limit,
            Some(DEFAULT_MINIMUM_CHARGE_LIMIT),
            d,
            |_| AppliedDefault::MinimumChargeLimit(DEFAULT_MINIMUM_CHARGE_LIMIT),
        );
        let charge_deadline_at =
            or_default(raw.charge_deadline_at, Some(default_deadline()), d, |_| {
                AppliedDefault::ChargeDeadlineAt(default_deadline())
            });
        let expected_max_charge_power = or_default(
            raw.expected_max_charge_power,
            DEFAULT_MAX_CHARGE_POWER_W,
            d,
            AppliedDefault::ExpectedMaxChargePower,
        );
        let geo_fence_distance_m = or_default(
            raw.geo_fence_distance_m,
            DEFAULT_GEO_FENCE_M,
            d,
            AppliedDefault::GeoFenceDistanceM,
        );
        let charging_efficiency = or_default(
            raw.charging_efficiency,
            DEFAULT_EFFICIENCY,
            d,
            AppliedDefault::ChargingEfficiency,
        );
        let min_block_minutes = or_default(
            raw.min_block_minutes,
            DEFAULT_MIN_BLOCK_MINUTES,
            d,
            AppliedDefault::MinBlockMinutes,
        );
        let min_charge_power_w = or_default(
            raw.min_charge_power_w,
            DEFAULT_MIN_CHARGE_POWER_W,
            d,
            AppliedDefault::MinChargePowerW,
        );
        PlanRequest {
            now: raw.now,
            price_zone: raw.price_zone,
            prices: raw.prices,
            battery_level: raw.battery_level,
            battery_capacity_kwh: raw.battery_capacity_kwh,
            is_plugged_in,
            is_smart_optimization_active,
            charge_target_min,
            minimum_charge_limit,
            charge_deadline_at,
            is_charge_policy_enabled: raw.is_charge_policy_enabled,
            weekly_charge_policy: raw.weekly_charge_policy,
            charge_target_max: raw.charge_target_max,
            expected_max_charge_power,
            charge_rate_w: raw.charge_rate_w,
            is_over_charge_allowed: raw.is_over_charge_allowed,
            pause_power_until: raw.pause_power_until,
            boost: raw.boost,
            boost_state: raw.boost_state,
            latitude: raw.latitude,
            longitude: raw.longitude,
            home_latitude: raw.home_latitude,
            home_longitude: raw.home_longitude,
            geo_fence_distance_m,
            charging_efficiency,
            min_block_minutes,
            min_charge_power_w,
            defaults,
        }
    }
}

/// The API's `ChargeWeeklyPolicySchema` data: `mon` … `sun`, and the `timezone` of their
/// wall-clock times (an IANA name; absent: the price zone's).
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "iana_time_zone"
    )]
    pub timezone: Option<String>,
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
            timezone: self.timezone.clone(),
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
        let deadline = deadline_rule(
            self.charge_deadline_at,
            self.minimum_charge_limit,
            policy.as_ref().filter(|_| policy_enabled),
        );
        // Report only the defaults that went into the planner's input: the fence needs both
        // positions, and the daily deadline and limit give way to an enabled weekly policy.
        let daily = matches!(deadline, DeadlineRule::Daily { .. });
        let defaults = self
            .defaults
            .iter()
            .copied()
            .filter(|d| match d {
                AppliedDefault::GeoFenceDistanceM(_) => car.is_some() && home.is_some(),
                AppliedDefault::MinimumChargeLimit(_) | AppliedDefault::ChargeDeadlineAt(_) => {
                    daily
                }
                _ => true,
            })
            .collect();
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
                deadline,
                is_over_charge_allowed: self.is_over_charge_allowed.unwrap_or(false),
                pause_power_until: self.pause_power_until,
                boost,
                efficiency: self.charging_efficiency,
                min_block_minutes: self.min_block_minutes,
                min_charge_power_w: self.min_charge_power_w,
                defaults,
                currency: None,
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

/// Podero's API default for `charge_target_min`, %.
pub const DEFAULT_CHARGE_TARGET_MIN: f64 = 50.0;
/// Podero's API default for `minimum_charge_limit`, %.
pub const DEFAULT_MINIMUM_CHARGE_LIMIT: f64 = 100.0;
/// Podero's API default for `expected_max_charge_power`, W.
pub const DEFAULT_MAX_CHARGE_POWER_W: f64 = 3600.0;
/// Podero's API default for `geo_fence_distance_m`.
pub const DEFAULT_GEO_FENCE_M: f64 = 100.0;

/// Podero's API default for `charge_deadline_at`: 06:00.
fn default_deadline() -> NaiveTime {
    NaiveTime::from_hms_opt(6, 0, 0).unwrap_or(NaiveTime::MIN)
}

/// `given`, or `default` noted in `defaults`.
fn or_default<T: Copy>(
    given: Option<T>,
    default: T,
    defaults: &mut Vec<AppliedDefault>,
    applied: impl FnOnce(T) -> AppliedDefault,
) -> T {
    given.unwrap_or_else(|| {
        defaults.push(applied(default));
        default
    })
}

/// A field that, when present, must hold a value (`null` is refused as before).
fn given<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A field whose explicit `null` means "off": present → `Some(value or None)`.
fn given_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn deadline_given_or_null<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<NaiveTime>>, D::Error> {
    hh_mm::deserialize(d).map(Some)
}

/// A time zone's IANA name (`Europe/London`), kept as its canonical spelling; `null` allowed.
fn iana_time_zone<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|name| {
            canonical_time_zone(&name).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "weekly_charge_policy.timezone: {name:?} is not an IANA time zone"
                ))
            })
        })
        .transpose()
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
