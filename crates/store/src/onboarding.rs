//! Device onboarding (Podero §3.9) and the clouds' account links it creates.
//!
//! An onboarding session is what a partner's `POST /device-onboarding` starts and the driver's
//! browser walks through on the Connect pages: choose a cloud, log in there (OAuth), pick cars.
//! The Connect pages have no bearer token: the session's random id is their secret, so
//! [`OnboardingStore::find_onboarding_session`] and the callback's
//! [`OnboardingStore::take_authorization`] are unscoped lookups (like an access token's hash);
//! everything after them is scoped by the session's `org_id`.
//!
//! A cloud account holds one driver's tokens at a cloud, sealed (`crate::sealed`): the store
//! never sees them in clear. A vehicle link says which account an EV is reached through.
//! The SQL is in `shared/onboarding.rs`, compiled once per backend.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{OrgScope, Result, VehicleRecord};

/// Where a session is in its walk through the Connect pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnboardingStatus {
    /// Created; the driver has not chosen a cloud yet.
    Pending,
    /// Sent to the cloud's login, waiting for its callback.
    Authorizing,
    /// The account is linked; the driver picks which cars to connect.
    Choosing,
    Completed,
    /// The driver (or the cloud's login) refused.
    Cancelled,
    /// Linking failed (the cloud answered an error).
    Failed,
}

impl OnboardingStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            OnboardingStatus::Pending => "pending",
            OnboardingStatus::Authorizing => "authorizing",
            OnboardingStatus::Choosing => "choosing",
            OnboardingStatus::Completed => "completed",
            OnboardingStatus::Cancelled => "cancelled",
            OnboardingStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            OnboardingStatus::Pending,
            OnboardingStatus::Authorizing,
            OnboardingStatus::Choosing,
            OnboardingStatus::Completed,
            OnboardingStatus::Cancelled,
            OnboardingStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// Whether the session has ended (nothing more can happen on its pages).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            OnboardingStatus::Completed | OnboardingStatus::Cancelled | OnboardingStatus::Failed
        )
    }
}

/// What the partner chose for the session (the create body, minus the URLs and ids).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardingOptions {
    /// The Connect pages' language (`en`, `de`, …).
    pub language: String,
    /// The price zone of devices created (Podero's `PriceZone` spelling).
    pub price_zone_default: String,
    pub is_smart_optimization_active_default: bool,
    /// Podero's device-type enum (`ev`, `wb`, `hp`, `iv`); `None` lets the driver choose.
    pub device_type: Option<String>,
    /// The partner's own data, returned as given.
    #[serde(default)]
    pub external_metadata: serde_json::Value,
}

/// A car the linked account shared, as the cloud named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateVehicle {
    /// The cloud's id for the car.
    pub cloud_vehicle_id: String,
    pub make: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
    pub vin: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OnboardingSessionRecord {
    /// Random (UUID v4): whoever holds it can walk the Connect pages.
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub building_id: Option<Uuid>,
    /// Set for a re-link (a cue's `/resolve`): the car whose link is restored.
    pub relink_vehicle_id: Option<Uuid>,
    /// The cue (action) a re-link session resolves.
    pub cue_id: Option<Uuid>,
    pub options: OnboardingOptions,
    pub success_url: String,
    pub cancel_url: String,
    pub status: OnboardingStatus,
    /// The cloud the driver chose.
    pub cloud_service: Option<Uuid>,
    pub cloud_account_id: Option<Uuid>,
    pub candidates: Option<Vec<CandidateVehicle>>,
    /// The devices created or re-linked.
    pub object_ids: Vec<Uuid>,
    /// What the partner reported through `POST /cues/{id}/state` (`success` / `fail`).
    pub partner_report: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl OnboardingSessionRecord {
    /// Still walkable at `now`: not ended, not expired.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        !self.status.is_final() && now < self.expires_at
    }
}

/// A token sealed with AES-256-GCM (`crate::sealed`): nonce and ciphertext, and the key's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedTokens {
    pub key_id: String,
    pub access_token: Vec<u8>,
    pub refresh_token: Vec<u8>,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// A driver's login at a cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudAccountRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub cloud_service: Uuid,
    /// The cloud's id for the login (Smartcar's user id), when it has one.
    pub external_user_id: Option<String>,
    pub tokens: SealedTokens,
    pub version: i64,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
}

/// Which account an EV is reached through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleLink {
    pub vehicle_id: Uuid,
    pub account_id: Uuid,
    pub cloud_service: Uuid,
    pub cloud_vehicle_id: String,
    pub make: Option<String>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum OnboardingEnd {
    /// The cars the driver picked: new EVs to create (with their links) and existing EVs of the
    /// user re-linked to the account.
    Completed {
        created: Vec<(VehicleRecord, VehicleLink)>,
        relinked: Vec<VehicleLink>,
    },
    Cancelled,
    Failed,
}

