//! What the live loop recorded, as Podero serves it: an EV's charging sessions
//! (`…/sessions`), its savings in calendar buckets (`…/savings`), its time series (`…/data`) and
//! the organisation's savings (`/org/{org_id}/devices/savings`).
//!
//! All buckets are aligned in **UTC** (days start at 00:00 UTC, weeks on Monday, quarters in
//! January/April/July/October): Podero does not say which zone it uses, and UTC is the one every
//! client can reproduce. A session counts in the bucket of its plug-in time.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voltplan_core::validation::FieldError;
use voltplan_store::fleet::{ReadingRecord, SessionRecord};
use voltplan_store::{OrgScope, Store};

use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, OrgPath, Q, VehiclePath};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;
/// Savings are summed over at most this span (about five years).
const MAX_SAVINGS_DAYS: i64 = 1830;
/// `/data` reads raw readings into memory: at most a year of them, in at most this many rows.
const MAX_DATA_DAYS: i64 = 366;
const MAX_DATA_BUCKETS: i64 = 10_000;
/// Sessions are summed page by page, so memory stays flat however many there are.
const SESSION_PAGE: i64 = 500;

const DATA_KEYWORDS: [&str; 7] = [
    "price",
    "battery_level",
    "is_charging",
    "is_plugged_in",
    "is_at_optimized_location",
    "estimated_consumption",
    "unoptimized_consumption",
];

// ---- parameters -------------------------------------------------------------------------------

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
    pub resolution: Option<String>,
    /// Comma-separated subset of `price`, `battery_level`, `is_charging`, `is_plugged_in`,
    /// `is_at_optimized_location`, `estimated_consumption`, `unoptimized_consumption`; default all.
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

fn missing(loc: &[&str]) -> FieldError {
    FieldError::at(loc, "missing", "Field required")
}

fn parse_date(value: Option<&str>, name: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let Some(value) = value else {
        errors.push(missing(&["query", name]));
        return None;
    };
    let parsed = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").ok();
    if parsed.is_none() {
        errors.push(FieldError::at(
            &["query", name],
            "date_parsing",
            "Input should be a valid date in the format YYYY-MM-DD",
        ));
    }
    parsed
}

fn parse_datetime(
    value: Option<&str>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let Some(value) = value else {
        errors.push(missing(&["query", name]));
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
        errors.push(FieldError::at(
            &["query", name],
            "datetime_parsing",
            "Input should be a valid datetime, e.g. 2026-11-01T00:00:00Z",
        ));
    }
    parsed
}

fn parse_int(
    value: Option<&str>,
    name: &str,
    (min, max, default): (i64, i64, i64),
    errors: &mut Vec<FieldError>,
) -> i64 {
    let Some(value) = value else {
        return default;
    };
    match value.trim().parse::<i64>() {
        Ok(n) if n < min => {
            errors.push(FieldError::at(
                &["query", name],
                "greater_than_equal",
                format!("Input should be greater than or equal to {min}"),
            ));
            default
        }
        Ok(n) if n > max => {
            errors.push(FieldError::at(
                &["query", name],
                "less_than_equal",
                format!("Input should be less than or equal to {max}"),
            ));
            default
        }
        Ok(n) => n,
        Err(_) => {
            errors.push(FieldError::at(
                &["query", name],
                "int_parsing",
                "Input should be a valid integer",
            ));
            default
        }
    }
}

/// `[from 00:00 UTC, to + 1 day 00:00 UTC)`: both days inclusive.
fn day_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    max_days: Option<i64>,
    errors: &mut Vec<FieldError>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (from, to) = (from?, to?);
    if to < from {
        errors.push(FieldError::at(
            &["query", "to"],
            "value_error",
            "to must not be before from",
        ));
        return None;
    }
    if let Some(max) = max_days
        && (to - from).num_days() >= max
    {
        errors.push(FieldError::at(
            &["query", "to"],
            "value_error",
            format!("The range may span at most {max} days"),
        ));
        return None;
    }
    let start = from.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = to.succ_opt()?.and_time(chrono::NaiveTime::MIN).and_utc();
    Some((start, end))
}

// ---- buckets ----------------------------------------------------------------------------------

