//! What the OCPP central system keeps: the charger document of each wallbox (fenced by the
//! connection's epoch), the transactions and meter values chargers report, and the queue of calls
//! to chargers that the replica holding a charger's WebSocket sends.
//!
//! Every write a charger's message causes is committed before the message is answered, and each
//! is idempotent: a charger that resends after a lost answer (OCPP-J retries) changes nothing the
//! second time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voltplan_core::charger::Charger;

use crate::{OrgScope, Result};

/// One open WebSocket's hold on its wallbox: the central system's writes are fenced by `epoch`,
/// which every new connection of the same charger bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargerLink {
    pub org: OrgScope,
    pub wallbox_id: Uuid,
    pub epoch: i64,
}

/// A StartTransaction as the charger sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionStart {
    pub connector_id: i64,
    pub id_tag: String,
    pub meter_start_wh: i64,
    pub started_at: DateTime<Utc>,
}

/// A StopTransaction as the charger sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionStop {
    pub transaction_id: i64,
    pub meter_stop_wh: i64,
    pub stopped_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// An OCPP transaction as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRecord {
    pub id: i64,
    pub wallbox_id: Uuid,
    pub connector_id: i64,
    pub id_tag: String,
    pub meter_start_wh: i64,
    pub started_at: DateTime<Utc>,
    pub meter_stop_wh: Option<i64>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub stop_reason: Option<String>,
}

/// One sampled value, in its base unit (Wh, W, Percent, A, V).
#[derive(Debug, Clone, PartialEq)]
pub struct MeterSample {
    pub connector_id: i64,
    pub at: DateTime<Utc>,
    pub measurand: String,
    /// Empty when the sample is not per phase.
    pub phase: String,
    pub transaction_id: Option<i64>,
    pub value: f64,
    pub unit: String,
}

/// Where a call to a charger is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Waiting for the replica that holds the charger's WebSocket.
    Queued,
    /// Sent; no answer yet.
    Sent,
    /// Answered with `status: Accepted` (or a CALLRESULT without a status).
    Accepted,
    /// Answered with another status (`Rejected`, `NotSupported`, …).
    Rejected,
    /// Answered with a CALLERROR, or no answer in time.
    Failed,
    /// Not sent before it expired (the charger was offline).
    Expired,
}

impl CommandStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Sent,
            Self::Accepted,
            Self::Rejected,
            Self::Failed,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A call to a charger.
#[derive(Debug, Clone, PartialEq)]
pub struct OcppCommand {
    /// The caller's idempotency key: queuing the same id twice queues it once. Also the OCPP
    /// message id's source (see the central system).
    pub id: String,
    pub org_id: Uuid,
    pub wallbox_id: Uuid,
    pub action: String,
    /// The CALL's payload, JSON text.
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: CommandStatus,
    pub sent_by: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    /// The CALLRESULT payload or the CALLERROR, JSON text.
    pub response: Option<String>,
}

#[async_trait]
pub trait OcppStore: Send + Sync {
    /// A WebSocket opened: bumps the wallbox's connection epoch and returns the link and the
    /// charger document as it was (connected by another replica, possibly, until now).
    async fn open_charger_link(
        &self,
        org: OrgScope,
        wallbox_id: Uuid,
    ) -> Result<(ChargerLink, Charger)>;

    /// Writes the charger document if `link` still holds (no newer connection); `false` if not.
    /// `wake`: something the worker acts on changed (a plug, a status, a connection): the
    /// wallbox becomes due at once. StartTransaction and StopTransaction always wake it.
    async fn save_charger(&self, link: &ChargerLink, charger: &Charger, wake: bool)
    -> Result<bool>;

    /// Stores a StartTransaction (or finds the one a resend repeats) and the charger document, in
    /// one transaction; the transaction id. The document is written only if `link` holds.
    async fn start_transaction(
        &self,
        link: &ChargerLink,
        start: &TransactionStart,
        charger: &Charger,
    ) -> Result<i64>;

    /// Stores a StopTransaction with its meter values and the charger document, in one
    /// transaction; `false` when the charger's transaction id is not one of this wallbox's.
    async fn stop_transaction(
        &self,
        link: &ChargerLink,
        stop: &TransactionStop,
        samples: &[MeterSample],
        charger: &Charger,
    ) -> Result<bool>;

    /// Stores meter values (a resent sample is kept once) and the charger document.
    async fn record_meter_values(
        &self,
        link: &ChargerLink,
        samples: &[MeterSample],
        charger: &Charger,
    ) -> Result<()>;

    /// A wallbox's transactions that started in `[from, to)`, oldest first, and any still open.
    async fn list_transactions(
        &self,
        org: OrgScope,
        wallbox_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TransactionRecord>>;

    /// A wallbox's meter samples of one measurand in `[from, to)`, oldest first.
    async fn list_meter_samples(
        &self,
        org: OrgScope,
        wallbox_id: Uuid,
        measurand: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MeterSample>>;

    /// Queues a call; `false` when a call with this id was queued before (nothing changes).
    async fn queue_ocpp_command(&self, command: &OcppCommand) -> Result<bool>;

    /// Queued calls not yet expired, oldest first (every replica reads them and takes its own
    /// chargers').
    async fn queued_ocpp_commands(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OcppCommand>>;

    /// Takes a queued call for sending; `false` when another replica took it or it expired.
    async fn take_ocpp_command(&self, id: &str, replica: &str, now: DateTime<Utc>) -> Result<bool>;

    /// Records the answer to a sent call.
    async fn answer_ocpp_command(
        &self,
        id: &str,
        status: CommandStatus,
        response: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Marks queued calls past their expiry as expired; how many.
    async fn expire_ocpp_commands(&self, now: DateTime<Utc>) -> Result<u64>;

    async fn get_ocpp_command(&self, org: OrgScope, id: &str) -> Result<Option<OcppCommand>>;
}
