//! SQLite backend: WAL, one writer connection with `BEGIN IMMEDIATE` transactions (a deferred
//! transaction that reads then writes can fail with SQLITE_BUSY_SNAPSHOT, bypassing the busy
//! handler), and a pool of read-only readers.

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::str::FromStr;

use crate::{Backend, ConnectOptions, Result};

pub(crate) struct SqliteStore {
    pub(crate) read: SqlitePool,
    pub(crate) write: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating and migrating) the file; `options.max_connections` is the number of readers.
    pub(crate) async fn connect(path: &str, options: &ConnectOptions) -> Result<Self> {
        let base = SqliteConnectOptions::from_str(&format!("sqlite:{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A commit survives a process crash; an OS crash may lose the last commits, never the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // A write lock held elsewhere (another process, a stuck transaction) is waited for
            // this long, then the call fails as unavailable instead of hanging.
            .busy_timeout(options.statement_timeout);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.read_only(true))
            .await?;
        let store = Self { read, write };
        store.refold_email_keys().await?;
        Ok(store)
    }

    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }
}

// What the shared SQL (`shared/`) needs to know about this backend.
type Db = Sqlite;
type ThisStore = SqliteStore;
const BACKEND: Backend = Backend::Sqlite;
// No row locks: a write transaction (BEGIN IMMEDIATE) already holds the one writer.
const FOR_UPDATE: &str = "";
const FOR_UPDATE_SKIP_LOCKED: &str = "";

// Loaded by both backends on purpose: one SQL text, compiled against each backend's items above.
#[allow(clippy::duplicate_mod)]
#[path = "shared/energy_contracts.rs"]
mod shared_energy_contracts;
#[allow(clippy::duplicate_mod)]
#[path = "shared/fleet.rs"]
mod shared_fleet;
#[allow(clippy::duplicate_mod)]
#[path = "shared/grid_groups.rs"]
mod shared_grid_groups;
#[allow(clippy::duplicate_mod)]
#[path = "shared/ocpp.rs"]
mod shared_ocpp;
#[allow(clippy::duplicate_mod)]
#[path = "shared/onboarding.rs"]
mod shared_onboarding;
#[allow(clippy::duplicate_mod)]
#[path = "shared/store.rs"]
mod shared_store;
#[allow(clippy::duplicate_mod)]
#[path = "shared/wallbox_fleet.rs"]
mod shared_wallbox_fleet;
#[allow(clippy::duplicate_mod)]
#[path = "shared/wallboxes.rs"]
mod shared_wallboxes;
#[allow(clippy::duplicate_mod)]
#[path = "shared/webhooks.rs"]
mod shared_webhooks;

crate::prices::price_store_impl!(SqliteStore, db = Sqlite);
crate::auth_sessions::auth_session_store_impl!(SqliteStore);
crate::org_vehicles::org_vehicle_store_impl!(
    SqliteStore,
    dialect = crate::org_vehicles::Dialect::Sqlite
);

impl SqliteStore {
    /// A batch's fenced finishes, one after another in the caller's transaction: with one writer
    /// and no round trips, a statement per vehicle costs little (PostgreSQL batches them).
    pub(crate) async fn finish_batch_in(
        tx: &mut Transaction<'static, Sqlite>,
        outcomes: &[(crate::fleet::Lease, crate::fleet::CycleOutcome)],
    ) -> Result<Vec<bool>> {
        let mut written = Vec::with_capacity(outcomes.len());
        for (lease, outcome) in outcomes {
            written.push(Self::finish_in(tx, lease, outcome).await?);
        }
        Ok(written)
    }
}
