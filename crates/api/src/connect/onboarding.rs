//! The Connect pages of a device onboarding session (`onboarding.rs`) and of a cue's re-link
//! (`cues.rs`): the driver picks the car's brand, logs in at its cloud (OAuth authorisation code
//! with PKCE and a `state` bound to the session and to this browser; the sandbox has a simulated
//! login here, `sandbox_login.rs`), comes back to the callback, and picks which of the account's
//! cars to connect. Then the browser returns to the partner's `success_url` or `cancel_url` —
//! the only places it is ever sent besides the cloud's own login.
//!
//! `/connect/onboarding/{id}` (brand), `…/{id}/brand` (post), `/connect/callback/{cloud}`,
//! `…/{id}/vehicles` (get and post). Every post is checked for forgery (the browser's
//! `Origin`/`Sec-Fetch-Site`, and the form's token bound to this browser's cookie), and the session
//! is claimed in the same statement that changes it, so a double submit acts once.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;
use voltplan_clouds::registry::{self, Brand, CloudEntry};
use voltplan_clouds::{CloudError, CloudVehicleRef, SANDBOX_CLOUD, Secret, TokenSet};
use voltplan_core::PriceZone;
use voltplan_store::cloud_vault::seal_tokens;
use voltplan_store::onboarding::{
    CandidateVehicle, CloudAccountRecord, OnboardingEnd, OnboardingSessionRecord, OnboardingStatus,
    VehicleLink,
};
use voltplan_store::{OrgScope, StoreError, VehicleRecord, new_vehicle};

use super::browser::{self, cookie, cookie_or_new, form_token, set_cookie};
use super::page::{
    escape, forbidden_page, internal_error_page, not_found_page, page, refuse_forgery, see_other,
    with_form_targets,
};
use super::sandbox_login;
use super::text::{Lang, Text};
use crate::state::AppState;

/// An open session by the id in the path, or the page to answer instead.
async fn open_session(
    state: &AppState,
    id: Result<Path<String>, PathRejection>,
) -> Result<OnboardingSessionRecord, Response> {
    let id = id
        .ok()
        .and_then(|Path(raw)| Uuid::parse_str(&raw).ok())
        .ok_or_else(|| not_found_page(Lang::En))?;
    match state.store().find_onboarding_session(id).await {
        Ok(session) if session.is_open(state.now()) => Ok(session),
        Ok(session) => Err(not_found_page(lang(&session))),
        Err(StoreError::NotFound) => Err(not_found_page(Lang::En)),
        Err(e) => Err(internal_error_page(Lang::En, e)),
    }
}

fn lang(session: &OnboardingSessionRecord) -> Lang {
    Lang::from_code(&session.options.language)
}

/// The partner's URL with `params` appended (stored URLs are absolute http(s), normalised).
fn partner_url(base: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (key, value) in params {
                    query.append_pair(key, value);
                }
            }
            url.into()
        }
        Err(_) => base.to_owned(),
    }
}

/// Ends the session as cancelled or failed and sends the browser to the partner's cancel URL.
async fn give_up(
    state: &AppState,
    session: &OnboardingSessionRecord,
    end: OnboardingEnd,
    reason: &str,
) -> Response {
    let org = OrgScope::new(session.org_id);
    match state
        .store()
        .end_onboarding(org, session.id, &end, state.now())
        .await
    {
        Ok(true) => see_other(&partner_url(
            &session.cancel_url,
            &[
                ("onboarding_session_id", &session.id.to_string()),
                ("reason", reason),
            ],
        )),
        Ok(false) => not_found_page(lang(session)),
        Err(e) => internal_error_page(lang(session), e),
    }
}

/// The clouds a driver can pick from for this session: every cloud this server runs that drivers
/// link through a login; for a re-link, only the car's own cloud.
fn clouds_for(state: &AppState, relink_cloud: Option<uuid::Uuid>) -> Vec<&'static CloudEntry> {
    registry::REGISTRY
        .iter()
        .filter(|entry| entry.capabilities.links_through_oauth)
        .filter(|entry| state.cloud(entry.service.id).is_some())
        .filter(|entry| relink_cloud.is_none_or(|id| id == entry.service.id))
        .collect()
}

