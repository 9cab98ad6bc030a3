//! Fixtures shared by the worker's end-to-end tests: a real store (SQLite temp file; PostgreSQL
//! when `VOLTPLAN_TEST_POSTGRES_URL` is set), the sandbox cloud, real SMARD prices and a manual
//! clock moved forward by hand.
#![allow(dead_code)] // each test binary uses a different part

pub mod probe;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use uuid::Uuid;
use voltplan_clouds::SANDBOX_CLOUD;
use voltplan_clouds::{SandboxCloud, SandboxConfig, SandboxInitial, VehicleSpec};
use voltplan_core::account::Role;
use voltplan_core::planner::Plan;
use voltplan_core::vehicle::EvState;
use voltplan_core::{Clock, ManualClock, PriceSlot, PriceZone};
use voltplan_store::{
    ConnectOptions, OrgScope, Store, VehicleRecord, connect, new_building, new_user, new_vehicle,
};
use voltplan_test_support::{Backend, TestDatabase, backends};
use voltplan_worker::{Clouds, Worker, WorkerConfig};

pub const PRICES: &str =
    "../../data/prices/smard_grosshandelspreise_2024_quarterhour_grid_multizone_de.csv.gz";
pub const HOME: (f64, f64) = (52.52, 13.405);

// ---- fixtures ------------------------------------------------------------------------------

/// A store on a throw-away database (`voltplan-test-support`).
pub struct Db {
    pub store: Arc<dyn Store>,
    pub database: TestDatabase,
}

impl Db {
    pub async fn open(backend: &Backend) -> Db {
        let database = TestDatabase::create(backend, "voltplan-worker").await;
        let mut options = ConnectOptions::new(database.url());
        if let Backend::Postgres(_) = backend {
            options.max_connections = 32;
        }
        let store = connect(&options)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", backend.name()));
        Db { store, database }
    }

    pub async fn sqlite() -> Db {
        Db::open(&Backend::Sqlite).await
    }

    /// A fresh PostgreSQL database, or `None` (with a note) when the variable is not set.
    pub async fn postgres() -> Option<Db> {
        match Backend::postgres_if_configured() {
            Some(postgres) => Some(Db::open(&postgres).await),
            None => None,
        }
    }

    /// Every backend available: SQLite always, PostgreSQL when configured.
    pub async fn all() -> Vec<(&'static str, Db)> {
        let mut dbs = Vec::new();
        for backend in backends() {
            dbs.push((backend.name(), Db::open(&backend).await));
        }
        dbs
    }

    pub async fn drop_database(self) {
        drop(self.store);
        self.database.drop_database().await;
    }
}

/// The real 2024 DE-LU quarter-hour prices, parsed once per test binary.
pub fn real_prices() -> &'static [PriceSlot] {
    static PRICES_2024: OnceLock<Vec<PriceSlot>> = OnceLock::new();
    PRICES_2024.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(PRICES);
        voltplan_prices::import::import_file(
            &path,
            voltplan_prices::import::Format::Smard,
            Some("DE_LU"),
        )
        .expect("import SMARD prices")
        .points
    })
}

/// 18:00 in Berlin on Tuesday 12 November 2024 (17:00 UTC): the tests run on the prices' own
/// dates, so the shift onto them is zero.
pub fn evening() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 11, 12, 17, 0, 0)
        .single()
        .expect("valid instant")
}

/// 06:00 in Berlin the next morning.
pub fn morning() -> DateTime<Utc> {
    evening() + Duration::hours(12)
}

/// A 60 kWh / 11 kW sandbox car's record in DE-LU at the building, 80 % due by 06:00 and 20 % at
/// once (not yet stored).
pub fn sandbox_ev(
    org: OrgScope,
    user_id: Uuid,
    building_id: Uuid,
    at: DateTime<Utc>,
) -> VehicleRecord {
    let mut v = new_vehicle(org, user_id, at);
    v.building_id = Some(building_id);
    v.price_zone = PriceZone::DeLu;
    v.settings.is_smart_optimization_active = true;
    v.settings.charge_target_min = Some(20);
    v.settings.minimum_charge_limit = Some(80);
    v.settings.charge_deadline_at = NaiveTime::from_hms_opt(6, 0, 0);
    v.settings.battery_capacity_kwh = 60.0;
    v.settings.expected_max_charge_power = 11_000;
    v.settings.device_model.cloud_service = Some(SANDBOX_CLOUD.id);
    v
}

/// A fresh organisation with one user.
pub async fn org_with_user(
    store: &dyn Store,
    at: DateTime<Utc>,
) -> (OrgScope, voltplan_store::UserRecord) {
    let org = OrgScope::new(
        store
            .create_organisation("Test utility", at)
            .await
            .expect("org")
            .id,
    );
    let user = store
        .create_user(
            org,
            &new_user(
                org,
                format!("{}@example.com", Uuid::new_v4()),
                Role::User,
                at,
            ),
        )
        .await
        .expect("user");
    (org, user)
}

