//! `GET/PUT …/electric-vehicles/{electric_vehicle_id}/charge-policy`: the weekly charge policy
//! (Podero §4.10). Per weekday a level (`charge_percentage`) due by a wall-clock time
//! (`charge_deadline`) in `timezone`; the planner uses it instead of the daily fields
//! (`minimum_charge_limit` by `charge_deadline_at`) while `is_charge_policy_enabled` is true.
//!
//! Stored in the EV's settings (`weekly_charge_policy`), written through `update_vehicle` (one
//! transaction, which also makes the vehicle due for the worker at once).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_core::time::WEEKDAYS;
use voltplan_core::vehicle::{DailyChargeTarget, WeeklyChargePolicy, canonical_time_zone};
use voltplan_store::VehicleRecord;

use crate::auth::OrgAccess;
use crate::body::{Fields, JsonObject, Patch};
use crate::error::ApiResult;
use crate::params::{Ids, VehiclePath};
use crate::state::AppState;

/// The keys of the GET answer's envelope: refused in a PUT body with a hint (the body is the
/// `data` object itself).
const ENVELOPE: &[&str] = &["metadata", "data"];

/// The longest time-zone name accepted (IANA names are well under it).
const MAX_TIME_ZONE_LEN: usize = 64;

/// `metadata` of a charge-policy answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChargePolicyOutputMetadata {
    pub electric_vehicle_id: Uuid,
    pub user_id: Uuid,
    /// Always `null` in a 200 answer: failures are HTTP statuses with a `detail` body.
    pub error: Option<String>,
}

/// One weekday's target: `charge_percentage` % by `charge_deadline`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChargeDailyPolicySchema {
    /// The battery level due by the deadline, %.
    #[schema(minimum = 0, maximum = 100, example = 80)]
    pub charge_percentage: i32,
    /// Wall-clock time in `timezone`: `HH:MM:SS` (a PUT also accepts `HH:MM`).
    #[schema(value_type = String, pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        example = "07:00:00")]
    pub charge_deadline: NaiveTime,
}

impl ChargeDailyPolicySchema {
    /// The keys of a day's object, in declaration order.
    pub const FIELDS: &'static [&'static str] = &["charge_percentage", "charge_deadline"];
}

/// The weekly charge policy: per weekday the level due by a wall-clock time in `timezone`.
/// A day that is `null` (or absent from a PUT) has no deadline. `timezone` is an IANA time zone
/// name (`Europe/Vienna`); a PUT without it (or with `null`) means the vehicle's price zone's
/// time zone, which then follows a change of the price zone.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChargeWeeklyPolicySchema {
    pub mon: Option<ChargeDailyPolicySchema>,
    pub tue: Option<ChargeDailyPolicySchema>,
    pub wed: Option<ChargeDailyPolicySchema>,
    pub thu: Option<ChargeDailyPolicySchema>,
    pub fri: Option<ChargeDailyPolicySchema>,
    pub sat: Option<ChargeDailyPolicySchema>,
    pub sun: Option<ChargeDailyPolicySchema>,
    #[schema(example = "Europe/Vienna")]
    pub timezone: String,
}

impl ChargeWeeklyPolicySchema {
    /// The keys of the policy object (a PUT body), in declaration order.
    pub const FIELDS: &'static [&'static str] =
        &["mon", "tue", "wed", "thu", "fri", "sat", "sun", "timezone"];
}

/// The answer of GET and PUT: `{metadata, data}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChargePolicyOutputSchema {
    pub metadata: ChargePolicyOutputMetadata,
    pub data: ChargeWeeklyPolicySchema,
}

/// The policy a vehicle has, as the API shows it: every day `null` while none is stored, and the
/// policy's time zone or else the price zone's.
fn policy_out(vehicle: &VehicleRecord) -> ChargePolicyOutputSchema {
    let policy = vehicle.settings.weekly_charge_policy.as_ref();
    let day = |i: usize| {
        policy
            .and_then(|p| p.days[i].as_ref())
            .map(|d| ChargeDailyPolicySchema {
                charge_percentage: d.charge_percentage,
                charge_deadline: d.charge_deadline,
            })
    };
    let timezone = policy
        .and_then(|p| p.timezone.clone())
        .unwrap_or_else(|| vehicle.price_zone.time_zone().name().to_owned());
    ChargePolicyOutputSchema {
        metadata: ChargePolicyOutputMetadata {
            electric_vehicle_id: vehicle.id,
            user_id: vehicle.user_id,
            error: None,
        },
        data: ChargeWeeklyPolicySchema {
            mon: day(0),
            tue: day(1),
            wed: day(2),
            thu: day(3),
            fri: day(4),
            sat: day(5),
            sun: day(6),
            timezone,
        },
    }
}

