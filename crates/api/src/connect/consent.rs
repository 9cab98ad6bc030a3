//! The consent page of an `auth_session` (`auth_session.rs`): `GET /connect/{session_id}` shows
//! the vehicle and an *Allow* / *Deny* form; `POST /connect/{session_id}` records the decision
//! once, acts on it and sends the browser on to the partner's URL.
//!
//! The driver's browser opens it, so there is no bearer token: the random session id is the
//! secret. Not part of the partner API (and not in its OpenAPI document). Pages are
//! self-contained HTML (no scripts, no external assets) and every interpolated value is escaped.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use voltplan_clouds::{CloudError, CloudVehicleRef};
use voltplan_store::{AuthSessionOutcome, AuthSessionRecord, OrgScope, StoreError, VehicleRecord};

use super::page::{
    escape, forbidden_page, forgery_refusal, internal_error_page, not_found_page, page,
    with_form_targets, with_page_headers,
};
use super::text::Lang;
use crate::auth_session::relink_refusal;
use crate::state::AppState;

/// How the vehicle is named to its driver: manufacturer and model, else its id.
fn vehicle_name(vehicle: &VehicleRecord) -> String {
    let model = &vehicle.settings.device_model;
    let name = [model.manufacturer.as_deref(), model.model.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        format!("vehicle {}", vehicle.id)
    } else {
        name
    }
}

/// The open session named by the path and its live vehicle, or the page to answer instead.
async fn open_session(
    state: &AppState,
    id: Result<Path<String>, PathRejection>,
    now: DateTime<Utc>,
) -> Result<(AuthSessionRecord, VehicleRecord), Response> {
    // A malformed id is as unknown as a wrong one.
    let id = id
        .ok()
        .and_then(|Path(raw)| Uuid::parse_str(&raw).ok())
        .ok_or_else(|| not_found_page(Lang::En))?;
    let session = match state.store().get_auth_session(id).await {
        Ok(session) if session.is_open(now) => session,
        Ok(_) | Err(StoreError::NotFound) => return Err(not_found_page(Lang::En)),
        Err(e) => return Err(internal_error_page(Lang::En, e)),
    };
    let vehicle = match state
        .store()
        .get_vehicle_in_org(OrgScope::new(session.org_id), session.vehicle_id)
        .await
    {
        Ok(vehicle) => vehicle,
        // Deleted since the session was created.
        Err(StoreError::NotFound) => return Err(not_found_page(Lang::En)),
        Err(e) => return Err(internal_error_page(Lang::En, e)),
    };
    Ok((session, vehicle))
}

/// The consent page.
pub async fn consent_page(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let (session, vehicle) = match open_session(&state, id, state.now()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let body = format!(
        "<p>Your energy provider asks to reconnect smart charging to your vehicle \
         <strong>{name}</strong>. If you allow it, Voltplan can again read the vehicle's battery \
         level, plug state and location and start and stop its charging.</p>\
         <form method=\"post\" action=\"{id}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
         </form><p><small>This link can be used once, until {expires} UTC.</small></p>",
        name = escape(&vehicle_name(&vehicle)),
        // Relative to /connect/: works behind a reverse proxy's path prefix too.
        id = escape(&session.id.to_string()),
        expires = escape(&session.expires_at.format("%Y-%m-%d %H:%M").to_string()),
    );
    with_form_targets(
        page(StatusCode::OK, Lang::En, "Reconnect your vehicle", &body),
        [&session.success_url, &session.cancel_url]
            .into_iter()
            .flatten()
            .map(String::as_str),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny,
}

/// `decision=allow|deny` from a form body.
fn decision(body: &[u8]) -> Option<Decision> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "decision")
        .and_then(|(_, value)| match value.as_ref() {
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            _ => None,
        })
}

