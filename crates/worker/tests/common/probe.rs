//! A vehicle cloud in front of the sandbox that sees what the worker sends, and can play a worker
//! killed mid-command.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use voltplan_clouds::{
    CloudError, CloudVehicleRef, CommandReceipt, SANDBOX_CLOUD, SandboxCloud, VehicleCloud,
    VehicleReading,
};
use voltplan_core::{Clock, ManualClock};
use voltplan_worker::Clouds;

use super::Env;

/// Forwards to the sandbox, counting commands; with `hang`, a command never returns after it
/// reached the car, like a worker killed between sending and recording the outcome.
pub struct Probe {
    inner: Arc<SandboxCloud>,
    hang: bool,
    /// With `hang`: these cars' commands hang before they reach the car (killed while sending).
    undelivered: HashSet<Uuid>,
    pub commands: AtomicUsize,
    pub per_key: std::sync::Mutex<HashMap<String, usize>>,
    pub reached: tokio::sync::Notify,
    /// Every call that reached the cloud: (clock time, read/start/stop/limit).
    pub calls: std::sync::Mutex<Vec<(DateTime<Utc>, &'static str)>>,
    clock: Arc<ManualClock>,
}

impl Probe {
    /// Wraps the environment's sandbox; `hang`: commands reach the car, then never return.
    pub fn new(env: &Env, hang: bool) -> Arc<Probe> {
        Self::hanging_before(env, hang, HashSet::new())
    }

    /// Like [`Probe::new`]; with `hang`, the commands to `undelivered` never reach their car.
    pub fn hanging_before(env: &Env, hang: bool, undelivered: HashSet<Uuid>) -> Arc<Probe> {
        Arc::new(Probe {
            inner: env.sandbox.clone(),
            hang,
            undelivered,
            commands: AtomicUsize::new(0),
            per_key: Default::default(),
            reached: Default::default(),
            calls: Default::default(),
            clock: env.clock.clone(),
        })
    }

    /// The worker's clouds: this probe as the default service.
    pub fn clouds(self: &Arc<Self>) -> Clouds {
        Clouds::new()
            .with_cloud(SANDBOX_CLOUD.id, self.clone())
            .with_default_service(SANDBOX_CLOUD.id)
    }

    fn log(&self, kind: &'static str) {
        self.calls
            .lock()
            .expect("lock")
            .push((self.clock.now(), kind));
    }

    /// Logs a command and forwards it to the sandbox, unless this car's commands hang before
    /// delivery.
    async fn forward(
        &self,
        kind: &'static str,
        vehicle: &CloudVehicleRef,
        key: &str,
        send: impl Future<Output = Result<CommandReceipt, CloudError>>,
    ) -> Result<CommandReceipt, CloudError> {
        self.log(kind);
        if self.hang && self.undelivered.contains(&vehicle.vehicle_id) {
            self.commands.fetch_add(1, Ordering::SeqCst);
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        let receipt = send.await;
        self.after(key, receipt).await
    }

    async fn after(
        &self,
        key: &str,
        receipt: Result<CommandReceipt, CloudError>,
    ) -> Result<CommandReceipt, CloudError> {
        *self
            .per_key
            .lock()
            .expect("lock")
            .entry(key.to_owned())
            .or_default() += 1;
        self.commands.fetch_add(1, Ordering::SeqCst);
        self.reached.notify_one();
        if self.hang {
            std::future::pending::<()>().await;
        }
        receipt
    }
}

#[async_trait]
impl VehicleCloud for Probe {
    async fn read_state(&self, vehicle: &CloudVehicleRef) -> Result<VehicleReading, CloudError> {
        self.log("read");
        self.inner.read_state(vehicle).await
    }
    async fn start_charging(
        &self,
        vehicle: &CloudVehicleRef,
        key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        let send = self.inner.start_charging(vehicle, key);
        self.forward("start", vehicle, key, send).await
    }
    async fn stop_charging(
        &self,
        vehicle: &CloudVehicleRef,
        key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        let send = self.inner.stop_charging(vehicle, key);
        self.forward("stop", vehicle, key, send).await
    }
    async fn set_charge_limit(
        &self,
        vehicle: &CloudVehicleRef,
        percent: i32,
        key: &str,
    ) -> Result<CommandReceipt, CloudError> {
        self.log("limit");
        self.inner.set_charge_limit(vehicle, percent, key).await
    }
}
