//! The SQL both backends share. sqlx binds `$1`-style parameters on SQLite too, and both databases
//! support partial indexes, `RETURNING` and `ON CONFLICT`, so one text serves both; where they
//! differ (row locks) the macro takes the difference as a parameter.

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

/// A user joined with one of their vehicles (or none: LEFT JOIN).
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

pub(crate) fn owner_and_vehicles(
    rows: Vec<OwnerVehicleRow>,
) -> Result<(UserRecord, Vec<VehicleRecord>), StoreError> {
    let mut owner = None;
    let mut vehicles = Vec::with_capacity(rows.len());
    for row in rows {
        if let (
            Some(id),
            Some(zone),
            Some(settings),
            Some(state),
            Some(created_at),
            Some(updated_at),
        ) = (
            row.v_id,
            row.v_price_zone,
            row.v_settings,
            row.v_state,
            row.v_created_at,
            row.v_updated_at,
        ) {
            vehicles.push(VehicleRecord {
                id,
                org_id: row.user.org_id,
                user_id: row.user.id,
                building_id: row.v_building_id,
                price_zone: zone
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("vehicle {id}: {e}")))?,
                settings: settings.0,
                state: state.0,
                created_at,
                updated_at,
                deleted_at: row.v_deleted_at,
            });
        }
        if owner.is_none() {
            owner = Some(UserRecord::try_from(row.user)?);
        }
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

