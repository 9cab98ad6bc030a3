//! Rows as both backends read them, and the helpers the shared SQL (`shared/store.rs`) maps them
//! with.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;
use voltplan_core::account::{BuildingDetails, Role, UserProfile};
use voltplan_core::vehicle::{EvSettings, EvState};

use crate::{ApiClient, BuildingRecord, Organisation, StoreError, UserRecord, VehicleRecord};

#[derive(sqlx::FromRow)]
pub(crate) struct OrganisationRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<OrganisationRow> for Organisation {
    fn from(row: OrganisationRow) -> Self {
        Organisation {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiClientRow {
    id: String,
    org_id: Uuid,
    name: String,
    secret_hash: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiClientRow> for ApiClient {
    fn from(row: ApiClientRow) -> Self {
        ApiClient {
            id: row.id,
            org_id: row.org_id,
            name: row.name,
            secret_hash: row.secret_hash,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccessTokenRow {
    pub client_id: String,
    pub org_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    org_id: Uuid,
    email: String,
    role: String,
    external_user_id: Option<String>,
    profile: Json<UserProfile>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let role = Role::parse(&row.role).ok_or_else(|| {
            StoreError::Corrupt(format!("user {} has role {:?}", row.id, row.role))
        })?;
        Ok(UserRecord {
            id: row.id,
            org_id: row.org_id,
            email: row.email,
            role,
            external_user_id: row.external_user_id,
            profile: row.profile.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BuildingRow {
    id: Uuid,
    org_id: Uuid,
    user_id: Uuid,
    details: Json<BuildingDetails>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<BuildingRow> for BuildingRecord {
    fn from(row: BuildingRow) -> Self {
        BuildingRecord {
            id: row.id,
            org_id: row.org_id,
            user_id: row.user_id,
            details: row.details.0,
            latitude: row.latitude,
            longitude: row.longitude,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct VehicleRow {
    id: Uuid,
    org_id: Uuid,
    user_id: Uuid,
    building_id: Option<Uuid>,
    price_zone: String,
    settings: Json<EvSettings>,
    state: crate::json_text::JsonText<EvState>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<VehicleRow> for VehicleRecord {
    type Error = StoreError;
    fn try_from(row: VehicleRow) -> Result<Self, StoreError> {
        let price_zone = row
            .price_zone
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("vehicle {}: {e}", row.id)))?;
        Ok(VehicleRecord {
            id: row.id,
            org_id: row.org_id,
            user_id: row.user_id,
            building_id: row.building_id,
            price_zone,
            settings: row.settings.0,
            state: row.state.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }
}

/// A user joined with one of their vehicles (or none: LEFT JOIN), the vehicle's columns named
/// `v_…`. An inner join (the organisation-wide list) reads into it too.
#[derive(sqlx::FromRow)]
pub(crate) struct OwnerVehicleRow {
    #[sqlx(flatten)]
    user: UserRow,
    v_id: Option<Uuid>,
    v_building_id: Option<Uuid>,
    v_price_zone: Option<String>,
    v_settings: Option<Json<EvSettings>>,
    v_state: Option<crate::json_text::JsonText<EvState>>,
    v_created_at: Option<DateTime<Utc>>,
    v_updated_at: Option<DateTime<Utc>>,
    v_deleted_at: Option<DateTime<Utc>>,
}

impl OwnerVehicleRow {
    /// The owner, and the vehicle when the join found one.
    pub(crate) fn split(self) -> Result<(UserRecord, Option<VehicleRecord>), StoreError> {
        let owner = UserRecord::try_from(self.user)?;
        let vehicle = match (
            self.v_id,
            self.v_price_zone,
            self.v_settings,
            self.v_state,
            self.v_created_at,
            self.v_updated_at,
        ) {
            (
                Some(id),
                Some(zone),
                Some(settings),
                Some(state),
                Some(created_at),
                Some(updated_at),
            ) => Some(VehicleRecord {
                id,
                org_id: owner.org_id,
                user_id: owner.id,
                building_id: self.v_building_id,
                price_zone: zone
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("vehicle {id}: {e}")))?,
                settings: settings.0,
                state: state.0,
                created_at,
                updated_at,
                deleted_at: self.v_deleted_at,
            }),
            _ => None,
        };
        Ok((owner, vehicle))
    }
}

pub(crate) fn owner_and_vehicles(
    rows: Vec<OwnerVehicleRow>,
) -> Result<(UserRecord, Vec<VehicleRecord>), StoreError> {
    let mut owner = None;
    let mut vehicles = Vec::with_capacity(rows.len());
    for row in rows {
        let (user, vehicle) = row.split()?;
        vehicles.extend(vehicle);
        owner.get_or_insert(user);
    }
    Ok((owner.ok_or(StoreError::NotFound)?, vehicles))
}

pub(crate) fn map_unique(err: sqlx::Error, field: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { field },
        _ => StoreError::Database(err),
    }
}

pub(crate) fn collect<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}
