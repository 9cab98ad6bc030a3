//! The sandbox endpoints: drive a simulated EV (plug in, unplug, drive, set its level, revoke its
//! authorisation) and read the simulator's true state. A Voltplan extension, served only when the
//! server runs a sandbox; the live loop then sees the change at its next poll, as it would a real
//! car (nothing here touches the store).
//!
//! Also connects sandbox EVs at creation (see [`connect_at_creation`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voltplan_clouds::SANDBOX_CLOUD;
use voltplan_clouds::{
    SandboxCloud, SandboxError, SandboxInitial, SandboxSnapshot, VehicleSpec, embedded_catalogue,
    find_model,
};
use voltplan_core::vehicle::{EvSettings, StatusLevel};
use voltplan_store::{StoreError, UserRecord, VehicleRecord};

use crate::auth::OrgAccess;
use crate::body::{Fields, JsonObject};
use crate::error::ApiError;
use crate::params::Ids;
use crate::state::AppState;

/// A new simulated car starts here when neither its building nor its owner has coordinates
/// (Vienna, where the default price zone `AT` is).
const DEFAULT_HOME: (f64, f64) = (48.2082, 16.3738);
const DEFAULT_CAPACITY_KWH: f64 = 60.0;
const DEFAULT_AC_POWER_KW: f64 = 11.0;
/// Typical consumption of a mid-size EV, to give a catalogue-less car a WLTP range.
const KWH_PER_KM: f64 = 0.17;
const INITIAL_LEVEL: f64 = 50.0;

/// Registers a new EV whose cloud service is the sandbox with this server's simulator, and marks
/// it connected (`is_authenticated`, `connection_status: ok`). `Ok(false)` when the vehicle is not
/// a sandbox EV or the server runs no sandbox: it is then created unconnected, as any other.
///
/// The spec comes from the model catalogue (manufacturer and model, ignoring case), else from the
/// vehicle's `battery_capacity_kwh` (default 60 kWh) and, when the request set it,
/// `expected_max_charge_power` (default 11 kW). The car starts at 50 %, unplugged, at the
/// building's coordinates, else the owner's, else Vienna.
pub async fn connect_at_creation(
    state: &AppState,
    access: &OrgAccess,
    owner: &UserRecord,
    vehicle: &mut VehicleRecord,
    explicit_power: bool,
) -> Result<bool, ApiError> {
    let Some(sandbox) = state.sandbox() else {
        return Ok(false);
    };
    if vehicle.settings.device_model.cloud_service != Some(SANDBOX_CLOUD.id) {
        return Ok(false);
    }
    let building = match vehicle.building_id {
        Some(id) => match state
            .store()
            .get_building(access.org, vehicle.user_id, id, false)
            .await
        {
            Ok(b) => b.latitude.zip(b.longitude),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let (lat, lon) = building
        .or_else(|| owner.profile.latitude.zip(owner.profile.longitude))
        .unwrap_or(DEFAULT_HOME);
    let initial = SandboxInitial {
        battery_level: INITIAL_LEVEL,
        plugged_in: false,
        lat,
        lon,
        charge_limit: 100,
    };
    sandbox
        .add_vehicle(
            vehicle.id,
            spec_for(&vehicle.settings, explicit_power),
            initial,
        )
        .map_err(|e| {
            ApiError::field(
                "device_model",
                "value_error",
                format!("The sandbox cannot simulate this vehicle: {e}"),
            )
        })?;
    vehicle.state.is_authenticated = Some(true);
    vehicle.state.connection_status = StatusLevel::Ok;
    Ok(true)
}

fn spec_for(settings: &EvSettings, explicit_power: bool) -> VehicleSpec {
    let model = &settings.device_model;
    if let (Some(manufacturer), Some(name)) = (&model.manufacturer, &model.model)
        && let Ok(catalogue) = embedded_catalogue()
        && let Some(spec) = find_model(&catalogue, manufacturer, name)
    {
        return spec.clone();
    }
    let capacity = if settings.battery_capacity_kwh > 0.0 {
        settings.battery_capacity_kwh
    } else {
        DEFAULT_CAPACITY_KWH
    };
    let power_kw = if explicit_power && settings.expected_max_charge_power > 0 {
        f64::from(settings.expected_max_charge_power) / 1000.0
    } else {
        DEFAULT_AC_POWER_KW
    };
    let mut spec = VehicleSpec::new(capacity, power_kw, capacity / KWH_PER_KM);
    spec.manufacturer = model.manufacturer.clone().unwrap_or_default();
    spec.model = model.model.clone().unwrap_or_default();
    spec.year = model.year;
    spec
}

// ---- endpoints ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SandboxVehiclePath {
    #[allow(dead_code)] // checked by `OrgAccess`
    pub org_id: Uuid,
    pub electric_vehicle_id: Uuid,
}

/// The simulator's true state of a car (what the cloud would report, and more).
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxVehicleOut {
    pub vehicle_id: Uuid,
    /// The car's model: capacity (kWh), AC power (kW), WLTP range (km), …
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    pub as_of: DateTime<Utc>,
    pub battery_level_percent: f64,
    pub plugged_in: bool,
    /// Whether the car would charge while plugged in.
    pub charge_enabled: bool,
    pub is_charging: bool,
    pub charge_rate_w: f64,
    pub charge_limit_percent: i32,
    pub range_km: f64,
    pub latitude: f64,
    pub longitude: f64,
    pub home_latitude: f64,
    pub home_longitude: f64,
    /// Lifetime energy drawn from the grid, kWh.
    pub grid_energy_kwh: f64,
    pub odometer_km: f64,
    /// False after `revoke-authorization`: the cloud refuses every call for this car.
    pub is_authorized: bool,
    /// Commands accepted but not yet acted on.
    pub pending_commands: usize,
}

impl From<SandboxSnapshot> for SandboxVehicleOut {
    fn from(s: SandboxSnapshot) -> Self {
        SandboxVehicleOut {
            vehicle_id: s.vehicle_id,
            spec: serde_json::to_value(&s.spec).unwrap_or_default(),
            as_of: s.as_of,
            battery_level_percent: s.battery_level_percent,
            plugged_in: s.plugged_in,
            charge_enabled: s.charge_enabled,
            is_charging: s.is_charging,
            charge_rate_w: s.charge_rate_w,
            charge_limit_percent: s.charge_limit_percent,
            range_km: s.range_km,
            latitude: s.latitude,
            longitude: s.longitude,
            home_latitude: s.home_latitude,
            home_longitude: s.home_longitude,
            grid_energy_kwh: s.grid_energy_kwh,
            odometer_km: s.odometer_km,
            is_authorized: s.is_authorized,
            pending_commands: s.pending_commands,
        }
    }
}

/// `{"km": …}`: kilometres to drive (0–2,000).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only: the body is read field by field
pub struct DriveIn {
    #[schema(minimum = 0, maximum = 2000)]
    km: f64,
}

/// `{"battery_level": …}`: the new state of charge in percent (0–100).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct SetLevelIn {
    #[schema(minimum = 0, maximum = 100)]
    battery_level: f64,
}

