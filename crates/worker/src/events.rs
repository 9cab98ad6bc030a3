//! The webhook events a cycle's changes cause (`voltplan_core::events` lists them): what the
//! partner can see changed between the state the cycle started from and the one it writes.
//! They are written with the cycle's fenced finish (the outbox), never sent from here.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use voltplan_core::events::Event;
use voltplan_core::vehicle::{BoostState, EvState, StatusLevel};
use voltplan_core::wallbox::WallboxState;
use voltplan_store::fleet::{ClaimedVehicle, SessionRecord};

/// `None → Some(true)` counts (a car first seen plugged in was plugged in); `Some → None` (the
/// cloud stopped saying) does not.
fn turned(before: Option<bool>, after: Option<bool>) -> Option<bool> {
    match (before, after) {
        (Some(a), Some(b)) if a != b => Some(b),
        (None, Some(true)) => Some(true),
        _ => None,
    }
}

fn as_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// What a plan commits to: a plan made again with the same schedule and goal is not news.
fn plan_gist(plan: &Value) -> [&Value; 5] {
    ["intervals", "feasible", "target_level", "deadline", "mode"].map(|key| &plan[key])
}

/// What the events compare, for any kind of device: the partner-visible facts of one state.
pub(crate) struct Facts<'a> {
    pub connection_status: StatusLevel,
    pub lifecycle_state: &'a str,
    pub lifecycle_error: Option<&'a str>,
    pub action_needed: bool,
    pub is_authenticated: Option<bool>,
    pub boost_state: BoostState,
    pub last_boost_end_reason: Option<&'a str>,
    pub is_plugged_in: Option<bool>,
    pub is_charging: Option<bool>,
    pub charge_rate_w: Option<i32>,
    pub battery_level: Option<i32>,
}

impl<'a> Facts<'a> {
    pub fn of_ev(state: &'a EvState) -> Self {
        Facts {
            connection_status: state.connection_status,
            lifecycle_state: &state.lifecycle_state,
            lifecycle_error: state.lifecycle_error.as_deref(),
            action_needed: state.action_needed,
            is_authenticated: state.is_authenticated,
            boost_state: state.boost_state,
            last_boost_end_reason: state.last_boost_end_reason.as_deref(),
            is_plugged_in: state.is_plugged_in,
            is_charging: state.is_charging,
            charge_rate_w: state.charge_rate_w,
            battery_level: state.battery_level,
        }
    }

    /// A wallbox's plug and charging are the charger's own (told by the central system), not
    /// the worker's: only its connection, boost, sessions and plans make events here.
    pub fn of_wallbox(state: &'a WallboxState) -> Self {
        Facts {
            connection_status: state.connection_status,
            lifecycle_state: &state.lifecycle_state,
            lifecycle_error: state.lifecycle_error.as_deref(),
            action_needed: state.action_needed,
            is_authenticated: None,
            boost_state: state.boost_state,
            last_boost_end_reason: state.last_boost_end_reason.as_deref(),
            is_plugged_in: None,
            is_charging: None,
            charge_rate_w: None,
            battery_level: None,
        }
    }
}

/// The device a cycle ran for.
pub(crate) struct DeviceRef {
    pub device_type: &'static str,
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub building_id: Option<Uuid>,
    /// The level due by the deadline (`minimum_charge_limit`), for `device.target_reached`.
    pub target_level: Option<i32>,
}

/// The events of one EV cycle, in the order they happened.
pub(crate) fn ev_events(
    claimed: &ClaimedVehicle,
    state: &EvState,
    plan_json: Option<&str>,
    sessions: &[SessionRecord],
    now: DateTime<Utc>,
) -> Vec<Event> {
    let vehicle = &claimed.vehicle;
    let device = DeviceRef {
        device_type: "electric_vehicle",
        id: vehicle.id,
        org_id: vehicle.org_id,
        user_id: vehicle.user_id,
        building_id: vehicle.building_id,
        target_level: vehicle.settings.minimum_charge_limit,
    };
    let change = Change {
        before: Facts::of_ev(&vehicle.state),
        after: Facts::of_ev(state),
        old_plan: claimed.plan.as_deref(),
        new_plan: plan_json,
        sessions,
    };
    device_events(&device, &change, now)
}

/// What a cycle changed.
pub(crate) struct Change<'a> {
    pub before: Facts<'a>,
    pub after: Facts<'a>,
    /// The plan (JSON text) the cycle started from, and the one it writes.
    pub old_plan: Option<&'a str>,
    pub new_plan: Option<&'a str>,
    /// Sessions the cycle wrote; the closed ones are completed sessions.
    pub sessions: &'a [SessionRecord],
}

