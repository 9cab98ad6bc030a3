//! [`TokenVault`] over the database: what a real cloud keeps between calls, with its tokens
//! sealed by the [`KeyRing`] (see `sealed.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;
use voltplan_clouds::{
    CloudError, CloudVehicleRef, CommandReceipt, LinkedTokens, PushedState, Secret, TokenSet,
    TokenVault,
};
use voltplan_core::Clock;

use crate::Store;
use crate::onboarding::{CloudAccountRecord, SealedTokens};
use crate::sealed::KeyRing;

/// The associated data a token is sealed with: its organisation, cloud and field.
fn token_context(org_id: Uuid, cloud_service: Uuid, field: &str) -> Vec<u8> {
    format!("voltplan-token|{org_id}|{cloud_service}|{field}").into_bytes()
}

/// Seals a cloud's tokens for an account of `org_id`.
pub fn seal_tokens(
    keys: &KeyRing,
    org_id: Uuid,
    cloud_service: Uuid,
    tokens: &TokenSet,
) -> SealedTokens {
    SealedTokens {
        key_id: keys.current_id().to_owned(),
        access_token: keys.seal(
            tokens.access_token.expose().as_bytes(),
            &token_context(org_id, cloud_service, "access"),
        ),
        refresh_token: keys.seal(
            tokens.refresh_token.expose().as_bytes(),
            &token_context(org_id, cloud_service, "refresh"),
        ),
        access_expires_at: tokens.access_expires_at,
        refresh_expires_at: tokens.refresh_expires_at,
    }
}

/// Opens an account's tokens.
pub fn open_tokens(keys: &KeyRing, account: &CloudAccountRecord) -> Result<TokenSet, CloudError> {
    let t = &account.tokens;
    let open = |sealed: &[u8], field: &str| {
        keys.open(
            &t.key_id,
            sealed,
            &token_context(account.org_id, account.cloud_service, field),
        )
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Secret::new)
        .ok_or_else(|| {
            // The operator's key configuration, not the cloud: say which key, never the token.
            tracing::error!(account_id = %account.id, key_id = %t.key_id,
                "a cloud account's tokens do not open with the configured VOLTPLAN_SECRET_KEYS");
            CloudError::Transient("stored tokens cannot be opened (key configuration)".into())
        })
    };
    Ok(TokenSet {
        access_token: open(&t.access_token, "access")?,
        refresh_token: open(&t.refresh_token, "refresh")?,
        access_expires_at: t.access_expires_at,
        refresh_expires_at: t.refresh_expires_at,
    })
}

fn store_failure(error: crate::StoreError) -> CloudError {
    tracing::warn!(%error, "the token vault's database call failed");
    CloudError::Transient("database unavailable".into())
}

/// The database-backed vault of one cloud service.
pub struct StoreVault {
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    cloud_service: Uuid,
    clock: Arc<dyn Clock>,
}

impl StoreVault {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        cloud_service: Uuid,
        clock: Arc<dyn Clock>,
    ) -> Self {
        StoreVault {
            store,
            keys,
            cloud_service,
            clock,
        }
    }
}

#[async_trait]
impl TokenVault for StoreVault {
    async fn tokens_for(&self, vehicle: &CloudVehicleRef) -> Result<LinkedTokens, CloudError> {
        let (account, link) = self
            .store
            .account_for_vehicle(vehicle.vehicle_id)
            .await
            .map_err(store_failure)?
            .filter(|(account, _)| account.cloud_service == self.cloud_service)
            .ok_or(CloudError::UnknownVehicle)?;
        if account.revoked_at.is_some() {
            return Err(CloudError::AuthorizationRevoked {
                reason: account
                    .revoked_reason
                    .unwrap_or_else(|| "access revoked".into()),
            });
        }
        Ok(LinkedTokens {
            account_id: account.id,
            tokens: open_tokens(&self.keys, &account)?,
            version: account.version,
            cloud_vehicle_id: link.cloud_vehicle_id,
            make: link.make,
        })
    }

    async fn replace_tokens(
        &self,
        account_id: Uuid,
        version: i64,
        tokens: &TokenSet,
    ) -> Result<bool, CloudError> {
        // The account's organisation is part of the sealing context: read it first.
        let org_id = self
            .store
            .account_org(account_id)
            .await
            .map_err(store_failure)?
            .ok_or(CloudError::UnknownVehicle)?;
        let sealed = seal_tokens(&self.keys, org_id, self.cloud_service, tokens);
        self.store
            .replace_account_tokens(account_id, version, &sealed, self.clock.now())
            .await
            .map_err(store_failure)
    }

    async fn mark_revoked(&self, account_id: Uuid, reason: &str) -> Result<(), CloudError> {
        self.store
            .revoke_account(account_id, reason, self.clock.now())
            .await
            .map_err(store_failure)
    }

    async fn receipt(
        &self,
        vehicle: &CloudVehicleRef,
        idempotency_key: &str,
    ) -> Result<Option<CommandReceipt>, CloudError> {
        let stored = self
            .store
            .command_receipt(vehicle.vehicle_id, idempotency_key)
            .await
            .map_err(store_failure)?;
        stored
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| CloudError::Transient(format!("stored receipt unreadable: {e}")))
    }

    async fn record_receipt(
        &self,
        vehicle: &CloudVehicleRef,
        receipt: &CommandReceipt,
    ) -> Result<(), CloudError> {
        let value = serde_json::to_value(receipt)
            .map_err(|e| CloudError::Transient(format!("receipt not serialisable: {e}")))?;
        self.store
            .record_command_receipt(
                vehicle.vehicle_id,
                &receipt.idempotency_key,
                &value,
                self.clock.now(),
            )
            .await
            .map_err(store_failure)
    }

    async fn pushed_state(
        &self,
        vehicle: &CloudVehicleRef,
    ) -> Result<Option<PushedState>, CloudError> {
        let Some((_, link)) = self
            .store
            .account_for_vehicle(vehicle.vehicle_id)
            .await
            .map_err(store_failure)?
        else {
            return Ok(None);
        };
        let pushed = self
            .store
            .pushed_state(self.cloud_service, &link.cloud_vehicle_id)
            .await
            .map_err(store_failure)?;
        Ok(pushed.map(|(state, received_at)| PushedState { state, received_at }))
    }
}
