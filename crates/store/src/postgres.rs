//! PostgreSQL backend: many API replicas and workers share one database. sqlx takes an advisory
//! lock while migrating, so replicas that start together migrate once.

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection, Postgres, Transaction};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use uuid::Uuid;

use crate::fleet::{CommandOutcome, CycleOutcome, Lease, ReadingRecord, SessionRecord};

use crate::{Backend, ConnectOptions, Result};

pub(crate) struct PgStore {
    pub(crate) read: PgPool,
    pub(crate) write: PgPool,
}

impl PgStore {
    pub(crate) async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let base = PgConnectOptions::from_str(url)?;
        // Migrate on a connection of its own, without the pool's timeouts: a migration may take
        // long, and replicas starting together wait for each other's advisory lock. Opening it
        // first also reports an unreachable server at once, as the error the OS gave (a refused
        // connection), where the pool would retry until its acquire timeout.
        let mut migrator = base.connect().await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&mut migrator)
            .await?;
        let _ = migrator.close().await;
        // Every pooled connection bounds its statements and lock waits, so a held lock or a slow
        // query ends as an error (SQLSTATE 55P03 / 57014) instead of holding the request.
        let millis = options.statement_timeout.as_millis().max(1).to_string();
        let bounded = base.options([
            ("statement_timeout", millis.as_str()),
            ("lock_timeout", millis.as_str()),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(bounded)
            .await?;
        let store = Self {
            read: pool.clone(),
            write: pool,
        };
        store.refold_email_keys().await?;
        Ok(store)
    }

    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.write.begin().await?)
    }
}

// What the shared SQL (`shared/`) needs to know about this backend.
type Db = Postgres;
type ThisStore = PgStore;
const BACKEND: Backend = Backend::Postgres;
// A row read to be changed is locked until commit; concurrent claimers skip each other's rows.
const FOR_UPDATE: &str = " FOR UPDATE";
const FOR_UPDATE_SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

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

crate::prices::price_store_impl!(PgStore, db = Postgres);
crate::auth_sessions::auth_session_store_impl!(PgStore);
crate::org_vehicles::org_vehicle_store_impl!(
    PgStore,
    dialect = crate::org_vehicles::Dialect::Postgres
);

impl PgStore {
    /// A batch's fenced finishes in four statements over `UNNEST`-ed arrays (vehicles, sessions,
    /// readings, command outcomes) instead of several per vehicle: on PostgreSQL the round trips,
    /// not the work, dominated a cycle. A vehicle whose partner settings must change (a boost flag
    /// to clear) takes the per-row path, which locks and rewrites its settings.
    pub(crate) async fn finish_batch_in(
        tx: &mut Transaction<'static, Postgres>,
        outcomes: &[(Lease, CycleOutcome)],
    ) -> Result<Vec<bool>> {
        let mut written = vec![false; outcomes.len()];
        let mut bulk = Vec::with_capacity(outcomes.len());
        for (i, (lease, outcome)) in outcomes.iter().enumerate() {
            if outcome.touches_settings() {
                written[i] = Self::finish_in(tx, lease, outcome).await?;
            } else {
                bulk.push(i);
            }
        }
        if bulk.is_empty() {
            return Ok(written);
        }

        let mut vehicles = VehicleColumns::default();
        for &i in &bulk {
            let (lease, outcome) = &outcomes[i];
            vehicles.push(lease, outcome)?;
        }
        let done: Vec<(Uuid,)> = sqlx::query_as(
            "UPDATE electric_vehicles v SET state = f.state, runtime = f.runtime, plan = f.plan, \
               next_cycle_at = CASE WHEN v.next_cycle_at IS NULL THEN NULL ELSE f.next END, \
               lease_owner = NULL, lease_until = NULL \
             FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) \
               AS f(id, owner, epoch, state, runtime, plan, next) \
             WHERE v.id = f.id AND v.lease_owner = f.owner AND v.lease_epoch = f.epoch \
             RETURNING v.id",
        )
        .bind(&vehicles.ids)
        .bind(&vehicles.owners)
        .bind(&vehicles.epochs)
        .bind(&vehicles.states)
        .bind(&vehicles.runtimes)
        .bind(&vehicles.plans)
        .bind(&vehicles.next)
        .fetch_all(&mut **tx)
        .await?;
        let done: HashSet<Uuid> = done.into_iter().map(|(id,)| id).collect();

        // Later entries win for a repeated key (a cycle may touch a row twice).
        let mut sessions: HashMap<Uuid, &SessionRecord> = HashMap::new();
        let mut readings: Vec<&ReadingRecord> = Vec::new();
        let mut commands: HashMap<&str, &CommandOutcome> = HashMap::new();
        let mut events = Vec::new();
        for &i in &bulk {
            let (lease, outcome) = &outcomes[i];
            for c in &outcome.command_outcomes {
                commands.insert(&c.idempotency_key, c);
            }
            if !done.contains(&lease.vehicle_id) {
                continue;
            }
            written[i] = true;
            for s in &outcome.sessions {
                sessions.insert(s.id, s);
            }
            readings.extend(&outcome.reading);
            events.extend_from_slice(&outcome.events);
        }
        Self::upsert_sessions_in(tx, sessions.into_values()).await?;
        Self::append_readings_in(tx, &readings).await?;
        Self::set_command_outcomes_in(tx, commands.into_values()).await?;
        Self::append_events_in(tx, &events).await?;
        Ok(written)
    }

