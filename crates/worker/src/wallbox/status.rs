//! The wallbox's three status dimensions and its boost.

use chrono::{DateTime, Duration, Utc};
use voltplan_core::charger::Charger;
use voltplan_core::vehicle::{BoostState, StatusLevel};
use voltplan_core::wallbox::{WallboxSettings, WallboxState};
use voltplan_store::ocpp::CommandStatus;

use super::types::{WallboxObserved, Wallboxes};
use crate::device::Work;

/// Offline this long, the connection status is an error (before: a warning).
const OFFLINE_ERROR_AFTER: Duration = Duration::minutes(15);

/// The three status dimensions from the charger document and the last call's fate.
pub(super) fn observe_status(
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
        // It takes no charging profiles: it charges at once, unsteered.
        _ if charger.smart_charging == Some(false) => StatusLevel::Warning,
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

/// Boost: a request starts it on a plugged-in car (else the API armed it for the next session),
/// an armed one starts with the next transaction, a cancellation or the end of the session ends it.
pub(super) fn apply_boost(
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
