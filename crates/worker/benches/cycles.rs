//! Vehicle cycles per second one worker completes against the sandbox: 2,000 plugged-in cars,
//! every one due at each step, on SQLite (a temp file) and on PostgreSQL when
//! `VOLTPLAN_TEST_POSTGRES_URL` is set (a fresh database, dropped afterwards).
//!
//! `CARGO_TARGET_DIR=target-worker cargo bench -p voltplan-worker --bench cycles`
//! Optional: `VOLTPLAN_BENCH_CARS`, `VOLTPLAN_BENCH_STEPS`, `VOLTPLAN_BENCH_BATCH`,
//! `VOLTPLAN_BENCH_CONCURRENCY`, `VOLTPLAN_BENCH_WORKERS` (workers sharing the fleet; the time
//! columns then add up the workers' time).

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use voltplan_clouds::{SandboxCloud, SandboxConfig, SandboxInitial, VehicleSpec};
use voltplan_core::{ManualClock, PriceZone};
use voltplan_store::{Store, new_building};
use voltplan_test_support::backends;
use voltplan_worker::{Clouds, Worker, WorkerConfig};

// The tests' fixtures: one way to open a throw-away store and make an organisation with a user.
#[path = "../tests/common/mod.rs"]
mod common;

const PRICES: &str =
    "../../data/prices/smard_grosshandelspreise_2024_quarterhour_grid_multizone_de.csv.gz";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn bench(name: &str, store: Arc<dyn Store>) {
    let cars = env_or("VOLTPLAN_BENCH_CARS", 2000);
    let steps = env_or("VOLTPLAN_BENCH_STEPS", 10);
    let start = Utc
        .with_ymd_and_hms(2024, 11, 12, 17, 0, 0)
        .single()
        .expect("instant");
    let clock = Arc::new(ManualClock::new(start));
    let sandbox =
        Arc::new(SandboxCloud::new(clock.clone(), SandboxConfig::default()).expect("sandbox"));

    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(PRICES);
    let prices = voltplan_prices::import::import_file(
        &path,
        voltplan_prices::import::Format::Smard,
        Some("DE_LU"),
    )
    .expect("prices")
    .points;
    let window: Vec<_> = prices
        .into_iter()
        .filter(|p| p.start >= start - Duration::days(8) && p.end <= start + Duration::days(3))
        .collect();
    store
        .upsert_prices(PriceZone::DeLu, None, "smard", &window, start)
        .await
        .expect("upsert prices");

    let (org, user) = common::org_with_user(store.as_ref(), start).await;
    let mut building = new_building(org, user.id, start);
    building.latitude = Some(52.52);
    building.longitude = Some(13.405);
    let building = store
        .create_building(org, &building)
        .await
        .expect("building");
    for k in 0..cars {
        let v = common::sandbox_ev(org, user.id, building.id, start);
        let v = store.create_vehicle(org, &v).await.expect("vehicle");
        let initial = SandboxInitial {
            battery_level: 25.0 + (k % 40) as f64,
            plugged_in: true,
            lat: 52.52,
            lon: 13.405,
            charge_limit: 100,
        };
        sandbox
            .add_vehicle(v.id, VehicleSpec::new(60.0, 11.0, 400.0), initial)
            .expect("sandbox car");
    }

    // Several workers share the fleet through leases, as separate processes would.
    let workers: Vec<Worker> = (0..env_or("VOLTPLAN_BENCH_WORKERS", 1).max(1))
        .map(|k| {
            let mut config = WorkerConfig::new(format!("bench-{k}"));
            config.batch_size = env_or("VOLTPLAN_BENCH_BATCH", config.batch_size as usize) as i64;
            config.concurrency = env_or("VOLTPLAN_BENCH_CONCURRENCY", config.concurrency);
            Worker::new(
                store.clone(),
                Clouds::new().with_sandbox(sandbox.clone()),
                clock.clone(),
                config,
            )
        })
        .collect();
    let (batch, concurrency) = (
        workers[0].config().batch_size,
        workers[0].config().concurrency,
    );

    let mut cycles = 0usize;
    let mut commands = 0usize;
    let mut replans = 0usize;
    let (mut claim, mut cycle, mut finish) = (
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    );
    let began = Instant::now();
    for _ in 0..steps {
        let drained = futures::future::join_all(workers.iter().map(|worker| async move {
            let mut all = Vec::new();
            loop {
                let stats = worker.run_once().await.expect("run_once");
                all.push(stats);
                if stats.claimed == 0 {
                    break all;
                }
            }
        }))
        .await;
        for stats in drained.iter().flatten() {
            cycles += stats.completed;
            commands += stats.commands_sent;
            replans += stats.replanned;
            claim += stats.claim_time;
            cycle += stats.cycle_time;
            finish += stats.finish_time;
        }
        // Every car is due again after its longest interval.
        clock.advance(Duration::minutes(5));
    }
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "{name}: {cycles} cycles ({cars} cars × {steps} steps, {} worker(s), batch {batch}, concurrency {concurrency}, {commands} commands, {replans} plans) \
         in {elapsed:.2} s = {:.0} cycles/s (claim {:.2} s, cycles {:.2} s, finish {:.2} s)",
        workers.len(),
        cycles as f64 / elapsed,
        claim.as_secs_f64(),
        cycle.as_secs_f64(),
        finish.as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    for backend in backends() {
        let db = common::Db::open(&backend).await;
        bench(backend.name(), db.store.clone()).await;
        db.drop_database().await;
    }
}
