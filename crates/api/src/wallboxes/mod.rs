//! `/org/{org_id}/users/{user_id}/wallboxes` (Podero §3.8): chargers that connect to Voltplan's
//! OCPP central system. The object shown is in `out.rs`, the body written in `write.rs`, the boost
//! rules in `boost.rs`; the handlers are here, with the OCPP credentials: a charge-point id (given
//! or generated) and a password generated here, shown once and stored as an Argon2id hash.

mod boost;
mod out;
pub(crate) mod write;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use rand::RngCore;
use rand::rngs::OsRng;
use uuid::Uuid;
use voltplan_store::fleet::DeviceTable;
use voltplan_store::{StoreError, UserRecord, new_wallbox};

pub use out::{WallboxDetailOut, WallboxOut, wallbox_detail, wallbox_out};
use write::{WallboxPatch, WallboxWrite};

use crate::auth::OrgAccess;
use crate::auth::secret::hash_secret;
use crate::body::JsonObject;
use crate::boost::BoostConflictOut;
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, IncludeDeleted, Q, UserPath, WallboxPath};
use crate::sessions::{
    DataQuery, Device, EvDataOut, SavingsQuery, SessionPageOut, SessionsQuery, StatisticsOut,
};
use crate::state::AppState;

/// `vp-` and 16 hex digits: an id no charger has fixed, so it cannot collide with a serial.
fn generate_charge_point_id() -> String {
    format!("vp-{}", random_hex::<8>())
}

/// 20 random bytes as 40 hex characters: OCPP's longest Basic-auth password (16–40 characters).
fn generate_password() -> String {
    random_hex::<20>()
}

fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new password and its Argon2id hash (hashed off the async workers: Argon2 is slow on purpose).
async fn new_password() -> ApiResult<(String, String)> {
    let password = generate_password();
    let secret = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_secret(&secret))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok((password, hash))
}

/// A taken charge-point id is the one uniqueness rule of a wallbox; it spans the installation
/// (the OCPP URL has no organisation), so the message does not say "in this organisation".
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict { field } => ApiError::field(
            field,
            "unique",
            "This charge-point id is used by another wallbox; choose another or omit it",
        ),
        other => other.into(),
    }
}

/// The owner of a POST or PUT and the patch its body asks for. A missing user is a 404 before the
/// body is read; a building the body names must be a live building of that user.
async fn owner_and_patch(
    state: &AppState,
    access: &OrgAccess,
    user_id: Uuid,
    body: JsonObject,
    now: DateTime<Utc>,
) -> ApiResult<(UserRecord, WallboxPatch)> {
    let owner = state.store().get_user(access.org, user_id, false).await?;
    let patch = write::read_patch(body, now)?;
    crate::vehicles::check_building(state, access, user_id, ("building", &patch.building)).await?;
    Ok((owner, patch))
}

/// List a user's wallboxes. `ocpp.password` is always `null` here.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes", tag = "User Wallboxes",
    params(UserPath, IncludeDeleted),
    responses((status = 200, body = [WallboxOut]), (status = 401), (status = 404)),
    security(("bearer" = [])))]
