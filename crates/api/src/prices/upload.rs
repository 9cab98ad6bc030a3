//! `PATCH /org/{org_id}/trading/dayahead/prices`: a partner's own day-ahead prices, checked
//! point by point and stored for its organisation only.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use voltplan_core::price::{PRICE_LIMIT_EUR_MWH, is_plausible_price, resolution_duration};
use voltplan_core::time::{LocalInstant, local_to_utc, resolve_local};
use voltplan_core::validation::{FieldError, LocPart};
use voltplan_core::{PriceSlot, PriceZone, Resolution};

use super::{on_grid, zone_error};
use crate::auth::OrgAccess;
use crate::body::{JsonObject, write_body};
use crate::error::{ApiError, ApiResult};
use crate::params::OrgPath;
use crate::state::AppState;

/// Source recorded for prices uploaded through the API.
pub const UPLOAD_SOURCE: &str = "upload";

/// At most this many validation errors are reported; a wholly wrong upload of thousands of points
/// would otherwise answer with a body larger than the request.
const MAX_REPORTED_ERRORS: usize = 50;

write_body! {
    pub struct PriceUploadMetadata {
        #[schema(value_type = crate::schemas::PriceZone)]
        price_zone: String,
        /// IANA time zone, e.g. `Europe/Vienna`; defaults to the price zone's own.
        timezone_override: Option<String>,
    }
}

write_body! {
    pub struct PricePointWrite {
        /// Start of the slot, RFC 3339 (`2025-11-01T23:00:00Z`).
        timestamp: DateTime<Utc>,
        /// EUR/MWh (the zone's currency per MWh), between -10000 and 10000; negative prices are fine.
        #[schema(minimum = -10000.0, maximum = 10000.0)]
        price: f64,
    }
}

write_body! {
    pub struct PriceUploadWrite {
        metadata: PriceUploadMetadata,
        data: Vec<PricePointWrite>,
    }
}

