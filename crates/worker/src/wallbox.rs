//! The wallbox as a [`DeviceKind`]: read from what its OCPP central system stored (the charger
//! document and the transactions), planned like an EV session on an **energy target**, steered
//! with charging profiles queued for the replica that holds the charger's WebSocket
//! (`docs/ocpp.md`).
//!
//! **The energy target.** A charger does not know the car's battery. A session must deliver
//! `need` kWh (metered at the charger) by the deadline: the wallbox's `session_energy_kwh` when the
//! partner set it, else the median of the charger's last sessions (at least three), else
//! [`COLD_START_NEED_KWH`]. The planner sees a "battery" of `need` kWh whose level is the share
//! already delivered, so `charge_target_min` is the share delivered at once whatever the price and
//! the deadline's target is all of it. Energy beyond the need is not planned (the car stops by
//! itself when full; the profile's expiry at the deadline lets it finish).
//!
//! **Steering.** A plan becomes one `Absolute` TxProfile valid until the deadline, in the unit the
//! charger takes (amperes on three phases unless it said watts). It is queued once per plan: the
//! call's id is derived from the transaction and the plan, so a worker taking over a lease derives
//! the same id and queues nothing twice. A charger without the SmartCharging profile is started
//! and stopped instead (RemoteStart/StopTransaction at the plan's switches). A refused or failed
//! call makes the steering status `warning` and is tried again (with a new attempt number) at the
//! next cycle. Without a plan (no prices, smart charging off) no profile is sent: the charger
//! charges at its own maximum, as it would without Voltplan.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::charger::{Charger, RateUnit};
use voltplan_core::planner::{DeadlineRule, Plan, PlanInput, PlannerSettings, VehicleSnapshot};
use voltplan_core::vehicle::{BoostState, StatusLevel};
use voltplan_core::wallbox::{WallboxSettings, WallboxState};
use voltplan_ocpp::profile::{ProfileRequest, Step as PowerStep, Unit, set_charging_profile};
use voltplan_store::fleet::{CommandOutcome, Lease, ReadingRecord, SessionData, SessionRecord};
use voltplan_store::ocpp::{CommandStatus, OcppCommand, TransactionRecord};
use voltplan_store::wallbox_fleet::{ClaimedWallbox, WallboxOutcome};
use voltplan_store::{OrgScope, Store, StoreError};

use crate::device::{Desired, DeviceKind, Planned, Read, Steered, Step, Unread, Work};
use crate::price_book::PriceBook;
use crate::replan::{Fnv1a, plan_drifted};

/// The energy a session is planned to deliver when neither the partner nor the charger's
/// history says: about a quarter of a mid-size battery, more than the typical daily need.
pub const COLD_START_NEED_KWH: f64 = 15.0;
/// Closed sessions needed before their median replaces the cold start.
const LEARN_FROM_SESSIONS: usize = 3;
/// How many past sessions the median is taken over.
const LEARN_WINDOW: usize = 10;
/// How far back sessions are read (learning, and closing a session whose stop was missed).
const HISTORY: Duration = Duration::days(30);
/// A call to the charger not sent by then (the charger offline) expires.
const CALL_LIFETIME: Duration = Duration::minutes(15);
/// Offline this long, the connection status is an error (before: a warning).
const OFFLINE_ERROR_AFTER: Duration = Duration::minutes(15);
/// Without ChargingScheduleMaxPeriods known, a profile has at most this many periods (OCPP 1.6
/// chargers commonly accept 24 or more).
const DEFAULT_MAX_PERIODS: usize = 24;
/// Amperes per phase are computed for this many phases when the charger does not say.
const DEFAULT_PHASES: u8 = 3;

/// The measurand of the energy register.
const REGISTER: &str = "Energy.Active.Import.Register";

/// Wallboxes, steered through the OCPP call queue.
pub(crate) struct Wallboxes<'a> {
    pub store: &'a dyn Store,
}

