//! The vehicle clouds one worker reaches, with their call budgets.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use voltplan_clouds::{BuiltClouds, SandboxCloud, VehicleCloud};

use crate::budget::{CallBudget, CallKind, TokenBucket};

/// The vehicle clouds the worker can reach, by cloud-service id (`device_model.cloud_service`).
#[derive(Clone, Default)]
pub struct Clouds {
    by_service: HashMap<Uuid, Arc<dyn VehicleCloud>>,
    /// Used for vehicles without a `cloud_service`.
    default_service: Option<Uuid>,
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

    /// Every cloud built from the process's configuration (`voltplan_clouds::registry::build`).
    pub fn with_built(mut self, built: &BuiltClouds) -> Self {
        for (service, cloud) in &built.clouds {
            self.by_service.insert(*service, cloud.clone());
        }
        if let Some(default) = built.default_service {
            self.default_service.get_or_insert(default);
        }
        self
    }

    /// Only the simulator, as the default service (tests, benchmarks).
    pub fn with_sandbox(self, sandbox: Arc<SandboxCloud>) -> Self {
        self.with_built(&BuiltClouds::with_sandbox(sandbox))
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
}
