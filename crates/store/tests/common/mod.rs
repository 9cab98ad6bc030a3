//! Stores for store tests, one per backend `voltplan-test-support` provides: SQLite (a temp file)
//! always and, when `VOLTPLAN_TEST_POSTGRES_URL` is set, PostgreSQL (a fresh database per test,
//! dropped at the end).

use std::sync::Arc;
use voltplan_store::{ConnectOptions, Store, connect};
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
