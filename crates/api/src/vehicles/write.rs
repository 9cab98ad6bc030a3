//! The electric vehicle as partners write it: the body declared once (documented and accepted,
//! `write_body!`), read into a patch before the transaction, applied inside it.

use chrono::{DateTime, NaiveTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;
use voltplan_clouds::registry;
use voltplan_core::PriceZone;
use voltplan_core::validation::FieldError;
use voltplan_store::VehicleRecord;

use crate::body::{Fields, JsonObject, Patch, write_body};
use crate::error::ApiResult;
use crate::schemas::ZONES;

/// System-managed fields: accepted in a body (so a client can send back what it read) and ignored.
pub(crate) const READ_ONLY: &[&str] = &[
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

pub(crate) const DEVICE_MODEL_READ_ONLY: &[&str] = &[
    "device_type",
    "cloud_service_instructions",
    "cloud_service_signup_link",
    "vin",
];

write_body! {
    /// The writable fields (POST and partial PUT). Every other field of the EV object is
    /// system-managed: sending it is allowed and ignored; a key that is not an EV field is a 422.
    /// `building` and `building_id` are synonyms. `is_pause_power_active: false` ends a pause
    /// (like `pause_power_until: null`). `battery_capacity_kwh` takes a number or a decimal string
    /// and is used while the vehicle's cloud reports no capacity.
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
        #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$")]
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
}

write_body! {
    /// The device model as written: `cloud_service` (or `cloud_service_id`) must name a known cloud.
    pub struct DeviceModelWrite {
        manufacturer: Option<String>,
        model: Option<String>,
        year: Option<i32>,
        cloud_service: Option<Uuid>,
        cloud_service_id: Option<Uuid>,
    }
}

struct DeviceModelPatch {
    manufacturer: Patch<String>,
    model: Patch<String>,
    year: Patch<i64>,
    cloud_service: Patch<Uuid>,
}

pub(super) struct VehiclePatch {
    is_smart_optimization_active: Option<bool>,
    pause_power_until: Patch<DateTime<Utc>>,
    end_pause: bool,
    pub building: Patch<Uuid>,
    price_zone: Option<PriceZone>,
    external_device_id: Patch<String>,
    comment: Patch<String>,
    charge_target_min: Patch<i64>,
    minimum_charge_limit: Patch<i64>,
    charge_deadline_at: Patch<NaiveTime>,
    is_charge_policy_enabled: Patch<bool>,
    is_over_charge_allowed: Patch<bool>,
    pub expected_max_charge_power: Option<i64>,
    geo_fence_distance_m: Option<f64>,
    is_trading_enabled: Option<bool>,
    boost_for_next_session: Option<bool>,
    battery_capacity_kwh: Option<f64>,
    device_model: Option<DeviceModelPatch>,
}

fn parse_device_model(f: &mut Fields, object: Map<String, Value>) -> Option<DeviceModelPatch> {
    let mut inner = Fields::new(
        crate::body::JsonObject(object),
        DeviceModelWrite::FIELDS,
        DEVICE_MODEL_READ_ONLY,
    );
    let patch = parse_device_model_fields(&mut inner);
    let errors = inner.into_errors();
    let ok = errors.is_empty();
    f.nested_errors("device_model", errors);
    ok.then_some(patch)
}

fn parse_device_model_fields(inner: &mut Fields) -> DeviceModelPatch {
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
    DeviceModelPatch {
        manufacturer,
        model,
        year,
        cloud_service: cloud,
    }
}

/// `pause_power_until`, and `is_pause_power_active` (`false` ends a pause, `true` only with a
/// pause into the future): the pause asked for, and whether to end one. Any device that pauses.
pub(crate) fn parse_pause(f: &mut Fields, now: DateTime<Utc>) -> (Patch<DateTime<Utc>>, bool) {
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
    (pause_power_until, end_pause)
}

/// `building`, or its synonym `building_id` (both given: they must agree).
pub(crate) fn parse_building(f: &mut Fields) -> Patch<Uuid> {
    match (f.uuid("building"), f.uuid("building_id")) {
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
    }
}

/// `price_zone`: one of the zones, never null.
pub(crate) fn parse_price_zone(f: &mut Fields) -> Option<PriceZone> {
    let price_zone = f.one_of("price_zone", &ZONES);
    f.not_null("price_zone", price_zone)
        .and_then(|z| z.parse().ok())
}

fn parse_patch(f: &mut Fields, now: DateTime<Utc>) -> VehiclePatch {
    let smart = f.bool("is_smart_optimization_active");
    let (pause_power_until, end_pause) = parse_pause(f, now);
    let building = parse_building(f);
    let price_zone = parse_price_zone(f);
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
        comment: f.multiline("comment", 300),
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

pub(crate) fn as_i32(v: Patch<i64>) -> Patch<i32> {
    match v {
        // Ranges were checked when parsing.
        Patch::Set(n) => Patch::Set(i32::try_from(n).unwrap_or(i32::MAX)),
        Patch::Null => Patch::Null,
        Patch::Absent => Patch::Absent,
    }
}

/// The charge-policy fields whose change stamps `charge_policy_last_updated_at`.
macro_rules! charge_policy {
    ($settings:expr) => {
        (
            $settings.is_charge_policy_enabled,
            $settings.minimum_charge_limit,
            $settings.charge_deadline_at,
            $settings.charge_target_min,
        )
    };
}
pub(crate) use charge_policy;

/// Applies the fields every device's patch shares (same names, same types) to a device record
/// (an EV's or a wallbox's), and answers the charge policy as it was before, for
/// [`stamp_policy`].
macro_rules! apply_common {
    ($p:ident, $record:ident) => {{
        let s = &mut $record.settings;
        let policy_before = $crate::vehicles::write::charge_policy!(s);
        if let Some(x) = $p.is_smart_optimization_active {
            s.is_smart_optimization_active = x;
        }
        $p.pause_power_until.apply(&mut s.pause_power_until);
        if $p.end_pause {
            s.pause_power_until = None;
        }
        $p.building.apply(&mut $record.building_id);
        if let Some(zone) = $p.price_zone {
            $record.price_zone = zone;
        }
        $p.external_device_id.apply(&mut s.external_device_id);
        $p.comment.apply(&mut s.comment);
        as_i32($p.charge_target_min).apply(&mut s.charge_target_min);
        as_i32($p.minimum_charge_limit).apply(&mut s.minimum_charge_limit);
        $p.charge_deadline_at.apply(&mut s.charge_deadline_at);
        $p.is_charge_policy_enabled
            .apply(&mut s.is_charge_policy_enabled);
        $p.is_over_charge_allowed
            .apply(&mut s.is_over_charge_allowed);
        if let Some(x) = $p.is_trading_enabled {
            s.is_trading_enabled = x;
        }
        if let Some(x) = $p.boost_for_next_session {
            s.boost_for_next_session = x;
        }
        policy_before
    }};
}
pub(crate) use apply_common;

/// The end of every device's accepted change: the policy stamp when a policy field changed, and
/// `updated_at`.
macro_rules! stamp_policy {
    ($record:ident, $policy_before:expr, $now:expr) => {
        if $crate::vehicles::write::charge_policy!($record.settings) != $policy_before {
            $record.settings.charge_policy_last_updated_at = Some($now);
        }
        $record.updated_at = $now;
    };
}
pub(crate) use stamp_policy;

pub(super) fn apply_patch(
    p: VehiclePatch,
    v: &mut VehicleRecord,
    now: DateTime<Utc>,
) -> Result<(), Vec<FieldError>> {
    let policy_before = apply_common!(p, v);
    let s = &mut v.settings;
    if let Some(w) = p.expected_max_charge_power {
        s.expected_max_charge_power = i32::try_from(w).unwrap_or(i32::MAX);
    }
    if let Some(d) = p.geo_fence_distance_m {
        s.geo_fence_distance_m = d;
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
    stamp_policy!(v, policy_before, now);
    Ok(())
}

/// The patch a POST or PUT body asks for, or every invalid field.
pub(super) fn read_patch(body: JsonObject, now: DateTime<Utc>) -> ApiResult<VehiclePatch> {
    let mut f = Fields::new(body, ElectricVehicleWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f, now);
    f.finish()?;
    Ok(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::declaration::{accepts_what_it_shows, all_null, properties};
    use crate::vehicles::out::{DeviceModelOut, ElectricVehicleOut};

    #[test]
    fn the_declared_fields_are_documented_accepted_and_read() {
        assert_eq!(
            properties::<ElectricVehicleWrite>(),
            ElectricVehicleWrite::FIELDS
        );
        assert_eq!(properties::<DeviceModelWrite>(), DeviceModelWrite::FIELDS);
        let now = DateTime::<Utc>::MIN_UTC;
        let mut f = Fields::new(
            all_null(ElectricVehicleWrite::FIELDS),
            ElectricVehicleWrite::FIELDS,
            READ_ONLY,
        );
        parse_patch(&mut f, now);
        assert_eq!(f.unread(), Vec::<&str>::new());
        let mut f = Fields::new(
            all_null(DeviceModelWrite::FIELDS),
            DeviceModelWrite::FIELDS,
            DEVICE_MODEL_READ_ONLY,
        );
        parse_device_model_fields(&mut f);
        assert_eq!(f.unread(), Vec::<&str>::new());
    }

    #[test]
    fn an_object_read_can_be_sent_back() {
        accepts_what_it_shows::<ElectricVehicleOut>(ElectricVehicleWrite::FIELDS, READ_ONLY);
        assert!(READ_ONLY.contains(&"actions"));
        accepts_what_it_shows::<DeviceModelOut>(DeviceModelWrite::FIELDS, DEVICE_MODEL_READ_ONLY);
    }
}