/// Implements [`crate::Store`] for a backend. `$store` must have `read` and `write` pools and a
/// `begin_write()` that opens a write transaction (BEGIN IMMEDIATE on SQLite).
macro_rules! store_impl {
    ($store:ty, backend = $backend:expr, for_update = $for_update:literal) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> $crate::Backend {
                $backend
            }

            async fn ping(&self) -> $crate::Result<()> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            async fn count_organisations(&self) -> $crate::Result<i64> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM organisations")
                    .fetch_one(&self.read)
                    .await?;
                Ok(n)
            }

            async fn create_organisation(
                &self,
                name: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::Organisation> {
                let org = $crate::Organisation { id: uuid::Uuid::now_v7(), name: name.to_owned(), created_at: now };
                sqlx::query("INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(org.id)
                    .bind(&org.name)
                    .bind(org.created_at)
                    .execute(&self.write)
                    .await?;
                Ok(org)
            }

            async fn get_organisation(&self, id: uuid::Uuid) -> $crate::Result<$crate::Organisation> {
                let row: Option<$crate::sql::OrganisationRow> =
                    sqlx::query_as("SELECT id, name, created_at FROM organisations WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.read)
                        .await?;
                row.map(Into::into).ok_or($crate::StoreError::NotFound)
            }

            async fn create_api_client(
                &self,
                org: $crate::OrgScope,
                client: &$crate::NewApiClient,
            ) -> $crate::Result<$crate::ApiClient> {
                sqlx::query(
                    "INSERT INTO api_clients (id, org_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&client.client_id)
                .bind(org.id())
                .bind(&client.name)
                .bind(&client.secret_hash)
                .bind(client.created_at)
                .execute(&self.write)
                .await
                .map_err(|e| $crate::sql::map_unique(e, "client_id"))?;
                Ok($crate::ApiClient {
                    id: client.client_id.clone(),
                    org_id: org.id(),
                    name: client.name.clone(),
                    secret_hash: client.secret_hash.clone(),
                    created_at: client.created_at,
                    revoked_at: None,
                })
            }

            async fn get_api_client(&self, client_id: &str) -> $crate::Result<$crate::ApiClient> {
                let row: Option<$crate::sql::ApiClientRow> = sqlx::query_as(
                    "SELECT id, org_id, name, secret_hash, created_at, revoked_at FROM api_clients WHERE id = $1",
                )
                .bind(client_id)
                .fetch_optional(&self.read)
                .await?;
                row.map(Into::into).ok_or($crate::StoreError::NotFound)
            }

            async fn revoke_api_client(
                &self,
                client_id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("UPDATE api_clients SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn rotate_api_client_secret(
                &self,
                client_id: &str,
                secret_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query("UPDATE api_clients SET secret_hash = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(secret_hash)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn insert_access_token(&self, token: &$crate::NewAccessToken) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO access_tokens (token_hash, client_id, org_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&token.token_hash)
                .bind(&token.client_id)
                .bind(token.org_id)
                .bind(token.issued_at)
                .bind(token.expires_at)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn find_access_token(&self, token_hash: &[u8]) -> $crate::Result<Option<$crate::AccessToken>> {
                let row: Option<$crate::sql::AccessTokenRow> = sqlx::query_as(
                    "SELECT t.client_id, t.org_id, t.expires_at FROM access_tokens t \
                     JOIN api_clients c ON c.id = t.client_id \
                     WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND c.revoked_at IS NULL",
                )
                .bind(token_hash)
                .fetch_optional(&self.read)
                .await?;
                Ok(row.map(|r| $crate::AccessToken { client_id: r.client_id, org_id: r.org_id, expires_at: r.expires_at }))
            }

            async fn revoke_access_token(
                &self,
                token_hash: &[u8],
                client_id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND client_id = $3 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(token_hash)
                .bind(client_id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_users(&self, org: $crate::OrgScope, include_deleted: bool) -> $crate::Result<Vec<$crate::UserRecord>> {
                let rows: Vec<$crate::sql::UserRow> = sqlx::query_as(
                    "SELECT id, org_id, email, role, external_user_id, profile, created_at, updated_at, deleted_at \
                     FROM users WHERE org_id = $1 AND ($2 OR deleted_at IS NULL) ORDER BY created_at, id",
                )
                .bind(org.id())
                .bind(include_deleted)
                .fetch_all(&self.read)
                .await?;
                $crate::sql::collect(rows)
            }

            async fn get_user(&self, org: $crate::OrgScope, id: uuid::Uuid, include_deleted: bool) -> $crate::Result<$crate::UserRecord> {
                let row: Option<$crate::sql::UserRow> = sqlx::query_as(
                    "SELECT id, org_id, email, role, external_user_id, profile, created_at, updated_at, deleted_at \
                     FROM users WHERE org_id = $1 AND id = $2 AND ($3 OR deleted_at IS NULL)",
                )
                .bind(org.id())
                .bind(id)
                .bind(include_deleted)
                .fetch_optional(&self.read)
                .await?;
                row.ok_or($crate::StoreError::NotFound)?.try_into()
            }

            async fn create_user(&self, org: $crate::OrgScope, user: &$crate::UserRecord) -> $crate::Result<$crate::UserRecord> {
                sqlx::query(
                    "INSERT INTO users (id, org_id, email, role, external_user_id, profile, created_at, updated_at, deleted_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
                )
                .bind(user.id)
                .bind(org.id())
                .bind(&user.email)
                .bind(user.role.as_str())
                .bind(&user.external_user_id)
                .bind(sqlx::types::Json(&user.profile))
                .bind(user.created_at)
                .bind(user.updated_at)
                .execute(&self.write)
                .await
                .map_err(|e| $crate::sql::map_unique(e, "email"))?;
                Ok($crate::UserRecord { org_id: org.id(), deleted_at: None, ..user.clone() })
            }

            async fn update_user(
                &self,
                org: $crate::OrgScope,
                id: uuid::Uuid,
                change: $crate::Mutation<'_, $crate::UserRecord>,
            ) -> $crate::Result<$crate::UserRecord> {
                let mut tx = self.begin_write().await?;
                let row: Option<$crate::sql::UserRow> = sqlx::query_as(concat!(
                    "SELECT id, org_id, email, role, external_user_id, profile, created_at, updated_at, deleted_at \
                     FROM users WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
                    $for_update
                ))
                .bind(org.id())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let mut user: $crate::UserRecord = row.ok_or($crate::StoreError::NotFound)?.try_into()?;
                change(&mut user).map_err($crate::StoreError::Invalid)?;
                sqlx::query(
                    "UPDATE users SET email = $1, role = $2, external_user_id = $3, profile = $4, updated_at = $5 \
                     WHERE org_id = $6 AND id = $7",
                )
                .bind(&user.email)
                .bind(user.role.as_str())
                .bind(&user.external_user_id)
                .bind(sqlx::types::Json(&user.profile))
                .bind(user.updated_at)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| $crate::sql::map_unique(e, "email"))?;
                tx.commit().await?;
                Ok(user)
            }

            async fn delete_user(
                &self,
                org: $crate::OrgScope,
                id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE users SET deleted_at = $1, updated_at = $1 WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                sqlx::query(
                    "UPDATE buildings SET deleted_at = $1, updated_at = $1 WHERE org_id = $2 AND user_id = $3 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE electric_vehicles SET deleted_at = $1, updated_at = $1 WHERE org_id = $2 AND user_id = $3 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_buildings(
                &self,
                org: $crate::OrgScope,
                user_id: uuid::Uuid,
                include_deleted: bool,
            ) -> $crate::Result<Vec<$crate::BuildingRecord>> {
                let rows: Vec<$crate::sql::BuildingRow> = sqlx::query_as(
                    "SELECT id, org_id, user_id, details, latitude, longitude, created_at, updated_at, deleted_at \
                     FROM buildings WHERE org_id = $1 AND user_id = $2 AND ($3 OR deleted_at IS NULL) ORDER BY created_at, id",
                )
                .bind(org.id())
                .bind(user_id)
                .bind(include_deleted)
                .fetch_all(&self.read)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn get_building(
                &self,
                org: $crate::OrgScope,
                user_id: uuid::Uuid,
                id: uuid::Uuid,
                include_deleted: bool,
            ) -> $crate::Result<$crate::BuildingRecord> {
                let row: Option<$crate::sql::BuildingRow> = sqlx::query_as(
                    "SELECT id, org_id, user_id, details, latitude, longitude, created_at, updated_at, deleted_at \
                     FROM buildings WHERE org_id = $1 AND user_id = $2 AND id = $3 AND ($4 OR deleted_at IS NULL)",
                )
                .bind(org.id())
                .bind(user_id)
                .bind(id)
                .bind(include_deleted)
                .fetch_optional(&self.read)
                .await?;
                row.map(Into::into).ok_or($crate::StoreError::NotFound)
            }

            async fn create_building(
                &self,
                org: $crate::OrgScope,
                building: &$crate::BuildingRecord,
            ) -> $crate::Result<$crate::BuildingRecord> {
                let done = sqlx::query(
                    "INSERT INTO buildings (id, org_id, user_id, details, latitude, longitude, created_at, updated_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                     WHERE EXISTS (SELECT 1 FROM users WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL)",
                )
                .bind(building.id)
                .bind(org.id())
                .bind(building.user_id)
                .bind(sqlx::types::Json(&building.details))
                .bind(building.latitude)
                .bind(building.longitude)
                .bind(building.created_at)
                .bind(building.updated_at)
                .execute(&self.write)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                Ok($crate::BuildingRecord { org_id: org.id(), deleted_at: None, ..building.clone() })
            }

            async fn update_building(
                &self,
                org: $crate::OrgScope,
                user_id: uuid::Uuid,
                id: uuid::Uuid,
                change: $crate::Mutation<'_, $crate::BuildingRecord>,
            ) -> $crate::Result<$crate::BuildingRecord> {
                let mut tx = self.begin_write().await?;
                let row: Option<$crate::sql::BuildingRow> = sqlx::query_as(concat!(
                    "SELECT id, org_id, user_id, details, latitude, longitude, created_at, updated_at, deleted_at \
                     FROM buildings WHERE org_id = $1 AND user_id = $2 AND id = $3 AND deleted_at IS NULL",
                    $for_update
                ))
                .bind(org.id())
                .bind(user_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let mut building: $crate::BuildingRecord = row.ok_or($crate::StoreError::NotFound)?.into();
                change(&mut building).map_err($crate::StoreError::Invalid)?;
                sqlx::query(
                    "UPDATE buildings SET details = $1, latitude = $2, longitude = $3, updated_at = $4 \
                     WHERE org_id = $5 AND id = $6",
                )
                .bind(sqlx::types::Json(&building.details))
                .bind(building.latitude)
                .bind(building.longitude)
                .bind(building.updated_at)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(building)
            }

            async fn delete_building(
                &self,
                org: $crate::OrgScope,
                user_id: uuid::Uuid,
                id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "UPDATE buildings SET deleted_at = $1, updated_at = $1 \
                     WHERE org_id = $2 AND user_id = $3 AND id = $4 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(org.id())
                .bind(user_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                sqlx::query(
                    "UPDATE electric_vehicles SET building_id = NULL, updated_at = $1 WHERE org_id = $2 AND building_id = $3",
                )
                .bind(now)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_vehicles(
                &self,
                org: $crate::OrgScope,
                user_id: uuid::Uuid,
                include_deleted: bool,
            ) -> $crate::Result<Vec<$crate::VehicleRecord>> {
                let rows: Vec<$crate::sql::VehicleRow> = sqlx::query_as(
                    "SELECT id, org_id, user_id, building_id, price_zone, settings, state, created_at, updated_at, deleted_at \
                     FROM electric_vehicles WHERE org_id = $1 AND user_id = $2 AND ($3 OR deleted_at IS NULL) \
                     ORDER BY created_at, id",
                )
                .bind(org.id())
                .bind(user_id)
                .bind(include_deleted)
                .fetch_all(&self.read)
                .await?;
                $crate::sql::collect(rows)
            }

            async fn get_vehicle(
                &self,
                org: $crate::OrgScope,
                user_id: uuid::Uuid,
                id: uuid::Uuid,
                include_deleted: bool,
            ) -> $crate::Result<$crate::VehicleRecord> {
                let row: Option<$crate::sql::VehicleRow> = sqlx::query_as(
                    "SELECT id, org_id, user_id, building_id, price_zone, settings, state, created_at, updated_at, deleted_at \
                     FROM electric_vehicles WHERE org_id = $1 AND user_id = $2 AND id = $3 AND ($4 OR deleted_at IS NULL)",
                )
                .bind(org.id())
                .bind(user_id)
                .bind(id)
                .bind(include_deleted)
                .fetch_optional(&self.read)
                .await?;
                row.ok_or($crate::StoreError::NotFound)?.try_into()
            }

            async fn list_vehicles_with_owner(
                &self,
                org: $crate::OrgScope,
                user_id: uuid::Uuid,
                include_deleted: bool,
            ) -> $crate::Result<($crate::UserRecord, Vec<$crate::VehicleRecord>)> {
                let rows: Vec<$crate::sql::OwnerVehicleRow> = sqlx::query_as(
                    "SELECT u.id, u.org_id, u.email, u.role, u.external_user_id, u.profile, u.created_at, u.updated_at, \
                       u.deleted_at, v.id AS v_id, v.building_id AS v_building_id, v.price_zone AS v_price_zone, \
                       v.settings AS v_settings, v.state AS v_state, v.created_at AS v_created_at, \
                       v.updated_at AS v_updated_at, v.deleted_at AS v_deleted_at \
                     FROM users u LEFT JOIN electric_vehicles v \
                       ON v.org_id = u.org_id AND v.user_id = u.id AND ($3 OR v.deleted_at IS NULL) \
                     WHERE u.org_id = $1 AND u.id = $2 AND ($3 OR u.deleted_at IS NULL) \
                     ORDER BY v.created_at, v.id",
                )
                .bind(org.id())
                .bind(user_id)
                .bind(include_deleted)
                .fetch_all(&self.read)
                .await?;
                $crate::sql::owner_and_vehicles(rows)
            }

            async fn wake_vehicle(&self, org: $crate::OrgScope, id: uuid::Uuid) -> $crate::Result<()> {
                sqlx::query("UPDATE electric_vehicles SET next_cycle_at = NULL WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
                    .bind(org.id())
                    .bind(id)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn get_vehicle_in_org(&self, org: $crate::OrgScope, id: uuid::Uuid) -> $crate::Result<$crate::VehicleRecord> {
                let row: Option<$crate::sql::VehicleRow> = sqlx::query_as(
                    "SELECT id, org_id, user_id, building_id, price_zone, settings, state, created_at, updated_at, deleted_at \
                     FROM electric_vehicles WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
                )
                .bind(org.id())
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
                row.ok_or($crate::StoreError::NotFound)?.try_into()
            }

            async fn create_vehicle(
                &self,
                org: $crate::OrgScope,
                vehicle: &$crate::VehicleRecord,
            ) -> $crate::Result<$crate::VehicleRecord> {
                let done = sqlx::query(
                    "INSERT INTO electric_vehicles \
                     (id, org_id, user_id, building_id, price_zone, settings, state, created_at, updated_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
                     WHERE EXISTS (SELECT 1 FROM users WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL)",
                )
                .bind(vehicle.id)
                .bind(org.id())
                .bind(vehicle.user_id)
                .bind(vehicle.building_id)
                .bind(vehicle.price_zone.as_str())
                .bind(sqlx::types::Json(&vehicle.settings))
                .bind($crate::json_text::JsonText(&vehicle.state))
                .bind(vehicle.created_at)
                .bind(vehicle.updated_at)
                .execute(&self.write)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                Ok($crate::VehicleRecord { org_id: org.id(), deleted_at: None, ..vehicle.clone() })
            }

            async fn update_vehicle(
                &self,
                org: $crate::OrgScope,
                user_id: uuid::Uuid,
                id: uuid::Uuid,
                change: $crate::Mutation<'_, $crate::VehicleRecord>,
            ) -> $crate::Result<$crate::VehicleRecord> {
                let mut tx = self.begin_write().await?;
                let row: Option<$crate::sql::VehicleRow> = sqlx::query_as(concat!(
                    "SELECT id, org_id, user_id, building_id, price_zone, settings, state, created_at, updated_at, deleted_at \
                     FROM electric_vehicles WHERE org_id = $1 AND user_id = $2 AND id = $3 AND deleted_at IS NULL",
                    $for_update
                ))
                .bind(org.id())
                .bind(user_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let mut vehicle: $crate::VehicleRecord = row.ok_or($crate::StoreError::NotFound)?.try_into()?;
                change(&mut vehicle).map_err($crate::StoreError::Invalid)?;
                sqlx::query(
                    // The state belongs to the worker and is never written here; a settings change
                    // makes the vehicle due at once, so the worker re-plans within one cycle.
                    "UPDATE electric_vehicles SET building_id = $1, price_zone = $2, settings = $3, updated_at = $4, \
                       next_cycle_at = NULL \
                     WHERE org_id = $5 AND id = $6",
                )
                .bind(vehicle.building_id)
                .bind(vehicle.price_zone.as_str())
                .bind(sqlx::types::Json(&vehicle.settings))
                .bind(vehicle.updated_at)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(vehicle)
            }

            async fn delete_vehicle(
                &self,
                org: $crate::OrgScope,
                user_id: uuid::Uuid,
                id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let done = sqlx::query(
                    "UPDATE electric_vehicles SET deleted_at = $1, updated_at = $1 \
                     WHERE org_id = $2 AND user_id = $3 AND id = $4 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(org.id())
                .bind(user_id)
                .bind(id)
                .execute(&self.write)
                .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                Ok(())
            }
        }
    };
}

pub(crate) use store_impl;
