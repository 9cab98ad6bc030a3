//! `GET /prices/{price_zone}` and `GET /prices/fetch-status` (Voltplan extensions): a zone's
//! prices for a window, the organisation's uploads first; the ENTSO-E fetcher's state.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use voltplan_core::price::{find_gaps, resample, resolution_duration};
use voltplan_core::validation::FieldError;
use voltplan_core::{PriceSlot, PriceZone, Resolution};
use voltplan_store::{OrgScope, StoredPrice};

use super::{on_grid, zone_error};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, Q};
use crate::schemas::accepted_values_type;
use crate::state::AppState;

/// Longest window the read endpoint serves: a month of quarter-hours is ~3,000 points.
const MAX_WINDOW_DAYS: i64 = 31;

/// The slot lengths prices can be read in (`resolution`).
const RESOLUTIONS: [Resolution; 2] = [Resolution::QuarterHour, Resolution::Hour];

accepted_values_type! {
    /// The slot lengths prices are read in, as the OpenAPI document shows them.
    pub struct PriceResolution = RESOLUTIONS.map(resolution_name);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ZonePath {
    /// A Podero price zone, e.g. `DE_LU`.
    #[param(value_type = crate::schemas::PriceZone)]
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
    #[param(inline, value_type = Option<PriceResolution>)]
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
        errors.push(FieldError::query(name, "missing", "Field required"));
        return None;
    };
    // An unencoded `+01:00` offset arrives as a space after form decoding.
    let repaired = text.trim().replace(' ', "+");
    match DateTime::parse_from_rfc3339(&repaired) {
        Ok(instant) => Some(instant.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::query(
                name,
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
    responses((status = 200, body = PriceSeriesOut)),
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
        Some(name) => {
            let resolution = RESOLUTIONS
                .into_iter()
                .find(|r| resolution_name(*r) == name);
            if resolution.is_none() {
                let names = RESOLUTIONS.map(resolution_name);
                errors.push(FieldError::query(
                    "resolution",
                    "enum",
                    format!("Input should be {}", names.join(" or ")),
                ));
            }
            resolution
        }
    };
    if let (Some(from), Some(to)) = (from, to) {
        if to <= from {
            errors.push(FieldError::query(
                "to",
                "value_error",
                "to must be after from",
            ));
        } else if to - from > Duration::days(MAX_WINDOW_DAYS) {
            errors.push(FieldError::query(
                "to",
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
