//! Throw-away databases for tests and benchmarks, and [`fake_smartcar`], a fake Smartcar service.
//!
//! SQLite (a file in a fresh temp directory) always runs. PostgreSQL runs only when
//! `VOLTPLAN_TEST_POSTGRES_URL` ([`PG_ENV`]) names a server: each [`TestDatabase`] is then a fresh
//! database `voltplan_t_<uuid>` created through that admin URL and dropped `WITH (FORCE)` by
//! [`TestDatabase::drop_database`]. With the variable set, an unreachable server fails the test (a
//! panic), never a silent skip; without it, the PostgreSQL half is skipped with the notice
//! `skipping PostgreSQL: VOLTPLAN_TEST_POSTGRES_URL not set` on stderr, once per call of
//! [`backends`], [`test_databases`] or [`Backend::postgres_if_configured`].
//!
//! The crate hands out URLs only: opening a store on them is the caller's business, so it depends
//! on no Voltplan crate and every crate can take it as a dev-dependency.
//!
//! ```no_run
//! # async fn example() {
//! for database in voltplan_test_support::test_databases("voltplan-example").await {
//!     println!("{}: {}", database.name(), database.url());
//!     // … open a store on `database.url()`, test, drop the store …
//!     database.drop_database().await;
//! }
//! # }
//! ```

pub mod fake_smartcar;

use sqlx::Connection;
use tempfile::TempDir;
use uuid::Uuid;

/// The environment variable naming the PostgreSQL server tests may create databases on: an admin
/// URL (`postgres://postgres@127.0.0.1:5432/test`) whose role may `CREATE DATABASE`.
pub const PG_ENV: &str = "VOLTPLAN_TEST_POSTGRES_URL";

/// A database server a test runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A file in a fresh temp directory.
    Sqlite,
    /// PostgreSQL, with the admin URL (from [`PG_ENV`]) test databases are created through.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL when [`PG_ENV`] is set (and not blank); otherwise `None`, after printing
    /// `skipping PostgreSQL: VOLTPLAN_TEST_POSTGRES_URL not set` to stderr.
    pub fn postgres_if_configured() -> Option<Backend> {
        match std::env::var(PG_ENV) {
            Ok(url) if !url.trim().is_empty() => Some(Backend::Postgres(url.trim().to_owned())),
            _ => {
                eprintln!("skipping PostgreSQL: {PG_ENV} not set");
                None
            }
        }
    }

    /// `"sqlite"` or `"postgres"`, for assertion messages and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// The backends this run covers: SQLite, then PostgreSQL when [`PG_ENV`] is set (see
/// [`Backend::postgres_if_configured`]).
pub fn backends() -> Vec<Backend> {
    let mut list = vec![Backend::Sqlite];
    list.extend(Backend::postgres_if_configured());
    list
}

/// A fresh database on every backend this run covers ([`backends`]); SQLite files are named after
/// `prefix` (`voltplan-store` gives `/tmp/voltplan-store-XXXXXX/voltplan-store.db`).
pub async fn test_databases(prefix: &str) -> Vec<TestDatabase> {
    let mut databases = Vec::new();
    for backend in backends() {
        databases.push(TestDatabase::create(&backend, prefix).await);
    }
    databases
}

/// `url` with its database name replaced by `database` (the query string is kept).
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

/// One throw-away database and its URL.
///
/// A SQLite database is removed (with its `-wal` and `-shm` files) by
/// [`drop_database`](Self::drop_database) or, failing that, when the value is dropped, also when a
/// test panics. A PostgreSQL database is only dropped by `drop_database`: call it at the end of the
/// test, after dropping the store that uses it.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    place: Place,
}

#[derive(Debug)]
enum Place {
    /// The temp directory holding the SQLite file: removing it removes `-wal` and `-shm` too.
    Sqlite(TempDir),
    Postgres {
        admin_url: String,
        database: String,
    },
}

impl TestDatabase {
    /// A fresh database on `backend`; SQLite files are named after `prefix`.
    ///
    /// # Panics
    /// When the database cannot be made, in particular when PostgreSQL is unreachable.
    pub async fn create(backend: &Backend, prefix: &str) -> TestDatabase {
        match backend {
            Backend::Sqlite => TestDatabase::sqlite(prefix),
            Backend::Postgres(admin_url) => TestDatabase::postgres(admin_url).await,
        }
    }

