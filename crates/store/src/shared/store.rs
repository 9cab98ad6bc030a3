//! [`Store`] in SQL both backends share. Compiled once per backend (`#[path]` modules in
//! `sqlite.rs` and `postgres.rs`), against that backend's `ThisStore`, `BACKEND` and row-lock clause
//! `FOR_UPDATE`: sqlx binds `$1`-style parameters on SQLite too, and both databases support
//! partial indexes, `RETURNING` and `ON CONFLICT`, so one text serves both.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{BACKEND, Db, FOR_UPDATE, ThisStore};
use crate::json_text::JsonText;
use crate::sql;
use crate::{
    AccessToken, ApiClient, Backend, BuildingRecord, Mutation, NewAccessToken, NewApiClient,
    OrgScope, Organisation, Result, Store, StoreError, UserRecord, VehicleRecord,
};
use voltplan_core::account::email_key;

impl ThisStore {
    /// Gives the users written before e-mail keys existed their key (once: later opens find none).
    /// Two live users whose addresses differ only by case were allowed before on SQLite; the
    /// second keeps no key, so is not held to uniqueness, and is logged for an operator to resolve.
    pub(crate) async fn refold_email_keys(&self) -> Result<()> {
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, email FROM users WHERE email_key IS NULL")
                .fetch_all(&self.write)
                .await?;
        for (id, email) in rows {
            let folded = sqlx::query("UPDATE users SET email_key = $1 WHERE id = $2")
                .bind(email_key(&email))
                .bind(id)
                .execute(&self.write)
                .await;
            if let Err(e) = folded {
                tracing::warn!(user_id = %id, error = %e, "user's e-mail collides with another's once case is folded; left unkeyed");
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Store for ThisStore {
    fn backend(&self) -> Backend {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        // SQLite's one writer is a pool of its own: a writer stuck behind a lock is an outage
        // for every write, though reads still work. (On PostgreSQL both are the same pool.)
        if BACKEND == Backend::Sqlite {
            sqlx::query("SELECT 1").execute(&self.write).await?;
        }
        Ok(())
    }

    async fn count_organisations(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM organisations")
            .fetch_one(&self.read)
            .await?;
        Ok(n)
    }

    async fn create_organisation(&self, name: &str, now: DateTime<Utc>) -> Result<Organisation> {
        let org = Organisation {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            created_at: now,
        };
        sqlx::query("INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(&self.write)
            .await?;
        Ok(org)
    }

    async fn get_organisation(&self, id: Uuid) -> Result<Organisation> {
        let row: Option<sql::OrganisationRow> =
            sqlx::query_as("SELECT id, name, created_at FROM organisations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    async fn create_api_client(&self, org: OrgScope, client: &NewApiClient) -> Result<ApiClient> {
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
        .map_err(|e| sql::map_unique(e, "client_id"))?;
        Ok(ApiClient {
            id: client.client_id.clone(),
            org_id: org.id(),
            name: client.name.clone(),
            secret_hash: client.secret_hash.clone(),
            created_at: client.created_at,
            revoked_at: None,
        })
    }

    async fn get_api_client(&self, client_id: &str) -> Result<ApiClient> {
        let row: Option<sql::ApiClientRow> = sqlx::query_as(
            "SELECT id, org_id, name, secret_hash, created_at, revoked_at FROM api_clients WHERE id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.read)
        .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    async fn revoke_api_client(&self, client_id: &str, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_clients SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
        )
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
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_clients SET secret_hash = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(secret_hash)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_access_token(&self, token: &NewAccessToken) -> Result<()> {
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

    async fn find_access_token(&self, token_hash: &[u8]) -> Result<Option<AccessToken>> {
        let row: Option<sql::AccessTokenRow> = sqlx::query_as(
            "SELECT t.client_id, t.org_id, t.expires_at FROM access_tokens t \
             JOIN api_clients c ON c.id = t.client_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND c.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| AccessToken {
            client_id: r.client_id,
            org_id: r.org_id,
            expires_at: r.expires_at,
        }))
    }

    async fn revoke_access_token(
        &self,
        token_hash: &[u8],
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
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

    async fn list_users(&self, org: OrgScope, include_deleted: bool) -> Result<Vec<UserRecord>> {
        let rows: Vec<sql::UserRow> = sqlx::query_as(
            "SELECT id, org_id, email, role, external_user_id, profile, created_at, updated_at, deleted_at \
             FROM users WHERE org_id = $1 AND ($2 OR deleted_at IS NULL) ORDER BY created_at, id",
        )
        .bind(org.id())
        .bind(include_deleted)
        .fetch_all(&self.read)
        .await?;
        sql::collect(rows)
    }

    async fn get_user(&self, org: OrgScope, id: Uuid, include_deleted: bool) -> Result<UserRecord> {
        let row: Option<sql::UserRow> = sqlx::query_as(
            "SELECT id, org_id, email, role, external_user_id, profile, created_at, updated_at, deleted_at \
             FROM users WHERE org_id = $1 AND id = $2 AND ($3 OR deleted_at IS NULL)",
        )
        .bind(org.id())
        .bind(id)
        .bind(include_deleted)
        .fetch_optional(&self.read)
        .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    async fn create_user(&self, org: OrgScope, user: &UserRecord) -> Result<UserRecord> {
        sqlx::query(
            "INSERT INTO users (id, org_id, email, email_key, role, external_user_id, profile, created_at, updated_at, deleted_at) \
             VALUES ($1, $2, $3, $9, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(user.id)
        .bind(org.id())
        .bind(&user.email)
        .bind(user.role.as_str())
        .bind(&user.external_user_id)
        .bind(Json(&user.profile))
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(email_key(&user.email))
        .execute(&self.write)
        .await
        .map_err(|e| sql::map_unique(e, "email"))?;
        Ok(UserRecord {
            org_id: org.id(),
            deleted_at: None,
            ..user.clone()
        })
    }

    async fn update_user(
        &self,
        org: OrgScope,
        id: Uuid,
        change: Mutation<'_, UserRecord>,
    ) -> Result<UserRecord> {
        let mut tx = self.begin_write().await?;
        let select = format!(
            "SELECT id, org_id, email, role, external_user_id, profile, created_at, updated_at, deleted_at \
             FROM users WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL{FOR_UPDATE}"
        );
        let row: Option<sql::UserRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut user: UserRecord = row.ok_or(StoreError::NotFound)?.try_into()?;
        change(&mut user).map_err(StoreError::Invalid)?;
        sqlx::query(
            "UPDATE users SET email = $1, role = $2, external_user_id = $3, profile = $4, updated_at = $5, \
             email_key = $8 WHERE org_id = $6 AND id = $7",
        )
        .bind(&user.email)
        .bind(user.role.as_str())
        .bind(&user.external_user_id)
        .bind(Json(&user.profile))
        .bind(user.updated_at)
        .bind(org.id())
        .bind(id)
        .bind(email_key(&user.email))
        .execute(&mut *tx)
        .await
        .map_err(|e| sql::map_unique(e, "email"))?;
        tx.commit().await?;
        Ok(user)
    }

    async fn delete_user(&self, org: OrgScope, id: Uuid, now: DateTime<Utc>) -> Result<()> {
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
            return Err(StoreError::NotFound);
        }
        for devices in [
            "buildings",
            "energy_contracts",
            "electric_vehicles",
            "wallboxes",
        ] {
            let delete = format!(
                "UPDATE {devices} SET deleted_at = $1, updated_at = $1 WHERE org_id = $2 AND user_id = $3 AND deleted_at IS NULL"
            );
            sqlx::query(&delete)
                .bind(now)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_buildings(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<Vec<BuildingRecord>> {
        let rows: Vec<sql::BuildingRow> = sqlx::query_as(
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
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<BuildingRecord> {
        let row: Option<sql::BuildingRow> = sqlx::query_as(
            "SELECT id, org_id, user_id, details, latitude, longitude, created_at, updated_at, deleted_at \
             FROM buildings WHERE org_id = $1 AND user_id = $2 AND id = $3 AND ($4 OR deleted_at IS NULL)",
        )
        .bind(org.id())
        .bind(user_id)
        .bind(id)
        .bind(include_deleted)
        .fetch_optional(&self.read)
        .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    async fn create_building(
        &self,
        org: OrgScope,
        building: &BuildingRecord,
    ) -> Result<BuildingRecord> {
        let done = sqlx::query(
            "INSERT INTO buildings (id, org_id, user_id, details, latitude, longitude, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
             WHERE EXISTS (SELECT 1 FROM users WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL)",
        )
        .bind(building.id)
        .bind(org.id())
        .bind(building.user_id)
        .bind(Json(&building.details))
        .bind(building.latitude)
        .bind(building.longitude)
        .bind(building.created_at)
        .bind(building.updated_at)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(BuildingRecord {
            org_id: org.id(),
            deleted_at: None,
            ..building.clone()
        })
    }

    async fn update_building(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        change: Mutation<'_, BuildingRecord>,
    ) -> Result<BuildingRecord> {
        let mut tx = self.begin_write().await?;
        let select = format!(
            "SELECT id, org_id, user_id, details, latitude, longitude, created_at, updated_at, deleted_at \
             FROM buildings WHERE org_id = $1 AND user_id = $2 AND id = $3 AND deleted_at IS NULL{FOR_UPDATE}"
        );
        let row: Option<sql::BuildingRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut building: BuildingRecord = row.ok_or(StoreError::NotFound)?.into();
        let limit_before = building.details.power_limit_w;
        change(&mut building).map_err(StoreError::Invalid)?;
        sqlx::query(
            "UPDATE buildings SET details = $1, latitude = $2, longitude = $3, updated_at = $4 \
             WHERE org_id = $5 AND id = $6",
        )
        .bind(Json(&building.details))
        .bind(building.latitude)
        .bind(building.longitude)
        .bind(building.updated_at)
        .bind(org.id())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if building.details.power_limit_w != limit_before {
            // A connection limit is one of the joint plans' limits: plan them again at once.
            Self::plan_grid_groups_again_in(&mut tx, org).await?;
        }
        tx.commit().await?;
        Ok(building)
    }

    async fn delete_building(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
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
            return Err(StoreError::NotFound);
        }
        for devices in ["electric_vehicles", "wallboxes"] {
            let detach = format!(
                "UPDATE {devices} SET building_id = NULL, updated_at = $1 WHERE org_id = $2 AND building_id = $3"
            );
            sqlx::query(&detach)
                .bind(now)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_vehicles(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<Vec<VehicleRecord>> {
        let rows: Vec<sql::VehicleRow> = sqlx::query_as(
            "SELECT id, org_id, user_id, building_id, price_zone, settings, state, created_at, updated_at, deleted_at \
             FROM electric_vehicles WHERE org_id = $1 AND user_id = $2 AND ($3 OR deleted_at IS NULL) \
             ORDER BY created_at, id",
        )
        .bind(org.id())
        .bind(user_id)
        .bind(include_deleted)
        .fetch_all(&self.read)
        .await?;
        sql::collect(rows)
    }

    async fn get_vehicle(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<VehicleRecord> {
        let row: Option<sql::VehicleRow> = sqlx::query_as(
            "SELECT id, org_id, user_id, building_id, price_zone, settings, state, created_at, updated_at, deleted_at \
             FROM electric_vehicles WHERE org_id = $1 AND user_id = $2 AND id = $3 AND ($4 OR deleted_at IS NULL)",
        )
        .bind(org.id())
        .bind(user_id)
        .bind(id)
        .bind(include_deleted)
        .fetch_optional(&self.read)
        .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    async fn list_vehicles_with_owner(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<(UserRecord, Vec<VehicleRecord>)> {
        let rows: Vec<sql::OwnerVehicleRow> = sqlx::query_as(
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
        sql::owner_and_vehicles(rows)
    }

    async fn wake_vehicle(&self, org: OrgScope, id: Uuid) -> Result<()> {
        sqlx::query("UPDATE electric_vehicles SET next_cycle_at = NULL WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(org.id())
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn get_vehicle_in_org(&self, org: OrgScope, id: Uuid) -> Result<VehicleRecord> {
        let row: Option<sql::VehicleRow> = sqlx::query_as(
            "SELECT id, org_id, user_id, building_id, price_zone, settings, state, created_at, updated_at, deleted_at \
             FROM electric_vehicles WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(org.id())
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    async fn create_vehicle(
        &self,
        org: OrgScope,
        vehicle: &VehicleRecord,
    ) -> Result<VehicleRecord> {
        insert_vehicle(&self.write, org, vehicle).await?;
        Ok(VehicleRecord {
            org_id: org.id(),
            deleted_at: None,
            ..vehicle.clone()
        })
    }

    async fn update_vehicle(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        change: Mutation<'_, VehicleRecord>,
    ) -> Result<VehicleRecord> {
        let mut tx = self.begin_write().await?;
        let select = format!(
            "SELECT id, org_id, user_id, building_id, price_zone, settings, state, created_at, updated_at, deleted_at \
             FROM electric_vehicles WHERE org_id = $1 AND user_id = $2 AND id = $3 AND deleted_at IS NULL{FOR_UPDATE}"
        );
        let row: Option<sql::VehicleRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut vehicle: VehicleRecord = row.ok_or(StoreError::NotFound)?.try_into()?;
        change(&mut vehicle).map_err(StoreError::Invalid)?;
        sqlx::query(
            // The state belongs to the worker and is never written here; a settings change
            // makes the vehicle due at once, so the worker re-plans within one cycle.
            "UPDATE electric_vehicles SET building_id = $1, price_zone = $2, settings = $3, updated_at = $4, \
               next_cycle_at = NULL \
             WHERE org_id = $5 AND id = $6",
        )
        .bind(vehicle.building_id)
        .bind(vehicle.price_zone.as_str())
        .bind(Json(&vehicle.settings))
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
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
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
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

/// Inserts an EV of a live user of `org` (`NotFound` when the user is not live); on a pool or
/// inside a transaction (onboarding creates EVs with their links).
pub(super) async fn insert_vehicle<'e, E>(
    executor: E,
    org: OrgScope,
    vehicle: &VehicleRecord,
) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Db>,
{
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
    .bind(Json(&vehicle.settings))
    .bind(JsonText(&vehicle.state))
    .bind(vehicle.created_at)
    .bind(vehicle.updated_at)
    .execute(executor)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
