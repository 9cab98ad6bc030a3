//! Device onboarding sessions (Podero §3.9, §4.5): `POST /device-onboarding` starts a session for
//! one of the organisation's users and answers the Connect page's URL; the driver's browser walks
//! it (`connect/onboarding.rs`): choose the brand, log in at the vehicle's cloud, pick the cars.
//! `GET /device-onboarding/{id}` reads the session back, with the devices created (`object_id`).
//! No organisation in the path: the bearer token's.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_store::onboarding::{OnboardingOptions, OnboardingSessionRecord, OnboardingStatus};
use voltplan_store::{OrgScope, StoreError};

use crate::auth::Principal;
use crate::auth_session::{redirect_field, session_expiry};
use crate::body::{Fields, JsonObject, Patch, write_body};
use crate::error::{ApiError, ApiResult};
use crate::schemas::ZONES;
use crate::state::AppState;

/// Podero's language enum. The Connect pages are written in English and German; the other
/// languages are accepted (a partner's client may send them) and shown in English.
pub const LANGUAGES: [&str; 8] = ["sv", "de", "en", "hu", "it", "et", "pl", "ro"];

/// Podero's device-type enum: electric vehicle, inverter, wallbox, heat pump.
pub const DEVICE_TYPES: [&str; 4] = ["ev", "iv", "wb", "hp"];

write_body! {
    /// A device onboarding session. Podero did not publish the device-type field's name; it is
    /// `device_type` here. Only electric vehicles (`ev`) are onboarded through a vehicle cloud;
    /// wallboxes connect over OCPP (`POST …/users/{user_id}/wallboxes` answers their
    /// credentials), and heat pumps and inverters are not supported yet (422).
    pub struct OnboardingIn {
        /// The Connect pages' language. `en` and `de` are translated; the others show English.
        #[schema(pattern = "^(sv|de|en|hu|it|et|pl|ro)$")]
        language: String,
        /// The price zone of the devices created.
        #[schema(value_type = crate::schemas::PriceZone)]
        price_zone_default: String,
        /// `is_smart_optimization_active` of the devices created. Default `false`, as for a
        /// device created through the API.
        #[schema(default = false)]
        is_smart_optimization_active_default: Option<bool>,
        /// Absolute `http`/`https` URL the browser returns to when devices were connected, with
        /// `onboarding_session_id` and `object_id` (and `object_ids`, comma-separated) appended.
        #[schema(max_length = 8000)]
        success_url: String,
        /// Absolute `http`/`https` URL the browser returns to when the driver cancels or linking
        /// fails, with `onboarding_session_id` and `reason` appended.
        #[schema(max_length = 8000)]
        cancel_url: String,
        /// The user the devices are created for.
        user_id: Uuid,
        /// The user's building the devices belong to; optional.
        building_id: Option<Uuid>,
        /// `ev` (default): an electric vehicle through its cloud.
        #[schema(pattern = "^(ev|iv|wb|hp)$")]
        device_type: Option<String>,
        /// The partner's own data, returned as given (an object of at most 4 KiB).
        external_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    }
}

/// A device onboarding session.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingOut {
    pub id: Uuid,
    /// The Connect page: open it in the driver's browser. Whoever holds this URL can connect
    /// devices to the user, so hand it only to that driver.
    pub authentication_url: String,
    /// The user's id (Podero's name for it).
    pub user: Uuid,
    pub user_id: Uuid,
    pub building_id: Option<Uuid>,
    pub language: String,
    pub price_zone_default: String,
    pub is_smart_optimization_active_default: bool,
    pub device_type: String,
    pub success_url: String,
    pub cancel_url: String,
    /// The last day (UTC) the session can be used: it ends at the end of the day after its
    /// creation.
    pub expiration_date: NaiveDate,
    /// `pending`, `authorizing` (at the cloud's login), `choosing` (picking cars),
    /// `completed`, `cancelled` or `failed`; an unfinished session past its end reads
    /// `expired`.
    pub status: String,
    /// The first device created; `null` until the session completed.
    pub object_id: Option<Uuid>,
    /// Every device created (a driver may connect several cars at once).
    pub object_ids: Vec<Uuid>,
    #[schema(value_type = Object)]
    pub external_metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The Connect page of a session.