/// Why a sandbox call failed. Kept apart from [`ApiError`] because "no sandbox on this server" is
/// a 404 that must say so, unlike the generic `Not Found`.
pub enum SandboxFailure {
    Api(ApiError),
    NotSimulated(String),
}

impl From<ApiError> for SandboxFailure {
    fn from(e: ApiError) -> Self {
        SandboxFailure::Api(e)
    }
}

impl From<StoreError> for SandboxFailure {
    fn from(e: StoreError) -> Self {
        SandboxFailure::Api(e.into())
    }
}

impl IntoResponse for SandboxFailure {
    fn into_response(self) -> Response {
        match self {
            SandboxFailure::Api(e) => e.into_response(),
            SandboxFailure::NotSimulated(detail) => {
                (StatusCode::NOT_FOUND, Json(json!({"detail": detail}))).into_response()
            }
        }
    }
}

type SandboxResult = Result<Json<SandboxVehicleOut>, SandboxFailure>;

/// The sandbox, once the vehicle is known to be a live EV of the caller's organisation that the
/// sandbox simulates. Anything else is a 404.
async fn simulated<'s>(
    state: &'s AppState,
    access: &OrgAccess,
    id: Uuid,
) -> Result<&'s SandboxCloud, SandboxFailure> {
    let sandbox = state.sandbox().ok_or_else(|| {
        SandboxFailure::NotSimulated(
            "This server runs without the sandbox simulator; the sandbox endpoints are unavailable"
                .to_owned(),
        )
    })?;
    // Tenancy first: another organisation's vehicle is simply not found.
    let vehicle = state.store().get_vehicle_in_org(access.org, id).await?;
    if vehicle.settings.device_model.cloud_service != Some(SANDBOX_CLOUD.id) {
        return Err(SandboxFailure::NotSimulated(format!(
            "Electric vehicle {id} is not connected through the sandbox cloud service ({})",
            SANDBOX_CLOUD.id
        )));
    }
    Ok(sandbox)
}

/// Runs a driver action and makes the vehicle due for a worker cycle at once, as a real cloud's
/// event (webhook) would, so the worker reacts within one cycle instead of at its next poll.
async fn act(
    state: &AppState,
    access: &OrgAccess,
    id: Uuid,
    field: &str,
    action: impl FnOnce(&SandboxCloud) -> Result<SandboxSnapshot, SandboxError>,
) -> SandboxResult {
    let sandbox = simulated(state, access, id).await?;
    let snapshot = driven(action(sandbox), field)?;
    state.store().wake_vehicle(access.org, id).await?;
    Ok(snapshot)
}

