//! `GET …/electric-vehicles/{electric_vehicle_id}/plan`: the charging plan the worker made for the
//! vehicle. A Voltplan extension; Podero has no such endpoint.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::OrgAccess;
use crate::error::ApiResult;
use crate::params::{Ids, VehiclePath};
use crate::state::AppState;

/// The current plan, or why there is none.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOut {
    /// The plan exactly as the worker stored it (its schema belongs to the worker and may grow);
    /// `null` when there is none yet.
    #[schema(value_type = Option<Object>)]
    pub plan: Option<serde_json::Value>,
    /// Set when `plan` is null: `not_plugged_in` (a plan is made when the car is plugged in; a new
    /// vehicle starts unplugged), `no_cycle_yet` (the worker has not observed the vehicle yet) or
    /// `not_planned_yet` (the next cycle will make one).
    pub reason: Option<String>,
}

/// Get the vehicle's current charging plan (Voltplan extension).
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/plan",
    tag = "User Electric Vehicles", params(VehiclePath),
    responses((status = 200, body = PlanOut), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_plan(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
) -> ApiResult<Json<PlanOut>> {
    // Reading the vehicle first checks that it belongs to this user, not only to the organisation.
    let vehicle = state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    let plan = state
        .store()
        .vehicle_plan(access.org, path.electric_vehicle_id)
        .await?;
    let reason = match &plan {
        Some(_) => None,
        None if vehicle.state.is_plugged_in != Some(true) => Some("not_plugged_in"),
        // Plugged in (as last seen) but never observed by a cycle: the worker has yet to run.
        None if vehicle.state.last_monitoring_executed_at.is_none()
            && vehicle.state.current_state_last_updated_at.is_none() =>
        {
            Some("no_cycle_yet")
        }
        None => Some("not_planned_yet"),
    };
    Ok(Json(PlanOut {
        plan,
        reason: reason.map(str::to_owned),
    }))
}
