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

/// The database a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// How a statement reads members of the state document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateReader {
    Sqlite,
    /// PostgreSQL, scanning the JSON text for each member.
    PgPerMember,
    /// PostgreSQL, parsing each row's document into `jsonb` once.
    PgParsedOnce,
}

impl StateReader {
    fn new(dialect: Dialect, filter: &OrgVehicleFilter) -> Self {
        match dialect {
            Dialect::Sqlite => StateReader::Sqlite,
            Dialect::Postgres if member_reads(filter) > 2 => StateReader::PgParsedOnce,
            Dialect::Postgres => StateReader::PgPerMember,
        }
    }

    /// The member's JSON text, SQL NULL when absent. `key` is one of this file's constants.
    fn member(self, key: &str) -> String {
        match self {
            StateReader::Sqlite => format!("(v.state -> '$.{key}')"),
            StateReader::PgPerMember => format!("((v.state::json -> '{key}')::text)"),
            StateReader::PgParsedOnce => format!("((st.doc -> '{key}')::text)"),
        }
    }

    /// What the FROM clause adds for [`StateReader::member`]: `OFFSET 0` keeps the planner from
    /// inlining the parse into every reference.
    fn source(self) -> &'static str {
        match self {
            StateReader::Sqlite | StateReader::PgPerMember => "",
            StateReader::PgParsedOnce => {
                " CROSS JOIN LATERAL (SELECT v.state::jsonb AS doc OFFSET 0) st"
            }
        }
    }
}

/// How many members of the state document the filter's conditions read.
fn member_reads(filter: &OrgVehicleFilter) -> usize {
    let flags = [
        filter.action_needed.is_some(),
        filter.is_plugged_in.is_some(),
        filter.is_charging.is_some(),
        !filter.connection_status.is_empty(),
        !filter.monitoring_status.is_empty(),
        !filter.steering_status.is_empty(),
    ];
    let worst = if filter.status.is_empty() { 0 } else { 3 };
    flags.into_iter().filter(|f| *f).count() + worst
}

impl Dialect {
    fn greatest(self) -> &'static str {
        match self {
            Dialect::Sqlite => "max",
            Dialect::Postgres => "GREATEST",
        }
    }
}

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Uuid(Uuid),
    Text(String),
    Int(i64),
}

/// The two statements of a page: the count over all pages, and the page. The page's binds start
/// with the count's.
#[derive(Debug)]
pub(crate) struct OrgVehicleQuery {
    pub count_sql: String,
    pub page_sql: String,
    pub binds: Vec<Bind>,
    pub count_binds: usize,
}

/// A constant as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn json_literal<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(literal(&serde_json::to_string(value)?))
}

struct Builder {
    dialect: Dialect,
    reader: StateReader,
    sql: String,
    binds: Vec<Bind>,
    /// The state document's defaults, for members a stored document lacks.
    defaults: serde_json::Value,
    /// Whether a filter reads the state document.
    reads_state: bool,
}

