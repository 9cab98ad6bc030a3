//! Charging sessions, plug-in to unplug, with Podero's session fields.
//!
//! - A reading that shows the car plugged in with no open session opens one; `battery_at_plug_in`
//!   and `initial_soc_pct` are its level. The energy drawn before that first reading (the car
//!   charges on its own at plug-in) belongs to the new session.
//! - Energy is the difference of the cloud's meter between readings; its cost is priced by the
//!   slots the stretch between the two readings spans (energy spread evenly over it).
//! - Baseline cost: the same energy drawn at full power from plug-in on ("charging at once").
//! - A reading that shows the car unplugged closes the session: `session_outcome` is
//!   `not_at_home` (plugged in away from home), `completed` (target reached, or no target),
//!   `target_missed` (unplugged after the deadline below target) or `unplugged_early`.
//! - `optimization_score` = the session's expected savings in percent of its expected baseline,
//!   from the first plan of the session that charges anything; it keeps its value after unplug.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use voltplan_core::planner::{Plan, max_charge_power_w};
use voltplan_core::vehicle::EvState;
use voltplan_store::fleet::{ClaimedVehicle, SessionData, SessionRecord};

use crate::PriceBook;
use crate::monitor::Observed;
use crate::runtime::{OpenSession, VehicleRuntime};

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
    if let Some(session) = rt.session.as_mut() {
        accrue(session, observed, book);
    }
    if !observed.plugged_in
        && let Some(mut session) = rt.session.take()
    {
        refresh(&mut session, observed, book);
        session.data.session_outcome = Some(outcome(&session.data, observed.at).to_owned());
        transition.closed = Some(record(&session, claimed, Some(observed.at)));
        rt.pending = None;
        rt.fallback = false;
        rt.steer_failures = 0;
        rt.retry_at = None;
    }
    transition
}

fn accrue(session: &mut OpenSession, observed: &Observed, book: &PriceBook) {
    let data = &mut session.data;
    data.energy_charged_kwh += observed.energy_kwh;
    data.actual_cost_eur += book.cost_of(observed.energy_kwh, observed.energy_since, observed.at);
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

/// Recomputes the derived fields from the booked energy.
fn refresh(session: &mut OpenSession, observed: &Observed, book: &PriceBook) {
    let data = &mut session.data;
    data.final_soc_pct = observed.level_pct;
    data.baseline_cost_eur = book.cost_charging_at_once(
        data.energy_charged_kwh,
        session.baseline_power_kw,
        session.plug_in_time,
    );
    data.actual_savings_eur = Some(data.baseline_cost_eur - data.actual_cost_eur);
    data.avg_charge_power_kw = (session.charging_seconds > 0.0)
        .then(|| data.energy_charged_kwh / (session.charging_seconds / 3600.0));
}

fn outcome(data: &SessionData, unplugged_at: DateTime<Utc>) -> &'static str {
    if data.is_at_home == Some(false) {
        return "not_at_home";
    }
    let reached = match (data.target_soc_pct, data.final_soc_pct) {
        (Some(target), Some(level)) => level >= target - 0.5,
        _ => true,
    };
    if reached {
        "completed"
    } else if data.charge_deadline.is_some_and(|d| unplugged_at >= d) {
        "target_missed"
    } else {
        "unplugged_early"
    }
}

fn record(
    session: &OpenSession,
    claimed: &ClaimedVehicle,
    unplug_time: Option<DateTime<Utc>>,
) -> SessionRecord {
    SessionRecord {
        id: session.id,
        org_id: claimed.vehicle.org_id,
        vehicle_id: claimed.vehicle.id,
        plug_in_time: session.plug_in_time,
        unplug_time,
        data: session.data.clone(),
    }
}

/// Copies a fresh plan's expectations into the open session.
pub fn note_plan(rt: &mut VehicleRuntime, plan: Option<&Plan>) {
    let (Some(session), Some(plan)) = (rt.session.as_mut(), plan) else {
        return;
    };
    let data = &mut session.data;
    data.desired_charging_start_time = plan.intervals.first().map(|i| i.start);
    data.desired_charging_end_time = plan.intervals.last().map(|i| i.end);
    data.charge_deadline = plan.deadline;
    data.inferred_session_end = plan.deadline;
    data.target_soc_pct = plan.target_level;
    if session.planned_baseline_eur.is_none() && plan.energy_kwh > 0.0 {
        session.planned_baseline_eur = Some(plan.baseline_cost_eur);
        data.expected_savings_eur = Some(plan.savings_eur);
    }
}

/// Refreshes the open session and the state's `optimization_score`; returns the session when it
/// is due to be written (new, or not written for a while).
pub fn update(
    rt: &mut VehicleRuntime,
    state: &mut EvState,
    observed: &Observed,
    book: &PriceBook,
    now: DateTime<Utc>,
    claimed: &ClaimedVehicle,
) -> Option<SessionRecord> {
    let session = rt.session.as_mut()?;
    refresh(session, observed, book);
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
