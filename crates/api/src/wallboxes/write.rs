//! The wallbox as partners write it: the body declared once (documented and accepted,
//! `write_body!`), read into a patch before the transaction, applied inside it.

use chrono::{DateTime, NaiveTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::validation::FieldError;
use voltplan_core::wallbox::check_targets;
use voltplan_store::WallboxRecord;

use crate::body::{Fields, JsonObject, Patch, write_body};
use crate::error::ApiResult;
use crate::vehicles::write::{
    apply_common, as_i32, parse_building, parse_pause, parse_price_zone, stamp_policy,
};

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
    "charge_policy_last_updated_at",
    "action_needed",
    "mode",
    "connection",
    "is_ocpp_connected",
    "is_plugged_in",
    "is_charging",
    "charging_power_w",
    "meter_wh",
    "boost_state",
    "boost_feature_enabled",
    "last_boost_triggered_at",
    "last_boost_ended_at",
    "last_boost_end_reason",
    "ocpp",
    "actions",
];

pub(crate) const DEVICE_MODEL_READ_ONLY: &[&str] = &[
    "device_type",
    "cloud_service_instructions",
    "cloud_service_signup_link",
    "cloud_service",
    "vin",
];

/// What a charge-point id may be: what OCPP 1.6 allows in an identity (at most 48 characters)
/// and a URL path segment carries unescaped.
pub(crate) const CHARGE_POINT_ID_PATTERN: &str = "^[A-Za-z0-9._:-]{1,48}$";

write_body! {
    /// The writable fields (POST and partial PUT). Every other field of the wallbox object is
    /// system-managed: sending it is allowed and ignored; a key that is not a wallbox field is a
    /// 422. `building` and `building_id` are synonyms. `is_pause_power_active: false` ends a pause.
    /// The charge targets must keep `charge_target_min ≤ minimum_charge_limit ≤
    /// charge_target_max` (where set).
    pub struct WallboxWrite {
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
        /// The car's charge cap in percent, as the driver set it in the car; `null`: 100.
        #[schema(minimum = 0, maximum = 100)]
        charge_target_max: Option<i32>,
        #[schema(minimum = 0, maximum = 100)]
        minimum_charge_limit: Option<i32>,
        /// `"HH:MM"` or `"HH:MM:SS"`, local time of the wallbox's price zone.
        #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$")]
        charge_deadline_at: Option<String>,
        is_charge_policy_enabled: Option<bool>,
        is_over_charge_allowed: Option<bool>,
        /// The most the wallbox may deliver, W (default 11000: three phases at 16 A).
        #[schema(minimum = 1, maximum = 350000)]
        charge_power_max_w: Option<i32>,
        is_trading_enabled: Option<bool>,
        is_forecasting_enabled: Option<bool>,
        boost_for_next_session: Option<bool>,
        /// Voltplan extension (our choice; Podero has no such field): the energy in kWh a session
        /// must deliver by the deadline when the car's state of charge is unknown (most chargers
        /// do not report it). `null` (default): learned from the charger's past sessions.
        #[schema(exclusive_minimum = 0, maximum = 1000)]
        session_energy_kwh: Option<f64>,
        /// The charger's OCPP identity, for chargers whose id is fixed (e.g. their serial number);
        /// unique among the installation's wallboxes. Absent on creation: one is generated
        /// (`vp-` and 16 hex digits). Changing it disconnects a charger that uses the old one.
        #[schema(pattern = "^[A-Za-z0-9._:-]{1,48}$")]
        ocpp_charge_point_id: Option<String>,
        device_model: Option<WallboxModelWrite>,
    }
}

write_body! {
    /// The wallbox's make as written (it connects over OCPP, not through a cloud service).
    pub struct WallboxModelWrite {
        manufacturer: Option<String>,
        model: Option<String>,
        year: Option<i32>,
    }
}

struct ModelPatch {
    manufacturer: Patch<String>,
    model: Patch<String>,
    year: Patch<i64>,
}