    async fn upsert_sessions_in(
        tx: &mut Transaction<'static, Postgres>,
        sessions: impl Iterator<Item = &SessionRecord>,
    ) -> Result<()> {
        let (mut ids, mut orgs, mut vehicles) = (Vec::new(), Vec::new(), Vec::new());
        let (mut plug_in, mut unplug, mut data) = (Vec::new(), Vec::new(), Vec::new());
        for s in sessions {
            ids.push(s.id);
            orgs.push(s.org_id);
            vehicles.push(s.vehicle_id);
            plug_in.push(s.plug_in_time);
            unplug.push(s.unplug_time);
            data.push(serde_json::to_string(&s.data)?);
        }
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO charging_sessions (id, org_id, vehicle_id, plug_in_time, unplug_time, data) \
             SELECT id, org_id, vehicle_id, plug_in_time, unplug_time, data::jsonb \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[], $6::text[]) \
               AS s(id, org_id, vehicle_id, plug_in_time, unplug_time, data) \
             ON CONFLICT (id) DO UPDATE SET unplug_time = excluded.unplug_time, data = excluded.data",
        )
        .bind(ids)
        .bind(orgs)
        .bind(vehicles)
        .bind(plug_in)
        .bind(unplug)
        .bind(data)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn append_readings_in(
        tx: &mut Transaction<'static, Postgres>,
        readings: &[&ReadingRecord],
    ) -> Result<()> {
        if readings.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&ReadingRecord) -> Option<f64>| -> Vec<Option<f64>> {
            readings.iter().map(|r| f(r)).collect()
        };
        let flag = |f: fn(&ReadingRecord) -> Option<bool>| -> Vec<Option<bool>> {
            readings.iter().map(|r| f(r)).collect()
        };
        sqlx::query(
            "INSERT INTO vehicle_readings \
             (vehicle_id, org_id, at, battery_level, is_plugged_in, is_charging, is_at_home, power_w, energy_kwh, price_eur_mwh, \
              customer_price_per_mwh) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::float8[], $5::bool[], $6::bool[], \
               $7::bool[], $8::float8[], $9::float8[], $10::float8[], $11::float8[]) \
             ON CONFLICT (vehicle_id, at) DO NOTHING",
        )
        .bind(readings.iter().map(|r| r.vehicle_id).collect::<Vec<_>>())
        .bind(readings.iter().map(|r| r.org_id).collect::<Vec<_>>())
        .bind(readings.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(column(|r| r.battery_level))
        .bind(flag(|r| r.is_plugged_in))
        .bind(flag(|r| r.is_charging))
        .bind(flag(|r| r.is_at_home))
        .bind(column(|r| r.power_w))
        .bind(column(|r| r.energy_kwh))
        .bind(column(|r| r.price_eur_mwh))
        .bind(column(|r| r.customer_price_per_mwh))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn set_command_outcomes_in(
        tx: &mut Transaction<'static, Postgres>,
        commands: impl Iterator<Item = &CommandOutcome>,
    ) -> Result<()> {
        let (mut keys, mut outcomes, mut details) = (Vec::new(), Vec::new(), Vec::new());
        for c in commands {
            keys.push(c.idempotency_key.as_str());
            outcomes.push(c.outcome.as_str());
            details.push(c.detail.as_deref());
        }
        if keys.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE vehicle_commands c SET outcome = f.outcome, detail = f.detail \
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS f(key, outcome, detail) \
             WHERE c.idempotency_key = f.key",
        )
        .bind(keys)
        .bind(outcomes)
        .bind(details)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// The vehicle columns of a batch, one array per column, for `UNNEST`.
#[derive(Default)]
struct VehicleColumns {
    ids: Vec<Uuid>,
    owners: Vec<String>,
    epochs: Vec<i64>,
    states: Vec<String>,
    runtimes: Vec<String>,
    plans: Vec<Option<String>>,
    next: Vec<DateTime<Utc>>,
}

impl VehicleColumns {
    fn push(&mut self, lease: &Lease, outcome: &CycleOutcome) -> Result<()> {
        self.ids.push(lease.vehicle_id);
        self.owners.push(lease.worker_id.clone());
        self.epochs.push(lease.epoch);
        self.states.push(serde_json::to_string(&outcome.state)?);
        self.runtimes.push(outcome.runtime.clone());
        self.plans.push(outcome.plan.clone());
        self.next.push(outcome.next_cycle_at);
        Ok(())
    }
}
