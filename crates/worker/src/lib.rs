//! Voltplan's worker: the live loop that makes plugged-in cars charge in the cheap slots.
//!
//! Every cycle of one vehicle runs, in this order (see `docs/worker.md` for the rules):
//!
//! 1. **read** the car through its cloud ([`Clouds`]); an unknown sandbox car is registered;
//! 2. **monitor** ([`monitor`]): the reading becomes `EvState` fields, metered energy, consumption
//!    and a row of the `/data` time series;
//! 3. **session** ([`session`]): plug-in opens a charging session, unplug closes it;
//! 4. **boost** ([`boost`]): a requested or armed boost is taken up, a running one is ended;
//! 5. **plan**: re-planned when its inputs changed or the car drifted away from it;
//! 6. **steer** ([`steer`]): start or stop at planned switches, confirmed by a later reading,
//!    retried with backoff, falling back to letting the car charge when steering keeps failing;
//! 7. **schedule** ([`schedule`]): the next cycle, adaptive and never after the next switch.
//!
//! Many workers share a fleet through leases ([`voltplan_store::FleetStore::claim_vehicles`]); a
//! cycle's writes are fenced by the lease epoch, and every command carries an idempotency key
//! derived from the decision (not the lease), so a worker taking over never sends a command twice.

pub mod boost;
pub mod budget;
pub mod monitor;
pub mod price_fetch;
pub mod recompute;
pub mod runtime;
pub mod schedule;
pub mod session;
pub mod steer;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use tracing::Instrument;
use uuid::Uuid;
use voltplan_clouds::{
    CloudError, CloudVehicleRef, SandboxCloud, SandboxInitial, VehicleCloud, VehicleReading,
    VehicleSpec, embedded_catalogue, find_model,
};
use voltplan_core::planner::{Plan, PlanInput};
use voltplan_core::vehicle::{BoostState, SANDBOX_CLOUD, StatusLevel};
use voltplan_core::{Clock, PriceSlot, PriceZone};
use voltplan_store::fleet::{ClaimedVehicle, CycleOutcome};
use voltplan_store::{OrgScope, Store, StoreError};

use budget::{CallBudget, CallKind, TokenBucket};
use runtime::VehicleRuntime;

/// How often and how hard the worker works. Durations are simulated time (the injected clock),
/// except `idle_wait`, which is real time between empty polls in [`Worker::run`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in leases and command records; unique per running worker.
    pub worker_id: String,
    /// Vehicles claimed per batch.
    pub batch_size: i64,
    /// Vehicle cycles run at the same time within a batch.
    pub concurrency: usize,
    /// How long a claim holds a vehicle; a killed worker's vehicles are taken over after it.
    pub lease_for: Duration,
    /// Poll interval of an unplugged car.
    pub idle_interval: Duration,
    /// Poll interval of a plugged-in car away from any planned switch.
    pub plugged_interval: Duration,
    /// Poll interval near a planned switch, while a command awaits confirmation or a boost runs.
    pub active_interval: Duration,
    /// "Near" a planned switch: closer than this.
    pub near_switch: Duration,
    /// Poll interval of a car whose authorisation was revoked (only a human can fix it).
    pub revoked_interval: Duration,
    /// Never cycle a vehicle again sooner than this.
    pub min_interval: Duration,
    /// After a command's expected effect, how long to wait for a reading to confirm it.
    pub confirm_grace: Duration,
    /// First retry delay after a failed call; doubles per consecutive failure.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Consecutive steering failures that turn `steering_status` to `error` and start the fallback.
    pub steering_failures_for_error: u32,
    /// Consecutive read failures that turn `monitoring_status` to `error`.
    pub read_failures_for_error: u32,
    /// Re-plan when the battery is this many percentage points away from the plan's expectation.
    pub replan_drift_pct: f64,
    /// Plans aim to reach the target this long before the deadline when it fits, so a car that
    /// charged a little short can be topped up before the deadline (see `steer::tops_up`).
    pub ready_margin: Duration,
    /// Real time to wait in [`Worker::run`] when nothing was due.
    pub idle_wait: std::time::Duration,
}

