//! `POST …/electric-vehicles/{electric_vehicle_id}/auth_session`: re-link a vehicle whose cloud
//! authorisation lapsed (Podero §3.6, §4.4). It stores a session and answers the URL of a consent
//! page (`connect.rs`) the partner sends the driver's browser to.
//!
//! Only the built-in sandbox cloud can be re-linked here: a real cloud's account is re-linked
//! through its own login, on the Connect pages a cue's `/resolve` opens (`cues.rs`). Any other
//! vehicle answers 409.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_clouds::registry;
use voltplan_store::{AuthSessionRecord, VehicleRecord};

use crate::auth::OrgAccess;
use crate::body::{Fields, OptionalJsonObject, Patch};
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, VehiclePath};
use crate::state::AppState;

const WRITABLE: &[&str] = &["success_url", "cancel_url"];

/// Podero's limit for these URLs (device onboarding sessions).
const MAX_URL_CHARS: usize = 8000;

/// Where to send the driver's browser after the consent page. Both optional.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only: the body is read field by field
pub struct AuthSessionIn {
    /// Absolute `http`/`https` URL the browser is redirected to (303) when the driver allows
    /// access. `null` or absent: the page says the vehicle is connected.
    #[schema(max_length = 8000)]
    success_url: Option<String>,
    /// Absolute `http`/`https` URL the browser is redirected to (303) when the driver denies
    /// access. `null` or absent: the page says nothing was changed.
    #[schema(max_length = 8000)]
    cancel_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthSessionOut {
    /// The consent page to open in the driver's browser. It needs no token: whoever holds this
    /// URL can decide, so hand it only to the driver.
    pub authentication_url: String,
    /// The electric vehicle's id.
    pub device_id: Uuid,
    pub session_id: Uuid,
}

/// Podero: "Sessions stay valid until the end of the next day". Days are UTC, like every other
/// date of this API, so a session created at any time on day D ends at 00:00 UTC on D + 2.
pub(crate) fn session_expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .checked_add_days(Days::new(2))
        .unwrap_or(NaiveDate::MAX)
        .and_time(NaiveTime::MIN)
        .and_utc()
}

