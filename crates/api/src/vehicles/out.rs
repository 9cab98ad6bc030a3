//! The electric vehicle as the API shows it: the object of the seed page, field for field, with
//! its types, nullability, enums and defaults, and its pending actions.

use crate::cues::ActionOut;
use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_clouds::registry;
use voltplan_core::PriceZone;
use voltplan_core::vehicle::{BoostState, StatusLevel};
use voltplan_store::{UserRecord, VehicleRecord};

use crate::body::decimal_string;

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceTypeOut {
    pub short_name: String,
    pub long_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceModelOut {
    pub device_type: DeviceTypeOut,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub cloud_service_instructions: Option<String>,
    pub cloud_service_signup_link: Option<String>,
    pub year: Option<i32>,
    /// Id of the vehicle cloud the device is connected through.
    pub cloud_service: Option<Uuid>,
    /// Extension: the vehicle identification number, when the car's cloud shared it at
    /// onboarding (read-only); absent otherwise, so the seed's object is unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vin: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerOut {
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The user's `external_user_id`.
    pub external_id: Option<String>,
}

impl From<&UserRecord> for OwnerOut {
    fn from(u: &UserRecord) -> Self {
        OwnerOut {
            id: u.id,
            email: u.email.clone(),
            first_name: u.profile.first_name.clone(),
            last_name: u.profile.last_name.clone(),
            external_id: u.external_user_id.clone(),
        }
    }
}

/// An electric vehicle, exactly as Podero's "Get a user's electric vehicles" returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ElectricVehicleOut {
    #[schema(value_type = crate::schemas::StatusLevel)]
    pub connection_status: StatusLevel,
    #[schema(value_type = crate::schemas::StatusLevel)]
    pub monitoring_status: StatusLevel,
    #[schema(value_type = crate::schemas::StatusLevel)]
    pub steering_status: StatusLevel,
    pub device_model: DeviceModelOut,
    pub owner: OwnerOut,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = crate::schemas::PriceZone, default = "AT")]
    pub price_zone: PriceZone,
    pub id: Option<Uuid>,
    /// When set, the device is considered deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    #[schema(default = "authenticated", max_length = 20)]
    pub lifecycle_state: String,
    /// Error metadata when lifecycle_state is 'error'.
    pub lifecycle_error: Option<String>,
    pub building: Option<Uuid>,
    pub pause_power_until: Option<DateTime<Utc>>,
    #[schema(default = false)]
    pub is_pause_power_active: bool,
    #[schema(default = "", max_length = 255)]
    pub external_device_id: Option<String>,
    #[schema(default = false)]
    pub is_authenticated: Option<bool>,
    #[schema(default = false)]
    pub is_smart_optimization_active: bool,
    /// Expected savings of the current or last charging session, in percent of charging at once.
    pub optimization_score: Option<f64>,
    pub current_mode: Option<String>,
    #[schema(max_length = 300)]
    pub comment: Option<String>,
    pub current_state_last_updated_at: Option<DateTime<Utc>>,
    pub last_monitoring_executed_at: Option<DateTime<Utc>>,
    #[schema(default = false)]
    pub is_inverter_forced_mode_enabled: bool,
    #[schema(default = false)]
    pub is_inverter_forced_mode_active: bool,
    #[schema(default = "0001-01-01T00:00:00Z")]
    pub inverter_forced_mode_since: Option<DateTime<Utc>>,
    #[schema(default = false)]
    pub is_trading_enabled: bool,
    #[schema(default = "unknown", max_length = 20)]
    pub actual_steering_state: String,
    #[schema(default = 50)]
    pub charge_target_min: Option<i32>,
    /// Detected OEM-app charge cap (percent). NULL = unknown / no cap detected.
    pub charge_target_max: Option<i32>,
    #[schema(default = false)]
    pub is_charge_policy_enabled: Option<bool>,
    pub charge_policy_last_updated_at: Option<DateTime<Utc>>,
    #[schema(default = 100)]
    pub minimum_charge_limit: Option<i32>,
    /// `HH:MM:SS`, local time of the vehicle's price zone (no offset: the zone's clock decides).
    #[schema(value_type = Option<String>, pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$",
        default = "06:00:00")]
    pub charge_deadline_at: Option<NaiveTime>,
    #[schema(default = false)]
    pub is_over_charge_allowed: Option<bool>,
    #[schema(default = 3600)]
    pub expected_max_charge_power: i32,
    pub charge_time_remaining: Option<i32>,
    pub charge_rate_w: Option<i32>,
    #[schema(default = false)]
    pub is_fully_charged: Option<bool>,
    #[schema(default = false)]
    pub is_plugged_in: Option<bool>,
    #[schema(default = false)]
    pub is_charging: Option<bool>,
    pub battery_level: Option<i32>,
    pub driving_range: Option<i32>,
    /// Decimal string, e.g. `"79.5"`; `"0"` while unknown.
    #[schema(default = "0")]
    pub battery_capacity_kwh: String,
    pub charge_state_last_updated_at: Option<DateTime<Utc>>,
    #[schema(default = false)]
    pub boost_for_next_session: bool,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub coordinates_last_updated_at: Option<DateTime<Utc>>,
    #[schema(default = 100)]
    pub geo_fence_distance_m: f64,
    /// Decimal string (kWh, last 24 h).
    pub consumption_last_day_kwh: Option<String>,
    /// Decimal string (kWh, last 7 days).
    pub consumption_last_week_kwh: Option<String>,
    /// Decimal string (kWh, last 30 days).
    pub consumption_last_month_kwh: Option<String>,
    pub consumption_last_updated_at: Option<DateTime<Utc>>,
    /// Battery level at latest plug-in event
    pub battery_at_plug_in: Option<f64>,
    /// URL to embeddable onboarding form
    pub embeddable_url: Option<String>,
    /// Base URL for authorizing with the server
    pub authorization_url: Option<String>,
    /// True when at least one action is pending against this device and the partner must take
    /// that action before the device can resume normal operation.
    #[schema(default = false)]
    pub action_needed: bool,
    #[schema(value_type = crate::schemas::BoostState, default = "unavailable")]
    pub boost_state: BoostState,
    #[schema(default = false)]
    pub boost_feature_enabled: bool,
    pub last_boost_triggered_at: Option<DateTime<Utc>>,
    pub last_boost_ended_at: Option<DateTime<Utc>>,
    pub last_boost_end_reason: Option<String>,
}

