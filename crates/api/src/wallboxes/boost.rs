//! `POST/DELETE …/wallboxes/{wallbox_id}/boost` (Podero §3.8, §4.9): the same wishes as an EV's,
//! recorded in the settings for the worker, decided on the charger's connector status (the
//! central system's document) instead of a vehicle cloud's reading.

use chrono::{DateTime, Utc};
use voltplan_core::vehicle::BoostState;
use voltplan_store::WallboxRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// Plugged in and idle: ask the worker to charge at full power now.
    ChargeNow,
    /// Not plugged in: arm the boost for the next session.
    ArmNextSession,
    Refuse(BoostState, &'static str),
}

pub(super) fn decide(w: &WallboxRecord) -> Decision {
    let shown = crate::boost::shown_boost_state(
        w.settings.boost_requested_at.is_some(),
        w.state.boost_state,
    );
    if matches!(shown, BoostState::Requested | BoostState::Ongoing) {
        return Decision::Refuse(shown, "already_charging");
    }
    // A charger that never reported a status counts as unplugged: arming is harmless.
    if !w.charger.is_plugged_in() {
        return Decision::ArmNextSession;
    }
    if w.charger.is_charging() {
        return Decision::Refuse(shown, "already_charging");
    }
    // Full only when the charger reports the car's state of charge (few do).
    let cap = w.settings.charge_target_max.unwrap_or(100);
    if w.charger.soc.is_some_and(|soc| soc >= f64::from(cap)) {
        return Decision::Refuse(shown, "fully_charged");
    }
    Decision::ChargeNow
}

/// Applies `decision` to the settings; `false` when there is nothing to write (a refusal, or a
/// boost armed already).
pub(super) fn request(w: &mut WallboxRecord, decision: Decision, now: DateTime<Utc>) -> bool {
    let s = &mut w.settings;
    match decision {
        Decision::ChargeNow => s.boost_requested_at = Some(now),
        Decision::ArmNextSession if s.boost_for_next_session => return false,
        Decision::ArmNextSession => s.boost_for_next_session = true,
        Decision::Refuse(..) => return false,
    }
    w.updated_at = now;
    true
}

/// Unlike an EV's, a wallbox's `DELETE …/boost` also ends a live boost (Podero §3.8): it clears
/// the armed flag and a pending request, and asks the worker to end an ongoing boost. `false`
/// when there is nothing to clear.
pub(super) fn cancel(w: &mut WallboxRecord, now: DateTime<Utc>) -> bool {
    let ongoing = w.state.boost_state == BoostState::Ongoing
        && w.settings
            .boost_cancelled_at
            .is_none_or(|at| w.state.last_boost_triggered_at.is_some_and(|t| t > at));
    let s = &mut w.settings;
    if !(s.boost_for_next_session || s.boost_requested_at.is_some() || ongoing) {
        return false;
    }
    s.boost_for_next_session = false;
    s.boost_requested_at = None;
    if ongoing {
        s.boost_cancelled_at = Some(now);
    }
    w.updated_at = now;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltplan_core::charger::ConnectorStatus;
    use voltplan_store::{OrgScope, new_wallbox};

    fn wallbox(status: Option<ConnectorStatus>) -> WallboxRecord {
        let mut w = new_wallbox(
            OrgScope::new(uuid::Uuid::nil()),
            uuid::Uuid::nil(),
            "vp-test".into(),
            DateTime::UNIX_EPOCH,
        );
        w.charger.connected = true;
        w.charger.connector_status = status;
        w
    }

    #[test]
    fn decisions_follow_the_connector() {
        assert_eq!(decide(&wallbox(None)), Decision::ArmNextSession);
        assert_eq!(
            decide(&wallbox(Some(ConnectorStatus::Available))),
            Decision::ArmNextSession
        );
        assert_eq!(
            decide(&wallbox(Some(ConnectorStatus::SuspendedEVSE))),
            Decision::ChargeNow
        );
        assert_eq!(
            decide(&wallbox(Some(ConnectorStatus::Charging))),
            Decision::Refuse(BoostState::Unavailable, "already_charging")
        );
        let mut full = wallbox(Some(ConnectorStatus::SuspendedEV));
        full.settings.charge_target_max = Some(80);
        full.charger.soc = Some(80.0);
        assert_eq!(
            decide(&full),
            Decision::Refuse(BoostState::Unavailable, "fully_charged")
        );
        let mut requested = wallbox(Some(ConnectorStatus::Preparing));
        assert!(request(
            &mut requested,
            Decision::ChargeNow,
            DateTime::UNIX_EPOCH
        ));
        assert_eq!(
            decide(&requested),
            Decision::Refuse(BoostState::Requested, "already_charging")
        );
    }

    #[test]
    fn cancelling_clears_everything_once() {
        let now = DateTime::UNIX_EPOCH;
        let mut w = wallbox(None);
        assert!(!cancel(&mut w, now), "nothing armed: nothing written");
        w.settings.boost_for_next_session = true;
        assert!(cancel(&mut w, now));
        assert!(!w.settings.boost_for_next_session);
        w.state.boost_state = BoostState::Ongoing;
        assert!(cancel(&mut w, now));
        assert_eq!(w.settings.boost_cancelled_at, Some(now));
        assert!(!cancel(&mut w, now), "the live boost is already cancelled");
    }
}
