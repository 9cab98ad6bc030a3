//! Webhooks vehicle clouds send to Voltplan. Smartcar (`POST /webhooks/smartcar`, the URL set in
//! its dashboard): the `SC-Signature` header is checked on the raw body, in constant time, before
//! anything is parsed (key: the application management token); the `VERIFY` challenge is
//! answered; a vehicle-state event is applied once per event id (Smartcar delivers at least
//! once), merged field by field by the car's own timestamps (deliveries are not ordered), and
//! wakes the linked EVs so the worker acts on it within a cycle, reading the pushed state instead
//! of polling the car.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use voltplan_clouds::smartcar::{self, SMARTCAR_CLOUD, WebhookEventKind};

use crate::state::AppState;

/// `POST /webhooks/smartcar`.
pub async fn smartcar(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(cloud) = state.smartcar() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let signature = headers
        .get("sc-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !smartcar::verify_signature(&cloud.config().management_token, &body, signature) {
        tracing::warn!("refused a Smartcar webhook with a wrong or missing SC-Signature");
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "invalid signature"})),
        )
            .into_response();
    }
    let event = match smartcar::parse_event(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "a signed Smartcar webhook was not understood");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"detail": "payload not understood"})),
            )
                .into_response();
        }
    };
    match event.kind {
        WebhookEventKind::Verify { challenge } => Json(json!({
            "challenge": smartcar::challenge_response(&cloud.config().management_token, &challenge)
        }))
        .into_response(),
        WebhookEventKind::VehicleState {
            vehicle_id,
            state: signals,
            ..
        } => {
            let merge = Box::new(move |old: Option<serde_json::Value>| {
                smartcar::merge(old.as_ref(), &signals)
            });
            match state
                .store()
                .apply_pushed_state(
                    SMARTCAR_CLOUD.id,
                    &event.event_id,
                    &vehicle_id,
                    merge,
                    state.now(),
                )
                .await
            {
                Ok(fresh) => {
                    tracing::debug!(event_id = %event.event_id, fresh, "applied a Smartcar vehicle state");
                    StatusCode::NO_CONTENT.into_response()
                }
                Err(error) => {
                    // Smartcar retries a failed delivery: a 5xx asks for that.
                    tracing::warn!(%error, "could not store a Smartcar vehicle state");
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                }
            }
        }
        // Errors and event types Voltplan does not use are acknowledged, or Smartcar retries.
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}
