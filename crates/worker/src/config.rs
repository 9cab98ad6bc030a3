//! How often and how hard the worker works.

use chrono::Duration;

/// How often and how hard the worker works. Durations are simulated time (the injected clock),
/// except `idle_wait`, which is real time between empty polls in [`Worker::run`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in leases and command records; unique per running worker.
    pub worker_id: String,
    /// Vehicles claimed per batch.
    pub batch_size: i64,
    /// Vehicle cycles run at the same time within a batch.
    pub concurrency: usize,
    /// How long a claim holds a vehicle; a killed worker's vehicles are taken over after it.
    pub lease_for: Duration,
    /// Poll interval of an unplugged car.
    pub idle_interval: Duration,
    /// Poll interval of a plugged-in car away from any planned switch.
    pub plugged_interval: Duration,
    /// Poll interval near a planned switch, while a command awaits confirmation or a boost runs.
    pub active_interval: Duration,
    /// "Near" a planned switch: closer than this.
    pub near_switch: Duration,
    /// Poll interval of a car whose authorisation was revoked (only a human can fix it).
    pub revoked_interval: Duration,
    /// Never cycle a vehicle again sooner than this.
    pub min_interval: Duration,
    /// After a command's expected effect, how long to wait for a reading to confirm it.
    pub confirm_grace: Duration,
    /// First retry delay after a failed call; doubles per consecutive failure.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Consecutive steering failures that turn `steering_status` to `error` and start the fallback.
    pub steering_failures_for_error: u32,
    /// Consecutive read failures that turn `monitoring_status` to `error`.
    pub read_failures_for_error: u32,
    /// Re-plan when the battery is this many percentage points away from the plan's expectation.
    pub replan_drift_pct: f64,
    /// Plans aim to reach the target this long before the deadline when it fits, so a car that
    /// charged a little short can be topped up before the deadline (see `steer::tops_up`).
    pub ready_margin: Duration,
    /// A grid group is planned jointly again this often even when none of its vehicles changed
    /// (batteries fill, published prices arrive).
    pub grid_replan_every: Duration,
    /// Real time to wait in [`Worker::run`] when nothing was due.
    pub idle_wait: std::time::Duration,
}

impl WorkerConfig {
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            batch_size: 512,
            concurrency: 64,
            lease_for: Duration::minutes(2),
            idle_interval: Duration::minutes(5),
            plugged_interval: Duration::minutes(5),
            active_interval: Duration::minutes(1),
            near_switch: Duration::minutes(10),
            revoked_interval: Duration::minutes(15),
            min_interval: Duration::seconds(5),
            confirm_grace: Duration::minutes(2),
            retry_base: Duration::seconds(30),
            retry_max: Duration::minutes(10),
            steering_failures_for_error: 3,
            read_failures_for_error: 3,
            replan_drift_pct: 2.0,
            ready_margin: Duration::minutes(15),
            grid_replan_every: Duration::minutes(15),
            idle_wait: std::time::Duration::from_millis(500),
        }
    }
}
