//! What the live loop recorded, as Podero serves it: a device's (an EV's or a wallbox's) charging
//! sessions (`…/sessions`), its savings in calendar buckets (`…/savings`), its time series
//! (`…/data`) and the organisation's savings (`/org/{org_id}/devices/savings`).
//!
//! All buckets are aligned in **UTC** (`voltplan_core::time::calendar`). A session counts in the
//! bucket of its plug-in time. The EV's handlers are here, and what every kind of device answers
//! (`device_sessions`, `device_savings`, `device_data`, which the wallbox's handlers call too);
//! their query parameters in `query.rs`, the sums in `statistics.rs`, the time series in `data.rs`.

mod data;
mod query;
mod statistics;

use std::future::Future;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_store::OrgScope;
use voltplan_store::fleet::{DeviceTable, SessionRecord};

use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, OrgPath, Q, VehiclePath};
use crate::state::AppState;
pub(crate) use data::EvDataOut;
pub(crate) use query::{DataQuery, OrgSavingsQuery, SavingsQuery, SessionsQuery};
pub(crate) use statistics::{DeviceSavingsOut, StatisticsMetadataOut, StatisticsOut};

/// The device a sessions, savings or data route reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Device {
    pub table: DeviceTable,
    pub id: Uuid,
    /// The path parameter that names it, echoed in `metadata.query`.
    pub id_param: &'static str,
}

impl Device {
    fn vehicle(id: Uuid) -> Self {
        Device {
            table: DeviceTable::ElectricVehicles,
            id,
            id_param: "electric_vehicle_id",
        }
    }
}

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
    /// Voltplan extension: the customer's bill (`docs/tariffs.md`). The energy contract that
    /// priced the session, from its first reading under that contract; null without one.
    pub energy_contract_id: Option<Uuid>,
    /// Currency of the `customer_*` figures.
    pub customer_currency: Option<String>,
    /// What the energy cost on the customer's price (energy, grid fees, levies, VAT).
    pub customer_cost: Option<f64>,
    /// What charging at once would have cost on the customer's price.
    pub customer_baseline_cost: Option<f64>,
    /// `customer_baseline_cost − customer_cost`: money off the customer's bill.
    pub customer_savings: Option<f64>,
    /// The first plan's expected savings on the customer's price.
    pub customer_expected_savings: Option<f64>,
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
            energy_contract_id: d.energy_contract_id,
            customer_currency: d.customer_currency,
            customer_cost: d.customer_cost,
            customer_baseline_cost: d.customer_baseline_cost,
            customer_savings: d.customer_savings,
            customer_expected_savings: d.customer_expected_savings,
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
    let device = Device::vehicle(path.electric_vehicle_id);
    device_sessions(
        &state,
        access.org,
        device,
        &query,
        vehicle_exists(&state, &access, &path),
    )
    .await
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
    let device = Device::vehicle(path.electric_vehicle_id);
    device_savings(
        &state,
        access.org,
        device,
        &query,
        vehicle_exists(&state, &access, &path),
    )
    .await
}

/// Savings of all the organisation's devices (EUR) from the sessions that started in
/// `[start_datetime, end_datetime)`, including those of devices deleted since. A wallbox charges
/// an electric vehicle, so its sessions count in `electric_vehicle_savings` (Podero's shape has
/// no wallbox entry).
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
    let device = Device::vehicle(path.electric_vehicle_id);
    let exists = vehicle_exists(&state, &access, &path);
    device_data(&state, access.org, device, &headers, &query, exists).await
}

/// The vehicle must be this user's: the sessions and readings tables know only the organisation.
async fn vehicle_exists(state: &AppState, access: &OrgAccess, path: &VehiclePath) -> ApiResult<()> {
    state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    Ok(())
}

/// `…/sessions` of a device: the query read first (every bad parameter a 422), then `exists`
/// (the device is the path user's, else 404), then the page.
pub(crate) async fn device_sessions(
    state: &AppState,
    org: OrgScope,
    device: Device,
    query: &SessionsQuery,
    exists: impl Future<Output = ApiResult<()>>,
) -> ApiResult<Json<SessionPageOut>> {
    let page = query.read()?;
    exists.await?;
    let (total, sessions) = state
        .store()
        .list_device_sessions(
            device.table,
            org,
            Some(device.id),
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

/// `…/savings` of a device, in the order of [`device_sessions`].
pub(crate) async fn device_savings(
    state: &AppState,
    org: OrgScope,
    device: Device,
    query: &SavingsQuery,
    exists: impl Future<Output = ApiResult<()>>,
) -> ApiResult<Json<StatisticsOut>> {
    let request = query.read()?;
    exists.await?;
    let data = statistics::savings_rows(
        state.store(),
        org,
        (device.table, device.id),
        request.range,
        request.bucket,
        &request.buckets,
    )
    .await?;
    Ok(Json(StatisticsOut {
        metadata: StatisticsMetadataOut {
            requested_at: state.now(),
            query: json!({
                device.id_param: device.id,
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

/// `…/data` of a device, in the order of [`device_sessions`].
pub(crate) async fn device_data(
    state: &AppState,
    org: OrgScope,
    device: Device,
    headers: &HeaderMap,
    query: &DataQuery,
    exists: impl Future<Output = ApiResult<()>>,
) -> ApiResult<Json<EvDataOut>> {
    let request = query.read(headers)?;
    exists.await?;
    let readings = state
        .store()
        .list_device_readings(device.table, org, device.id, request.from, request.to)
        .await?;
    if readings.is_empty() && !request.fill_missing {
        return Err(ApiError::BadRequest(
            "No data for this device between from_datetime and to_datetime; send the header \
             fill-missing: true to get the range with null values"
                .to_owned(),
        ));
    }
    let data = data::rows(&request, &readings);
    Ok(Json(EvDataOut {
        metadata: StatisticsMetadataOut {
            requested_at: state.now(),
            query: json!({
                device.id_param: device.id,
                "from_datetime": request.from,
                "to_datetime": request.to,
                "resolution": request.bucket.name(),
                "keywords": request.keywords,
                "fill_missing": request.fill_missing,
                "timezone": "UTC",
            }),
            units: json!({
                "price": "EUR/MWh",
                "customer_price": "per MWh in the energy contract's currency",
                "battery_level": "%",
                "estimated_consumption": "Wh",
                "unoptimized_consumption": "Wh",
            }),
            error: None,
        },
        data,
    }))
}