/// A bucket size; every bucket is aligned in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    QuarterHour,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Bucket {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "15MIN" => Bucket::QuarterHour,
            "1HOUR" => Bucket::Hour,
            "1DAY" => Bucket::Day,
            "1WEEK" => Bucket::Week,
            "1MONTH" => Bucket::Month,
            "1QUARTER" => Bucket::Quarter,
            "1YEAR" => Bucket::Year,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Bucket::QuarterHour => "15MIN",
            Bucket::Hour => "1HOUR",
            Bucket::Day => "1DAY",
            Bucket::Week => "1WEEK",
            Bucket::Month => "1MONTH",
            Bucket::Quarter => "1QUARTER",
            Bucket::Year => "1YEAR",
        }
    }

    /// Start of the bucket containing `t`.
    fn floor(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let date = t.date_naive();
        let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        Some(match self {
            Bucket::QuarterHour | Bucket::Hour => {
                let step = if self == Bucket::Hour { 3600 } else { 900 };
                let secs = t.timestamp().div_euclid(step) * step;
                DateTime::from_timestamp(secs, 0)?
            }
            Bucket::Day => midnight(date),
            Bucket::Week => {
                midnight(date - Duration::days(i64::from(date.weekday().num_days_from_monday())))
            }
            Bucket::Month => midnight(NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?),
            Bucket::Quarter => {
                let month = (date.month0() / 3) * 3 + 1;
                midnight(NaiveDate::from_ymd_opt(date.year(), month, 1)?)
            }
            Bucket::Year => midnight(NaiveDate::from_ymd_opt(date.year(), 1, 1)?),
        })
    }

    /// Start of the bucket after the one starting at `start`.
    fn next(self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Bucket::QuarterHour => start.checked_add_signed(Duration::minutes(15)),
            Bucket::Hour => start.checked_add_signed(Duration::hours(1)),
            Bucket::Day => start.checked_add_signed(Duration::days(1)),
            Bucket::Week => start.checked_add_signed(Duration::weeks(1)),
            Bucket::Month => start.checked_add_months(Months::new(1)),
            Bucket::Quarter => start.checked_add_months(Months::new(3)),
            Bucket::Year => start.checked_add_months(Months::new(12)),
        }
    }

    /// The buckets covering `[from, to)`, each clipped to the range; `None` past `max` buckets.
    fn split(
        self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max: i64,
    ) -> Option<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
        let mut out = Vec::new();
        let mut start = self.floor(from)?;
        while start < to {
            let end = self.next(start)?;
            out.push((start.max(from), end.min(to)));
            if out.len() as i64 > max {
                return None;
            }
            start = end;
        }
        Some(out)
    }
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
            errors.push(FieldError::at(
                &["query", "resolution"],
                "enum",
                format!("Input should be one of {}", names.join(", ")),
            ));
            None
        }
    }
}

/// Index of the bucket containing `t` (buckets sorted and contiguous).
fn bucket_of(buckets: &[(DateTime<Utc>, DateTime<Utc>)], t: DateTime<Utc>) -> Option<usize> {
    let i = buckets.partition_point(|(_, end)| *end <= t);
    buckets.get(i).filter(|(start, _)| *start <= t).map(|_| i)
}

