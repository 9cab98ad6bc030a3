//! The decision: what the plan wants of the car now, whether the reading already shows it, and
//! the mode the partner sees.

use chrono::{DateTime, Utc};
use voltplan_core::planner::{Plan, PlanMode, Reason};
use voltplan_core::session::target_reached;
use voltplan_core::vehicle::{EvSettings, EvState};

use crate::device::Desired;
use crate::monitor::Observed;
use crate::runtime::{CommandKind, VehicleRuntime};

/// The plan's charging is over (or there is none left: the planner sees the level the API shows,
/// rounded) but the car reports less than the target before the deadline: keep charging until the
/// car reports the target, so a car asked for 80 % shows 80 %, not 79.8 % (79 % in its app).
/// Under a shared power limit only inside the windows its group left it (they are reserved for this
/// car): a start that came late finishes there rather than after the deadline.
pub fn tops_up(plan: &Plan, observed: &Observed, now: DateTime<Utc>) -> bool {
    let (Some(target), Some(deadline)) = (plan.target_level, plan.deadline) else {
        return false;
    };
    plan.mode == PlanMode::Smart
        && plan
            .shared_limit
            .as_ref()
            .is_none_or(|shared| shared.window_at(now).is_some())
        && observed.plugged_in
        && now < deadline
        && plan.intervals.iter().all(|i| i.end <= now)
        && !observed.is_full()
        && observed
            .level_pct
            .is_some_and(|level| !target_reached(level, target, observed.cap_pct))
}

/// The plan's wish at `now`, as a command and its lease-independent decision id.
pub fn desired(
    plan: Option<&Plan>,
    settings: &EvSettings,
    rt: &VehicleRuntime,
    observed: &Observed,
    now: DateTime<Utc>,
) -> Desired<CommandKind> {
    if !observed.plugged_in {
        return Desired::Leave;
    }
    let session = rt
        .session
        .as_ref()
        .map_or_else(|| "none".to_owned(), |s| s.id.to_string());
    if rt.fallback {
        return Desired::Act {
            command: CommandKind::StartCharging,
            decision: format!("{session}:fallback:start"),
        };
    }
    let Some(plan) = plan else {
        return Desired::Leave;
    };
    let intervals = &plan.intervals;
    if let Some(k) = intervals
        .iter()
        .position(|i| i.start <= now && now < i.end && i.power_w > 0.0)
    {
        // The switch is where the contiguous block containing `now` began.
        let mut first = k;
        while first > 0 && intervals[first - 1].end == intervals[first].start {
            first -= 1;
        }
        let at = intervals[first].start.timestamp();
        return Desired::Act {
            command: CommandKind::StartCharging,
            decision: format!("{session}:{at}:start"),
        };
    }
    if let Some(until) = settings.pause_power_until.filter(|until| *until > now) {
        return Desired::Act {
            command: CommandKind::StopCharging,
            decision: format!("{session}:pause-{}:stop", until.timestamp()),
        };
    }
    if tops_up(plan, observed, now) {
        let at = intervals.last().map_or(0, |i| i.end.timestamp());
        return Desired::Act {
            command: CommandKind::StartCharging,
            decision: format!("{session}:topup-{at}:start"),
        };
    }
    // Before this plan's first block the stop belongs to the plan itself: a re-plan that moves a
    // running car's charging later (new prices, its grid group's new windows) is a new decision,
    // not the stop already sent at plug-in.
    let at = intervals
        .iter()
        .map(|i| i.end)
        .filter(|end| *end <= now)
        .max()
        .map_or_else(
            || format!("planned-{}", plan.planned_at.timestamp()),
            |end| end.timestamp().to_string(),
        );
    Desired::Act {
        command: CommandKind::StopCharging,
        decision: format!("{session}:{at}:stop"),
    }
}

/// The reading already shows what `command` asks for.
pub(super) fn satisfied(command: CommandKind, observed: &Observed) -> bool {
    match command {
        CommandKind::StartCharging => observed.charging || observed.is_full(),
        CommandKind::StopCharging => !observed.charging,
    }
}

