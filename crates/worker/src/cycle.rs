//! One vehicle's cycle: read → monitor → session → boost → plan → steer → schedule, ending in the
//! fenced write that `Worker::run_once` commits with the rest of the batch.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use voltplan_clouds::{CloudError, CloudVehicleRef, VehicleReading, VehicleRegistration, registry};
use voltplan_core::Clock;
use voltplan_core::planner::{Plan, PlanInput};
use voltplan_store::Store;
use voltplan_store::fleet::{ClaimedVehicle, CycleOutcome};

use crate::budget::CallKind;
use crate::clouds::Clouds;
use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::price_book::PriceBook;
use crate::replan::{plan_drifted, plan_inputs_hash};
use crate::runtime::VehicleRuntime;
use crate::{boost, monitor, schedule, session, steer};

/// What the read step got.
enum ReadOutcome {
    Reading(VehicleReading),
    Failed(CloudError),
    NoCloud(String),
    /// The cloud's call budget is spent: not read; try again then.
    Deferred(DateTime<Utc>),
}

/// What a cycle needs from its worker.
#[derive(Clone, Copy)]
pub(crate) struct Cycler<'a> {
    pub store: &'a dyn Store,
    pub clouds: &'a Clouds,
    pub clock: &'a dyn Clock,
    pub config: &'a WorkerConfig,
}

impl Cycler<'_> {
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
            Err(CloudError::UnknownVehicle)
                if registry::capabilities(service).registers_unknown_vehicles =>
            {
                if let Err(retry_at) = self.clouds.take_call(service, CallKind::Read, now) {
                    return ReadOutcome::Deferred(retry_at);
                }
                match cloud.register_unknown(&registration(claimed)).await {
                    Ok(()) => {
                        tracing::info!("registered the vehicle with its cloud");
                        match cloud.read_state(&reference).await {
                            Ok(r) => ReadOutcome::Reading(r),
                            Err(e) => ReadOutcome::Failed(e),
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot register the vehicle with its cloud");
                        ReadOutcome::Failed(CloudError::UnknownVehicle)
                    }
                }
            }
            Ok(r) => ReadOutcome::Reading(r),
            Err(e) => ReadOutcome::Failed(e),
        }
    }

    pub(crate) async fn cycle(
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
        let inputs_hash = plan_inputs_hash(settings, &state, &rt, &observed, book.coverage_end);
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
            store: self.store,
            cloud: service
                .and_then(|s| self.clouds.cloud(s))
                .map(|c| c.as_ref()),
            clouds: self.clouds,
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

pub(crate) struct CycleResult {
    /// The fenced write that ends this vehicle's cycle.
    pub(crate) finish: (voltplan_store::fleet::Lease, CycleOutcome),
    pub(crate) commands_sent: usize,
    pub(crate) replanned: bool,
    pub(crate) deferred: bool,
}

/// What the record says about a car, for a cloud that registers cars it does not know.
fn registration(claimed: &ClaimedVehicle) -> VehicleRegistration {
    let vehicle = &claimed.vehicle;
    let (settings, state) = (&vehicle.settings, &vehicle.state);
    VehicleRegistration {
        vehicle: cloud_ref(vehicle),
        manufacturer: settings.device_model.manufacturer.clone(),
        model: settings.device_model.model.clone(),
        battery_capacity_kwh: state
            .reported_battery_capacity_kwh
            .filter(|c| *c > 0.0)
            .or(Some(settings.battery_capacity_kwh).filter(|c| *c > 0.0)),
        max_charge_power_w: settings.expected_max_charge_power,
        battery_level_percent: state.battery_level.map(f64::from),
        position: state.latitude.zip(state.longitude).or(claimed.home),
        charge_limit_percent: state.charge_target_max,
    }
}

fn cloud_ref(vehicle: &voltplan_store::VehicleRecord) -> CloudVehicleRef {
    CloudVehicleRef::of_device(vehicle.id, vehicle.settings.external_device_id.as_deref())
}
