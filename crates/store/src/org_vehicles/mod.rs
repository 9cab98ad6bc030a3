//! The organisation-wide vehicle list (`GET /org/{org_id}/electric-vehicles`, a Voltplan
//! extension): the vehicles of one organisation with their owners, filtered and paged in SQL.
//!
//! Filters on the worker's state read inside the state document, which is JSON text on both
//! backends (PostgreSQL's migration 0005): SQLite's `state -> '$.key'` and PostgreSQL's
//! `(state::json -> 'key')::text` both give a member's JSON text (`true`, `"error"`, `null`), or
//! SQL NULL when the member is absent. An absent member reads as its [`EvState::default`] value
//! (the document is decoded with `#[serde(default)]`), so a filter sees what the API shows; a JSON
//! `null` (unknown) matches neither `true` nor `false`.
//!
//! PostgreSQL's `json ->` scans the text again for every member read; when a filter reads more
//! than two members, the document is parsed once per row into `jsonb` in a lateral subquery
//! instead (10,000 vehicles, measured with `EXPLAIN ANALYZE` on a busy machine: one member
//! ~100 ms per scan, ~180 ms parsed once; `status` plus three more members ~600 ms, ~150 ms
//! parsed once). SQLite keeps recent parses itself.
//!
//! No index looks inside the state: the worker rewrites it every cycle, and an expression index
//! would tax each of those writes (and PostgreSQL's bulk finish) for an occasional partner read.
//! A query reads the organisation's vehicles through the `org_id`-led index and tests each
//! document; the columns (`user_id`, `price_zone`, `deleted_at`) are tested without parsing.

use async_trait::async_trait;
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::vehicle::{EvState, StatusLevel};

mod query;

pub(crate) use query::{Bind, Dialect, OrgVehicleQuery};

use crate::{OrgScope, Result, StoreError, UserRecord, VehicleRecord};

/// Which of an organisation's vehicles to list. Every filter that is set must hold (AND); a list
/// filter holds when the value is any of its entries (OR); an empty list does not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgVehicleFilter {
    pub user_id: Option<Uuid>,
    pub price_zones: Vec<PriceZone>,
    /// The vehicle's overall status, [`worst_status`] of its three dimensions.
    pub status: Vec<StatusLevel>,
    pub connection_status: Vec<StatusLevel>,
    pub monitoring_status: Vec<StatusLevel>,
    pub steering_status: Vec<StatusLevel>,
    pub action_needed: Option<bool>,
    pub is_plugged_in: Option<bool>,
    pub is_charging: Option<bool>,
    /// Also deleted vehicles, and the vehicles of deleted users.
    pub include_deleted: bool,
}

/// A page in `id` order: `after` (keyset) skips the vehicles up to and including that id,
/// `offset` skips that many more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrgVehiclePaging {
    pub limit: i64,
    pub offset: i64,
    pub after: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OwnedVehicle {
    pub owner: UserRecord,
    pub vehicle: VehicleRecord,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrgVehiclePage {
    /// Vehicles that match the filter, over all pages (`after` and `offset` do not count).
    pub total: i64,
    /// Ordered by vehicle id.
    pub items: Vec<OwnedVehicle>,
}

#[async_trait]
pub trait OrgVehicleStore: Send + Sync {
    /// A page of the organisation's vehicles that match `filter`, each with its owner.
    async fn list_org_vehicles(
        &self,
        org: OrgScope,
        filter: &OrgVehicleFilter,
        paging: OrgVehiclePaging,
    ) -> Result<OrgVehiclePage>;
}

/// The order the overall status ranks the levels in: `ok` < `unknown` < `warning` < `error`. A
/// dimension not known yet ranks below one that reports a problem.
pub const fn status_rank(level: StatusLevel) -> i32 {
    match level {
        StatusLevel::Ok => 0,
        StatusLevel::Unknown => 1,
        StatusLevel::Warning => 2,
        StatusLevel::Error => 3,
    }
}

const STATUS_LEVELS: [StatusLevel; 4] = [
    StatusLevel::Ok,
    StatusLevel::Unknown,
    StatusLevel::Warning,
    StatusLevel::Error,
];

/// A vehicle's overall status: the worst of `connection_status`, `monitoring_status` and
/// `steering_status` by [`status_rank`]. `ok` only when all three are.
pub fn worst_status(state: &EvState) -> StatusLevel {
    [
        state.connection_status,
        state.monitoring_status,
        state.steering_status,
    ]
    .into_iter()
    .max_by_key(|level| status_rank(*level))
    .unwrap_or_default()
}

impl TryFrom<crate::sql::OwnerVehicleRow> for OwnedVehicle {
    type Error = StoreError;
    fn try_from(row: crate::sql::OwnerVehicleRow) -> Result<Self, StoreError> {
        match row.split()? {
            (owner, Some(vehicle)) => Ok(OwnedVehicle { owner, vehicle }),
            (owner, None) => Err(StoreError::Corrupt(format!(
                "a vehicle of user {} came back without its columns",
                owner.id
            ))),
        }
    }
}

/// Binds `$binds` in order to a query (the same on both backends; a macro because `bind` is
/// per database).
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                $crate::org_vehicles::Bind::Uuid(id) => query.bind(*id),
                $crate::org_vehicles::Bind::Text(text) => query.bind(text.as_str()),
                $crate::org_vehicles::Bind::Int(n) => query.bind(*n),
            };
        }
        query
    }};
}

/// Implements [`OrgVehicleStore`] for a backend with a `read` pool.
macro_rules! org_vehicle_store_impl {
    ($store:ty, dialect = $dialect:expr) => {
        #[async_trait::async_trait]
        impl $crate::OrgVehicleStore for $store {
            async fn list_org_vehicles(
                &self,
                org: $crate::OrgScope,
                filter: &$crate::OrgVehicleFilter,
                paging: $crate::OrgVehiclePaging,
            ) -> $crate::Result<$crate::OrgVehiclePage> {
                let q =
                    $crate::org_vehicles::OrgVehicleQuery::build($dialect, org, filter, paging)?;
                let (total,): (i64,) = $crate::org_vehicles::bind_all!(
                    sqlx::query_as(&q.count_sql),
                    &q.binds[..q.count_binds]
                )
                .fetch_one(&self.read)
                .await?;
                let rows: Vec<$crate::sql::OwnerVehicleRow> =
                    $crate::org_vehicles::bind_all!(sqlx::query_as(&q.page_sql), &q.binds)
                        .fetch_all(&self.read)
                        .await?;
                Ok($crate::OrgVehiclePage {
                    total,
                    items: $crate::sql::collect(rows)?,
                })
            }
        }
    };
}

pub(crate) use bind_all;
pub(crate) use org_vehicle_store_impl;

#[cfg(test)]
mod stored_documents;
