//! The car behind a simulated wallbox and the charging profile the wallbox obeys: pure functions
//! of time, so the connection task only moves the clock.

use chrono::{DateTime, Utc};
use voltplan_ocpp::profile::VOLTS_PER_PHASE;
use voltplan_ocpp::v16::ChargingProfile;

/// Energy that reaches the battery per kWh drawn (charger and on-board charger losses).
const EFFICIENCY: f64 = 0.9;

/// The car plugged into the wallbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Car {
    pub capacity_kwh: f64,
    /// State of charge, percent.
    pub soc_pct: f64,
    /// The on-board charger's maximum, W.
    pub max_power_w: f64,
}

impl Car {
    /// What the car accepts at its level: its maximum up to 80 %, then tapering linearly to a
    /// fifth of it at 100 % (a typical constant-current/constant-voltage curve), nothing when full.
    pub fn accepts_w(&self) -> f64 {
        if self.soc_pct >= 100.0 {
            return 0.0;
        }
        let taper = if self.soc_pct <= 80.0 {
            1.0
        } else {
            1.0 - 0.8 * (self.soc_pct - 80.0) / 20.0
        };
        self.max_power_w * taper
    }

    /// Draws `power_w` for `hours`: the battery gains the energy less the losses.
    pub fn charge(&mut self, power_w: f64, hours: f64) {
        let stored_kwh = power_w / 1000.0 * hours * EFFICIENCY;
        self.soc_pct = (self.soc_pct + stored_kwh / self.capacity_kwh * 100.0).min(100.0);
    }
}

/// The limit a charging profile sets at `at`, W; `None` when it does not apply (not started,
/// expired, past its duration): then the charger charges at its own maximum.
pub fn profile_limit_w(profile: &ChargingProfile, at: DateTime<Utc>, phases: u8) -> Option<f64> {
    if profile.valid_from.is_some_and(|from| at < from)
        || profile.valid_to.is_some_and(|to| at >= to)
    {
        return None;
    }
    let schedule = &profile.charging_schedule;
    let start = schedule.start_schedule?;
    let elapsed = (at - start).num_seconds();
    if elapsed < 0 || schedule.duration.is_some_and(|d| elapsed >= d) {
        return None;
    }
    let period = schedule
        .charging_schedule_period
        .iter()
        .rev()
        .find(|p| p.start_period <= elapsed)?;
    Some(match schedule.charging_rate_unit.as_str() {
        "A" => period.limit * VOLTS_PER_PHASE * f64::from(phases.max(1)),
        _ => period.limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use voltplan_ocpp::profile::{ProfileRequest, Step, Unit, set_charging_profile};

    #[test]
    fn the_car_tapers_above_80_percent_and_stops_when_full() {
        let mut car = Car {
            capacity_kwh: 50.0,
            soc_pct: 50.0,
            max_power_w: 11_000.0,
        };
        assert_eq!(car.accepts_w(), 11_000.0);
        car.charge(10_000.0, 1.0);
        assert!((car.soc_pct - 68.0).abs() < 1e-9);
        car.soc_pct = 90.0;
        assert!((car.accepts_w() - 6_600.0).abs() < 1e-9);
        car.soc_pct = 100.0;
        assert_eq!(car.accepts_w(), 0.0);
    }

    #[test]
    fn a_profile_limits_within_its_schedule_and_not_after_it_expires() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 22, 0, 0).unwrap();
        let steps = [
            Step {
                from: t0,
                power_w: 0.0,
            },
            Step {
                from: t0 + Duration::hours(1),
                power_w: 11_040.0,
            },
        ];
        let profile = set_charging_profile(&ProfileRequest {
            profile_id: 1,
            transaction_id: Some(1),
            start: t0,
            steps: &steps,
            valid_to: t0 + Duration::hours(8),
            unit: Unit::A { phases: 3 },
            max_periods: 24,
        })
        .cs_charging_profiles;
        assert_eq!(profile_limit_w(&profile, t0, 3), Some(0.0));
        let amps = profile_limit_w(&profile, t0 + Duration::hours(2), 3).unwrap();
        assert!((amps - 11_040.0).abs() < 1.0);
        assert_eq!(profile_limit_w(&profile, t0 + Duration::hours(9), 3), None);
    }
}
