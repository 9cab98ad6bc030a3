//! What the live loop recorded, as Podero serves it: an EV's charging sessions
//! (`…/sessions`), its savings in calendar buckets (`…/savings`), its time series (`…/data`) and
//! the organisation's savings (`/org/{org_id}/devices/savings`).
//!
//! All buckets are aligned in **UTC** (`voltplan_core::time::calendar`). A session counts in the
//! bucket of its plug-in time. The handlers are here; their query parameters in `query.rs`, the
//! sums in `statistics.rs`, the time series in `data.rs`.

mod data;
mod query;
mod statistics;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_store::fleet::SessionRecord;

use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, OrgPath, Q, VehiclePath};
use crate::state::AppState;
use data::EvDataOut;
use query::{DataQuery, OrgSavingsQuery, SavingsQuery, SessionsQuery};
use statistics::{DeviceSavingsOut, StatisticsMetadataOut, StatisticsOut};

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
    responses((status = 200, body = SessionPageOut)),
    security(("bearer" = [])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    Q(query): Q<SessionsQuery>,
) -> ApiResult<Json<SessionPageOut>> {
    let page = query.read()?;
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
            page.range.0,
            page.range.1,
            page.limit,
            page.offset,
        )
        .await?;
    Ok(Json(SessionPageOut {
        total,
        items: sessions.into_iter().map(SessionOut::from).collect(),
    }))
}

/// Savings of an EV per calendar bucket (UTC), from its charging sessions.
///
/// A session counts in the bucket of its plug-in. `savings.total` (EUR) is what charging at once on
/// plug-in would have cost minus what the charge cost; `consumption.total` is in kWh and
/// `electric_vehicle.estimated_consumption_wh` in Wh (see `metadata.units`). The first and last
/// buckets are clipped to the requested days.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/savings",
    tag = "User Electric Vehicles", params(VehiclePath, SavingsQuery),
    responses((status = 200, body = StatisticsOut)),
    security(("bearer" = [])))]
pub async fn vehicle_savings(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    Q(query): Q<SavingsQuery>,
) -> ApiResult<Json<StatisticsOut>> {
    let request = query.read()?;
    state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    let data = statistics::savings_rows(
        state.store(),
        access.org,
        path.electric_vehicle_id,
        request.range,
        request.bucket,
        &request.buckets,
    )
    .await?;
    Ok(Json(StatisticsOut {
        metadata: StatisticsMetadataOut {
            requested_at: state.now(),
            query: json!({
                "electric_vehicle_id": path.electric_vehicle_id,
                "from": request.range.0,
                "to": request.range.1,
                "resolution": request.bucket.name(),
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

/// Savings of all the organisation's devices (EUR) from the sessions that started in
/// `[start_datetime, end_datetime)`, including those of vehicles deleted since.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/devices/savings",
    tag = "Devices", params(OrgPath, OrgSavingsQuery),
    responses((status = 200, body = DeviceSavingsOut)),
    security(("bearer" = [])))]
pub async fn org_savings(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(_path): Ids<OrgPath>,
    Q(query): Q<OrgSavingsQuery>,
) -> ApiResult<Json<DeviceSavingsOut>> {
    let range = query.read()?;
    Ok(Json(
        statistics::org_savings_total(state.store(), access.org, range).await?,
    ))
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
    responses((status = 200, body = EvDataOut), (status = 400, description = "No data in the range and fill-missing is false")),
    security(("bearer" = [])))]
pub async fn vehicle_data(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    headers: HeaderMap,
    Q(query): Q<DataQuery>,
) -> ApiResult<Json<EvDataOut>> {
    let request = query.read(&headers)?;
    state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    let readings = state
        .store()
        .list_readings(
            access.org,
            path.electric_vehicle_id,
            request.from,
            request.to,
        )
        .await?;
    if readings.is_empty() && !request.fill_missing {
        return Err(ApiError::BadRequest(
            "No data for this vehicle between from_datetime and to_datetime; send the header \
             fill-missing: true to get the range with null values"
                .to_owned(),
        ));
    }
    let data = data::rows(&request, &readings);
    Ok(Json(EvDataOut {
        metadata: StatisticsMetadataOut {
            requested_at: state.now(),
            query: json!({
                "electric_vehicle_id": path.electric_vehicle_id,
                "from_datetime": request.from,
                "to_datetime": request.to,
                "resolution": request.bucket.name(),
                "keywords": request.keywords,
                "fill_missing": request.fill_missing,
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
