//! `/org/{org_id}/users`: an organisation's end users, staff and admins (Podero §3.1).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_core::account::Role;
use voltplan_core::validation::FieldError;
use voltplan_store::{UserRecord, new_user};

use crate::auth::OrgAccess;
use crate::body::{Fields, JsonObject, Patch, write_body};
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, IncludeDeleted, OrgPath, Q, UserPath};
use crate::schemas::accepted_values_type;
use crate::state::AppState;

const ROLES: &[&str] = &["admin", "staff", "user"];

accepted_values_type! {
    /// A user's role, as the OpenAPI document shows it.
    struct UserRole = ROLES.iter().copied();
}

pub(crate) const READ_ONLY: &[&str] = &[
    "id",
    "location_last_updated",
    "created_at",
    "updated_at",
    "deleted_at",
];

#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: Uuid,
    pub external_user_id: Option<String>,
    /// `admin`, `staff` or `user`.
    pub role: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub street_and_number: Option<String>,
    pub street_add_info: Option<String>,
    pub zip_code: Option<String>,
    pub town: Option<String>,
    /// ISO 3166-1 country code as given (alpha-2 such as `DE`, or alpha-3).
    pub country: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Set by the system whenever the coordinates change. Read-only.
    pub location_last_updated: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the user was deleted (only listed with `include_deleted=true`).
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<UserRecord> for UserOut {
    fn from(u: UserRecord) -> Self {
        let p = u.profile;
        UserOut {
            id: u.id,
            external_user_id: u.external_user_id,
            role: u.role.as_str().to_owned(),
            email: u.email,
            first_name: p.first_name,
            last_name: p.last_name,
            street_and_number: p.street_and_number,
            street_add_info: p.street_add_info,
            zip_code: p.zip_code,
            town: p.town,
            country: p.country,
            latitude: p.latitude,
            longitude: p.longitude,
            location_last_updated: p.location_last_updated,
            created_at: u.created_at,
            updated_at: u.updated_at,
            deleted_at: u.deleted_at,
        }
    }
}

write_body! {
    /// The writable user fields (POST needs `role` and `email`; PUT takes any subset).
    /// `country_iso2` is accepted as an alias of `country`. `id`, `location_last_updated`,
    /// `created_at`, `updated_at` and `deleted_at` are read-only and ignored when sent.
    pub struct UserWrite {
        #[schema(required = false, inline)]
        role: UserRole,
        /// Unique (case-insensitive) among the organisation's live users.
        #[schema(required = false, max_length = 254,
            pattern = r"^[^@\s\x00-\x1F\x7F-\x9F]+@[^@\s.\x00-\x1F\x7F-\x9F]+(\.[^@\s.\x00-\x1F\x7F-\x9F]+)+$")]
        email: String,
        #[schema(max_length = 255)]
        external_user_id: Option<String>,
        #[schema(max_length = 150)]
        first_name: Option<String>,
        #[schema(max_length = 150)]
        last_name: Option<String>,
        #[schema(max_length = 100)]
        street_and_number: Option<String>,
        #[schema(max_length = 100)]
        street_add_info: Option<String>,
        /// A string, or a number (stored as its digits).
        #[schema(max_length = 20)]
        zip_code: Option<String>,
        #[schema(max_length = 100)]
        town: Option<String>,
        /// ISO 3166-1 alpha-2 or alpha-3 code, stored upper-case.
        #[schema(pattern = "^[A-Za-z]{2,3}$")]
        country: Option<String>,
        /// An alias of `country`; when both are sent they must agree.
        #[schema(pattern = "^[A-Za-z]{2,3}$")]
        country_iso2: Option<String>,
        #[schema(minimum = -90.0, maximum = 90.0)]
        latitude: Option<f64>,
        #[schema(minimum = -180.0, maximum = 180.0)]
        longitude: Option<f64>,
    }
}

struct UserPatch {
    role: Option<Role>,
    email: Option<String>,
    external_user_id: Patch<String>,
    first_name: Patch<String>,
    last_name: Patch<String>,
    street_and_number: Patch<String>,
    street_add_info: Patch<String>,
    zip_code: Patch<String>,
    town: Patch<String>,
    country: Patch<String>,
    latitude: Patch<f64>,
    longitude: Patch<f64>,
}

/// `local@domain.tld`: a local part and two or more dot-separated domain labels, none empty, without
/// `@` or whitespace (the OpenAPI document states the same rule as a pattern).
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let plain =
        |part: &str| !part.is_empty() && !part.contains('@') && !part.contains(char::is_whitespace);
    plain(local) && domain.split('.').count() >= 2 && domain.split('.').all(plain)
}

fn parse_patch(f: &mut Fields) -> UserPatch {
    let role = f.one_of("role", ROLES);
    let role = f.not_null("role", role).and_then(|r| Role::parse(&r));
    let email = f.string("email", 254, false);
    let email = f.not_null("email", email).map(|e| e.trim().to_owned());
    if let Some(e) = &email
        && !valid_email(e)
    {
        f.error(
            "email",
            "value_error",
            "Input should be a valid e-mail address",
        );
    }
    let country = f.string("country", 3, false);
    let alias = f.string("country_iso2", 3, false);
    let country = match (country, alias) {
        (Patch::Absent, alias) => alias,
        (country, Patch::Absent) => country,
        (Patch::Set(a), Patch::Set(b)) if a.eq_ignore_ascii_case(&b) => Patch::Set(a),
        (c, _) => {
            f.error(
                "country_iso2",
                "value_error",
                "country and country_iso2 disagree; send one of them",
            );
            c
        }
    };
    let country = match country {
        Patch::Set(c) if c.len() >= 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
            Patch::Set(c.to_ascii_uppercase())
        }
        Patch::Set(_) => {
            f.error(
                "country",
                "value_error",
                "Input should be an ISO 3166-1 alpha-2 (or alpha-3) country code",
            );
            Patch::Absent
        }
        other => other,
    };
    UserPatch {
        role,
        email,
        external_user_id: f.string("external_user_id", 255, false),
        first_name: f.string("first_name", 150, false),
        last_name: f.string("last_name", 150, false),
        street_and_number: f.string("street_and_number", 100, false),
        street_add_info: f.string("street_add_info", 100, false),
        zip_code: f.string("zip_code", 20, true),
        town: f.string("town", 100, false),
        country,
        latitude: f.number("latitude", -90.0, 90.0, false),
        longitude: f.number("longitude", -180.0, 180.0, false),
    }
}

