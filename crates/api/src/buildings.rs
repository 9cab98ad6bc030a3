//! `/org/{org_id}/users/{user_id}/buildings` (Podero §3.2). A building's coordinates are the centre
//! of the geo-fence of the vehicles linked to it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_core::validation::FieldError;
use voltplan_store::{BuildingRecord, new_building};

use crate::auth::OrgAccess;
use crate::body::{Fields, JsonObject, Patch, write_body};
use crate::error::{ApiError, ApiResult};
use crate::params::{BuildingPath, Ids, IncludeDeleted, Q, UserPath};
use crate::state::AppState;

pub(crate) const READ_ONLY: &[&str] = &["id", "user", "created_at", "updated_at", "deleted_at"];

#[derive(Debug, Serialize, ToSchema)]
pub struct BuildingOut {
    pub id: Uuid,
    /// The owning user's id.
    pub user: Uuid,
    pub name: String,
    pub property_type: Option<String>,
    pub property_size_m2: Option<i64>,
    pub property_age: Option<i64>,
    pub num_occupants: Option<i64>,
    pub occupant_type: Option<String>,
    pub space_heating: Option<String>,
    pub water_heating: Option<String>,
    pub photovoltaic: Option<bool>,
    pub street_and_number: Option<String>,
    pub street_add_info: Option<String>,
    pub zip_code: Option<String>,
    pub town: Option<String>,
    pub country: Option<String>,
    /// The grid connection's limit, W (Voltplan extension). Its vehicles are held under it while
    /// the building sits in a grid group (`…/grid-groups`), together with the group's own limits;
    /// a building in no group is not limited.
    pub power_limit_w: Option<i64>,
    /// Centre of the geo-fence of this building's vehicles.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<BuildingRecord> for BuildingOut {
    fn from(b: BuildingRecord) -> Self {
        let d = b.details;
        BuildingOut {
            id: b.id,
            user: b.user_id,
            name: d.name,
            property_type: d.property_type,
            property_size_m2: d.property_size_m2,
            property_age: d.property_age,
            num_occupants: d.num_occupants,
            occupant_type: d.occupant_type,
            space_heating: d.space_heating,
            water_heating: d.water_heating,
            photovoltaic: d.photovoltaic,
            street_and_number: d.street_and_number,
            street_add_info: d.street_add_info,
            zip_code: d.zip_code,
            town: d.town,
            country: d.country,
            power_limit_w: d.power_limit_w,
            latitude: b.latitude,
            longitude: b.longitude,
            created_at: b.created_at,
            updated_at: b.updated_at,
            deleted_at: b.deleted_at,
        }
    }
}

write_body! {
    /// Writable building fields. `name` is required on POST. Podero's documents disagree on the
    /// enums of `property_type`, `occupant_type`, `space_heating` and `water_heating` (the reference
    /// lists `Detached`…`Flat`, the guides use `single_family_home`, `heat_pump`), so any string of
    /// at most 50 characters is accepted and stored as given. `country_iso2` is an alias of `country`.
    pub struct BuildingWrite {
        /// Required on POST; not blank.
        #[schema(required = false, max_length = 100,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
        name: String,
        #[schema(max_length = 50)]
        property_type: Option<String>,
        #[schema(minimum = 0, maximum = 1_000_000)]
        property_size_m2: Option<i64>,
        #[schema(minimum = 0, maximum = 10_000)]
        property_age: Option<i64>,
        #[schema(minimum = 0, maximum = 10_000)]
        num_occupants: Option<i64>,
        #[schema(max_length = 50)]
        occupant_type: Option<String>,
        #[schema(max_length = 50)]
        space_heating: Option<String>,
        #[schema(max_length = 50)]
        water_heating: Option<String>,
        photovoltaic: Option<bool>,
        #[schema(max_length = 100)]
        street_and_number: Option<String>,
        #[schema(max_length = 100)]
        street_add_info: Option<String>,
        /// A string, or a number (stored as its digits).
        #[schema(max_length = 20)]
        zip_code: Option<String>,
        #[schema(max_length = 100)]
        town: Option<String>,
        #[schema(max_length = 3)]
        country: Option<String>,
        /// An alias of `country` (`country` wins when both are sent).
        #[schema(max_length = 3)]
        country_iso2: Option<String>,
        #[schema(minimum = -90.0, maximum = 90.0)]
        latitude: Option<f64>,
        #[schema(minimum = -180.0, maximum = 180.0)]
        longitude: Option<f64>,
        #[schema(minimum = 0, maximum = 1_000_000_000)]
        power_limit_w: Option<i64>,
    }
}