/// How long ended sessions, spent webhook ids and command receipts are kept.
pub const KEEP_ONBOARDING: chrono::Duration = chrono::Duration::days(30);

#[async_trait]
pub trait OnboardingStore: Send + Sync {
    /// Stores a new session for a live user of `org` (and, when given, a live building of that
    /// user). `NotFound` otherwise.
    async fn create_onboarding_session(
        &self,
        org: OrgScope,
        session: &OnboardingSessionRecord,
    ) -> Result<()>;

    /// The partner's read, scoped.
    async fn get_onboarding_session(
        &self,
        org: OrgScope,
        id: Uuid,
    ) -> Result<OnboardingSessionRecord>;

    /// The Connect pages' read by the secret id. Not scoped: see the module docs.
    async fn find_onboarding_session(&self, id: Uuid) -> Result<OnboardingSessionRecord>;

    /// The driver chose `cloud_service`: the session waits for the cloud's callback with the
    /// state whose SHA-256 is `state_hash` (a new choice replaces an older state). `false` when
    /// the session has ended or expired.
    async fn start_authorization(
        &self,
        org: OrgScope,
        id: Uuid,
        cloud_service: Uuid,
        state_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// The cloud's callback: finds the open session waiting for this state and forgets the state,
    /// so a replayed callback finds nothing. Not scoped: the state is the secret.
    async fn take_authorization(
        &self,
        state_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<OnboardingSessionRecord>>;

    /// The account is linked (its tokens stored or replaced) and its cars listed: the session
    /// moves to choosing. One transaction. Returns the account's id (an existing account of the
    /// same cloud login is updated and un-revoked).
    async fn link_account(
        &self,
        org: OrgScope,
        session_id: Uuid,
        account: &CloudAccountRecord,
        candidates: &[CandidateVehicle],
        now: DateTime<Utc>,
    ) -> Result<Uuid>;

    /// Ends an open session. For `Completed` the EVs are created and the links written in the
    /// same transaction. `false` when the session had already ended (nothing written).
    async fn end_onboarding(
        &self,
        org: OrgScope,
        session_id: Uuid,
        end: &OnboardingEnd,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// The newest session a cue's `/resolve` started, if any.
    async fn latest_cue_session(
        &self,
        org: OrgScope,
        cue_id: Uuid,
    ) -> Result<Option<OnboardingSessionRecord>>;

    /// Records the partner's report on a cue's newest session.
    async fn report_cue_state(
        &self,
        org: OrgScope,
        session_id: Uuid,
        report: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// The live EV of `org` linked to this car of this cloud, if any.
    async fn find_linked_vehicle(
        &self,
        org: OrgScope,
        cloud_service: Uuid,
        cloud_vehicle_id: &str,
    ) -> Result<Option<Uuid>>;

    /// The link of a vehicle, scoped.
    async fn vehicle_link(&self, org: OrgScope, vehicle_id: Uuid) -> Result<Option<VehicleLink>>;
}

/// What real clouds keep between calls, for the worker's processes (not scoped by organisation:
/// the worker acts on claimed vehicles of every organisation, by id).
#[async_trait]
pub trait CloudLinkStore: Send + Sync {
    /// The account and link of a vehicle (live), if it has one.
    async fn account_for_vehicle(
        &self,
        vehicle_id: Uuid,
    ) -> Result<Option<(CloudAccountRecord, VehicleLink)>>;

    /// The organisation of an account (its tokens are sealed with it).
    async fn account_org(&self, account_id: Uuid) -> Result<Option<Uuid>>;

    /// Replaces an account's tokens if its version is still `version`.
    async fn replace_account_tokens(
        &self,
        account_id: Uuid,
        version: i64,
        tokens: &SealedTokens,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    async fn revoke_account(
        &self,
        account_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    async fn command_receipt(
        &self,
        vehicle_id: Uuid,
        idempotency_key: &str,
    ) -> Result<Option<serde_json::Value>>;

    /// Keeps the first receipt for a key (a second insert of the same key changes nothing).
    async fn record_command_receipt(
        &self,
        vehicle_id: Uuid,
        idempotency_key: &str,
        receipt: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()>;

    async fn pushed_state(
        &self,
        cloud_service: Uuid,
        cloud_vehicle_id: &str,
    ) -> Result<Option<(serde_json::Value, DateTime<Utc>)>>;

    /// Applies one webhook delivery: `false` when `event_id` was applied before (nothing
    /// changes). Otherwise, in one transaction, remembers the event, replaces the car's pushed
    /// state with `merge(old state)`, and makes every live EV linked to that car due at once.
    async fn apply_pushed_state(
        &self,
        cloud_service: Uuid,
        event_id: &str,
        cloud_vehicle_id: &str,
        merge: Box<dyn FnOnce(Option<serde_json::Value>) -> serde_json::Value + Send>,
        now: DateTime<Utc>,
    ) -> Result<bool>;
}
