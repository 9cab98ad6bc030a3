//! Battery and charging physics of one simulated car, free of locks, clocks and randomness so it can
//! be reasoned about (and tested) on its own.
//!
//! The charging model, per car:
//! - Grid power is the AC limit `P_max` up to the taper start `S0` (default 80 %), then falls
//!   linearly with the state of charge to `taper_end_power_fraction × P_max` at 100 %.
//!   Charging stops at the car's own limit.
//! - The battery receives `efficiency × grid power` (losses in the on-board charger).
//! - Integration is exact: below `S0` the state of charge rises linearly; above it
//!   `dS/dt ∝ 1 − c (S − S0)` has the closed form `u(t) = u₀ e^{−kt}`. So the result does not
//!   depend on how often the car is read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Kilometres per degree of latitude, for moving a car "north by N km".
const KM_PER_DEGREE_LATITUDE: f64 = 111.32;
const EARTH_RADIUS_KM: f64 = 6371.0;

/// What kind of car it is: the numbers of `data/ev_models.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleSpec {
    #[serde(default)]
    pub manufacturer: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub year: Option<i32>,
    /// Usable capacity.
    pub battery_capacity_kwh: f64,
    /// The on-board charger's maximum, i.e. the most it draws from an AC wallbox.
    pub ac_max_power_kw: f64,
    /// Full-battery WLTP range; consumption is `capacity / range`.
    pub wltp_range_km: f64,
    /// Some OEM clouds cannot set the car's charge limit; those return `Unsupported`.
    #[serde(default = "supports_by_default")]
    pub supports_set_charge_limit: bool,
}

fn supports_by_default() -> bool {
    true
}

impl VehicleSpec {
    pub fn new(battery_capacity_kwh: f64, ac_max_power_kw: f64, wltp_range_km: f64) -> Self {
        Self {
            manufacturer: String::new(),
            model: String::new(),
            year: None,
            battery_capacity_kwh,
            ac_max_power_kw,
            wltp_range_km,
            supports_set_charge_limit: true,
        }
    }

    /// Energy per kilometre driven, from the WLTP range.
    pub fn consumption_kwh_per_km(&self) -> f64 {
        self.battery_capacity_kwh / self.wltp_range_km
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.battery_capacity_kwh) {
            return Err("battery_capacity_kwh must be positive".into());
        }
        if !positive(self.ac_max_power_kw) {
            return Err("ac_max_power_kw must be positive".into());
        }
        if !positive(self.wltp_range_km) {
            return Err("wltp_range_km must be positive".into());
        }
        Ok(())
    }
}

/// Charging physics shared by all simulated cars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhysicsParams {
    /// Grid → battery, 0 < η ≤ 1.
    pub charging_efficiency: f64,
    /// State of charge (%) where the charging power starts to fall.
    pub taper_start_percent: f64,
    /// Fraction of the AC limit still drawn at 100 %, 0 < f ≤ 1. Kept above 0 so a limit of
    /// 100 % is reached in finite time.
    pub taper_end_power_fraction: f64,
}

impl Default for PhysicsParams {
    fn default() -> Self {
        Self {
            charging_efficiency: 0.9,
            taper_start_percent: 80.0,
            taper_end_power_fraction: 0.2,
        }
    }
}

impl PhysicsParams {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let in_unit = |v: f64| v.is_finite() && v > 0.0 && v <= 1.0;
        if !in_unit(self.charging_efficiency) {
            return Err("charging_efficiency must be in (0, 1]".into());
        }
        if !in_unit(self.taper_end_power_fraction) {
            return Err("taper_end_power_fraction must be in (0, 1]".into());
        }
        if !(self.taper_start_percent.is_finite()
            && (0.0..=100.0).contains(&self.taper_start_percent))
        {
            return Err("taper_start_percent must be in [0, 100]".into());
        }
        Ok(())
    }

    /// Grid power (kW) the car draws at `soc_percent`, if it is charging.
    pub fn grid_power_kw(&self, spec: &VehicleSpec, soc_percent: f64) -> f64 {
        spec.ac_max_power_kw * self.power_fraction(soc_percent)
    }

    fn taper_slope(&self) -> f64 {
        let span = 100.0 - self.taper_start_percent;
        if span <= 0.0 {
            0.0
        } else {
            (1.0 - self.taper_end_power_fraction) / span
        }
    }

    fn power_fraction(&self, soc_percent: f64) -> f64 {
        if soc_percent <= self.taper_start_percent {
            1.0
        } else {
            1.0 - self.taper_slope() * (soc_percent - self.taper_start_percent)
        }
    }
}

