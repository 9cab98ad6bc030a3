//! Boost: full power until full, whatever the price.
//!
//! Rules (also in `docs/worker.md`):
//! - `boost_state` is `unavailable` while unplugged or full, `available` while plugged in and not
//!   full, `requested` from the cycle that takes a boost up until a reading shows the car
//!   charging, then `ongoing`;
//! - a boost is taken up from `settings.boost_requested_at` (POST boost) when plugged in and not
//!   full; the request is cleared either way (a request while unplugged is refused);
//! - `boost_for_next_session` fires at the next plug-in and is then cleared;
//! - taking one up sets `last_boost_triggered_at`; it ends when the car is full
//!   (`charge_target_max`, else 100 %: reason `completed`) or unplugged (reason `unplugged`),
//!   setting `last_boost_ended_at` and `last_boost_end_reason`;
//! - a pause (`pause_power_until`) holds a boost too; it continues when the pause ends.

use chrono::{DateTime, Utc};
use voltplan_core::vehicle::{BoostState, EvSettings, EvState};

use crate::monitor::Observed;

/// What the cycle must clear in the partner's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoostEffects {
    pub clear_boost_for_next_session: bool,
    /// The request taken up or refused (its `boost_requested_at`), to clear unless renewed.
    pub clear_boost_request: Option<DateTime<Utc>>,
}

pub const END_COMPLETED: &str = "completed";
pub const END_UNPLUGGED: &str = "unplugged";

pub fn apply(
    settings: &EvSettings,
    state: &mut EvState,
    observed: &Observed,
    plugged_in_now: bool,
    now: DateTime<Utc>,
) -> BoostEffects {
    let mut effects = BoostEffects::default();
    state.boost_feature_enabled = true;
    if crate::boost::boost_active(state) {
        if !observed.plugged_in {
            end(state, END_UNPLUGGED, now);
        } else if observed.is_full() {
            end(state, END_COMPLETED, now);
        } else if state.boost_state == BoostState::Requested && observed.charging {
            state.boost_state = BoostState::Ongoing;
        }
    }
    if settings.boost_requested_at.is_some() {
        effects.clear_boost_request = settings.boost_requested_at;
        if !crate::boost::boost_active(state) && observed.plugged_in && !observed.is_full() {
            start(state, now);
        }
    }
    if plugged_in_now && settings.boost_for_next_session {
        effects.clear_boost_for_next_session = true;
        if !crate::boost::boost_active(state) && !observed.is_full() {
            start(state, now);
        }
    }
    if !crate::boost::boost_active(state) {
        // Podero: `unavailable` while full, already charging, or not connected.
        state.boost_state = if observed.plugged_in && !observed.is_full() && !observed.charging {
            BoostState::Available
        } else {
            BoostState::Unavailable
        };
    }
    effects
}

fn start(state: &mut EvState, now: DateTime<Utc>) {
    state.boost_state = BoostState::Requested;
    state.last_boost_triggered_at = Some(now);
    tracing::info!("boost taken up");
}

fn end(state: &mut EvState, reason: &str, now: DateTime<Utc>) {
    state.boost_state = BoostState::Unavailable;
    state.last_boost_ended_at = Some(now);
    state.last_boost_end_reason = Some(reason.to_owned());
    tracing::info!(reason, "boost ended");
}

/// Whether a boost holds the car at full power (used by steering and scheduling).
pub(crate) fn boost_active(state: &EvState) -> bool {
    matches!(
        state.boost_state,
        BoostState::Requested | BoostState::Ongoing
    )
}