/// The cloud a re-link session's car is connected through.
async fn relink_cloud(
    state: &AppState,
    session: &OnboardingSessionRecord,
) -> Result<Option<Uuid>, StoreError> {
    let Some(vehicle_id) = session.relink_vehicle_id else {
        return Ok(None);
    };
    let org = OrgScope::new(session.org_id);
    let vehicle = state.store().get_vehicle_in_org(org, vehicle_id).await?;
    Ok(Some(
        vehicle
            .settings
            .device_model
            .cloud_service
            .unwrap_or(SANDBOX_CLOUD.id),
    ))
}

fn step_line(t: &Text, step: u8) -> String {
    format!(
        "<div class=\"steps\">{} {step} {} 3</div>",
        escape(t.step),
        escape(t.of)
    )
}

/// `GET /connect/onboarding/{id}`: the brand page.
pub async fn start_page(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let session = match open_session(&state, id).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let lang = lang(&session);
    if session.status == OnboardingStatus::Choosing {
        return see_other(&vehicles_url(&state, session.id));
    }
    let relink = match relink_cloud(&state, &session).await {
        Ok(cloud) => cloud,
        Err(StoreError::NotFound) => return not_found_page(lang),
        Err(e) => return internal_error_page(lang, e),
    };
    let t = Text::of(lang);
    let clouds = clouds_for(&state, relink);
    if clouds.is_empty() {
        return page(
            StatusCode::CONFLICT,
            lang,
            t.no_cloud_title,
            &format!("<p>{}</p>", escape(t.no_cloud_body)),
        );
    }
    let (cookie, fresh) = cookie_or_new(&headers);
    let token = form_token(state.keys(), &session.id.to_string(), &cookie);
    let mut choices = String::new();
    let mut first = true;
    for entry in &clouds {
        for brand in entry.brands {
            let value = brand_value(entry, brand);
            let (name, note) = if entry.capabilities.simulated {
                (t.sandbox_brand, Some(t.sandbox_brand_note))
            } else if brand.make.is_none() {
                (t.other_brand, None)
            } else {
                (brand.name, None)
            };
            choices.push_str(&format!(
                "<label class=\"choice\"><input type=\"radio\" name=\"brand\" value=\"{value}\" \
                 required{checked}><span>{name}{note}</span></label>",
                value = escape(&value),
                checked = if first { " checked" } else { "" },
                name = escape(name),
                note = note
                    .map(|n| format!("<small>{}</small>", escape(n)))
                    .unwrap_or_default(),
            ));
            first = false;
        }
    }
    let (title, intro) = if session.relink_vehicle_id.is_some() {
        (t.relink_title, t.relink_intro)
    } else {
        (t.brand_title, t.brand_intro)
    };
    let body = format!(
        "{steps}<p>{intro}</p>\
         <form method=\"post\" action=\"{id}/brand\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <fieldset><legend>{legend}</legend>{choices}</fieldset>\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"action\" \
         value=\"continue\">{go}</button>\
         <button type=\"submit\" name=\"action\" value=\"cancel\" formnovalidate>{cancel}</button>\
         </div></form><p class=\"note\">{expires} {until} UTC.</p>",
        steps = step_line(t, 1),
        intro = escape(intro),
        id = session.id,
        token = escape(&token),
        legend = escape(t.brand_legend),
        go = escape(t.continue_button),
        cancel = escape(t.cancel_button),
        expires = escape(t.expires_note),
        until = session.expires_at.format("%Y-%m-%d %H:%M"),
    );
    // The post is redirected to a cloud's login or to the partner's cancel URL.
    let mut targets = vec![session.cancel_url.clone()];
    if let Some(smartcar) = state.smartcar() {
        targets.push(smartcar.authorize_url("x", None, None));
    }
    let response = with_form_targets(
        page(StatusCode::OK, lang, title, &body),
        targets.iter().map(String::as_str),
    );
    if fresh {
        set_cookie(response, &cookie, state.public_url())
    } else {
        response
    }
}