/// What the read step got: the charger as its central system last stored it, its transactions.
pub(crate) struct WallboxReading {
    charger: Charger,
    /// Started within [`HISTORY`], oldest first, and any still open.
    transactions: Vec<TransactionRecord>,
    /// What became of the last call queued (`None`: none, or not yet answered).
    last_call: Option<CommandStatus>,
    /// The energy register (Wh) as sampled since the followed session was last costed.
    meter: Vec<(DateTime<Utc>, f64)>,
}

/// The reading, normalised for plan, steer and schedule.
pub(crate) struct WallboxObserved {
    at: DateTime<Utc>,
    connected: bool,
    plugged_in: bool,
    charging: bool,
    open: Option<TransactionRecord>,
    /// Delivered in the open transaction, kWh.
    delivered_kwh: f64,
    /// The session's energy target, kWh, and where it came from.
    need_kwh: f64,
    need_source: &'static str,
    smart_charging: Option<bool>,
    unit: Unit,
}

impl WallboxObserved {
    /// The share of the need delivered, percent (the planner's "battery level").
    fn level_pct(&self) -> f64 {
        (self.delivered_kwh / self.need_kwh * 100.0).clamp(0.0, 100.0)
    }
}

/// A call to the charger and the decision it carries out (`fingerprint`: the same decision
/// is queued once).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WallboxCommand {
    action: &'static str,
    payload: String,
    fingerprint: String,
}

/// The worker's own document about a wallbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WallboxRuntime {
    pub plan_inputs_hash: Option<u64>,
    /// The open session: the transaction it follows.
    pub session: Option<WallboxSession>,
    /// The decision last queued (its fingerprint) and its call's id.
    pub sent_decision: Option<String>,
    pub last_call_id: Option<String>,
    /// Failed attempts at the current decision (a new attempt gets a new call id).
    pub attempt: u32,
    /// The meter at the last `/data` row.
    pub reported_meter_wh: Option<f64>,
    pub reported_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WallboxSession {
    pub id: Uuid,
    pub transaction_id: i64,
    pub plug_in: DateTime<Utc>,
    pub meter_start_wh: f64,
    /// The register reading the session's cost is brought up to, and when it was read.
    pub costed_at: DateTime<Utc>,
    pub costed_meter_wh: f64,
    /// The energy up to `costed_meter_wh`, priced in the slots it was drawn in.
    pub cost_eur: f64,
    pub peak_power_kw: Option<f64>,
    pub deadline: Option<DateTime<Utc>>,
    pub expected_savings_eur: Option<f64>,
}

/// A wallbox cycle's writes besides state, runtime and plan.
#[derive(Default)]
pub(crate) struct WallboxWrites {
    sessions: Vec<SessionRecord>,
    reading: Option<ReadingRecord>,
    calls: Vec<OcppCommand>,
    clear_boost_for_next_session: bool,
    clear_boost_request: Option<DateTime<Utc>>,
    clear_boost_cancel: Option<DateTime<Utc>>,
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

    fn settings(claimed: &ClaimedWallbox) -> &WallboxSettings {
        &claimed.wallbox.settings
    }

    fn state(claimed: &ClaimedWallbox) -> &WallboxState {
        &claimed.wallbox.state
    }

    fn documents(claimed: &ClaimedWallbox) -> (Option<&str>, Option<&str>) {
        (claimed.runtime.as_deref(), claimed.plan.as_deref())
    }

