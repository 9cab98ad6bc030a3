//! [`WallboxStore`] in SQL both backends share, compiled once per backend like `shared/store.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{FOR_UPDATE, ThisStore};
use crate::json_text::JsonText;
use crate::sql;
use crate::wallboxes::{ChargerLogin, WALLBOX_COLUMNS, WallboxRecord, WallboxRow, WallboxStore};
use crate::{Mutation, OrgScope, Result, StoreError};

/// The field a partner names a charge-point id by; a taken one is reported under it.
const CHARGE_POINT_FIELD: &str = "ocpp_charge_point_id";

#[async_trait]
impl WallboxStore for ThisStore {
    async fn list_wallboxes(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<Vec<WallboxRecord>> {
        let select = format!(
            "SELECT {WALLBOX_COLUMNS} FROM wallboxes \
             WHERE org_id = $1 AND user_id = $2 AND ($3 OR deleted_at IS NULL) ORDER BY created_at, id"
        );
        let rows: Vec<WallboxRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(user_id)
            .bind(include_deleted)
            .fetch_all(&self.read)
            .await?;
        sql::collect(rows)
    }

    async fn get_wallbox(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<WallboxRecord> {
        let select = format!(
            "SELECT {WALLBOX_COLUMNS} FROM wallboxes \
             WHERE org_id = $1 AND user_id = $2 AND id = $3 AND ($4 OR deleted_at IS NULL)"
        );
        let row: Option<WallboxRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(user_id)
            .bind(id)
            .bind(include_deleted)
            .fetch_optional(&self.read)
            .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    async fn create_wallbox(
        &self,
        org: OrgScope,
        w: &WallboxRecord,
        password_hash: &str,
    ) -> Result<WallboxRecord> {
        let done = sqlx::query(
            "INSERT INTO wallboxes \
             (id, org_id, user_id, building_id, price_zone, charge_point_id, ocpp_password_hash, \
              settings, state, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             WHERE EXISTS (SELECT 1 FROM users WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL)",
        )
        .bind(w.id)
        .bind(org.id())
        .bind(w.user_id)
        .bind(w.building_id)
        .bind(w.price_zone.as_str())
        .bind(&w.charge_point_id)
        .bind(password_hash)
        .bind(Json(&w.settings))
        .bind(JsonText(&w.state))
        .bind(w.created_at)
        .bind(w.updated_at)
        .execute(&self.write)
        .await
        .map_err(|e| sql::map_unique(e, CHARGE_POINT_FIELD))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(WallboxRecord {
            org_id: org.id(),
            deleted_at: None,
            ..w.clone()
        })
    }

    async fn update_wallbox(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        change: Mutation<'_, WallboxRecord>,
    ) -> Result<WallboxRecord> {
        let mut tx = self.begin_write().await?;
        let select = format!(
            "SELECT {WALLBOX_COLUMNS} FROM wallboxes \
             WHERE org_id = $1 AND user_id = $2 AND id = $3 AND deleted_at IS NULL{FOR_UPDATE}"
        );
        let row: Option<WallboxRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let mut wallbox: WallboxRecord = row.ok_or(StoreError::NotFound)?.try_into()?;
        change(&mut wallbox).map_err(StoreError::Invalid)?;
        sqlx::query(
            // The state (worker) and the charger (central system) are never written here; a
            // settings change makes the wallbox due at once, as an EV's does.
            "UPDATE wallboxes SET building_id = $1, price_zone = $2, charge_point_id = $3, settings = $4, \
               updated_at = $5, next_cycle_at = NULL \
             WHERE org_id = $6 AND id = $7",
        )
        .bind(wallbox.building_id)
        .bind(wallbox.price_zone.as_str())
        .bind(&wallbox.charge_point_id)
        .bind(Json(&wallbox.settings))
        .bind(wallbox.updated_at)
        .bind(org.id())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| sql::map_unique(e, CHARGE_POINT_FIELD))?;
        tx.commit().await?;
        Ok(wallbox)
    }

    async fn delete_wallbox(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE wallboxes SET deleted_at = $1, updated_at = $1 \
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

    async fn set_wallbox_password(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<WallboxRecord> {
        let update = format!(
            "UPDATE wallboxes SET ocpp_password_hash = $1, updated_at = $2 \
             WHERE org_id = $3 AND user_id = $4 AND id = $5 AND deleted_at IS NULL \
             RETURNING {WALLBOX_COLUMNS}"
        );
        let row: Option<WallboxRow> = sqlx::query_as(&update)
            .bind(password_hash)
            .bind(now)
            .bind(org.id())
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    async fn charger_login(&self, charge_point_id: &str) -> Result<Option<ChargerLogin>> {
        let row: Option<(Uuid, Uuid, String)> = sqlx::query_as(
            "SELECT org_id, id, ocpp_password_hash FROM wallboxes \
             WHERE charge_point_id = $1 AND deleted_at IS NULL",
        )
        .bind(charge_point_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(org_id, wallbox_id, password_hash)| ChargerLogin {
            org_id,
            wallbox_id,
            password_hash,
        }))
    }
}