fn brand_value(entry: &CloudEntry, brand: &Brand) -> String {
    format!("{}:{}", entry.service.key, brand.make.unwrap_or(""))
}

/// A posted form's fields (the last value of each key, and every value of `vehicle`).
struct Form {
    fields: HashMap<String, String>,
    vehicles: Vec<String>,
}

fn form(body: &[u8]) -> Form {
    let mut fields = HashMap::new();
    let mut vehicles = Vec::new();
    for (key, value) in form_urlencoded::parse(body) {
        if key == "vehicle" {
            vehicles.push(value.into_owned());
        } else {
            fields.insert(key.into_owned(), value.into_owned());
        }
    }
    Form { fields, vehicles }
}

fn bad_form(lang: Lang) -> Response {
    let t = Text::of(lang);
    page(
        StatusCode::BAD_REQUEST,
        lang,
        t.bad_form_title,
        &format!("<p>{}</p>", escape(t.bad_form_body)),
    )
}

/// `POST /connect/onboarding/{id}/brand`: off to the cloud's login (or cancelled).
pub async fn choose_brand(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match open_session(&state, id).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let lang = lang(&session);
    let Ok(body) = body else {
        return bad_form(lang);
    };
    let form = form(&body);
    if let Some(refused) = refuse_forgery(
        &state,
        &headers,
        &session.id.to_string(),
        form.fields.get("csrf"),
        lang,
    ) {
        return refused;
    }
    if form.fields.get("action").map(String::as_str) == Some("cancel") {
        return give_up(&state, &session, OnboardingEnd::Cancelled, "cancelled").await;
    }
    let relink = match relink_cloud(&state, &session).await {
        Ok(cloud) => cloud,
        Err(StoreError::NotFound) => return not_found_page(lang),
        Err(e) => return internal_error_page(lang, e),
    };
    let chosen = form.fields.get("brand").and_then(|value| {
        clouds_for(&state, relink).into_iter().find_map(|entry| {
            entry
                .brands
                .iter()
                .find(|brand| brand_value(entry, brand) == *value)
                .map(|brand| (entry, *brand))
        })
    });
    let Some((entry, brand)) = chosen else {
        return bad_form(lang);
    };
    let Some(cookie) = cookie(&headers) else {
        return forbidden_page(lang);
    };
    let oauth_state = browser::new_state(state.keys(), &cookie);
    let org = OrgScope::new(session.org_id);
    match state
        .store()
        .start_authorization(
            org,
            session.id,
            entry.service.id,
            &browser::state_hash(&oauth_state),
            state.now(),
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => return not_found_page(lang),
        Err(e) => return internal_error_page(lang, e),
    }
    if entry.capabilities.simulated {
        return see_other(&sandbox_login::login_url(&state, &oauth_state));
    }
    match state.smartcar() {
        Some(smartcar) if entry.service.id == voltplan_clouds::smartcar::SMARTCAR_CLOUD.id => {
            let verifier = browser::pkce_verifier(state.keys(), &oauth_state);
            let challenge = browser::pkce_challenge(&verifier);
            see_other(&smartcar.authorize_url(&oauth_state, Some(&challenge), brand.make))
        }
        _ => bad_form(lang),
    }
}

/// The callback's query: a code, or an error, and the state.
#[derive(Debug, serde::Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// What a cloud's login gave: the account's tokens, its id there, and its cars.
struct Linked {
    tokens: TokenSet,
    external_user_id: Option<String>,
    candidates: Vec<CandidateVehicle>,
}

/// Why linking failed, as the partner's cancel URL is told (`reason`).
/// (A refused code exchange is no refusal by the driver — the driver said yes at the login — so it
/// is an `error`, like any other failure.)
fn failure_reason(error: &CloudError) -> &'static str {
    match error {
        CloudError::Unsupported => "vehicle_incompatible",
        _ => "error",
    }
}

