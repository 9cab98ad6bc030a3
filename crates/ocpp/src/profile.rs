//! A power schedule (what the planner wants, in W per period) as an OCPP 1.6 charging profile.
//!
//! Fail-safe by construction: the profile is `Absolute`, starts now and is valid only until the
//! driver's deadline (`validTo`); after it — or if Voltplan is never heard from again — the
//! charger falls back to charging at its own maximum, so the car is charged anyway.

use chrono::{DateTime, Utc};

use crate::v16::{ChargingProfile, ChargingSchedule, ChargingSchedulePeriod, SetChargingProfile};

/// The line-to-neutral voltage used to turn watts into amperes (EU low-voltage grid).
pub const VOLTS_PER_PHASE: f64 = 230.0;

/// The unit a charger takes limits in (`ChargingScheduleAllowedChargingRateUnit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    W,
    /// Amperes per phase, on this many phases.
    A {
        phases: u8,
    },
}

/// From `from` on, charge at most `power_w`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub from: DateTime<Utc>,
    pub power_w: f64,
}

/// What to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRequest<'a> {
    pub profile_id: i64,
    /// `Some` → a TxProfile for this transaction; `None` → a TxDefaultProfile (for the next one).
    pub transaction_id: Option<i64>,
    pub start: DateTime<Utc>,
    /// Sorted by `from`; the first one applies from `start` on.
    pub steps: &'a [Step],
    /// The profile expires then (the deadline).
    pub valid_to: DateTime<Utc>,
    pub unit: Unit,
    /// The charger's `ChargingScheduleMaxPeriods`; later periods are dropped (the schedule ends
    /// earlier and the worker sends a new one before).
    pub max_periods: usize,
}

/// Rounds down to the schema's 0.1 step: never above what was asked.
fn tenth_floor(value: f64) -> f64 {
    (value.max(0.0) * 10.0).floor() / 10.0
}

