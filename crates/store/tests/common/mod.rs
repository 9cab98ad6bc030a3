//! Databases for store tests: SQLite (a temp file) always and, when `VOLTPLAN_TEST_POSTGRES_URL`
//! is set, PostgreSQL (a fresh database per test, dropped at the end).

#![allow(dead_code)] // each test binary uses a part

use sqlx::Connection;
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;
use voltplan_store::{ConnectOptions, Store, connect};

const PG_ENV: &str = "VOLTPLAN_TEST_POSTGRES_URL";

pub struct TestDb {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Postgres { admin_url: String, database: String },
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

pub async fn databases() -> Vec<TestDb> {
    let path = std::env::temp_dir().join(format!("voltplan-store-{}.db", Uuid::new_v4()));
    let sqlite = connect(&ConnectOptions::new(format!("sqlite:{}", path.display())))
        .await
        .expect("open SQLite");
    let mut dbs = vec![TestDb {
        name: "sqlite",
        store: sqlite,
        cleanup: Cleanup::File(path),
    }];
    match std::env::var(PG_ENV) {
        Ok(admin_url) => {
            let database = format!("voltplan_t_{}", Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is unreachable: {e}"));
            sqlx::query(&format!("CREATE DATABASE {database}"))
                .execute(&mut admin)
                .await
                .expect("create test database");
            let store = connect(&ConnectOptions::new(with_database(&admin_url, &database)))
                .await
                .expect("open PostgreSQL");
            dbs.push(TestDb {
                name: "postgres",
                store,
                cleanup: Cleanup::Postgres {
                    admin_url,
                    database,
                },
            });
        }
        Err(_) => eprintln!("skipping PostgreSQL: {PG_ENV} not set"),
    }
    dbs
}

impl TestDb {
    /// Best effort: a failing cleanup must not hide the test's result.
    pub async fn cleanup(self) {
        drop(self.store);
        match self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres {
                admin_url,
                database,
            } => {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    // FORCE: the dropped store's pool may still be closing its connections.
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                            .execute(&mut admin)
                            .await;
                }
            }
        }
    }
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/test?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
}
