//! Stores for store tests, one per backend `voltplan-test-support` provides: SQLite (a temp file)
//! always and, when `VOLTPLAN_TEST_POSTGRES_URL` is set, PostgreSQL (a fresh database per test,
//! dropped at the end).

use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;
use voltplan_core::account::Role;
use voltplan_store::{ConnectOptions, OrgScope, Store, connect, new_user, new_vehicle};
use voltplan_test_support::{TestDatabase, test_databases};

pub struct TestDb {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    database: TestDatabase,
}

pub async fn databases() -> Vec<TestDb> {
    let mut dbs = Vec::new();
    for database in test_databases("voltplan-store").await {
        let store = connect(&ConnectOptions::new(database.url()))
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", database.name()));
        dbs.push(TestDb {
            name: database.name(),
            store,
            database,
        });
    }
    dbs
}

impl TestDb {
    /// Best effort: a failing cleanup must not hide the test's result.
    pub async fn cleanup(self) {
        drop(self.store);
        self.database.drop_database().await;
    }
}

#[allow(dead_code)] // not every test binary uses it
/// A new organisation with one driver owning `cars` vehicles: (organisation, user id, vehicle ids).
pub async fn fleet(
    store: &dyn Store,
    cars: usize,
    at: DateTime<Utc>,
) -> (OrgScope, Uuid, Vec<Uuid>) {
    let org = OrgScope::new(store.create_organisation("fleet", at).await.unwrap().id);
    let user = store
        .create_user(org, &new_user(org, "d@example.com".into(), Role::User, at))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..cars {
        let v = store
            .create_vehicle(org, &new_vehicle(org, user.id, at))
            .await
            .unwrap();
        ids.push(v.id);
    }
    (org, user.id, ids)
}
