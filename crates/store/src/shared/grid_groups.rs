//! [`GridGroupStore`] in SQL both backends share, compiled once per backend like
//! `shared/store.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::types::Json;
use uuid::Uuid;
use voltplan_core::account::BuildingDetails;
use voltplan_core::grid::{GridGroup, check_tree};
use voltplan_core::validation::FieldError;

use super::{Db, FOR_UPDATE, FOR_UPDATE_SKIP_LOCKED, ThisStore};
use crate::fleet::{CLAIMED_ROW_SELECT, ClaimedRow};
use crate::grid_groups::{GridGroupRecord, GridGroupStore, GridLease, GridMember, GridPlanOutcome};
use crate::{Mutation, OrgScope, Result, StoreError, VehicleRecord};

const COLUMNS: &str = "id, org_id, definition, created_at, updated_at, deleted_at, joint_plan";

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: Uuid,
    org_id: Uuid,
    definition: Json<GridGroup>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    joint_plan: Option<String>,
}

impl From<GroupRow> for GridGroupRecord {
    fn from(row: GroupRow) -> Self {
        GridGroupRecord {
            id: row.id,
            org_id: row.org_id,
            group: row.definition.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
            joint_plan: row.joint_plan,
        }
    }
}

type Tx = sqlx::Transaction<'static, Db>;

/// Appends `(id, id, …)` to `query`, each id bound.
fn push_ids(query: &mut sqlx::QueryBuilder<'_, Db>, ids: &[Uuid]) {
    query.push("(");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    query.push(")");
}