/// The detail view: the list object plus the pending `actions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ElectricVehicleDetailOut {
    #[serde(flatten)]
    pub vehicle: ElectricVehicleOut,
    pub actions: Vec<ActionOut>,
}

/// The pending actions of a vehicle. The only one so far is `reauthenticate`: the worker found the
/// cloud link revoked. Its resolution link is the cue's `/resolve` (`cues.rs`), absolute on the
/// configured public URL: a partner's client follows it as given. The older
/// `POST …/auth_session` keeps working for the sandbox.
fn vehicle_actions(v: &VehicleRecord, links: &crate::cues::CueLinks<'_>) -> Vec<ActionOut> {
    if !(v.state.action_needed && v.state.is_authenticated == Some(false)) {
        return Vec::new();
    }
    vec![links.reauthenticate(v)]
}

/// The detail view of `v`: the object with its pending actions.
pub fn vehicle_detail(
    v: VehicleRecord,
    owner: &UserRecord,
    links: &crate::cues::CueLinks<'_>,
    now: DateTime<Utc>,
) -> ElectricVehicleDetailOut {
    let actions = vehicle_actions(&v, links);
    ElectricVehicleDetailOut {
        vehicle: vehicle_out(v, owner, now),
        actions,
    }
}

pub fn vehicle_out(v: VehicleRecord, owner: &UserRecord, now: DateTime<Utc>) -> ElectricVehicleOut {
    let boost_state = crate::boost::effective_boost_state(&v.settings, &v.state);
    let s = v.settings;
    let st = v.state;
    let cloud = s
        .device_model
        .cloud_service
        .and_then(registry::entry)
        .map(|e| &e.service);
    let capacity = st
        .reported_battery_capacity_kwh
        .unwrap_or(s.battery_capacity_kwh);
    ElectricVehicleOut {
        connection_status: st.connection_status,
        monitoring_status: st.monitoring_status,
        steering_status: st.steering_status,
        device_model: DeviceModelOut {
            device_type: DeviceTypeOut {
                short_name: "ev".to_owned(),
                long_name: "Electric Vehicle".to_owned(),
            },
            manufacturer: s.device_model.manufacturer,
            model: s.device_model.model,
            cloud_service_instructions: cloud.map(|c| c.instructions.to_owned()),
            cloud_service_signup_link: cloud.map(|c| c.signup_link.to_owned()),
            year: s.device_model.year,
            cloud_service: s.device_model.cloud_service,
            vin: s.device_model.vin,
        },
        owner: OwnerOut::from(owner),
        created_at: v.created_at,
        updated_at: v.updated_at,
        price_zone: v.price_zone,
        id: Some(v.id),
        deleted_at: v.deleted_at,
        lifecycle_state: st.lifecycle_state,
        lifecycle_error: st.lifecycle_error,
        building: v.building_id,
        is_pause_power_active: s.pause_power_until.is_some_and(|until| until > now),
        pause_power_until: s.pause_power_until,
        external_device_id: s.external_device_id,
        is_authenticated: st.is_authenticated,
        is_smart_optimization_active: s.is_smart_optimization_active,
        optimization_score: st.optimization_score,
        current_mode: st.current_mode,
        comment: s.comment,
        current_state_last_updated_at: st.current_state_last_updated_at,
        last_monitoring_executed_at: st.last_monitoring_executed_at,
        is_inverter_forced_mode_enabled: st.is_inverter_forced_mode_enabled,
        is_inverter_forced_mode_active: st.is_inverter_forced_mode_active,
        inverter_forced_mode_since: st.inverter_forced_mode_since,
        is_trading_enabled: s.is_trading_enabled,
        actual_steering_state: st.actual_steering_state,
        charge_target_min: s.charge_target_min,
        charge_target_max: st.charge_target_max,
        is_charge_policy_enabled: s.is_charge_policy_enabled,
        charge_policy_last_updated_at: s.charge_policy_last_updated_at,
        minimum_charge_limit: s.minimum_charge_limit,
        charge_deadline_at: s.charge_deadline_at,
        is_over_charge_allowed: s.is_over_charge_allowed,
        expected_max_charge_power: s.expected_max_charge_power,
        charge_time_remaining: st.charge_time_remaining,
        charge_rate_w: st.charge_rate_w,
        is_fully_charged: st.is_fully_charged,
        is_plugged_in: st.is_plugged_in,
        is_charging: st.is_charging,
        battery_level: st.battery_level,
        driving_range: st.driving_range,
        battery_capacity_kwh: decimal_string(capacity),
        charge_state_last_updated_at: st.charge_state_last_updated_at,
        boost_for_next_session: s.boost_for_next_session,
        latitude: st.latitude,
        longitude: st.longitude,
        coordinates_last_updated_at: st.coordinates_last_updated_at,
        geo_fence_distance_m: s.geo_fence_distance_m,
        consumption_last_day_kwh: st.consumption_last_day_kwh.map(decimal_string),
        consumption_last_week_kwh: st.consumption_last_week_kwh.map(decimal_string),
        consumption_last_month_kwh: st.consumption_last_month_kwh.map(decimal_string),
        consumption_last_updated_at: st.consumption_last_updated_at,
        battery_at_plug_in: st.battery_at_plug_in,
        embeddable_url: st.embeddable_url,
        authorization_url: st.authorization_url,
        action_needed: st.action_needed,
        boost_state,
        boost_feature_enabled: st.boost_feature_enabled,
        last_boost_triggered_at: st.last_boost_triggered_at,
        last_boost_ended_at: st.last_boost_ended_at,
        last_boost_end_reason: st.last_boost_end_reason,
    }
}
