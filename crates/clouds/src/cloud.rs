//! The contract between Voltplan's worker and a vehicle cloud (an OEM API, an aggregator such as
//! Smartcar or Enode, or the built-in sandbox).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// Which vehicle a call is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CloudVehicleRef {
    /// Voltplan's own vehicle id; the sandbox keys its simulated cars by it.
    pub vehicle_id: Uuid,
    /// The cloud's id for the car (VIN, Tesla vehicle id, Smartcar id); `None` for the sandbox,
    /// which needs nothing but Voltplan's id.
    pub external_id: Option<String>,
}

impl CloudVehicleRef {
    pub fn new(vehicle_id: Uuid) -> Self {
        Self {
            vehicle_id,
            external_id: None,
        }
    }

    /// From a device record: its id and `external_device_id` (empty means none).
    pub fn of_device(vehicle_id: Uuid, external_device_id: Option<&str>) -> Self {
        Self {
            vehicle_id,
            external_id: external_device_id
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
        }
    }
}

/// One observation of a vehicle, as a cloud reports it. Maps onto `EvState`: `battery_level`
/// (rounded), `is_plugged_in`, `is_charging`, `charge_rate_w`, `driving_range`,
/// `reported_battery_capacity_kwh`, `charge_target_max`, `latitude`/`longitude` and the
/// `*_last_updated_at` timestamps (from `reported_at`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleReading {
    /// State of charge in percent, 0–100. Real clouds report whole percents; the sandbox reports
    /// its exact simulated value.
    pub battery_level_percent: f64,
    pub is_plugged_in: bool,
    pub is_charging: bool,
    /// Power drawn from the grid right now, in watts; 0 when not charging.
    pub charge_rate_w: f64,
    /// `None` for the models whose cloud does not report a range.
    pub range_km: Option<f64>,
    pub battery_capacity_kwh: Option<f64>,
    /// The car's own charge limit (the OEM hard cap) → `charge_target_max`.
    pub charge_limit_percent: Option<i32>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Lifetime grid energy the car has drawn while charging, in kWh; monotonic. `None` when the
    /// cloud has no such meter: the worker then integrates `charge_rate_w` between readings.
    pub energy_meter_kwh: Option<f64>,
    /// When the car (not the cloud's cache) produced these values.
    pub reported_at: DateTime<Utc>,
}

/// What Voltplan knows about a car, for a cloud that registers cars it does not know
/// ([`VehicleCloud::register_unknown`]).
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleRegistration {
    pub vehicle: CloudVehicleRef,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    /// The cloud's last reported capacity, else the partner's; `None` if neither is known.
    pub battery_capacity_kwh: Option<f64>,
    pub max_charge_power_w: i32,
    /// The last known level.
    pub battery_level_percent: Option<f64>,
    /// The car's last known position, else its home's.
    pub position: Option<(f64, f64)>,
    pub charge_limit_percent: Option<i32>,
}

/// What a command asked the car to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CloudCommand {
    StartCharging,
    StopCharging,
    SetChargeLimit { percent: i32 },
}

/// The cloud's acknowledgement of a command. Acceptance is not execution: the car acts after the
/// cloud's latency (seconds to minutes), and some clouds accept commands the car then ignores, so
/// the worker confirms the effect by reading the state again after `expected_effective_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReceipt {
    pub command_id: Uuid,
    pub idempotency_key: String,
    pub command: CloudCommand,
    pub accepted_at: DateTime<Utc>,
    /// When the cloud expects the car to have acted; `None` if it does not say.
    pub expected_effective_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The owner withdrew Voltplan's access (or the token lapsed); only re-linking helps.
    #[error("authorization revoked: {reason}")]
    AuthorizationRevoked { reason: String },
    /// Too many calls; try again after `retry_after`.
    #[error("rate limited, retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// The car is asleep or offline; worth retrying later.
    #[error("vehicle unreachable (asleep or offline)")]
    Unreachable,
    /// Any other failure that may go away on retry.
    #[error("transient cloud failure: {0}")]
    Transient(String),
    /// This cloud or this model cannot do what was asked (e.g. set a charge limit).
    #[error("operation not supported by this vehicle or cloud")]
    Unsupported,
    /// The cloud does not know this vehicle (never linked, or removed).
    #[error("unknown vehicle")]
    UnknownVehicle,
}

impl CloudError {
    /// Whether retrying the same call later can succeed without a human acting.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Unreachable | Self::Transient(_)
        )
    }
}

/// A vehicle cloud. Object-safe so the worker can hold `Arc<dyn VehicleCloud>` per cloud service.
///
/// **Idempotency.** Every command carries an idempotency key, scoped to the vehicle. When a key has
/// already been accepted for that vehicle, the cloud returns the *first* receipt unchanged and does
/// not act again, whatever command the repeated call names. The worker relies on this when it
/// takes over a lease from a worker that died between sending a command and recording it: it
/// resends with the same key and cannot double-act. A call that failed (error returned) did not
/// consume its key, so it may be retried with the same key. Keys are remembered for at least 24
/// hours.
#[async_trait]
pub trait VehicleCloud: Send + Sync {
    async fn read_state(&self, vehicle: &CloudVehicleRef) -> Result<VehicleReading, CloudError>;

    async fn start_charging(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError>;

    async fn stop_charging(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError>;

    /// Sets the car's own charge limit. Clouds or models that cannot return
    /// [`CloudError::Unsupported`].
    async fn set_charge_limit(
        &self,
        vehicle: &CloudVehicleRef,
        percent: i32,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError>;

    /// Registers a car this cloud does not know from Voltplan's record. Only a cloud whose
    /// registry entry says `registers_unknown_vehicles` (a simulator) can.
    async fn register_unknown(&self, _vehicle: &VehicleRegistration) -> Result<(), CloudError> {
        Err(CloudError::Unsupported)
    }

    /// Restores a revoked link after the driver agreed on Voltplan's consent page. Only a cloud
    /// whose registry entry says `relinks_on_consent_page` can; others need their own OAuth.
    async fn restore_link(&self, _vehicle: &CloudVehicleRef) -> Result<(), CloudError> {
        Err(CloudError::Unsupported)
    }
}