    /// A SQLite database file `<prefix>.db` in a fresh temp directory `<prefix>-XXXXXX`. The file
    /// itself is left to whoever opens the URL (Voltplan's store creates it).
    pub fn sqlite(prefix: &str) -> TestDatabase {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("create a temp directory for SQLite: {e}"));
        let path = dir.path().join(format!("{prefix}.db"));
        TestDatabase {
            url: format!("sqlite:{}", path.display()),
            place: Place::Sqlite(dir),
        }
    }

    /// A fresh, empty PostgreSQL database `voltplan_t_<uuid>`, created through `admin_url`.
    ///
    /// # Panics
    /// When the server is unreachable or refuses `CREATE DATABASE`: a test that was asked to run on
    /// PostgreSQL must fail rather than pass on SQLite alone.
    pub async fn postgres(admin_url: &str) -> TestDatabase {
        let database = format!("voltplan_t_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is unreachable: {e}"));
        sqlx::raw_sql(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create test database {database}: {e}"));
        let _ = admin.close().await;
        TestDatabase {
            url: with_database(admin_url, &database),
            place: Place::Postgres {
                admin_url: admin_url.to_owned(),
                database,
            },
        }
    }

    /// The URL to open: `sqlite:/tmp/…/<prefix>.db` or `postgres://…/voltplan_t_<uuid>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `"sqlite"` or `"postgres"`, like [`Backend::name`].
    pub fn name(&self) -> &'static str {
        match self.place {
            Place::Sqlite(_) => "sqlite",
            Place::Postgres { .. } => "postgres",
        }
    }

    /// Removes the database, best effort: a failing cleanup must not hide the test's result, so
    /// errors are only printed. SQLite: the file with its `-wal` and `-shm` (its directory).
    /// PostgreSQL: `DROP DATABASE … WITH (FORCE)`, which also ends connections a pool that is
    /// still closing holds.
    pub async fn drop_database(self) {
        match self.place {
            Place::Sqlite(dir) => {
                let _ = dir.close();
            }
            Place::Postgres {
                admin_url,
                database,
            } => match sqlx::PgConnection::connect(&admin_url).await {
                Ok(mut admin) => {
                    let drop = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
                    if let Err(e) = sqlx::raw_sql(&drop).execute(&mut admin).await {
                        eprintln!("could not drop test database {database}: {e}");
                    }
                    let _ = admin.close().await;
                }
                Err(e) => eprintln!("could not drop test database {database}: {e}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn a_sqlite_database_is_removed_with_its_wal_and_shm() {
        let database = TestDatabase::sqlite("voltplan-test-support");
        assert_eq!(database.name(), "sqlite");
        let path = database
            .url()
            .strip_prefix("sqlite:")
            .expect("a sqlite: URL")
            .to_owned();
        assert!(path.ends_with("/voltplan-test-support.db"), "{path}");
        for suffix in ["", "-wal", "-shm"] {
            std::fs::write(format!("{path}{suffix}"), b"x").expect("write");
        }
        let dir = std::path::Path::new(&path)
            .parent()
            .expect("a directory")
            .to_owned();
        database.drop_database().await;
        assert!(!dir.exists(), "{} is left", dir.display());
    }

    #[tokio::test]
    async fn a_postgres_database_is_created_and_dropped_while_in_use() {
        let Some(Backend::Postgres(admin_url)) = Backend::postgres_if_configured() else {
            return;
        };
        let database = TestDatabase::postgres(&admin_url).await;
        assert_eq!(database.name(), "postgres");
        let mut open = sqlx::PgConnection::connect(database.url())
            .await
            .expect("connect to the test database");
        let name: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&mut open)
            .await
            .expect("current_database");
        assert!(name.starts_with("voltplan_t_"), "{name}");
        // Dropped while a connection is still open: WITH (FORCE) ends it.
        database.drop_database().await;
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("admin");
        let left: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .expect("pg_database");
        assert!(!left, "{name} is left");
    }

    #[tokio::test]
    #[should_panic(expected = "is set but PostgreSQL is unreachable")]
    async fn an_unreachable_postgres_fails_the_test() {
        TestDatabase::postgres("postgres://postgres@127.0.0.1:1/test").await;
    }

    #[test]
    fn two_sqlite_databases_never_share_a_file() {
        let (a, b) = (TestDatabase::sqlite("x"), TestDatabase::sqlite("x"));
        assert_ne!(a.url(), b.url());
        assert_eq!(Backend::Sqlite.name(), a.name());
    }
}
