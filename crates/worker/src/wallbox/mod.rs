//! The wallbox as a [`DeviceKind`]: read from what its OCPP central system stored (the charger
//! document and the transactions), planned like an EV session on an **energy target**, steered
//! with charging profiles queued for the replica that holds the charger's WebSocket
//! (`docs/ocpp.md`).
//!
//! **The energy target.** A charger does not know the car's battery. A session must deliver
//! `need` kWh (metered at the charger) by the deadline, fixed when the session opens: what the
//! car on the cable needs to reach `minimum_charge_limit` when its level is known (an EV of the
//! same user at the same building whose cloud reports it plugged in), else the wallbox's
//! `session_energy_kwh`, else the median of the charger's last sessions (at least three), else
//! [`COLD_START_NEED_KWH`]. The planner sees a "battery" of `need` kWh whose level is the share
//! already delivered, so `charge_target_min` is the share delivered at once whatever the price and
//! the deadline's target is all of it. Energy beyond the need is not planned (the car stops by
//! itself when full; the profile's expiry at the deadline lets it finish).
//!
//! **Steering.** A plan becomes one `Absolute` TxProfile valid until the deadline, in the unit the
//! charger takes (amperes on three phases unless it said watts). It is queued once per plan: the
//! call's id is derived from the transaction and the plan, so a worker taking over a lease derives
//! the same id and queues nothing twice. A charger without the SmartCharging profile is not
//! steered (a RemoteStop would end the transaction the session follows); it charges at once and
//! its steering status is `warning`. A refused or failed
//! call makes the steering status `warning` and is tried again (with a new attempt number) at the
//! next cycle. Without a plan (no prices, smart charging off) no profile is sent: the charger
//! charges at its own maximum, as it would without Voltplan.

mod plan;
mod session;
mod status;
mod types;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::charger::RateUnit;
use voltplan_core::planner::Plan;
use voltplan_core::vehicle::StatusLevel;
use voltplan_core::wallbox::{WallboxSettings, WallboxState};
use voltplan_ocpp::profile::{ProfileRequest, Step as PowerStep, Unit, set_charging_profile};
use voltplan_store::fleet::{CommandOutcome, Lease};
use voltplan_store::ocpp::{CommandStatus, OcppCommand};
use voltplan_store::wallbox_fleet::{ClaimedWallbox, WallboxOutcome};
use voltplan_store::{OrgScope, Store, StoreError};

use crate::device::{Desired, DeviceKind, Planned, Read, Steered, Step, Unread, Work};
use crate::events::{Change, DeviceRef, Facts, device_events};
use crate::replan::{Fnv1a, plan_drifted};
use crate::tariff::Owner;
pub use plan::COLD_START_NEED_KWH;
use plan::{car_need_kwh, inputs_hash, plan_input, session_need};
use session::{cost_up_to, report, session_record, track_session};
use status::{apply_boost, observe_status};
pub(crate) use types::Wallboxes;
use types::{CarLevel, WallboxCommand, WallboxObserved, WallboxReading, WallboxWrites};
pub use types::{WallboxRuntime, WallboxSession};

/// How far back sessions are read (learning, and closing a session whose stop was missed).
const HISTORY: Duration = Duration::days(30);
/// A call to the charger not sent by then (the charger offline) expires.
const CALL_LIFETIME: Duration = Duration::minutes(15);
/// Without ChargingScheduleMaxPeriods known, a profile has at most this many periods (OCPP 1.6
/// chargers commonly accept 24 or more).
const DEFAULT_MAX_PERIODS: usize = 24;
/// Amperes per phase are computed for this many phases when the charger does not say.
const DEFAULT_PHASES: u8 = 3;

/// The measurand of the energy register.
const REGISTER: &str = "Energy.Active.Import.Register";