/// The driver's decision: recorded once, then acted on.
pub async fn decide(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(why) = forgery_refusal(&headers, state.public_url()) {
        tracing::warn!(reason = %why, "refused a cross-site post to a consent page");
        return forbidden_page(Lang::En);
    }
    let now = state.now();
    let (session, vehicle) = match open_session(&state, id, now).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Some(decision) = body.ok().as_deref().and_then(decision) else {
        return page(
            StatusCode::BAD_REQUEST,
            Lang::En,
            "Choose Allow or Deny",
            "<p>The form was not understood. Go back and choose <em>Allow</em> or \
             <em>Deny</em>.</p>",
        );
    };
    if decision == Decision::Allow
        && let Some(why) = relink_refusal(&state, &vehicle)
    {
        // The session stays open: the driver may still deny, or retry once the server can.
        // The session id is a secret: logged by vehicle only.
        tracing::warn!(vehicle_id = %vehicle.id, reason = %why, "cannot re-link from the consent page");
        return page(
            StatusCode::CONFLICT,
            Lang::En,
            "Cannot reconnect here",
            "<p>This vehicle cannot be reconnected through this page. Please contact your \
             energy provider.</p>",
        );
    }
    let outcome = match decision {
        Decision::Allow => AuthSessionOutcome::Success,
        Decision::Deny => AuthSessionOutcome::Cancelled,
    };
    let org = OrgScope::new(session.org_id);
    // Claim the session before acting: of two concurrent posts only one gets here.
    match state
        .store()
        .complete_auth_session(org, session.id, outcome, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return not_found_page(Lang::En),
        Err(e) => return internal_error_page(Lang::En, e),
    }
    match decision {
        Decision::Allow => {
            restore_link(&state, org, &vehicle).await;
            finish(
                session.success_url.as_deref(),
                "Connected",
                "<p>Smart charging can reach your vehicle again. You can close this window.</p>",
            )
        }
        Decision::Deny => finish(
            session.cancel_url.as_deref(),
            "Not connected",
            "<p>Nothing was changed. You can close this window.</p>",
        ),
    }
}

/// Gives the car its link back through its cloud (`VehicleCloud::restore_link`) and makes the
/// worker read it in its next cycle. The session is already completed, so failures are logged, not
/// shown: the worker's regular poll of a revoked car picks the change up later anyway.
async fn restore_link(state: &AppState, org: OrgScope, vehicle: &VehicleRecord) {
    let cloud = vehicle
        .settings
        .device_model
        .cloud_service
        .and_then(|id| state.cloud(id));
    if let Some(cloud) = cloud {
        let reference =
            CloudVehicleRef::of_device(vehicle.id, vehicle.settings.external_device_id.as_deref());
        match cloud.restore_link(&reference).await {
            Ok(()) => {}
            // The sandbox keeps cars in memory only; the worker registers an unknown sandbox car,
            // authorised, when it next reads it.
            Err(CloudError::UnknownVehicle) => tracing::warn!(
                vehicle_id = %vehicle.id,
                "re-linked a car its cloud does not know; the worker registers it"
            ),
            Err(error) => {
                tracing::error!(vehicle_id = %vehicle.id, %error, "restoring the link failed")
            }
        }
    }
    if let Err(error) = state.store().wake_vehicle(org, vehicle.id).await {
        tracing::warn!(vehicle_id = %vehicle.id, %error, "could not wake the re-linked vehicle");
    }
}

/// 303 to the partner's URL, or a page saying what happened.
fn finish(url: Option<&str>, title: &str, body_html: &str) -> Response {
    // Stored URLs are normalised (ASCII), so a header value always fits.
    match url.and_then(|u| HeaderValue::from_str(u).ok()) {
        Some(location) => {
            let response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
            with_page_headers(response)
        }
        None => page(StatusCode::OK, Lang::En, title, body_html),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_read_from_the_form() {
        assert_eq!(decision(b"decision=allow"), Some(Decision::Allow));
        assert_eq!(decision(b"x=1&decision=deny"), Some(Decision::Deny));
        assert_eq!(decision(b"decision=maybe"), None);
        assert_eq!(decision(b""), None);
    }
}