impl Unit {
    pub fn limit(self, power_w: f64) -> f64 {
        match self {
            Self::W => tenth_floor(power_w),
            Self::A { phases } => {
                tenth_floor(power_w / (VOLTS_PER_PHASE * f64::from(phases.max(1))))
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::W => "W",
            Self::A { .. } => "A",
        }
    }
}

/// The SetChargingProfile request for a schedule (connector 1).
pub fn set_charging_profile(request: &ProfileRequest<'_>) -> SetChargingProfile {
    let mut periods: Vec<ChargingSchedulePeriod> = Vec::new();
    for step in request.steps {
        if step.from >= request.valid_to {
            break;
        }
        let start_period = (step.from - request.start).num_seconds().max(0);
        let limit = request.unit.limit(step.power_w);
        // A later step at the same second replaces the earlier one.
        if periods
            .last()
            .is_some_and(|p| p.start_period == start_period)
        {
            periods.pop();
        }
        // Equal neighbours are one period.
        if periods.last().is_some_and(|p| p.limit == limit) {
            continue;
        }
        periods.push(ChargingSchedulePeriod {
            start_period,
            limit,
            number_phases: None,
        });
    }
    if periods.first().is_none_or(|p| p.start_period != 0) {
        // Nothing asked for the first seconds: hold at zero until the first step.
        periods.insert(
            0,
            ChargingSchedulePeriod {
                start_period: 0,
                limit: 0.0,
                number_phases: None,
            },
        );
    }
    let mut duration = (request.valid_to - request.start).num_seconds().max(0);
    if periods.len() > request.max_periods.max(1) {
        periods.truncate(request.max_periods.max(1));
        if let Some(cut) = request.steps.iter().find(|s| {
            (s.from - request.start).num_seconds() > periods.last().map_or(0, |p| p.start_period)
                && request.unit.limit(s.power_w) != periods.last().map_or(0.0, |p| p.limit)
        }) {
            duration = duration.min((cut.from - request.start).num_seconds());
        }
    }
    let (purpose, transaction_id, stack_level) = match request.transaction_id {
        Some(id) => ("TxProfile", Some(id), 1),
        None => ("TxDefaultProfile", None, 0),
    };
    SetChargingProfile {
        connector_id: 1,
        cs_charging_profiles: ChargingProfile {
            charging_profile_id: request.profile_id,
            transaction_id,
            stack_level,
            charging_profile_purpose: purpose.to_owned(),
            charging_profile_kind: "Absolute".to_owned(),
            valid_from: None,
            valid_to: Some(request.valid_to),
            charging_schedule: ChargingSchedule {
                duration: Some(duration),
                start_schedule: Some(request.start),
                charging_rate_unit: request.unit.name().to_owned(),
                charging_schedule_period: periods,
                min_charging_rate: None,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schemas;
    use chrono::{Duration, TimeZone};

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 22, 0, 0).unwrap() + Duration::minutes(minute)
    }

    #[test]
    fn a_plan_becomes_a_valid_profile_that_expires_at_the_deadline() {
        let steps = [
            Step {
                from: at(0),
                power_w: 0.0,
            },
            Step {
                from: at(15),
                power_w: 0.0,
            },
            Step {
                from: at(30),
                power_w: 11_000.0,
            },
            Step {
                from: at(45),
                power_w: 11_000.0,
            },
            Step {
                from: at(60),
                power_w: 3_500.0,
            },
        ];
        let request = ProfileRequest {
            profile_id: 7,
            transaction_id: Some(42),
            start: at(0),
            steps: &steps,
            valid_to: at(480),
            unit: Unit::A { phases: 3 },
            max_periods: 24,
        };
        let profile = set_charging_profile(&request);
        let schedule = &profile.cs_charging_profiles.charging_schedule;
        let periods: Vec<(i64, f64)> = schedule
            .charging_schedule_period
            .iter()
            .map(|p| (p.start_period, p.limit))
            .collect();
        assert_eq!(periods, vec![(0, 0.0), (1800, 15.9), (3600, 5.0)]);
        assert_eq!(schedule.duration, Some(480 * 60));
        assert_eq!(profile.cs_charging_profiles.valid_to, Some(at(480)));
        assert_eq!(
            profile.cs_charging_profiles.charging_profile_purpose,
            "TxProfile"
        );
        let payload = serde_json::to_value(&profile).unwrap();
        Schemas::v16()
            .check_request("SetChargingProfile", &payload)
            .unwrap();
    }

    #[test]
    fn steps_at_the_same_second_replace_and_equal_neighbours_merge() {
        let steps = [
            Step {
                from: at(0),
                power_w: 7_000.0,
            },
            Step {
                from: at(15),
                power_w: 0.0,
            },
            Step {
                from: at(15),
                power_w: 7_000.0,
            },
            Step {
                from: at(30),
                power_w: 0.0,
            },
        ];
        let request = ProfileRequest {
            profile_id: 1,
            transaction_id: None,
            start: at(0),
            steps: &steps,
            valid_to: at(120),
            unit: Unit::W,
            max_periods: 24,
        };
        let profile = set_charging_profile(&request);
        let periods: Vec<(i64, f64)> = profile
            .cs_charging_profiles
            .charging_schedule
            .charging_schedule_period
            .iter()
            .map(|p| (p.start_period, p.limit))
            .collect();
        assert_eq!(periods, vec![(0, 7000.0), (1800, 0.0)]);
    }

    #[test]
    fn too_many_periods_end_the_schedule_early() {
        let steps: Vec<Step> = (0..10)
            .map(|i| Step {
                from: at(i * 15),
                power_w: if i % 2 == 0 { 0.0 } else { 7_000.0 },
            })
            .collect();
        let request = ProfileRequest {
            profile_id: 1,
            transaction_id: None,
            start: at(0),
            steps: &steps,
            valid_to: at(600),
            unit: Unit::W,
            max_periods: 3,
        };
        let profile = set_charging_profile(&request);
        let schedule = &profile.cs_charging_profiles.charging_schedule;
        assert_eq!(schedule.charging_schedule_period.len(), 3);
        assert_eq!(schedule.duration, Some(45 * 60));
        assert_eq!(
            profile.cs_charging_profiles.charging_profile_purpose,
            "TxDefaultProfile"
        );
    }
}
