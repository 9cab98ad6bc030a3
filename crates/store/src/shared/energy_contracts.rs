//! [`EnergyContractStore`] in SQL both backends share, compiled once per backend like
//! `shared/store.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;
use voltplan_core::tariff::EnergyContract;

use super::{Db, FOR_UPDATE, ThisStore};
use crate::energy_contracts::{EnergyContractRecord, EnergyContractStore};
use crate::{Mutation, OrgScope, Result, StoreError};

const COLUMNS: &str =
    "id, org_id, user_id, building_id, contract, created_at, updated_at, deleted_at";

#[derive(sqlx::FromRow)]
struct ContractRow {
    id: Uuid,
    org_id: Uuid,
    user_id: Uuid,
    building_id: Option<Uuid>,
    contract: Json<EnergyContract>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl From<ContractRow> for EnergyContractRecord {
    fn from(row: ContractRow) -> Self {
        EnergyContractRecord {
            id: row.id,
            org_id: row.org_id,
            user_id: row.user_id,
            building_id: row.building_id,
            contract: row.contract.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        }
    }
}

/// Makes the user's devices due at once: their plans must follow the new price.
async fn wake_devices(
    tx: &mut sqlx::Transaction<'static, Db>,
    org: OrgScope,
    user_id: Uuid,
) -> Result<()> {
    for devices in ["electric_vehicles", "wallboxes"] {
        let wake = format!(
            "UPDATE {devices} SET next_cycle_at = NULL \
             WHERE org_id = $1 AND user_id = $2 AND deleted_at IS NULL"
        );
        sqlx::query(&wake)
            .bind(org.id())
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl EnergyContractStore for ThisStore {
    async fn list_energy_contracts(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<Vec<EnergyContractRecord>> {
        let rows: Vec<ContractRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM energy_contracts \
             WHERE org_id = $1 AND user_id = $2 AND ($3 OR deleted_at IS NULL) ORDER BY created_at, id"
        ))
        .bind(org.id())
        .bind(user_id)
        .bind(include_deleted)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn get_energy_contract(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<EnergyContractRecord> {
        let row: Option<ContractRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM energy_contracts \
             WHERE org_id = $1 AND user_id = $2 AND id = $3 AND ($4 OR deleted_at IS NULL)"
        ))
        .bind(org.id())
        .bind(user_id)
        .bind(id)
        .bind(include_deleted)
        .fetch_optional(&self.read)
        .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    async fn create_energy_contract(
        &self,
        org: OrgScope,
        contract: &EnergyContractRecord,
    ) -> Result<EnergyContractRecord> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO energy_contracts (id, org_id, user_id, building_id, contract, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 \
             WHERE EXISTS (SELECT 1 FROM users WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL)",
        )
        .bind(contract.id)
        .bind(org.id())
        .bind(contract.user_id)
        .bind(contract.building_id)
        .bind(Json(&contract.contract))
        .bind(contract.created_at)
        .bind(contract.updated_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        wake_devices(&mut tx, org, contract.user_id).await?;
        tx.commit().await?;
        Ok(EnergyContractRecord {
            org_id: org.id(),
            deleted_at: None,
            ..contract.clone()
        })
    }

    async fn update_energy_contract(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        change: Mutation<'_, EnergyContractRecord>,
    ) -> Result<EnergyContractRecord> {
        let mut tx = self.begin_write().await?;
        let row: Option<ContractRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM energy_contracts \
             WHERE org_id = $1 AND user_id = $2 AND id = $3 AND deleted_at IS NULL{FOR_UPDATE}"
        ))
        .bind(org.id())
        .bind(user_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let mut contract: EnergyContractRecord = row.ok_or(StoreError::NotFound)?.into();
        change(&mut contract).map_err(StoreError::Invalid)?;
        sqlx::query(
            "UPDATE energy_contracts SET building_id = $1, contract = $2, updated_at = $3 \
             WHERE org_id = $4 AND id = $5",
        )
        .bind(contract.building_id)
        .bind(Json(&contract.contract))
        .bind(contract.updated_at)
        .bind(org.id())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        wake_devices(&mut tx, org, user_id).await?;
        tx.commit().await?;
        Ok(contract)
    }

    async fn delete_energy_contract(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE energy_contracts SET deleted_at = $1, updated_at = $1 \
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
        wake_devices(&mut tx, org, user_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn energy_contracts_of_users(
        &self,
        org: OrgScope,
        user_ids: &[Uuid],
    ) -> Result<Vec<EnergyContractRecord>> {
        let mut rows: Vec<ContractRow> = Vec::new();
        // Bounded lists: a batch is a few hundred devices, far below either backend's bind limit.
        for chunk in user_ids.chunks(500) {
            let mut query = sqlx::QueryBuilder::<Db>::new(format!(
                "SELECT {COLUMNS} FROM energy_contracts WHERE deleted_at IS NULL AND org_id = "
            ));
            query.push_bind(org.id()).push(" AND user_id IN (");
            let mut ids = query.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            query.push(")");
            rows.extend(query.build_query_as().fetch_all(&self.read).await?);
        }
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