struct BuildingPatch {
    name: Option<String>,
    property_type: Patch<String>,
    property_size_m2: Patch<i64>,
    property_age: Patch<i64>,
    num_occupants: Patch<i64>,
    occupant_type: Patch<String>,
    space_heating: Patch<String>,
    water_heating: Patch<String>,
    photovoltaic: Patch<bool>,
    street_and_number: Patch<String>,
    street_add_info: Patch<String>,
    zip_code: Patch<String>,
    town: Patch<String>,
    country: Patch<String>,
    latitude: Patch<f64>,
    longitude: Patch<f64>,
    power_limit_w: Patch<i64>,
}

fn parse_patch(f: &mut Fields) -> BuildingPatch {
    let name = f.string("name", 100, false);
    let name = f.not_null("name", name);
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        f.error(
            "name",
            "string_too_short",
            "String should have at least 1 character",
        );
    }
    let country = match (
        f.string("country", 3, false),
        f.string("country_iso2", 3, false),
    ) {
        (Patch::Absent, alias) => alias,
        (country, _) => country,
    };
    BuildingPatch {
        name,
        property_type: f.string("property_type", 50, false),
        property_size_m2: f.int("property_size_m2", 0, 1_000_000),
        property_age: f.int("property_age", 0, 10_000),
        num_occupants: f.int("num_occupants", 0, 10_000),
        occupant_type: f.string("occupant_type", 50, false),
        space_heating: f.string("space_heating", 50, false),
        water_heating: f.string("water_heating", 50, false),
        photovoltaic: f.bool("photovoltaic"),
        street_and_number: f.string("street_and_number", 100, false),
        street_add_info: f.string("street_add_info", 100, false),
        zip_code: f.string("zip_code", 20, true),
        town: f.string("town", 100, false),
        country,
        latitude: f.number("latitude", -90.0, 90.0, false),
        longitude: f.number("longitude", -180.0, 180.0, false),
        power_limit_w: f.int("power_limit_w", 0, voltplan_core::grid::MAX_POWER_LIMIT_W),
    }
}

fn apply_patch(
    patch: BuildingPatch,
    b: &mut BuildingRecord,
    now: DateTime<Utc>,
) -> Result<(), Vec<FieldError>> {
    let d = &mut b.details;
    if let Some(name) = patch.name {
        d.name = name;
    }
    patch.property_type.apply(&mut d.property_type);
    patch.property_size_m2.apply(&mut d.property_size_m2);
    patch.property_age.apply(&mut d.property_age);
    patch.num_occupants.apply(&mut d.num_occupants);
    patch.occupant_type.apply(&mut d.occupant_type);
    patch.space_heating.apply(&mut d.space_heating);
    patch.water_heating.apply(&mut d.water_heating);
    patch.photovoltaic.apply(&mut d.photovoltaic);
    patch.street_and_number.apply(&mut d.street_and_number);
    patch.street_add_info.apply(&mut d.street_add_info);
    patch.zip_code.apply(&mut d.zip_code);
    patch.town.apply(&mut d.town);
    patch.country.apply(&mut d.country);
    patch.latitude.apply(&mut b.latitude);
    patch.longitude.apply(&mut b.longitude);
    patch.power_limit_w.apply(&mut d.power_limit_w);
    if b.latitude.is_some() != b.longitude.is_some() {
        return Err(vec![FieldError::body(
            if b.latitude.is_some() {
                "longitude"
            } else {
                "latitude"
            },
            "value_error",
            "latitude and longitude must be set together",
        )]);
    }
    b.updated_at = now;
    Ok(())
}

