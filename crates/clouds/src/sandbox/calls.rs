//! The sandbox as a vehicle cloud: the calls the worker makes, gated as a real cloud gates them
//! (authorisation, quota, idempotency cache, reachability), and its record of the commands it
//! received.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::catalogue;
use super::failures::roll;
use super::physics::{CarAction, PendingAction, VehicleSpec};
use super::{
    CHARGE_LIMIT_RANGE, REVOKED_REASON, ReceivedCommand, SandboxCloud, SandboxError,
    SandboxInitial, SimVehicle, later, lock, read,
};
use crate::cloud::{
    CloudCommand, CloudError, CloudVehicleRef, CommandReceipt, VehicleCloud, VehicleReading,
    VehicleRegistration,
};

/// Commands remembered per car for [`SandboxCloud::received_commands`]; older ones are dropped.
pub(super) const RECEIVED_LOG_LEN: usize = 256;

impl SandboxCloud {
    /// The checks every cloud call goes through, in the order a real cloud applies them:
    /// authorisation, quota, then (for commands) the idempotency cache, then whether the car
    /// answers.
    fn gate(
        &self,
        vehicle: &mut SimVehicle,
        now: DateTime<Utc>,
        idempotency_key: Option<&str>,
    ) -> Result<Option<CommandReceipt>, CloudError> {
        if !vehicle.authorized {
            return Err(CloudError::AuthorizationRevoked {
                reason: REVOKED_REASON.to_owned(),
            });
        }
        let profile = vehicle
            .failures
            .unwrap_or_else(|| *read(&self.global_failures));
        if let Some(limit) = profile.rate_limit {
            vehicle
                .bucket
                .take(limit, now)
                .map_err(|retry_after| CloudError::RateLimited { retry_after })?;
        }
        if let Some(key) = idempotency_key
            && let Some(receipt) = vehicle.receipts.get(key)
        {
            return Ok(Some(receipt.clone()));
        }
        if roll(&mut vehicle.rng, profile.unreachable_rate) {
            return Err(CloudError::Unreachable);
        }
        Ok(None)
    }

    fn read_now(&self, vehicle_ref: &CloudVehicleRef) -> Result<VehicleReading, CloudError> {
        let vehicle = self
            .vehicle(vehicle_ref.vehicle_id)
            .ok_or(CloudError::UnknownVehicle)?;
        let now = self.clock.now();
        let mut vehicle = lock(&vehicle);
        vehicle.battery.advance_to(now, &self.config.physics);
        self.gate(&mut vehicle, now, None)?;
        let b = &vehicle.battery;
        Ok(VehicleReading {
            battery_level_percent: b.soc_percent,
            is_plugged_in: b.plugged_in,
            is_charging: b.is_charging(),
            charge_rate_w: b.grid_power_kw(&self.config.physics) * 1000.0,
            range_km: Some(b.range_km()),
            battery_capacity_kwh: Some(b.spec.battery_capacity_kwh),
            charge_limit_percent: Some(b.charge_limit_percent),
            latitude: Some(b.latitude),
            longitude: Some(b.longitude),
            energy_meter_kwh: Some(b.grid_energy_kwh),
            reported_at: now,
        })
    }

    fn command(
        &self,
        vehicle_ref: &CloudVehicleRef,
        command: CloudCommand,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        let vehicle = self
            .vehicle(vehicle_ref.vehicle_id)
            .ok_or(CloudError::UnknownVehicle)?;
        let now = self.clock.now();
        let mut vehicle = lock(&vehicle);
        if vehicle.received.len() >= RECEIVED_LOG_LEN {
            vehicle.received.pop_front();
        }
        vehicle.received.push_back(ReceivedCommand {
            at: now,
            idempotency_key: idempotency_key.to_owned(),
            command,
        });
        vehicle.battery.advance_to(now, &self.config.physics);
        self.forget_expired_receipts(&mut vehicle, now);
        if let Some(first) = self.gate(&mut vehicle, now, Some(idempotency_key))? {
            return Ok(first);
        }
        let (command, action) = match command {
            CloudCommand::StartCharging => (command, CarAction::StartCharging),
            CloudCommand::StopCharging => (command, CarAction::StopCharging),
            CloudCommand::SetChargeLimit { percent } => {
                if !vehicle.battery.spec.supports_set_charge_limit {
                    return Err(CloudError::Unsupported);
                }
                let percent = percent.clamp(*CHARGE_LIMIT_RANGE.start(), *CHARGE_LIMIT_RANGE.end());
                (
                    CloudCommand::SetChargeLimit { percent },
                    CarAction::SetChargeLimit(percent),
                )
            }
        };
        let profile = vehicle
            .failures
            .unwrap_or_else(|| *read(&self.global_failures));
        if roll(&mut vehicle.rng, profile.command_failure_rate) {
            return Err(CloudError::Transient(
                "the vehicle did not accept the command".into(),
            ));
        }
        let ignored = roll(&mut vehicle.rng, profile.command_ignored_rate);
        let effective_at = later(now, self.config.command_latency);
        if !ignored {
            vehicle.battery.pending.push(PendingAction {
                effective_at,
                action,
            });
        }
        let mut id_bytes = [0u8; 16];
        rand::RngCore::fill_bytes(&mut vehicle.rng, &mut id_bytes);
        let receipt = CommandReceipt {
            command_id: uuid::Builder::from_random_bytes(id_bytes).into_uuid(),
            idempotency_key: idempotency_key.to_owned(),
            command,
            accepted_at: now,
            expected_effective_at: Some(effective_at),
        };
        vehicle
            .receipts
            .insert(idempotency_key.to_owned(), receipt.clone());
        Ok(receipt)
    }