impl WorkerConfig {
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            batch_size: 512,
            concurrency: 64,
            lease_for: Duration::minutes(2),
            idle_interval: Duration::minutes(5),
            plugged_interval: Duration::minutes(5),
            active_interval: Duration::minutes(1),
            near_switch: Duration::minutes(10),
            revoked_interval: Duration::minutes(15),
            min_interval: Duration::seconds(5),
            confirm_grace: Duration::minutes(2),
            retry_base: Duration::seconds(30),
            retry_max: Duration::minutes(10),
            steering_failures_for_error: 3,
            read_failures_for_error: 3,
            replan_drift_pct: 2.0,
            ready_margin: Duration::minutes(15),
            idle_wait: std::time::Duration::from_millis(500),
        }
    }
}

/// The vehicle clouds the worker can reach, by cloud-service id (`device_model.cloud_service`).
#[derive(Clone, Default)]
pub struct Clouds {
    by_service: HashMap<Uuid, Arc<dyn VehicleCloud>>,
    /// Used for vehicles without a `cloud_service`.
    default_service: Option<Uuid>,
    /// Kept typed so unknown sandbox cars can be registered (the sandbox forgets on restart).
    sandbox: Option<Arc<SandboxCloud>>,
    catalogue: Arc<Vec<VehicleSpec>>,
    /// Call budgets by service; a service without one is called as often as cycles need.
    budgets: HashMap<Uuid, CallBudget>,
    /// The budgets' buckets, shared by the clones of this value (one worker's cycles).
    buckets: Arc<std::sync::Mutex<HashMap<Uuid, TokenBucket>>>,
}

impl std::fmt::Debug for Clouds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clouds")
            .field("services", &self.by_service.keys().collect::<Vec<_>>())
            .field("default_service", &self.default_service)
            .field("budgets", &self.budgets)
            .finish_non_exhaustive()
    }
}

impl Clouds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the sandbox under [`SANDBOX_CLOUD`]'s id and makes it the default service.
    pub fn with_sandbox(mut self, sandbox: Arc<SandboxCloud>) -> Self {
        self.by_service.insert(SANDBOX_CLOUD.id, sandbox.clone());
        self.default_service.get_or_insert(SANDBOX_CLOUD.id);
        self.sandbox = Some(sandbox);
        // Without the catalogue, registration falls back to the partner's capacity and power.
        self.catalogue = Arc::new(embedded_catalogue().unwrap_or_default());
        self
    }

    pub fn with_cloud(mut self, service_id: Uuid, cloud: Arc<dyn VehicleCloud>) -> Self {
        self.by_service.insert(service_id, cloud);
        self
    }

    pub fn with_default_service(mut self, service_id: Uuid) -> Self {
        self.default_service = Some(service_id);
        self
    }

    /// Never call this service faster than `budget` (see [`budget`]).
    pub fn with_budget(mut self, service_id: Uuid, budget: CallBudget) -> Self {
        self.budgets.insert(service_id, budget);
        self
    }

    /// Takes a call from the service's budget, or says when to try again.
    pub(crate) fn take_call(
        &self,
        service: Uuid,
        kind: CallKind,
        now: DateTime<Utc>,
    ) -> Result<(), DateTime<Utc>> {
        let Some(budget) = self.budgets.get(&service) else {
            return Ok(());
        };
        // A poisoned lock only means another cycle panicked mid-update of plain numbers.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets
            .entry(service)
            .or_insert_with(|| TokenBucket::new(*budget, now))
            .try_take(kind, now)
    }

    fn service_of(&self, vehicle: &voltplan_store::VehicleRecord) -> Option<Uuid> {
        vehicle
            .settings
            .device_model
            .cloud_service
            .or(self.default_service)
    }

    fn cloud(&self, service: Uuid) -> Option<&Arc<dyn VehicleCloud>> {
        self.by_service.get(&service)
    }

    /// Registers a car the sandbox does not know (it keeps cars in memory only): the catalogue
    /// model named by `device_model`, else the partner's capacity and power; the last known level;
    /// plugged out.
    fn register_in_sandbox(
        &self,
        vehicle: &voltplan_store::VehicleRecord,
        home: Option<(f64, f64)>,
    ) -> bool {
        let Some(sandbox) = &self.sandbox else {
            return false;
        };
        let settings = &vehicle.settings;
        let state = &vehicle.state;
        let model = &settings.device_model;
        let spec = model
            .manufacturer
            .as_deref()
            .zip(model.model.as_deref())
            .and_then(|(make, name)| find_model(&self.catalogue, make, name))
            .cloned()
            .unwrap_or_else(|| {
                let capacity = state
                    .reported_battery_capacity_kwh
                    .filter(|c| *c > 0.0)
                    .unwrap_or(if settings.battery_capacity_kwh > 0.0 {
                        settings.battery_capacity_kwh
                    } else {
                        60.0
                    });
                let power_kw = f64::from(settings.expected_max_charge_power.max(1380)) / 1000.0;
                VehicleSpec::new(capacity, power_kw, capacity * 6.5)
            });
        let (lat, lon) = state
            .latitude
            .zip(state.longitude)
            .or(home)
            .unwrap_or((0.0, 0.0));
        let initial = SandboxInitial {
            battery_level: state
                .battery_level
                .map_or(50.0, |l| f64::from(l.clamp(0, 100))),
            plugged_in: false,
            lat,
            lon,
            charge_limit: state.charge_target_max.unwrap_or(100).clamp(1, 100),
        };
        match sandbox.add_vehicle(vehicle.id, spec, initial) {
            Ok(_) => true,
            // Another cycle registered it meanwhile: just as good.
            Err(voltplan_clouds::SandboxError::AlreadyExists(_)) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot register the vehicle in the sandbox");
                false
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode the worker's runtime document: {0}")]
    Encode(#[from] serde_json::Error),
}

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
}

/// One worker process's view of the fleet.
pub struct Worker {
    store: Arc<dyn Store>,
    clouds: Clouds,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .field("clouds", &self.clouds)
            .finish_non_exhaustive()
    }
}