/// List a user's buildings.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings", tag = "User Buildings",
    params(UserPath, IncludeDeleted),
    responses((status = 200, body = [BuildingOut])),
    security(("bearer" = [])))]
pub async fn list_buildings(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<Vec<BuildingOut>>> {
    // A user of another organisation, or none, is a 404 rather than an empty list.
    state
        .store()
        .get_user(access.org, path.user_id, query.include_deleted)
        .await?;
    let buildings = state
        .store()
        .list_buildings(access.org, path.user_id, query.include_deleted)
        .await?;
    Ok(Json(buildings.into_iter().map(BuildingOut::from).collect()))
}

/// Create a building for a user. Only `name` is required.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings", tag = "User Buildings",
    params(UserPath), request_body = BuildingWrite,
    responses((status = 200, body = BuildingOut)),
    security(("bearer" = [])))]
pub async fn create_building(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    body: JsonObject,
) -> ApiResult<Json<BuildingOut>> {
    let now = state.now();
    let mut f = Fields::new(body, BuildingWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f);
    if patch.name.is_none() && !f.has_errors_for("name") {
        f.error("name", "missing", "Field required");
    }
    f.finish()?;
    let mut building = new_building(access.org, path.user_id, now);
    apply_patch(patch, &mut building, now).map_err(ApiError::Invalid)?;
    let created = state.store().create_building(access.org, &building).await?;
    Ok(Json(created.into()))
}

/// Get one building.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings/{building_id}", tag = "User Buildings",
    params(BuildingPath, IncludeDeleted),
    responses((status = 200, body = BuildingOut)),
    security(("bearer" = [])))]
pub async fn get_building(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<BuildingPath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<BuildingOut>> {
    let building = state
        .store()
        .get_building(
            access.org,
            path.user_id,
            path.building_id,
            query.include_deleted,
        )
        .await?;
    Ok(Json(building.into()))
}

/// Update a building (partial: send only the fields to change).
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings/{building_id}", tag = "User Buildings",
    params(BuildingPath), request_body = BuildingWrite,
    responses((status = 200, body = BuildingOut)),
    security(("bearer" = [])))]
pub async fn update_building(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<BuildingPath>,
    body: JsonObject,
) -> ApiResult<Json<BuildingOut>> {
    let now = state.now();
    let mut f = Fields::new(body, BuildingWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f);
    f.finish()?;
    let updated = state
        .store()
        .update_building(
            access.org,
            path.user_id,
            path.building_id,
            Box::new(move |b| apply_patch(patch, b, now)),
        )
        .await?;
    Ok(Json(updated.into()))
}

/// Delete a building (soft). Vehicles linked to it are unlinked.
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings/{building_id}", tag = "User Buildings",
    params(BuildingPath),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete_building(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<BuildingPath>,
) -> ApiResult<StatusCode> {
    state
        .store()
        .delete_building(access.org, path.user_id, path.building_id, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::declaration::{accepts_what_it_shows, all_null, properties};

    #[test]
    fn the_declared_fields_are_documented_accepted_and_read() {
        assert_eq!(properties::<BuildingWrite>(), BuildingWrite::FIELDS);
        let mut f = Fields::new(
            all_null(BuildingWrite::FIELDS),
            BuildingWrite::FIELDS,
            READ_ONLY,
        );
        parse_patch(&mut f);
        assert_eq!(f.unread(), Vec::<&str>::new());
        accepts_what_it_shows::<BuildingOut>(BuildingWrite::FIELDS, READ_ONLY);
    }
}
