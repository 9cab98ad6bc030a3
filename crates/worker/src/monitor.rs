//! Monitoring: a cloud reading becomes the partner-visible state fields, metered grid energy,
//! consumption figures and a row of the `/data` time series.
//!
//! Rules (also in `docs/worker.md`):
//! - a successful reading sets `connection_status` and `monitoring_status` to `ok`,
//!   `is_authenticated` to true and clears an authorisation error;
//! - a retryable failure (asleep, rate limited, transient) counts up: `warning` until
//!   `read_failures_for_error` consecutive failures, then `error`; the last known values stay;
//! - revoked authorisation: `is_authenticated=false`, `lifecycle_state=error` with
//!   `lifecycle_error`, `action_needed=true`, all three statuses `error`;
//! - energy is the difference of the cloud's lifetime meter (`energy_meter_kwh`) between readings,
//!   or the integral of `charge_rate_w` when the cloud has no meter.

use chrono::{DateTime, Duration, Utc};
use voltplan_clouds::{CloudError, VehicleReading};
use voltplan_core::planner::is_at_home;
use voltplan_core::session::FULL_TOLERANCE_PCT;
use voltplan_core::vehicle::{EvSettings, EvState, StatusLevel};
use voltplan_store::fleet::{ClaimedVehicle, ReadingRecord};

use crate::config::WorkerConfig;
use crate::price_book::PriceBook;
use crate::runtime::VehicleRuntime;

/// `lifecycle_state` of a healthy, linked vehicle.
pub const LIFECYCLE_AUTHENTICATED: &str = "authenticated";
pub const LIFECYCLE_ERROR: &str = "error";

/// What this cycle's reading says, normalised for the other steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub at: DateTime<Utc>,
    pub level_pct: Option<f64>,
    pub plugged_in: bool,
    pub charging: bool,
    pub rate_w: f64,
    pub at_home: bool,
    /// The car's own limit (`charge_target_max`), else 100 %: "full".
    pub cap_pct: f64,
    /// Grid energy since the previous reading, kWh.
    pub energy_kwh: f64,
    /// Start of the stretch `energy_kwh` was drawn over.
    pub energy_since: DateTime<Utc>,
}

impl Observed {
    /// At (or within half a percent of) the car's limit.
    pub fn is_full(&self) -> bool {
        self.level_pct
            .is_some_and(|l| l >= self.cap_pct - FULL_TOLERANCE_PCT)
    }
}

/// Copies a reading into the state and the runtime; returns the normalised observation.
pub fn apply_reading(
    state: &mut EvState,
    rt: &mut VehicleRuntime,
    reading: &VehicleReading,
    home: Option<(f64, f64)>,
    settings: &EvSettings,
    now: DateTime<Utc>,
) -> Observed {
    let at = reading.reported_at;
    state.connection_status = StatusLevel::Ok;
    state.monitoring_status = StatusLevel::Ok;
    state.is_authenticated = Some(true);
    if state.lifecycle_state == LIFECYCLE_ERROR {
        state.lifecycle_state = LIFECYCLE_AUTHENTICATED.to_owned();
        state.lifecycle_error = None;
        state.action_needed = false;
    }
    rt.read_failures = 0;

    state.battery_level = Some(reading.battery_level_percent.round().clamp(0.0, 100.0) as i32);
    state.is_plugged_in = Some(reading.is_plugged_in);
    state.is_charging = Some(reading.is_charging);
    state.charge_rate_w = Some(reading.charge_rate_w.round() as i32);
    state.driving_range = reading.range_km.map(|r| r.round() as i32);
    if let Some(capacity) = reading.battery_capacity_kwh {
        state.reported_battery_capacity_kwh = Some(capacity);
    }
    if let Some(limit) = reading.charge_limit_percent {
        state.charge_target_max = Some(limit);
    }
    state.current_state_last_updated_at = Some(at);
    state.charge_state_last_updated_at = Some(at);
    state.last_monitoring_executed_at = Some(now);
    if let (Some(lat), Some(lon)) = (reading.latitude, reading.longitude) {
        state.latitude = Some(lat);
        state.longitude = Some(lon);
        state.coordinates_last_updated_at = Some(at);
    }
    let cap_pct = f64::from(state.charge_target_max.unwrap_or(100));
    let level = reading.battery_level_percent;
    state.is_fully_charged = Some(level >= cap_pct - FULL_TOLERANCE_PCT);
    state.charge_time_remaining =
        charge_minutes_remaining(state, settings, level, cap_pct, reading);

    let since = rt.last_reading_at.unwrap_or(at);
    let energy_kwh = match (reading.energy_meter_kwh, rt.last_meter_kwh) {
        // A meter that went backwards was reset (or the car re-registered): count nothing.
        (Some(meter), Some(last)) => (meter - last).max(0.0),
        (Some(_), None) => 0.0,
        (None, _) => {
            let hours = (at - since).num_milliseconds().max(0) as f64 / 3_600_000.0;
            let mean_w = (rt.last_rate_w.unwrap_or(0.0) + reading.charge_rate_w) / 2.0;
            mean_w / 1000.0 * hours
        }
    };
    rt.last_meter_kwh = reading.energy_meter_kwh;
    rt.last_rate_w = Some(reading.charge_rate_w);
    rt.last_level_pct = Some(level);
    rt.last_reading_at = Some(at);
    record_consumption(state, rt, energy_kwh, now);

    let car = reading.latitude.zip(reading.longitude);
    Observed {
        at,
        level_pct: Some(level),
        plugged_in: reading.is_plugged_in,
        charging: reading.is_charging,
        rate_w: reading.charge_rate_w,
        at_home: is_at_home(car, home, settings.geo_fence_distance_m),
        cap_pct,
        energy_kwh,
        energy_since: since,
    }
}