/// Prices for one (zone, organisation), read once per batch.
pub struct PriceBook {
    pub slots: Vec<PriceSlot>,
    /// Changes when new prices are published (the end of coverage moves): a re-plan trigger.
    pub coverage_end: Option<DateTime<Utc>>,
}

impl PriceBook {
    /// The price of the slot containing `at`, if published.
    pub fn price_at(&self, at: DateTime<Utc>) -> Option<f64> {
        let i = self.slots.partition_point(|s| s.end <= at);
        self.slots
            .get(i)
            .filter(|s| s.start <= at)
            .map(|s| s.price_eur_mwh)
    }

    /// Cost in EUR of `energy_kwh` drawn evenly over `[from, to)`, split across the slots it spans.
    /// Unpriced stretches cost nothing (and are rare: the planner needs prices too).
    pub fn cost_of(&self, energy_kwh: f64, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        if energy_kwh <= 0.0 {
            return 0.0;
        }
        let total = (to - from).num_milliseconds() as f64;
        if total <= 0.0 {
            return energy_kwh * self.price_at(to).unwrap_or(0.0) / 1000.0;
        }
        let first = self.slots.partition_point(|s| s.end <= from);
        let mut cost = 0.0;
        for slot in self.slots[first..].iter().take_while(|s| s.start < to) {
            let overlap = (slot.end.min(to) - slot.start.max(from)).num_milliseconds() as f64;
            if overlap > 0.0 {
                cost += energy_kwh * (overlap / total) * slot.price_eur_mwh / 1000.0;
            }
        }
        cost
    }

    /// Cost of drawing `energy_kwh` at `power_kw` from `start` on: the session baseline.
    pub fn cost_charging_at_once(
        &self,
        energy_kwh: f64,
        power_kw: f64,
        start: DateTime<Utc>,
    ) -> f64 {
        if energy_kwh <= 0.0 || power_kw <= 0.0 {
            return 0.0;
        }
        let first = self.slots.partition_point(|s| s.end <= start);
        let mut left = energy_kwh;
        let mut cost = 0.0;
        for slot in &self.slots[first..] {
            if left <= 0.0 {
                break;
            }
            let hours = (slot.end - slot.start.max(start)).num_milliseconds() as f64 / 3_600_000.0;
            let take = (hours * power_kw).min(left);
            cost += take * slot.price_eur_mwh / 1000.0;
            left -= take;
        }
        cost
    }
}