impl Builder {
    fn param(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    /// The member as the API shows it: its JSON text, or its default's when absent.
    fn member_or_default(&mut self, key: &str) -> Result<String> {
        self.reads_state = true;
        let default = match self.defaults.get(key) {
            Some(value) => json_literal(value)?,
            None => "NULL".to_owned(),
        };
        Ok(format!("COALESCE({}, {default})", self.reader.member(key)))
    }

    fn flag(&mut self, key: &str, value: Option<bool>) -> Result<()> {
        if let Some(value) = value {
            let member = self.member_or_default(key)?;
            let value = json_literal(&value)?;
            self.sql.push_str(&format!(" AND {member} = {value}"));
        }
        Ok(())
    }

    fn levels(&mut self, key: &str, levels: &[StatusLevel]) -> Result<()> {
        if levels.is_empty() {
            return Ok(());
        }
        let member = self.member_or_default(key)?;
        let values = levels
            .iter()
            .map(json_literal)
            .collect::<Result<Vec<_>>>()?
            .join(", ");
        self.sql.push_str(&format!(" AND {member} IN ({values})"));
        Ok(())
    }

    /// The rank of one status dimension, as [`status_rank`].
    fn rank(&mut self, key: &str) -> Result<String> {
        let mut sql = format!("CASE {}", self.member_or_default(key)?);
        for level in STATUS_LEVELS {
            sql.push_str(&format!(
                " WHEN {} THEN {}",
                json_literal(&level)?,
                status_rank(level)
            ));
        }
        sql.push_str(&format!(" ELSE {} END", status_rank(StatusLevel::Unknown)));
        Ok(sql)
    }

    fn worst(&mut self, levels: &[StatusLevel]) -> Result<()> {
        if levels.is_empty() {
            return Ok(());
        }
        let ranks = [
            self.rank("connection_status")?,
            self.rank("monitoring_status")?,
            self.rank("steering_status")?,
        ]
        .join(", ");
        let wanted = levels
            .iter()
            .map(|l| status_rank(*l).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let greatest = self.dialect.greatest();
        self.sql
            .push_str(&format!(" AND {greatest}({ranks}) IN ({wanted})"));
        Ok(())
    }
}

const FROM: &str =
    "FROM electric_vehicles v JOIN users u ON u.org_id = v.org_id AND u.id = v.user_id";

impl OrgVehicleQuery {
    pub(crate) fn build(
        dialect: Dialect,
        org: OrgScope,
        filter: &OrgVehicleFilter,
        paging: OrgVehiclePaging,
    ) -> Result<Self> {
        let mut b = Builder {
            dialect,
            reader: StateReader::new(dialect, filter),
            sql: String::new(),
            binds: Vec::new(),
            defaults: serde_json::to_value(EvState::default())?,
            reads_state: false,
        };
        let org = b.param(Bind::Uuid(org.id()));
        b.sql.push_str(&format!("WHERE v.org_id = {org}"));
        if !filter.include_deleted {
            b.sql
                .push_str(" AND v.deleted_at IS NULL AND u.deleted_at IS NULL");
        }
        if let Some(user_id) = filter.user_id {
            let p = b.param(Bind::Uuid(user_id));
            b.sql.push_str(&format!(" AND v.user_id = {p}"));
        }
        if !filter.price_zones.is_empty() {
            let zones = filter
                .price_zones
                .iter()
                .map(|z| b.param(Bind::Text(z.as_str().to_owned())))
                .collect::<Vec<_>>()
                .join(", ");
            b.sql.push_str(&format!(" AND v.price_zone IN ({zones})"));
        }
        b.flag("action_needed", filter.action_needed)?;
        b.flag("is_plugged_in", filter.is_plugged_in)?;
        b.flag("is_charging", filter.is_charging)?;
        b.levels("connection_status", &filter.connection_status)?;
        b.levels("monitoring_status", &filter.monitoring_status)?;
        b.levels("steering_status", &filter.steering_status)?;
        b.worst(&filter.status)?;

        let from = if b.reads_state {
            format!("{FROM}{}", b.reader.source())
        } else {
            FROM.to_owned()
        };
        let count_sql = format!("SELECT COUNT(*) {from} {}", b.sql);
        let count_binds = b.binds.len();
        if let Some(after) = paging.after {
            let p = b.param(Bind::Uuid(after));
            b.sql.push_str(&format!(" AND v.id > {p}"));
        }
        let limit = b.param(Bind::Int(paging.limit));
        let offset = b.param(Bind::Int(paging.offset));
        let page_sql = format!(
            "SELECT u.id, u.org_id, u.email, u.role, u.external_user_id, u.profile, u.created_at, \
               u.updated_at, u.deleted_at, v.id AS v_id, v.building_id AS v_building_id, \
               v.price_zone AS v_price_zone, v.settings AS v_settings, v.state AS v_state, \
               v.created_at AS v_created_at, v.updated_at AS v_updated_at, v.deleted_at AS v_deleted_at \
             {from} {} ORDER BY v.id LIMIT {limit} OFFSET {offset}",
            b.sql
        );
        Ok(OrgVehicleQuery {
            count_sql,
            page_sql,
            binds: b.binds,
            count_binds,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgScope {
        OrgScope::new(Uuid::nil())
    }

    const PAGE: OrgVehiclePaging = OrgVehiclePaging {
        limit: 50,
        offset: 0,
        after: None,
    };

    #[test]
    fn the_worst_dimension_is_the_status() {
        let state = |c, m, s| EvState {
            connection_status: c,
            monitoring_status: m,
            steering_status: s,
            ..EvState::default()
        };
        use StatusLevel::*;
        assert_eq!(worst_status(&state(Ok, Ok, Ok)), Ok);
        assert_eq!(worst_status(&state(Ok, Unknown, Ok)), Unknown);
        assert_eq!(worst_status(&state(Warning, Unknown, Ok)), Warning);
        assert_eq!(worst_status(&state(Warning, Unknown, Error)), Error);
        assert_eq!(worst_status(&EvState::default()), Unknown);
    }

    #[test]
    fn without_filters_only_tenancy_and_liveness_are_tested() {
        let q = OrgVehicleQuery::build(Dialect::Sqlite, org(), &OrgVehicleFilter::default(), PAGE)
            .unwrap();
        assert_eq!(
            q.count_sql,
            "SELECT COUNT(*) FROM electric_vehicles v JOIN users u ON u.org_id = v.org_id AND u.id = v.user_id \
             WHERE v.org_id = $1 AND v.deleted_at IS NULL AND u.deleted_at IS NULL"
        );
        assert!(q.page_sql.ends_with("ORDER BY v.id LIMIT $2 OFFSET $3"));
        assert_eq!(q.count_binds, 1);
        assert_eq!(
            q.binds,
            vec![Bind::Uuid(Uuid::nil()), Bind::Int(50), Bind::Int(0)]
        );
    }

    #[test]
    fn state_filters_fall_back_to_the_documents_defaults() {
        let filter = OrgVehicleFilter {
            is_plugged_in: Some(true),
            action_needed: Some(false),
            connection_status: vec![StatusLevel::Error, StatusLevel::Warning],
            status: vec![StatusLevel::Ok],
            include_deleted: true,
            ..OrgVehicleFilter::default()
        };
        let q = OrgVehicleQuery::build(Dialect::Sqlite, org(), &filter, PAGE).unwrap();
        assert!(!q.count_sql.contains("deleted_at"));
        assert!(
            q.count_sql
                .contains("COALESCE((v.state -> '$.is_plugged_in'), 'false') = 'true'"),
            "{}",
            q.count_sql
        );
        assert!(
            q.count_sql
                .contains("COALESCE((v.state -> '$.action_needed'), 'false') = 'false'")
        );
        assert!(q.count_sql.contains(
            "COALESCE((v.state -> '$.connection_status'), '\"unknown\"') IN ('\"error\"', '\"warning\"')"
        ));
        assert!(q.count_sql.contains("max(CASE"));
        assert!(q.count_sql.ends_with(") IN (0)"));

        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &filter, PAGE).unwrap();
        // Six members read: each row's document is parsed once.
        assert!(
            q.count_sql
                .contains("COALESCE(((st.doc -> 'is_plugged_in')::text), 'false') = 'true'")
        );
        assert!(q.count_sql.contains("GREATEST(CASE"));
        assert!(q.count_sql.contains(
            "CROSS JOIN LATERAL (SELECT v.state::jsonb AS doc OFFSET 0) st WHERE v.org_id = $1"
        ));
        assert!(q.page_sql.contains("OFFSET 0) st WHERE"));
    }

    #[test]
    fn keyset_paging_does_not_change_the_total() {
        let filter = OrgVehicleFilter {
            user_id: Some(Uuid::max()),
            price_zones: vec![PriceZone::At, PriceZone::DeLu],
            ..OrgVehicleFilter::default()
        };
        let paging = OrgVehiclePaging {
            after: Some(Uuid::max()),
            ..PAGE
        };
        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &filter, paging).unwrap();
        assert!(q.count_sql.contains("v.price_zone IN ($3, $4)"));
        assert!(!q.count_sql.contains("v.id >"));
        assert!(
            !q.count_sql.contains("LATERAL"),
            "no state filter, no parse"
        );
        assert_eq!(q.count_binds, 4);
        assert!(
            q.page_sql
                .contains(" AND v.id > $5 ORDER BY v.id LIMIT $6 OFFSET $7")
        );
        assert_eq!(q.binds[4], Bind::Uuid(Uuid::max()));
    }

    #[test]
    fn postgres_parses_a_document_once_only_when_a_filter_reads_many_members() {
        let two = OrgVehicleFilter {
            is_plugged_in: Some(true),
            steering_status: vec![StatusLevel::Ok],
            ..OrgVehicleFilter::default()
        };
        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &two, PAGE).unwrap();
        assert!(!q.count_sql.contains("LATERAL"));
        assert!(
            q.count_sql
                .contains("COALESCE(((v.state::json -> 'is_plugged_in')::text), 'false') = 'true'")
        );
        let three = OrgVehicleFilter {
            is_charging: Some(false),
            ..two
        };
        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &three, PAGE).unwrap();
        assert!(q.count_sql.contains("LATERAL"));
        assert!(!q.count_sql.contains("v.state::json ->"));
        let status = OrgVehicleFilter {
            status: vec![StatusLevel::Error],
            ..OrgVehicleFilter::default()
        };
        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &status, PAGE).unwrap();
        assert!(
            q.count_sql.contains("LATERAL"),
            "status reads three members"
        );
    }
}

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
