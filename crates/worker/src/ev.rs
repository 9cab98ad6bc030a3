//! The electric vehicle as a [`DeviceKind`]: read through its vehicle cloud, observed by
//! [`monitor`], [`session`] and [`boost`], planned by the core planner, steered with start/stop
//! commands ([`steer`]), scheduled by [`schedule`].

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use voltplan_clouds::{CloudError, CloudVehicleRef, VehicleReading, VehicleRegistration, registry};
use voltplan_core::PriceZone;
use voltplan_core::planner::{Plan, PlanInput};
use voltplan_core::vehicle::{EvSettings, EvState};
use voltplan_store::fleet::{
    ClaimedVehicle, CommandOutcome, CycleOutcome, Lease, ReadingRecord, SessionRecord,
};
use voltplan_store::{Store, StoreError, VehicleRecord};

use crate::budget::CallKind;
use crate::clouds::Clouds;
use crate::device::{Desired, DeviceKind, Planned, Read, Steered, Step, Unread, Work};
use crate::monitor::Observed;
use crate::replan::{Fnv1a, plan_drifted, plan_inputs_hash};
use crate::runtime::{CommandKind, VehicleRuntime};
use crate::tariff::Owner;
use crate::{boost, events, grid, monitor, schedule, session, steer};

/// Electric vehicles, reached through their vehicle clouds.
pub(crate) struct ElectricVehicles<'a> {
    pub store: &'a dyn Store,
    pub clouds: &'a Clouds,
}

/// An EV cycle's writes besides state, runtime and plan.
#[derive(Default)]
pub(crate) struct EvWrites {
    /// Sessions opened, updated or closed.
    sessions: Vec<SessionRecord>,
    /// The `/data` row, when the reading said something new.
    reading: Option<ReadingRecord>,
    /// What the boost step must clear in the partner's settings.
    boost: boost::BoostEffects,
    /// The outermost grid group to plan again: this car is not what the group planned it as.
    wake_grid_group: Option<Uuid>,
}