/// How far back the planner's forecast looks (same local time on the previous 7 days).
const PRICE_LOOKBACK: Duration = Duration::days(8);
/// How far ahead the planner may plan (a weekly deadline is at most 7 days away).
const PRICE_LOOKAHEAD: Duration = Duration::days(8);

/// What the read step got.
enum ReadOutcome {
    Reading(VehicleReading),
    Failed(CloudError),
    NoCloud(String),
    /// The cloud's call budget is spent: not read; try again then.
    Deferred(DateTime<Utc>),
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

    /// Claims one batch of due vehicles and cycles it, `concurrency` at a time.
    pub async fn run_once(&self) -> Result<CycleStats, WorkerError> {
        let now = self.clock.now();
        let began = std::time::Instant::now();
        let claimed = self
            .store
            .claim_vehicles(
                &self.config.worker_id,
                now,
                self.config.lease_for,
                self.config.batch_size,
            )
            .await?;
        let mut stats = CycleStats {
            claimed: claimed.len(),
            ..CycleStats::default()
        };
        if claimed.is_empty() {
            return Ok(stats);
        }
        let books = self.price_books(&claimed, now).await?;
        stats.claim_time = began.elapsed();
        let began = std::time::Instant::now();
        let results: Vec<Result<CycleResult, WorkerError>> = futures::stream::iter(claimed)
            .map(|vehicle| {
                let book = books
                    .get(&(vehicle.vehicle.price_zone, vehicle.vehicle.org_id))
                    .cloned();
                let span = tracing::info_span!(
                    "vehicle_cycle",
                    vehicle_id = %vehicle.vehicle.id,
                    epoch = vehicle.lease.epoch,
                    worker = %self.config.worker_id
                );
                async move { self.cycle(vehicle, book).await }.instrument(span)
            })
            .buffer_unordered(self.config.concurrency.max(1))
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
        let written = self.store.finish_cycles(&finishes).await?;
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
                    Ok(stats) => stats.claimed == 0,
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

    async fn price_books(
        &self,
        claimed: &[ClaimedVehicle],
        now: DateTime<Utc>,
    ) -> Result<HashMap<(PriceZone, Uuid), Arc<PriceBook>>, WorkerError> {
        let mut books = HashMap::new();
        for c in claimed {
            let key = (c.vehicle.price_zone, c.vehicle.org_id);
            if books.contains_key(&key) {
                continue;
            }
            // A session may have started before the look-back: its baseline needs those prices.
            let from = now - PRICE_LOOKBACK;
            let stored = voltplan_store::read_zone_prices(
                self.store.as_ref(),
                key.0,
                Some(OrgScope::new(key.1)),
                from,
                now + PRICE_LOOKAHEAD,
            )
            .await?;
            let slots: Vec<PriceSlot> = stored.iter().map(|p| p.slot()).collect();
            let coverage_end = slots.last().map(|s| s.end);
            books.insert(
                key,
                Arc::new(PriceBook {
                    slots,
                    coverage_end,
                }),
            );
        }
        Ok(books)
    }

    async fn read(&self, claimed: &ClaimedVehicle, now: DateTime<Utc>) -> ReadOutcome {
        let vehicle = &claimed.vehicle;
        let Some(service) = self.clouds.service_of(vehicle) else {
            return ReadOutcome::NoCloud("the vehicle names no cloud service".into());
        };
        let Some(cloud) = self.clouds.cloud(service) else {
            return ReadOutcome::NoCloud(format!("no cloud registered for service {service}"));
        };
        let reference = cloud_ref(vehicle);
        if let Err(retry_at) = self.clouds.take_call(service, CallKind::Read, now) {
            return ReadOutcome::Deferred(retry_at);
        }
        match cloud.read_state(&reference).await {
            Err(CloudError::UnknownVehicle) if service == SANDBOX_CLOUD.id => {
                if let Err(retry_at) = self.clouds.take_call(service, CallKind::Read, now) {
                    return ReadOutcome::Deferred(retry_at);
                }
                if self.clouds.register_in_sandbox(vehicle, claimed.home) {
                    tracing::info!("registered the vehicle in the sandbox");
                    match cloud.read_state(&reference).await {
                        Ok(r) => ReadOutcome::Reading(r),
                        Err(e) => ReadOutcome::Failed(e),
                    }
                } else {
                    ReadOutcome::Failed(CloudError::UnknownVehicle)
                }
            }
            Ok(r) => ReadOutcome::Reading(r),
            Err(e) => ReadOutcome::Failed(e),
        }
    }

    async fn cycle(
        &self,
        claimed: ClaimedVehicle,
        book: Option<Arc<PriceBook>>,
    ) -> Result<CycleResult, WorkerError> {
        let now = self.clock.now();
        let cfg = &self.config;
        let empty_book = PriceBook {
            slots: Vec::new(),
            coverage_end: None,
        };
        let book: &PriceBook = book.as_deref().unwrap_or(&empty_book);
        let mut rt = match claimed
            .runtime
            .as_deref()
            .map(serde_json::from_str::<VehicleRuntime>)
        {
            Some(Ok(rt)) => rt,
            Some(Err(error)) => {
                // Losing the runtime loses the open session's bookkeeping, not the car's safety:
                // the next readings rebuild it.
                tracing::warn!(%error, "unreadable runtime document; starting afresh");
                VehicleRuntime::default()
            }
            None => VehicleRuntime::default(),
        };
        let settings = &claimed.vehicle.settings;
        let mut state = claimed.vehicle.state.clone();
        let reading = match self.read(&claimed, now).await {
            ReadOutcome::Reading(r) => r,
            ReadOutcome::Failed(error) => {
                monitor::apply_read_failure(&mut state, &mut rt, &error, now, cfg);
                session::note_read_failure(&mut rt);
                let next = schedule::after_read_failure(&rt, &state, &error, now, cfg);
                return self.finish_unread(&claimed, state, rt, next);
            }
            ReadOutcome::Deferred(retry_at) => {
                // Nothing was learnt: everything stays as it was, only the next cycle moves.
                tracing::debug!(%retry_at, "cloud call budget spent; read deferred");
                let next = retry_at.max(now + cfg.min_interval);
                let mut result = self.finish_unread(&claimed, state, rt, next)?;
                result.deferred = true;
                return Ok(result);
            }
            ReadOutcome::NoCloud(reason) => {
                monitor::apply_no_cloud(&mut state, &reason, now);
                let next = now + cfg.revoked_interval;
                return self.finish_unread(&claimed, state, rt, next);
            }
        };

        let observed =
            monitor::apply_reading(&mut state, &mut rt, &reading, claimed.home, settings, now);
        let transition = session::track(&mut rt, &mut state, &observed, &claimed, book);
        // Sessions and readings are written with the fenced finish: a worker that lost its lease
        // writes none of them.
        let mut sessions = Vec::new();
        if let Some(closed) = transition.closed.clone() {
            sessions.push(closed);
        }
        let outcome_flags = boost::apply(
            settings,
            &mut state,
            &observed,
            transition.plugged_in_now,
            now,
        );

        // An unreadable plan (e.g. written by an older version) is simply made again.
        let mut plan: Option<Plan> = claimed
            .plan
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok());
        // Plan with the state as it is now (boost included: the planner reads boost_state).
        let inputs_hash =
            runtime::plan_inputs_hash(settings, &state, &rt, &observed, book.coverage_end);
        let drifted = plan
            .as_ref()
            .is_some_and(|p| plan_drifted(p, observed.level_pct, now, cfg.replan_drift_pct));
        let deadline_passed = plan
            .as_ref()
            .and_then(|p| p.deadline)
            .is_some_and(|d| d <= now);
        let replan = rt.plan_inputs_hash != Some(inputs_hash)
            || drifted
            || deadline_passed
            || plan.is_none();
        if replan {
            plan = match PlanInput::from_ev(
                settings,
                &state,
                claimed.home,
                claimed.vehicle.price_zone,
            )
            .map(|mut input| {
                // Plan from the level the car reports, not the whole percent the API shows: a
                // car at 79.6 % is not at its 80 % target.
                if let Some(level) = observed.level_pct {
                    input.vehicle.battery_level_pct = level;
                }
                input
            })
            .and_then(|input| input.plan_with_margin(now, &book.slots, cfg.ready_margin))
            {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot plan; the car is left to charge on its own");
                    None
                }
            };
            rt.plan_inputs_hash = Some(inputs_hash);
            session::note_plan(&mut rt, plan.as_ref());
        }