pub(super) struct WallboxPatch {
    is_smart_optimization_active: Option<bool>,
    pause_power_until: Patch<DateTime<Utc>>,
    end_pause: bool,
    pub building: Patch<Uuid>,
    price_zone: Option<PriceZone>,
    external_device_id: Patch<String>,
    comment: Patch<String>,
    charge_target_min: Patch<i64>,
    charge_target_max: Patch<i64>,
    minimum_charge_limit: Patch<i64>,
    charge_deadline_at: Patch<NaiveTime>,
    is_charge_policy_enabled: Patch<bool>,
    is_over_charge_allowed: Patch<bool>,
    charge_power_max_w: Option<i64>,
    is_trading_enabled: Option<bool>,
    is_forecasting_enabled: Option<bool>,
    boost_for_next_session: Option<bool>,
    session_energy_kwh: Patch<f64>,
    pub ocpp_charge_point_id: Option<String>,
    device_model: Option<ModelPatch>,
}

/// Whether `id` fits [`CHARGE_POINT_ID_PATTERN`].
pub(crate) fn is_charge_point_id(id: &str) -> bool {
    (1..=48).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn parse_model(f: &mut Fields, object: Map<String, Value>) -> Option<ModelPatch> {
    let mut inner = Fields::new(
        JsonObject(object),
        WallboxModelWrite::FIELDS,
        DEVICE_MODEL_READ_ONLY,
    );
    let patch = parse_model_fields(&mut inner);
    let errors = inner.into_errors();
    let ok = errors.is_empty();
    f.nested_errors("device_model", errors);
    ok.then_some(patch)
}

fn parse_model_fields(inner: &mut Fields) -> ModelPatch {
    ModelPatch {
        manufacturer: inner.string("manufacturer", 100, false),
        model: inner.string("model", 100, false),
        year: inner.int("year", 1900, 2100),
    }
}

fn parse_patch(f: &mut Fields, now: DateTime<Utc>) -> WallboxPatch {
    let smart = f.bool("is_smart_optimization_active");
    let (pause_power_until, end_pause) = parse_pause(f, now);
    let building = parse_building(f);
    let price_zone = parse_price_zone(f);
    let power = f.int("charge_power_max_w", 1, 350_000);
    let charge_power_max_w = f.not_null("charge_power_max_w", power);
    let session_energy_kwh = f.number("session_energy_kwh", 0.0, 1000.0, false);
    if session_energy_kwh == Patch::Set(0.0) {
        f.error(
            "session_energy_kwh",
            "greater_than",
            "Input should be greater than 0",
        );
    }
    let charge_point_id = match f.string("ocpp_charge_point_id", 48, false) {
        Patch::Set(id) if !is_charge_point_id(&id) => {
            f.error(
                "ocpp_charge_point_id",
                "string_pattern_mismatch",
                format!("String should match pattern '{CHARGE_POINT_ID_PATTERN}'"),
            );
            Patch::Absent
        }
        other => other,
    };
    let trading = f.bool("is_trading_enabled");
    let forecasting = f.bool("is_forecasting_enabled");
    let boost_next = f.bool("boost_for_next_session");
    let device_model = match f.object("device_model") {
        Patch::Set(object) => parse_model(f, object),
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
    WallboxPatch {
        is_smart_optimization_active: f.not_null("is_smart_optimization_active", smart),
        pause_power_until,
        end_pause,
        building,
        price_zone,
        external_device_id: f.string("external_device_id", 255, false),
        comment: f.multiline("comment", 300),
        charge_target_min: f.int("charge_target_min", 0, 100),
        charge_target_max: f.int("charge_target_max", 0, 100),
        minimum_charge_limit: f.int("minimum_charge_limit", 0, 100),
        charge_deadline_at: f.time_of_day("charge_deadline_at"),
        is_charge_policy_enabled: f.bool("is_charge_policy_enabled"),
        is_over_charge_allowed: f.bool("is_over_charge_allowed"),
        charge_power_max_w,
        is_trading_enabled: f.not_null("is_trading_enabled", trading),
        is_forecasting_enabled: f.not_null("is_forecasting_enabled", forecasting),
        boost_for_next_session: f.not_null("boost_for_next_session", boost_next),
        session_energy_kwh,
        ocpp_charge_point_id: f.not_null("ocpp_charge_point_id", charge_point_id),
        device_model,
    }
}

pub(super) fn apply_patch(
    p: WallboxPatch,
    w: &mut WallboxRecord,
    now: DateTime<Utc>,
) -> Result<(), Vec<FieldError>> {
    let policy_before = apply_common!(p, w);
    let s = &mut w.settings;
    as_i32(p.charge_target_max).apply(&mut s.charge_target_max);
    if let Some(watts) = p.charge_power_max_w {
        s.charge_power_max_w = i32::try_from(watts).unwrap_or(i32::MAX);
    }
    if let Some(x) = p.is_forecasting_enabled {
        s.is_forecasting_enabled = x;
    }
    p.session_energy_kwh.apply(&mut s.session_energy_kwh);
    if let Some(dm) = p.device_model {
        dm.manufacturer.apply(&mut s.device_model.manufacturer);
        dm.model.apply(&mut s.device_model.model);
        as_i32(dm.year).apply(&mut s.device_model.year);
    }
    if let Some(id) = p.ocpp_charge_point_id {
        w.charge_point_id = id;
    }
    // Checked on the result, so that a PUT of one target is judged against the stored others.
    check_targets(&w.settings)
        .map_err(|(field, msg)| vec![FieldError::body(field, "value_error", msg)])?;
    stamp_policy!(w, policy_before, now);
    Ok(())
}

/// The patch a POST or PUT body asks for, or every invalid field.
pub(super) fn read_patch(body: JsonObject, now: DateTime<Utc>) -> ApiResult<WallboxPatch> {
    let mut f = Fields::new(body, WallboxWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f, now);
    f.finish()?;
    Ok(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::declaration::{accepts_what_it_shows, all_null, properties};
    use crate::vehicles::DeviceModelOut;
    use crate::wallboxes::out::WallboxOut;

    #[test]
    fn the_declared_fields_are_documented_accepted_and_read() {
        assert_eq!(properties::<WallboxWrite>(), WallboxWrite::FIELDS);
        assert_eq!(properties::<WallboxModelWrite>(), WallboxModelWrite::FIELDS);
        let mut f = Fields::new(
            all_null(WallboxWrite::FIELDS),
            WallboxWrite::FIELDS,
            READ_ONLY,
        );
        parse_patch(&mut f, DateTime::<Utc>::MIN_UTC);
        assert_eq!(f.unread(), Vec::<&str>::new());
        let mut f = Fields::new(
            all_null(WallboxModelWrite::FIELDS),
            WallboxModelWrite::FIELDS,
            DEVICE_MODEL_READ_ONLY,
        );
        parse_model_fields(&mut f);
        assert_eq!(f.unread(), Vec::<&str>::new());
    }

    #[test]
    fn an_object_read_can_be_sent_back() {
        accepts_what_it_shows::<WallboxOut>(WallboxWrite::FIELDS, READ_ONLY);
        assert!(READ_ONLY.contains(&"actions"));
        accepts_what_it_shows::<DeviceModelOut>(WallboxModelWrite::FIELDS, DEVICE_MODEL_READ_ONLY);
    }

    #[test]
    fn charge_point_ids_follow_the_pattern() {
        for good in ["vp-0123456789abcdef", "SN:123.4_5-6", &"a".repeat(48)] {
            assert!(is_charge_point_id(good), "{good}");
        }
        for bad in ["", "with space", "slash/", "ü", &"a".repeat(49)] {
            assert!(!is_charge_point_id(bad), "{bad}");
        }
    }
}
