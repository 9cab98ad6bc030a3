//! `GET …/electric-vehicles/{electric_vehicle_id}/plan`: the charging plan the worker made for the
//! vehicle. A Voltplan extension; Podero has no such endpoint.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use voltplan_core::PriceSlot;
use voltplan_core::tariff::customer_prices;
use voltplan_store::StoreError;

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
    /// The day-ahead prices of the plan's window (from its first interval to its deadline or last
    /// interval), as the planner saw them for this organisation: its uploads over public prices.
    /// Slots the planner had to forecast are listed in `plan.forecast_prices`.
    pub prices: Vec<PlanPriceOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanPriceOut {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub price_eur_mwh: f64,
    /// `entsoe`, `upload`, `file:<name>`…
    pub source: String,
    /// The customer's price for this slot under the contract that priced the plan
    /// (`plan.pricing.basis` is `customer`), per MWh in `plan.pricing.currency`; otherwise null.
    pub customer_price_per_mwh: Option<f64>,
}

/// The instants a stored plan spans, read leniently: the plan's schema belongs to the worker.
fn plan_window(plan: &serde_json::Value) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let instant = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
    let intervals = plan.get("intervals")?.as_array()?;
    let start = intervals
        .iter()
        .filter_map(|i| i.get("start").and_then(instant))
        .min()?;
    let last_end = intervals
        .iter()
        .filter_map(|i| i.get("end").and_then(instant))
        .max()?;
    let end = plan
        .get("deadline")
        .and_then(instant)
        .map_or(last_end, |d| d.max(last_end));
    Some((start, end))
}

/// Get the vehicle's current charging plan (Voltplan extension).
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/plan",
    tag = "User Electric Vehicles", params(VehiclePath),
    responses((status = 200, body = PlanOut)),
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
    let mut prices: Vec<PlanPriceOut> = match plan.as_ref().and_then(plan_window) {
        Some((from, to)) => voltplan_store::read_zone_prices(
            state.store(),
            vehicle.price_zone,
            Some(access.org),
            from,
            to,
        )
        .await?
        .into_iter()
        .map(|p| PlanPriceOut {
            start: p.start,
            end: p.end,
            price_eur_mwh: p.price_eur_mwh,
            source: p.source,
            customer_price_per_mwh: None,
        })
        .collect(),
        None => Vec::new(),
    };
    // The contract the worker priced the plan with, if it still exists.
    let contract_id = plan
        .as_ref()
        .filter(|p| p.pointer("/pricing/basis").and_then(|b| b.as_str()) == Some("customer"))
        .and_then(|p| p.pointer("/pricing/energy_contract_id"))
        .and_then(|id| id.as_str())
        .and_then(|id| id.parse().ok());
    if let Some(id) = contract_id {
        match state
            .store()
            .get_energy_contract(access.org, vehicle.user_id, id, false)
            .await
        {
            Ok(contract) => {
                let slots: Vec<PriceSlot> = prices
                    .iter()
                    .map(|p| PriceSlot {
                        start: p.start,
                        end: p.end,
                        price_eur_mwh: p.price_eur_mwh,
                    })
                    .collect();
                if let Ok(customer) =
                    customer_prices(&contract.contract, &slots, vehicle.price_zone)
                {
                    for (out, slot) in prices.iter_mut().zip(customer.slots) {
                        out.customer_price_per_mwh = Some(slot.price_eur_mwh);
                    }
                }
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(PlanOut {
        plan,
        reason: reason.map(str::to_owned),
        prices,
    }))
}
