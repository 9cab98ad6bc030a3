//! What the worker needs to cycle wallboxes: claim due ones with a lease (the lease SQL shared
//! with every device table, see [`crate::fleet::DeviceTable`]) and finish a batch fenced by each
//! lease. A wallbox is steered through the OCPP call queue: the calls a cycle decides on are
//! queued in the same fenced transaction, so a worker that lost its lease queues nothing, and
//! their ids are the decisions' idempotency keys, so a worker taking over queues nothing twice.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use voltplan_core::wallbox::WallboxState;

use crate::Result;
use crate::fleet::{Lease, ReadingRecord, SessionRecord};
use crate::ocpp::OcppCommand;
use crate::wallboxes::WallboxRecord;

/// A wallbox claimed for one cycle.
#[derive(Debug, Clone)]
pub struct ClaimedWallbox {
    pub wallbox: WallboxRecord,
    pub lease: Lease,
    /// The worker's own document (JSON text).
    pub runtime: Option<String>,
    /// The current plan (JSON text).
    pub plan: Option<String>,
}

/// What a wallbox cycle writes back.
#[derive(Debug, Clone)]
pub struct WallboxOutcome {
    pub state: WallboxState,
    pub runtime: String,
    pub plan: Option<String>,
    pub next_cycle_at: DateTime<Utc>,
    /// The armed boost started with this session: clear `boost_for_next_session`.
    pub clear_boost_for_next_session: bool,
    /// The boost request (`boost_requested_at`) or cancellation (`boost_cancelled_at`) this cycle
    /// took up: cleared unless the partner wrote a newer one meanwhile.
    pub clear_boost_request: Option<DateTime<Utc>>,
    pub clear_boost_cancel: Option<DateTime<Utc>>,
    /// Sessions (one per OCPP transaction) opened, updated or closed (`vehicle_id` = the wallbox).
    pub sessions: Vec<SessionRecord>,
    pub reading: Option<ReadingRecord>,
    /// Calls to the charger to queue (SetChargingProfile, RemoteStart/StopTransaction).
    pub calls: Vec<OcppCommand>,
    /// Webhook events of this cycle, written with the fenced finish (the outbox).
    pub events: Vec<voltplan_core::events::Event>,
}

#[async_trait]
pub trait WallboxFleetStore: Send + Sync {
    /// Leases up to `limit` due wallboxes to `worker_id` for `lease_for`.
    async fn claim_wallboxes(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedWallbox>>;

    /// Writes each outcome in one transaction, fenced by its lease: `false` where it was lost
    /// (nothing of that wallbox is written, no call queued).
    async fn finish_wallbox_cycles(
        &self,
        outcomes: &[(Lease, WallboxOutcome)],
    ) -> Result<Vec<bool>>;
}
