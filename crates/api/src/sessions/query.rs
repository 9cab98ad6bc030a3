//! The query parameters of the session endpoints, read by hand so that every invalid one is
//! reported at once, each a 422 naming it.

use axum::http::HeaderMap;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use voltplan_core::time::calendar::{Bucket, Span, whole_days};
use voltplan_core::validation::FieldError;

use crate::error::{ApiError, ApiResult};
use crate::params::query_int;
use crate::schemas::accepted_values_type;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;
/// Savings are summed over at most this span (about five years).
const MAX_SAVINGS_DAYS: i64 = 1830;
/// `/data` reads raw readings into memory: at most a year of them, in at most this many rows.
const MAX_DATA_DAYS: i64 = 366;
const MAX_DATA_BUCKETS: i64 = 10_000;

/// The figures a `/data` row holds by default (Podero's), in the order rows list them.
const DATA_KEYWORDS: [&str; 7] = [
    "price",
    "battery_level",
    "is_charging",
    "is_plugged_in",
    "is_at_optimized_location",
    "estimated_consumption",
    "unoptimized_consumption",
];

/// The buckets `…/savings` accepts.
const SAVINGS_BUCKETS: [Bucket; 5] = [
    Bucket::Day,
    Bucket::Week,
    Bucket::Month,
    Bucket::Quarter,
    Bucket::Year,
];
/// The buckets `…/data` accepts.
const DATA_BUCKETS: [Bucket; 5] = [
    Bucket::QuarterHour,
    Bucket::Hour,
    Bucket::Day,
    Bucket::Week,
    Bucket::Month,
];

accepted_values_type! {
    /// The buckets of `…/savings`, as the OpenAPI document shows them.
    pub struct SavingsResolution = SAVINGS_BUCKETS.map(Bucket::name);
}