async fn link_at_cloud(
    state: &AppState,
    cloud: &CloudEntry,
    code: &str,
    oauth_state: &str,
) -> Result<Linked, CloudError> {
    if cloud.capabilities.simulated {
        let email = sandbox_login::redeem_code(state, code).ok_or_else(|| {
            CloudError::AuthorizationRevoked {
                reason: "the sandbox code is invalid or expired".into(),
            }
        })?;
        return Ok(Linked {
            tokens: TokenSet {
                access_token: Secret::new("sandbox"),
                refresh_token: Secret::new("sandbox"),
                access_expires_at: DateTime::<Utc>::MAX_UTC,
                refresh_expires_at: None,
            },
            candidates: sandbox_login::garage(&email),
            external_user_id: Some(email),
        });
    }
    let smartcar = state.smartcar().ok_or(CloudError::Unsupported)?;
    let verifier = browser::pkce_verifier(state.keys(), oauth_state);
    let tokens = smartcar.exchange_code(code, Some(&verifier)).await?;
    let external_user_id = smartcar.user_id(&tokens.access_token).await?;
    let candidates = smartcar
        .discover_vehicles(&tokens.access_token)
        .await?
        .into_iter()
        .map(|v| CandidateVehicle {
            cloud_vehicle_id: v.id,
            make: Some(v.make),
            model: Some(v.model),
            year: Some(v.year),
            vin: v.vin,
        })
        .collect();
    Ok(Linked {
        tokens,
        external_user_id: Some(external_user_id),
        candidates,
    })
}

/// `GET /connect/callback/{cloud}`: the cloud's login sends the browser back here.
pub async fn callback(
    State(state): State<AppState>,
    Path(cloud_key): Path<String>,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(query)) = query else {
        return not_found_page(Lang::En);
    };
    let Some(oauth_state) = query.state.as_deref() else {
        return not_found_page(Lang::En);
    };
    // A state made for another browser: someone else's login must not land in this session.
    let same_browser =
        cookie(&headers).is_some_and(|c| browser::state_ok(state.keys(), oauth_state, &c));
    if !same_browser {
        tracing::warn!(cloud = %cloud_key, "refused a callback whose state is not this browser's");
        return forbidden_page(Lang::En);
    }
    let now = state.now();
    let session = match state
        .store()
        .take_authorization(&browser::state_hash(oauth_state), now)
        .await
    {
        Ok(Some(session)) => session,
        // Replayed, expired, or replaced by a newer choice.
        Ok(None) => return not_found_page(Lang::En),
        Err(e) => return internal_error_page(Lang::En, e),
    };
    let lang = lang(&session);
    let Some(cloud) = session
        .cloud_service
        .and_then(registry::entry)
        .filter(|entry| entry.service.key == cloud_key)
    else {
        return not_found_page(lang);
    };
    if let Some(error) = query.error.as_deref() {
        tracing::info!(session_id = %session.id, %error, "the cloud's login ended without access");
        let (end, reason) = if error == "access_denied" {
            (OnboardingEnd::Cancelled, "access_denied")
        } else {
            (OnboardingEnd::Failed, error_reason(error))
        };
        return give_up(&state, &session, end, reason).await;
    }
    let Some(code) = query.code.as_deref() else {
        return give_up(&state, &session, OnboardingEnd::Failed, "error").await;
    };
    let linked = match link_at_cloud(&state, cloud, code, oauth_state).await {
        Ok(linked) => linked,
        Err(error) => {
            tracing::warn!(session_id = %session.id, cloud = %cloud.service.key, %error,
                "linking the driver's account failed");
            let reason = failure_reason(&error);
            return give_up(&state, &session, OnboardingEnd::Failed, reason).await;
        }
    };
    if linked.candidates.is_empty() {
        return give_up(&state, &session, OnboardingEnd::Failed, "no_vehicles").await;
    }
    let org = OrgScope::new(session.org_id);
    let account = CloudAccountRecord {
        id: Uuid::now_v7(),
        org_id: session.org_id,
        user_id: session.user_id,
        cloud_service: cloud.service.id,
        external_user_id: linked.external_user_id,
        tokens: seal_tokens(
            state.keys(),
            session.org_id,
            cloud.service.id,
            &linked.tokens,
        ),
        version: 1,
        revoked_at: None,
        revoked_reason: None,
    };
    let account_id = match state
        .store()
        .link_account(org, session.id, &account, &linked.candidates, now)
        .await
    {
        Ok(id) => id,
        Err(StoreError::NotFound) => return not_found_page(lang),
        Err(e) => return internal_error_page(lang, e),
    };
    if let Some(vehicle_id) = session.relink_vehicle_id {
        return finish_relink(
            &state,
            &session,
            cloud,
            account_id,
            vehicle_id,
            &linked.candidates,
        )
        .await;
    }
    see_other(&vehicles_url(&state, session.id))
}

