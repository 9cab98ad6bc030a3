//! Grid groups and their joint plans (issue 15). The SQL is in `shared/grid_groups.rs`, compiled
//! once per backend.
//!
//! Every write checks the organisation's groups as a whole (`voltplan_core::grid::check_tree`)
//! and that listed buildings and vehicles are live ones of the organisation, inside the writing
//! transaction, then makes every outermost group due for a joint plan. Vehicles whose outermost
//! group is gone lose its windows in the same transaction.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use voltplan_core::grid::GridGroup;

use crate::{Mutation, OrgScope, Result, VehicleRecord};

#[derive(Debug, Clone, PartialEq)]
pub struct GridGroupRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub group: GridGroup,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The last joint plan's summary, JSON text (outermost groups only).
    pub joint_plan: Option<String>,
}

/// A worker's lease on an outermost group's joint plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridLease {
    pub group_id: Uuid,
    pub org_id: Uuid,
    pub worker_id: String,
    pub epoch: i64,
    pub until: DateTime<Utc>,
}

/// A vehicle under a group, as the joint planner needs it.
#[derive(Debug, Clone)]
pub struct GridMember {
    pub vehicle: VehicleRecord,
    /// Centre of its geo-fence (its building's coordinates, else its owner's).
    pub home: Option<(f64, f64)>,
    /// The worker's own document about it (JSON text), as its cycles left it.
    pub runtime: Option<String>,
}

/// What one joint plan writes.
#[derive(Debug, Clone)]
pub struct GridPlanOutcome {
    pub joint_plan: String,
    pub next_plan_at: DateTime<Utc>,
    /// Per vehicle of the group, its windows (JSON text); vehicles the group names no more lose
    /// theirs.
    pub assignments: Vec<(Uuid, String)>,
}

#[async_trait]
pub trait GridGroupStore {
    async fn list_grid_groups(&self, org: OrgScope) -> Result<Vec<GridGroupRecord>>;
    async fn get_grid_group(&self, org: OrgScope, id: Uuid) -> Result<GridGroupRecord>;
    /// `Invalid` names the fields when the tree or a member is wrong.
    async fn create_grid_group(
        &self,
        org: OrgScope,
        group: &GridGroupRecord,
    ) -> Result<GridGroupRecord>;
    async fn update_grid_group(
        &self,
        org: OrgScope,
        id: Uuid,
        change: Mutation<'_, GridGroupRecord>,
    ) -> Result<GridGroupRecord>;
    /// Soft delete; `Conflict { field: "parent_id" }` while live groups sit inside it.
    async fn delete_grid_group(&self, org: OrgScope, id: Uuid, now: DateTime<Utc>) -> Result<()>;
    /// Leases up to `limit` due outermost groups to `worker_id`.
    async fn claim_grid_groups(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<GridLease>>;
    /// The live electric vehicles of the organisation listed in `vehicle_ids` or linked to one
    /// of `building_ids`.
    async fn grid_members(
        &self,
        org: OrgScope,
        vehicle_ids: &[Uuid],
        building_ids: &[Uuid],
    ) -> Result<Vec<GridMember>>;
    /// The connection limits (`power_limit_w`) of those of `building_ids` that are live buildings
    /// of the organisation and have one.
    async fn building_limits(
        &self,
        org: OrgScope,
        building_ids: &[Uuid],
    ) -> Result<Vec<(Uuid, i64)>>;
    /// The fenced write of a joint plan, releasing the lease: `false` when it was lost.
    async fn finish_grid_plan(&self, lease: &GridLease, outcome: &GridPlanOutcome) -> Result<bool>;
}
