//! The sandbox cloud: simulated cars that charge, drive, ignore commands and run out of quota like
//! real ones, on an injected clock. See `docs/sandbox.md`.
//!
//! The simulation is lazy: nothing runs in the background. Every call first brings the car's
//! physics up to `clock.now()` (see [`physics`]), then does its work, all under one short
//! per-vehicle lock.

mod calls;
pub mod catalogue;
pub mod failures;
pub mod physics;

use crate::cloud::{CloudCommand, CommandReceipt};
use chrono::{DateTime, Utc};
use failures::{FailureProfile, FailureScope, TokenBucket};
use physics::{Battery, PhysicsParams, VehicleSpec};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use uuid::Uuid;
use voltplan_core::Clock;

/// The car's own charge limit can be set within this range, as on Tesla (`charge_limit_soc_min`
/// 50, `charge_limit_soc_max` 100); requests outside are clamped.
pub const CHARGE_LIMIT_RANGE: std::ops::RangeInclusive<i32> = 50..=100;

const REVOKED_REASON: &str = "the owner revoked Voltplan's access to the vehicle";

/// Settings of the whole sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// Seeds every vehicle's failure dice (mixed with the vehicle id), so a run is reproducible.
    pub seed: u64,
    /// Simulated time between a command being accepted and the car acting on it (Enode measures
    /// 3–15 s natively, minutes for synthetic commands).
    pub command_latency: Duration,
    pub physics: PhysicsParams,
    /// How long an accepted idempotency key is remembered (simulated time).
    pub idempotency_ttl: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            command_latency: Duration::from_secs(15),
            physics: PhysicsParams::default(),
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Where a new simulated car starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SandboxInitial {
    pub battery_level: f64,
    /// A car that starts plugged in behaves as if it had just been plugged in: it charges on its
    /// own until told to stop.
    pub plugged_in: bool,
    /// Also the car's home, which `drive_home` returns to.
    pub lat: f64,
    pub lon: f64,
    pub charge_limit: i32,
}

/// The true internal state of a simulated car, for tests and the sandbox endpoints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SandboxSnapshot {
    pub vehicle_id: Uuid,
    pub spec: VehicleSpec,
    pub as_of: DateTime<Utc>,
    pub battery_level_percent: f64,
    pub plugged_in: bool,
    /// Whether the car would charge while plugged in (true after plug-in or a start command).
    pub charge_enabled: bool,
    pub is_charging: bool,
    pub charge_rate_w: f64,
    pub charge_limit_percent: i32,
    pub range_km: f64,
    pub latitude: f64,
    pub longitude: f64,
    pub home_latitude: f64,
    pub home_longitude: f64,
    /// Lifetime energy drawn from the grid for charging.
    pub grid_energy_kwh: f64,
    pub odometer_km: f64,
    pub is_authorized: bool,
    /// Commands accepted but not yet acted on.
    pub pending_commands: usize,
}

/// A command call as the sandbox received it, whatever became of it (accepted, answered from the
/// idempotency cache, refused).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedCommand {
    pub at: DateTime<Utc>,
    pub idempotency_key: String,
    pub command: CloudCommand,
}

/// Misuse of the sandbox's driver controls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("no simulated vehicle {0}")]
    UnknownVehicle(Uuid),
    #[error("simulated vehicle {0} already exists")]
    AlreadyExists(Uuid),
    #[error("vehicle {0} is plugged in; unplug it before driving")]
    PluggedIn(Uuid),
    #[error("invalid sandbox input: {0}")]
    Invalid(String),
}

/// Everything the sandbox knows about one car.
struct SimVehicle {
    battery: Battery,
    authorized: bool,
    failures: Option<FailureProfile>,
    rng: StdRng,
    bucket: TokenBucket,
    /// Accepted commands by idempotency key.
    receipts: HashMap<String, CommandReceipt>,
    /// Every command call, oldest first (the last `calls::RECEIVED_LOG_LEN`).
    received: VecDeque<ReceivedCommand>,
}

/// The built-in simulated vehicle cloud.
pub struct SandboxCloud {
    clock: Arc<dyn Clock>,
    config: SandboxConfig,
    vehicles: RwLock<HashMap<Uuid, Arc<Mutex<SimVehicle>>>>,
    global_failures: RwLock<FailureProfile>,
}