accepted_values_type! {
    /// The buckets of `…/data`, as the OpenAPI document shows them.
    pub struct DataResolution = DATA_BUCKETS.map(Bucket::name);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// First day (inclusive, UTC), `YYYY-MM-DD`.
    #[param(required = true, value_type = String, format = Date)]
    pub from: Option<String>,
    /// Last day (inclusive, UTC), `YYYY-MM-DD`.
    #[param(required = true, value_type = String, format = Date)]
    pub to: Option<String>,
    /// 1–200, default 50.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// ≥ 0, default 0.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub offset: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SavingsQuery {
    /// First day (inclusive, UTC), `YYYY-MM-DD`.
    #[param(required = true, value_type = String, format = Date)]
    pub from: Option<String>,
    /// Last day (inclusive, UTC), `YYYY-MM-DD`; at most about five years after `from`.
    #[param(required = true, value_type = String, format = Date)]
    pub to: Option<String>,
    /// `1DAY`, `1WEEK`, `1MONTH` (default), `1QUARTER` or `1YEAR`; buckets are aligned in UTC.
    #[param(inline, value_type = Option<SavingsResolution>)]
    pub resolution: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DataQuery {
    /// Start (inclusive), RFC 3339; a time without offset is UTC.
    #[param(required = true, value_type = String, format = DateTime)]
    pub from_datetime: Option<String>,
    /// End (exclusive), RFC 3339; at most 366 days after `from_datetime`.
    #[param(required = true, value_type = String, format = DateTime)]
    pub to_datetime: Option<String>,
    /// `15MIN` (default), `1HOUR`, `1DAY`, `1WEEK` or `1MONTH`; buckets are aligned in UTC.
    #[param(inline, value_type = Option<DataResolution>)]
    pub resolution: Option<String>,
    /// Comma-separated subset of `price`, `battery_level`, `is_charging`, `is_plugged_in`,
    /// `is_at_optimized_location`, `estimated_consumption`, `unoptimized_consumption`; default all
    /// of these. The extension `customer_price` (the mean price on the customer's energy contract,
    /// per MWh in its currency) is there only when named.
    pub keywords: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgSavingsQuery {
    /// Start (inclusive), RFC 3339; a time without offset is UTC.
    #[param(required = true, value_type = String, format = DateTime)]
    pub start_datetime: Option<String>,
    /// End (exclusive), RFC 3339.
    #[param(required = true, value_type = String, format = DateTime)]
    pub end_datetime: Option<String>,
}

/// A page of an EV's sessions.
pub(super) struct SessionsPage {
    pub range: Span,
    pub limit: i64,
    pub offset: i64,
}

impl SessionsQuery {
    pub(super) fn read(&self) -> ApiResult<SessionsPage> {
        let mut errors = Vec::new();
        let from = parse_date(self.from.as_deref(), "from", &mut errors);
        let to = parse_date(self.to.as_deref(), "to", &mut errors);
        let limit = query_int(
            self.limit.as_deref(),
            "limit",
            (1, MAX_LIMIT, DEFAULT_LIMIT),
            &mut errors,
        );
        let offset = query_int(
            self.offset.as_deref(),
            "offset",
            (0, i64::MAX, 0),
            &mut errors,
        );
        let range = day_range(from, to, None, &mut errors);
        match (range, errors.is_empty()) {
            (Some(range), true) => Ok(SessionsPage {
                range,
                limit,
                offset,
            }),
            _ => Err(ApiError::Invalid(errors)),
        }
    }
}

/// An EV's savings: whole UTC days, cut into buckets.
pub(super) struct SavingsRange {
    pub range: Span,
    pub bucket: Bucket,
    pub buckets: Vec<Span>,
}

impl SavingsQuery {
    pub(super) fn read(&self) -> ApiResult<SavingsRange> {
        let mut errors = Vec::new();
        let from = parse_date(self.from.as_deref(), "from", &mut errors);
        let to = parse_date(self.to.as_deref(), "to", &mut errors);
        let bucket = parse_bucket(
            self.resolution.as_deref(),
            Bucket::Month,
            &SAVINGS_BUCKETS,
            &mut errors,
        );
        let range = day_range(from, to, Some(MAX_SAVINGS_DAYS), &mut errors);
        let (Some(range), Some(bucket), true) = (range, bucket, errors.is_empty()) else {
            return Err(ApiError::Invalid(errors));
        };
        // Days are the finest bucket here, and the range has at most MAX_SAVINGS_DAYS of them.
        let buckets = bucket
            .split(range.0, range.1, MAX_SAVINGS_DAYS + 1)
            .ok_or_else(|| ApiError::internal("savings buckets out of range"))?;
        Ok(SavingsRange {
            range,
            bucket,
            buckets,
        })
    }
}

/// An EV's time series: the range, its buckets and what to show of them.
pub(super) struct DataRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: Bucket,
    pub buckets: Vec<Span>,
    pub keywords: Vec<&'static str>,
    pub fill_missing: bool,
}

impl DataQuery {
    /// The query with the `fill-missing` header.
    pub(super) fn read(&self, headers: &HeaderMap) -> ApiResult<DataRange> {
        let mut errors = Vec::new();
        let fill_missing = parse_fill_missing(headers, &mut errors);
        let from = parse_datetime(self.from_datetime.as_deref(), "from_datetime", &mut errors);
        let to = parse_datetime(self.to_datetime.as_deref(), "to_datetime", &mut errors);
        let bucket = parse_bucket(
            self.resolution.as_deref(),
            Bucket::QuarterHour,
            &DATA_BUCKETS,
            &mut errors,
        );
        let keywords = parse_keywords(self.keywords.as_deref(), &mut errors);
        let mut buckets = None;
        if let (Some(from), Some(to), Some(bucket)) = (from, to, bucket) {
            if to <= from {
                errors.push(FieldError::query(
                    "to_datetime",
                    "value_error",
                    "to_datetime must be after from_datetime",
                ));
            } else if to - from > Duration::days(MAX_DATA_DAYS) {
                errors.push(FieldError::query(
                    "to_datetime",
                    "value_error",
                    format!("The range may span at most {MAX_DATA_DAYS} days"),
                ));
            } else {
                buckets = bucket.split(from, to, MAX_DATA_BUCKETS);
                if buckets.is_none() {
                    errors.push(FieldError::query(
                        "resolution",
                        "value_error",
                        format!(
                            "At most {MAX_DATA_BUCKETS} rows: use a coarser resolution or a shorter range"
                        ),
                    ));
                }
            }
        }
        match (from, to, bucket, buckets, errors.is_empty()) {
            (Some(from), Some(to), Some(bucket), Some(buckets), true) => Ok(DataRange {
                from,
                to,
                bucket,
                buckets,
                keywords,
                fill_missing,
            }),
            _ => Err(ApiError::Invalid(errors)),
        }
    }
}

impl OrgSavingsQuery {
    /// `[start_datetime, end_datetime)`.
    pub(super) fn read(&self) -> ApiResult<Span> {
        let mut errors = Vec::new();
        let start = parse_datetime(
            self.start_datetime.as_deref(),
            "start_datetime",
            &mut errors,
        );
        let end = parse_datetime(self.end_datetime.as_deref(), "end_datetime", &mut errors);
        if let (Some(start), Some(end)) = (start, end)
            && end <= start
        {
            errors.push(FieldError::query(
                "end_datetime",
                "value_error",
                "end_datetime must be after start_datetime",
            ));
        }
        match (start, end, errors.is_empty()) {
            (Some(start), Some(end), true) => Ok((start, end)),
            _ => Err(ApiError::Invalid(errors)),
        }
    }
}

fn missing(name: &str) -> FieldError {
    FieldError::query(name, "missing", "Field required")
}

fn parse_date(value: Option<&str>, name: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let Some(value) = value else {
        errors.push(missing(name));
        return None;
    };
    let parsed = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").ok();
    if parsed.is_none() {
        errors.push(FieldError::query(
            name,
            "date_parsing",
            "Input should be a valid date in the format YYYY-MM-DD",
        ));
    }
    parsed
}

/// RFC 3339; a time without offset is UTC.
fn parse_datetime(
    value: Option<&str>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let Some(value) = value else {
        errors.push(missing(name));
        return None;
    };
    let value = value.trim();
    let parsed = DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        });
    if parsed.is_none() {
        errors.push(FieldError::query(
            name,
            "datetime_parsing",
            "Input should be a valid datetime, e.g. 2026-11-01T00:00:00Z",
        ));
    }
    parsed
}

