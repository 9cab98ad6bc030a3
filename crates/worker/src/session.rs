//! Charging sessions, plug-in to unplug, with Podero's session fields. The rules are written in
//! `docs/worker.md` (*Sessions*); the verdict is `voltplan_core::session::judge`.
//!
//! - A reading that shows the car plugged in with no open session opens one; `battery_at_plug_in`
//!   and `initial_soc_pct` are its level. The energy drawn before that first reading (the car
//!   charges on its own at plug-in) belongs to the new session.
//! - Every reading while plugged in sets `final_soc_pct` (so it is the level at unplug, not after
//!   the drive that follows), re-evaluates the deadline in force (the first deadline after
//!   plug-in, until it has passed) and notes `target_reached_at`.
//! - Energy is the difference of the cloud's meter between readings; its cost is priced by the
//!   slots the stretch between the two readings spans (energy spread evenly over it).
//! - Baseline cost: the same energy drawn at full power from plug-in on ("charging at once").
//! - A reading that shows the car unplugged closes the session with its outcome and, for a missed
//!   target, the reason.
//! - `optimization_score` = the session's expected savings in percent of its expected baseline,
//!   from the first plan of the session that charges anything; it keeps its value after unplug.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use voltplan_core::planner::{Plan, PlanMode, max_charge_power_w, settings_deadline_rule};
use voltplan_core::session::{
    SessionFacts, SessionOutcome, deadline_in_force, judge, target_reached,
};
use voltplan_core::vehicle::{EvSettings, EvState, StatusLevel};
use voltplan_store::fleet::{ClaimedVehicle, SessionData, SessionRecord};

use crate::monitor::Observed;
use crate::price_book::PriceBook;
use crate::runtime::{OpenSession, SessionFlags, VehicleRuntime};
use crate::tariff::CustomerBook;

/// An open session is written at least this often while it lasts.
const SESSION_WRITE_EVERY: Duration = Duration::minutes(15);

#[derive(Debug, Default)]
pub struct Transition {
    /// A session opened in this cycle (the car was just plugged in).
    pub plugged_in_now: bool,
    /// The session closed in this cycle, ready to write.
    pub closed: Option<SessionRecord>,
}

/// Opens or closes the session from the reading, and books the energy drawn since the last one.
pub fn track(
    rt: &mut VehicleRuntime,
    state: &mut EvState,
    observed: &Observed,
    claimed: &ClaimedVehicle,
    book: &PriceBook,
    customer: Option<&CustomerBook>,
) -> Transition {
    let mut transition = Transition::default();
    if observed.plugged_in && rt.session.is_none() {
        let settings = &claimed.vehicle.settings;
        let power_w = max_charge_power_w(
            settings.expected_max_charge_power,
            Some(observed.rate_w.round() as i32),
        );
        rt.session = Some(OpenSession {
            id: Uuid::now_v7(),
            plug_in_time: observed.at,
            data: SessionData {
                initial_soc_pct: observed.level_pct,
                is_at_home: Some(observed.at_home),
                ..SessionData::default()
            },
            baseline_power_kw: power_w / 1000.0,
            planned_baseline_eur: None,
            charging_seconds: 0.0,
            last_written_at: None,
            facts: SessionFlags::default(),
        });
        state.battery_at_plug_in = observed.level_pct;
        state.optimization_score = None;
        // A stop lasts only until the next plug-in: steering starts afresh.
        rt.pending = None;
        rt.fallback = false;
        rt.steer_failures = 0;
        rt.retry_at = None;
        transition.plugged_in_now = true;
    }
    let car_limit = state.charge_target_max.map(f64::from);
    if let Some(session) = rt.session.as_mut() {
        accrue(session, observed, book, customer);
        follow_settings(
            session,
            &claimed.vehicle.settings,
            claimed,
            car_limit,
            observed.at,
        );
        if observed.plugged_in {
            note_level(session, observed);
        }
    }
    if !observed.plugged_in
        && let Some(mut session) = rt.session.take()
    {
        refresh(&mut session, book, customer);
        let (outcome, reason) = judge(&facts(&session, observed.at));
        session.data.session_outcome = Some(outcome.as_str().to_owned());
        session.data.session_outcome_reason = reason.map(|r| r.as_str().to_owned());
        transition.closed = Some(record(&session, claimed, Some(observed.at)));
        rt.pending = None;
        rt.fallback = false;
        rt.steer_failures = 0;
        rt.retry_at = None;
    }
    transition
}

