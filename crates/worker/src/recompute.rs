//! Recomputes stored, closed sessions from the `/data` rows under the rules the live worker
//! applies (`docs/worker.md`, *Sessions*): for sessions written before those rules existed
//! (`voltplan admin recompute-sessions`). Open sessions belong to the worker and are left alone.
//!
//! From the rows it takes the level at unplug (the last row while plugged in), when the target
//! was reached (the first row while plugged in at or above it) and gaps in monitoring. The
//! deadline and target are those of the vehicle's *current* settings resolved at plug-in: what
//! the partner had set during an old session is not stored anywhere. What rows cannot show (a
//! boost, a pause, a changed target, failed commands) is taken from the stored record where it
//! says so, else not assumed. Energy, cost and savings are left as they are: they were right.

use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;
use voltplan_core::planner::{DEFAULT_EFFICIENCY, settings_deadline_rule};
use voltplan_core::session::{SessionFacts, deadline_in_force, judge, target_reached};
use voltplan_store::fleet::{ReadingRecord, SessionRecord};
use voltplan_store::{OrgScope, Store, StoreError, VehicleRecord};

/// Monitoring rows are written at least every 15 minutes while readings succeed: a longer gap
/// while plugged in means the cloud could not be read.
const MONITORING_GAP: Duration = Duration::minutes(30);

/// What `recompute_sessions` did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RecomputeReport {
    pub sessions_checked: usize,
    pub sessions_changed: usize,
    /// Closed sessions of vehicles deleted since: left as they are.
    pub sessions_skipped: usize,
    /// Outcomes after recomputing, by name.
    pub outcomes: BTreeMap<String, usize>,
    /// Whether the changes were written (`false` for a dry run).
    pub written: bool,
}

/// Recomputes every closed session of the organisation; writes the changed ones unless `dry_run`.
pub async fn recompute_sessions(
    store: &dyn Store,
    org: OrgScope,
    dry_run: bool,
) -> Result<RecomputeReport, StoreError> {
    const PAGE: i64 = 500;
    // Every session (the extreme instants of chrono do not compare as text on SQLite).
    let (from, to) = (
        DateTime::<Utc>::UNIX_EPOCH,
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(365 * 8000),
    );
    let mut report = RecomputeReport {
        written: !dry_run,
        ..RecomputeReport::default()
    };
    let mut vehicles: HashMap<Uuid, Option<VehicleRecord>> = HashMap::new();
    let mut offset = 0;
    loop {
        let (_, page) = store
            .list_sessions(org, None, from, to, PAGE, offset)
            .await?;
        if page.is_empty() {
            break;
        }
        offset += page.len() as i64;
        for session in page {
            let Some(unplug) = session.unplug_time else {
                continue;
            };
            report.sessions_checked += 1;
            if let std::collections::hash_map::Entry::Vacant(slot) =
                vehicles.entry(session.vehicle_id)
            {
                slot.insert(
                    match store.get_vehicle_in_org(org, session.vehicle_id).await {
                        Ok(v) => Some(v),
                        Err(StoreError::NotFound) => None,
                        Err(e) => return Err(e),
                    },
                );
            }
            let Some(Some(vehicle)) = vehicles.get(&session.vehicle_id) else {
                report.sessions_skipped += 1;
                continue;
            };
            let rows = store
                .list_readings(
                    org,
                    session.vehicle_id,
                    session.plug_in_time,
                    unplug + Duration::seconds(1),
                )
                .await?;
            let fresh = recompute(&session, &rows, vehicle);
            let outcome = fresh.data.session_outcome.clone().unwrap_or_default();
            *report.outcomes.entry(outcome).or_default() += 1;
            if fresh != session {
                report.sessions_changed += 1;
                if !dry_run {
                    store.upsert_session(&fresh).await?;
                }
            }
        }
    }
    Ok(report)
}

/// One closed session under the written rules, from its `/data` rows and the vehicle.
pub fn recompute(
    session: &SessionRecord,
    rows: &[ReadingRecord],
    vehicle: &VehicleRecord,
) -> SessionRecord {
    let mut fresh = session.clone();
    let Some(unplug) = session.unplug_time else {
        return fresh;
    };
    let settings = &vehicle.settings;
    let rule = settings_deadline_rule(settings);
    let car_limit = vehicle.state.charge_target_max.map(f64::from);
    let tz = vehicle.price_zone.time_zone();
    let (deadline, target) = deadline_in_force(&rule, session.plug_in_time, tz, car_limit).unzip();

    let plugged: Vec<&ReadingRecord> = rows
        .iter()
        .filter(|r| r.is_plugged_in == Some(true) && r.at < unplug)
        .collect();
    let data = &mut fresh.data;
    if let Some(level) = plugged.iter().rev().find_map(|r| r.battery_level) {
        data.final_soc_pct = Some(level);
    }
    data.charge_deadline = deadline;
    data.inferred_session_end = deadline;
    data.target_soc_pct = target;
    data.target_reached_at = target.and_then(|t| {
        plugged
            .iter()
            .find(|r| {
                r.battery_level
                    .is_some_and(|l| target_reached(l, t, car_limit.unwrap_or(100.0)))
            })
            .map(|r| r.at)
    });
    let cloud_unreachable = plugged
        .windows(2)
        .any(|pair| pair[1].at - pair[0].at > MONITORING_GAP);
    let stored_reason = session.data.session_outcome_reason.as_deref();
    let facts = SessionFacts {
        unplug_time: Some(unplug),
        charge_deadline: deadline,
        target_pct: target,
        target_reached_at: data.target_reached_at,
        is_at_home: data.is_at_home,
        boosted: session.data.session_outcome.as_deref() == Some("boosted"),
        infeasible_at_plug_in: infeasible_at_plug_in(session, vehicle, deadline, target),
        target_changed: stored_reason == Some("target_changed"),
        paused: stored_reason == Some("paused"),
        steering_failed: stored_reason == Some("steering_failure"),
        cloud_unreachable: cloud_unreachable || stored_reason == Some("cloud_unreachable"),
    };
    let (outcome, reason) = judge(&facts);
    data.session_outcome = Some(outcome.as_str().to_owned());
    data.session_outcome_reason = reason.map(|r| r.as_str().to_owned());
    fresh
}

/// Charging at full power from plug-in could not have reached the target by the deadline.
fn infeasible_at_plug_in(
    session: &SessionRecord,
    vehicle: &VehicleRecord,
    deadline: Option<DateTime<Utc>>,
    target: Option<f64>,
) -> bool {
    let (Some(deadline), Some(target), Some(initial)) =
        (deadline, target, session.data.initial_soc_pct)
    else {
        return false;
    };
    let capacity = vehicle
        .state
        .reported_battery_capacity_kwh
        .filter(|c| *c > 0.0)
        .unwrap_or(vehicle.settings.battery_capacity_kwh);
    let power_kw = f64::from(vehicle.settings.expected_max_charge_power) / 1000.0;
    if capacity <= 0.0 || power_kw <= 0.0 {
        return false;
    }
    let need_kwh = (target - initial).max(0.0) / 100.0 * capacity / DEFAULT_EFFICIENCY;
    let hours = (deadline - session.plug_in_time).num_seconds().max(0) as f64 / 3600.0;
    need_kwh > power_kw * hours + 1e-9
}
