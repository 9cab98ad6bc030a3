//! `/org/{org_id}/users/{user_id}/electric-vehicles`: the object of the seed page, field for
//! field, with its types, nullability, enums and defaults.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_clouds::registry;
use voltplan_core::PriceZone;
use voltplan_core::validation::FieldError;
use voltplan_core::vehicle::{BoostState, StatusLevel};
use voltplan_store::{StoreError, UserRecord, VehicleRecord, new_vehicle};

use crate::auth::OrgAccess;
use crate::body::{Fields, JsonObject, Patch, decimal_string};
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, IncludeDeleted, Q, UserPath, VehiclePath};
use crate::state::AppState;

const WRITABLE: &[&str] = &[
    "is_smart_optimization_active",
    "pause_power_until",
    "is_pause_power_active",
    "building",
    "building_id",
    "price_zone",
    "external_device_id",
    "comment",
    "charge_target_min",
    "minimum_charge_limit",
    "charge_deadline_at",
    "is_charge_policy_enabled",
    "is_over_charge_allowed",
    "expected_max_charge_power",
    "geo_fence_distance_m",
    "is_trading_enabled",
    "boost_for_next_session",
    "battery_capacity_kwh",
    "device_model",
];

/// System-managed fields: accepted in a body (so a client can send back what it read) and ignored.
const READ_ONLY: &[&str] = &[
    "id",
    "connection_status",
    "monitoring_status",
    "steering_status",
    "owner",
    "created_at",
    "updated_at",
    "deleted_at",
    "lifecycle_state",
    "lifecycle_error",
    "is_authenticated",
    "optimization_score",
    "current_mode",
    "current_state_last_updated_at",
    "last_monitoring_executed_at",
    "is_inverter_forced_mode_enabled",
    "is_inverter_forced_mode_active",
    "inverter_forced_mode_since",
    "actual_steering_state",
    "charge_target_max",
    "charge_policy_last_updated_at",
    "charge_time_remaining",
    "charge_rate_w",
    "is_fully_charged",
    "is_plugged_in",
    "is_charging",
    "battery_level",
    "driving_range",
    "charge_state_last_updated_at",
    "latitude",
    "longitude",
    "coordinates_last_updated_at",
    "consumption_last_day_kwh",
    "consumption_last_week_kwh",
    "consumption_last_month_kwh",
    "consumption_last_updated_at",
    "battery_at_plug_in",
    "embeddable_url",
    "authorization_url",
    "action_needed",
    "boost_state",
    "boost_feature_enabled",
    "last_boost_triggered_at",
    "last_boost_ended_at",
    "last_boost_end_reason",
    "actions",
];

const DEVICE_MODEL_WRITABLE: &[&str] = &[
    "manufacturer",
    "model",
    "year",
    "cloud_service",
    "cloud_service_id",
];
const DEVICE_MODEL_READ_ONLY: &[&str] = &[
    "device_type",
    "cloud_service_instructions",
    "cloud_service_signup_link",
];

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
    #[schema(value_type = Option<String>, format = "time", default = "06:00:00")]
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

/// A pending action the partner must resolve (Podero §4.4).
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionOut {
    pub id: Uuid,
    /// e.g. `reauthenticate`.
    pub code: String,
    pub resolution_link: ResolutionLinkOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResolutionLinkOut {
    pub url: String,
    pub required_parameters: Vec<String>,
}

/// The detail view: the list object plus the pending `actions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ElectricVehicleDetailOut {
    #[serde(flatten)]
    pub vehicle: ElectricVehicleOut,
    pub actions: Vec<ActionOut>,
}