fn accrue(
    session: &mut OpenSession,
    observed: &Observed,
    book: &PriceBook,
    customer: Option<&CustomerBook>,
) {
    let data = &mut session.data;
    data.energy_charged_kwh += observed.energy_kwh;
    data.actual_cost_eur += book.cost_of(observed.energy_kwh, observed.energy_since, observed.at);
    if let Some(c) = customer {
        data.energy_contract_id.get_or_insert(c.contract_id);
        data.customer_currency
            .get_or_insert_with(|| c.currency.clone());
        *data.customer_cost.get_or_insert(0.0) +=
            c.book
                .cost_of(observed.energy_kwh, observed.energy_since, observed.at);
    }
    if observed.charging {
        let kw = observed.rate_w / 1000.0;
        data.peak_charge_power_kw = Some(data.peak_charge_power_kw.map_or(kw, |p| p.max(kw)));
    }
    if observed.energy_kwh > 0.0 {
        session.charging_seconds += (observed.at - observed.energy_since)
            .num_milliseconds()
            .max(0) as f64
            / 1000.0;
    }
}

/// The deadline and target in force: the first deadline after plug-in under the current settings
/// (so a change by the partner re-evaluates it), frozen once it has passed.
fn follow_settings(
    session: &mut OpenSession,
    settings: &EvSettings,
    claimed: &ClaimedVehicle,
    car_limit: Option<f64>,
    at: DateTime<Utc>,
) {
    let data = &mut session.data;
    if data.charge_deadline.is_some_and(|d| d <= at) {
        return;
    }
    let rule = settings_deadline_rule(settings);
    let tz = claimed.vehicle.price_zone.time_zone();
    let (deadline, target) = deadline_in_force(&rule, session.plug_in_time, tz, car_limit).unzip();
    let evaluated_before = session.facts.evaluated;
    if evaluated_before && (deadline != data.charge_deadline || target != data.target_soc_pct) {
        session.facts.target_changed = true;
        // The level that met the old target may not meet the new one: judge it afresh.
        let limit = car_limit.unwrap_or(100.0);
        if target.is_some_and(|t| {
            data.final_soc_pct
                .is_none_or(|l| !target_reached(l, t, limit))
        }) {
            data.target_reached_at = None;
        }
    }
    session.facts.evaluated = true;
    data.charge_deadline = deadline;
    data.inferred_session_end = deadline;
    data.target_soc_pct = target;
}

/// A reading while plugged in: the level so far and whether the target is reached.
fn note_level(session: &mut OpenSession, observed: &Observed) {
    let data = &mut session.data;
    let Some(level) = observed.level_pct else {
        return;
    };
    data.final_soc_pct = Some(level);
    if data.target_reached_at.is_none()
        && data
            .target_soc_pct
            .is_some_and(|t| target_reached(level, t, observed.cap_pct))
    {
        data.target_reached_at = Some(observed.at);
    }
}

/// Everything the verdict needs, from the session's record and flags, unplugged at `unplugged`.
fn facts(session: &OpenSession, unplugged: DateTime<Utc>) -> SessionFacts {
    let data = &session.data;
    let flags = &session.facts;
    SessionFacts {
        unplug_time: Some(unplugged),
        charge_deadline: data.charge_deadline,
        target_pct: data.target_soc_pct,
        target_reached_at: data.target_reached_at,
        is_at_home: data.is_at_home,
        boosted: flags.boosted,
        infeasible_at_plug_in: flags.infeasible_at_plug_in == Some(true),
        target_changed: flags.target_changed,
        paused: flags.paused,
        steering_failed: flags.steering_failed,
        cloud_unreachable: flags.cloud_unreachable,
    }
}

/// A failed read during a session: if the target is missed, the cloud may be why.
pub fn note_read_failure(rt: &mut VehicleRuntime) {
    if let Some(session) = rt.session.as_mut() {
        session.facts.cloud_unreachable = true;
    }
}