fn parse_day(f: &mut Fields, key: &str, object: Map<String, Value>) -> Option<DailyChargeTarget> {
    let mut inner = Fields::new(JsonObject(object), ChargeDailyPolicySchema::FIELDS, &[]);
    let target = parse_day_fields(&mut inner);
    f.nested_errors(key, inner.into_errors());
    target
}

fn parse_day_fields(inner: &mut Fields) -> Option<DailyChargeTarget> {
    let percentage = inner.int("charge_percentage", 0, 100);
    let deadline = inner.time_of_day("charge_deadline");
    let percentage = inner.required("charge_percentage", percentage);
    let deadline = inner.required("charge_deadline", deadline);
    Some(DailyChargeTarget {
        // The range was checked when parsing.
        charge_percentage: i32::try_from(percentage?).ok()?,
        charge_deadline: deadline?,
    })
}

/// `timezone`: an IANA name, kept in its canonical spelling; `null` or absent: none of its own.
fn parse_time_zone(f: &mut Fields) -> Option<String> {
    let Patch::Set(name) = f.string("timezone", MAX_TIME_ZONE_LEN, false) else {
        return None;
    };
    let canonical = canonical_time_zone(&name);
    if canonical.is_none() {
        f.error(
            "timezone",
            "value_error",
            format!("Unknown time zone {name:?}: use an IANA name such as Europe/Vienna"),
        );
    }
    canonical
}

fn parse_policy(f: &mut Fields) -> WeeklyChargePolicy {
    for key in ENVELOPE {
        if f.has_key(key) {
            f.error(
                key,
                "extra_forbidden",
                "Send the policy itself (the `data` object of a GET) as the body, not the \
                 {metadata, data} envelope",
            );
        }
    }
    let mut days: [Option<DailyChargeTarget>; 7] = Default::default();
    for (slot, key) in days.iter_mut().zip(WEEKDAYS) {
        *slot = match f.object(key) {
            Patch::Set(object) => parse_day(f, key, object),
            Patch::Null | Patch::Absent => None,
        };
    }
    let timezone = parse_time_zone(f);
    WeeklyChargePolicy { days, timezone }
}

/// The policy a PUT body describes, or every invalid field.
fn read_policy(body: JsonObject) -> ApiResult<WeeklyChargePolicy> {
    let mut f = Fields::new(body, ChargeWeeklyPolicySchema::FIELDS, ENVELOPE);
    let policy = parse_policy(&mut f);
    f.finish()?;
    Ok(policy)
}

/// Replaces the vehicle's weekly policy; a change stamps `charge_policy_last_updated_at`.
/// `is_charge_policy_enabled` is left as it is.
fn apply_policy(vehicle: &mut VehicleRecord, policy: WeeklyChargePolicy, now: DateTime<Utc>) {
    let settings = &mut vehicle.settings;
    if settings.weekly_charge_policy.as_ref() != Some(&policy) {
        settings.charge_policy_last_updated_at = Some(now);
    }
    settings.weekly_charge_policy = Some(policy);
    vehicle.updated_at = now;
}

/// Get the vehicle's weekly charge policy.
///
/// A vehicle whose policy was never set answers every day `null` and the time zone of its price
/// zone; while none is stored, an enabled policy (`is_charge_policy_enabled`) means the daily
/// fields (`minimum_charge_limit` by `charge_deadline_at`). `metadata.error` is always `null`.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/charge-policy",
    tag = "User Electric Vehicles", params(VehiclePath),
    responses((status = 200, body = ChargePolicyOutputSchema)),
    security(("bearer" = [])))]
pub async fn get_charge_policy(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
) -> ApiResult<Json<ChargePolicyOutputSchema>> {
    let vehicle = state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    Ok(Json(policy_out(&vehicle)))
}

