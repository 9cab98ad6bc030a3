//! Users' energy contracts (Podero §3.3, with Voltplan's tariff extension). The SQL is in
//! `shared/energy_contracts.rs`, compiled once per backend.
//!
//! Writing a contract wakes the user's devices (their next cycle is due at once) in the same
//! transaction, so plans follow a new price within one worker cycle.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use voltplan_core::tariff::EnergyContract;

use crate::{Mutation, OrgScope, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct EnergyContractRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    /// The building the contract is for; none = every building of the user.
    pub building_id: Option<Uuid>,
    pub contract: EnergyContract,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The contract that prices a device of `user_id` at `building_id`: one for that very building
/// wins over one for all the user's buildings; among equals the newest. `contracts` may hold other
/// users' contracts (a batch's).
pub fn contract_for(
    contracts: &[EnergyContractRecord],
    user_id: Uuid,
    building_id: Option<Uuid>,
) -> Option<&EnergyContractRecord> {
    contracts
        .iter()
        .filter(|c| c.user_id == user_id && c.deleted_at.is_none())
        .filter(|c| c.building_id.is_none() || c.building_id == building_id)
        .max_by_key(|c| (c.building_id.is_some(), c.created_at, c.id))
}

#[async_trait]
pub trait EnergyContractStore {
    async fn list_energy_contracts(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<Vec<EnergyContractRecord>>;
    async fn get_energy_contract(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<EnergyContractRecord>;
    /// `NotFound` when the user is not a live user of the organisation. The caller has checked
    /// that a named building is one of the user's live buildings.
    async fn create_energy_contract(
        &self,
        org: OrgScope,
        contract: &EnergyContractRecord,
    ) -> Result<EnergyContractRecord>;
    async fn update_energy_contract(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        change: Mutation<'_, EnergyContractRecord>,
    ) -> Result<EnergyContractRecord>;
    /// Soft delete.
    async fn delete_energy_contract(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// The live contracts of these users of the organisation, for a worker's batch.
    async fn energy_contracts_of_users(
        &self,
        org: OrgScope,
        user_ids: &[Uuid],
    ) -> Result<Vec<EnergyContractRecord>>;
}