pub async fn list_wallboxes(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<Vec<WallboxOut>>> {
    let owner = state
        .store()
        .get_user(access.org, path.user_id, query.include_deleted)
        .await?;
    let wallboxes = state
        .store()
        .list_wallboxes(access.org, path.user_id, query.include_deleted)
        .await?;
    let now = state.now();
    Ok(Json(
        wallboxes
            .into_iter()
            .map(|w| wallbox_out(w, &owner, state.public_url(), now, None))
            .collect(),
    ))
}

/// Register a wallbox for a user. Answers 201 with the OCPP connection details for the installer,
/// the password included: it is shown only here (and on rotation), so keep it.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes", tag = "User Wallboxes",
    params(UserPath), request_body = WallboxWrite,
    responses((status = 201, body = WallboxDetailOut), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn create_wallbox(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    body: JsonObject,
) -> ApiResult<(StatusCode, Json<WallboxDetailOut>)> {
    let now = state.now();
    let (owner, mut patch) = owner_and_patch(&state, &access, path.user_id, body, now).await?;
    let charge_point_id = patch
        .ocpp_charge_point_id
        .take()
        .unwrap_or_else(generate_charge_point_id);
    let mut wallbox = new_wallbox(access.org, path.user_id, charge_point_id, now);
    write::apply_patch(patch, &mut wallbox, now).map_err(ApiError::Invalid)?;
    let (password, hash) = new_password().await?;
    let created = state
        .store()
        .create_wallbox(access.org, &wallbox, &hash)
        .await
        .map_err(store_error)?;
    let detail = wallbox_detail(created, &owner, state.public_url(), now, Some(password));
    Ok((StatusCode::CREATED, Json(detail)))
}

/// Get one wallbox. `ocpp.password` is `null`: rotate it to see a new one.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}", tag = "User Wallboxes",
    params(WallboxPath, IncludeDeleted),
    responses((status = 200, body = WallboxDetailOut), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_wallbox(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WallboxPath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<WallboxDetailOut>> {
    let owner = state
        .store()
        .get_user(access.org, path.user_id, query.include_deleted)
        .await?;
    let wallbox = state
        .store()
        .get_wallbox(
            access.org,
            path.user_id,
            path.wallbox_id,
            query.include_deleted,
        )
        .await?;
    Ok(Json(wallbox_detail(
        wallbox,
        &owner,
        state.public_url(),
        state.now(),
        None,
    )))
}

/// Update a wallbox's settings: a partial update; `null` clears a nullable field.
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}", tag = "User Wallboxes",
    params(WallboxPath), request_body = WallboxWrite,
    responses((status = 200, body = WallboxDetailOut), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn update_wallbox(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WallboxPath>,
    body: JsonObject,
) -> ApiResult<Json<WallboxDetailOut>> {
    let now = state.now();
    let (owner, patch) = owner_and_patch(&state, &access, path.user_id, body, now).await?;
    let updated = state
        .store()
        .update_wallbox(
            access.org,
            path.user_id,
            path.wallbox_id,
            Box::new(move |w| write::apply_patch(patch, w, now)),
        )
        .await
        .map_err(store_error)?;
    Ok(Json(wallbox_detail(
        updated,
        &owner,
        state.public_url(),
        now,
        None,
    )))
}

/// Delete a wallbox (soft: it stays readable with `include_deleted=true`). Its charger can no
/// longer log in, and its charge-point id is free again.
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}", tag = "User Wallboxes",
    params(WallboxPath),
    responses((status = 204, description = "Deleted"), (status = 404)),
    security(("bearer" = [])))]
pub async fn delete_wallbox(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WallboxPath>,
) -> ApiResult<StatusCode> {
    state
        .store()
        .delete_wallbox(access.org, path.user_id, path.wallbox_id, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate the charger's OCPP password: a new one is generated and shown in this answer only; the
/// old one no longer logs in (a charger connected with it stays connected until it reconnects).
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/ocpp-password",
    tag = "User Wallboxes", params(WallboxPath),
    responses((status = 200, body = WallboxDetailOut), (status = 404)),
    security(("bearer" = [])))]
pub async fn rotate_ocpp_password(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WallboxPath>,
) -> ApiResult<Json<WallboxDetailOut>> {
    let now = state.now();
    let owner = state
        .store()
        .get_user(access.org, path.user_id, false)
        .await?;
    let (password, hash) = new_password().await?;
    let wallbox = state
        .store()
        .set_wallbox_password(access.org, path.user_id, path.wallbox_id, &hash, now)
        .await?;
    Ok(Json(wallbox_detail(
        wallbox,
        &owner,
        state.public_url(),
        now,
        Some(password),
    )))
}

/// Boost: charge at full power now, bypassing optimisation and surplus control.
///
/// A car plugged in and not charging (e.g. held at 0 A): the worker raises the box to full power
/// (204); `boost_state` shows `requested` until the worker reports `ongoing`. No car plugged in:
/// `boost_for_next_session` is set (204, idempotent) and the next session starts the boost.
/// Already boosting or charging: 409 `{"state": …, "reason": "already_charging"}`. Full (only
/// known when the charger reports the car's state of charge, at `charge_target_max`, else 100):
/// 409 `{"state": …, "reason": "fully_charged"}`.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/boost",
    tag = "User Wallboxes", params(WallboxPath),
    responses((status = 204, description = "Boost requested, or armed for the next session"),
        (status = 404), (status = 409, body = BoostConflictOut)),
    security(("bearer" = [])))]