/// Smartcar's documented Connect errors, passed on; anything else is `error`.
fn error_reason(error: &str) -> &'static str {
    match error {
        "invalid_subscription" => "invalid_subscription",
        "no_vehicles" => "no_vehicles",
        "vehicle_incompatible" => "vehicle_incompatible",
        "configuration_error" => "configuration_error",
        _ => "error",
    }
}

/// A re-link: the car must be among the account's cars (the sandbox's always is); its link then
/// points at the account again and the worker reads it at once.
async fn finish_relink(
    state: &AppState,
    session: &OnboardingSessionRecord,
    cloud: &CloudEntry,
    account_id: Uuid,
    vehicle_id: Uuid,
    candidates: &[CandidateVehicle],
) -> Response {
    let org = OrgScope::new(session.org_id);
    let lang = lang(session);
    let existing = match state.store().vehicle_link(org, vehicle_id).await {
        Ok(link) => link,
        Err(e) => return internal_error_page(lang, e),
    };
    let cloud_vehicle_id = match (&existing, cloud.capabilities.simulated) {
        (Some(link), _) => link.cloud_vehicle_id.clone(),
        (None, true) => format!("sandbox:{vehicle_id}"),
        (None, false) => String::new(),
    };
    let shared = cloud.capabilities.simulated
        || candidates
            .iter()
            .any(|c| c.cloud_vehicle_id == cloud_vehicle_id);
    if !shared {
        return give_up(state, session, OnboardingEnd::Failed, "vehicle_not_shared").await;
    }
    let link = VehicleLink {
        vehicle_id,
        account_id,
        cloud_service: cloud.service.id,
        cloud_vehicle_id,
        make: existing.and_then(|l| l.make),
    };
    let end = OnboardingEnd::Completed {
        created: Vec::new(),
        relinked: vec![link],
    };
    match state
        .store()
        .end_onboarding(org, session.id, &end, state.now())
        .await
    {
        Ok(true) => {}
        Ok(false) => return not_found_page(lang),
        Err(e) => return internal_error_page(lang, e),
    }
    if cloud.capabilities.relinks_on_consent_page
        && let Some(cloud) = state.cloud(cloud.service.id)
    {
        // The simulator keeps revocations in memory; a real cloud's link is its new tokens.
        if let Err(error) = cloud.restore_link(&CloudVehicleRef::new(vehicle_id)).await
            && error != CloudError::UnknownVehicle
        {
            tracing::warn!(%vehicle_id, %error, "restoring the sandbox link failed");
        }
    }
    success_redirect(session, &[vehicle_id])
}

fn success_redirect(session: &OnboardingSessionRecord, ids: &[Uuid]) -> Response {
    let first = ids.first().map(Uuid::to_string).unwrap_or_default();
    let all = ids
        .iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",");
    see_other(&partner_url(
        &session.success_url,
        &[
            ("onboarding_session_id", &session.id.to_string()),
            ("object_id", &first),
            ("object_ids", &all),
        ],
    ))
}

fn vehicles_url(state: &AppState, id: Uuid) -> String {
    state
        .public_url()
        .join(&format!("/connect/onboarding/{id}/vehicles"))
}