/// The pending actions of a vehicle. The only one so far is `reauthenticate`: the worker found the
/// cloud link revoked. Its id is a UUID v5 of the vehicle id and the code, so it is stable across
/// reads while the action is pending.
/// Its resolution link is `POST …/auth_session` (`auth_session.rs`), absolute on the configured
/// public URL: a partner's client follows it as given.
pub fn vehicle_actions(v: &VehicleRecord, public_url: &crate::PublicUrl) -> Vec<ActionOut> {
    if !(v.state.action_needed && v.state.is_authenticated == Some(false)) {
        return Vec::new();
    }
    let code = "reauthenticate";
    vec![ActionOut {
        id: crate::boost::uuid_v5(v.id, code),
        code: code.to_owned(),
        resolution_link: ResolutionLinkOut {
            url: public_url.join(&format!(
                "/api/partners/v2.0/org/{}/users/{}/electric-vehicles/{}/auth_session",
                v.org_id, v.user_id, v.id
            )),
            required_parameters: vec!["success_url".to_owned(), "cancel_url".to_owned()],
        },
    }]
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

/// The writable fields (POST and partial PUT). Every other field of the EV object is
/// system-managed: sending it is allowed and ignored; a key that is not an EV field is a 422.
/// `building` and `building_id` are synonyms. `is_pause_power_active: false` ends a pause
/// (like `pause_power_until: null`). `battery_capacity_kwh` takes a number or a decimal string
/// and is used while the vehicle's cloud reports no capacity.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ElectricVehicleWrite {
    is_smart_optimization_active: Option<bool>,
    pause_power_until: Option<DateTime<Utc>>,
    is_pause_power_active: Option<bool>,
    building: Option<Uuid>,
    building_id: Option<Uuid>,
    #[schema(value_type = Option<crate::schemas::PriceZone>)]
    price_zone: Option<String>,
    #[schema(max_length = 255)]
    external_device_id: Option<String>,
    #[schema(max_length = 300)]
    comment: Option<String>,
    #[schema(minimum = 0, maximum = 100)]
    charge_target_min: Option<i32>,
    #[schema(minimum = 0, maximum = 100)]
    minimum_charge_limit: Option<i32>,
    /// `"HH:MM"` or `"HH:MM:SS"`, local time of the vehicle's price zone.
    charge_deadline_at: Option<String>,
    is_charge_policy_enabled: Option<bool>,
    is_over_charge_allowed: Option<bool>,
    #[schema(minimum = 1)]
    expected_max_charge_power: Option<i32>,
    geo_fence_distance_m: Option<f64>,
    is_trading_enabled: Option<bool>,
    boost_for_next_session: Option<bool>,
    #[schema(value_type = Option<String>)]
    battery_capacity_kwh: Option<String>,
    device_model: Option<DeviceModelWrite>,
}

/// The device model as written: `cloud_service` (or `cloud_service_id`) must name a known cloud.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct DeviceModelWrite {
    manufacturer: Option<String>,
    model: Option<String>,
    year: Option<i32>,
    cloud_service: Option<Uuid>,
    cloud_service_id: Option<Uuid>,
}

struct DeviceModelPatch {
    manufacturer: Patch<String>,
    model: Patch<String>,
    year: Patch<i64>,
    cloud_service: Patch<Uuid>,
}

struct VehiclePatch {
    is_smart_optimization_active: Option<bool>,
    pause_power_until: Patch<DateTime<Utc>>,
    end_pause: bool,
    building: Patch<Uuid>,
    price_zone: Option<PriceZone>,
    external_device_id: Patch<String>,
    comment: Patch<String>,
    charge_target_min: Patch<i64>,
    minimum_charge_limit: Patch<i64>,
    charge_deadline_at: Patch<NaiveTime>,
    is_charge_policy_enabled: Patch<bool>,
    is_over_charge_allowed: Patch<bool>,
    expected_max_charge_power: Option<i64>,
    geo_fence_distance_m: Option<f64>,
    is_trading_enabled: Option<bool>,
    boost_for_next_session: Option<bool>,
    battery_capacity_kwh: Option<f64>,
    device_model: Option<DeviceModelPatch>,
}

const ZONES: [&str; 21] = {
    let mut names = [""; 21];
    let mut i = 0;
    while i < 21 {
        names[i] = PriceZone::ALL[i].as_str();
        i += 1;
    }
    names
};

