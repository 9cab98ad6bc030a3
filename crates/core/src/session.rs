//! The rules that judge a charging session (plug-in to unplug), shared by the live worker and the
//! `voltplan admin recompute-sessions` command so both reach the same verdict from the same facts.
//! The table of rules is in `docs/worker.md` (*Sessions*).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::planner::{DeadlineRule, next_deadline};

/// How a session ended (`session_outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOutcome {
    /// Still plugged in.
    Open,
    /// The target was reached by the deadline (or there was no target).
    Completed,
    /// Plugged in until the deadline, target not reached by then (see [`MissReason`]).
    TargetMissed,
    /// Unplugged before the deadline, target not reached.
    UnpluggedEarly,
    /// Plugged in away from home: smart charging did not apply.
    NotAtHome,
    /// The driver asked for full power (boost) during the session.
    Boosted,
}

impl SessionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::TargetMissed => "target_missed",
            Self::UnpluggedEarly => "unplugged_early",
            Self::NotAtHome => "not_at_home",
            Self::Boosted => "boosted",
        }
    }
}

/// Why a target was missed although the car stayed plugged in until the deadline
/// (`session_outcome_reason`), the first that applies in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissReason {
    /// Even charging at full power from plug-in could not reach the target in time.
    InfeasibleAtPlugIn,
    /// The target or deadline was changed during the session and could no longer be met.
    TargetChanged,
    /// Charging was paused (`pause_power_until`) during the session.
    Paused,
    /// Commands to the car failed or were not carried out.
    SteeringFailure,
    /// The car's cloud could not be read during the session.
    CloudUnreachable,
    /// None of the above: the car took more energy or time than planned.
    SlowerThanPlanned,
}

impl MissReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InfeasibleAtPlugIn => "infeasible_at_plug_in",
            Self::TargetChanged => "target_changed",
            Self::Paused => "paused",
            Self::SteeringFailure => "steering_failure",
            Self::CloudUnreachable => "cloud_unreachable",
            Self::SlowerThanPlanned => "slower_than_planned",
        }
    }
}

/// What is known about a session when it is judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFacts {
    /// `None` while the car is still plugged in.
    pub unplug_time: Option<DateTime<Utc>>,
    /// The deadline in force during the session (see [`deadline_in_force`]).
    pub charge_deadline: Option<DateTime<Utc>>,
    pub target_pct: Option<f64>,
    /// The first reading while plugged in at or above the target.
    pub target_reached_at: Option<DateTime<Utc>>,
    pub is_at_home: Option<bool>,
    pub boosted: bool,
    pub infeasible_at_plug_in: bool,
    pub target_changed: bool,
    pub paused: bool,
    pub steering_failed: bool,
    pub cloud_unreachable: bool,
}

/// The verdict on a session; a reason only for [`SessionOutcome::TargetMissed`].
pub fn judge(facts: &SessionFacts) -> (SessionOutcome, Option<MissReason>) {
    let Some(unplugged) = facts.unplug_time else {
        return (SessionOutcome::Open, None);
    };
    if facts.is_at_home == Some(false) {
        return (SessionOutcome::NotAtHome, None);
    }
    if facts.boosted {
        return (SessionOutcome::Boosted, None);
    }
    let (Some(_), Some(deadline)) = (facts.target_pct, facts.charge_deadline) else {
        return (SessionOutcome::Completed, None);
    };
    if facts.target_reached_at.is_some_and(|at| at <= deadline) {
        return (SessionOutcome::Completed, None);
    }
    if unplugged < deadline {
        return (SessionOutcome::UnpluggedEarly, None);
    }
    let reason = if facts.infeasible_at_plug_in {
        MissReason::InfeasibleAtPlugIn
    } else if facts.target_changed {
        MissReason::TargetChanged
    } else if facts.paused {
        MissReason::Paused
    } else if facts.steering_failed {
        MissReason::SteeringFailure
    } else if facts.cloud_unreachable {
        MissReason::CloudUnreachable
    } else {
        MissReason::SlowerThanPlanned
    };
    (SessionOutcome::TargetMissed, Some(reason))
}

/// A car counts as full within this many points of its own charge limit: cars stop charging a
/// little short of it (`is_fully_charged`).
pub const FULL_TOLERANCE_PCT: f64 = 0.5;

/// Whether a level, as the car reports it, reaches the target: at or above it (a car asked for
/// 80 % must show 80 %, not 79.8 %, which its app shows as 79 %), or full at its own limit
/// (`car_limit_pct`, 100 when unknown) when the target is that limit or more: a car asked for
/// 100 % that stopped at 99.6 % because it is full has done all it can.
pub fn target_reached(level_pct: f64, target_pct: f64, car_limit_pct: f64) -> bool {
    level_pct >= target_pct
        || (target_pct >= car_limit_pct && level_pct >= car_limit_pct - FULL_TOLERANCE_PCT)
}

