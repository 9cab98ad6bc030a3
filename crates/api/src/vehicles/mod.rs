//! `/org/{org_id}/users/{user_id}/electric-vehicles`: the object of the seed page, field for
//! field, with its types, nullability, enums and defaults.
//! The object shown is in `out.rs`, the body written in `write.rs`; the handlers are here. The
//! weekly charge policy (`…/charge-policy`) is in `policy.rs`.

pub(crate) mod out;
pub(crate) mod policy;
pub(crate) mod write;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use voltplan_store::{StoreError, UserRecord, new_vehicle};

pub(crate) use out::{DeviceModelOut, DeviceTypeOut, OwnerOut};
pub use out::{ElectricVehicleDetailOut, ElectricVehicleOut, vehicle_detail, vehicle_out};
use write::{ElectricVehicleWrite, VehiclePatch};

use crate::auth::OrgAccess;
use crate::body::{JsonObject, Patch};
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, IncludeDeleted, Q, UserPath, VehiclePath};
use crate::state::AppState;

/// The owner of a POST or PUT and the patch its body asks for. A missing user is a 404 before the
/// body is read; a building the body names must be a live building of that user.
async fn owner_and_patch(
    state: &AppState,
    access: &OrgAccess,
    user_id: Uuid,
    body: JsonObject,
    now: DateTime<Utc>,
) -> ApiResult<(UserRecord, VehiclePatch)> {
    let owner = state.store().get_user(access.org, user_id, false).await?;
    let patch = write::read_patch(body, now)?;
    check_building(state, access, user_id, ("building", &patch.building)).await?;
    Ok((owner, patch))
}

/// A building named in a body (under `key`) must be a live building of the same user (of any
/// device's or contract's body).
pub(crate) async fn check_building(
    state: &AppState,
    access: &OrgAccess,
    user_id: Uuid,
    (key, building): (&'static str, &Patch<Uuid>),
) -> ApiResult<()> {
    if let Patch::Set(id) = building {
        match state
            .store()
            .get_building(access.org, user_id, *id, false)
            .await
        {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(ApiError::field(
                    key,
                    "value_error",
                    "No such building for this user",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// List a user's electric vehicles.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles", tag = "User Electric Vehicles",
    params(UserPath, IncludeDeleted),
    responses((status = 200, body = [ElectricVehicleOut])),
    security(("bearer" = [])))]
pub async fn list_vehicles(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<Vec<ElectricVehicleOut>>> {
    let (owner, vehicles) = state
        .store()
        .list_vehicles_with_owner(access.org, path.user_id, query.include_deleted)
        .await?;
    let now = state.now();
    Ok(Json(
        vehicles
            .into_iter()
            .map(|v| vehicle_out(v, &owner, now))
            .collect(),
    ))
}

/// Register an electric vehicle for a user. Answers 200 as Podero does.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles", tag = "User Electric Vehicles",
    params(UserPath), request_body = ElectricVehicleWrite,
    responses((status = 200, body = ElectricVehicleDetailOut)),
    security(("bearer" = [])))]
pub async fn create_vehicle(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    body: JsonObject,
) -> ApiResult<Json<ElectricVehicleDetailOut>> {
    let now = state.now();
    let (owner, patch) = owner_and_patch(&state, &access, path.user_id, body, now).await?;
    let explicit_power = patch.expected_max_charge_power.is_some();
    let mut vehicle = new_vehicle(access.org, path.user_id, now);
    write::apply_patch(patch, &mut vehicle, now).map_err(ApiError::Invalid)?;
    // A sandbox EV is connected at once: the simulator gets the car before the row exists, and
    // loses it again if the row cannot be written.
    let simulated =
        crate::sandbox::connect_at_creation(&state, &access, &owner, &mut vehicle, explicit_power)
            .await?;
    let created = match state.store().create_vehicle(access.org, &vehicle).await {
        Ok(created) => created,
        Err(e) => {
            if let (true, Some(sandbox)) = (simulated, state.sandbox()) {
                let _ = sandbox.remove_vehicle(vehicle.id);
            }
            return Err(e.into());
        }
    };
    Ok(Json(vehicle_detail(
        created,
        &owner,
        &crate::cues::CueLinks::of(&state),
        now,
    )))
}

/// Get one electric vehicle, with its pending actions.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}", tag = "User Electric Vehicles",
    params(VehiclePath, IncludeDeleted),
    responses((status = 200, body = ElectricVehicleDetailOut)),
    security(("bearer" = [])))]
pub async fn get_vehicle(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<ElectricVehicleDetailOut>> {
    let owner = state
        .store()
        .get_user(access.org, path.user_id, query.include_deleted)
        .await?;
    let vehicle = state
        .store()
        .get_vehicle(
            access.org,
            path.user_id,
            path.electric_vehicle_id,
            query.include_deleted,
        )
        .await?;
    Ok(Json(vehicle_detail(
        vehicle,
        &owner,
        &crate::cues::CueLinks::of(&state),
        state.now(),
    )))
}

/// Update an electric vehicle's settings: a partial update; `null` clears a nullable field.
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}", tag = "User Electric Vehicles",
    params(VehiclePath), request_body = ElectricVehicleWrite,
    responses((status = 200, body = ElectricVehicleDetailOut)),
    security(("bearer" = [])))]
pub async fn update_vehicle(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    body: JsonObject,
) -> ApiResult<Json<ElectricVehicleDetailOut>> {
    let now = state.now();
    let (owner, patch) = owner_and_patch(&state, &access, path.user_id, body, now).await?;
    let updated = state
        .store()
        .update_vehicle(
            access.org,
            path.user_id,
            path.electric_vehicle_id,
            Box::new(move |v| write::apply_patch(patch, v, now)),
        )
        .await?;
    Ok(Json(vehicle_detail(
        updated,
        &owner,
        &crate::cues::CueLinks::of(&state),
        now,
    )))
}

/// Delete an electric vehicle (soft: it stays readable with `include_deleted=true`).
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}", tag = "User Electric Vehicles",
    params(VehiclePath),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete_vehicle(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
) -> ApiResult<StatusCode> {
    state
        .store()
        .delete_vehicle(
            access.org,
            path.user_id,
            path.electric_vehicle_id,
            state.now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