pub struct Env {
    pub db: Db,
    pub clock: Arc<ManualClock>,
    pub sandbox: Arc<SandboxCloud>,
    pub org: OrgScope,
    pub user_id: Uuid,
    pub building_id: Uuid,
}

impl Env {
    pub async fn new(db: Db, start: DateTime<Utc>) -> Env {
        let clock = Arc::new(ManualClock::new(start));
        let sandbox =
            Arc::new(SandboxCloud::new(clock.clone(), SandboxConfig::default()).expect("sandbox"));
        let store = &db.store;
        let (org, user) = org_with_user(store.as_ref(), start).await;
        let mut building = new_building(org, user.id, start);
        building.latitude = Some(HOME.0);
        building.longitude = Some(HOME.1);
        let building = store
            .create_building(org, &building)
            .await
            .expect("building");
        let from = start - Duration::days(8);
        let to = start + Duration::days(4);
        let window: Vec<PriceSlot> = real_prices()
            .iter()
            .filter(|p| p.start >= from && p.end <= to)
            .copied()
            .collect();
        assert!(
            window.len() >= 10 * 24,
            "prices cover the test window: {}",
            window.len()
        );
        store
            .upsert_prices(PriceZone::DeLu, None, "smard", &window, start)
            .await
            .expect("prices");
        Env {
            db,
            clock,
            sandbox,
            org,
            user_id: user.id,
            building_id: building.id,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.db.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn worker(&self, id: &str) -> Worker {
        self.worker_with(id, Clouds::new().with_sandbox(self.sandbox.clone()))
    }

    pub fn worker_with(&self, id: &str, clouds: Clouds) -> Worker {
        Worker::new(
            self.store().clone(),
            clouds,
            self.clock.clone(),
            WorkerConfig::new(id),
        )
    }

    /// A 60 kWh / 11 kW car at home, unplugged, with 80 % due by 06:00 and 20 % at once.
    pub async fn car(&self, level: f64) -> Uuid {
        let v = sandbox_ev(self.org, self.user_id, self.building_id, self.now());
        let v = self
            .store()
            .create_vehicle(self.org, &v)
            .await
            .expect("vehicle");
        let initial = SandboxInitial {
            battery_level: level,
            plugged_in: false,
            lat: HOME.0,
            lon: HOME.1,
            charge_limit: 100,
        };
        self.sandbox
            .add_vehicle(v.id, VehicleSpec::new(60.0, 11.0, 400.0), initial)
            .expect("sandbox car");
        v.id
    }

    pub async fn vehicle(&self, id: Uuid) -> VehicleRecord {
        self.store()
            .get_vehicle(self.org, self.user_id, id, false)
            .await
            .expect("vehicle")
    }

    pub async fn state(&self, id: Uuid) -> EvState {
        self.vehicle(id).await.state
    }

    pub async fn plan(&self, id: Uuid) -> Option<Plan> {
        self.store()
            .vehicle_plan(self.org, id)
            .await
            .expect("plan")
            .map(|p| serde_json::from_value(p).expect("plan JSON"))
    }

    pub async fn change_settings(
        &self,
        id: Uuid,
        change: impl FnOnce(&mut voltplan_core::vehicle::EvSettings) + Send + 'static,
    ) {
        self.store()
            .update_vehicle(
                self.org,
                self.user_id,
                id,
                Box::new(move |v| {
                    change(&mut v.settings);
                    Ok(())
                }),
            )
            .await
            .expect("update settings");
    }

    /// Advances the clock by `step` and cycles every vehicle due.
    pub async fn tick(&self, worker: &Worker, step: Duration) {
        self.clock.advance(step);
        drain(worker).await;
    }
}

/// Runs batches until nothing is due at the current instant.
pub async fn drain(worker: &Worker) {
    loop {
        let stats = worker.run_once().await.expect("run_once");
        assert_eq!(stats.failed, 0, "no cycle fails: {stats:?}");
        if stats.claimed == 0 {
            break;
        }
    }
}

/// Every command recorded for these cars.
pub async fn commands_of(env: &Env, cars: &[Uuid]) -> Vec<voltplan_store::fleet::CommandRecord> {
    let mut all = Vec::new();
    for car in cars {
        all.extend(env.store().list_commands(*car).await.expect("commands"));
    }
    all
}

pub fn covers(plan: Option<&Plan>, at: DateTime<Utc>) -> bool {
    plan.is_some_and(|p| {
        p.intervals
            .iter()
            .any(|i| i.start <= at && at < i.end && i.power_w > 0.0)
    })
}

pub fn price_at(at: DateTime<Utc>) -> f64 {
    real_prices()
        .iter()
        .find(|p| p.start <= at && at < p.end)
        .map_or(0.0, |p| p.price_eur_mwh)
}

pub fn minute() -> Duration {
    Duration::minutes(1)
}