/// `from` and `to` as whole UTC days, both inclusive, at most `max_days` apart.
fn day_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    max_days: Option<i64>,
    errors: &mut Vec<FieldError>,
) -> Option<Span> {
    let (from, to) = (from?, to?);
    if to < from {
        errors.push(FieldError::query(
            "to",
            "value_error",
            "to must not be before from",
        ));
        return None;
    }
    if let Some(max) = max_days
        && (to - from).num_days() >= max
    {
        errors.push(FieldError::query(
            "to",
            "value_error",
            format!("The range may span at most {max} days"),
        ));
        return None;
    }
    whole_days(from, to)
}

fn parse_bucket(
    value: Option<&str>,
    default: Bucket,
    allowed: &[Bucket],
    errors: &mut Vec<FieldError>,
) -> Option<Bucket> {
    let Some(value) = value else {
        return Some(default);
    };
    match Bucket::parse(value.trim()).filter(|b| allowed.contains(b)) {
        Some(b) => Some(b),
        None => {
            let names: Vec<&str> = allowed.iter().map(|b| b.name()).collect();
            errors.push(FieldError::query(
                "resolution",
                "enum",
                format!("Input should be one of {}", names.join(", ")),
            ));
            None
        }
    }
}

fn parse_fill_missing(headers: &HeaderMap, errors: &mut Vec<FieldError>) -> bool {
    let Some(value) = headers.get("fill-missing") else {
        return false;
    };
    match value.to_str().map(|v| v.trim().to_ascii_lowercase()) {
        Ok(v) if v == "true" || v == "1" => true,
        Ok(v) if v == "false" || v == "0" => false,
        _ => {
            errors.push(FieldError::at(
                &["header", "fill-missing"],
                "bool_parsing",
                "Header should be true or false",
            ));
            false
        }
    }
}

/// Voltplan's extensions: only when asked for by name, so the default rows stay Podero's.
const EXTENSION_KEYWORDS: [&str; 1] = ["customer_price"];

fn parse_keywords(value: Option<&str>, errors: &mut Vec<FieldError>) -> Vec<&'static str> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return DATA_KEYWORDS.to_vec();
    };
    let mut out = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match DATA_KEYWORDS
            .iter()
            .chain(&EXTENSION_KEYWORDS)
            .find(|k| **k == word)
        {
            Some(k) if !out.contains(k) => out.push(*k),
            Some(_) => {}
            None => errors.push(FieldError::query(
                "keywords",
                "enum",
                format!(
                    "Unknown keyword {word:?}; use any of {}, {}",
                    DATA_KEYWORDS.join(", "),
                    EXTENSION_KEYWORDS.join(", ")
                ),
            )),
        }
    }
    out
}
