//! Account links: the OAuth tokens a real cloud acts with on a driver's behalf, and what the
//! worker's process keeps for such a cloud between calls (command receipts, pushed states).
//!
//! A cloud such as Smartcar does not know Voltplan's vehicles: it knows accounts (one driver's
//! login, with one access and one refresh token) and the cars that account shared. Voltplan keeps
//! the tokens encrypted in its database; a cloud reaches them only through a [`TokenVault`], so
//! this crate needs no database and its tests run on an in-memory vault.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cloud::{CloudError, CloudVehicleRef, CommandReceipt};

/// A secret string (a token): never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: only for the request that sends it, or for encryption.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// One account's OAuth tokens, as the cloud's token endpoint issued them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub access_expires_at: DateTime<Utc>,
    /// When the refresh token lapses if it is not used; `None` when the cloud does not say.
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// The tokens a vehicle is reached with, as the vault holds them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedTokens {
    /// The account (Voltplan's id) the vehicle is linked through.
    pub account_id: Uuid,
    pub tokens: TokenSet,
    /// Bumped by every [`TokenVault::replace_tokens`]: a refresh that lost a race is detected.
    pub version: i64,
    /// The cloud's own id for the vehicle (Smartcar's vehicle id), recorded when the driver
    /// linked it. Use this, not `CloudVehicleRef::external_id` (the partner's writable
    /// `external_device_id`), to address the car.
    pub cloud_vehicle_id: String,
    /// The car's make as the cloud reported it at linking (e.g. `"TESLA"`), for per-brand call
    /// budgets; `None` when unknown.
    pub make: Option<String>,
}

/// A cloud's view of a vehicle it pushed through its webhooks, stored as the cloud wrote it
/// (`state` is the cloud's own document) with when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushedState {
    pub state: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

/// Where a real cloud keeps what must outlive one call: implemented over Voltplan's database
/// (tokens encrypted at rest), and in memory for tests.
#[async_trait]
pub trait TokenVault: Send + Sync {
    /// The tokens of the account `vehicle` is linked through. [`CloudError::UnknownVehicle`] when
    /// the vehicle has no link, [`CloudError::AuthorizationRevoked`] when its link was revoked.
    async fn tokens_for(&self, vehicle: &CloudVehicleRef) -> Result<LinkedTokens, CloudError>;

    /// Replaces the account's tokens if its version is still `version`; `false` when another
    /// process replaced them first (reload with [`TokenVault::tokens_for`] and use those). Both
    /// tokens are written together: a rotated refresh token must never be lost.
    async fn replace_tokens(
        &self,
        account_id: Uuid,
        version: i64,
        tokens: &TokenSet,
    ) -> Result<bool, CloudError>;

    /// The cloud refused the account's refresh token (the owner withdrew access): every vehicle
    /// of the account then reads as revoked until it is linked again.
    async fn mark_revoked(&self, account_id: Uuid, reason: &str) -> Result<(), CloudError>;

    /// The first receipt accepted under `idempotency_key` for `vehicle`, if any.
    async fn receipt(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
    ) -> Result<Option<CommandReceipt>, CloudError>;

    /// Remembers an accepted command's receipt under its key (for at least 24 hours).
    async fn record_receipt(
        &self,
        vehicle: &CloudVehicleRef,
        receipt: &CommandReceipt,
    ) -> Result<(), CloudError>;

    /// The last state the cloud pushed for this vehicle, if any.
    async fn pushed_state(
        &self,
        vehicle: &CloudVehicleRef,
    ) -> Result<Option<PushedState>, CloudError>;
}