/// Set the vehicle's weekly charge policy.
///
/// The body is the policy object itself (the `data` of a GET), not the `{metadata, data}`
/// envelope. It replaces the whole policy: a day that is absent or `null` has no deadline, and
/// `timezone` absent or `null` means the price zone's time zone. `charge_deadline` accepts
/// `HH:MM` or `HH:MM:SS`. Unknown keys are a 422 naming them. A change stamps
/// `charge_policy_last_updated_at`; the policy is used only while the vehicle's
/// `is_charge_policy_enabled` is true (set it with the vehicle's PUT), and the worker re-plans at
/// once. Answers the policy as stored, like the GET.
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/charge-policy",
    tag = "User Electric Vehicles", params(VehiclePath), request_body = ChargeWeeklyPolicySchema,
    responses((status = 200, body = ChargePolicyOutputSchema)),
    security(("bearer" = [])))]
pub async fn update_charge_policy(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    body: JsonObject,
) -> ApiResult<Json<ChargePolicyOutputSchema>> {
    let now = state.now();
    // Someone else's (or no) vehicle is a 404 before the body is read, as for the vehicle's PUT.
    state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    let policy = read_policy(body)?;
    let updated = state
        .store()
        .update_vehicle(
            access.org,
            path.user_id,
            path.electric_vehicle_id,
            Box::new(move |v| {
                apply_policy(v, policy, now);
                Ok(())
            }),
        )
        .await?;
    Ok(Json(policy_out(&updated)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::declaration::{all_null, properties};
    use serde_json::json;

    fn read(body: Value) -> Result<WeeklyChargePolicy, Vec<String>> {
        let Value::Object(map) = body else {
            panic!("not an object")
        };
        read_policy(JsonObject(map)).map_err(|e| match e {
            crate::error::ApiError::Invalid(errors) => errors
                .iter()
                .map(|e| {
                    e.loc
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .collect(),
            other => panic!("{other}"),
        })
    }

    #[test]
    fn the_declared_fields_are_documented_and_read() {
        assert_eq!(
            properties::<ChargeWeeklyPolicySchema>(),
            ChargeWeeklyPolicySchema::FIELDS
        );
        assert_eq!(
            properties::<ChargeDailyPolicySchema>(),
            ChargeDailyPolicySchema::FIELDS
        );
        assert_eq!(&ChargeWeeklyPolicySchema::FIELDS[..7], &WEEKDAYS[..]);
        let mut f = Fields::new(
            all_null(ChargeWeeklyPolicySchema::FIELDS),
            ChargeWeeklyPolicySchema::FIELDS,
            ENVELOPE,
        );
        parse_policy(&mut f);
        assert_eq!(f.unread(), Vec::<&str>::new());
        let mut f = Fields::new(
            all_null(ChargeDailyPolicySchema::FIELDS),
            ChargeDailyPolicySchema::FIELDS,
            &[],
        );
        parse_day_fields(&mut f);
        assert_eq!(f.unread(), Vec::<&str>::new());
    }

    #[test]
    fn a_body_is_read_into_the_stored_policy() {
        let policy = read(json!({
            "mon": {"charge_percentage": 80, "charge_deadline": "07:00"},
            "sat": {"charge_percentage": 100, "charge_deadline": "09:30:15"},
            "sun": null,
            "timezone": "Europe/London",
        }))
        .unwrap();
        assert_eq!(
            policy.days[0],
            Some(DailyChargeTarget {
                charge_percentage: 80,
                charge_deadline: NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
            })
        );
        assert_eq!(
            policy.days[5].as_ref().map(|d| d.charge_deadline),
            NaiveTime::from_hms_opt(9, 30, 15)
        );
        assert!(policy.days[1..5].iter().all(Option::is_none));
        assert_eq!(policy.days[6], None);
        assert_eq!(policy.timezone.as_deref(), Some("Europe/London"));
        assert_eq!(read(json!({})).unwrap(), WeeklyChargePolicy::default());
    }

    #[test]
    fn every_invalid_field_is_named() {
        let mut errors = read(json!({
            "tue": {"charge_percentage": 101, "charge_deadline": "25:00"},
            "wed": {"charge_percentage": 50},
            "thu": {"charge_percentage": 50, "charge_deadline": "07:00", "extra": 1},
            "fri": 80,
            "timezone": "Mars/Olympus_Mons",
            "holiday": null,
        }))
        .unwrap_err();
        errors.sort();
        assert_eq!(
            errors,
            vec![
                "body.fri",
                "body.holiday",
                "body.thu.extra",
                "body.timezone",
                "body.tue.charge_deadline",
                "body.tue.charge_percentage",
                "body.wed.charge_deadline",
            ]
        );
        let errors = read(json!({"metadata": {}, "data": {}})).unwrap_err();
        assert_eq!(errors, vec!["body.metadata", "body.data"]);
    }
}