fn charge_minutes_remaining(
    state: &EvState,
    settings: &EvSettings,
    level: f64,
    cap_pct: f64,
    reading: &VehicleReading,
) -> Option<i32> {
    if !reading.is_charging || reading.charge_rate_w <= 0.0 {
        return None;
    }
    let capacity = state
        .reported_battery_capacity_kwh
        .filter(|c| *c > 0.0)
        .unwrap_or(settings.battery_capacity_kwh);
    let grid_kwh =
        (cap_pct - level).max(0.0) / 100.0 * capacity / voltplan_core::planner::DEFAULT_EFFICIENCY;
    Some((grid_kwh / (reading.charge_rate_w / 1000.0) * 60.0).round() as i32)
}

/// Adds energy to the hourly and daily buckets and refreshes `consumption_last_{day,week,month}_kwh`.
fn record_consumption(
    state: &mut EvState,
    rt: &mut VehicleRuntime,
    energy_kwh: f64,
    now: DateTime<Utc>,
) {
    let c = &mut rt.consumption;
    let hour = DateTime::from_timestamp(now.timestamp() - now.timestamp().rem_euclid(3600), 0)
        .unwrap_or(now);
    if energy_kwh > 0.0 {
        match c.hours.back_mut() {
            Some((h, e)) if *h == hour => *e += energy_kwh,
            _ => c.hours.push_back((hour, energy_kwh)),
        }
        let day = now.date_naive();
        match c.days.back_mut() {
            Some((d, e)) if *d == day => *e += energy_kwh,
            _ => c.days.push_back((day, energy_kwh)),
        }
    }
    while c
        .hours
        .front()
        .is_some_and(|(h, _)| *h <= now - Duration::hours(24))
    {
        c.hours.pop_front();
    }
    let today = now.date_naive();
    while c
        .days
        .front()
        .is_some_and(|(d, _)| (today - *d).num_days() >= 30)
    {
        c.days.pop_front();
    }
    let within = |days: i64| -> f64 {
        c.days
            .iter()
            .filter(|(d, _)| (today - *d).num_days() < days)
            .map(|(_, e)| e)
            .sum()
    };
    state.consumption_last_day_kwh = Some(round3(c.hours.iter().map(|(_, e)| e).sum()));
    state.consumption_last_week_kwh = Some(round3(within(7)));
    state.consumption_last_month_kwh = Some(round3(within(30)));
    state.consumption_last_updated_at = Some(now);
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A read failed: statuses by the rules above; the last known values stay.
pub fn apply_read_failure(
    state: &mut EvState,
    rt: &mut VehicleRuntime,
    error: &CloudError,
    now: DateTime<Utc>,
    cfg: &WorkerConfig,
) {
    state.last_monitoring_executed_at = Some(now);
    match error {
        CloudError::AuthorizationRevoked { reason } => mark_revoked(state, reason),
        CloudError::UnknownVehicle => {
            mark_unlinked(state, "the vehicle cloud does not know this vehicle")
        }
        CloudError::Unsupported => {
            mark_unlinked(state, "the vehicle cloud cannot read this vehicle")
        }
        CloudError::RateLimited { .. } | CloudError::Unreachable | CloudError::Transient(_) => {
            rt.read_failures = rt.read_failures.saturating_add(1);
            let status = status_for_failures(rt.read_failures, cfg.read_failures_for_error);
            state.monitoring_status = status;
            state.connection_status = status;
        }
    }
}

/// Revoked authorisation: the API renders a `reauthenticate` action from `action_needed`.
pub fn mark_revoked(state: &mut EvState, reason: &str) {
    state.is_authenticated = Some(false);
    state.lifecycle_state = LIFECYCLE_ERROR.to_owned();
    state.lifecycle_error = Some(format!("authorization revoked: {reason}"));
    state.action_needed = true;
    state.connection_status = StatusLevel::Error;
    state.monitoring_status = StatusLevel::Error;
    state.steering_status = StatusLevel::Error;
}

fn mark_unlinked(state: &mut EvState, reason: &str) {
    state.lifecycle_state = LIFECYCLE_ERROR.to_owned();
    state.lifecycle_error = Some(reason.to_owned());
    state.action_needed = true;
    state.connection_status = StatusLevel::Error;
    state.monitoring_status = StatusLevel::Error;
}

/// No cloud can reach the vehicle (unknown or unregistered service).
pub fn apply_no_cloud(state: &mut EvState, reason: &str, now: DateTime<Utc>) {
    state.last_monitoring_executed_at = Some(now);
    mark_unlinked(state, reason);
    state.steering_status = StatusLevel::Error;
}

/// A quiet car (unchanged, drawing nothing) still gets a row this often.
const QUIET_READING_EVERY: Duration = Duration::minutes(15);

/// This cycle's observation for the `/data` time series, when it says something new: the
/// car drew energy, its plug, charging or home state changed, or the last row is
/// `QUIET_READING_EVERY` old. A row's `energy_kwh` is the energy since the previous row, so
/// skipping quiet rows loses nothing (and saves a write per cycle on an idle fleet).
/// The row is returned, to be written with the cycle's fenced finish.
pub fn reading_to_report(
    claimed: &ClaimedVehicle,
    rt: &mut VehicleRuntime,
    observed: &Observed,
    (book, customer): (&PriceBook, Option<&PriceBook>),
    now: DateTime<Utc>,
) -> Option<ReadingRecord> {
    rt.unreported_energy_kwh += observed.energy_kwh;
    let flags = (observed.plugged_in, observed.charging, observed.at_home);
    let due = rt.unreported_energy_kwh > 0.0
        || rt.last_reported_flags != Some(flags)
        || rt
            .last_reported_at
            .is_none_or(|at| observed.at - at >= QUIET_READING_EVERY);
    if !due {
        return None;
    }
    let record = ReadingRecord {
        vehicle_id: claimed.vehicle.id,
        org_id: claimed.vehicle.org_id,
        at: observed.at,
        battery_level: observed.level_pct,
        is_plugged_in: Some(observed.plugged_in),
        is_charging: Some(observed.charging),
        is_at_home: Some(observed.at_home),
        power_w: Some(observed.rate_w),
        energy_kwh: Some(rt.unreported_energy_kwh),
        price_eur_mwh: book.price_at(now),
        customer_price_per_mwh: customer.and_then(|c| c.price_at(now)),
    };
    rt.unreported_energy_kwh = 0.0;
    rt.last_reported_flags = Some(flags);
    rt.last_reported_at = Some(observed.at);
    Some(record)
}

/// A status from a consecutive-failure count.
pub(crate) fn status_for_failures(failures: u32, for_error: u32) -> StatusLevel {
    match failures {
        0 => StatusLevel::Ok,
        n if n < for_error => StatusLevel::Warning,
        _ => StatusLevel::Error,
    }
}