/// The deadline and target in force for a session that began at `plug_in`: the first deadline
/// of `rule` after plug-in, its target capped at the car's own limit (`charge_target_max`, which
/// no plan can pass). `tz` is the price zone's time zone; a weekly policy with its own time zone
/// is read in that one ([`next_deadline`]).
pub fn deadline_in_force(
    rule: &DeadlineRule,
    plug_in: DateTime<Utc>,
    tz: Tz,
    car_limit_pct: Option<f64>,
) -> Option<(DateTime<Utc>, f64)> {
    let deadline = next_deadline(rule, plug_in, tz)?;
    let target = car_limit_pct.map_or(deadline.target_pct, |cap| deadline.target_pct.min(cap));
    Some((deadline.at, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveTime, TimeZone};

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 11, 12, 17, 0, 0).unwrap() + Duration::hours(h)
    }

    fn at_home(unplug_h: i64, reached_h: Option<i64>) -> SessionFacts {
        SessionFacts {
            unplug_time: Some(t(unplug_h)),
            charge_deadline: Some(t(12)),
            target_pct: Some(80.0),
            target_reached_at: reached_h.map(t),
            is_at_home: Some(true),
            ..SessionFacts::default()
        }
    }

    #[test]
    fn outcomes_follow_the_table() {
        let open = SessionFacts {
            unplug_time: None,
            ..at_home(0, None)
        };
        assert_eq!(judge(&open).0, SessionOutcome::Open);
        assert_eq!(judge(&at_home(14, Some(9))).0, SessionOutcome::Completed);
        // Reached and unplugged before the deadline: completed, not early.
        assert_eq!(judge(&at_home(10, Some(9))).0, SessionOutcome::Completed);
        assert_eq!(judge(&at_home(10, None)).0, SessionOutcome::UnpluggedEarly);
        assert_eq!(
            judge(&at_home(14, Some(13))),
            (
                SessionOutcome::TargetMissed,
                Some(MissReason::SlowerThanPlanned)
            )
        );
        let away = SessionFacts {
            is_at_home: Some(false),
            ..at_home(14, Some(9))
        };
        assert_eq!(judge(&away).0, SessionOutcome::NotAtHome);
        let boosted = SessionFacts {
            boosted: true,
            ..at_home(10, None)
        };
        assert_eq!(judge(&boosted).0, SessionOutcome::Boosted);
        let no_target = SessionFacts {
            target_pct: None,
            charge_deadline: None,
            ..at_home(3, None)
        };
        assert_eq!(judge(&no_target).0, SessionOutcome::Completed);
    }

    #[test]
    fn a_missed_target_names_the_first_reason_that_applies() {
        let missed = |f: SessionFacts| judge(&f).1;
        let base = at_home(14, None);
        assert_eq!(
            missed(SessionFacts {
                infeasible_at_plug_in: true,
                steering_failed: true,
                ..base.clone()
            }),
            Some(MissReason::InfeasibleAtPlugIn)
        );
        assert_eq!(
            missed(SessionFacts {
                target_changed: true,
                cloud_unreachable: true,
                ..base.clone()
            }),
            Some(MissReason::TargetChanged)
        );
        assert_eq!(
            missed(SessionFacts {
                steering_failed: true,
                cloud_unreachable: true,
                ..base.clone()
            }),
            Some(MissReason::SteeringFailure)
        );
        assert_eq!(
            missed(SessionFacts {
                cloud_unreachable: true,
                ..base
            }),
            Some(MissReason::CloudUnreachable)
        );
    }

    #[test]
    fn reaching_means_at_or_above_the_target_as_reported() {
        assert!(!target_reached(79.8, 80.0, 100.0));
        assert!(target_reached(80.0, 80.0, 100.0));
        assert!(target_reached(80.4, 80.0, 100.0));
        // Full: at its own limit, within half a point.
        assert!(target_reached(99.6, 100.0, 100.0));
        assert!(target_reached(89.7, 90.0, 90.0));
        assert!(!target_reached(99.4, 100.0, 100.0));
        assert!(!target_reached(89.7, 90.0, 100.0));
    }

    #[test]
    fn the_deadline_in_force_is_the_first_after_plug_in_capped_by_the_car() {
        let rule = DeadlineRule::Daily {
            at: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            target_pct: 90.0,
        };
        let tz = chrono_tz::Europe::Berlin;
        // Plug-in 18:00 Berlin: 06:00 Berlin the next morning (05:00 UTC).
        let (at, target) = deadline_in_force(&rule, t(0), tz, Some(85.0)).unwrap();
        assert_eq!(at, t(12));
        assert_eq!(target, 85.0);
        // Plugged in at 05:30 Berlin: that same morning's 06:00.
        let (at, _) = deadline_in_force(&rule, t(11) + Duration::minutes(30), tz, None).unwrap();
        assert_eq!(at, t(12));
        assert!(deadline_in_force(&DeadlineRule::None, t(0), tz, None).is_none());
    }
}
