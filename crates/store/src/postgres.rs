//! PostgreSQL backend: many API replicas and workers share one database. sqlx takes an advisory
//! lock while migrating, so replicas that start together migrate once.

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use std::time::Duration;

use crate::{Backend, Result};

pub(crate) struct PgStore {
    pub(crate) read: PgPool,
    pub(crate) write: PgPool,
}

impl PgStore {
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
        })
    }

    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.write.begin().await?)
    }
}

crate::sql::store_impl!(
    PgStore,
    backend = Backend::Postgres,
    for_update = " FOR UPDATE"
);
crate::prices::price_store_impl!(PgStore, db = Postgres);
impl crate::fleet::Backed for PgStore {
    type Db = Postgres;
}

crate::fleet::fleet_store_impl!(
    PgStore,
    skip_locked = " FOR UPDATE SKIP LOCKED",
    for_update = " FOR UPDATE"
);
