//! The vehicle clouds one worker reaches, with their call budgets.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use voltplan_clouds::{
    SandboxCloud, SandboxInitial, VehicleCloud, VehicleSpec, embedded_catalogue, find_model,
};
use voltplan_core::vehicle::SANDBOX_CLOUD;

use crate::budget::{CallBudget, CallKind, TokenBucket};

/// The vehicle clouds the worker can reach, by cloud-service id (`device_model.cloud_service`).
#[derive(Clone, Default)]
pub struct Clouds {
    by_service: HashMap<Uuid, Arc<dyn VehicleCloud>>,
    /// Used for vehicles without a `cloud_service`.
    default_service: Option<Uuid>,
    /// Kept typed so unknown sandbox cars can be registered (the sandbox forgets on restart).
    sandbox: Option<Arc<SandboxCloud>>,
    catalogue: Arc<Vec<VehicleSpec>>,
    /// Call budgets by service; a service without one is called as often as cycles need.
    budgets: HashMap<Uuid, CallBudget>,
    /// The budgets' buckets, shared by the clones of this value (one worker's cycles).
    buckets: Arc<std::sync::Mutex<HashMap<Uuid, TokenBucket>>>,
}

impl std::fmt::Debug for Clouds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clouds")
            .field("services", &self.by_service.keys().collect::<Vec<_>>())
            .field("default_service", &self.default_service)
            .field("budgets", &self.budgets)
            .finish_non_exhaustive()
    }
}

impl Clouds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the sandbox under [`SANDBOX_CLOUD`]'s id and makes it the default service.
    pub fn with_sandbox(mut self, sandbox: Arc<SandboxCloud>) -> Self {
        self.by_service.insert(SANDBOX_CLOUD.id, sandbox.clone());
        self.default_service.get_or_insert(SANDBOX_CLOUD.id);
        self.sandbox = Some(sandbox);
        // Without the catalogue, registration falls back to the partner's capacity and power.
        self.catalogue = Arc::new(embedded_catalogue().unwrap_or_default());
        self
    }

    pub fn with_cloud(mut self, service_id: Uuid, cloud: Arc<dyn VehicleCloud>) -> Self {
        self.by_service.insert(service_id, cloud);
        self
    }

    pub fn with_default_service(mut self, service_id: Uuid) -> Self {
        self.default_service = Some(service_id);
        self
    }

    /// Never call this service faster than `budget` (see [`budget`]).
    pub fn with_budget(mut self, service_id: Uuid, budget: CallBudget) -> Self {
        self.budgets.insert(service_id, budget);
        self
    }

    /// Takes a call from the service's budget, or says when to try again.
    pub(crate) fn take_call(
        &self,
        service: Uuid,
        kind: CallKind,
        now: DateTime<Utc>,
    ) -> Result<(), DateTime<Utc>> {
        let Some(budget) = self.budgets.get(&service) else {
            return Ok(());
        };
        // A poisoned lock only means another cycle panicked mid-update of plain numbers.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets
            .entry(service)
            .or_insert_with(|| TokenBucket::new(*budget, now))
            .try_take(kind, now)
    }

    pub(crate) fn service_of(&self, vehicle: &voltplan_store::VehicleRecord) -> Option<Uuid> {
        vehicle
            .settings
            .device_model
            .cloud_service
            .or(self.default_service)
    }

    pub(crate) fn cloud(&self, service: Uuid) -> Option<&Arc<dyn VehicleCloud>> {
        self.by_service.get(&service)
    }

    /// Registers a car the sandbox does not know (it keeps cars in memory only): the catalogue
    /// model named by `device_model`, else the partner's capacity and power; the last known level;
    /// plugged out.
    pub(crate) fn register_in_sandbox(
        &self,
        vehicle: &voltplan_store::VehicleRecord,
        home: Option<(f64, f64)>,
    ) -> bool {
        let Some(sandbox) = &self.sandbox else {
            return false;
        };
        let settings = &vehicle.settings;
        let state = &vehicle.state;
        let model = &settings.device_model;
        let spec = model
            .manufacturer
            .as_deref()
            .zip(model.model.as_deref())
            .and_then(|(make, name)| find_model(&self.catalogue, make, name))
            .cloned()
            .unwrap_or_else(|| {
                let capacity = state
                    .reported_battery_capacity_kwh
                    .filter(|c| *c > 0.0)
                    .unwrap_or(if settings.battery_capacity_kwh > 0.0 {
                        settings.battery_capacity_kwh
                    } else {
                        60.0
                    });
                let power_kw = f64::from(settings.expected_max_charge_power.max(1380)) / 1000.0;
                VehicleSpec::new(capacity, power_kw, capacity * 6.5)
            });
        let (lat, lon) = state
            .latitude
            .zip(state.longitude)
            .or(home)
            .unwrap_or((0.0, 0.0));
        let initial = SandboxInitial {
            battery_level: state
                .battery_level
                .map_or(50.0, |l| f64::from(l.clamp(0, 100))),
            plugged_in: false,
            lat,
            lon,
            charge_limit: state.charge_target_max.unwrap_or(100).clamp(1, 100),
        };
        match sandbox.add_vehicle(vehicle.id, spec, initial) {
            Ok(_) => true,
            // Another cycle registered it meanwhile: just as good.
            Err(voltplan_clouds::SandboxError::AlreadyExists(_)) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot register the vehicle in the sandbox");
                false
            }
        }
    }
}
