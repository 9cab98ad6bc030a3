//! Cues, Podero's pending actions (§3.10, §4.4): a device's `actions[].resolution_link` is
//! `POST /api/partners/v2.0/cues/{cue_id}/resolve?secret=…`, which starts the action and answers
//! where to send the driver; `POST /cues/{cue_id}/state?secret=…` reports how it went. The only
//! action is `reauthenticate`: its `/resolve` opens a re-link session on the Connect pages
//! (`connect/onboarding.rs`) for the car, and the action disappears once the car is linked again.
//!
//! The secret is signed with the server's key (`VOLTPLAN_SECRET_KEYS`), names the organisation,
//! user and vehicle, and expires an hour after the device was read: it is the capability, so a
//! bearer token is not needed, but one that is sent must belong to the secret's organisation.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voltplan_clouds::registry;
use voltplan_store::onboarding::{OnboardingOptions, OnboardingSessionRecord, OnboardingStatus};
use voltplan_store::sealed::KeyRing;
use voltplan_store::{OrgScope, StoreError, VehicleRecord};

use crate::auth::Principal;
use crate::auth_session::{redirect_field, session_expiry};
use crate::body::{Fields, JsonObject, Patch, write_body};
use crate::connect::browser::{signed, verified};
use crate::error::{ApiError, ApiResult};
use crate::onboarding::{LANGUAGES, connect_url};
use crate::public_url::PublicUrl;
use crate::state::AppState;

/// How long a resolution link's secret is valid after the device was read (Podero: 1 h).
const SECRET_LIFETIME: Duration = Duration::hours(1);

pub(crate) const REAUTHENTICATE: &str = "reauthenticate";

/// A pending action the partner must resolve (Podero §4.4).
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionOut {
    pub id: Uuid,
    /// e.g. `reauthenticate`.
    pub code: String,
    pub resolution_link: ResolutionLinkOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResolutionLinkOut {
    pub url: String,
    pub required_parameters: Vec<String>,
}

/// What a device's `actions` need to sign their links.
pub struct CueLinks<'a> {
    public_url: &'a PublicUrl,
    keys: &'a KeyRing,
    now: DateTime<Utc>,
}

impl<'a> CueLinks<'a> {
    pub fn of(state: &'a AppState) -> Self {
        CueLinks {
            public_url: state.public_url(),
            keys: state.keys(),
            now: state.now(),
        }
    }

    /// The `reauthenticate` action of a vehicle whose cloud link was revoked. Its id is a UUID
    /// v5 of the vehicle id and the code, so it is stable across reads while it is pending.
    pub(crate) fn reauthenticate(&self, v: &VehicleRecord) -> ActionOut {
        let id = cue_id(v.id);
        let expires = (self.now + SECRET_LIFETIME).timestamp();
        let secret = signed(
            self.keys,
            &purpose(id),
            &format!("{}.{}.{}.{expires}", v.org_id, v.user_id, v.id),
        );
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("secret", &secret)
            .finish();
        ActionOut {
            id,
            code: REAUTHENTICATE.to_owned(),
            resolution_link: ResolutionLinkOut {
                url: self
                    .public_url
                    .join(&format!("/api/partners/v2.0/cues/{id}/resolve?{query}")),
                required_parameters: vec!["successUrl".to_owned(), "cancelUrl".to_owned()],
            },
        }
    }
}

pub(crate) fn cue_id(vehicle_id: Uuid) -> Uuid {
    crate::boost::uuid_v5(vehicle_id, REAUTHENTICATE)
}

fn purpose(cue_id: Uuid) -> String {
    format!("cue|{cue_id}")
}

/// What a valid secret names.
struct CueTarget {
    org: OrgScope,
    user_id: Uuid,
    vehicle_id: Uuid,
}

/// The secret's target, if it is this cue's, genuine and not expired; else 404 (as for a cue
/// that does not exist: the secret is the only way to name one).
fn target(state: &AppState, cue_id: Uuid, secret: &str) -> Result<CueTarget, ApiError> {
    let payload = verified(state.keys(), &purpose(cue_id), secret).ok_or(ApiError::NotFound)?;
    let mut parts = payload.split('.');
    let mut uuid = || parts.next().and_then(|p| Uuid::parse_str(p).ok());
    let (Some(org), Some(user_id), Some(vehicle_id)) = (uuid(), uuid(), uuid()) else {
        return Err(ApiError::NotFound);
    };
    let expires: i64 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or(ApiError::NotFound)?;
    if state.now().timestamp() >= expires || self::cue_id(vehicle_id) != cue_id {
        return Err(ApiError::NotFound);
    }
    Ok(CueTarget {
        org: OrgScope::new(org),
        user_id,
        vehicle_id,
    })
}