        let service = self.clouds.service_of(&claimed.vehicle);
        let steer_ctx = steer::SteerContext {
            store: self.store.as_ref(),
            cloud: service
                .and_then(|s| self.clouds.cloud(s))
                .map(|c| c.as_ref()),
            clouds: &self.clouds,
            service,
            reference: cloud_ref(&claimed.vehicle),
            lease: &claimed.lease,
            config: cfg,
            now,
        };
        let steered = steer::steer(
            &steer_ctx,
            &mut state,
            &mut rt,
            settings,
            plan.as_ref(),
            &observed,
        )
        .await?;

        if let Some(open) = session::update(&mut rt, &mut state, &observed, book, now, &claimed) {
            sessions.push(open);
        }
        let reading = monitor::reading_to_report(&claimed, &mut rt, &observed, book, now);

        let next =
            schedule::next_cycle_at(&state, &rt, settings, plan.as_ref(), &observed, now, cfg);
        // A kept plan is written back as it was read, not encoded again.
        let plan_json = if replan {
            plan.as_ref().map(serde_json::to_string).transpose()?
        } else {
            claimed.plan.clone()
        };
        let mut result = self.finish(
            &claimed,
            state,
            rt,
            plan_json,
            next,
            outcome_flags,
            steered,
            (sessions, reading),
        )?;
        result.replanned = replan;
        Ok(result)
    }

    /// The end of a cycle that got no reading: the plan stays as it was; no boost, command,
    /// session or `/data` row.
    fn finish_unread(
        &self,
        claimed: &ClaimedVehicle,
        state: voltplan_core::vehicle::EvState,
        rt: VehicleRuntime,
        next_cycle_at: DateTime<Utc>,
    ) -> Result<CycleResult, WorkerError> {
        self.finish(
            claimed,
            state,
            rt,
            claimed.plan.clone(),
            next_cycle_at,
            boost::BoostEffects::default(),
            steer::Steered::default(),
            (Vec::new(), None),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        claimed: &ClaimedVehicle,
        state: voltplan_core::vehicle::EvState,
        rt: VehicleRuntime,
        plan_json: Option<String>,
        next_cycle_at: DateTime<Utc>,
        flags: boost::BoostEffects,
        steered: steer::Steered,
        (sessions, reading): (
            Vec<voltplan_store::fleet::SessionRecord>,
            Option<voltplan_store::fleet::ReadingRecord>,
        ),
    ) -> Result<CycleResult, WorkerError> {
        let outcome = CycleOutcome {
            state,
            runtime: serde_json::to_string(&rt)?,
            plan: plan_json,
            next_cycle_at,
            clear_boost_for_next_session: flags.clear_boost_for_next_session,
            clear_boost_request: flags.clear_boost_request,
            sessions,
            reading,
            command_outcomes: steered.outcomes,
        };
        // Written with the rest of the batch, in one transaction (see `run_once`).
        Ok(CycleResult {
            finish: (claimed.lease.clone(), outcome),
            commands_sent: steered.commands_sent,
            replanned: false,
            deferred: false,
        })
    }
}

