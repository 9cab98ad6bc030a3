//! A clock that runs faster than real time, for the demo: one real minute can be a simulated hour.
//! Lives here rather than in core because only the simulation needs it.

use chrono::{DateTime, Utc};
use std::time::Instant;
use voltplan_core::Clock;

/// Simulated time = `start_sim + (real elapsed since start_real) × factor`.
#[derive(Debug, Clone, Copy)]
pub struct AcceleratedClock {
    pub start_real: Instant,
    pub start_sim: DateTime<Utc>,
    pub factor: f64,
}

impl AcceleratedClock {
    /// Starts now: simulated time begins at `start_sim` and runs `factor` times faster than real
    /// time. A non-finite or negative factor is treated as 0 (a frozen clock) so `now` never panics.
    pub fn starting_now(start_sim: DateTime<Utc>, factor: f64) -> Self {
        Self::new(Instant::now(), start_sim, factor)
    }

    pub fn new(start_real: Instant, start_sim: DateTime<Utc>, factor: f64) -> Self {
        let factor = if factor.is_finite() && factor >= 0.0 {
            factor
        } else {
            0.0
        };
        Self {
            start_real,
            start_sim,
            factor,
        }
    }

    /// The simulated instant after `real_elapsed` of real time; pure, so it is testable without
    /// waiting.
    pub fn sim_time_after(&self, real_elapsed: std::time::Duration) -> DateTime<Utc> {
        let sim_micros = real_elapsed.as_secs_f64() * self.factor * 1e6;
        // Saturate rather than overflow: a clock left running for centuries at ×1e9 should stay
        // at the far future, not wrap.
        let sim_micros = if sim_micros.is_finite() && sim_micros < i64::MAX as f64 {
            sim_micros as i64
        } else {
            i64::MAX
        };
        self.start_sim
            .checked_add_signed(chrono::Duration::microseconds(sim_micros))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl Clock for AcceleratedClock {
    fn now(&self) -> DateTime<Utc> {
        self.sim_time_after(self.start_real.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::time::Duration;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 6, 18, 0, 0).unwrap()
    }

    #[test]
    fn one_real_minute_at_factor_sixty_is_one_simulated_hour() {
        let clock = AcceleratedClock::new(Instant::now(), start(), 60.0);
        assert_eq!(
            clock.sim_time_after(Duration::from_secs(60)),
            start() + chrono::Duration::hours(1)
        );
    }

    #[test]
    fn invalid_factor_freezes_instead_of_panicking() {
        let clock = AcceleratedClock::new(Instant::now(), start(), f64::NAN);
        assert_eq!(clock.sim_time_after(Duration::from_secs(3600)), start());
        let clock = AcceleratedClock::new(Instant::now(), start(), -2.0);
        assert_eq!(clock.sim_time_after(Duration::from_secs(3600)), start());
    }

    #[test]
    fn huge_elapsed_saturates() {
        let clock = AcceleratedClock::new(Instant::now(), start(), 1e12);
        let far = clock.sim_time_after(Duration::from_secs(u32::MAX.into()));
        assert!(far > start());
    }

    #[test]
    fn now_never_precedes_the_start() {
        let clock = AcceleratedClock::starting_now(start(), 3600.0);
        assert!(clock.now() >= start());
    }
}