/// The `current_mode` the partner sees (see the module's rules).
pub(super) fn current_mode(
    state: &EvState,
    rt: &VehicleRuntime,
    settings: &EvSettings,
    plan: Option<&Plan>,
    observed: &Observed,
    now: DateTime<Utc>,
) -> &'static str {
    if !observed.plugged_in {
        return "not_plugged_in";
    }
    if rt.fallback {
        return "fallback";
    }
    let Some(plan) = plan else {
        return "unmanaged";
    };
    match plan.mode {
        PlanMode::NotPluggedIn => "not_plugged_in",
        PlanMode::AwayFromHome => "away_from_home",
        PlanMode::SmartOptimizationOff => "optimization_off",
        _ if settings.is_pause_power_active(now) => "paused",
        _ if crate::boost::boost_active(state) => "boost",
        _ => match plan
            .intervals
            .iter()
            .find(|i| i.start <= now && now < i.end)
            .map(|i| i.reason)
        {
            Some(Reason::MinLevel) => "min_level",
            Some(Reason::Infeasible) => "infeasible",
            _ if !plan.feasible => "infeasible",
            _ => "smart",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::OpenSession;
    use crate::test_support::{plan_with, t0};
    use chrono::Duration;
    use uuid::Uuid;

    fn observed(plugged_in: bool) -> Observed {
        Observed {
            at: t0(),
            level_pct: Some(40.0),
            plugged_in,
            charging: false,
            rate_w: 0.0,
            at_home: true,
            cap_pct: 100.0,
            energy_kwh: 0.0,
            energy_since: t0(),
        }
    }

    fn runtime_with_session(id: Uuid) -> VehicleRuntime {
        VehicleRuntime {
            session: Some(OpenSession {
                id,
                plug_in_time: t0(),
                data: Default::default(),
                baseline_power_kw: 11.0,
                planned_baseline_eur: None,
                charging_seconds: 0.0,
                last_written_at: None,
                facts: Default::default(),
            }),
            ..VehicleRuntime::default()
        }
    }

    #[test]
    fn a_car_short_of_its_target_after_the_last_block_is_topped_up_until_it_reports_it() {
        let session = Uuid::from_u128(7);
        let rt = runtime_with_session(session);
        let settings = EvSettings::default();
        // One block 00:00–01:00 to 40 %; the deadline (plan_with) is at 08:00.
        let plan = plan_with(&[(0, 60)]);
        let after = t0() + Duration::minutes(61);
        let at = |level: f64| Observed {
            level_pct: Some(level),
            ..observed(true)
        };
        assert!(tops_up(&plan, &at(39.8), after));
        assert_eq!(
            desired(Some(&plan), &settings, &rt, &at(39.8), after),
            Desired::Act {
                command: CommandKind::StartCharging,
                decision: format!(
                    "{session}:topup-{}:start",
                    (t0() + Duration::hours(1)).timestamp()
                ),
            }
        );
        // At the target as the car reports it: the block's stop.
        assert!(!tops_up(&plan, &at(40.0), after));
        assert!(matches!(
            desired(Some(&plan), &settings, &rt, &at(40.0), after),
            Desired::Act {
                command: CommandKind::StopCharging,
                ..
            }
        ));
        // Not during the block, not after the deadline, not for a full car.
        assert!(!tops_up(&plan, &at(35.0), t0() + Duration::minutes(30)));
        assert!(!tops_up(&plan, &at(39.8), t0() + Duration::hours(9)));
        let full = Observed {
            cap_pct: 40.0,
            ..at(39.8)
        };
        assert!(!tops_up(&plan, &full, after));
    }

    #[test]
    fn decisions_name_the_switch_not_the_moment_or_the_lease() {
        let session = Uuid::from_u128(7);
        let rt = runtime_with_session(session);
        let plan = plan_with(&[(0, 30), (30, 60), (120, 150)]);
        let settings = EvSettings::default();
        let at = |m: i64| t0() + Duration::minutes(m);
        let act = |m: i64| desired(Some(&plan), &settings, &rt, &observed(true), at(m));
        let start = format!("{session}:{}:start", at(0).timestamp());
        // Anywhere in the contiguous block: the same decision, hence the same key.
        assert_eq!(
            act(5),
            Desired::Act {
                command: CommandKind::StartCharging,
                decision: start.clone()
            }
        );
        assert_eq!(
            act(45),
            Desired::Act {
                command: CommandKind::StartCharging,
                decision: start
            }
        );
        let stop = format!("{session}:{}:stop", at(60).timestamp());
        assert_eq!(
            act(90),
            Desired::Act {
                command: CommandKind::StopCharging,
                decision: stop
            }
        );
        // Before the plan's first block the stop is the plan's own decision.
        let before = format!("{session}:planned-{}:stop", plan.planned_at.timestamp());
        assert_eq!(
            act(-5),
            Desired::Act {
                command: CommandKind::StopCharging,
                decision: before
            }
        );
        assert_eq!(
            desired(Some(&plan), &settings, &rt, &observed(false), at(5)),
            Desired::Leave
        );
    }
}