struct CycleResult {
    /// The fenced write that ends this vehicle's cycle.
    finish: (voltplan_store::fleet::Lease, CycleOutcome),
    commands_sent: usize,
    replanned: bool,
    deferred: bool,
}

fn cloud_ref(vehicle: &voltplan_store::VehicleRecord) -> CloudVehicleRef {
    CloudVehicleRef {
        vehicle_id: vehicle.id,
        external_id: vehicle
            .settings
            .external_device_id
            .clone()
            .filter(|id| !id.is_empty()),
    }
}

/// The battery level the plan expects at `at`, interpolated within its intervals.
pub fn expected_level_at(plan: &Plan, at: DateTime<Utc>) -> f64 {
    let mut level = plan.start_battery_level;
    for interval in &plan.intervals {
        if at >= interval.end {
            level = interval.battery_level_end;
            continue;
        }
        if at > interval.start {
            let share = (at - interval.start).num_milliseconds() as f64
                / (interval.end - interval.start).num_milliseconds().max(1) as f64;
            level += (interval.battery_level_end - level) * share;
        }
        break;
    }
    level
}

/// The car is further from the plan's expected level than `threshold` percentage points.
fn plan_drifted(plan: &Plan, level: Option<f64>, now: DateTime<Utc>, threshold: f64) -> bool {
    level.is_some_and(|l| (l - expected_level_at(plan, now)).abs() > threshold)
}