impl DeviceKind for ElectricVehicles<'_> {
    type Settings = EvSettings;
    type State = EvState;
    type Reading = VehicleReading;
    type Observed = Observed;
    type Command = CommandKind;
    type Runtime = VehicleRuntime;
    type Writes = EvWrites;
    type Claimed = ClaimedVehicle;
    type Outcome = CycleOutcome;

    async fn claim(
        &self,
        store: &dyn Store,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedVehicle>, StoreError> {
        store.claim_vehicles(worker_id, now, lease_for, limit).await
    }

    async fn finish(
        &self,
        store: &dyn Store,
        outcomes: &[(Lease, CycleOutcome)],
    ) -> Result<Vec<bool>, StoreError> {
        store.finish_cycles(outcomes).await
    }

    fn lease(claimed: &ClaimedVehicle) -> &Lease {
        &claimed.lease
    }

    fn price_key(claimed: &ClaimedVehicle) -> (PriceZone, Uuid) {
        Owner::of_vehicle(&claimed.vehicle).price_key
    }

    fn owner(claimed: &ClaimedVehicle) -> Owner {
        Owner::of_vehicle(&claimed.vehicle)
    }

    fn settings(claimed: &ClaimedVehicle) -> &EvSettings {
        &claimed.vehicle.settings
    }

    fn state(claimed: &ClaimedVehicle) -> &EvState {
        &claimed.vehicle.state
    }

    fn documents(claimed: &ClaimedVehicle) -> (Option<&str>, Option<&str>) {
        (claimed.runtime.as_deref(), claimed.plan.as_deref())
    }

    async fn read(
        &self,
        claimed: &ClaimedVehicle,
        _runtime: &VehicleRuntime,
        now: DateTime<Utc>,
    ) -> Read<VehicleReading> {
        let vehicle = &claimed.vehicle;
        let Some(service) = self.clouds.service_of(vehicle) else {
            return Read::Unread(Unread::NoConnection(
                "the vehicle names no cloud service".into(),
            ));
        };
        let Some(cloud) = self.clouds.cloud(service) else {
            return Read::Unread(Unread::NoConnection(format!(
                "no cloud registered for service {service}"
            )));
        };
        let reference = cloud_ref(vehicle);
        if let Err(retry_at) = self.clouds.take_call(service, CallKind::Read, now) {
            return Read::Deferred(retry_at);
        }
        let read = match cloud.read_state(&reference).await {
            Err(CloudError::UnknownVehicle)
                if registry::capabilities(service).registers_unknown_vehicles =>
            {
                if let Err(retry_at) = self.clouds.take_call(service, CallKind::Read, now) {
                    return Read::Deferred(retry_at);
                }
                match cloud.register_unknown(&registration(claimed)).await {
                    Ok(()) => {
                        tracing::info!("registered the vehicle with its cloud");
                        cloud.read_state(&reference).await
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot register the vehicle with its cloud");
                        Err(CloudError::UnknownVehicle)
                    }
                }
            }
            read => read,
        };
        match read {
            Ok(reading) => Read::Reading(reading),
            Err(error) => Read::Unread(Unread::Failed(error)),
        }
    }

    fn unread(
        &self,
        _claimed: &ClaimedVehicle,
        work: &mut Work<Self>,
        why: &Unread,
        step: Step<'_>,
    ) -> DateTime<Utc> {
        let (state, rt, now, cfg) = (&mut work.state, &mut work.runtime, step.now, step.config);
        match why {
            Unread::Failed(error) => {
                monitor::apply_read_failure(state, rt, error, now, cfg);
                session::note_read_failure(rt);
                schedule::after_read_failure(rt, state, error, now, cfg)
            }
            Unread::NoConnection(reason) => {
                monitor::apply_no_cloud(state, reason, now);
                now + cfg.revoked_interval
            }
        }
    }

    fn observe(
        &self,
        claimed: &ClaimedVehicle,
        work: &mut Work<Self>,
        reading: &VehicleReading,
        step: Step<'_>,
    ) -> Observed {
        let settings = Self::settings(claimed);
        let (state, rt) = (&mut work.state, &mut work.runtime);
        let observed = monitor::apply_reading(state, rt, reading, claimed.home, settings, step.now);
        let transition = session::track(
            rt,
            state,
            &observed,
            claimed,
            step.book,
            step.pricing.customer(),
        );
        // Sessions and readings are written with the fenced finish: a worker that lost its lease
        // writes none of them.
        work.writes.sessions.extend(transition.closed);
        work.writes.boost = boost::apply(
            settings,
            state,
            &observed,
            transition.plugged_in_now,
            step.now,
        );
        observed
    }

    fn plan(
        &self,
        claimed: &ClaimedVehicle,
        work: &mut Work<Self>,
        observed: &Observed,
        kept: Option<Plan>,
        step: Step<'_>,
    ) -> Planned {
        let (settings, state, rt) = (Self::settings(claimed), &work.state, &mut work.runtime);
        let (now, cfg) = (step.now, step.config);
        let shared = shared_assignment(claimed);
        // Windows planned for the car as it was (unplugged, other settings) are stale: the group
        // is planned again at once, and this cycle's plan is provisional.
        let stale = shared
            .as_ref()
            .is_some_and(|a| a.fingerprint != grid::joint_fingerprint(settings, state));
        if stale {
            work.writes.wake_grid_group = shared.as_ref().map(|a| a.root);
        }
        // Plan with the state as it is now (boost included: the planner reads boost_state).
        let inputs_hash = plan_inputs_hash(settings, state, rt, observed, step.book.coverage_end)
            ^ step.pricing.fingerprint(step.contract_updated_at)
            ^ shared_hash(claimed.shared_limit.as_deref());
        let drifted = kept
            .as_ref()
            .is_some_and(|p| plan_drifted(p, observed.level_pct, now, cfg.replan_drift_pct));
        let deadline_passed = kept
            .as_ref()
            .and_then(|p| p.deadline)
            .is_some_and(|d| d <= now);
        let replan = rt.plan_inputs_hash != Some(inputs_hash)
            || drifted
            || deadline_passed
            || kept.is_none();
        if !replan {
            return Planned {
                plan: kept,
                replanned: false,
            };
        }
        let plan = match PlanInput::from_ev(
            settings,
            state,
            claimed.home,
            claimed.vehicle.price_zone,
        )
        .map(|mut input| {
            // Plan from the level the car reports, not the whole percent the API shows: a car at
            // 79.6 % is not at its 80 % target.
            if let Some(level) = observed.level_pct {
                input.vehicle.battery_level_pct = level;
            }
            input
        })
        .and_then(|input| step.plan_within(input, shared.as_ref().map(|a| &a.limit)))
        {
            Ok(plan) => Some(plan),
            Err(e) => {
                tracing::debug!(error = %e, "cannot plan; the car is left to charge on its own");
                None
            }
        };
        rt.plan_inputs_hash = Some(inputs_hash);
        // A provisional plan says nothing about the session (e.g. "infeasible at plug-in").
        if !stale {
            session::note_plan(rt, plan.as_ref());
        }
        Planned {
            plan,
            replanned: true,
        }
    }

    fn desired(
        &self,
        claimed: &ClaimedVehicle,
        work: &Work<Self>,
        plan: Option<&Plan>,
        observed: &Observed,
        now: DateTime<Utc>,
    ) -> Desired<CommandKind> {
        steer::desired(plan, Self::settings(claimed), &work.runtime, observed, now)
    }

    async fn steer(
        &self,
        claimed: &ClaimedVehicle,
        work: &mut Work<Self>,
        desired: Desired<CommandKind>,
        plan: Option<&Plan>,
        observed: &Observed,
        step: Step<'_>,
    ) -> Result<Steered, StoreError> {
        let service = self.clouds.service_of(&claimed.vehicle);
        let ctx = steer::SteerContext {
            store: self.store,
            cloud: service
                .and_then(|s| self.clouds.cloud(s))
                .map(|c| c.as_ref()),
            clouds: self.clouds,
            service,
            reference: cloud_ref(&claimed.vehicle),
            lease: &claimed.lease,
            config: step.config,
            now: step.now,
        };
        let settings = Self::settings(claimed);
        let (state, rt) = (&mut work.state, &mut work.runtime);
        steer::steer(&ctx, state, rt, settings, desired, plan, observed).await
    }

    fn wrap_up(
        &self,
        claimed: &ClaimedVehicle,
        work: &mut Work<Self>,
        plan: Option<&Plan>,
        observed: &Observed,
        step: Step<'_>,
    ) -> DateTime<Utc> {
        let (state, rt, now) = (&mut work.state, &mut work.runtime, step.now);
        if let Some(open) = session::update(
            rt,
            state,
            observed,
            (step.book, step.pricing.customer()),
            now,
            claimed,
        ) {
            work.writes.sessions.push(open);
        }
        work.writes.reading = monitor::reading_to_report(
            claimed,
            rt,
            observed,
            (step.book, step.pricing.customer().map(|c| &c.book)),
            now,
        );
        let settings = Self::settings(claimed);
        schedule::next_cycle_at(state, rt, settings, plan, observed, now, step.config)
    }

    fn outcome(
        claimed: &ClaimedVehicle,
        work: Work<Self>,
        plan_json: Option<String>,
        next_cycle_at: DateTime<Utc>,
        commands: Vec<CommandOutcome>,
        now: DateTime<Utc>,
    ) -> Result<CycleOutcome, serde_json::Error> {
        let Work {
            state,
            runtime,
            writes,
        } = work;
        let events =
            events::ev_events(claimed, &state, plan_json.as_deref(), &writes.sessions, now);
        Ok(CycleOutcome {
            state,
            runtime: serde_json::to_string(&runtime)?,
            plan: plan_json,
            next_cycle_at,
            clear_boost_for_next_session: writes.boost.clear_boost_for_next_session,
            clear_boost_request: writes.boost.clear_boost_request,
            sessions: writes.sessions,
            reading: writes.reading,
            command_outcomes: commands,
            events,
            wake_grid_group: writes.wake_grid_group,
        })
    }
}

/// The windows the car's grid group left it; unreadable ones are ignored (the next joint plan
/// writes them again).
fn shared_assignment(claimed: &ClaimedVehicle) -> Option<grid::SharedAssignment> {
    let text = claimed.shared_limit.as_deref()?;
    serde_json::from_str(text)
        .map_err(|e| tracing::warn!(error = %e, "unreadable grid group windows; planned alone"))
        .ok()
}

/// Mixed into the plan-inputs hash: new windows re-plan.
fn shared_hash(text: Option<&str>) -> u64 {
    let mut h = Fnv1a::new();
    h.option(text, |h, t| h.text(t));
    h.finish()
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

fn cloud_ref(vehicle: &VehicleRecord) -> CloudVehicleRef {
    CloudVehicleRef::of_device(vehicle.id, vehicle.settings.external_device_id.as_deref())
}