fn apply_patch(
    patch: UserPatch,
    user: &mut UserRecord,
    now: DateTime<Utc>,
) -> Result<(), Vec<FieldError>> {
    if let Some(role) = patch.role {
        user.role = role;
    }
    if let Some(email) = patch.email {
        user.email = email;
    }
    patch.external_user_id.apply(&mut user.external_user_id);
    let p = &mut user.profile;
    patch.first_name.apply(&mut p.first_name);
    patch.last_name.apply(&mut p.last_name);
    patch.street_and_number.apply(&mut p.street_and_number);
    patch.street_add_info.apply(&mut p.street_add_info);
    patch.zip_code.apply(&mut p.zip_code);
    patch.town.apply(&mut p.town);
    patch.country.apply(&mut p.country);
    let before = (p.latitude, p.longitude);
    patch.latitude.apply(&mut p.latitude);
    patch.longitude.apply(&mut p.longitude);
    if (p.latitude, p.longitude) != before {
        p.location_last_updated = Some(now);
    }
    user.updated_at = now;
    Ok(())
}

/// List the organisation's users.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users", tag = "Users",
    params(OrgPath, IncludeDeleted),
    responses((status = 200, body = [UserOut]), (status = 401, description = "Missing, invalid, expired or revoked token"), (status = 404, description = "Not this token's organisation")),
    security(("bearer" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    access: OrgAccess,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<Vec<UserOut>>> {
    let users = state
        .store()
        .list_users(access.org, query.include_deleted)
        .await?;
    Ok(Json(users.into_iter().map(UserOut::from).collect()))
}

/// Create a user. `role` and `email` are required; the e-mail must be unique (case-insensitive)
/// among the organisation's users that are not deleted. Answers 200 as Podero does.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users", tag = "Users",
    params(OrgPath), request_body = UserWrite,
    responses((status = 200, body = UserOut), (status = 422, description = "Invalid field(s), each named in `detail[].loc`")),
    security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    access: OrgAccess,
    body: JsonObject,
) -> ApiResult<Json<UserOut>> {
    let now = state.now();
    let mut f = Fields::new(body, UserWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f);
    if patch.role.is_none() && !f.has_errors_for("role") {
        f.error("role", "missing", "Field required");
    }
    if patch.email.is_none() && !f.has_errors_for("email") {
        f.error("email", "missing", "Field required");
    }
    f.finish()?;
    let mut user = new_user(access.org, String::new(), Role::User, now);
    apply_patch(patch, &mut user, now).map_err(ApiError::Invalid)?;
    let created = state.store().create_user(access.org, &user).await?;
    Ok(Json(created.into()))
}

/// Get one user.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}", tag = "Users",
    params(UserPath, IncludeDeleted),
    responses((status = 200, body = UserOut), (status = 404, description = "No such user in this organisation")),
    security(("bearer" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<UserOut>> {
    let user = state
        .store()
        .get_user(access.org, path.user_id, query.include_deleted)
        .await?;
    Ok(Json(user.into()))
}

/// Update a user: a partial update, send only the fields to change (`null` clears a field).
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}", tag = "Users",
    params(UserPath), request_body = UserWrite,
    responses((status = 200, body = UserOut)),
    security(("bearer" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    body: JsonObject,
) -> ApiResult<Json<UserOut>> {
    let now = state.now();
    let mut f = Fields::new(body, UserWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f);
    f.finish()?;
    let updated = state
        .store()
        .update_user(
            access.org,
            path.user_id,
            Box::new(move |user| apply_patch(patch, user, now)),
        )
        .await?;
    Ok(Json(updated.into()))
}

/// Delete a user: soft-deletes the user with their buildings and devices. Cannot be undone
/// through the API.
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}", tag = "Users",
    params(UserPath),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
) -> ApiResult<StatusCode> {
    state
        .store()
        .delete_user(access.org, path.user_id, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::declaration::{accepts_what_it_shows, all_null, properties};

    #[test]
    fn the_declared_fields_are_documented_accepted_and_read() {
        assert_eq!(properties::<UserWrite>(), UserWrite::FIELDS);
        let mut f = Fields::new(all_null(UserWrite::FIELDS), UserWrite::FIELDS, READ_ONLY);
        parse_patch(&mut f);
        assert_eq!(f.unread(), Vec::<&str>::new());
        accepts_what_it_shows::<UserOut>(UserWrite::FIELDS, READ_ONLY);
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(valid_email("anna@example.com"));
        assert!(!valid_email("anna@localhost"));
        assert!(!valid_email("@example.com"));
        assert!(!valid_email("an na@example.com"));
        assert!(!valid_email("anna@@example.com"));
    }
}