impl Wallboxes<'_> {
    /// What the central system stored about the wallbox: its transactions, the fate of the last
    /// call, the register since the session was last costed, and, when a session is about to
    /// open, the car on the cable.
    async fn read_store(
        &self,
        claimed: &ClaimedWallbox,
        runtime: &WallboxRuntime,
        now: DateTime<Utc>,
    ) -> Result<WallboxReading, StoreError> {
        let wallbox = &claimed.wallbox;
        let org = OrgScope::new(wallbox.org_id);
        let store = self.store;
        let transactions = store
            .list_transactions(org, wallbox.id, now - HISTORY, now + Duration::days(1))
            .await?;
        let last_call = match &runtime.last_call_id {
            Some(id) => store.get_ocpp_command(org, id).await?.map(|c| c.status),
            None => None,
        };
        let open = transactions.iter().rev().find(|t| t.stopped_at.is_none());
        let following = runtime.session.as_ref();
        let since = following
            .map(|s| s.costed_at)
            .or(open.map(|t| t.started_at));
        let meter = match since {
            Some(since) => store
                .list_meter_samples(org, wallbox.id, REGISTER, since, now + Duration::seconds(1))
                .await?
                .into_iter()
                .filter(|s| s.phase.is_empty() && s.connector_id <= 1)
                .map(|s| (s.at, s.value))
                .collect(),
            None => Vec::new(),
        };
        // The car's level only sets the need of a session that opens now.
        let opens_now = open.is_some_and(|t| following.is_none_or(|s| s.transaction_id != t.id));
        let car = if opens_now {
            self.car_on_the_cable(claimed).await?
        } else {
            None
        };
        Ok(WallboxReading {
            charger: wallbox.charger.clone(),
            transactions,
            last_call,
            meter,
            car,
        })
    }

    /// The car on the cable when its battery is known: an EV of the wallbox's user at the
    /// wallbox's building whose cloud reports it plugged in, with a level and a capacity. Two
    /// such cars: the one whose level was read last (the other is likely on a second charger).
    async fn car_on_the_cable(
        &self,
        claimed: &ClaimedWallbox,
    ) -> Result<Option<CarLevel>, StoreError> {
        let wallbox = &claimed.wallbox;
        if wallbox.building_id.is_none() || !wallbox.charger.is_plugged_in() {
            return Ok(None);
        }
        let org = OrgScope::new(wallbox.org_id);
        let vehicles = self
            .store
            .list_vehicles(org, wallbox.user_id, false)
            .await?;
        let car = vehicles
            .iter()
            .filter(|v| v.building_id == wallbox.building_id && v.state.is_plugged_in == Some(true))
            .filter(|v| v.state.battery_level.is_some())
            .max_by_key(|v| v.state.current_state_last_updated_at);
        Ok(car.and_then(|v| {
            let capacity = v
                .state
                .reported_battery_capacity_kwh
                .filter(|c| *c > 0.0)
                .unwrap_or(v.settings.battery_capacity_kwh);
            (capacity > 0.0).then(|| CarLevel {
                level_pct: f64::from(v.state.battery_level.unwrap_or(0)),
                capacity_kwh: capacity,
                charge_target_max_pct: v.state.charge_target_max.map(f64::from),
            })
        }))
    }
}

