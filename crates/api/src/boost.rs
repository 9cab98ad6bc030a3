//! `POST/DELETE …/electric-vehicles/{electric_vehicle_id}/boost`: charge now, or arm a boost for
//! the next plug-in (Podero §3.6, §4.9).
//!
//! The API never steers a car itself: it records the wish in the vehicle's settings
//! (`boost_requested_at`, `boost_for_next_session`), which makes the worker re-plan at once; the
//! worker starts the charge and reports `boost_state` (`ongoing`, …) in the state.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use sha1::{Digest, Sha1};
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_core::vehicle::{BoostState, EvSettings, EvState};

use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, VehiclePath};
use crate::state::AppState;

/// A name-based UUID (RFC 9562 version 5, SHA-1) of `name` in the namespace `namespace`.
pub fn uuid_v5(namespace: Uuid, name: &str) -> Uuid {
    let mut hasher = Sha1::new();
    hasher.update(namespace.as_bytes());
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// The `boost_state` a client sees. The worker owns `state.boost_state`; a request it has not taken
/// up yet lives only in the settings, and shows as `requested` (Podero's short-lived state that
/// clients poll until `ongoing`).
pub fn effective_boost_state(settings: &EvSettings, state: &EvState) -> BoostState {
    shown_boost_state(settings.boost_requested_at.is_some(), state.boost_state)
}

/// The `boost_state` a client sees of any device: the worker's, or `requested` while a request
/// waits for the worker.
pub fn shown_boost_state(requested: bool, worker: BoostState) -> BoostState {
    if requested && worker != BoostState::Ongoing {
        BoostState::Requested
    } else {
        worker
    }
}

/// The body of a refused boost: `{state, reason}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoostConflictOut {
    /// The current `boost_state`.
    #[schema(value_type = crate::schemas::BoostState)]
    pub state: BoostState,
    /// `already_charging` or `fully_charged`.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BoostDecision {
    /// Plugged in and idle: ask the worker to charge now.
    ChargeNow,
    /// Not plugged in: arm the boost for the next plug-in.
    ArmNextSession,
    Refuse(BoostState, &'static str),
}

fn decide(settings: &EvSettings, state: &EvState) -> BoostDecision {
    let shown = effective_boost_state(settings, state);
    if matches!(shown, BoostState::Requested | BoostState::Ongoing) {
        return BoostDecision::Refuse(shown, "already_charging");
    }
    // An unknown plug state is treated as unplugged: arming is harmless, and fires at the next
    // plug-in the worker sees.
    if state.is_plugged_in != Some(true) {
        return BoostDecision::ArmNextSession;
    }
    if state.is_charging == Some(true) {
        return BoostDecision::Refuse(shown, "already_charging");
    }
    // Full means the car's own cap (`charge_target_max`, detected by the worker), else 100 %.
    let cap = state.charge_target_max.unwrap_or(100);
    if state.is_fully_charged == Some(true) || state.battery_level.is_some_and(|l| l >= cap) {
        return BoostDecision::Refuse(shown, "fully_charged");
    }
    BoostDecision::ChargeNow
}

/// Boost: charge now, bypassing optimisation.
///
/// Plugged in and idle: the worker starts charging at once (204); `boost_state` shows `requested`
/// until the worker reports `ongoing`. Not plugged in: `boost_for_next_session` is set (204,
/// idempotent) and the next plug-in starts the boost. Already boosting or charging: 409
/// `{"state": …, "reason": "already_charging"}`. Full (`is_fully_charged`, or `battery_level` at the
/// car's cap `charge_target_max`, else 100): 409 `{"state": …, "reason": "fully_charged"}`.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/boost",
    tag = "User Electric Vehicles", params(VehiclePath),
    responses((status = 204, description = "Boost requested, or armed for the next plug-in"), (status = 409, body = BoostConflictOut)),
    security(("bearer" = [])))]
pub async fn start_boost(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
) -> ApiResult<StatusCode> {
    let now = state.now();
    // Decided inside the update's transaction, on the row as it is now; a refusal rolls back.
    let mut decision = None;
    let outcome = state
        .store()
        .update_vehicle(
            access.org,
            path.user_id,
            path.electric_vehicle_id,
            Box::new(|v| {
                let d = decide(&v.settings, &v.state);
                decision = Some(d);
                match d {
                    BoostDecision::ChargeNow => v.settings.boost_requested_at = Some(now),
                    // Re-arming writes nothing (and does not disturb the worker's schedule).
                    BoostDecision::ArmNextSession if v.settings.boost_for_next_session => {
                        return Err(Vec::new());
                    }
                    BoostDecision::ArmNextSession => v.settings.boost_for_next_session = true,
                    BoostDecision::Refuse(..) => return Err(Vec::new()),
                }
                v.updated_at = now;
                Ok(())
            }),
        )
        .await;
    finish(
        outcome,
        decision.map(|d| match d {
            BoostDecision::Refuse(state, reason) => Some((state, reason)),
            _ => None,
        }),
    )
}