/// Calls `each` on every session of `vehicle` (or the whole organisation) that started in
/// `[from, to)`, a page at a time.
async fn for_each_session(
    store: &dyn Store,
    org: OrgScope,
    vehicle: Option<Uuid>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    mut each: impl FnMut(&SessionRecord),
) -> ApiResult<()> {
    let mut offset = 0;
    loop {
        let (total, page) = store
            .list_sessions(org, vehicle, from, to, SESSION_PAGE, offset)
            .await?;
        page.iter().for_each(&mut each);
        offset += page.len() as i64;
        if page.is_empty() || offset >= total {
            return Ok(());
        }
    }
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// What charging at once would have cost minus what the charge cost.
fn session_savings(s: &SessionRecord) -> f64 {
    s.data.baseline_cost_eur - s.data.actual_cost_eur
}

// ---- sessions ---------------------------------------------------------------------------------

/// A completed or open charging session, with Podero's session fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    pub id: Uuid,
    pub plug_in_time: DateTime<Utc>,
    /// `null` while the car is still plugged in.
    pub unplug_time: Option<DateTime<Utc>>,
    pub inferred_session_end: Option<DateTime<Utc>>,
    pub desired_charging_start_time: Option<DateTime<Utc>>,
    pub desired_charging_end_time: Option<DateTime<Utc>>,
    pub charge_deadline: Option<DateTime<Utc>>,
    pub target_soc_pct: Option<f64>,
    pub initial_soc_pct: Option<f64>,
    pub final_soc_pct: Option<f64>,
    pub energy_charged_kwh: f64,
    pub avg_charge_power_kw: Option<f64>,
    pub peak_charge_power_kw: Option<f64>,
    pub actual_cost_eur: f64,
    pub expected_savings_eur: Option<f64>,
    pub actual_savings_eur: Option<f64>,
    pub is_at_home: Option<bool>,
    /// `open` (still plugged in), `completed` (target reached by the deadline, or no target),
    /// `target_missed` (plugged in until the deadline, target not reached by then),
    /// `unplugged_early` (unplugged before the deadline without the target), `not_at_home`
    /// (plugged in away from home) or `boosted` (the driver boosted during the session).
    /// Podero documents only `not_at_home`; the rules are in Voltplan's `docs/worker.md`.
    pub session_outcome: Option<String>,
    /// Voltplan extension: why the target was missed, for `target_missed` only:
    /// `infeasible_at_plug_in`, `target_changed`, `paused`, `steering_failure`,
    /// `cloud_unreachable` or `slower_than_planned`.
    pub session_outcome_reason: Option<String>,
    /// Voltplan extension: the first reading while plugged in at or above `target_soc_pct`.
    pub target_reached_at: Option<DateTime<Utc>>,
}