impl DeviceKind for Wallboxes<'_> {
    type Settings = WallboxSettings;
    type State = WallboxState;
    type Reading = WallboxReading;
    type Observed = WallboxObserved;
    type Command = WallboxCommand;
    type Runtime = WallboxRuntime;
    type Writes = WallboxWrites;
    type Claimed = ClaimedWallbox;
    type Outcome = WallboxOutcome;

    async fn claim(
        &self,
        store: &dyn Store,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedWallbox>, StoreError> {
        store
            .claim_wallboxes(worker_id, now, lease_for, limit)
            .await
    }

    async fn finish(
        &self,
        store: &dyn Store,
        outcomes: &[(Lease, WallboxOutcome)],
    ) -> Result<Vec<bool>, StoreError> {
        store.finish_wallbox_cycles(outcomes).await
    }

    fn lease(claimed: &ClaimedWallbox) -> &Lease {
        &claimed.lease
    }

    fn price_key(claimed: &ClaimedWallbox) -> (PriceZone, Uuid) {
        (claimed.wallbox.price_zone, claimed.wallbox.org_id)
    }

    fn owner(claimed: &ClaimedWallbox) -> Owner {
        let w = &claimed.wallbox;
        Owner {
            org_id: w.org_id,
            user_id: w.user_id,
            building_id: w.building_id,
            price_key: Self::price_key(claimed),
        }
    }

    fn settings(claimed: &ClaimedWallbox) -> &WallboxSettings {
        &claimed.wallbox.settings
    }

    fn state(claimed: &ClaimedWallbox) -> &WallboxState {
        &claimed.wallbox.state
    }

    fn documents(claimed: &ClaimedWallbox) -> (Option<&str>, Option<&str>) {
        (claimed.runtime.as_deref(), claimed.plan.as_deref())
    }

    async fn read(
        &self,
        claimed: &ClaimedWallbox,
        runtime: &WallboxRuntime,
        now: DateTime<Utc>,
    ) -> Read<WallboxReading> {
        // The store is the wallbox's only connection: its failure is the read's.
        match self.read_store(claimed, runtime, now).await {
            Ok(reading) => Read::Reading(reading),
            Err(error) => Read::Unread(Unread::NoConnection(error.to_string())),
        }
    }

    fn unread(
        &self,
        _claimed: &ClaimedWallbox,
        work: &mut Work<Self>,
        why: &Unread,
        step: Step<'_>,
    ) -> DateTime<Utc> {
        let reason = match why {
            Unread::Failed(error) => error.to_string(),
            Unread::NoConnection(reason) => reason.clone(),
        };
        tracing::warn!(%reason, "wallbox not read");
        work.state.monitoring_status = StatusLevel::Warning;
        step.now + step.config.min_interval.max(Duration::seconds(30))
    }

    fn observe(
        &self,
        claimed: &ClaimedWallbox,
        work: &mut Work<Self>,
        reading: &WallboxReading,
        step: Step<'_>,
    ) -> WallboxObserved {
        let (settings, now) = (&claimed.wallbox.settings, step.now);
        let charger = &reading.charger;
        let open = reading
            .transactions
            .iter()
            .rev()
            .find(|t| t.stopped_at.is_none())
            .cloned();
        let meter_wh = charger.meter_wh;
        let delivered_kwh = match (&open, meter_wh) {
            (Some(t), Some(meter)) => ((meter - t.meter_start_wh as f64) / 1000.0).max(0.0),
            _ => 0.0,
        };
        // A session keeps the need it opened with; one opening now takes the car's, if known.
        let car_need_kwh = reading.car.as_ref().map(|car| car_need_kwh(settings, car));
        let kept_need = match (&work.runtime.session, &open) {
            (Some(session), Some(t)) if session.transaction_id == t.id => session.need_kwh,
            _ => car_need_kwh,
        };
        let (need_kwh, need_source) = match kept_need {
            Some(kwh) => (kwh.max(0.1), "the car's level"),
            None => session_need(settings, &reading.transactions),
        };
        let observed = WallboxObserved {
            at: now,
            connected: charger.connected,
            plugged_in: charger.is_plugged_in() || open.is_some(),
            charging: charger.is_charging(),
            open,
            delivered_kwh,
            need_kwh,
            need_source,
            car_need_kwh,
            smart_charging: charger.smart_charging,
            unit: match charger.rate_unit {
                Some(RateUnit::W) => Unit::W,
                _ => Unit::A {
                    phases: charger.phases.unwrap_or(DEFAULT_PHASES),
                },
            },
        };
        observe_status(&mut work.state, charger, reading.last_call, now);
        if let Some(session) = work.runtime.session.as_mut() {
            cost_up_to(session, reading.meter.iter().copied(), step);
        }
        let opened = track_session(claimed, work, reading, &observed, step);
        apply_boost(settings, work, &observed, opened, now);
        if matches!(
            reading.last_call,
            Some(CommandStatus::Rejected | CommandStatus::Failed | CommandStatus::Expired)
        ) {
            // Send the decision again, as a new attempt, at this cycle.
            work.runtime.sent_decision = None;
            work.runtime.attempt += 1;
        }
        observed
    }

    fn plan(
        &self,
        claimed: &ClaimedWallbox,
        work: &mut Work<Self>,
        observed: &WallboxObserved,
        kept: Option<Plan>,
        step: Step<'_>,
    ) -> Planned {
        let settings = &claimed.wallbox.settings;
        let (state, rt, now) = (&work.state, &mut work.runtime, step.now);
        let hash = inputs_hash(settings, state, observed, step.book.coverage_end)
            ^ step.pricing.fingerprint(step.contract_updated_at);
        let level = observed.level_pct();
        let drifted = kept
            .as_ref()
            .is_some_and(|p| plan_drifted(p, Some(level), now, step.config.replan_drift_pct));
        let deadline_passed = kept
            .as_ref()
            .and_then(|p| p.deadline)
            .is_some_and(|d| d <= now);
        if kept.is_some() && rt.plan_inputs_hash == Some(hash) && !drifted && !deadline_passed {
            return Planned {
                plan: kept,
                replanned: false,
            };
        }
        rt.plan_inputs_hash = Some(hash);
        tracing::debug!(
            need_kwh = observed.need_kwh,
            source = observed.need_source,
            "wallbox session's energy target"
        );
        let input = plan_input(settings, state, observed, claimed.wallbox.price_zone);
        let plan = match step.plan(input) {
            Ok(plan) => Some(plan),
            Err(error) => {
                tracing::debug!(%error, "cannot plan the wallbox; it charges on its own");
                None
            }
        };
        if let (Some(session), Some(plan)) = (rt.session.as_mut(), plan.as_ref()) {
            // A boost plan has no deadline; the session keeps the one it was planned for.
            session.deadline = plan.deadline.or(session.deadline);
            let savings = plan.savings();
            session.expected_savings_eur = Some(savings.day_ahead_savings_eur);
            if savings.customer_savings.is_some() {
                session.customer_expected_savings = savings.customer_savings;
            }
        }
        Planned {
            plan,
            replanned: true,
        }
    }

    fn desired(
        &self,
        claimed: &ClaimedWallbox,
        work: &Work<Self>,
        plan: Option<&Plan>,
        observed: &WallboxObserved,
        now: DateTime<Utc>,
    ) -> Desired<WallboxCommand> {
        let (Some(plan), Some(open)) = (plan, observed.open.as_ref()) else {
            return Desired::Leave;
        };
        // Offline, a call would only expire in the queue; the reconnect wakes the wallbox.
        if !observed.connected {
            return Desired::Leave;
        }
        let wallbox = claimed.wallbox.id;
        let attempt = work.runtime.attempt;
        let act = |action: &'static str, payload: String, fingerprint: String| {
            if work.runtime.sent_decision.as_deref() == Some(fingerprint.as_str()) {
                return Desired::Leave;
            }
            let decision = format!("wb:{wallbox}:{fingerprint}:{attempt}");
            Desired::Act {
                command: WallboxCommand {
                    action,
                    payload,
                    fingerprint,
                },
                decision,
            }
        };
        // Without the SmartCharging profile the charger cannot be held to a plan. Stopping it
        // (RemoteStopTransaction) would end its transaction, and with it the session this plan
        // is for; it is left to charge at once (steering_status says so) rather than risk a car
        // left uncharged.
        if observed.smart_charging == Some(false) {
            return Desired::Leave;
        }
        // The plan lists when to charge; between its intervals the limit is zero.
        let mut steps: Vec<PowerStep> = Vec::new();
        for interval in plan.intervals.iter().filter(|i| i.end > now) {
            steps.push(PowerStep {
                from: interval.start.max(now),
                power_w: interval.power_w,
            });
            steps.push(PowerStep {
                from: interval.end,
                power_w: 0.0,
            });
        }
        let valid_to = plan
            .deadline
            .filter(|d| *d > now)
            .or_else(|| plan.intervals.last().map(|i| i.end))
            .unwrap_or(now + Duration::hours(12));
        let profile = set_charging_profile(&ProfileRequest {
            profile_id: 1,
            transaction_id: Some(open.id),
            start: plan.planned_at.min(now),
            steps: &steps,
            valid_to,
            unit: observed.unit,
            max_periods: DEFAULT_MAX_PERIODS,
        });
        let Ok(payload) = serde_json::to_string(&profile) else {
            return Desired::Leave;
        };
        let mut h = Fnv1a::new();
        h.text(&payload);
        let fingerprint = format!("profile:{}:{:016x}", open.id, h.finish());
        act("SetChargingProfile", payload, fingerprint)
    }

    async fn steer(
        &self,
        claimed: &ClaimedWallbox,
        work: &mut Work<Self>,
        desired: Desired<WallboxCommand>,
        _plan: Option<&Plan>,
        _observed: &WallboxObserved,
        step: Step<'_>,
    ) -> Result<Steered, StoreError> {
        let Desired::Act { command, decision } = desired else {
            return Ok(Steered::default());
        };
        let WallboxCommand {
            action,
            payload,
            fingerprint,
        } = command;
        // Queued with the fenced finish: a worker that lost its lease queues nothing.
        work.writes.calls.push(OcppCommand {
            id: decision.clone(),
            org_id: claimed.wallbox.org_id,
            wallbox_id: claimed.wallbox.id,
            action: action.to_owned(),
            payload,
            created_at: step.now,
            expires_at: step.now + CALL_LIFETIME,
            status: CommandStatus::Queued,
            sent_by: None,
            sent_at: None,
            answered_at: None,
            response: None,
        });
        work.runtime.sent_decision = Some(fingerprint);
        work.runtime.last_call_id = Some(decision);
        work.state.actual_steering_state = action.to_owned();
        Ok(Steered {
            commands_sent: 1,
            outcomes: Vec::new(),
        })
    }

    fn wrap_up(
        &self,
        claimed: &ClaimedWallbox,
        work: &mut Work<Self>,
        _plan: Option<&Plan>,
        observed: &WallboxObserved,
        step: Step<'_>,
    ) -> DateTime<Utc> {
        let (now, config) = (step.now, step.config);
        let wallbox = &claimed.wallbox;
        if let Some(session) = work.runtime.session.as_mut() {
            let latest = wallbox.charger.meter_at.zip(wallbox.charger.meter_wh);
            cost_up_to(session, latest.into_iter(), step);
            if let Some(power) = wallbox.charger.power_w {
                let kw = power / 1000.0;
                session.peak_power_kw = Some(session.peak_power_kw.map_or(kw, |p| p.max(kw)));
            }
            let max_kw = f64::from(wallbox.settings.charge_power_max_w) / 1000.0;
            let record = session_record(wallbox.org_id, wallbox.id, session, None, max_kw, step);
            work.writes.sessions.push(record);
        }
        work.writes.reading = report(wallbox, &mut work.runtime, observed, step);
        if observed.charging {
            now + config.active_interval
        } else if observed.plugged_in {
            now + config.plugged_interval
        } else {
            now + config.idle_interval
        }
    }

    fn outcome(
        claimed: &ClaimedWallbox,
        work: Work<Self>,
        plan_json: Option<String>,
        next_cycle_at: DateTime<Utc>,
        _commands: Vec<CommandOutcome>,
        now: DateTime<Utc>,
    ) -> Result<WallboxOutcome, serde_json::Error> {
        let Work {
            state,
            runtime,
            writes,
        } = work;
        let wallbox = &claimed.wallbox;
        let device = DeviceRef {
            device_type: "wallbox",
            id: wallbox.id,
            org_id: wallbox.org_id,
            user_id: wallbox.user_id,
            building_id: wallbox.building_id,
            target_level: None,
        };
        let change = Change {
            before: Facts::of_wallbox(&wallbox.state),
            after: Facts::of_wallbox(&state),
            old_plan: claimed.plan.as_deref(),
            new_plan: plan_json.as_deref(),
            sessions: &writes.sessions,
        };
        let events = device_events(&device, &change, now);
        Ok(WallboxOutcome {
            state,
            runtime: serde_json::to_string(&runtime)?,
            plan: plan_json,
            next_cycle_at,
            clear_boost_for_next_session: writes.clear_boost_for_next_session,
            clear_boost_request: writes.clear_boost_request,
            clear_boost_cancel: writes.clear_boost_cancel,
            sessions: writes.sessions,
            reading: writes.reading,
            calls: writes.calls,
            events,
        })
    }
}