pub(crate) fn connect_url(state: &AppState, id: Uuid) -> String {
    state
        .public_url()
        .join(&format!("/connect/onboarding/{id}"))
}

fn session_out(state: &AppState, s: OnboardingSessionRecord) -> OnboardingOut {
    let now = state.now();
    let status = if !s.status.is_final() && now >= s.expires_at {
        "expired".to_owned()
    } else {
        s.status.as_str().to_owned()
    };
    // `expires_at` is midnight UTC: the session's last day is the one before.
    let expiration_date = s
        .expires_at
        .date_naive()
        .checked_sub_days(Days::new(1))
        .unwrap_or(NaiveDate::MIN);
    OnboardingOut {
        id: s.id,
        authentication_url: connect_url(state, s.id),
        user: s.user_id,
        user_id: s.user_id,
        building_id: s.building_id,
        language: s.options.language,
        price_zone_default: s.options.price_zone_default,
        is_smart_optimization_active_default: s.options.is_smart_optimization_active_default,
        device_type: s.options.device_type.unwrap_or_else(|| "ev".to_owned()),
        success_url: s.success_url,
        cancel_url: s.cancel_url,
        expiration_date,
        status,
        object_id: s.object_ids.first().copied(),
        object_ids: s.object_ids,
        external_metadata: s.options.external_metadata,
        created_at: s.created_at,
        completed_at: s.completed_at,
    }
}

/// Whether a key or string anywhere in `value` holds a NUL, which PostgreSQL's JSONB refuses.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, item)| key.contains('\0') || holds_nul(item)),
        _ => false,
    }
}

/// The largest `external_metadata` accepted, serialised.
const MAX_METADATA_BYTES: usize = 4096;

fn required<T>(f: &mut Fields, key: &str, patch: Patch<T>) -> Option<T> {
    match patch {
        Patch::Set(v) => Some(v),
        // An invalid value was reported by its parser already.
        Patch::Absent if f.has_errors_for(key) => None,
        Patch::Absent => {
            f.error(key, "missing", "Field required");
            None
        }
        Patch::Null => {
            f.error(key, "null_forbidden", "This field may not be null");
            None
        }
    }
}

/// Start a device onboarding session.
///
/// Creates a session for one of the organisation's users and answers its
/// `authentication_url`, Voltplan's Connect page: send the driver's browser there. The driver
/// chooses the car's brand, logs in at its cloud (for the built-in sandbox a simulated login),
/// and picks which of the account's cars to connect; each becomes an electric vehicle of the user
/// (in `building_id`, with `price_zone_default` and `is_smart_optimization_active_default`, and
/// the car's make, model, year and VIN). The browser then returns to `success_url` with
/// `onboarding_session_id`, `object_id` and `object_ids` appended, or to `cancel_url` with
/// `onboarding_session_id` and `reason` (`access_denied`, `no_vehicles`, `error`, …). A session
/// can complete once and stays valid until the end of the next day (UTC); after that its pages
/// answer 404.
///
/// 404 when the user (or the building, or the building's owner) is not a live one of this
/// organisation; 422 names every invalid field.
#[utoipa::path(post, path = "/api/partners/v2.0/device-onboarding",
    tag = "Device Onboarding Sessions", request_body = OnboardingIn,
    responses((status = 200, body = OnboardingOut),
        (status = 404, description = "No such live user (or building of that user) in this organisation"),
        (status = 422, description = "A field is missing or invalid")),
    security(("bearer" = [])))]
