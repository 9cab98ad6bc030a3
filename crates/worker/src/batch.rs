//! The worker's outer loop: claim a batch of due vehicles, cycle them `concurrency` at a time,
//! write the batch's results in one fenced transaction.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use tracing::Instrument;
use voltplan_core::Clock;
use voltplan_store::Store;

use crate::cycle::{CycleResult, Cycler};
use crate::device::DeviceKind;
use crate::error::WorkerError;
use crate::ev::ElectricVehicles;
use crate::wallbox::Wallboxes;

use crate::clouds::Clouds;
use crate::config::WorkerConfig;
use crate::grid;
use crate::price_book;
use crate::tariff;

/// What one [`Worker::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleStats {
    /// Vehicles claimed.
    pub claimed: usize,
    /// Cycles whose result was written.
    pub completed: usize,
    /// Cycles whose lease had been taken over before they finished (nothing written).
    pub lost_leases: usize,
    /// Cycles that failed on the store (retried when the lease expires).
    pub failed: usize,
    /// Commands sent to clouds.
    pub commands_sent: usize,
    /// Cycles that re-planned (the others kept their plan).
    pub replanned: usize,
    /// Cycles that did not read the car because its cloud's call budget was spent (rescheduled).
    pub deferred: usize,
    /// Wall time spent claiming (with the price books), cycling, and writing the batch's results.
    pub claim_time: std::time::Duration,
    pub cycle_time: std::time::Duration,
    pub finish_time: std::time::Duration,
    /// Grid groups planned jointly.
    pub grid_groups_planned: usize,
}

impl CycleStats {
    /// Adds another batch's counts and times (a run covers each kind of device).
    fn add(&mut self, other: CycleStats) {
        self.claimed += other.claimed;
        self.completed += other.completed;
        self.lost_leases += other.lost_leases;
        self.failed += other.failed;
        self.commands_sent += other.commands_sent;
        self.replanned += other.replanned;
        self.deferred += other.deferred;
        self.claim_time += other.claim_time;
        self.cycle_time += other.cycle_time;
        self.finish_time += other.finish_time;
    }
}

/// One worker process's view of the fleet.
pub struct Worker {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clouds: Clouds,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: WorkerConfig,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .field("clouds", &self.clouds)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        clouds: Clouds,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
    ) -> Self {
        Self {
            store,
            clouds,
            clock,
            config,
        }
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Plans due grid groups jointly, then claims one batch of due devices of each kind (EVs,
    /// then wallboxes) and cycles them, `concurrency` at a time. Groups go first: a vehicle that
    /// plugged in during the last loop finds its windows ready.
    pub async fn run_once(&self) -> Result<CycleStats, WorkerError> {
        let grid_groups =
            grid::run_grid_groups(self.store.as_ref(), &self.config, self.clock.now()).await?;
        let vehicles = ElectricVehicles {
            store: self.store.as_ref(),
            clouds: &self.clouds,
        };
        let mut stats = self.run_batch(&vehicles).await?;
        let wallboxes = Wallboxes {
            store: self.store.as_ref(),
        };
        stats.add(self.run_batch(&wallboxes).await?);
        stats.grid_groups_planned = grid_groups;
        Ok(stats)
    }

    /// One batch of one kind of device: claim, price books, cycles, one fenced finish.
    async fn run_batch<K: DeviceKind>(&self, kind: &K) -> Result<CycleStats, WorkerError> {
        let now = self.clock.now();
        let began = std::time::Instant::now();
        let config = &self.config;
        let claimed = kind
            .claim(
                self.store.as_ref(),
                &config.worker_id,
                now,
                config.lease_for,
                config.batch_size,
            )
            .await?;
        let mut stats = CycleStats {
            claimed: claimed.len(),
            ..CycleStats::default()
        };
        if claimed.is_empty() {
            return Ok(stats);
        }
        let keys = claimed.iter().map(K::price_key);
        let books = price_book::load_price_books(self.store.as_ref(), keys, now).await?;
        let owners: Vec<_> = claimed.iter().map(K::owner).collect();
        let pricing = tariff::load_pricing(self.store.as_ref(), &owners, &books).await?;
        stats.claim_time = began.elapsed();
        let began = std::time::Instant::now();
        let cycler = Cycler {
            kind,
            clock: self.clock.as_ref(),
            config,
        };
        let results: Vec<Result<CycleResult<K::Outcome>, WorkerError>> =
            futures::stream::iter(claimed.into_iter().zip(pricing))
                .map(|(device, pricing)| {
                    let book = books.get(&K::price_key(&device)).cloned();
                    let lease = K::lease(&device);
                    let span = tracing::info_span!(
                        "vehicle_cycle",
                        vehicle_id = %lease.vehicle_id,
                        epoch = lease.epoch,
                        worker = %config.worker_id
                    );
                    async move { cycler.cycle(device, book, pricing).await }.instrument(span)
                })
                .buffer_unordered(config.concurrency.max(1))
                .collect()
                .await;
        stats.cycle_time = began.elapsed();
        let began = std::time::Instant::now();
        let mut finishes = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(r) => {
                    stats.commands_sent += r.commands_sent;
                    stats.replanned += usize::from(r.replanned);
                    stats.deferred += usize::from(r.deferred);
                    finishes.push(r.finish);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "vehicle cycle failed; retried when its lease expires");
                    stats.failed += 1;
                }
            }
        }
        // One commit for the whole batch: on PostgreSQL a commit per vehicle dominated the cycle.
        let written = kind.finish(self.store.as_ref(), &finishes).await?;
        stats.finish_time = began.elapsed();
        for ((lease, _), written) in finishes.iter().zip(written) {
            if written {
                stats.completed += 1;
            } else {
                tracing::warn!(vehicle_id = %lease.vehicle_id, "lease lost before the cycle finished; nothing written");
                stats.lost_leases += 1;
            }
        }
        Ok(stats)
    }

    /// Runs batches until `shutdown` resolves, then releases this worker's leases so other
    /// workers need not wait for them to expire.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        tokio::pin!(shutdown);
        loop {
            let idle = tokio::select! {
                () = &mut shutdown => break,
                result = self.run_once() => match result {
                    Ok(stats) => stats.claimed == 0 && stats.grid_groups_planned == 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming vehicles failed");
                        true
                    }
                },
            };
            if idle {
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(self.config.idle_wait) => {}
                }
            }
        }
        let released = self.store.release_leases(&self.config.worker_id).await?;
        tracing::info!(released, "worker stopped");
        Ok(())
    }
}