/// A bearer token is optional here; one that is sent must be valid and of the secret's
/// organisation.
async fn check_bearer(
    state: &AppState,
    headers: &HeaderMap,
    target: &CueTarget,
) -> Result<(), ApiError> {
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
        return Ok(());
    }
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.headers = headers.clone();
    let principal = <Principal as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts as &mut Parts,
        state,
    )
    .await?;
    if principal.org_id != target.org.id() {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CueQuery {
    /// The secret from the action's `resolution_link.url`. Required: without it (or with a wrong
    /// one) no cue is found.
    #[param(required = true)]
    secret: Option<String>,
}

impl CueQuery {
    /// The secret, or the 404 of a cue that cannot be named without it.
    fn secret(query: Result<Query<CueQuery>, QueryRejection>) -> Result<String, ApiError> {
        query
            .ok()
            .and_then(|Query(q)| q.secret)
            .ok_or(ApiError::NotFound)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CuePath {
    /// The action's id.
    cue_id: String,
}

write_body! {
    /// For `reauthenticate`. Podero's casing (`successUrl`, `cancelUrl`, `clientInfo`); the
    /// snake_case spellings are accepted too.
    #[allow(non_snake_case)] // Podero's own keys
    pub struct ResolveIn {
        /// Absolute `http`/`https` URL the browser returns to once the car is linked again.
        #[schema(max_length = 8000)]
        successUrl: String,
        /// Absolute `http`/`https` URL the browser returns to when the driver cancels.
        #[schema(max_length = 8000)]
        cancelUrl: String,
        /// The Connect pages' language, an IETF tag (`de`, `de-AT`, `en-GB`); English when absent
        /// or not translated.
        language: Option<String>,
        /// Accepted and ignored (Podero passes it to its action handler).
        location: Option<serde_json::Map<String, serde_json::Value>>,
        /// Accepted and ignored.
        clientInfo: Option<serde_json::Map<String, serde_json::Value>>,
        success_url: Option<String>,
        cancel_url: Option<String>,
        client_info: Option<serde_json::Map<String, serde_json::Value>>,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResolveOut {
    /// The Connect page to open in the driver's browser.
    pub redirect_url: String,
}

/// The pending action's vehicle, or 404 when it has no pending `reauthenticate` action.
async fn pending_vehicle(state: &AppState, t: &CueTarget) -> Result<VehicleRecord, ApiError> {
    let vehicle = state
        .store()
        .get_vehicle(t.org, t.user_id, t.vehicle_id, false)
        .await?;
    if !(vehicle.state.action_needed && vehicle.state.is_authenticated == Some(false)) {
        return Err(ApiError::NotFound);
    }
    Ok(vehicle)
}

/// Start a pending action (`reauthenticate`).
///
/// Opens a re-link session for the car on Voltplan's Connect pages and answers its
/// `redirect_url`: send the driver's browser there. The driver logs in at the car's cloud again
/// (for the sandbox, a simulated login); the browser then returns to `successUrl` (with
/// `onboarding_session_id` and `object_id`) or `cancelUrl` (with `reason`). The car is read at
/// once, and the action is gone from `actions` when the link works again. Each call opens a new
/// session (valid until the end of the next day, usable once).
///
/// `secret` comes from the action's `resolution_link.url` and is valid for an hour after the
/// device was read; a bearer token is optional, and must be of the same organisation when sent.
/// 404: no such pending action (or the secret expired); 409: this server cannot re-link the
/// car's cloud; 422: a field is missing or invalid.
#[utoipa::path(post, path = "/api/partners/v2.0/cues/{cue_id}/resolve", tag = "Cues",
    params(CuePath, CueQuery), request_body = ResolveIn,
    responses((status = 200, body = ResolveOut),
        (status = 404, description = "No such pending action, or the secret is invalid or expired"),
        (status = 409, description = "This server cannot re-link the car's cloud"),
        (status = 422, description = "A field is missing or invalid")),
    security((), ("bearer" = [])))]
pub async fn resolve_cue(
    State(state): State<AppState>,
    Path(path): Path<CuePath>,
    query: Result<Query<CueQuery>, QueryRejection>,
    headers: HeaderMap,
    body: JsonObject,
) -> ApiResult<Json<ResolveOut>> {
    let cue_id = Uuid::parse_str(&path.cue_id).map_err(|_| ApiError::NotFound)?;
    let t = target(&state, cue_id, &CueQuery::secret(query)?)?;
    check_bearer(&state, &headers, &t).await?;
    let mut f = Fields::new(body, ResolveIn::FIELDS, &[]);
    let success = first_url(&mut f, "successUrl", "success_url");
    let cancel = first_url(&mut f, "cancelUrl", "cancel_url");
    let language = match f.string("language", 35, false) {
        Patch::Set(tag) => {
            let primary = tag
                .split(['-', '_'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if LANGUAGES.contains(&primary.as_str()) {
                primary
            } else {
                "en".to_owned()
            }
        }
        _ => "en".to_owned(),
    };
    for key in ["location", "clientInfo", "client_info"] {
        let _ = f.object(key);
    }
    f.finish()?;
    let (Some(success_url), Some(cancel_url)) = (success, cancel) else {
        return Err(ApiError::NotFound);
    };
    let vehicle = pending_vehicle(&state, &t).await?;
    let cloud = vehicle.settings.device_model.cloud_service;
    let relinkable = cloud.is_some_and(|id| {
        registry::capabilities(id).links_through_oauth && state.cloud(id).is_some()
    });
    if !relinkable {
        return Err(ApiError::Conflict(serde_json::json!({
            "detail": "This server cannot re-link the vehicle's cloud service: it does not run it, \
                       or its drivers cannot log in through Voltplan"
        })));
    }
    let now = state.now();
    let session = OnboardingSessionRecord {
        id: Uuid::new_v4(),
        org_id: t.org.id(),
        user_id: t.user_id,
        building_id: None,
        relink_vehicle_id: Some(vehicle.id),
        cue_id: Some(cue_id),
        options: OnboardingOptions {
            language,
            price_zone_default: vehicle.price_zone.as_str().to_owned(),
            is_smart_optimization_active_default: vehicle.settings.is_smart_optimization_active,
            device_type: Some("ev".to_owned()),
            external_metadata: serde_json::json!({}),
        },
        success_url,
        cancel_url,
        status: OnboardingStatus::Pending,
        cloud_service: None,
        cloud_account_id: None,
        candidates: None,
        object_ids: Vec::new(),
        partner_report: None,
        created_at: now,
        updated_at: now,
        expires_at: session_expiry(now),
        completed_at: None,
    };
    state
        .store()
        .create_onboarding_session(t.org, &session)
        .await?;
    Ok(Json(ResolveOut {
        redirect_url: connect_url(&state, session.id),
    }))
}

/// A required URL under Podero's key or its snake_case alias.
fn first_url(f: &mut Fields, key: &str, alias: &str) -> Option<String> {
    let primary = redirect_field(f, key);
    let secondary = redirect_field(f, alias);
    let url = primary.or(secondary);
    if url.is_none() && !f.has_errors_for(key) && !f.has_errors_for(alias) {
        f.error(key, "missing", "Field required");
    }
    url
}

write_body! {
    /// The outcome of an action started with `/resolve`.
    pub struct CueStateIn {
        /// `success` or `fail`.
        #[schema(pattern = "^(success|fail)$")]
        state: String,
        /// Accepted and ignored (Podero passes it to the action's handler).
        payload: Option<serde_json::Map<String, serde_json::Value>>,
        location: Option<serde_json::Map<String, serde_json::Value>>,
        client_info: Option<serde_json::Map<String, serde_json::Value>>,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CueStateOut {
    pub action_id: Uuid,
}

/// Report the outcome of an action.
///
/// After the driver returned from the `redirect_url` of `/resolve`, report `success` or `fail`.
/// The report is recorded with the re-link session. The action itself follows the car: it
/// leaves `actions` when the car's link works again (after a successful re-link the worker reads
/// the car at once), and stays while it does not, so `/resolve` can be called again.
/// 404 when the action was never started with `/resolve`, or the secret is invalid or expired.
#[utoipa::path(post, path = "/api/partners/v2.0/cues/{cue_id}/state", tag = "Cues",
    params(CuePath, CueQuery), request_body = CueStateIn,
    responses((status = 200, body = CueStateOut),
        (status = 404, description = "The action is not active, or the secret is invalid or expired"),
        (status = 422, description = "A field is missing or invalid")),
    security((), ("bearer" = [])))]
pub async fn report_cue_state(
    State(state): State<AppState>,
    Path(path): Path<CuePath>,
    query: Result<Query<CueQuery>, QueryRejection>,
    headers: HeaderMap,
    body: JsonObject,
) -> ApiResult<Json<CueStateOut>> {
    let cue_id = Uuid::parse_str(&path.cue_id).map_err(|_| ApiError::NotFound)?;
    let t = target(&state, cue_id, &CueQuery::secret(query)?)?;
    check_bearer(&state, &headers, &t).await?;
    let mut f = Fields::new(body, CueStateIn::FIELDS, &[]);
    let report = f.one_of("state", &["success", "fail"]);
    let report = match report {
        Patch::Set(report) => Some(report),
        Patch::Absent | Patch::Null => {
            if !f.has_errors_for("state") {
                f.error("state", "missing", "Field required");
            }
            None
        }
    };
    for key in ["payload", "location", "client_info"] {
        let _ = f.object(key);
    }
    f.finish()?;
    let Some(report) = report else {
        return Err(ApiError::NotFound);
    };
    let session = state
        .store()
        .latest_cue_session(t.org, cue_id)
        .await?
        .filter(|s| s.relink_vehicle_id == Some(t.vehicle_id))
        .ok_or(ApiError::NotFound)?;
    state
        .store()
        .report_cue_state(t.org, session.id, &report, state.now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound,
            e => e.into(),
        })?;
    Ok(Json(CueStateOut { action_id: cue_id }))
}