pub async fn create_onboarding(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonObject,
) -> ApiResult<Json<OnboardingOut>> {
    let now = state.now();
    let mut f = Fields::new(body, OnboardingIn::FIELDS, &[]);
    let language = f.one_of("language", &LANGUAGES);
    let language = required(&mut f, "language", language);
    let zone = f.one_of("price_zone_default", &ZONES);
    let zone = required(&mut f, "price_zone_default", zone);
    let optimise = f.bool("is_smart_optimization_active_default");
    let optimise = f
        .not_null("is_smart_optimization_active_default", optimise)
        .unwrap_or(false);
    let success_present = f.has_key("success_url");
    let success_url = redirect_field(&mut f, "success_url");
    let cancel_present = f.has_key("cancel_url");
    let cancel_url = redirect_field(&mut f, "cancel_url");
    for (key, present, value) in [
        ("success_url", success_present, &success_url),
        ("cancel_url", cancel_present, &cancel_url),
    ] {
        if value.is_none() && !f.has_errors_for(key) {
            let (kind, msg) = if present {
                ("null_forbidden", "This field may not be null")
            } else {
                ("missing", "Field required")
            };
            f.error(key, kind, msg);
        }
    }
    let user_id = f.uuid("user_id");
    let user_id = required(&mut f, "user_id", user_id);
    let building_id = match f.uuid("building_id") {
        Patch::Set(id) => Some(id),
        Patch::Null | Patch::Absent => None,
    };
    let device_type = match f.one_of("device_type", &DEVICE_TYPES) {
        Patch::Set(t) if t != "ev" => {
            f.error(
                "device_type",
                "value_error",
                "Only electric vehicles (\"ev\") are onboarded through a vehicle cloud; \
                 wallboxes connect over OCPP (POST …/users/{user_id}/wallboxes)",
            );
            None
        }
        Patch::Set(t) => Some(t),
        Patch::Null | Patch::Absent => None,
    };
    let external_metadata = match f.object("external_metadata") {
        Patch::Set(map) => {
            let value = serde_json::Value::Object(map);
            if value.to_string().len() > MAX_METADATA_BYTES {
                f.error(
                    "external_metadata",
                    "too_long",
                    format!("At most {MAX_METADATA_BYTES} bytes of JSON"),
                );
            } else if holds_nul(&value) {
                f.error(
                    "external_metadata",
                    "value_error",
                    "No key or string may contain a NUL character (\\u0000)",
                );
            }
            value
        }
        Patch::Null | Patch::Absent => serde_json::json!({}),
    };
    f.finish()?;
    let (Some(language), Some(zone), Some(success_url), Some(cancel_url), Some(user_id)) =
        (language, zone, success_url, cancel_url, user_id)
    else {
        // Every missing field was reported by `finish`.
        return Err(ApiError::NotFound);
    };
    let session = OnboardingSessionRecord {
        // Random, not time-ordered: the id is the Connect page's secret.
        id: Uuid::new_v4(),
        org_id: principal.org_id,
        user_id,
        building_id,
        relink_vehicle_id: None,
        cue_id: None,
        options: OnboardingOptions {
            language,
            price_zone_default: zone,
            is_smart_optimization_active_default: optimise,
            device_type,
            external_metadata,
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
    let org = OrgScope::new(principal.org_id);
    state
        .store()
        .create_onboarding_session(org, &session)
        .await?;
    Ok(Json(session_out(&state, session)))
}

/// Read a device onboarding session.
///
/// The session as created, with its `status` and, once completed, the devices created
/// (`object_id`, `object_ids`). Another organisation's session is a 404.
#[utoipa::path(get, path = "/api/partners/v2.0/device-onboarding/{onboarding_session_id}",
    tag = "Device Onboarding Sessions",
    params(("onboarding_session_id" = Uuid, Path, description = "The session's id")),
    responses((status = 200, body = OnboardingOut), (status = 404, description = "No such session in this organisation")),
    security(("bearer" = [])))]
pub async fn get_onboarding(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<OnboardingOut>> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let session = state
        .store()
        .get_onboarding_session(OrgScope::new(principal.org_id), id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound,
            e => e.into(),
        })?;
    Ok(Json(session_out(&state, session)))
}
