//! Voltplan's persistence. One [`Store`] trait with a SQLite and a PostgreSQL implementation that
//! share their SQL (`shared/`, compiled once per backend) and pass the same test suite.
//!
//! Tenancy: every method on an organisation's data takes an [`OrgScope`] and every statement
//! filters by it, so an object of another organisation is simply not found.

mod auth_sessions;
pub mod cloud_vault;
pub mod energy_contracts;
pub mod fleet;
pub mod grid_groups;
mod json_text;
pub mod ocpp;
pub mod onboarding;
mod org_vehicles;
mod postgres;
mod prices;
mod records;
pub mod sealed;
mod sql;
mod sqlite;
pub mod wallbox_fleet;
mod wallboxes;
pub mod webhooks;
// `shared/` holds no module of its own: `sqlite.rs` and `postgres.rs` each compile its files.

pub use auth_sessions::{AuthSessionOutcome, AuthSessionRecord, AuthSessionStore, KEEP_EXPIRED};
pub use energy_contracts::{EnergyContractRecord, EnergyContractStore, contract_for};
pub use fleet::FleetStore;
pub use grid_groups::{GridGroupRecord, GridGroupStore, GridLease, GridMember, GridPlanOutcome};
pub use ocpp::OcppStore;
pub use onboarding::{CloudLinkStore, OnboardingStore};
pub use org_vehicles::{
    OrgVehicleFilter, OrgVehiclePage, OrgVehiclePaging, OrgVehicleStore, OwnedVehicle, worst_status,
};
pub use prices::*;
pub use records::*;
pub use wallbox_fleet::WallboxFleetStore;
pub use wallboxes::{ChargerLogin, WallboxRecord, WallboxStore, new_wallbox};
pub use webhooks::WebhookStore;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::account::{BuildingDetails, Role, UserProfile};
use voltplan_core::validation::FieldError;
use voltplan_core::vehicle::{EvSettings, EvState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; names the offending field.
    #[error("{field} is already taken")]
    Conflict { field: &'static str },
    /// A mutation refused the change; nothing was written.
    #[error("invalid change")]
    Invalid(Vec<FieldError>),
    #[error("stored data could not be decoded: {0}")]
    Corrupt(String),
    #[error("cannot encode a document for the database: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://…")]
    UnsupportedUrl(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// The database could not be reached or did not answer in time (refused or dropped
    /// connections, an exhausted pool, a lock or statement timeout): worth retrying later,
    /// unlike a broken query.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => is_unavailable(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => is_unavailable(e),
            _ => false,
        }
    }
}

fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            match db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // The primary result code is the low byte of an extended one:
                // SQLITE_BUSY (5, busy_timeout ran out) and SQLITE_LOCKED (6).
                Some(_) => code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
                // PostgreSQL SQLSTATEs: connection exceptions (08…), too many connections
                // (53300), lock_timeout (55P03), statement_timeout or cancel (57014), the server
                // shutting down or starting (57P01–57P03).
                None => {
                    code.starts_with("08")
                        || matches!(
                            code,
                            "53300" | "55P03" | "57014" | "57P01" | "57P02" | "57P03"
                        )
                }
            }
        }
        _ => false,
    }
}

/// A change applied to an object inside the transaction that reads and writes it.
/// Returning an error rolls the transaction back: nothing is half-written.
pub type Mutation<'a, T> = Box<dyn FnOnce(&mut T) -> Result<(), Vec<FieldError>> + Send + 'a>;

/// The organisation a caller acts for. Obtained from an authenticated principal (API) or an
/// operator's explicit choice (admin CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrgScope(Uuid);

