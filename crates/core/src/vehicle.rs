//! An electric vehicle as Voltplan keeps it: the settings a partner or driver writes, and the state
//! the worker observes. Field names follow the Podero Partner API v2.0.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Health of one of the three status dimensions (`connection_status`, `monitoring_status`,
/// `steering_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusLevel {
    Ok,
    Warning,
    Error,
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoostState {
    Available,
    Requested,
    #[default]
    Unavailable,
    Ongoing,
}

/// What the partner said the vehicle is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeviceModel {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
    pub cloud_service: Option<Uuid>,
    /// The vehicle identification number, when the car's cloud shared it at onboarding (not
    /// written by partners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vin: Option<String>,
}

/// One weekday's entry of the weekly charge policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyChargeTarget {
    pub charge_percentage: i32,
    pub charge_deadline: NaiveTime,
}

/// Weekly charge policy, Monday first; used when `is_charge_policy_enabled`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WeeklyChargePolicy {
    pub days: [Option<DailyChargeTarget>; 7],
    /// The IANA time zone of the deadlines' wall-clock times (`Europe/London`); `None`: the
    /// vehicle's price zone's (which then follows a change of the price zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// The canonical spelling of an IANA time zone name (`Europe/London`), or `None` when `name` is
/// not one: what a weekly policy's `timezone` may hold.
pub fn canonical_time_zone(name: &str) -> Option<String> {
    name.parse::<chrono_tz::Tz>()
        .ok()
        .map(|tz| tz.name().to_owned())
}

/// Settings a partner (or the driver through the partner) controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvSettings {
    pub is_smart_optimization_active: bool,
    pub pause_power_until: Option<DateTime<Utc>>,
    pub external_device_id: Option<String>,
    pub comment: Option<String>,
    pub charge_target_min: Option<i32>,
    pub minimum_charge_limit: Option<i32>,
    pub charge_deadline_at: Option<NaiveTime>,
    pub is_charge_policy_enabled: Option<bool>,
    /// When a charge-policy field last changed (set by the API).
    pub charge_policy_last_updated_at: Option<DateTime<Utc>>,
    pub weekly_charge_policy: Option<WeeklyChargePolicy>,
    pub is_over_charge_allowed: Option<bool>,
    pub expected_max_charge_power: i32,
    pub geo_fence_distance_m: f64,
    pub is_trading_enabled: bool,
    pub boost_for_next_session: bool,
    /// A boost asked for through the API and not yet taken up by the worker. Kept with the
    /// settings (written by the API) rather than the state (written by the worker) so neither
    /// writer overwrites the other.
    pub boost_requested_at: Option<DateTime<Utc>>,
    /// Capacity the partner entered, used while the cloud reports none.
    pub battery_capacity_kwh: f64,
    pub device_model: DeviceModel,
}

impl Default for EvSettings {
    fn default() -> Self {
        Self {
            is_smart_optimization_active: false,
            pause_power_until: None,
            external_device_id: Some(String::new()),
            comment: None,
            charge_target_min: Some(50),
            minimum_charge_limit: Some(100),
            charge_deadline_at: NaiveTime::from_hms_opt(6, 0, 0),
            is_charge_policy_enabled: Some(false),
            charge_policy_last_updated_at: None,
            weekly_charge_policy: None,
            is_over_charge_allowed: Some(false),
            expected_max_charge_power: 3600,
            geo_fence_distance_m: 100.0,
            is_trading_enabled: false,
            boost_for_next_session: false,
            boost_requested_at: None,
            battery_capacity_kwh: 0.0,
            device_model: DeviceModel::default(),
        }
    }
}

impl EvSettings {
    pub fn is_pause_power_active(&self, now: DateTime<Utc>) -> bool {
        self.pause_power_until.is_some_and(|until| until > now)
    }
}

/// What Voltplan observed and decided about the vehicle. Written only by the system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvState {
    pub connection_status: StatusLevel,
    pub monitoring_status: StatusLevel,
    pub steering_status: StatusLevel,
    pub lifecycle_state: String,
    pub lifecycle_error: Option<String>,
    pub is_authenticated: Option<bool>,
    pub optimization_score: Option<f64>,
    pub current_mode: Option<String>,
    pub current_state_last_updated_at: Option<DateTime<Utc>>,
    pub last_monitoring_executed_at: Option<DateTime<Utc>>,
    pub is_inverter_forced_mode_enabled: bool,
    pub is_inverter_forced_mode_active: bool,
    pub inverter_forced_mode_since: Option<DateTime<Utc>>,
    pub actual_steering_state: String,
    pub charge_target_max: Option<i32>,
    pub charge_time_remaining: Option<i32>,
    pub charge_rate_w: Option<i32>,
    pub is_fully_charged: Option<bool>,
    pub is_plugged_in: Option<bool>,
    pub is_charging: Option<bool>,
    pub battery_level: Option<i32>,
    pub driving_range: Option<i32>,
    /// Capacity the cloud reported; wins over the partner's setting.
    pub reported_battery_capacity_kwh: Option<f64>,
    pub charge_state_last_updated_at: Option<DateTime<Utc>>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub coordinates_last_updated_at: Option<DateTime<Utc>>,
    pub consumption_last_day_kwh: Option<f64>,
    pub consumption_last_week_kwh: Option<f64>,
    pub consumption_last_month_kwh: Option<f64>,
    pub consumption_last_updated_at: Option<DateTime<Utc>>,
    pub battery_at_plug_in: Option<f64>,
    pub embeddable_url: Option<String>,
    pub authorization_url: Option<String>,
    pub action_needed: bool,
    pub boost_state: BoostState,
    pub boost_feature_enabled: bool,
    pub last_boost_triggered_at: Option<DateTime<Utc>>,
    pub last_boost_ended_at: Option<DateTime<Utc>>,
    pub last_boost_end_reason: Option<String>,
}

/// `0001-01-01T00:00:00Z`, the documented default of `inverter_forced_mode_since`.
pub fn inverter_forced_mode_epoch() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Default for EvState {
    fn default() -> Self {
        Self {
            connection_status: StatusLevel::Unknown,
            monitoring_status: StatusLevel::Unknown,
            steering_status: StatusLevel::Unknown,
            lifecycle_state: "authenticated".to_owned(),
            lifecycle_error: None,
            is_authenticated: Some(false),
            optimization_score: None,
            current_mode: None,
            current_state_last_updated_at: None,
            last_monitoring_executed_at: None,
            is_inverter_forced_mode_enabled: false,
            is_inverter_forced_mode_active: false,
            inverter_forced_mode_since: Some(inverter_forced_mode_epoch()),
            actual_steering_state: "unknown".to_owned(),
            charge_target_max: None,
            charge_time_remaining: None,
            charge_rate_w: None,
            is_fully_charged: Some(false),
            is_plugged_in: Some(false),
            is_charging: Some(false),
            battery_level: None,
            driving_range: None,
            reported_battery_capacity_kwh: None,
            charge_state_last_updated_at: None,
            latitude: None,
            longitude: None,
            coordinates_last_updated_at: None,
            consumption_last_day_kwh: None,
            consumption_last_week_kwh: None,
            consumption_last_month_kwh: None,
            consumption_last_updated_at: None,
            battery_at_plug_in: None,
            embeddable_url: None,
            authorization_url: None,
            action_needed: false,
            boost_state: BoostState::Unavailable,
            boost_feature_enabled: false,
            last_boost_triggered_at: None,
            last_boost_ended_at: None,
            last_boost_end_reason: None,
        }
    }
}