fn driven(result: Result<SandboxSnapshot, SandboxError>, field: &str) -> SandboxResult {
    match result {
        Ok(snapshot) => Ok(Json(snapshot.into())),
        Err(SandboxError::UnknownVehicle(id)) => Err(SandboxFailure::NotSimulated(format!(
            "Electric vehicle {id} is not simulated by this server's sandbox: its cloud service is \
             not the sandbox ({}), or it was created while this server ran without a sandbox \
             or before the sandbox was last restarted (simulated cars live in memory)",
            SANDBOX_CLOUD.id
        ))),
        Err(e @ (SandboxError::PluggedIn(_) | SandboxError::AlreadyExists(_))) => Err(
            SandboxFailure::Api(ApiError::Conflict(json!({"detail": e.to_string()}))),
        ),
        Err(SandboxError::Invalid(msg)) => Err(SandboxFailure::Api(ApiError::field(
            field,
            "value_error",
            msg,
        ))),
    }
}

/// Reads one required number from a body holding only that field.
fn required_number(body: JsonObject, key: &str, max: f64) -> Result<f64, ApiError> {
    let mut f = Fields::new(body, &[key], &[]);
    let value = f.number(key, 0.0, max, false);
    let value = f.not_null(key, value);
    if value.is_none() && !f.has_errors_for(key) {
        f.error(key, "missing", "Field required");
    }
    f.finish()?;
    value.ok_or_else(|| ApiError::field(key, "missing", "Field required"))
}

/// Read the simulator's true state of a sandbox EV.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}",
    tag = "Sandbox", params(SandboxVehiclePath),
    responses((status = 200, body = SandboxVehicleOut),
        (status = 404, description = "Not an EV of this organisation simulated by this server's sandbox, or no sandbox")),
    security(("bearer" = [])))]
pub async fn sandbox_vehicle(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<SandboxVehiclePath>,
) -> SandboxResult {
    let id = path.electric_vehicle_id;
    driven(simulated(&state, &access, id).await?.snapshot(id), "id")
}

/// Plug the car in. Like a real car it starts charging on its own until smart charging stops it.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/plug-in",
    tag = "Sandbox", params(SandboxVehiclePath),
    responses((status = 200, body = SandboxVehicleOut)),
    security(("bearer" = [])))]
pub async fn plug_in(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<SandboxVehiclePath>,
) -> SandboxResult {
    let id = path.electric_vehicle_id;
    act(&state, &access, id, "id", |sandbox| sandbox.plug_in(id)).await
}

/// Unplug the car (ends a live boost, as on a real car).
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/unplug",
    tag = "Sandbox", params(SandboxVehiclePath),
    responses((status = 200, body = SandboxVehicleOut)),
    security(("bearer" = [])))]
pub async fn unplug(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<SandboxVehiclePath>,
) -> SandboxResult {
    let id = path.electric_vehicle_id;
    act(&state, &access, id, "id", |sandbox| sandbox.unplug(id)).await
}

/// Drive `km` away at once (northwards), draining the battery; the car must be unplugged (409).
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/drive",
    tag = "Sandbox", params(SandboxVehiclePath), request_body = DriveIn,
    responses((status = 200, body = SandboxVehicleOut), (status = 409)),
    security(("bearer" = [])))]
pub async fn drive(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<SandboxVehiclePath>,
    body: JsonObject,
) -> SandboxResult {
    let km = required_number(body, "km", 2000.0)?;
    let id = path.electric_vehicle_id;
    act(&state, &access, id, "km", |sandbox| sandbox.drive(id, km)).await
}

/// Set the car's state of charge.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/set-level",
    tag = "Sandbox", params(SandboxVehiclePath), request_body = SetLevelIn,
    responses((status = 200, body = SandboxVehicleOut)),
    security(("bearer" = [])))]
pub async fn set_level(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<SandboxVehiclePath>,
    body: JsonObject,
) -> SandboxResult {
    let level = required_number(body, "battery_level", 100.0)?;
    let id = path.electric_vehicle_id;
    act(&state, &access, id, "battery_level", |sandbox| {
        sandbox.set_level(id, level)
    })
    .await
}

/// The owner revokes Voltplan's access: every cloud call for the car fails until restored, and
/// the worker raises a `reauthenticate` action.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/revoke-authorization",
    tag = "Sandbox", params(SandboxVehiclePath),
    responses((status = 200, body = SandboxVehicleOut)),
    security(("bearer" = [])))]
pub async fn revoke_authorization(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<SandboxVehiclePath>,
) -> SandboxResult {
    let id = path.electric_vehicle_id;
    act(&state, &access, id, "id", |sandbox| {
        sandbox.revoke_authorization(id)
    })
    .await
}

/// Give Voltplan its access back.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/restore-authorization",
    tag = "Sandbox", params(SandboxVehiclePath),
    responses((status = 200, body = SandboxVehicleOut)),
    security(("bearer" = [])))]
pub async fn restore_authorization(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<SandboxVehiclePath>,
) -> SandboxResult {
    let id = path.electric_vehicle_id;
    act(&state, &access, id, "id", |sandbox| {
        sandbox.restore_authorization(id)
    })
    .await
}