/// Recomputes the derived fields from the booked energy.
fn refresh(session: &mut OpenSession, book: &PriceBook, customer: Option<&CustomerBook>) {
    let data = &mut session.data;
    data.baseline_cost_eur = book.cost_charging_at_once(
        data.energy_charged_kwh,
        session.baseline_power_kw,
        session.plug_in_time,
    );
    data.actual_savings_eur = Some(data.baseline_cost_eur - data.actual_cost_eur);
    // The customer's baseline is priced only while the contract that priced the session holds.
    if let (Some(c), Some(cost)) = (customer, data.customer_cost)
        && data.energy_contract_id == Some(c.contract_id)
    {
        let baseline = c.book.cost_charging_at_once(
            data.energy_charged_kwh,
            session.baseline_power_kw,
            session.plug_in_time,
        );
        data.customer_baseline_cost = Some(baseline);
        data.customer_savings = Some(baseline - cost);
    }
    data.avg_charge_power_kw = (session.charging_seconds > 0.0)
        .then(|| data.energy_charged_kwh / (session.charging_seconds / 3600.0));
}

fn record(
    session: &OpenSession,
    claimed: &ClaimedVehicle,
    unplug_time: Option<DateTime<Utc>>,
) -> SessionRecord {
    let mut data = session.data.clone();
    if unplug_time.is_none() {
        data.session_outcome = Some(SessionOutcome::Open.as_str().to_owned());
    }
    SessionRecord {
        id: session.id,
        org_id: claimed.vehicle.org_id,
        vehicle_id: claimed.vehicle.id,
        plug_in_time: session.plug_in_time,
        unplug_time,
        data,
    }
}

/// Copies a fresh plan's expectations into the open session.
pub fn note_plan(rt: &mut VehicleRuntime, plan: Option<&Plan>) {
    let (Some(session), Some(plan)) = (rt.session.as_mut(), plan) else {
        return;
    };
    let data = &mut session.data;
    // Once the session's deadline has passed, plans aim at the next day's: not this session's.
    if data.charge_deadline.is_some_and(|d| d <= plan.planned_at) {
        return;
    }
    data.desired_charging_start_time = plan.intervals.first().map(|i| i.start);
    data.desired_charging_end_time = plan.intervals.last().map(|i| i.end);
    // The first plan with a target tells whether the target was reachable at plug-in.
    if session.facts.infeasible_at_plug_in.is_none()
        && plan.mode == PlanMode::Smart
        && plan.target_level.is_some()
    {
        session.facts.infeasible_at_plug_in = Some(!plan.feasible);
    }
    if session.planned_baseline_eur.is_none() && plan.energy_kwh > 0.0 {
        let savings = plan.savings();
        session.planned_baseline_eur = Some(savings.day_ahead_baseline_eur);
        data.expected_savings_eur = Some(savings.day_ahead_savings_eur);
        if savings.customer_savings.is_some() {
            data.customer_expected_savings = savings.customer_savings;
        }
    }
}

/// Refreshes the open session and the state's `optimization_score`; returns the session when it
/// is due to be written (new, or not written for a while).
pub fn update(
    rt: &mut VehicleRuntime,
    state: &mut EvState,
    observed: &Observed,
    (book, customer): (&PriceBook, Option<&CustomerBook>),
    now: DateTime<Utc>,
    claimed: &ClaimedVehicle,
) -> Option<SessionRecord> {
    let fallback = rt.fallback;
    let session = rt.session.as_mut()?;
    refresh(session, book, customer);
    let flags = &mut session.facts;
    flags.boosted |= crate::boost::boost_active(state);
    flags.paused |= claimed
        .vehicle
        .settings
        .pause_power_until
        .is_some_and(|until| until > observed.at);
    flags.steering_failed |= fallback || state.steering_status != StatusLevel::Ok;
    if let (Some(savings), Some(baseline)) = (
        session.data.expected_savings_eur,
        session.planned_baseline_eur,
    ) && baseline.abs() > 1e-9
    {
        state.optimization_score = Some((savings / baseline * 1000.0).round() / 10.0);
    }
    let due = session
        .last_written_at
        .is_none_or(|at| now - at >= SESSION_WRITE_EVERY);
    if !due {
        return None;
    }
    session.last_written_at = Some(now);
    Some(record(session, claimed, None))
}