pub async fn start_wallbox_boost(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WallboxPath>,
) -> ApiResult<StatusCode> {
    let now = state.now();
    // Decided inside the update's transaction, on the row as it is now; a refusal rolls back.
    let mut decision = None;
    let outcome = state
        .store()
        .update_wallbox(
            access.org,
            path.user_id,
            path.wallbox_id,
            Box::new(|w| {
                let d = boost::decide(w);
                decision = Some(d);
                // Nothing to write (refused, or armed already): roll back, so the worker's
                // schedule is left alone.
                if boost::request(w, d, now) {
                    Ok(())
                } else {
                    Err(Vec::new())
                }
            }),
        )
        .await;
    crate::boost::finish(
        outcome,
        decision.map(|d| match d {
            boost::Decision::Refuse(state, reason) => Some((state, reason)),
            _ => None,
        }),
    )
}

/// Cancel a live boost and disarm a boost armed for the next session.
///
/// Clears `boost_for_next_session` and a request the worker has not taken up yet, and ends an
/// `ongoing` boost (the worker returns the box to normal control within a cycle); 204, also when
/// nothing was armed.
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/boost",
    tag = "User Wallboxes", params(WallboxPath),
    responses((status = 204, description = "No boost is armed or running any more"), (status = 404)),
    security(("bearer" = [])))]
pub async fn cancel_wallbox_boost(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WallboxPath>,
) -> ApiResult<StatusCode> {
    let now = state.now();
    let mut ran = None;
    let outcome = state
        .store()
        .update_wallbox(
            access.org,
            path.user_id,
            path.wallbox_id,
            Box::new(|w| {
                ran = Some(None);
                if boost::cancel(w, now) {
                    Ok(())
                } else {
                    Err(Vec::new())
                }
            }),
        )
        .await;
    crate::boost::finish(outcome, ran)
}

fn wallbox(path: &WallboxPath) -> Device {
    Device {
        table: DeviceTable::Wallboxes,
        id: path.wallbox_id,
        id_param: "wallbox_id",
    }
}

/// The wallbox must be this user's: the sessions and readings tables know only the organisation.
async fn wallbox_exists(state: &AppState, access: &OrgAccess, path: &WallboxPath) -> ApiResult<()> {
    state
        .store()
        .get_wallbox(access.org, path.user_id, path.wallbox_id, false)
        .await?;
    Ok(())
}

/// List a wallbox's charging sessions that started between `from` and `to` (both days inclusive,
/// UTC), newest first; the session object is the EV's. The state-of-charge fields are `null`
/// unless the charger reports the car's state of charge.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/sessions",
    tag = "User Wallboxes", params(WallboxPath, SessionsQuery),
    responses((status = 200, body = SessionPageOut), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn list_wallbox_sessions(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WallboxPath>,
    Q(query): Q<SessionsQuery>,
) -> ApiResult<Json<SessionPageOut>> {
    let exists = wallbox_exists(&state, &access, &path);
    crate::sessions::device_sessions(&state, access.org, wallbox(&path), &query, exists).await
}

/// Savings of a wallbox per calendar bucket (UTC), from its charging sessions, in the EV's
/// Statistics shape: the car charged at the wallbox is reported under `electric_vehicle`.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/savings",
    tag = "User Wallboxes", params(WallboxPath, SavingsQuery),
    responses((status = 200, body = StatisticsOut), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn wallbox_savings(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WallboxPath>,
    Q(query): Q<SavingsQuery>,
) -> ApiResult<Json<StatisticsOut>> {
    let exists = wallbox_exists(&state, &access, &path);
    crate::sessions::device_savings(&state, access.org, wallbox(&path), &query, exists).await
}

/// A wallbox's time series in UTC-aligned buckets, in the EV's shape and with its rules (400
/// without data unless `fill-missing: true`). `is_at_optimized_location` is always `null` (a
/// wallbox does not move); `battery_level` only when the charger reports it.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/data",
    tag = "User Wallboxes",
    params(WallboxPath, DataQuery,
        ("fill-missing" = Option<bool>, Header, description = "Return every bucket of the range, `null` where there is no data (default false)")),
    responses((status = 200, body = EvDataOut), (status = 400, description = "No data in the range and fill-missing is false"),
        (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn wallbox_data(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<WallboxPath>,
    headers: HeaderMap,
    Q(query): Q<DataQuery>,
) -> ApiResult<Json<EvDataOut>> {
    let exists = wallbox_exists(&state, &access, &path);
    crate::sessions::device_data(&state, access.org, wallbox(&path), &headers, &query, exists).await
}
