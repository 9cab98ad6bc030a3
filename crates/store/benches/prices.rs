//! Price store throughput: importing a year of every zone of the SMARD 2024 quarter-hour file,
//! and the latency of reading a 48-hour window. Plain `Instant` timing (`harness = false`).
//!
//! ```sh
//! CARGO_TARGET_DIR=target-prices cargo bench -p voltplan-store --bench prices
//! VOLTPLAN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test CARGO_TARGET_DIR=target-prices \
//!     cargo bench -p voltplan-store --bench prices
//! ```

use chrono::{Duration, Utc};
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;
use voltplan_core::{PriceSlot, PriceZone};
use voltplan_prices::{Format, import_file_all_columns};
use voltplan_store::{ConnectOptions, OrgScope, Store, connect};
use voltplan_test_support::{Backend, TestDatabase, backends};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/prices/smard_grosshandelspreise_2024_quarterhour_grid_multizone_de.csv.gz"
);
const ROUNDS: usize = 3;
const READS: usize = 1_000;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Target {
    store: Arc<dyn Store>,
    database: TestDatabase,
}

async fn open(backend: &Backend) -> BenchResult<Target> {
    let database = TestDatabase::create(backend, "voltplan-bench").await;
    let store = connect(&ConnectOptions::new(database.url())).await?;
    Ok(Target { store, database })
}

impl Target {
    async fn close(self) {
        drop(self.store);
        self.database.drop_database().await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn run(backend: &Backend, series: &[(PriceZone, Vec<PriceSlot>)]) -> BenchResult<()> {
    let points: usize = series.iter().map(|(_, slots)| slots.len()).sum();
    let received_at = Utc::now();
    let mut best_fresh = f64::MAX;
    let mut best_again = f64::MAX;
    let mut kept = None;
    for round in 0..ROUNDS {
        let target = open(backend).await?;
        let started = Instant::now();
        for (zone, slots) in series {
            target
                .store
                .upsert_prices(*zone, None, "file:bench", slots, received_at)
                .await?;
        }
        best_fresh = best_fresh.min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        for (zone, slots) in series {
            let summary = target
                .store
                .upsert_prices(*zone, None, "file:bench", slots, received_at)
                .await?;
            assert_eq!(summary.written, 0, "a re-import must change nothing");
        }
        best_again = best_again.min(started.elapsed().as_secs_f64());
        if round + 1 == ROUNDS {
            kept = Some(target);
        } else {
            target.close().await;
        }
    }
    println!(
        "{}: import {points} points into an empty store: best {:.0} ms = {:.0} points/s; \
         re-import (all unchanged): best {:.0} ms = {:.0} points/s",
        backend.name(),
        best_fresh * 1e3,
        points as f64 / best_fresh,
        best_again * 1e3,
        points as f64 / best_again
    );

    let Some(target) = kept else {
        return Ok(());
    };
    // The densest series (quarter-hours) read as the API does: with an organisation scope.
    let Some((zone, slots)) = series.iter().max_by_key(|(_, slots)| slots.len()) else {
        return Ok(());
    };
    let org = OrgScope::new(Uuid::now_v7());
    let first = slots.first().map(|s| s.start).ok_or("empty series")?;
    let hours = (slots.last().map(|s| s.end).ok_or("empty series")? - first).num_hours() - 48;
    let mut latencies = Vec::with_capacity(READS);
    let mut returned = 0usize;
    for i in 0..READS {
        // A deterministic spread of window starts over the year.
        let offset = (i as i64 * 7_919) % hours.max(1);
        let from = first + Duration::hours(offset);
        let started = Instant::now();
        let read = target
            .store
            .read_prices(*zone, Some(org), from, from + Duration::hours(48))
            .await?;
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        returned += read.len();
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}: read 48 h of {zone} ({} points on average), {READS} reads: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        backend.name(),
        returned / READS,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    target.close().await;
    Ok(())
}

fn main() -> BenchResult<()> {
    let reports = import_file_all_columns(FILE, Format::Smard)?;
    // Each column goes under its own zone. The mapping is arbitrary (the file also has zones
    // Podero does not list, such as NL or PL): the store only sees (zone, slots).
    let series: Vec<(PriceZone, Vec<PriceSlot>)> = reports
        .into_iter()
        .zip(PriceZone::ALL)
        .map(|(report, zone)| (zone, report.points))
        .collect();
    println!(
        "{} columns, {} points",
        series.len(),
        series.iter().map(|(_, s)| s.len()).sum::<usize>()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for backend in backends() {
            run(&backend, &series).await?;
        }
        Ok(())
    })
}