impl std::fmt::Debug for SandboxCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxCloud")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SandboxCloud {
    pub fn new(clock: Arc<dyn Clock>, config: SandboxConfig) -> Result<Self, SandboxError> {
        config.physics.validate().map_err(SandboxError::Invalid)?;
        Ok(Self {
            clock,
            config,
            vehicles: RwLock::new(HashMap::new()),
            global_failures: RwLock::new(FailureProfile::none()),
        })
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    // ---- driver controls -------------------------------------------------------------------

    pub fn add_vehicle(
        &self,
        id: Uuid,
        spec: VehicleSpec,
        initial: SandboxInitial,
    ) -> Result<SandboxSnapshot, SandboxError> {
        spec.validate().map_err(SandboxError::Invalid)?;
        validate_level(initial.battery_level)?;
        validate_position(initial.lat, initial.lon)?;
        if !(1..=100).contains(&initial.charge_limit) {
            return Err(SandboxError::Invalid(
                "charge_limit must be in 1..=100".into(),
            ));
        }
        let now = self.clock.now();
        let mut battery = Battery {
            spec,
            soc_percent: initial.battery_level,
            plugged_in: false,
            charge_enabled: false,
            charge_limit_percent: initial.charge_limit,
            latitude: initial.lat,
            longitude: initial.lon,
            home_latitude: initial.lat,
            home_longitude: initial.lon,
            grid_energy_kwh: 0.0,
            odometer_km: 0.0,
            updated_at: now,
            pending: Vec::new(),
        };
        if initial.plugged_in {
            battery.plug_in();
        }
        let vehicle = SimVehicle {
            battery,
            authorized: true,
            failures: None,
            rng: StdRng::seed_from_u64(self.vehicle_seed(id)),
            bucket: TokenBucket::full(),
            receipts: HashMap::new(),
            received: VecDeque::new(),
        };
        let snapshot = self.snapshot_of(id, &vehicle, now);
        let mut vehicles = write(&self.vehicles);
        if vehicles.contains_key(&id) {
            return Err(SandboxError::AlreadyExists(id));
        }
        vehicles.insert(id, Arc::new(Mutex::new(vehicle)));
        Ok(snapshot)
    }

    pub fn remove_vehicle(&self, id: Uuid) -> Result<(), SandboxError> {
        write(&self.vehicles)
            .remove(&id)
            .map(|_| ())
            .ok_or(SandboxError::UnknownVehicle(id))
    }

    pub fn vehicle_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = read(&self.vehicles).keys().copied().collect();
        ids.sort();
        ids
    }

    /// Plugs the car in. Like a real car it then starts charging on its own (up to its limit)
    /// until a stop command arrives; smart charging has to stop it.
    pub fn plug_in(&self, id: Uuid) -> Result<SandboxSnapshot, SandboxError> {
        self.drive_controls(id, |v, _| {
            v.battery.plug_in();
            Ok(())
        })
    }

    pub fn unplug(&self, id: Uuid) -> Result<SandboxSnapshot, SandboxError> {
        self.drive_controls(id, |v, _| {
            v.battery.unplug();
            Ok(())
        })
    }

    /// Drives `km` away (northwards) at once, draining `km × capacity / WLTP range`. A car that
    /// runs flat stops short (see `odometer_km`). The car must be unplugged.
    pub fn drive(&self, id: Uuid, km: f64) -> Result<SandboxSnapshot, SandboxError> {
        if !(km.is_finite() && km >= 0.0) {
            return Err(SandboxError::Invalid(
                "km must be a non-negative number".into(),
            ));
        }
        self.drive_controls(id, |v, id| {
            if v.battery.plugged_in {
                return Err(SandboxError::PluggedIn(id));
            }
            v.battery.drive_north(km);
            Ok(())
        })
    }

    /// Drives straight back to the car's home position, draining for the distance.
    pub fn drive_home(&self, id: Uuid) -> Result<SandboxSnapshot, SandboxError> {
        self.drive_controls(id, |v, id| {
            if v.battery.plugged_in {
                return Err(SandboxError::PluggedIn(id));
            }
            v.battery.drive_home();
            Ok(())
        })
    }

    pub fn set_level(&self, id: Uuid, percent: f64) -> Result<SandboxSnapshot, SandboxError> {
        validate_level(percent)?;
        self.drive_controls(id, |v, _| {
            v.battery.soc_percent = percent;
            Ok(())
        })
    }

    /// Moves the car without driving (no energy used), e.g. to put it outside the geo-fence.
    pub fn set_location(
        &self,
        id: Uuid,
        lat: f64,
        lon: f64,
    ) -> Result<SandboxSnapshot, SandboxError> {
        validate_position(lat, lon)?;
        self.drive_controls(id, |v, _| {
            v.battery.latitude = lat;
            v.battery.longitude = lon;
            Ok(())
        })
    }

    /// The owner changes the limit in the car's own app: immediate, no cloud involved.
    pub fn set_charge_limit_in_car(
        &self,
        id: Uuid,
        percent: i32,
    ) -> Result<SandboxSnapshot, SandboxError> {
        if !(1..=100).contains(&percent) {
            return Err(SandboxError::Invalid(
                "charge limit must be in 1..=100".into(),
            ));
        }
        self.drive_controls(id, |v, _| {
            v.battery.charge_limit_percent = percent;
            Ok(())
        })
    }

    /// Every cloud call for this car now fails with `AuthorizationRevoked`; the car itself carries
    /// on (a car charging on its own keeps charging).
    pub fn revoke_authorization(&self, id: Uuid) -> Result<SandboxSnapshot, SandboxError> {
        self.drive_controls(id, |v, _| {
            v.authorized = false;
            Ok(())
        })
    }

    pub fn restore_authorization(&self, id: Uuid) -> Result<SandboxSnapshot, SandboxError> {
        self.drive_controls(id, |v, _| {
            v.authorized = true;
            Ok(())
        })
    }

    /// Sets the failure profile for every vehicle without its own, or for one vehicle.
    pub fn set_failures(
        &self,
        scope: FailureScope,
        profile: FailureProfile,
    ) -> Result<(), SandboxError> {
        profile.validate().map_err(SandboxError::Invalid)?;
        match scope {
            FailureScope::Global => *write(&self.global_failures) = profile,
            FailureScope::Vehicle(id) => {
                let vehicle = self.vehicle(id).ok_or(SandboxError::UnknownVehicle(id))?;
                let mut vehicle = lock(&vehicle);
                vehicle.failures = Some(profile);
                // A new quota starts full.
                vehicle.bucket = TokenBucket::full();
            }
        }
        Ok(())
    }

    /// Makes the vehicle follow the global failure profile again.
    pub fn clear_vehicle_failures(&self, id: Uuid) -> Result<(), SandboxError> {
        let vehicle = self.vehicle(id).ok_or(SandboxError::UnknownVehicle(id))?;
        lock(&vehicle).failures = None;
        Ok(())
    }

    /// The true state, brought up to the clock's now. Never fails on injected failures.
    pub fn snapshot(&self, id: Uuid) -> Result<SandboxSnapshot, SandboxError> {
        self.drive_controls(id, |_, _| Ok(()))
    }

    /// The command calls this car's cloud received, oldest first (the last 256): what a test
    /// asserts "sent at most once" against.
    pub fn received_commands(&self, id: Uuid) -> Result<Vec<ReceivedCommand>, SandboxError> {
        let vehicle = self.vehicle(id).ok_or(SandboxError::UnknownVehicle(id))?;
        Ok(lock(&vehicle).received.iter().cloned().collect())
    }

    // ---- internals -------------------------------------------------------------------------

    fn vehicle_seed(&self, id: Uuid) -> u64 {
        let bits = id.as_u128();
        self.config.seed ^ (bits as u64) ^ ((bits >> 64) as u64)
    }

    fn vehicle(&self, id: Uuid) -> Option<Arc<Mutex<SimVehicle>>> {
        read(&self.vehicles).get(&id).cloned()
    }

    /// Runs a driver control on the car brought up to now, and returns the resulting snapshot.
    fn drive_controls(
        &self,
        id: Uuid,
        control: impl FnOnce(&mut SimVehicle, Uuid) -> Result<(), SandboxError>,
    ) -> Result<SandboxSnapshot, SandboxError> {
        let vehicle = self.vehicle(id).ok_or(SandboxError::UnknownVehicle(id))?;
        let now = self.clock.now();
        let mut vehicle = lock(&vehicle);
        vehicle.battery.advance_to(now, &self.config.physics);
        control(&mut vehicle, id)?;
        Ok(self.snapshot_of(id, &vehicle, now))
    }

    fn snapshot_of(&self, id: Uuid, v: &SimVehicle, now: DateTime<Utc>) -> SandboxSnapshot {
        let b = &v.battery;
        SandboxSnapshot {
            vehicle_id: id,
            spec: b.spec.clone(),
            as_of: now,
            battery_level_percent: b.soc_percent,
            plugged_in: b.plugged_in,
            charge_enabled: b.charge_enabled,
            is_charging: b.is_charging(),
            charge_rate_w: b.grid_power_kw(&self.config.physics) * 1000.0,
            charge_limit_percent: b.charge_limit_percent,
            range_km: b.range_km(),
            latitude: b.latitude,
            longitude: b.longitude,
            home_latitude: b.home_latitude,
            home_longitude: b.home_longitude,
            grid_energy_kwh: b.grid_energy_kwh,
            odometer_km: b.odometer_km,
            is_authorized: v.authorized,
            pending_commands: b.pending.len(),
        }
    }
}

fn validate_level(percent: f64) -> Result<(), SandboxError> {
    if percent.is_finite() && (0.0..=100.0).contains(&percent) {
        Ok(())
    } else {
        Err(SandboxError::Invalid(
            "battery level must be in [0, 100]".into(),
        ))
    }
}

fn validate_position(lat: f64, lon: f64) -> Result<(), SandboxError> {
    if lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
    {
        Ok(())
    } else {
        Err(SandboxError::Invalid(
            "latitude/longitude out of range".into(),
        ))
    }
}

/// `at + duration`, saturating at the end of time instead of panicking on absurd configurations.
fn later(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

// A panic while a lock is held cannot leave a car half-updated in a way that matters more than
// losing the whole sandbox, so poisoned locks are recovered rather than propagated.
fn lock(vehicle: &Mutex<SimVehicle>) -> MutexGuard<'_, SimVehicle> {
    vehicle
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