/// Whether a boost holds the car at full power (used by steering and scheduling).
pub(crate) fn boost_active(state: &voltplan_core::vehicle::EvState) -> bool {
    matches!(
        state.boost_state,
        BoostState::Requested | BoostState::Ongoing
    )
}

/// A status from a consecutive-failure count.
pub(crate) fn status_for_failures(failures: u32, for_error: u32) -> StatusLevel {
    match failures {
        0 => StatusLevel::Ok,
        n if n < for_error => StatusLevel::Warning,
        _ => StatusLevel::Error,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use voltplan_core::planner::{Plan, PlanInterval, PlanMode, Reason};

    pub fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 11, 12, 22, 0, 0)
            .single()
            .unwrap_or_default()
    }

    /// A plan charging 10 points per block over the given `[start, end)` minute offsets from `t0`.
    pub fn plan_with(blocks: &[(i64, i64)]) -> Plan {
        let mut level = 30.0;
        let intervals: Vec<PlanInterval> = blocks
            .iter()
            .map(|&(a, b)| {
                level += 10.0;
                PlanInterval {
                    start: t0() + Duration::minutes(a),
                    end: t0() + Duration::minutes(b),
                    power_w: 11_000.0,
                    reason: Reason::Target,
                    energy_kwh: 6.0,
                    cost_eur: 0.5,
                    battery_level_end: level,
                    uses_forecast_prices: false,
                }
            })
            .collect();
        Plan {
            mode: PlanMode::Smart,
            planned_at: t0(),
            time_zone: "Europe/Berlin".to_owned(),
            charging_blocks: intervals.len(),
            intervals,
            energy_kwh: 6.0 * blocks.len() as f64,
            expected_cost_eur: 0.5 * blocks.len() as f64,
            baseline_cost_eur: 1.0 * blocks.len() as f64,
            baseline_average_price_eur_mwh: None,
            baseline_uses_forecast_prices: false,
            savings_eur: 0.5 * blocks.len() as f64,
            average_price_eur_mwh: None,
            start_battery_level: 30.0,
            final_battery_level: level,
            minimum_level: None,
            target_level: Some(level),
            deadline: Some(t0() + Duration::hours(8)),
            battery_level_at_deadline: Some(level),
            ready_by: None,
            pause_until: None,
            feasible: true,
            uses_forecast_prices: false,
            forecast_prices: Vec::new(),
            defaults_applied: Vec::new(),
            explanation: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{plan_with, t0};
    use super::*;

    #[test]
    fn expected_level_interpolates_within_blocks_and_holds_between_them() {
        let plan = plan_with(&[(0, 60), (120, 180)]);
        assert_eq!(expected_level_at(&plan, t0() - Duration::minutes(5)), 30.0);
        assert!((expected_level_at(&plan, t0() + Duration::minutes(30)) - 35.0).abs() < 1e-9);
        assert_eq!(expected_level_at(&plan, t0() + Duration::minutes(90)), 40.0);
        assert_eq!(expected_level_at(&plan, t0() + Duration::hours(5)), 50.0);
    }

    #[test]
    fn price_book_splits_energy_over_the_slots_it_spans() {
        let slot = |h: i64, price: f64| PriceSlot {
            start: t0() + Duration::hours(h),
            end: t0() + Duration::hours(h + 1),
            price_eur_mwh: price,
        };
        let book = PriceBook {
            slots: vec![slot(0, 100.0), slot(1, 300.0)],
            coverage_end: None,
        };
        // 2 kWh over 30 min on each side of the boundary: 1 kWh at 100, 1 kWh at 300.
        let cost = book.cost_of(
            2.0,
            t0() + Duration::minutes(30),
            t0() + Duration::minutes(90),
        );
        assert!((cost - 0.4).abs() < 1e-9);
        // At 11 kW from the start: 11 kWh at 100, then 1 kWh at 300.
        let baseline = book.cost_charging_at_once(12.0, 11.0, t0());
        assert!((baseline - (1.1 + 0.3)).abs() < 1e-9);
    }
}
