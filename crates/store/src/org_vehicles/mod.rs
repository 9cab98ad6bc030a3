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
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::vehicle::{EvSettings, EvState, StatusLevel};

mod query;

pub(crate) use query::{Bind, Dialect, OrgVehicleQuery};

use crate::json_text::JsonText;
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

/// A vehicle joined with its owner.
#[derive(sqlx::FromRow)]
pub(crate) struct OwnedVehicleRow {
    #[sqlx(flatten)]
    user: crate::sql::UserRow,
    v_id: Uuid,
    v_building_id: Option<Uuid>,
    v_price_zone: String,
    v_settings: Json<EvSettings>,
    v_state: JsonText<EvState>,
    v_created_at: DateTime<Utc>,
    v_updated_at: DateTime<Utc>,
    v_deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<OwnedVehicleRow> for OwnedVehicle {
    type Error = StoreError;
    fn try_from(row: OwnedVehicleRow) -> Result<Self, StoreError> {
        let owner = UserRecord::try_from(row.user)?;
        let price_zone = row
            .v_price_zone
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("vehicle {}: {e}", row.v_id)))?;
        let vehicle = VehicleRecord {
            id: row.v_id,
            org_id: owner.org_id,
            user_id: owner.id,
            building_id: row.v_building_id,
            price_zone,
            settings: row.v_settings.0,
            state: row.v_state.0,
            created_at: row.v_created_at,
            updated_at: row.v_updated_at,
            deleted_at: row.v_deleted_at,
        };
        Ok(OwnedVehicle { owner, vehicle })
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
                let rows: Vec<$crate::org_vehicles::OwnedVehicleRow> =
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

/// The filters against documents as they may be stored: written by an older version (members
/// absent), with unknown values (`null`), or converted from `jsonb` (PostgreSQL's 0005, with spaces).
#[cfg(test)]
mod stored_documents {
    use super::*;
    use crate::postgres::PgStore;
    use crate::sqlite::SqliteStore;
    use crate::{Store, new_user, new_vehicle};
    use voltplan_core::account::Role;
    use voltplan_test_support::{Backend, TestDatabase, backends};

    #[async_trait]
    trait RawState {
        async fn set_state(&self, id: Uuid, document: &str);
    }

    #[async_trait]
    impl RawState for SqliteStore {
        async fn set_state(&self, id: Uuid, document: &str) {
            sqlx::query("UPDATE electric_vehicles SET state = $1 WHERE id = $2")
                .bind(document)
                .bind(id)
                .execute(&self.write)
                .await
                .unwrap();
        }
    }

    #[async_trait]
    impl RawState for PgStore {
        async fn set_state(&self, id: Uuid, document: &str) {
            sqlx::query("UPDATE electric_vehicles SET state = $1 WHERE id = $2")
                .bind(document)
                .bind(id)
                .execute(&self.write)
                .await
                .unwrap();
        }
    }

    async fn ids<S: Store>(store: &S, org: OrgScope, filter: OrgVehicleFilter) -> Vec<Uuid> {
        let paging = OrgVehiclePaging {
            limit: 50,
            offset: 0,
            after: None,
        };
        let page = store.list_org_vehicles(org, &filter, paging).await.unwrap();
        assert_eq!(page.total, page.items.len() as i64);
        let ids: Vec<Uuid> = page.items.into_iter().map(|i| i.vehicle.id).collect();
        assert!(ids.is_sorted(), "in id order");
        ids
    }