impl OrgScope {
    pub const fn new(org_id: Uuid) -> Self {
        Self(org_id)
    }
    pub const fn id(&self) -> Uuid {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[async_trait]
pub trait Store:
    PriceStore
    + FleetStore
    + AuthSessionStore
    + OrgVehicleStore
    + WallboxStore
    + OcppStore
    + WallboxFleetStore
    + OnboardingStore
    + CloudLinkStore
    + WebhookStore
    + EnergyContractStore
    + GridGroupStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;
    async fn ping(&self) -> Result<()>;

    // Organisations and API clients (operators).
    async fn count_organisations(&self) -> Result<i64>;
    async fn create_organisation(&self, name: &str, now: DateTime<Utc>) -> Result<Organisation>;
    async fn get_organisation(&self, id: Uuid) -> Result<Organisation>;
    async fn create_api_client(&self, org: OrgScope, client: &NewApiClient) -> Result<ApiClient>;
    async fn get_api_client(&self, client_id: &str) -> Result<ApiClient>;
    /// Revokes the client and every token it holds.
    async fn revoke_api_client(&self, client_id: &str, now: DateTime<Utc>) -> Result<()>;
    /// Replaces the client's secret hash and revokes its tokens, so a leaked secret's tokens die with it.
    async fn rotate_api_client_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    // Access tokens.
    async fn insert_access_token(&self, token: &NewAccessToken) -> Result<()>;
    /// The live token with this hash whose client is not revoked, if any. Expiry is the caller's
    /// check (it owns the clock).
    async fn find_access_token(&self, token_hash: &[u8]) -> Result<Option<AccessToken>>;
    /// Revokes a token of this client; `false` when there was none (RFC 7009 still answers 200).
    async fn revoke_access_token(
        &self,
        token_hash: &[u8],
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    // Users.
    async fn list_users(&self, org: OrgScope, include_deleted: bool) -> Result<Vec<UserRecord>>;
    async fn get_user(&self, org: OrgScope, id: Uuid, include_deleted: bool) -> Result<UserRecord>;
    async fn create_user(&self, org: OrgScope, user: &UserRecord) -> Result<UserRecord>;
    async fn update_user(
        &self,
        org: OrgScope,
        id: Uuid,
        change: Mutation<'_, UserRecord>,
    ) -> Result<UserRecord>;
    /// Soft-deletes the user with their buildings and devices (vehicles, wallboxes), in one
    /// transaction.
    async fn delete_user(&self, org: OrgScope, id: Uuid, now: DateTime<Utc>) -> Result<()>;

    // Buildings.
    async fn list_buildings(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<Vec<BuildingRecord>>;
    async fn get_building(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<BuildingRecord>;
    async fn create_building(
        &self,
        org: OrgScope,
        building: &BuildingRecord,
    ) -> Result<BuildingRecord>;
    async fn update_building(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        change: Mutation<'_, BuildingRecord>,
    ) -> Result<BuildingRecord>;
    /// Soft-deletes the building and detaches the vehicles and wallboxes that pointed at it.
    async fn delete_building(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()>;

    // Electric vehicles.
    async fn list_vehicles(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<Vec<VehicleRecord>>;
    async fn get_vehicle(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<VehicleRecord>;
    /// A user and their vehicles in one round trip (the partner's most frequent call).
    async fn list_vehicles_with_owner(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<(UserRecord, Vec<VehicleRecord>)>;
    /// Makes the vehicle due for a worker cycle at once (something happened that the worker should
    /// see now, e.g. a sandbox car was plugged in).
    async fn wake_vehicle(&self, org: OrgScope, id: Uuid) -> Result<()>;
    /// A live vehicle of the organisation, whoever its owner (for routes that name only the vehicle).
    async fn get_vehicle_in_org(&self, org: OrgScope, id: Uuid) -> Result<VehicleRecord>;
    async fn create_vehicle(&self, org: OrgScope, vehicle: &VehicleRecord)
    -> Result<VehicleRecord>;
    async fn update_vehicle(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        change: Mutation<'_, VehicleRecord>,
    ) -> Result<VehicleRecord>;
    async fn delete_vehicle(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()>;
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: String,
    /// Connections to PostgreSQL, or readers on SQLite (which always has one writer).
    pub max_connections: u32,
    /// The longest wait for a free connection of the pool (and, on PostgreSQL, for a new one
    /// to open) before the call fails as unavailable.
    pub acquire_timeout: Duration,
    /// The longest a statement may run or wait for a lock: PostgreSQL's `statement_timeout`
    /// and `lock_timeout`, SQLite's `busy_timeout`. Migrations at start are exempt.
    pub statement_timeout: Duration,
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// Opens the database the URL names, creating and migrating it as needed. `postgres://` or
/// `postgresql://` selects PostgreSQL; `sqlite:PATH`, `sqlite://PATH` or a bare path selects SQLite.
pub async fn connect(options: &ConnectOptions) -> Result<Arc<dyn Store>> {
    let url = options.url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, options).await?))
    } else if let Some(path) = sqlite_path(url) {
        Ok(Arc::new(sqlite::SqliteStore::connect(path, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        return Some(rest);
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        return Some(rest);
    }
    (!url.contains("://") && !url.is_empty()).then_some(url)
}

/// A user as first created: the defaults the API applies before validation.
pub fn new_user(org: OrgScope, email: String, role: Role, now: DateTime<Utc>) -> UserRecord {
    UserRecord {
        id: Uuid::now_v7(),
        org_id: org.id(),
        email,
        role,
        external_user_id: None,
        profile: UserProfile::default(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

pub fn new_building(org: OrgScope, user_id: Uuid, now: DateTime<Utc>) -> BuildingRecord {
    BuildingRecord {
        id: Uuid::now_v7(),
        org_id: org.id(),
        user_id,
        details: BuildingDetails::default(),
        latitude: None,
        longitude: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

pub fn new_vehicle(org: OrgScope, user_id: Uuid, now: DateTime<Utc>) -> VehicleRecord {
    VehicleRecord {
        id: Uuid::now_v7(),
        org_id: org.id(),
        user_id,
        building_id: None,
        price_zone: PriceZone::At,
        settings: EvSettings::default(),
        state: EvState::default(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}