/// A charge command waiting for the car to act on it (the cloud's latency).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PendingAction {
    pub effective_at: DateTime<Utc>,
    pub action: CarAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CarAction {
    StartCharging,
    StopCharging,
    SetChargeLimit(i32),
}

/// The physical state of one simulated car.
#[derive(Debug, Clone)]
pub(crate) struct Battery {
    pub spec: VehicleSpec,
    pub soc_percent: f64,
    pub plugged_in: bool,
    /// Whether the car wants to charge while plugged in. Set at every plug-in, because real cars
    /// start charging as soon as the cable goes in unless told otherwise; cleared only by a stop
    /// command, set again by a start command.
    pub charge_enabled: bool,
    pub charge_limit_percent: i32,
    pub latitude: f64,
    pub longitude: f64,
    pub home_latitude: f64,
    pub home_longitude: f64,
    pub grid_energy_kwh: f64,
    pub odometer_km: f64,
    pub updated_at: DateTime<Utc>,
    pub pending: Vec<PendingAction>,
}

impl Battery {
    pub fn is_charging(&self) -> bool {
        self.plugged_in
            && self.charge_enabled
            && self.soc_percent < f64::from(self.charge_limit_percent)
    }

    pub fn grid_power_kw(&self, physics: &PhysicsParams) -> f64 {
        if self.is_charging() {
            physics.grid_power_kw(&self.spec, self.soc_percent)
        } else {
            0.0
        }
    }

    pub fn range_km(&self) -> f64 {
        self.soc_percent / 100.0 * self.spec.wltp_range_km
    }

    /// Brings the car from `updated_at` to `now`: charges through each interval and applies the
    /// pending commands at their effective instants, in order. A clock that went backwards
    /// leaves the state as it is.
    pub fn advance_to(&mut self, now: DateTime<Utc>, physics: &PhysicsParams) {
        let now = now.max(self.updated_at);
        while let Some(index) = self.due_index(now) {
            let pending = self.pending.remove(index);
            let boundary = pending.effective_at.max(self.updated_at);
            self.charge_for(boundary, physics);
            self.apply(pending.action);
        }
        self.charge_for(now, physics);
    }

    /// The earliest pending action due by `at`; ties go to the one sent first.
    fn due_index(&self, at: DateTime<Utc>) -> Option<usize> {
        self.pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.effective_at <= at)
            .min_by_key(|(i, p)| (p.effective_at, *i))
            .map(|(i, _)| i)
    }

    fn apply(&mut self, action: CarAction) {
        match action {
            CarAction::StartCharging => self.charge_enabled = true,
            CarAction::StopCharging => self.charge_enabled = false,
            CarAction::SetChargeLimit(percent) => self.charge_limit_percent = percent,
        }
    }

    /// Integrates charging from `updated_at` to `until` with nothing changing in between.
    fn charge_for(&mut self, until: DateTime<Utc>, physics: &PhysicsParams) {
        let hours = (until - self.updated_at)
            .num_microseconds()
            .unwrap_or(i64::MAX) as f64
            / 3.6e9;
        self.updated_at = until;
        if hours <= 0.0 || !self.is_charging() {
            return;
        }
        let before = self.soc_percent;
        self.soc_percent = soc_after(
            &self.spec,
            physics,
            before,
            f64::from(self.charge_limit_percent),
            hours,
        );
        // Energy into the battery is ΔS × capacity; the grid supplied that divided by η,
        // whichever phase the charge went through.
        self.grid_energy_kwh += (self.soc_percent - before) / 100.0
            * self.spec.battery_capacity_kwh
            / physics.charging_efficiency;
    }

    pub fn plug_in(&mut self) {
        self.plugged_in = true;
        self.charge_enabled = true;
    }

    pub fn unplug(&mut self) {
        self.plugged_in = false;
    }

    /// Drives `km` north (away from wherever the car is), draining `km × capacity / WLTP range`.
    /// A car that runs flat stops short; returns the distance actually covered.
    pub fn drive_north(&mut self, km: f64) -> f64 {
        let driven = self.drain_for(km);
        self.latitude = (self.latitude + driven / KM_PER_DEGREE_LATITUDE).min(90.0);
        driven
    }

    /// Drives straight back home; returns the distance covered (short of home if the battery ran
    /// flat on the way).
    pub fn drive_home(&mut self) -> f64 {
        let distance = haversine_km(
            self.latitude,
            self.longitude,
            self.home_latitude,
            self.home_longitude,
        );
        let driven = self.drain_for(distance);
        let fraction = if distance > 0.0 {
            driven / distance
        } else {
            1.0
        };
        self.latitude += (self.home_latitude - self.latitude) * fraction;
        self.longitude += (self.home_longitude - self.longitude) * fraction;
        driven
    }

    fn drain_for(&mut self, km: f64) -> f64 {
        let reachable_km = self.range_km();
        let driven = km.min(reachable_km);
        self.soc_percent = (self.soc_percent - driven / self.spec.wltp_range_km * 100.0).max(0.0);
        self.odometer_km += driven;
        driven
    }
}