impl ThisStore {
    /// The organisation's live groups, read under a lock on the organisation (PostgreSQL) so that
    /// two writers cannot both pass the tree check.
    async fn live_groups_locked(tx: &mut Tx, org: OrgScope) -> Result<Vec<GridGroupRecord>> {
        sqlx::query(&format!(
            "SELECT id FROM organisations WHERE id = $1{FOR_UPDATE}"
        ))
        .bind(org.id())
        .execute(&mut **tx)
        .await?;
        let rows: Vec<GroupRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM grid_groups WHERE org_id = $1 AND deleted_at IS NULL"
        ))
        .bind(org.id())
        .fetch_all(&mut **tx)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The ids of `ids` that are not live rows of `table` in the organisation.
    async fn missing_in(
        tx: &mut Tx,
        org: OrgScope,
        table: &str,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>> {
        let mut found = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let mut query = sqlx::QueryBuilder::<Db>::new(format!(
                "SELECT id FROM {table} WHERE deleted_at IS NULL AND org_id = "
            ));
            query.push_bind(org.id()).push(" AND id IN ");
            push_ids(&mut query, chunk);
            let rows: Vec<(Uuid,)> = query.build_query_as().fetch_all(&mut **tx).await?;
            found.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(ids
            .iter()
            .copied()
            .filter(|id| !found.contains(id))
            .collect())
    }

    /// Checks `changed` among the organisation's other live groups, and the members it adds to
    /// `before` (a member deleted since it was listed stays listed, harmlessly, until the partner
    /// drops it).
    async fn check_group(
        tx: &mut Tx,
        org: OrgScope,
        changed: &GridGroupRecord,
        others: &[GridGroupRecord],
        before: Option<&GridGroup>,
    ) -> Result<()> {
        let mut all: Vec<(Uuid, &GridGroup)> = others
            .iter()
            .filter(|g| g.id != changed.id)
            .map(|g| (g.id, &g.group))
            .collect();
        all.push((changed.id, &changed.group));
        let mut errors = check_tree(&all, changed.id);
        for (key, table, ids) in [
            ("building_ids", "buildings", &changed.group.building_ids),
            (
                "electric_vehicle_ids",
                "electric_vehicles",
                &changed.group.electric_vehicle_ids,
            ),
        ] {
            let listed_before = |id: &Uuid| {
                before.is_some_and(|b| {
                    b.building_ids.contains(id) || b.electric_vehicle_ids.contains(id)
                })
            };
            let added: Vec<Uuid> = ids
                .iter()
                .copied()
                .filter(|id| !listed_before(id))
                .collect();
            let missing = Self::missing_in(tx, org, table, &added).await?;
            for (i, id) in ids.iter().enumerate() {
                if missing.contains(id) {
                    errors.push(FieldError::new(
                        vec!["body".into(), key.into(), i.into()],
                        "value_error",
                        "no such live object in this organisation",
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Invalid(errors))
        }
    }

    /// Makes every outermost grid group of the organisation due for a joint plan (its limits or
    /// members changed).
    pub(super) async fn plan_grid_groups_again_in(tx: &mut Tx, org: OrgScope) -> Result<()> {
        sqlx::query(
            "UPDATE grid_groups SET next_plan_at = NULL \
             WHERE org_id = $1 AND deleted_at IS NULL AND parent_id IS NULL",
        )
        .bind(org.id())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// After any change to the organisation's groups: every outermost group is due, and vehicles
    /// whose outermost group is no longer one lose its windows (and are planned again at once).
    async fn groups_changed(tx: &mut Tx, org: OrgScope) -> Result<()> {
        Self::plan_grid_groups_again_in(tx, org).await?;
        sqlx::query(
            "UPDATE electric_vehicles SET shared_root = NULL, shared_limit = NULL, next_cycle_at = NULL \
             WHERE org_id = $1 AND shared_root IS NOT NULL AND shared_root NOT IN \
               (SELECT id FROM grid_groups WHERE org_id = $1 AND deleted_at IS NULL AND parent_id IS NULL)",
        )
        .bind(org.id())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl GridGroupStore for ThisStore {
    async fn list_grid_groups(&self, org: OrgScope) -> Result<Vec<GridGroupRecord>> {
        let rows: Vec<GroupRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM grid_groups WHERE org_id = $1 AND deleted_at IS NULL \
             ORDER BY created_at, id"
        ))
        .bind(org.id())
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn get_grid_group(&self, org: OrgScope, id: Uuid) -> Result<GridGroupRecord> {
        let row: Option<GroupRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM grid_groups WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"
        ))
        .bind(org.id())
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    async fn create_grid_group(
        &self,
        org: OrgScope,
        group: &GridGroupRecord,
    ) -> Result<GridGroupRecord> {
        let mut tx = self.begin_write().await?;
        let others = Self::live_groups_locked(&mut tx, org).await?;
        Self::check_group(&mut tx, org, group, &others, None).await?;
        sqlx::query(
            "INSERT INTO grid_groups (id, org_id, parent_id, definition, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(group.id)
        .bind(org.id())
        .bind(group.group.parent_id)
        .bind(Json(&group.group))
        .bind(group.created_at)
        .bind(group.updated_at)
        .execute(&mut *tx)
        .await?;
        Self::groups_changed(&mut tx, org).await?;
        tx.commit().await?;
        Ok(GridGroupRecord {
            org_id: org.id(),
            deleted_at: None,
            joint_plan: None,
            ..group.clone()
        })
    }

    async fn update_grid_group(
        &self,
        org: OrgScope,
        id: Uuid,
        change: Mutation<'_, GridGroupRecord>,
    ) -> Result<GridGroupRecord> {
        let mut tx = self.begin_write().await?;
        let others = Self::live_groups_locked(&mut tx, org).await?;
        let before = others
            .iter()
            .find(|g| g.id == id)
            .cloned()
            .ok_or(StoreError::NotFound)?;
        let mut group = before.clone();
        change(&mut group).map_err(StoreError::Invalid)?;
        Self::check_group(&mut tx, org, &group, &others, Some(&before.group)).await?;
        sqlx::query(
            "UPDATE grid_groups SET parent_id = $1, definition = $2, updated_at = $3 \
             WHERE org_id = $4 AND id = $5",
        )
        .bind(group.group.parent_id)
        .bind(Json(&group.group))
        .bind(group.updated_at)
        .bind(org.id())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Self::groups_changed(&mut tx, org).await?;
        tx.commit().await?;
        Ok(group)
    }

    async fn delete_grid_group(&self, org: OrgScope, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let groups = Self::live_groups_locked(&mut tx, org).await?;
        if !groups.iter().any(|g| g.id == id) {
            return Err(StoreError::NotFound);
        }
        if groups.iter().any(|g| g.group.parent_id == Some(id)) {
            return Err(StoreError::Conflict { field: "parent_id" });
        }
        sqlx::query(
            "UPDATE grid_groups SET deleted_at = $1, updated_at = $1, lease_owner = NULL, lease_until = NULL \
             WHERE org_id = $2 AND id = $3",
        )
        .bind(now)
        .bind(org.id())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Self::groups_changed(&mut tx, org).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_grid_groups(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<GridLease>> {
        let until = now + lease_for;
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "UPDATE grid_groups SET lease_owner = $1, lease_until = $2, lease_epoch = lease_epoch + 1, \
               next_plan_at = $2 \
             WHERE id IN (SELECT id FROM grid_groups \
               WHERE deleted_at IS NULL AND parent_id IS NULL \
               AND (next_plan_at IS NULL OR next_plan_at <= $3) \
               AND (lease_until IS NULL OR lease_until < $3) \
               ORDER BY next_plan_at IS NOT NULL, next_plan_at LIMIT $4{FOR_UPDATE_SKIP_LOCKED})"
        ))
        .bind(worker_id)
        .bind(until)
        .bind(now)
        .bind(limit)
        .execute(&mut *tx)
        .await?;
        let rows: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
            "SELECT id, org_id, lease_epoch FROM grid_groups WHERE lease_owner = $1 AND lease_until = $2",
        )
        .bind(worker_id)
        .bind(until)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(group_id, org_id, epoch)| GridLease {
                group_id,
                org_id,
                worker_id: worker_id.to_owned(),
                epoch,
                until,
            })
            .collect())
    }

    async fn grid_members(
        &self,
        org: OrgScope,
        vehicle_ids: &[Uuid],
        building_ids: &[Uuid],
    ) -> Result<Vec<GridMember>> {
        let mut members: Vec<GridMember> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (column, ids) in [("v.id", vehicle_ids), ("v.building_id", building_ids)] {
            for chunk in ids.chunks(500) {
                let mut query = sqlx::QueryBuilder::<Db>::new(format!(
                    "{CLAIMED_ROW_SELECT}WHERE v.deleted_at IS NULL AND v.org_id = "
                ));
                query.push_bind(org.id()).push(format!(" AND {column} IN "));
                push_ids(&mut query, chunk);
                let rows: Vec<ClaimedRow> = query.build_query_as().fetch_all(&self.read).await?;
                for row in rows {
                    let home = row.home();
                    let runtime = row.runtime;
                    let vehicle = VehicleRecord::try_from(row.vehicle)?;
                    if seen.insert(vehicle.id) {
                        members.push(GridMember {
                            vehicle,
                            home,
                            runtime,
                        });
                    }
                }
            }
        }
        Ok(members)
    }

    async fn building_limits(
        &self,
        org: OrgScope,
        building_ids: &[Uuid],
    ) -> Result<Vec<(Uuid, i64)>> {
        let mut limits = Vec::new();
        let mut ids = building_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(500) {
            let mut query = sqlx::QueryBuilder::<Db>::new(
                "SELECT id, details FROM buildings WHERE deleted_at IS NULL AND org_id = ",
            );
            query.push_bind(org.id()).push(" AND id IN ");
            push_ids(&mut query, chunk);
            let rows: Vec<(Uuid, Json<BuildingDetails>)> =
                query.build_query_as().fetch_all(&self.read).await?;
            limits.extend(
                rows.into_iter()
                    .filter_map(|(id, Json(details))| Some((id, details.power_limit_w?))),
            );
        }
        Ok(limits)
    }

    async fn finish_grid_plan(&self, lease: &GridLease, outcome: &GridPlanOutcome) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE grid_groups SET joint_plan = $1, \
               next_plan_at = CASE WHEN next_plan_at IS NULL THEN NULL ELSE $2 END, \
               lease_owner = NULL, lease_until = NULL \
             WHERE id = $3 AND lease_owner = $4 AND lease_epoch = $5 AND deleted_at IS NULL",
        )
        .bind(&outcome.joint_plan)
        .bind(outcome.next_plan_at)
        .bind(lease.group_id)
        .bind(&lease.worker_id)
        .bind(lease.epoch)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Only vehicles whose windows changed are woken: a steady group costs its cars nothing.
        for (vehicle_id, shared) in &outcome.assignments {
            sqlx::query(
                "UPDATE electric_vehicles SET shared_root = $1, shared_limit = $2, next_cycle_at = NULL \
                 WHERE org_id = $3 AND id = $4 AND (shared_limit IS NULL OR shared_limit <> $2)",
            )
            .bind(lease.group_id)
            .bind(shared)
            .bind(lease.org_id)
            .bind(vehicle_id)
            .execute(&mut *tx)
            .await?;
        }
        let mut clear = sqlx::QueryBuilder::<Db>::new(
            "UPDATE electric_vehicles SET shared_root = NULL, shared_limit = NULL, next_cycle_at = NULL \
             WHERE org_id = ",
        );
        clear
            .push_bind(lease.org_id)
            .push(" AND shared_root = ")
            .push_bind(lease.group_id);
        if !outcome.assignments.is_empty() {
            let assigned: Vec<Uuid> = outcome.assignments.iter().map(|(id, _)| *id).collect();
            clear.push(" AND id NOT IN ");
            push_ids(&mut clear, &assigned);
        }
        clear.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }
}