fn candidate_name(c: &CandidateVehicle) -> String {
    let make = c.make.as_deref().map(display_make);
    let name = [make.as_deref(), c.model.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    match c.year {
        Some(year) => format!("{name} ({year})"),
        None => name,
    }
}

/// The session's candidates with the EV each is already linked to, if any.
async fn candidates_with_links(
    state: &AppState,
    session: &OnboardingSessionRecord,
) -> Result<Vec<(CandidateVehicle, Option<Uuid>)>, StoreError> {
    let org = OrgScope::new(session.org_id);
    let mut out = Vec::new();
    let cloud = session.cloud_service.unwrap_or(SANDBOX_CLOUD.id);
    for candidate in session.candidates.clone().unwrap_or_default() {
        let linked = state
            .store()
            .find_linked_vehicle(org, cloud, &candidate.cloud_vehicle_id)
            .await?;
        out.push((candidate, linked));
    }
    Ok(out)
}

/// `GET /connect/onboarding/{id}/vehicles`: pick the cars.
pub async fn vehicles_page(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let session = match open_session(&state, id).await {
        Ok(session) if session.status == OnboardingStatus::Choosing => session,
        Ok(session) => return not_found_page(lang(&session)),
        Err(page) => return page,
    };
    vehicles_form(&state, &session, &headers, None).await
}

async fn vehicles_form(
    state: &AppState,
    session: &OnboardingSessionRecord,
    headers: &HeaderMap,
    problem: Option<&str>,
) -> Response {
    let lang = lang(session);
    let t = Text::of(lang);
    let candidates = match candidates_with_links(state, session).await {
        Ok(c) => c,
        Err(e) => return internal_error_page(lang, e),
    };
    let (cookie, fresh) = cookie_or_new(headers);
    let token = form_token(state.keys(), &session.id.to_string(), &cookie);
    let mut choices = String::new();
    for (candidate, linked) in &candidates {
        let vin = candidate
            .vin
            .as_deref()
            .map(|vin| format!("<small>VIN {}</small>", escape(vin)))
            .unwrap_or_default();
        let tag = if linked.is_some() {
            format!("<span class=\"tag\">{}</span>", escape(t.already_connected))
        } else {
            String::new()
        };
        choices.push_str(&format!(
            "<label class=\"choice\"><input type=\"checkbox\" name=\"vehicle\" value=\"{id}\" \
             checked><span>{name}{tag}{vin}</span></label>",
            id = escape(&candidate.cloud_vehicle_id),
            name = escape(&candidate_name(candidate)),
        ));
    }
    let problem = problem
        .map(|p| format!("<p role=\"alert\"><strong>{}</strong></p>", escape(p)))
        .unwrap_or_default();
    let body = format!(
        "{steps}<p>{intro}</p>{problem}\
         <form method=\"post\" action=\"vehicles\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <fieldset><legend>{legend}</legend>{choices}</fieldset>\
         <div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"action\" \
         value=\"connect\">{go}</button>\
         <button type=\"submit\" name=\"action\" value=\"cancel\">{cancel}</button></div></form>",
        steps = step_line(t, 3),
        intro = escape(t.vehicles_intro),
        token = escape(&token),
        legend = escape(t.vehicles_legend),
        go = escape(t.connect_button),
        cancel = escape(t.cancel_button),
    );
    let status = if problem.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let response = with_form_targets(
        page(status, lang, t.vehicles_title, &body),
        [session.success_url.as_str(), session.cancel_url.as_str()],
    );
    if fresh {
        set_cookie(response, &cookie, state.public_url())
    } else {
        response
    }
}

/// The EV created for a picked car, with the session's defaults.
fn new_ev(
    session: &OnboardingSessionRecord,
    cloud_service: Uuid,
    candidate: &CandidateVehicle,
    now: DateTime<Utc>,
) -> VehicleRecord {
    let org = OrgScope::new(session.org_id);
    let mut ev = new_vehicle(org, session.user_id, now);
    ev.building_id = session.building_id;
    ev.price_zone = session
        .options
        .price_zone_default
        .parse::<PriceZone>()
        .unwrap_or(ev.price_zone);
    ev.settings.is_smart_optimization_active = session.options.is_smart_optimization_active_default;
    let model = &mut ev.settings.device_model;
    model.manufacturer = candidate.make.as_deref().map(display_make);
    model.model = candidate.model.clone();
    model.year = candidate.year;
    model.cloud_service = Some(cloud_service);
    model.vin = candidate.vin.clone();
    // The driver just authorised access; the worker confirms it with its first reading.
    ev.state.is_authenticated = Some(true);
    ev
}

/// `TESLA` → `Tesla`, `MERCEDES_BENZ` → `Mercedes-Benz`; mixed-case names stay as they are.
fn display_make(make: &str) -> String {
    if let Some(brand) = registry::REGISTRY
        .iter()
        .flat_map(|e| e.brands)
        .find(|b| b.make == Some(make))
    {
        return brand.name.to_owned();
    }
    if make.chars().any(|c| c.is_ascii_lowercase()) {
        return make.to_owned();
    }
    make.split(['_', ' '])
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_string() + &chars.as_str().to_ascii_lowercase()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// `POST /connect/onboarding/{id}/vehicles`: create the picked cars and return to the partner.
pub async fn choose_vehicles(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let session = match open_session(&state, id).await {
        Ok(session) if session.status == OnboardingStatus::Choosing => session,
        Ok(session) => return not_found_page(lang(&session)),
        Err(page) => return page,
    };
    let lang = lang(&session);
    let Ok(body) = body else {
        return bad_form(lang);
    };
    let form = form(&body);
    if let Some(refused) = refuse_forgery(
        &state,
        &headers,
        &session.id.to_string(),
        form.fields.get("csrf"),
        lang,
    ) {
        return refused;
    }
    if form.fields.get("action").map(String::as_str) == Some("cancel") {
        return give_up(&state, &session, OnboardingEnd::Cancelled, "cancelled").await;
    }
    let (Some(cloud_service), Some(account_id)) = (session.cloud_service, session.cloud_account_id)
    else {
        return not_found_page(lang);
    };
    let candidates = match candidates_with_links(&state, &session).await {
        Ok(c) => c,
        Err(e) => return internal_error_page(lang, e),
    };
    let picked: Vec<_> = candidates
        .iter()
        .filter(|(c, _)| form.vehicles.contains(&c.cloud_vehicle_id))
        .collect();
    if picked.is_empty() {
        return vehicles_form(
            &state,
            &session,
            &headers,
            Some(Text::of(lang).nothing_chosen),
        )
        .await;
    }
    let now = state.now();
    let mut created = Vec::new();
    let mut relinked = Vec::new();
    for (candidate, linked) in picked {
        let vehicle_id = linked.unwrap_or_else(Uuid::now_v7);
        let link = VehicleLink {
            vehicle_id,
            account_id,
            cloud_service,
            cloud_vehicle_id: candidate.cloud_vehicle_id.clone(),
            make: candidate.make.clone(),
        };
        if linked.is_some() {
            relinked.push(link);
        } else {
            let mut ev = new_ev(&session, cloud_service, candidate, now);
            ev.id = vehicle_id;
            created.push((ev, link));
        }
    }
    let ids: Vec<Uuid> = created
        .iter()
        .map(|(ev, _)| ev.id)
        .chain(relinked.iter().map(|l| l.vehicle_id))
        .collect();
    let end = OnboardingEnd::Completed { created, relinked };
    let org = OrgScope::new(session.org_id);
    match state
        .store()
        .end_onboarding(org, session.id, &end, now)
        .await
    {
        Ok(true) => success_redirect(&session, &ids),
        Ok(false) => not_found_page(lang),
        // The user was deleted meanwhile.
        Err(StoreError::NotFound) => not_found_page(lang),
        Err(e) => internal_error_page(lang, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_read_as_brand_names() {
        assert_eq!(display_make("MERCEDES_BENZ"), "Mercedes-Benz");
        assert_eq!(display_make("TESLA"), "Tesla");
        assert_eq!(display_make("LAND_ROVER"), "Land-Rover");
        assert_eq!(display_make("Renault"), "Renault");
    }

    #[test]
    fn partner_urls_keep_their_query() {
        assert_eq!(
            partner_url("https://p.example/done?x=1", &[("a", "b c")]),
            "https://p.example/done?x=1&a=b+c"
        );
    }
}