/// Disarm the boost for the next session.
///
/// Clears `boost_for_next_session` and a boost request the worker has not taken up yet; 204, also
/// when nothing was armed. As for Podero EVs, a boost that is already `ongoing` is **not**
/// cancelled: it ends when the battery is full, the car is unplugged or the car stops it.
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/boost",
    tag = "User Electric Vehicles", params(VehiclePath),
    responses((status = 204, description = "Nothing is armed any more")),
    security(("bearer" = [])))]
pub async fn cancel_boost(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
) -> ApiResult<StatusCode> {
    let now = state.now();
    let mut touched = None;
    let outcome = state
        .store()
        .update_vehicle(
            access.org,
            path.user_id,
            path.electric_vehicle_id,
            Box::new(|v| {
                let pending_request = v.settings.boost_requested_at.is_some()
                    && v.state.boost_state != BoostState::Ongoing;
                let changed = v.settings.boost_for_next_session || pending_request;
                touched = Some(changed);
                if !changed {
                    // Nothing to clear: write nothing, so the worker's schedule is left alone.
                    return Err(Vec::new());
                }
                v.settings.boost_for_next_session = false;
                if pending_request {
                    v.settings.boost_requested_at = None;
                }
                v.updated_at = now;
                Ok(())
            }),
        )
        .await;
    finish(outcome, touched.map(|_| None))
}

/// Maps a boost update's result (of any device): `refusal` is `None` when the mutation never ran
/// (the device was not found), `Some(None)` when it ran and the request succeeded (written, or nothing to write),
/// `Some(Some(..))` when the boost was refused.
pub(crate) fn finish<T>(
    outcome: voltplan_store::Result<T>,
    refusal: Option<Option<(BoostState, &'static str)>>,
) -> ApiResult<StatusCode> {
    match (outcome, refusal) {
        (Ok(_), _) => Ok(StatusCode::NO_CONTENT),
        (Err(voltplan_store::StoreError::Invalid(errors)), Some(None)) if errors.is_empty() => {
            Ok(StatusCode::NO_CONTENT)
        }
        (Err(voltplan_store::StoreError::Invalid(errors)), Some(Some((state, reason))))
            if errors.is_empty() =>
        {
            let body = BoostConflictOut {
                state,
                reason: reason.to_owned(),
            };
            Err(ApiError::Conflict(
                serde_json::to_value(body).map_err(ApiError::internal)?,
            ))
        }
        (Err(e), _) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugged(level: i32) -> EvState {
        EvState {
            is_plugged_in: Some(true),
            battery_level: Some(level),
            ..EvState::default()
        }
    }

    #[test]
    fn decisions_follow_podero_rules() {
        let s = EvSettings::default();
        assert_eq!(decide(&s, &plugged(40)), BoostDecision::ChargeNow);
        assert_eq!(
            decide(&s, &EvState::default()),
            BoostDecision::ArmNextSession
        );
        let capped = EvState {
            charge_target_max: Some(80),
            ..plugged(80)
        };
        assert_eq!(
            decide(&s, &capped),
            BoostDecision::Refuse(BoostState::Unavailable, "fully_charged")
        );
        let charging = EvState {
            is_charging: Some(true),
            ..plugged(40)
        };
        assert_eq!(
            decide(&s, &charging),
            BoostDecision::Refuse(BoostState::Unavailable, "already_charging")
        );
        let requested = EvSettings {
            boost_requested_at: Some(chrono::Utc::now()),
            ..EvSettings::default()
        };
        assert_eq!(
            decide(&requested, &plugged(40)),
            BoostDecision::Refuse(BoostState::Requested, "already_charging")
        );
    }

    #[test]
    fn uuid_v5_matches_the_rfc_example() {
        // RFC 9562 appendix A.4: "www.example.com" in the DNS namespace.
        let dns = Uuid::parse_str("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap();
        assert_eq!(
            uuid_v5(dns, "www.example.com").to_string(),
            "2ed6657d-e927-568b-95e1-2665a8aea6a2"
        );
    }
}