/// The cloud services whose links are restored on Voltplan's consent page, for messages.
fn relinkable_services() -> String {
    registry::REGISTRY
        .iter()
        .filter(|e| e.capabilities.relinks_on_consent_page)
        .map(|e| e.service.id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why this server cannot re-link `vehicle`, if it cannot (shared with the consent page, where
/// the server may have been restarted without the sandbox since the session was created).
pub(crate) fn relink_refusal(state: &AppState, vehicle: &VehicleRecord) -> Option<String> {
    let cloud = vehicle.settings.device_model.cloud_service;
    if !cloud.is_some_and(|id| registry::capabilities(id).relinks_on_consent_page) {
        let which = cloud.map_or_else(
            || "names no cloud service".to_owned(),
            |id| format!("is connected through cloud service {id}"),
        );
        return Some(format!(
            "Electric vehicle {} {which}, which does not support re-authentication through this \
             server; only sandbox vehicles (cloud_service {}) can be re-linked here",
            vehicle.id,
            relinkable_services()
        ));
    }
    if cloud.and_then(|id| state.cloud(id)).is_none() {
        return Some(format!(
            "Electric vehicle {} is a sandbox vehicle, but this server runs without the sandbox \
             simulator, so it cannot re-authenticate it",
            vehicle.id
        ));
    }
    None
}

/// A redirect target: an absolute `http`/`https` URL, returned in its normalised (WHATWG)
/// serialisation, which is ASCII and therefore always a valid `Location` header.
fn redirect_target(input: &str) -> Result<String, (&'static str, &'static str)> {
    let url = url::Url::parse(input.trim()).map_err(|_| {
        (
            "url_parsing",
            "Input should be an absolute URL, e.g. https://example.com/done",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(("url_scheme", "URL scheme should be 'http' or 'https'"));
    }
    Ok(url.into())
}

pub(crate) fn redirect_field(f: &mut Fields, key: &str) -> Option<String> {
    match f.string(key, MAX_URL_CHARS, false) {
        Patch::Set(input) => match redirect_target(&input) {
            Ok(url) => Some(url),
            Err((kind, msg)) => {
                f.error(key, kind, msg);
                None
            }
        },
        Patch::Null | Patch::Absent => None,
    }
}

/// Re-authenticate the vehicle's cloud link.
///
/// Podero's older way to resolve the `reauthenticate` action (its `resolution_link` now points
/// at the cue's `/resolve`, which works for every cloud drivers log in to). Answers an
/// `authentication_url`: open it in the driver's browser. It is Voltplan's consent page,
/// `GET /connect/{session_id}` (no bearer token: the random session id is the secret; not part of
/// this partner API), which names the vehicle and offers *Allow* and *Deny*, posted to
/// `POST /connect/{session_id}`. *Allow* restores the link and redirects (303) to `success_url`;
/// *Deny* changes nothing and redirects to `cancel_url`; without a URL the page says what
/// happened. The worker re-reads the vehicle in its next cycle, after which the action is gone and
/// `is_authenticated` is true. A session can be decided once and stays valid until the end of the
/// next day (UTC); after that the page answers 404.
///
/// `success_url` and `cancel_url` are optional; when given they must be absolute `http`/`https`
/// URLs (else 422), and they are stored normalised.
///
/// **Which vehicles.** Only vehicles of the built-in sandbox cloud (`cloud_service`
/// `01950000-0000-7000-8000-5a4ed60c0001`) on a server that runs the sandbox can be re-linked
/// on this consent page: a real cloud's account is re-linked through the cue's `/resolve` (its
/// own login). Any other vehicle, or a server without the sandbox, answers **409**
/// `{"detail": "…"}`.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/auth_session",
    tag = "User Electric Vehicles", params(VehiclePath), request_body = AuthSessionIn,
    responses((status = 200, body = AuthSessionOut),
        (status = 404, description = "No such live vehicle of this user in this organisation"),
        (status = 409, description = "The vehicle's cloud does not support re-authentication through this server"),
        (status = 422, description = "A URL is not an absolute http or https URL, or an unknown field")),
    security(("bearer" = [])))]
pub async fn create_auth_session(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<VehiclePath>,
    OptionalJsonObject(body): OptionalJsonObject,
) -> ApiResult<Json<AuthSessionOut>> {
    let now = state.now();
    let vehicle = state
        .store()
        .get_vehicle(access.org, path.user_id, path.electric_vehicle_id, false)
        .await?;
    let mut f = Fields::new(body, WRITABLE, &[]);
    let success_url = redirect_field(&mut f, "success_url");
    let cancel_url = redirect_field(&mut f, "cancel_url");
    f.finish()?;
    if let Some(detail) = relink_refusal(&state, &vehicle) {
        return Err(ApiError::Conflict(json!({ "detail": detail })));
    }
    let session = AuthSessionRecord {
        // Random, not time-ordered: the id is the consent page's only secret.
        id: Uuid::new_v4(),
        org_id: access.org.id(),
        vehicle_id: vehicle.id,
        success_url,
        cancel_url,
        created_at: now,
        expires_at: session_expiry(now),
        completed_at: None,
        outcome: None,
    };
    // A vehicle deleted since it was read is a 404 here too.
    state
        .store()
        .create_auth_session(access.org, &session)
        .await?;
    Ok(Json(AuthSessionOut {
        authentication_url: state.public_url().join(&format!("/connect/{}", session.id)),
        device_id: vehicle.id,
        session_id: session.id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sessions_end_with_the_next_utc_day() {
        let at = |y, mo, d, h, mi, s| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
        let new_year = at(2027, 1, 1, 0, 0, 0);
        assert_eq!(session_expiry(at(2026, 12, 30, 0, 0, 0)), new_year);
        assert_eq!(session_expiry(at(2026, 12, 30, 23, 59, 59)), new_year);
        assert_eq!(
            session_expiry(at(2026, 11, 26, 12, 0, 0)),
            at(2026, 11, 28, 0, 0, 0)
        );
    }

    #[test]
    fn redirect_targets_are_absolute_http_urls() {
        assert_eq!(
            redirect_target("https://partner.example/ev/done?x=1").unwrap(),
            "https://partner.example/ev/done?x=1"
        );
        assert_eq!(
            redirect_target("https://bücher.example/ä").unwrap(),
            "https://xn--bcher-kva.example/%C3%A4"
        );
        assert_eq!(redirect_target("/done").unwrap_err().0, "url_parsing");
        assert_eq!(redirect_target("done.html").unwrap_err().0, "url_parsing");
        assert_eq!(
            redirect_target("javascript:alert(1)").unwrap_err().0,
            "url_scheme"
        );
        assert_eq!(
            redirect_target("ftp://example.com/x").unwrap_err().0,
            "url_scheme"
        );
    }
}