    async fn read(&self, claimed: &ClaimedWallbox, now: DateTime<Utc>) -> Read<WallboxReading> {
        let wallbox = &claimed.wallbox;
        let org = OrgScope::new(wallbox.org_id);
        let transactions = self
            .store
            .list_transactions(org, wallbox.id, now - HISTORY, now + Duration::days(1))
            .await;
        let runtime: WallboxRuntime = claimed
            .runtime
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        let last_call = match &runtime.last_call_id {
            Some(id) => match self.store.get_ocpp_command(org, id).await {
                Ok(call) => call.map(|c| c.status),
                Err(error) => return Read::Unread(Unread::NoConnection(error.to_string())),
            },
            None => None,
        };
        let since = runtime.session.as_ref().map(|s| s.costed_at).or_else(|| {
            transactions
                .as_ref()
                .ok()
                .and_then(|ts| ts.iter().rev().find(|t| t.stopped_at.is_none()))
                .map(|t| t.started_at)
        });
        let meter = match since {
            Some(since) => match self
                .store
                .list_meter_samples(org, wallbox.id, REGISTER, since, now + Duration::seconds(1))
                .await
            {
                Ok(samples) => samples
                    .into_iter()
                    .filter(|s| s.phase.is_empty() && s.connector_id <= 1)
                    .map(|s| (s.at, s.value))
                    .collect(),
                Err(error) => return Read::Unread(Unread::NoConnection(error.to_string())),
            },
            None => Vec::new(),
        };
        match transactions {
            Ok(transactions) => Read::Reading(WallboxReading {
                charger: wallbox.charger.clone(),
                transactions,
                last_call,
                meter,
            }),
            // The store is the wallbox's only connection: its failure is the read's.
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
        let (need_kwh, need_source) = session_need(settings, &reading.transactions);
        let observed = WallboxObserved {
            at: now,
            connected: charger.connected,
            plugged_in: charger.is_plugged_in() || open.is_some(),
            charging: charger.is_charging(),
            open,
            delivered_kwh,
            need_kwh,
            need_source,
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
            cost_up_to(session, reading.meter.iter().copied(), step.book);
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
        let hash = inputs_hash(settings, state, observed, step.book.coverage_end);
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
        let plan = match input
            .validate()
            .and_then(|()| input.plan_with_margin(now, &step.book.slots, step.config.ready_margin))
        {
            Ok(plan) => Some(plan),
            Err(error) => {
                tracing::debug!(%error, "cannot plan the wallbox; it charges on its own");
                None
            }
        };
        if let (Some(session), Some(plan)) = (rt.session.as_mut(), plan.as_ref()) {
            // A boost plan has no deadline; the session keeps the one it was planned for.
            session.deadline = plan.deadline.or(session.deadline);
            session.expected_savings_eur = Some(plan.savings_eur);
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
        if observed.smart_charging == Some(false) {
            // Start/stop at the plan's switches: charge when the plan's power now is not zero.
            let wanted = power_at(plan, now) > 0.0;
            let since = switch_at(plan, now).timestamp();
            return match (wanted, observed.charging) {
                (true, false) => act(
                    "RemoteStartTransaction",
                    serde_json::json!({"connectorId": 1, "idTag": "VOLTPLAN"}).to_string(),
                    format!("start:{}:{since}", open.id),
                ),
                (false, true) => act(
                    "RemoteStopTransaction",
                    serde_json::json!({"transactionId": open.id}).to_string(),
                    format!("stop:{}:{since}", open.id),
                ),
                _ => Desired::Leave,
            };
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
            cost_up_to(session, latest.into_iter(), step.book);
            if let Some(power) = wallbox.charger.power_w {
                let kw = power / 1000.0;
                session.peak_power_kw = Some(session.peak_power_kw.map_or(kw, |p| p.max(kw)));
            }
            let max_kw = f64::from(wallbox.settings.charge_power_max_w) / 1000.0;
            let record =
                session_record(wallbox.org_id, wallbox.id, session, None, max_kw, step.book);
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
        _claimed: &ClaimedWallbox,
        work: Work<Self>,
        plan_json: Option<String>,
        next_cycle_at: DateTime<Utc>,
        _commands: Vec<CommandOutcome>,
    ) -> Result<WallboxOutcome, serde_json::Error> {
        let Work {
            state,
            runtime,
            writes,
        } = work;
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
        })
    }
}

/// The session's energy target and its source (see the module's documentation).
fn session_need(
    settings: &WallboxSettings,
    transactions: &[TransactionRecord],
) -> (f64, &'static str) {
    if let Some(kwh) = settings
        .session_energy_kwh
        .filter(|k| k.is_finite() && *k > 0.0)
    {
        return (kwh, "setting");
    }
    let mut past: Vec<f64> = transactions
        .iter()
        .rev()
        .filter_map(|t| Some((t.meter_stop_wh? - t.meter_start_wh) as f64 / 1000.0))
        .filter(|kwh| *kwh > 0.5)
        .take(LEARN_WINDOW)
        .collect();
    if past.len() < LEARN_FROM_SESSIONS {
        return (COLD_START_NEED_KWH, "default");
    }
    past.sort_by(f64::total_cmp);
    (past[past.len() / 2], "learned")
}

fn plan_input(
    settings: &WallboxSettings,
    state: &WallboxState,
    observed: &WallboxObserved,
    zone: PriceZone,
) -> PlanInput {
    let deadline = match settings.charge_deadline_at {
        Some(at) => DeadlineRule::Daily {
            at,
            target_pct: 100.0,
        },
        None => DeadlineRule::None,
    };
    PlanInput {
        vehicle: VehicleSnapshot {
            battery_level_pct: observed.level_pct(),
            battery_capacity_kwh: observed.need_kwh,
            is_plugged_in: observed.open.is_some(),
            is_at_home: true,
            max_charge_power_w: f64::from(settings.charge_power_max_w.max(1)),
            charge_target_max_pct: None,
        },
        settings: PlannerSettings {
            price_zone: zone,
            is_smart_optimization_active: settings.is_smart_optimization_active,
            charge_target_min_pct: settings
                .charge_target_min
                .map_or(0.0, f64::from)
                .clamp(0.0, 100.0),
            deadline,
            is_over_charge_allowed: false,
            pause_power_until: settings.pause_power_until,
            boost: matches!(
                state.boost_state,
                BoostState::Requested | BoostState::Ongoing
            ),
            // The need is metered at the charger: no charging losses to add.
            efficiency: 1.0,
            ..PlannerSettings::new(zone)
        },
    }
}

fn inputs_hash(
    settings: &WallboxSettings,
    state: &WallboxState,
    observed: &WallboxObserved,
    coverage_end: Option<DateTime<Utc>>,
) -> u64 {
    let mut h = Fnv1a::new();
    h.text(&serde_json::to_string(settings).unwrap_or_default());
    h.option(observed.open.as_ref().map(|t| t.id), |h, id| {
        h.bytes(&id.to_le_bytes())
    });
    h.flag(matches!(
        state.boost_state,
        BoostState::Requested | BoostState::Ongoing
    ));
    h.bytes(&observed.need_kwh.to_bits().to_le_bytes());
    h.option(coverage_end, |h, end| {
        h.bytes(&end.timestamp().to_le_bytes())
    });
    h.flag(settings.pause_power_until.is_some_and(|p| p > observed.at));
    h.finish()
}

fn power_at(plan: &Plan, at: DateTime<Utc>) -> f64 {
    plan.intervals
        .iter()
        .find(|i| i.start <= at && at < i.end)
        .map_or(0.0, |i| i.power_w)
}

/// When the plan's current on/off phase began (a stable id for a start/stop decision).
fn switch_at(plan: &Plan, at: DateTime<Utc>) -> DateTime<Utc> {
    let on = power_at(plan, at) > 0.0;
    let mut start = at;
    for interval in plan.intervals.iter().rev().filter(|i| i.start <= at) {
        if (interval.power_w > 0.0) != on {
            break;
        }
        start = interval.start;
    }
    start
}

/// The three status dimensions from the charger document and the last call's fate.
fn observe_status(
    state: &mut WallboxState,
    charger: &Charger,
    last_call: Option<CommandStatus>,
    now: DateTime<Utc>,
) {
    state.connection_status = match (
        charger.connected,
        charger.disconnected_at,
        charger.connected_at,
    ) {
        (true, _, _) => StatusLevel::Ok,
        (false, _, None) => StatusLevel::Unknown,
        (false, Some(gone), _) if now - gone < OFFLINE_ERROR_AFTER => StatusLevel::Warning,
        (false, _, _) => StatusLevel::Error,
    };
    state.monitoring_status = if charger.connected && charger.error_code.is_none() {
        StatusLevel::Ok
    } else if charger.connected {
        StatusLevel::Warning
    } else {
        state.connection_status
    };
    state.steering_status = match last_call {
        Some(CommandStatus::Accepted) => StatusLevel::Ok,
        Some(CommandStatus::Rejected | CommandStatus::Failed | CommandStatus::Expired) => {
            StatusLevel::Warning
        }
        _ if !charger.connected && charger.connected_at.is_some() => StatusLevel::Warning,
        _ => state.steering_status,
    };
    state.current_state_last_updated_at = charger.last_seen_at;
    state.last_monitoring_executed_at = Some(now);
    state.current_mode = serde_json::to_value(charger.mode())
        .ok()
        .and_then(|mode| mode.as_str().map(str::to_owned));
}

/// Opens a session when a transaction starts, closes it (into the cycle's writes) when the
/// transaction stops; `true` when a session opened in this cycle.
fn track_session(
    claimed: &ClaimedWallbox,
    work: &mut Work<Wallboxes<'_>>,
    reading: &WallboxReading,
    observed: &WallboxObserved,
    step: Step<'_>,
) -> bool {
    let (org_id, wallbox_id) = (claimed.wallbox.org_id, claimed.wallbox.id);
    let following = work.runtime.session.as_ref().map(|s| s.transaction_id);
    let open_id = observed.open.as_ref().map(|t| t.id);
    if following.is_some()
        && following != open_id
        && let Some(mut session) = work.runtime.session.take()
    {
        let stopped = reading
            .transactions
            .iter()
            .find(|t| t.id == session.transaction_id);
        let end = stopped.and_then(|t| t.stopped_at).unwrap_or(step.now);
        let last = stopped.and_then(|t| Some((t.stopped_at?, t.meter_stop_wh? as f64)));
        cost_up_to(&mut session, last.into_iter(), step.book);
        let max_kw = f64::from(claimed.wallbox.settings.charge_power_max_w) / 1000.0;
        let record = session_record(org_id, wallbox_id, &session, Some(end), max_kw, step.book);
        work.writes.sessions.push(record);
    }
    if let Some(open) = &observed.open
        && work.runtime.session.is_none()
    {
        work.runtime.session = Some(WallboxSession {
            id: Uuid::now_v7(),
            transaction_id: open.id,
            plug_in: open.started_at,
            meter_start_wh: open.meter_start_wh as f64,
            costed_at: open.started_at,
            costed_meter_wh: open.meter_start_wh as f64,
            cost_eur: 0.0,
            peak_power_kw: None,
            deadline: None,
            expected_savings_eur: None,
        });
        work.runtime.sent_decision = None;
        work.runtime.attempt = 0;
        return true;
    }
    false
}

/// Prices the energy between register readings newer than the last costed one: the energy
/// between two readings is spread over the time between them, slot by slot
/// ([`PriceBook::cost_of`]), so the cost follows the charger's own register.
fn cost_up_to(
    session: &mut WallboxSession,
    readings: impl Iterator<Item = (DateTime<Utc>, f64)>,
    book: &PriceBook,
) {
    for (at, wh) in readings {
        if at <= session.costed_at || wh < session.costed_meter_wh {
            continue;
        }
        let kwh = (wh - session.costed_meter_wh) / 1000.0;
        session.cost_eur += book.cost_of(kwh, session.costed_at, at);
        session.costed_at = at;
        session.costed_meter_wh = wh;
    }
}

fn session_record(
    org_id: Uuid,
    wallbox_id: Uuid,
    session: &WallboxSession,
    unplug: Option<DateTime<Utc>>,
    max_power_kw: f64,
    book: &PriceBook,
) -> SessionRecord {
    let energy = ((session.costed_meter_wh - session.meter_start_wh) / 1000.0).max(0.0);
    // What the same energy would have cost charged at once from the plug-in.
    let baseline = book.cost_charging_at_once(energy, max_power_kw, session.plug_in);
    SessionRecord {
        id: session.id,
        org_id,
        vehicle_id: wallbox_id,
        plug_in_time: session.plug_in,
        unplug_time: unplug,
        data: SessionData {
            charge_deadline: session.deadline,
            energy_charged_kwh: energy,
            peak_charge_power_kw: session.peak_power_kw,
            actual_cost_eur: session.cost_eur,
            baseline_cost_eur: baseline,
            expected_savings_eur: session.expected_savings_eur,
            ..SessionData::default()
        },
    }
}

/// Boost: a request starts it on a plugged-in car (else the API armed it for the next session),
/// an armed one starts with the next transaction, a cancellation or the end of the session ends it.
fn apply_boost(
    settings: &WallboxSettings,
    work: &mut Work<Wallboxes<'_>>,
    observed: &WallboxObserved,
    new_session: bool,
    now: DateTime<Utc>,
) {
    let state = &mut work.state;
    let boosting = matches!(
        state.boost_state,
        BoostState::Requested | BoostState::Ongoing
    );
    if let Some(cancelled) = settings.boost_cancelled_at {
        work.writes.clear_boost_cancel = Some(cancelled);
        if boosting {
            state.last_boost_ended_at = Some(now);
            state.last_boost_end_reason = Some("cancelled".to_owned());
        }
        state.boost_state = BoostState::Unavailable;
    } else if let Some(requested) = settings.boost_requested_at {
        work.writes.clear_boost_request = Some(requested);
        if observed.open.is_some() {
            state.boost_state = BoostState::Ongoing;
            state.last_boost_triggered_at = Some(now);
        }
    } else if settings.boost_for_next_session && observed.open.is_some() && new_session {
        work.writes.clear_boost_for_next_session = true;
        state.boost_state = BoostState::Ongoing;
        state.last_boost_triggered_at = Some(now);
    } else if boosting && observed.open.is_none() {
        state.boost_state = BoostState::Unavailable;
        state.last_boost_ended_at = Some(now);
        state.last_boost_end_reason = Some("unplugged".to_owned());
    }
    if !matches!(
        state.boost_state,
        BoostState::Ongoing | BoostState::Requested
    ) {
        state.boost_state = if observed.plugged_in {
            BoostState::Available
        } else {
            BoostState::Unavailable
        };
    }
}

/// This cycle's `/data` row, when the meter moved or the plug changed.
fn report(
    wallbox: &voltplan_store::WallboxRecord,
    rt: &mut WallboxRuntime,
    observed: &WallboxObserved,
    step: Step<'_>,
) -> Option<ReadingRecord> {
    let meter = wallbox.charger.meter_wh;
    let moved = meter.is_some() && meter != rt.reported_meter_wh;
    if !moved && rt.reported_at.is_some() {
        return None;
    }
    let energy_kwh = match (meter, rt.reported_meter_wh) {
        (Some(now), Some(before)) => Some(((now - before) / 1000.0).max(0.0)),
        _ => None,
    };
    rt.reported_meter_wh = meter.or(rt.reported_meter_wh);
    rt.reported_at = Some(step.now);
    Some(ReadingRecord {
        vehicle_id: wallbox.id,
        org_id: wallbox.org_id,
        at: step.now,
        battery_level: wallbox.charger.soc,
        is_plugged_in: Some(observed.plugged_in),
        is_charging: Some(observed.charging),
        is_at_home: None,
        power_w: wallbox.charger.power_w,
        energy_kwh,
        price_eur_mwh: step.book.price_at(step.now),
    })
}