/// The events of one cycle of any device, in the order they happened.
pub(crate) fn device_events(
    device: &DeviceRef,
    change: &Change<'_>,
    now: DateTime<Utc>,
) -> Vec<Event> {
    let (before, after) = (&change.before, &change.after);
    let data = |extra: Value| {
        let mut data = json!({
            "device_type": device.device_type,
            "device_id": device.id,
            "user_id": device.user_id,
            "building_id": device.building_id,
            "battery_level": after.battery_level,
            "is_plugged_in": after.is_plugged_in,
            "is_charging": after.is_charging,
        });
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        data
    };
    let mut events = Vec::new();
    let mut push = |event_type: &'static str, data: Value| {
        events.push(Event::about_device(
            event_type,
            device.org_id,
            device.id,
            now,
            data,
        ));
    };

    if before.connection_status != after.connection_status
        || before.lifecycle_state != after.lifecycle_state
    {
        push(
            "device.connection_changed",
            data(json!({
                "previous": {
                    "connection_status": as_json(&before.connection_status),
                    "lifecycle_state": before.lifecycle_state,
                },
                "connection_status": as_json(&after.connection_status),
                "lifecycle_state": after.lifecycle_state,
                "lifecycle_error": after.lifecycle_error,
            })),
        );
    }
    if before.action_needed != after.action_needed {
        let event_type = if after.action_needed {
            "device.action_needed"
        } else {
            "device.action_resolved"
        };
        push(
            event_type,
            data(json!({
                "action_type": "reauthenticate",
                "is_authenticated": after.is_authenticated,
            })),
        );
    }
    if let Some(plugged) = turned(before.is_plugged_in, after.is_plugged_in) {
        let event_type = if plugged {
            "device.plugged_in"
        } else {
            "device.unplugged"
        };
        push(event_type, data(json!({})));
    }
    if let Some(charging) = turned(before.is_charging, after.is_charging) {
        let event_type = if charging {
            "device.charging_started"
        } else {
            "device.charging_stopped"
        };
        push(
            event_type,
            data(json!({"charge_rate_w": after.charge_rate_w})),
        );
    }
    if let (Some(target), Some(level)) = (device.target_level, after.battery_level) {
        let was_below = before.battery_level.is_none_or(|l| l < target);
        if was_below && level >= target && after.is_plugged_in == Some(true) {
            push(
                "device.target_reached",
                data(json!({"target_level": target})),
            );
        }
    }
    if before.boost_state != after.boost_state {
        push(
            "device.boost_changed",
            data(json!({
                "previous_boost_state": as_json(&before.boost_state),
                "boost_state": as_json(&after.boost_state),
                "last_boost_end_reason": after.last_boost_end_reason,
            })),
        );
    }
    for session in change.sessions.iter().filter(|s| s.unplug_time.is_some()) {
        let d = &session.data;
        push(
            "device.session_completed",
            data(json!({
                "session_id": session.id,
                "plug_in_time": session.plug_in_time,
                "unplug_time": session.unplug_time,
                "session_outcome": d.session_outcome,
                "session_outcome_reason": d.session_outcome_reason,
                "initial_soc_pct": d.initial_soc_pct,
                "final_soc_pct": d.final_soc_pct,
                "target_soc_pct": d.target_soc_pct,
                "energy_charged_kwh": d.energy_charged_kwh,
                "actual_cost_eur": d.actual_cost_eur,
                "baseline_cost_eur": d.baseline_cost_eur,
                "actual_savings_eur": d.actual_savings_eur,
            })),
        );
    }
    if let Some(new) = change.new_plan.filter(|new| Some(*new) != change.old_plan) {
        let new: Value = serde_json::from_str(new).unwrap_or(Value::Null);
        let old: Option<Value> = change
            .old_plan
            .and_then(|old| serde_json::from_str(old).ok());
        if old
            .as_ref()
            .is_none_or(|old| plan_gist(old) != plan_gist(&new))
        {
            let plan: serde_json::Map<String, Value> = PLAN_KEYS
                .iter()
                .map(|key| ((*key).to_owned(), new[*key].clone()))
                .collect();
            push("device.plan_changed", data(json!({"plan": plan})));
        }
    }
    events
}

/// What `device.plan_changed` shows of a plan.
const PLAN_KEYS: [&str; 11] = [
    "planned_at",
    "mode",
    "feasible",
    "energy_kwh",
    "expected_cost_eur",
    "savings_eur",
    "target_level",
    "deadline",
    "ready_by",
    "intervals",
    "explanation",
];

#[cfg(test)]
mod tests {
    use super::turned;

    #[test]
    fn only_known_changes_turn() {
        assert_eq!(turned(Some(false), Some(true)), Some(true));
        assert_eq!(turned(Some(true), Some(false)), Some(false));
        assert_eq!(turned(None, Some(true)), Some(true));
        assert_eq!(turned(None, Some(false)), None);
        assert_eq!(turned(Some(true), None), None);
        assert_eq!(turned(Some(true), Some(true)), None);
    }
}
