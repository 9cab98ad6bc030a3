//! Outgoing webhooks: partners' endpoints, the transactional outbox and deliveries.
//!
//! An event is written in the same transaction as the change that caused it (a worker's fenced
//! finish, an onboarding's completion), and only when some live, enabled endpoint of the
//! organisation subscribes to its type; one delivery row per such endpoint is written with it.
//! Deliverers lease due deliveries (so two never send the same one at once), send, and record
//! the attempt; a delivery waits while an earlier one of the same endpoint and ordering key (the
//! device) is pending, so a device's events arrive in order. The SQL is in `shared/webhooks.rs`,
//! compiled once per backend.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use voltplan_core::events::Event;

use crate::{OrgScope, Result};

/// A signing secret sealed with the server's key ring (`crate::sealed`), bound to its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub key_id: String,
    pub sealed: Vec<u8>,
}

/// What the seal of an endpoint's secret is bound to: a secret copied to another row does not open.
pub fn secret_context(endpoint_id: Uuid) -> Vec<u8> {
    format!("webhook-secret:{endpoint_id}").into_bytes()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    /// Event type names, or `["*"]` for all.
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub secret: SealedSecret,
    pub now: DateTime<Utc>,
}

/// A partial update of the partner-writable fields (`None`: unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookEndpointUpdate {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpointRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub secret: SealedSecret,
    /// The secret before the last rotation, which still signs until the given instant.
    pub previous_secret: Option<(SealedSecret, DateTime<Utc>)>,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// One attempt to send a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    /// Why it failed (never a secret or a signature).
    pub error: Option<String>,
    /// The receiver's answer, at most 1 KiB.
    pub response_excerpt: Option<String>,
}

/// An event's delivery to one endpoint, for the delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub endpoint_id: Uuid,
    /// The event's id: the `webhook-id` header, and the delivery's id in the API.
    pub event_id: Uuid,
    pub event_type: String,
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Oldest first; filled by [`WebhookStore::webhook_delivery`] only.
    pub attempt_log: Vec<AttemptRecord>,
}

/// A delivery leased to one deliverer until `lease_until`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub endpoint_id: Uuid,
    pub event_seq: i64,
    pub event_id: Uuid,
    pub org_id: Uuid,
    pub url: String,
    pub secret: SealedSecret,
    pub previous_secret: Option<(SealedSecret, DateTime<Utc>)>,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i32,
    /// Of those, the ones since the retry window began (`first_attempt_at`): a retry or replay
    /// starts the schedule again.
    pub window_attempts: i32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub lease_owner: String,
    pub lease_until: DateTime<Utc>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptVerdict {
    Delivered,
    /// Failed; try again at this instant.
    RetryAt(DateTime<Utc>),
    /// Failed, and the retry window is over.
    GiveUp,
}

/// An attempt's record and verdict, written together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    pub attempt: AttemptRecord,
    pub verdict: AttemptVerdict,
}

/// How long old events are kept once every delivery of them is finished.
pub const KEEP_FINISHED_EVENTS: Duration = Duration::days(30);

#[async_trait]
pub trait WebhookStore {
    async fn create_webhook_endpoint(
        &self,
        org: OrgScope,
        endpoint: &NewWebhookEndpoint,
    ) -> Result<WebhookEndpointRecord>;
    /// The organisation's live endpoints, oldest first.
    async fn webhook_endpoints(&self, org: OrgScope) -> Result<Vec<WebhookEndpointRecord>>;
    async fn webhook_endpoint(&self, org: OrgScope, id: Uuid) -> Result<WebhookEndpointRecord>;
    /// Changes the fields given; enabling a disabled endpoint again forgets its failures.
    async fn update_webhook_endpoint(
        &self,
        org: OrgScope,
        id: Uuid,
        update: &WebhookEndpointUpdate,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpointRecord>;
    /// Soft-deletes the endpoint; its pending deliveries fail.
    async fn delete_webhook_endpoint(
        &self,
        org: OrgScope,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// A new secret; the current one keeps signing until `previous_until`.
    async fn rotate_webhook_secret(
        &self,
        org: OrgScope,
        id: Uuid,
        secret: &SealedSecret,
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<WebhookEndpointRecord>;

    /// Writes the events to the outbox (one transaction), each with a delivery to every live,
    /// enabled endpoint of its organisation that subscribes to its type.
    async fn append_events(&self, events: &[Event]) -> Result<()>;
    /// Writes `event` with a delivery to this endpoint only (`POST …/test`).
    async fn append_test_event(
        &self,
        org: OrgScope,
        endpoint_id: Uuid,
        event: &Event,
    ) -> Result<()>;

    /// The endpoint's deliveries, newest first, optionally of one status.
    async fn webhook_deliveries(
        &self,
        org: OrgScope,
        endpoint_id: Uuid,
        status: Option<DeliveryStatus>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>>;
    /// One delivery with its attempts.
    async fn webhook_delivery(
        &self,
        org: OrgScope,
        endpoint_id: Uuid,
        event_id: Uuid,
    ) -> Result<DeliveryRecord>;
    /// Sends a delivery again as soon as possible, with a new retry window (a delivered one too:
    /// a replay).
    async fn retry_webhook_delivery(
        &self,
        org: OrgScope,
        endpoint_id: Uuid,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<DeliveryRecord>;

    /// Leases up to `limit` due deliveries of enabled endpoints, each the oldest pending one of
    /// its endpoint and ordering key.
    async fn claim_webhook_deliveries(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>>;
    /// Records attempts and their verdicts in one transaction, each fenced by its lease: `false`
    /// (nothing written for it) where the lease was lost. A failure starts or continues the
    /// endpoint's failing streak; a streak of `disable_after` disables the endpoint and writes a
    /// `webhook_endpoint.disabled` event.
    async fn finish_webhook_attempts(
        &self,
        attempts: &[(ClaimedDelivery, AttemptReport)],
        now: DateTime<Utc>,
        disable_after: Duration,
    ) -> Result<Vec<bool>>;
    /// Deletes events older than `before` whose deliveries are all finished; returns how many.
    async fn prune_webhook_events(&self, before: DateTime<Utc>) -> Result<u64>;
}