impl From<SessionRecord> for SessionOut {
    fn from(s: SessionRecord) -> Self {
        let d = s.data;
        SessionOut {
            id: s.id,
            plug_in_time: s.plug_in_time,
            unplug_time: s.unplug_time,
            inferred_session_end: d.inferred_session_end,
            desired_charging_start_time: d.desired_charging_start_time,
            desired_charging_end_time: d.desired_charging_end_time,
            charge_deadline: d.charge_deadline,
            target_soc_pct: d.target_soc_pct,
            initial_soc_pct: d.initial_soc_pct,
            final_soc_pct: d.final_soc_pct,
            energy_charged_kwh: d.energy_charged_kwh,
            avg_charge_power_kw: d.avg_charge_power_kw,
            peak_charge_power_kw: d.peak_charge_power_kw,
            actual_cost_eur: d.actual_cost_eur,
            expected_savings_eur: d.expected_savings_eur,
            actual_savings_eur: d.actual_savings_eur,
            is_at_home: d.is_at_home,
            session_outcome: d.session_outcome,
            session_outcome_reason: d.session_outcome_reason,
            target_reached_at: d.target_reached_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionPageOut {
    /// Sessions in the range, over all pages.
    pub total: i64,
    pub items: Vec<SessionOut>,
}

/// List an EV's charging sessions that started between `from` and `to` (both days inclusive, UTC),
/// newest first.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/sessions",
    tag = "User Electric Vehicles", params(VehiclePath, SessionsQuery),
    responses((status = 200, body = SessionPageOut), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    Q(query): Q<SessionsQuery>,
) -> ApiResult<Json<SessionPageOut>> {
    let mut errors = Vec::new();
    let from = parse_date(query.from.as_deref(), "from", &mut errors);
    let to = parse_date(query.to.as_deref(), "to", &mut errors);
    let limit = parse_int(
        query.limit.as_deref(),
        "limit",
        (1, MAX_LIMIT, DEFAULT_LIMIT),
        &mut errors,
    );
    let offset = parse_int(
        query.offset.as_deref(),
        "offset",
        (0, i64::MAX, 0),
        &mut errors,
    );
    let range = day_range(from, to, None, &mut errors);
    let (Some(range), true) = (range, errors.is_empty()) else {
        return Err(ApiError::Invalid(errors));
    };
    // The vehicle must be this user's: the sessions table knows only the organisation.
    state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    let (total, sessions) = state
        .store()
        .list_sessions(
            access.org,
            Some(path.electric_vehicle_id),
            range.0,
            range.1,
            limit,
            offset,
        )
        .await?;
    Ok(Json(SessionPageOut {
        total,
        items: sessions.into_iter().map(SessionOut::from).collect(),
    }))
}

// ---- savings ----------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsMetadataOut {
    pub requested_at: DateTime<Utc>,
    /// The query as understood, defaults filled in.
    #[schema(value_type = Object)]
    pub query: Value,
    /// Unit of each figure, by its path in a data row.
    #[schema(value_type = Object)]
    pub units: Value,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodOut {
    pub start_period: DateTime<Utc>,
    /// Exclusive.
    pub end_period: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SavingsFiguresOut {
    /// EUR: Σ (cost of charging at once on plug-in − actual cost).
    pub total: f64,
    /// Savings in percent of the cost of charging at once; `null` when that cost is 0.
    pub percentage: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumptionOut {
    /// kWh charged.
    pub total: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvStatisticsOut {
    pub estimated_consumption_wh: f64,
    pub charge_session_count: i64,
    /// Mean of the sessions' average charge power; `null` without sessions that report it.
    pub average_charge_power_w: Option<f64>,
}

/// One bucket of the Statistics shape (Podero §3.11).
#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsRowOut {
    pub resolution: String,
    pub period: PeriodOut,
    pub savings: SavingsFiguresOut,
    pub consumption: ConsumptionOut,
    /// Always `null` for an electric vehicle.
    #[schema(value_type = Option<Object>)]
    pub heat_pump: Option<Value>,
    pub electric_vehicle: EvStatisticsOut,
    /// Always `null` for an electric vehicle.
    #[schema(value_type = Option<Object>)]
    pub inverter: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsOut {
    pub metadata: StatisticsMetadataOut,
    pub data: Vec<StatisticsRowOut>,
}

#[derive(Default)]
struct BucketSums {
    baseline_eur: f64,
    savings_eur: f64,
    energy_kwh: f64,
    sessions: i64,
    power_kw_sum: f64,
    power_kw_count: u32,
}

/// Savings of an EV per calendar bucket (UTC), from its charging sessions.
///
/// A session counts in the bucket of its plug-in. `savings.total` (EUR) is what charging at once on
/// plug-in would have cost minus what the charge cost; `consumption.total` is in kWh and
/// `electric_vehicle.estimated_consumption_wh` in Wh (see `metadata.units`). The first and last
/// buckets are clipped to the requested days.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/savings",
    tag = "User Electric Vehicles", params(VehiclePath, SavingsQuery),
    responses((status = 200, body = StatisticsOut), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn vehicle_savings(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    Q(query): Q<SavingsQuery>,
) -> ApiResult<Json<StatisticsOut>> {
    let mut errors = Vec::new();
    let from = parse_date(query.from.as_deref(), "from", &mut errors);
    let to = parse_date(query.to.as_deref(), "to", &mut errors);
    let bucket = parse_bucket(
        query.resolution.as_deref(),
        Bucket::Month,
        &[
            Bucket::Day,
            Bucket::Week,
            Bucket::Month,
            Bucket::Quarter,
            Bucket::Year,
        ],
        &mut errors,
    );
    let range = day_range(from, to, Some(MAX_SAVINGS_DAYS), &mut errors);
    let (Some(range), Some(bucket), true) = (range, bucket, errors.is_empty()) else {
        return Err(ApiError::Invalid(errors));
    };
    let buckets = bucket
        .split(range.0, range.1, MAX_SAVINGS_DAYS + 1)
        .ok_or_else(|| ApiError::internal("savings buckets out of range"))?;
    state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    let mut sums: Vec<BucketSums> = buckets.iter().map(|_| BucketSums::default()).collect();
    for_each_session(
        state.store(),
        access.org,
        Some(path.electric_vehicle_id),
        range,
        |s| {
            let Some(sum) = bucket_of(&buckets, s.plug_in_time).and_then(|i| sums.get_mut(i))
            else {
                return;
            };
            sum.baseline_eur += s.data.baseline_cost_eur;
            sum.savings_eur += session_savings(s);
            sum.energy_kwh += s.data.energy_charged_kwh;
            sum.sessions += 1;
            if let Some(kw) = s.data.avg_charge_power_kw {
                sum.power_kw_sum += kw;
                sum.power_kw_count += 1;
            }
        },
    )
    .await?;
    let data = buckets
        .iter()
        .zip(sums)
        .map(|(&(start, end), sum)| StatisticsRowOut {
            resolution: bucket.name().to_owned(),
            period: PeriodOut {
                start_period: start,
                end_period: end,
            },
            savings: SavingsFiguresOut {
                total: round_to(sum.savings_eur, 4),
                percentage: (sum.baseline_eur > 0.0)
                    .then(|| round_to(100.0 * sum.savings_eur / sum.baseline_eur, 2)),
            },
            consumption: ConsumptionOut {
                total: round_to(sum.energy_kwh, 4),
            },
            heat_pump: None,
            electric_vehicle: EvStatisticsOut {
                estimated_consumption_wh: round_to(sum.energy_kwh * 1000.0, 1),
                charge_session_count: sum.sessions,
                average_charge_power_w: (sum.power_kw_count > 0).then(|| {
                    round_to(1000.0 * sum.power_kw_sum / f64::from(sum.power_kw_count), 1)
                }),
            },
            inverter: None,
        })
        .collect();
    Ok(Json(StatisticsOut {
        metadata: StatisticsMetadataOut {
            requested_at: state.now(),
            query: json!({
                "electric_vehicle_id": path.electric_vehicle_id,
                "from": range.0,
                "to": range.1,
                "resolution": bucket.name(),
                "timezone": "UTC",
            }),
            units: json!({
                "savings.total": "EUR",
                "savings.percentage": "%",
                "consumption.total": "kWh",
                "electric_vehicle.estimated_consumption_wh": "Wh",
                "electric_vehicle.average_charge_power_w": "W",
            }),
            error: None,
        },
        data,
    }))
}

/// Savings of the whole organisation, in EUR.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSavingsOut {
    pub total_savings: f64,
    /// Voltplan steers no heat pumps: always 0.
    pub heat_pump_savings: f64,
    pub electric_vehicle_savings: f64,
    /// Voltplan steers no inverters: always 0.
    pub inverter_savings: f64,
}

/// Savings of all the organisation's devices (EUR) from the sessions that started in
/// `[start_datetime, end_datetime)`, including those of vehicles deleted since.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/devices/savings",
    tag = "Devices", params(OrgPath, OrgSavingsQuery),
    responses((status = 200, body = DeviceSavingsOut), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn org_savings(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(_path): Ids<OrgPath>,
    Q(query): Q<OrgSavingsQuery>,
) -> ApiResult<Json<DeviceSavingsOut>> {
    let mut errors = Vec::new();
    let start = parse_datetime(
        query.start_datetime.as_deref(),
        "start_datetime",
        &mut errors,
    );
    let end = parse_datetime(query.end_datetime.as_deref(), "end_datetime", &mut errors);
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        errors.push(FieldError::at(
            &["query", "end_datetime"],
            "value_error",
            "end_datetime must be after start_datetime",
        ));
    }
    let (Some(start), Some(end), true) = (start, end, errors.is_empty()) else {
        return Err(ApiError::Invalid(errors));
    };
    let mut total = 0.0;
    for_each_session(state.store(), access.org, None, (start, end), |s| {
        total += session_savings(s);
    })
    .await?;
    let total = round_to(total, 4);
    Ok(Json(DeviceSavingsOut {
        total_savings: total,
        heat_pump_savings: 0.0,
        electric_vehicle_savings: total,
        inverter_savings: 0.0,
    }))
}

// ---- data -------------------------------------------------------------------------------------

/// One row of the EV time series; only the requested keywords are present.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only: rows are built as maps holding the requested keys
pub struct EvDataRowOut {
    /// Start of the UTC-aligned bucket; the first one may start before `from_datetime` when
    /// that is not on the bucket grid (its figures still cover only the requested range).
    time: DateTime<Utc>,
    /// Mean day-ahead price seen by the vehicle, EUR/MWh.
    price: Option<f64>,
    /// Last battery level in the bucket, percent.
    battery_level: Option<f64>,
    /// Charging at any reading in the bucket.
    is_charging: Option<bool>,
    /// Plugged in at any reading in the bucket.
    is_plugged_in: Option<bool>,
    /// Inside the geo-fence at the last reading of the bucket.
    is_at_optimized_location: Option<bool>,
    /// Energy drawn from the grid, Wh.
    estimated_consumption: Option<f64>,
    /// What charging at once would have drawn, Wh. Not recorded yet: always `null`.
    unoptimized_consumption: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvDataOut {
    pub metadata: StatisticsMetadataOut,
    /// Rows hold `time` and the requested keywords only.
    #[schema(value_type = Vec<EvDataRowOut>)]
    pub data: Vec<Map<String, Value>>,
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

fn parse_keywords(value: Option<&str>, errors: &mut Vec<FieldError>) -> Vec<&'static str> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return DATA_KEYWORDS.to_vec();
    };
    let mut out = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match DATA_KEYWORDS.iter().find(|k| **k == word) {
            Some(k) if !out.contains(k) => out.push(*k),
            Some(_) => {}
            None => errors.push(FieldError::at(
                &["query", "keywords"],
                "enum",
                format!(
                    "Unknown keyword {word:?}; use any of {}",
                    DATA_KEYWORDS.join(", ")
                ),
            )),
        }
    }
    out
}

/// The figures of one bucket, from its readings (sorted by time).
fn aggregate(readings: &[&ReadingRecord]) -> Map<String, Value> {
    let prices: Vec<f64> = readings.iter().filter_map(|r| r.price_eur_mwh).collect();
    let any = |f: fn(&ReadingRecord) -> Option<bool>| {
        let seen: Vec<bool> = readings.iter().filter_map(|r| f(r)).collect();
        (!seen.is_empty()).then(|| seen.iter().any(|b| *b))
    };
    let energy: Vec<f64> = readings.iter().filter_map(|r| r.energy_kwh).collect();
    let mut row = Map::new();
    row.insert(
        "price".into(),
        json!(
            (!prices.is_empty())
                .then(|| round_to(prices.iter().sum::<f64>() / prices.len() as f64, 4))
        ),
    );
    row.insert(
        "battery_level".into(),
        json!(readings.iter().rev().find_map(|r| r.battery_level)),
    );
    row.insert("is_charging".into(), json!(any(|r| r.is_charging)));
    row.insert("is_plugged_in".into(), json!(any(|r| r.is_plugged_in)));
    row.insert(
        "is_at_optimized_location".into(),
        json!(readings.iter().rev().find_map(|r| r.is_at_home)),
    );
    row.insert(
        "estimated_consumption".into(),
        json!((!energy.is_empty()).then(|| round_to(energy.iter().sum::<f64>() * 1000.0, 1))),
    );
    row.insert("unoptimized_consumption".into(), Value::Null);
    row
}

/// An EV's time series in UTC-aligned buckets, from the worker's readings.
///
/// Without data in the range the answer is 400, unless the header `fill-missing: true` is sent:
/// then every bucket of the range is returned, with `null` where there was no reading (also when
/// some buckets have data). `estimated_consumption` is in Wh, `price` in EUR/MWh, `battery_level`
/// the last level of the bucket; `unoptimized_consumption` is not recorded yet and always `null`.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/data",
    tag = "User Electric Vehicles",
    params(VehiclePath, DataQuery,
        ("fill-missing" = Option<bool>, Header, description = "Return every bucket of the range, `null` where there is no data (default false)")),
    responses((status = 200, body = EvDataOut), (status = 400, description = "No data in the range and fill-missing is false"),
        (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn vehicle_data(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    headers: HeaderMap,
    Q(query): Q<DataQuery>,
) -> ApiResult<Json<EvDataOut>> {
    let mut errors = Vec::new();
    let fill_missing = parse_fill_missing(&headers, &mut errors);
    let from = parse_datetime(query.from_datetime.as_deref(), "from_datetime", &mut errors);
    let to = parse_datetime(query.to_datetime.as_deref(), "to_datetime", &mut errors);
    let bucket = parse_bucket(
        query.resolution.as_deref(),
        Bucket::QuarterHour,
        &[
            Bucket::QuarterHour,
            Bucket::Hour,
            Bucket::Day,
            Bucket::Week,
            Bucket::Month,
        ],
        &mut errors,
    );
    let keywords = parse_keywords(query.keywords.as_deref(), &mut errors);
    let mut buckets = None;
    if let (Some(from), Some(to), Some(bucket)) = (from, to, bucket) {
        if to <= from {
            errors.push(FieldError::at(
                &["query", "to_datetime"],
                "value_error",
                "to_datetime must be after from_datetime",
            ));
        } else if to - from > Duration::days(MAX_DATA_DAYS) {
            errors.push(FieldError::at(
                &["query", "to_datetime"],
                "value_error",
                format!("The range may span at most {MAX_DATA_DAYS} days"),
            ));
        } else {
            buckets = bucket.split(from, to, MAX_DATA_BUCKETS);
            if buckets.is_none() {
                errors.push(FieldError::at(
                    &["query", "resolution"],
                    "value_error",
                    format!(
                        "At most {MAX_DATA_BUCKETS} rows: use a coarser resolution or a shorter range"
                    ),
                ));
            }
        }
    }
    let (Some(from), Some(to), Some(bucket), Some(buckets), true) =
        (from, to, bucket, buckets, errors.is_empty())
    else {
        return Err(ApiError::Invalid(errors));
    };
    state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    let readings = state
        .store()
        .list_readings(access.org, path.electric_vehicle_id, from, to)
        .await?;
    if readings.is_empty() && !fill_missing {
        return Err(ApiError::BadRequest(
            "No data for this vehicle between from_datetime and to_datetime; send the header \
             fill-missing: true to get the range with null values"
                .to_owned(),
        ));
    }
    let mut grouped: Vec<Vec<&ReadingRecord>> = buckets.iter().map(|_| Vec::new()).collect();
    for r in &readings {
        if let Some(group) = bucket_of(&buckets, r.at).and_then(|i| grouped.get_mut(i)) {
            group.push(r);
        }
    }
    let data = buckets
        .iter()
        .zip(&grouped)
        .filter(|(_, group)| fill_missing || !group.is_empty())
        .map(|(&(start, _), group)| {
            let figures = aggregate(group);
            let mut row = Map::new();
            // The bucket's aligned start, not the clipped one: rows sit on the UTC grid.
            let time = bucket.floor(start).unwrap_or(start);
            row.insert("time".into(), json!(time));
            for k in &keywords {
                row.insert(
                    (*k).to_owned(),
                    figures.get(*k).cloned().unwrap_or(Value::Null),
                );
            }
            row
        })
        .collect();
    Ok(Json(EvDataOut {
        metadata: StatisticsMetadataOut {
            requested_at: state.now(),
            query: json!({
                "electric_vehicle_id": path.electric_vehicle_id,
                "from_datetime": from,
                "to_datetime": to,
                "resolution": bucket.name(),
                "keywords": keywords,
                "fill_missing": fill_missing,
                "timezone": "UTC",
            }),
            units: json!({
                "price": "EUR/MWh",
                "battery_level": "%",
                "estimated_consumption": "Wh",
                "unoptimized_consumption": "Wh",
            }),
            error: None,
        },
        data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn buckets_are_aligned_in_utc_and_clipped_to_the_range() {
        let b = Bucket::Month
            .split(t("2026-01-15T00:00:00Z"), t("2026-03-02T00:00:00Z"), 100)
            .unwrap();
        assert_eq!(
            b,
            vec![
                (t("2026-01-15T00:00:00Z"), t("2026-02-01T00:00:00Z")),
                (t("2026-02-01T00:00:00Z"), t("2026-03-01T00:00:00Z")),
                (t("2026-03-01T00:00:00Z"), t("2026-03-02T00:00:00Z")),
            ]
        );
        // 2026-11-26 is a Thursday: its week starts on Monday the 23rd.
        assert_eq!(
            Bucket::Week.floor(t("2026-11-26T12:00:00Z")),
            Some(t("2026-11-23T00:00:00Z"))
        );
        assert_eq!(
            Bucket::Quarter.floor(t("2026-11-26T12:00:00Z")),
            Some(t("2026-10-01T00:00:00Z"))
        );
        assert_eq!(
            Bucket::QuarterHour.floor(t("2026-11-26T12:44:59Z")),
            Some(t("2026-11-26T12:30:00Z"))
        );
        assert!(
            Bucket::QuarterHour
                .split(t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"), 95)
                .is_none()
        );
        assert_eq!(bucket_of(&b, t("2026-02-01T00:00:00Z")), Some(1));
        assert_eq!(bucket_of(&b, t("2026-03-02T00:00:00Z")), None);
    }
}