fn parse_device_model(f: &mut Fields, object: Map<String, Value>) -> Option<DeviceModelPatch> {
    let mut inner = Fields::new(
        crate::body::JsonObject(object),
        DEVICE_MODEL_WRITABLE,
        DEVICE_MODEL_READ_ONLY,
    );
    let manufacturer = inner.string("manufacturer", 100, false);
    let model = inner.string("model", 100, false);
    let year = inner.int("year", 1900, 2100);
    let cloud = match (inner.uuid("cloud_service"), inner.uuid("cloud_service_id")) {
        (Patch::Absent, alias) => alias,
        (primary, _) => primary,
    };
    if let Patch::Set(id) = cloud
        && registry::entry(id).is_none()
    {
        inner.error("cloud_service", "value_error", "Unknown cloud service");
    }
    let errors = inner.into_errors();
    let ok = errors.is_empty();
    f.nested_errors("device_model", errors);
    ok.then_some(DeviceModelPatch {
        manufacturer,
        model,
        year,
        cloud_service: cloud,
    })
}

fn parse_patch(f: &mut Fields, now: DateTime<Utc>) -> VehiclePatch {
    let smart = f.bool("is_smart_optimization_active");
    let pause_power_until = f.datetime("pause_power_until");
    let pause_active = f.bool("is_pause_power_active");
    let end_pause = match pause_active {
        Patch::Set(false) => true,
        Patch::Set(true) => {
            if !matches!(pause_power_until, Patch::Set(until) if until > now) {
                f.error(
                    "is_pause_power_active",
                    "value_error",
                    "To pause, set pause_power_until to a time in the future",
                );
            }
            false
        }
        Patch::Null => {
            f.error(
                "is_pause_power_active",
                "null_forbidden",
                "This field may not be null",
            );
            false
        }
        Patch::Absent => false,
    };
    let building = match (f.uuid("building"), f.uuid("building_id")) {
        (Patch::Absent, alias) => alias,
        (primary, Patch::Absent) => primary,
        (a, b) if a == b => a,
        (a, _) => {
            f.error(
                "building_id",
                "value_error",
                "building and building_id disagree; send one of them",
            );
            a
        }
    };
    let price_zone = f.one_of("price_zone", &ZONES);
    let price_zone = f
        .not_null("price_zone", price_zone)
        .and_then(|z| z.parse().ok());
    let expected_max_charge_power = f.int("expected_max_charge_power", 1, 1_000_000);
    let expected_max_charge_power =
        f.not_null("expected_max_charge_power", expected_max_charge_power);
    let geo_fence = f.number("geo_fence_distance_m", 0.0, 10_000_000.0, false);
    let geo_fence_distance_m = f.not_null("geo_fence_distance_m", geo_fence);
    if geo_fence_distance_m == Some(0.0) {
        f.error(
            "geo_fence_distance_m",
            "greater_than",
            "Input should be greater than 0",
        );
    }
    let trading = f.bool("is_trading_enabled");
    let boost_next = f.bool("boost_for_next_session");
    let capacity = f.number("battery_capacity_kwh", 0.0, 1000.0, true);
    let device_model = match f.object("device_model") {
        Patch::Set(object) => parse_device_model(f, object),
        Patch::Null => {
            f.error(
                "device_model",
                "null_forbidden",
                "This field may not be null",
            );
            None
        }
        Patch::Absent => None,
    };
    VehiclePatch {
        is_smart_optimization_active: f.not_null("is_smart_optimization_active", smart),
        pause_power_until,
        end_pause,
        building,
        price_zone,
        external_device_id: f.string("external_device_id", 255, false),
        comment: f.string("comment", 300, false),
        charge_target_min: f.int("charge_target_min", 0, 100),
        minimum_charge_limit: f.int("minimum_charge_limit", 0, 100),
        charge_deadline_at: f.time_of_day("charge_deadline_at"),
        is_charge_policy_enabled: f.bool("is_charge_policy_enabled"),
        is_over_charge_allowed: f.bool("is_over_charge_allowed"),
        expected_max_charge_power,
        geo_fence_distance_m,
        is_trading_enabled: f.not_null("is_trading_enabled", trading),
        boost_for_next_session: f.not_null("boost_for_next_session", boost_next),
        battery_capacity_kwh: f.not_null("battery_capacity_kwh", capacity),
        device_model,
    }
}