    fn forget_expired_receipts(&self, vehicle: &mut SimVehicle, now: DateTime<Utc>) {
        let ttl = self.config.idempotency_ttl;
        vehicle
            .receipts
            .retain(|_, receipt| later(receipt.accepted_at, ttl) > now);
    }
}

#[async_trait]
impl VehicleCloud for SandboxCloud {
    async fn read_state(&self, vehicle: &CloudVehicleRef) -> Result<VehicleReading, CloudError> {
        self.read_now(vehicle)
    }

    async fn start_charging(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        self.command(vehicle, CloudCommand::StartCharging, idempotency_key)
    }

    async fn stop_charging(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        self.command(vehicle, CloudCommand::StopCharging, idempotency_key)
    }

    /// Clamps `percent` to [`CHARGE_LIMIT_RANGE`]; the receipt carries the value applied.
    async fn set_charge_limit(
        &self,
        vehicle: &CloudVehicleRef,
        percent: i32,
        idempotency_key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        self.command(
            vehicle,
            CloudCommand::SetChargeLimit { percent },
            idempotency_key,
        )
    }

    /// The sandbox keeps its cars in memory: after a restart the worker re-registers them from
    /// their records. The model comes from the catalogue (`device_model`), else from the
    /// capacity and power; the last known level and position; plugged out.
    async fn register_unknown(&self, vehicle: &VehicleRegistration) -> Result<(), CloudError> {
        static CATALOGUE: std::sync::OnceLock<Vec<VehicleSpec>> = std::sync::OnceLock::new();
        let catalogue =
            CATALOGUE.get_or_init(|| catalogue::embedded_catalogue().unwrap_or_default());
        let spec = vehicle
            .manufacturer
            .as_deref()
            .zip(vehicle.model.as_deref())
            .and_then(|(make, name)| catalogue::find_model(catalogue, make, name))
            .cloned()
            .unwrap_or_else(|| {
                let capacity = vehicle
                    .battery_capacity_kwh
                    .filter(|c| *c > 0.0)
                    .unwrap_or(60.0);
                let power_kw = f64::from(vehicle.max_charge_power_w.max(1380)) / 1000.0;
                VehicleSpec::new(capacity, power_kw, capacity * 6.5)
            });
        let (lat, lon) = vehicle.position.unwrap_or((0.0, 0.0));
        let initial = SandboxInitial {
            battery_level: vehicle
                .battery_level_percent
                .map_or(50.0, |l| l.clamp(0.0, 100.0)),
            plugged_in: false,
            lat,
            lon,
            charge_limit: vehicle.charge_limit_percent.unwrap_or(100).clamp(1, 100),
        };
        match self.add_vehicle(vehicle.vehicle.vehicle_id, spec, initial) {
            // Registered meanwhile by another cycle: just as good.
            Ok(_) | Err(SandboxError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(CloudError::Transient(e.to_string())),
        }
    }

    async fn restore_link(&self, vehicle: &CloudVehicleRef) -> Result<(), CloudError> {
        self.restore_authorization(vehicle.vehicle_id)
            .map(|_| ())
            .map_err(|e| match e {
                SandboxError::UnknownVehicle(_) => CloudError::UnknownVehicle,
                other => CloudError::Transient(other.to_string()),
            })
    }
}