/// State of charge after charging `hours` from `soc` towards `limit` at the model's power curve.
pub fn soc_after(
    spec: &VehicleSpec,
    physics: &PhysicsParams,
    soc: f64,
    limit: f64,
    hours: f64,
) -> f64 {
    if soc >= limit || hours <= 0.0 {
        return soc;
    }
    // %/h at full power.
    let full_rate =
        spec.ac_max_power_kw * physics.charging_efficiency * 100.0 / spec.battery_capacity_kwh;
    let taper_start = physics.taper_start_percent.min(limit);
    let mut soc = soc;
    let mut hours = hours;

    if soc < taper_start {
        let hours_to_taper = (taper_start - soc) / full_rate;
        if hours <= hours_to_taper {
            return soc + full_rate * hours;
        }
        soc = taper_start;
        hours -= hours_to_taper;
    }
    if soc >= limit {
        return limit;
    }

    let slope = physics.taper_slope();
    if slope <= 0.0 {
        return (soc + full_rate * hours).min(limit);
    }
    // Power fraction u = 1 − slope (S − S0) decays as u₀ e^{−k t}, with k = slope × full_rate.
    let s0 = physics.taper_start_percent;
    let k = slope * full_rate;
    let u_now = 1.0 - slope * (soc - s0);
    let u_at_limit = 1.0 - slope * (limit - s0);
    let hours_to_limit = (u_now / u_at_limit).ln() / k;
    if hours >= hours_to_limit {
        return limit;
    }
    let u_then = u_now * (-k * hours).exp();
    (s0 + (1.0 - u_then) / slope).min(limit)
}

fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = (lat2 - lat1).to_radians();
    let d_lambda = (lon2 - lon1).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car() -> VehicleSpec {
        VehicleSpec::new(60.0, 11.0, 400.0)
    }

    /// Charges in many small steps, to check the closed form against plain Euler integration.
    fn soc_by_euler(soc: f64, limit: f64, hours: f64) -> f64 {
        let physics = PhysicsParams::default();
        let steps = 200_000;
        let dt = hours / f64::from(steps);
        let mut soc = soc;
        for _ in 0..steps {
            if soc >= limit {
                return limit;
            }
            let battery_kw = physics.grid_power_kw(&car(), soc) * physics.charging_efficiency;
            soc = (soc + battery_kw * dt / car().battery_capacity_kwh * 100.0).min(limit);
        }
        soc
    }

    #[test]
    fn closed_form_matches_fine_euler_integration_through_the_taper() {
        for (start, limit, hours) in [(30.0, 100.0, 4.0), (75.0, 90.0, 1.0), (82.0, 100.0, 3.0)] {
            let exact = soc_after(&car(), &PhysicsParams::default(), start, limit, hours);
            let euler = soc_by_euler(start, limit, hours);
            assert!(
                (exact - euler).abs() < 0.01,
                "{start}->{limit} in {hours}h: {exact} vs {euler}"
            );
        }
    }

    #[test]
    fn below_the_taper_the_rate_is_ac_power_times_efficiency() {
        // 11 kW × 0.9 = 9.9 kW into 60 kWh → 16.5 %/h.
        let soc = soc_after(&car(), &PhysicsParams::default(), 30.0, 100.0, 2.0);
        assert!((soc - 63.0).abs() < 1e-9);
    }

    #[test]
    fn limit_below_taper_start_is_reached_at_full_power_and_held() {
        let soc = soc_after(&car(), &PhysicsParams::default(), 60.0, 70.0, 5.0);
        assert_eq!(soc, 70.0);
    }

    #[test]
    fn power_tapers_to_the_floor_at_full() {
        let physics = PhysicsParams::default();
        assert_eq!(physics.grid_power_kw(&car(), 50.0), 11.0);
        assert!((physics.grid_power_kw(&car(), 90.0) - 6.6).abs() < 1e-9);
        assert!((physics.grid_power_kw(&car(), 100.0) - 2.2).abs() < 1e-9);
    }

    #[test]
    fn haversine_of_one_degree_latitude_is_about_111_km() {
        assert!((haversine_km(48.0, 16.0, 49.0, 16.0) - 111.2).abs() < 0.5);
    }
}