fn as_i32(v: Patch<i64>) -> Patch<i32> {
    match v {
        // Ranges were checked when parsing (0–100).
        Patch::Set(n) => Patch::Set(i32::try_from(n).unwrap_or(i32::MAX)),
        Patch::Null => Patch::Null,
        Patch::Absent => Patch::Absent,
    }
}

fn apply_patch(
    p: VehiclePatch,
    v: &mut VehicleRecord,
    now: DateTime<Utc>,
) -> Result<(), Vec<FieldError>> {
    let s = &mut v.settings;
    let policy_before = (
        s.is_charge_policy_enabled,
        s.minimum_charge_limit,
        s.charge_deadline_at,
        s.charge_target_min,
    );
    if let Some(x) = p.is_smart_optimization_active {
        s.is_smart_optimization_active = x;
    }
    p.pause_power_until.apply(&mut s.pause_power_until);
    if p.end_pause {
        s.pause_power_until = None;
    }
    p.building.apply(&mut v.building_id);
    if let Some(zone) = p.price_zone {
        v.price_zone = zone;
    }
    p.external_device_id.apply(&mut s.external_device_id);
    p.comment.apply(&mut s.comment);
    as_i32(p.charge_target_min).apply(&mut s.charge_target_min);
    as_i32(p.minimum_charge_limit).apply(&mut s.minimum_charge_limit);
    p.charge_deadline_at.apply(&mut s.charge_deadline_at);
    p.is_charge_policy_enabled
        .apply(&mut s.is_charge_policy_enabled);
    p.is_over_charge_allowed
        .apply(&mut s.is_over_charge_allowed);
    if let Some(w) = p.expected_max_charge_power {
        s.expected_max_charge_power = i32::try_from(w).unwrap_or(i32::MAX);
    }
    if let Some(d) = p.geo_fence_distance_m {
        s.geo_fence_distance_m = d;
    }
    if let Some(x) = p.is_trading_enabled {
        s.is_trading_enabled = x;
    }
    if let Some(x) = p.boost_for_next_session {
        s.boost_for_next_session = x;
    }
    if let Some(c) = p.battery_capacity_kwh {
        s.battery_capacity_kwh = c;
    }
    if let Some(dm) = p.device_model {
        dm.manufacturer.apply(&mut s.device_model.manufacturer);
        dm.model.apply(&mut s.device_model.model);
        as_i32(dm.year).apply(&mut s.device_model.year);
        dm.cloud_service.apply(&mut s.device_model.cloud_service);
    }
    if let (Some(min), Some(target)) = (s.charge_target_min, s.minimum_charge_limit)
        && min > target
    {
        return Err(vec![FieldError::body(
            "charge_target_min",
            "value_error",
            format!("charge_target_min ({min}) must not exceed minimum_charge_limit ({target})"),
        )]);
    }
    if (
        s.is_charge_policy_enabled,
        s.minimum_charge_limit,
        s.charge_deadline_at,
        s.charge_target_min,
    ) != policy_before
    {
        v.settings.charge_policy_last_updated_at = Some(now);
    }
    v.updated_at = now;
    Ok(())
}