    async fn absent_and_null_members_read_as_the_api_shows_them<S: Store + RawState>(store: &S) {
        let now = chrono::Utc::now();
        let org = OrgScope::new(store.create_organisation("o", now).await.unwrap().id);
        let user = store
            .create_user(org, &new_user(org, "d@example.com".into(), Role::User, now))
            .await
            .unwrap();
        let mut cars = Vec::new();
        for _ in 0..3 {
            let v = store
                .create_vehicle(org, &new_vehicle(org, user.id, now))
                .await
                .unwrap();
            cars.push(v.id);
        }
        cars.sort();
        // Named in id order, so the expected lists below are in the order of a page.
        let (empty, unknown, spaced) = (cars[0], cars[1], cars[2]);
        store.set_state(empty, "{}").await;
        let null_plug = serde_json::to_string(&EvState {
            is_plugged_in: None,
            connection_status: StatusLevel::Ok,
            monitoring_status: StatusLevel::Ok,
            steering_status: StatusLevel::Ok,
            ..EvState::default()
        })
        .unwrap();
        store.set_state(unknown, &null_plug).await;
        store
            .set_state(
                spaced,
                r#"{"is_plugged_in": true, "connection_status": "error", "action_needed": true}"#,
            )
            .await;

        // Each reads back as the API shows it.
        let all = store
            .list_org_vehicles(
                org,
                &OrgVehicleFilter::default(),
                OrgVehiclePaging {
                    limit: 10,
                    offset: 0,
                    after: None,
                },
            )
            .await
            .unwrap();
        let state = |id: Uuid| {
            all.items
                .iter()
                .find(|i| i.vehicle.id == id)
                .unwrap()
                .vehicle
                .state
                .clone()
        };
        assert_eq!(state(empty).is_plugged_in, Some(false));
        assert_eq!(state(unknown).is_plugged_in, None);
        assert_eq!(worst_status(&state(spaced)), StatusLevel::Error);

        let f = OrgVehicleFilter::default;
        let plugged = |v| OrgVehicleFilter {
            is_plugged_in: Some(v),
            ..f()
        };
        assert_eq!(ids(store, org, plugged(false)).await, vec![empty]);
        assert_eq!(ids(store, org, plugged(true)).await, vec![spaced]);
        let action = |v| OrgVehicleFilter {
            action_needed: Some(v),
            ..f()
        };
        assert_eq!(ids(store, org, action(true)).await, vec![spaced]);
        assert_eq!(ids(store, org, action(false)).await, vec![empty, unknown]);
        let status = |l: &[StatusLevel]| OrgVehicleFilter {
            status: l.to_vec(),
            ..f()
        };
        assert_eq!(
            ids(store, org, status(&[StatusLevel::Ok])).await,
            vec![unknown]
        );
        assert_eq!(
            ids(store, org, status(&[StatusLevel::Unknown])).await,
            vec![empty]
        );
        assert_eq!(
            ids(store, org, status(&[StatusLevel::Error])).await,
            vec![spaced]
        );
        let connection = OrgVehicleFilter {
            connection_status: vec![StatusLevel::Unknown, StatusLevel::Ok],
            ..f()
        };
        assert_eq!(ids(store, org, connection).await, vec![empty, unknown]);
        // Three members: PostgreSQL parses each document once (jsonb) and must read the same.
        let three = OrgVehicleFilter {
            is_plugged_in: Some(false),
            action_needed: Some(false),
            connection_status: vec![StatusLevel::Unknown],
            ..f()
        };
        assert_eq!(ids(store, org, three).await, vec![empty]);
        let three = OrgVehicleFilter {
            is_charging: Some(false),
            action_needed: Some(false),
            connection_status: vec![StatusLevel::Ok],
            ..f()
        };
        assert_eq!(ids(store, org, three).await, vec![unknown]);
    }

    fn two_connections() -> crate::ConnectOptions {
        let mut options = crate::ConnectOptions::new("");
        options.max_connections = 2;
        options
    }

    #[tokio::test]
    async fn absent_and_null_members_on_every_backend() {
        for backend in backends() {
            let database = TestDatabase::create(&backend, "voltplan-store-orglist").await;
            match &backend {
                Backend::Sqlite => {
                    let path = database.url().trim_start_matches("sqlite:");
                    let store = SqliteStore::connect(path, &two_connections())
                        .await
                        .unwrap();
                    absent_and_null_members_read_as_the_api_shows_them(&store).await;
                    store.read.close().await;
                    store.write.close().await;
                }
                Backend::Postgres(_) => {
                    let store = PgStore::connect(database.url(), &two_connections())
                        .await
                        .unwrap();
                    absent_and_null_members_read_as_the_api_shows_them(&store).await;
                    store.write.close().await;
                }
            }
            database.drop_database().await;
        }
    }
}
