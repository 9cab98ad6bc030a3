//! Day-ahead prices: the Podero-compatible upload (`PATCH …/trading/dayahead/prices`) and a read
//! endpoint that is Voltplan's own extension (`GET /api/partners/v2.0/prices/{price_zone}`).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use voltplan_core::price::{find_gaps, resample, resolution_duration};
use voltplan_core::validation::FieldError;
use voltplan_core::{PriceSlot, PriceZone, Resolution};
use voltplan_store::{OrgScope, StoredPrice};

use crate::auth::{OrgAccess, Principal};
use crate::body::JsonObject;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, OrgPath, Q};
use crate::state::AppState;

/// Source recorded for prices uploaded through the API.
pub const UPLOAD_SOURCE: &str = "upload";

/// Longest window the read endpoint serves: a month of quarter-hours is ~3,000 points.
const MAX_WINDOW_DAYS: i64 = 31;

/// At most this many validation errors are reported; a wholly wrong upload of thousands of points
/// would otherwise answer with a body larger than the request.
const MAX_REPORTED_ERRORS: usize = 50;

#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only: the body is read field by field
pub struct PriceUploadMetadata {
    #[schema(value_type = crate::schemas::PriceZone)]
    price_zone: String,
    /// IANA time zone, e.g. `Europe/Vienna`; defaults to the price zone's own.
    timezone_override: Option<String>,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PricePointWrite {
    /// Start of the slot, RFC 3339 (`2025-11-01T23:00:00Z`).
    timestamp: DateTime<Utc>,
    /// EUR/MWh (the zone's currency per MWh); negative prices are fine.
    price: f64,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PriceUploadWrite {
    metadata: PriceUploadMetadata,
    data: Vec<PricePointWrite>,
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

/// One element of an error location: a field name or a list index. Indexes are JSON numbers, as
/// in Podero's (pydantic's) 422 bodies: `["body","data",3,"timestamp"]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum LocPart {
    Field(String),
    Index(usize),
}

impl From<&str> for LocPart {
    fn from(field: &str) -> Self {
        LocPart::Field(field.to_owned())
    }
}

impl From<usize> for LocPart {
    fn from(index: usize) -> Self {
        LocPart::Index(index)
    }
}

/// A validation problem of the upload body, shaped like [`FieldError`] but with numeric indexes
/// (`FieldError::loc` holds strings only).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    loc: Vec<LocPart>,
    msg: String,
    #[serde(rename = "type")]
    kind: String,
}

fn err(loc: &[&str], kind: &str, msg: impl Into<String>) -> Problem {
    Problem {
        loc: loc.iter().map(|part| LocPart::from(*part)).collect(),
        msg: msg.into(),
        kind: kind.to_owned(),
    }
}

/// A problem of item `index` of `data`, at `field` (or the item itself).
fn item_err(index: usize, field: Option<&str>, kind: &str, msg: impl Into<String>) -> Problem {
    let mut loc = vec![
        LocPart::from("body"),
        LocPart::from("data"),
        LocPart::from(index),
    ];
    loc.extend(field.map(LocPart::from));
    Problem {
        loc,
        msg: msg.into(),
        kind: kind.to_owned(),
    }
}

/// Why an upload was refused: a 422 with indexed locations, or any other API error.
#[derive(Debug)]
pub enum UploadError {
    Invalid(Vec<Problem>),
    Api(ApiError),
}

impl From<ApiError> for UploadError {
    fn from(error: ApiError) -> Self {
        UploadError::Api(error)
    }
}

impl From<voltplan_store::StoreError> for UploadError {
    fn from(error: voltplan_store::StoreError) -> Self {
        UploadError::Api(error.into())
    }
}

impl IntoResponse for UploadError {
    fn into_response(self) -> Response {
        match self {
            UploadError::Invalid(problems) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({ "detail": problems })),
            )
                .into_response(),
            UploadError::Api(error) => error.into_response(),
        }
    }
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
    responses((status = 200, body = PriceUploadOut), (status = 401), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn upload_prices(
    State(state): State<AppState>,
    access: OrgAccess,
    JsonObject(mut body): JsonObject,
) -> Result<Json<PriceUploadOut>, UploadError> {
    let mut errors = Vec::new();
    for key in body.keys() {
        if key != "metadata" && key != "data" {
            errors.push(err(
                &["body", key],
                "extra_forbidden",
                format!("Unknown field {key:?}"),
            ));
        }
    }
    let metadata = parse_metadata(body.remove("metadata"), &mut errors);
    let data = match body.remove("data") {
        Some(Value::Array(items)) => Some(items),
        None | Some(Value::Null) => {
            errors.push(err(&["body", "data"], "missing", "Field required"));
            None
        }
        Some(_) => {
            errors.push(err(
                &["body", "data"],
                "list_type",
                "Input should be a valid list",
            ));
            None
        }
    };
    let (Some((zone, tz_name)), Some(data)) = (metadata, data) else {
        return Err(UploadError::Invalid(errors));
    };
    let zone_tz = zone.info().time_zone;
    // The type of `zone_tz` (chrono_tz::Tz) is inferred: this crate does not name chrono-tz.
    let tz = match &tz_name {
        Some(name) => name.parse().unwrap_or_else(|_| {
            errors.push(err(
                &["body", "metadata", "timezone_override"],
                "value_error",
                format!("Unknown time zone {name:?}; expected an IANA name such as Europe/Vienna"),
            ));
            zone_tz
        }),
        None => zone_tz,
    };
    if !errors.is_empty() {
        return Err(UploadError::Invalid(errors));
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
        return Err(ApiError::internal("a non-empty upload parsed to no slots").into());
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
    errors: &mut Vec<Problem>,
) -> Option<(PriceZone, Option<String>)> {
    let mut metadata: Map<String, Value> = match value {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => {
            errors.push(err(&["body", "metadata"], "missing", "Field required"));
            return None;
        }
        Some(_) => {
            errors.push(err(
                &["body", "metadata"],
                "model_type",
                "Input should be an object with price_zone and timezone_override",
            ));
            return None;
        }
    };
    for key in metadata.keys() {
        if key != "price_zone" && key != "timezone_override" {
            errors.push(err(
                &["body", "metadata", key],
                "extra_forbidden",
                format!("Unknown field {key:?}"),
            ));
        }
    }
    let zone = match metadata.remove("price_zone") {
        Some(Value::String(name)) => match name.parse::<PriceZone>() {
            Ok(zone) => Some(zone),
            Err(_) => {
                errors.push(zone_error(&["body", "metadata", "price_zone"], &name).into());
                None
            }
        },
        None | Some(Value::Null) => {
            errors.push(err(
                &["body", "metadata", "price_zone"],
                "missing",
                "Field required",
            ));
            None
        }
        Some(_) => {
            errors.push(zone_error(&["body", "metadata", "price_zone"], "").into());
            None
        }
    };
    let tz_name = match metadata.remove("timezone_override") {
        None | Some(Value::Null) => None,
        // Podero clients send "" for "no override".
        Some(Value::String(name)) if name.trim().is_empty() => None,
        Some(Value::String(name)) => Some(name.trim().to_owned()),
        Some(_) => {
            errors.push(err(
                &["body", "metadata", "timezone_override"],
                "string_type",
                "Input should be a valid string",
            ));
            None
        }
    };
    zone.map(|zone| (zone, tz_name))
}

impl From<FieldError> for Problem {
    fn from(error: FieldError) -> Self {
        Problem {
            loc: error.loc.into_iter().map(LocPart::Field).collect(),
            msg: error.msg,
            kind: error.kind,
        }
    }
}

fn zone_error(loc: &[&str], given: &str) -> FieldError {
    let names: Vec<&str> = PriceZone::ALL.iter().map(|z| z.as_str()).collect();
    FieldError::at(
        loc,
        "enum",
        format!(
            "Unknown price zone {given:?}; expected one of: {}",
            names.join(", ")
        ),
    )
}

fn on_grid(instant: DateTime<Utc>, step: Duration) -> bool {
    instant.timestamp_subsec_nanos() == 0
        && instant.timestamp().rem_euclid(step.num_seconds().max(1)) == 0
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
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(instant) => Ok(instant.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(_, _) => Err(format!(
            "{text} occurs twice in the upload's time zone (autumn clock change); add a UTC offset"
        )),
        chrono::LocalResult::None => Err(format!(
            "{text} does not exist in the upload's time zone (spring clock change)"
        )),
    }
}

/// Parses and checks `data`: every item, then the series (grid, order, gaps). All errors at once.
fn parse_points<Z: TimeZone>(
    data: &[Value],
    tz: &Z,
    zone: PriceZone,
) -> Result<Vec<PriceSlot>, UploadError> {
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
        for key in point.keys() {
            if key != "timestamp" && key != "price" {
                errors.push(item_err(
                    index,
                    Some(key),
                    "extra_forbidden",
                    format!("Unknown field {key:?}"),
                ));
            }
        }
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
            Some(Value::Number(n)) => match n.as_f64().filter(|p| p.is_finite()) {
                Some(price) => Some(price),
                None => {
                    errors.push(item_err(
                        index,
                        Some("price"),
                        "finite_number",
                        "Input should be a finite number",
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
        Err(UploadError::Invalid(errors))
    }
}

/// Local midnight of the day `first` falls on, in `tz`.
fn delivery_day_start<Z: TimeZone>(first: DateTime<Utc>, tz: &Z) -> DateTime<Utc> {
    let local_midnight = first
        .with_timezone(tz)
        .date_naive()
        .and_time(chrono::NaiveTime::MIN);
    // Where midnight is skipped by a clock change the day starts at the first instant after it;
    // `first` is a safe stand-in (the upload starts inside that day).
    tz.from_local_datetime(&local_midnight)
        .earliest()
        .map_or(first, |midnight| midnight.with_timezone(&Utc))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ZonePath {
    /// A Podero price zone, e.g. `DE_LU`.
    pub price_zone: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PriceWindowQuery {
    /// Window start (inclusive), RFC 3339, e.g. `2025-11-01T23:00:00Z`.
    #[param(required = true, value_type = String, format = DateTime)]
    pub from: Option<String>,
    /// Window end (exclusive), RFC 3339; at most 31 days after `from`.
    #[param(required = true, value_type = String, format = DateTime)]
    pub to: Option<String>,
    /// `15MIN` or `1HOUR`; defaults to the zone's native resolution.
    pub resolution: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PricePointOut {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub price_eur_mwh: f64,
    /// `entsoe`, `upload` (your organisation's), `file:<name>`, or `mixed` when a resampled
    /// point combines several sources.
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GapOut {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PriceSeriesOut {
    #[schema(value_type = crate::schemas::PriceZone)]
    pub zone: PriceZone,
    /// `15MIN` or `1HOUR`.
    pub resolution: String,
    pub currency: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub points: Vec<PricePointOut>,
    /// Parts of `[from, to)` without a price.
    pub gaps: Vec<GapOut>,
}

fn resolution_name(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::QuarterHour => "15MIN",
        Resolution::Hour => "1HOUR",
    }
}

fn parse_query_time(
    value: Option<&str>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let Some(text) = value else {
        errors.push(FieldError::at(
            &["query", name],
            "missing",
            "Field required",
        ));
        return None;
    };
    // An unencoded `+01:00` offset arrives as a space after form decoding.
    let repaired = text.trim().replace(' ', "+");
    match DateTime::parse_from_rfc3339(&repaired) {
        Ok(instant) => Some(instant.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::at(
                &["query", name],
                "datetime_parsing",
                "Input should be an RFC 3339 date-time, e.g. 2025-11-01T23:00:00Z",
            ));
            None
        }
    }
}

/// Day-ahead prices of a zone for a window (Voltplan extension, not in the Podero API).
///
/// Returns public prices with the calling organisation's own uploads (PATCH
/// `…/trading/dayahead/prices`) taking precedence where they overlap; `source` says where each
/// point came from. `from` is inclusive, `to` exclusive, the window at most 31 days. Points are
/// the slots overlapping the window, so the first may start before `from`. With a `resolution`
/// other than the stored one, quarter-hours repeat their hour's price and hours are the mean of
/// their four quarter-hours; an hour with a missing quarter is left out and shows in `gaps`.
/// An unknown zone is a 422 naming it.
#[utoipa::path(get, path = "/api/partners/v2.0/prices/{price_zone}", tag = "Prices",
    params(ZonePath, PriceWindowQuery),
    responses((status = 200, body = PriceSeriesOut), (status = 401), (status = 422)),
    security(("bearer" = [])))]
pub async fn read_prices(
    State(state): State<AppState>,
    principal: Principal,
    Ids(path): Ids<ZonePath>,
    Q(query): Q<PriceWindowQuery>,
) -> ApiResult<Json<PriceSeriesOut>> {
    let mut errors = Vec::new();
    let zone = match path.price_zone.parse::<PriceZone>() {
        Ok(zone) => Some(zone),
        Err(_) => {
            errors.push(zone_error(&["path", "price_zone"], &path.price_zone));
            None
        }
    };
    let from = parse_query_time(query.from.as_deref(), "from", &mut errors);
    let to = parse_query_time(query.to.as_deref(), "to", &mut errors);
    let resolution = match query.resolution.as_deref() {
        None => zone.map(|zone| zone.info().resolution),
        Some("15MIN") => Some(Resolution::QuarterHour),
        Some("1HOUR") => Some(Resolution::Hour),
        Some(_) => {
            errors.push(FieldError::at(
                &["query", "resolution"],
                "enum",
                "Input should be 15MIN or 1HOUR",
            ));
            None
        }
    };
    if let (Some(from), Some(to)) = (from, to) {
        if to <= from {
            errors.push(FieldError::at(
                &["query", "to"],
                "value_error",
                "to must be after from",
            ));
        } else if to - from > Duration::days(MAX_WINDOW_DAYS) {
            errors.push(FieldError::at(
                &["query", "to"],
                "value_error",
                format!("The window may span at most {MAX_WINDOW_DAYS} days"),
            ));
        }
    }
    let (Some(zone), Some(from), Some(to), Some(resolution), true) =
        (zone, from, to, resolution, errors.is_empty())
    else {
        return Err(ApiError::Invalid(errors));
    };

    let stored = voltplan_store::read_zone_prices(
        state.store(),
        zone,
        Some(OrgScope::new(principal.org_id)),
        from,
        to,
    )
    .await?;
    let points: Vec<PricePointOut> = at_resolution(&stored, resolution)
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|point| point.end > from && point.start < to)
        .collect();
    let slots: Vec<PriceSlot> = points
        .iter()
        .map(|point| PriceSlot {
            start: point.start,
            end: point.end,
            price_eur_mwh: point.price_eur_mwh,
        })
        .collect();
    let gaps = find_gaps(&slots, from, to)
        .into_iter()
        .map(|(start, end)| GapOut { start, end })
        .collect();
    Ok(Json(PriceSeriesOut {
        zone,
        resolution: resolution_name(resolution).to_owned(),
        currency: zone.info().currency.to_owned(),
        from,
        to,
        points,
        gaps,
    }))
}

/// The stored points at `resolution`, each with its source (`mixed` when a resampled point is
/// made of several).
fn at_resolution(
    stored: &[StoredPrice],
    resolution: Resolution,
) -> Result<Vec<PricePointOut>, voltplan_core::price::PriceSeriesError> {
    let step = resolution_duration(resolution);
    if stored
        .iter()
        .all(|p| p.end - p.start == step && on_grid(p.start, step))
    {
        return Ok(stored
            .iter()
            .map(|p| PricePointOut {
                start: p.start,
                end: p.end,
                price_eur_mwh: p.price_eur_mwh,
                source: p.source.clone(),
            })
            .collect());
    }
    let slots: Vec<PriceSlot> = stored.iter().map(StoredPrice::slot).collect();
    let resampled = resample(&slots, resolution)?;
    let mut first = 0;
    Ok(resampled
        .into_iter()
        .map(|slot| {
            while first < stored.len() && stored[first].end <= slot.start {
                first += 1;
            }
            let mut sources = stored[first..]
                .iter()
                .take_while(|p| p.start < slot.end)
                .map(|p| p.source.as_str());
            let source = match sources.next() {
                Some(one) if sources.all(|other| other == one) => one.to_owned(),
                Some(_) => "mixed".to_owned(),
                None => String::new(),
            };
            PricePointOut {
                start: slot.start,
                end: slot.end,
                price_eur_mwh: slot.price_eur_mwh,
                source,
            }
        })
        .collect())
}

/// The ENTSO-E price fetcher's state per zone: last success, last attempt, next attempt, last
/// error, days still missing (a Voltplan extension). Available where the fetcher runs in the API's
/// process (`voltplan serve --with-worker` with `ENTSOE_TOKEN` set); elsewhere 404 with a detail.
#[utoipa::path(get, path = "/api/partners/v2.0/prices/fetch-status", tag = "Prices",
    responses((status = 200, description = "One entry per zone in use", body = Object),
              (status = 404, description = "No price fetcher runs in this process")),
    security(("bearer" = [])))]
pub async fn fetch_status(
    State(state): State<AppState>,
    _caller: crate::auth::Principal,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.price_fetch_status().map(Json).ok_or_else(|| {
        ApiError::NotFoundWith(
            "No price fetcher runs in this process: start `voltplan serve --with-worker` with ENTSOE_TOKEN set".to_owned(),
        )
    })
}