/// A building named in a body must be a live building of the same user.
async fn check_building(
    state: &AppState,
    access: &OrgAccess,
    user_id: Uuid,
    building: &Patch<Uuid>,
) -> ApiResult<()> {
    if let Patch::Set(id) = building {
        let key = "building";
        match state
            .store()
            .get_building(access.org, user_id, *id, false)
            .await
        {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(ApiError::field(
                    key,
                    "value_error",
                    "No such building for this user",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// List a user's electric vehicles.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles", tag = "User Electric Vehicles",
    params(UserPath, IncludeDeleted),
    responses((status = 200, body = [ElectricVehicleOut]), (status = 401), (status = 404)),
    security(("bearer" = [])))]
pub async fn list_vehicles(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<Vec<ElectricVehicleOut>>> {
    let (owner, vehicles) = state
        .store()
        .list_vehicles_with_owner(access.org, path.user_id, query.include_deleted)
        .await?;
    let now = state.now();
    Ok(Json(
        vehicles
            .into_iter()
            .map(|v| vehicle_out(v, &owner, now))
            .collect(),
    ))
}

/// Register an electric vehicle for a user. Answers 200 as Podero does.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles", tag = "User Electric Vehicles",
    params(UserPath), request_body = ElectricVehicleWrite,
    responses((status = 200, body = ElectricVehicleDetailOut), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn create_vehicle(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    body: JsonObject,
) -> ApiResult<Json<ElectricVehicleDetailOut>> {
    let now = state.now();
    let owner = state
        .store()
        .get_user(access.org, path.user_id, false)
        .await?;
    let mut f = Fields::new(body, WRITABLE, READ_ONLY);
    let patch = parse_patch(&mut f, now);
    f.finish()?;
    check_building(&state, &access, path.user_id, &patch.building).await?;
    let explicit_power = patch.expected_max_charge_power.is_some();
    let mut vehicle = new_vehicle(access.org, path.user_id, now);
    apply_patch(patch, &mut vehicle, now).map_err(ApiError::Invalid)?;
    // A sandbox EV is connected at once: the simulator gets the car before the row exists, and
    // loses it again if the row cannot be written.
    let simulated =
        crate::sandbox::connect_at_creation(&state, &access, &owner, &mut vehicle, explicit_power)
            .await?;
    let created = match state.store().create_vehicle(access.org, &vehicle).await {
        Ok(created) => created,
        Err(e) => {
            if let (true, Some(sandbox)) = (simulated, state.sandbox()) {
                let _ = sandbox.remove_vehicle(vehicle.id);
            }
            return Err(e.into());
        }
    };
    let actions = vehicle_actions(&created, state.public_url());
    Ok(Json(ElectricVehicleDetailOut {
        vehicle: vehicle_out(created, &owner, now),
        actions,
    }))
}

/// Get one electric vehicle, with its pending actions.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}", tag = "User Electric Vehicles",
    params(VehiclePath, IncludeDeleted),
    responses((status = 200, body = ElectricVehicleDetailOut), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_vehicle(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<ElectricVehicleDetailOut>> {
    let owner = state
        .store()
        .get_user(access.org, path.user_id, query.include_deleted)
        .await?;
    let vehicle = state
        .store()
        .get_vehicle(
            access.org,
            path.user_id,
            path.electric_vehicle_id,
            query.include_deleted,
        )
        .await?;
    let actions = vehicle_actions(&vehicle, state.public_url());
    Ok(Json(ElectricVehicleDetailOut {
        vehicle: vehicle_out(vehicle, &owner, state.now()),
        actions,
    }))
}

/// Update an electric vehicle's settings: a partial update; `null` clears a nullable field.
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}", tag = "User Electric Vehicles",
    params(VehiclePath), request_body = ElectricVehicleWrite,
    responses((status = 200, body = ElectricVehicleDetailOut), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn update_vehicle(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    body: JsonObject,
) -> ApiResult<Json<ElectricVehicleDetailOut>> {
    let now = state.now();
    let owner = state
        .store()
        .get_user(access.org, path.user_id, false)
        .await?;
    let mut f = Fields::new(body, WRITABLE, READ_ONLY);
    let patch = parse_patch(&mut f, now);
    f.finish()?;
    check_building(&state, &access, path.user_id, &patch.building).await?;
    let updated = state
        .store()
        .update_vehicle(
            access.org,
            path.user_id,
            path.electric_vehicle_id,
            Box::new(move |v| apply_patch(patch, v, now)),
        )
        .await?;
    let actions = vehicle_actions(&updated, state.public_url());
    Ok(Json(ElectricVehicleDetailOut {
        vehicle: vehicle_out(updated, &owner, now),
        actions,
    }))
}

/// Delete an electric vehicle (soft: it stays readable with `include_deleted=true`).
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}", tag = "User Electric Vehicles",
    params(VehiclePath),
    responses((status = 204, description = "Deleted"), (status = 404)),
    security(("bearer" = [])))]
pub async fn delete_vehicle(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
) -> ApiResult<StatusCode> {
    state
        .store()
        .delete_vehicle(
            access.org,
            path.user_id,
            path.electric_vehicle_id,
            state.now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