/// `Unknown field` errors for the keys of `object` that `fields` does not list.
fn unknown_keys<'a>(
    object: &'a Map<String, Value>,
    fields: &'a [&str],
    loc: impl Fn(&str) -> Vec<LocPart> + 'a,
) -> impl Iterator<Item = FieldError> + 'a {
    object
        .keys()
        .filter(|key| !fields.contains(&key.as_str()))
        .map(move |key| {
            FieldError::new(
                loc(key),
                "extra_forbidden",
                format!("Unknown field {key:?}"),
            )
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    Success,
    Existing,
    /// Part of the Podero enum; never returned by Voltplan (PATCH creates and updates).
    #[allow(dead_code)]
    NonExisting,
    Late,
    Empty,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PriceUploadOut {
    pub state: UploadState,
    pub next_load_curve_calculation: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// A problem of item `index` of `data`, at `field` (or the item itself).
fn item_err(index: usize, field: Option<&str>, kind: &str, msg: impl Into<String>) -> FieldError {
    let mut loc = vec![LocPart::from("body"), "data".into(), index.into()];
    loc.extend(field.map(LocPart::from));
    FieldError::new(loc, kind, msg)
}

/// Upload or update day-ahead prices for the organisation.
///
/// Voltplan's rules (the Podero reference leaves them open):
///
/// * `metadata.price_zone` is required. `metadata.timezone_override` (IANA name, e.g.
///   `Europe/Vienna`) replaces the zone's own time zone for two things: timestamps written
///   without an offset are read as wall-clock time in it, and it decides the delivery day.
/// * `data[].timestamp` is the start of a slot, RFC 3339 (`2025-11-01T23:00:00Z`). Each slot is
///   one step of the zone's native resolution (15 minutes; 1 hour for `AT_HOURLY`, `CH`,
///   `IT_PUN`, `UK`) and must start on that grid in UTC. Timestamps must be strictly ascending
///   with no gaps. Any contiguous run is accepted: whole days are not required, and DST days have
///   92 or 100 quarter-hours, not 96.
/// * `data[].price` is a JSON number in EUR/MWh (the zone's currency per MWh); negative prices
///   are accepted.
/// * Every problem is reported at once (up to 50) as a 422 whose `loc` names the field and the
///   index, e.g. `["body","data",3,"timestamp"]`.
///
/// States:
///
/// * `success`: stored. The prices are stored for this organisation only and take precedence
///   over public (ENTSO-E) prices for the same slots, for this organisation's planning and reads.
/// * `existing`: every slot was already stored with the same price; nothing changed.
/// * `empty`: `data` is empty; nothing stored.
/// * `late`: the delivery day of the first slot (local midnight in the zone's or the override's
///   time zone) has already started; nothing is stored and `error` says why.
/// * `non_existing` is never returned: it belongs to a create/update split Voltplan does not
///   make (PATCH creates and updates).
///
/// `next_load_curve_calculation` is the time the prices were accepted: Voltplan replans when
/// prices change, there is no later batch calculation to wait for. It is null when nothing was
/// stored.
#[utoipa::path(patch, path = "/api/partners/v2.0/org/{org_id}/trading/dayahead/prices", tag = "Trading",
    params(OrgPath), request_body = PriceUploadWrite,
    responses((status = 200, body = PriceUploadOut)),
    security(("bearer" = [])))]
pub async fn upload_prices(
    State(state): State<AppState>,
    access: OrgAccess,
    JsonObject(mut body): JsonObject,
) -> ApiResult<Json<PriceUploadOut>> {
    let mut errors: Vec<FieldError> = unknown_keys(&body, PriceUploadWrite::FIELDS, |key| {
        vec!["body".into(), key.into()]
    })
    .collect();
    let metadata = parse_metadata(body.remove("metadata"), &mut errors);
    let data = match body.remove("data") {
        Some(Value::Array(items)) => Some(items),
        None | Some(Value::Null) => {
            errors.push(FieldError::at(
                &["body", "data"],
                "missing",
                "Field required",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::at(
                &["body", "data"],
                "list_type",
                "Input should be a valid list",
            ));
            None
        }
    };
    let (Some((zone, tz_name)), Some(data)) = (metadata, data) else {
        return Err(ApiError::Invalid(errors));
    };
    let zone_tz = zone.info().time_zone;
    // The type of `zone_tz` (chrono_tz::Tz) is inferred: this crate does not name chrono-tz.
    let tz = match &tz_name {
        Some(name) => name.parse().unwrap_or_else(|_| {
            errors.push(FieldError::at(
                &["body", "metadata", "timezone_override"],
                "value_error",
                format!("Unknown time zone {name:?}; expected an IANA name such as Europe/Vienna"),
            ));
            zone_tz
        }),
        None => zone_tz,
    };
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    if data.is_empty() {
        return Ok(Json(PriceUploadOut {
            state: UploadState::Empty,
            next_load_curve_calculation: None,
            error: None,
        }));
    }
    let slots = parse_points(&data, &tz, zone)?;
    let Some(first) = slots.first() else {
        return Err(ApiError::internal("a non-empty upload parsed to no slots"));
    };

    let now = state.now();
    let day_start = delivery_day_start(first.start, &tz);
    if now >= day_start {
        return Ok(Json(PriceUploadOut {
            state: UploadState::Late,
            next_load_curve_calculation: None,
            error: Some(format!(
                "The delivery day starting {} has already begun; upload prices before it starts",
                day_start.to_rfc3339()
            )),
        }));
    }
    let summary = state
        .store()
        .upsert_prices(zone, Some(access.org), UPLOAD_SOURCE, &slots, now)
        .await?;
    Ok(Json(PriceUploadOut {
        state: if summary.written == 0 {
            UploadState::Existing
        } else {
            UploadState::Success
        },
        next_load_curve_calculation: Some(now),
        error: None,
    }))
}

/// The price zone and the optional time-zone override.
fn parse_metadata(
    value: Option<Value>,
    errors: &mut Vec<FieldError>,
) -> Option<(PriceZone, Option<String>)> {
    let mut metadata: Map<String, Value> = match value {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => {
            errors.push(FieldError::at(
                &["body", "metadata"],
                "missing",
                "Field required",
            ));
            return None;
        }
        Some(_) => {
            errors.push(FieldError::at(
                &["body", "metadata"],
                "model_type",
                "Input should be an object with price_zone and timezone_override",
            ));
            return None;
        }
    };
    errors.extend(unknown_keys(
        &metadata,
        PriceUploadMetadata::FIELDS,
        |key| vec!["body".into(), "metadata".into(), key.into()],
    ));
    let zone = match metadata.remove("price_zone") {
        Some(Value::String(name)) => match name.parse::<PriceZone>() {
            Ok(zone) => Some(zone),
            Err(_) => {
                errors.push(zone_error(&["body", "metadata", "price_zone"], &name));
                None
            }
        },
        None | Some(Value::Null) => {
            errors.push(FieldError::at(
                &["body", "metadata", "price_zone"],
                "missing",
                "Field required",
            ));
            None
        }
        Some(_) => {
            errors.push(zone_error(&["body", "metadata", "price_zone"], ""));
            None
        }
    };
    let tz_name = match metadata.remove("timezone_override") {
        None | Some(Value::Null) => None,
        // Podero clients send "" for "no override".
        Some(Value::String(name)) if name.trim().is_empty() => None,
        Some(Value::String(name)) => Some(name.trim().to_owned()),
        Some(_) => {
            errors.push(FieldError::at(
                &["body", "metadata", "timezone_override"],
                "string_type",
                "Input should be a valid string",
            ));
            None
        }
    };
    zone.map(|zone| (zone, tz_name))
}

/// An RFC 3339 instant, or a wall-clock time without offset in `tz`.
fn parse_timestamp<Z: TimeZone>(text: &str, tz: &Z) -> Result<DateTime<Utc>, String> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(instant.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M"))
        .map_err(|_| {
            "Input should be an RFC 3339 date-time, e.g. 2025-11-01T23:00:00Z".to_owned()
        })?;
    // A price belongs to one slot: a wall-clock time that is not exactly one instant is refused,
    // not resolved by `local_to_utc`'s rule as deadlines are.
    match resolve_local(naive, tz) {
        LocalInstant::Unique(instant) => Ok(instant),
        LocalInstant::Repeated { .. } => Err(format!(
            "{text} occurs twice in the upload's time zone (autumn clock change); add a UTC offset"
        )),
        LocalInstant::Skipped { .. } => Err(format!(
            "{text} does not exist in the upload's time zone (spring clock change)"
        )),
    }
}

/// Parses and checks `data`: every item, then the series (grid, order, gaps). All errors at once.
fn parse_points<Z: TimeZone>(
    data: &[Value],
    tz: &Z,
    zone: PriceZone,
) -> Result<Vec<PriceSlot>, ApiError> {
    let resolution = zone.info().resolution;
    let step = resolution_duration(resolution);
    let mut errors = Vec::new();
    let mut slots = Vec::with_capacity(data.len());
    let mut previous: Option<DateTime<Utc>> = None;
    for (index, item) in data.iter().enumerate() {
        if errors.len() >= MAX_REPORTED_ERRORS {
            break;
        }
        let Some(point) = item.as_object() else {
            errors.push(item_err(
                index,
                None,
                "model_type",
                "Input should be an object with timestamp and price",
            ));
            previous = previous.map(|p| p + step);
            continue;
        };
        errors.extend(unknown_keys(point, PricePointWrite::FIELDS, move |key| {
            vec!["body".into(), "data".into(), index.into(), key.into()]
        }));
        let timestamp = match point.get("timestamp") {
            Some(Value::String(text)) => match parse_timestamp(text, tz) {
                Ok(instant) => Some(instant),
                Err(msg) => {
                    errors.push(item_err(index, Some("timestamp"), "datetime_parsing", msg));
                    None
                }
            },
            None | Some(Value::Null) => {
                errors.push(item_err(
                    index,
                    Some("timestamp"),
                    "missing",
                    "Field required",
                ));
                None
            }
            Some(_) => {
                errors.push(item_err(
                    index,
                    Some("timestamp"),
                    "datetime_type",
                    "Input should be a string",
                ));
                None
            }
        };
        let price = match point.get("price") {
            Some(Value::Number(n)) => match n.as_f64().filter(|p| is_plausible_price(*p)) {
                Some(price) => Some(price),
                None => {
                    errors.push(item_err(
                        index,
                        Some("price"),
                        "less_than_equal",
                        format!(
                            "Input should be a number between -{PRICE_LIMIT_EUR_MWH} and {PRICE_LIMIT_EUR_MWH} (per MWh)"
                        ),
                    ));
                    None
                }
            },
            None | Some(Value::Null) => {
                errors.push(item_err(index, Some("price"), "missing", "Field required"));
                None
            }
            Some(_) => {
                errors.push(item_err(
                    index,
                    Some("price"),
                    "float_type",
                    "Input should be a valid number",
                ));
                None
            }
        };
        let Some(start) = timestamp else {
            // Assume the unreadable timestamp was the expected one, so that the next item is not
            // also reported as a gap.
            previous = previous.map(|p| p + step);
            continue;
        };
        if !on_grid(start, step) {
            errors.push(item_err(
                index,
                Some("timestamp"),
                "alignment",
                format!(
                    "{} is not on the {}-minute grid of {zone} (slots start at {} UTC)",
                    start.to_rfc3339(),
                    resolution.minutes(),
                    if resolution == Resolution::Hour {
                        ":00"
                    } else {
                        ":00, :15, :30 or :45"
                    }
                ),
            ));
        } else if let Some(previous) = previous {
            if start <= previous {
                errors.push(item_err(
                    index,
                    Some("timestamp"),
                    "chronological",
                    format!(
                        "Timestamps must be strictly ascending: {} is not after {}",
                        start.to_rfc3339(),
                        previous.to_rfc3339()
                    ),
                ));
            } else if start != previous + step {
                errors.push(item_err(
                    index,
                    Some("timestamp"),
                    "gap",
                    format!(
                        "Gap: expected {} after {}, got {}",
                        (previous + step).to_rfc3339(),
                        previous.to_rfc3339(),
                        start.to_rfc3339()
                    ),
                ));
            }
        }
        previous = Some(start);
        if let Some(price) = price {
            slots.push(PriceSlot {
                start,
                end: start + step,
                price_eur_mwh: price,
            });
        }
    }
    if errors.is_empty() {
        Ok(slots)
    } else {
        Err(ApiError::Invalid(errors))
    }
}

/// Local midnight of the day `first` falls on, in `tz`; where a clock change skips midnight, the
/// day starts when the clocks jump.
fn delivery_day_start<Z: TimeZone>(first: DateTime<Utc>, tz: &Z) -> DateTime<Utc> {
    let local_midnight = first
        .with_timezone(tz)
        .date_naive()
        .and_time(NaiveTime::MIN);
    local_to_utc(local_midnight, tz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_delivery_day_starts_at_local_midnight_or_when_the_clocks_jump_over_it() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            delivery_day_start(utc("2026-03-29T10:00:00Z"), &berlin),
            utc("2026-03-28T23:00:00Z")
        );
        assert_eq!(
            delivery_day_start(utc("2026-10-25T10:00:00Z"), &berlin),
            utc("2026-10-24T22:00:00Z")
        );
        // Santiago skips 2024-09-08 00:00–01:00: that day starts at the jump, 04:00 UTC.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        assert_eq!(
            delivery_day_start(utc("2024-09-08T15:00:00Z"), &santiago),
            utc("2024-09-08T04:00:00Z")
        );
    }

    #[test]
    fn wall_clock_timestamps_must_name_one_instant() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            parse_timestamp("2026-03-29T01:45", &berlin),
            Ok(utc("2026-03-29T00:45:00Z"))
        );
        assert!(
            parse_timestamp("2026-03-29T02:15", &berlin)
                .is_err_and(|e| e.contains("does not exist"))
        );
        assert!(parse_timestamp("2026-10-25T02:15", &berlin).is_err_and(|e| e.contains("twice")));
        assert_eq!(
            parse_timestamp("2026-10-25T02:15:00+01:00", &berlin),
            Ok(utc("2026-10-25T01:15:00Z"))
        );
    }
}
