//! [`OnboardingStore`] and [`CloudLinkStore`] in SQL both backends share, compiled once per
//! backend like `shared/store.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;
use voltplan_core::events::Event;

use super::shared_store::insert_vehicle;
use super::{FOR_UPDATE, ThisStore};
use crate::onboarding::{
    CandidateVehicle, CloudAccountRecord, CloudLinkStore, KEEP_ONBOARDING, OnboardingEnd,
    OnboardingOptions, OnboardingSessionRecord, OnboardingStatus, OnboardingStore, SealedTokens,
    VehicleLink,
};
use crate::{OrgScope, Result, StoreError};

const SESSION_COLUMNS: &str = "id, org_id, user_id, building_id, relink_vehicle_id, cue_id, options, \
     success_url, cancel_url, status, cloud_service, cloud_account_id, candidates, object_ids, \
     partner_report, created_at, updated_at, expires_at, completed_at";

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    org_id: Uuid,
    user_id: Uuid,
    building_id: Option<Uuid>,
    relink_vehicle_id: Option<Uuid>,
    cue_id: Option<Uuid>,
    options: Json<OnboardingOptions>,
    success_url: String,
    cancel_url: String,
    status: String,
    cloud_service: Option<Uuid>,
    cloud_account_id: Option<Uuid>,
    candidates: Option<Json<Vec<CandidateVehicle>>>,
    object_ids: Json<Vec<Uuid>>,
    partner_report: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

impl TryFrom<SessionRow> for OnboardingSessionRecord {
    type Error = StoreError;
    fn try_from(row: SessionRow) -> Result<Self> {
        let status = OnboardingStatus::parse(&row.status).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "onboarding session {} has status {:?}",
                row.id, row.status
            ))
        })?;
        Ok(OnboardingSessionRecord {
            id: row.id,
            org_id: row.org_id,
            user_id: row.user_id,
            building_id: row.building_id,
            relink_vehicle_id: row.relink_vehicle_id,
            cue_id: row.cue_id,
            options: row.options.0,
            success_url: row.success_url,
            cancel_url: row.cancel_url,
            status,
            cloud_service: row.cloud_service,
            cloud_account_id: row.cloud_account_id,
            candidates: row.candidates.map(|c| c.0),
            object_ids: row.object_ids.0,
            partner_report: row.partner_report,
            created_at: row.created_at,
            updated_at: row.updated_at,
            expires_at: row.expires_at,
            completed_at: row.completed_at,
        })
    }
}

const ACCOUNT_COLUMNS: &str = "a.id, a.org_id, a.user_id, a.cloud_service, a.external_user_id, \
     a.key_id, a.access_token, a.refresh_token, a.access_expires_at, a.refresh_expires_at, \
     a.version, a.revoked_at, a.revoked_reason";

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: Uuid,
    org_id: Uuid,
    user_id: Uuid,
    cloud_service: Uuid,
    external_user_id: Option<String>,
    key_id: String,
    access_token: Vec<u8>,
    refresh_token: Vec<u8>,
    access_expires_at: DateTime<Utc>,
    refresh_expires_at: Option<DateTime<Utc>>,
    version: i64,
    revoked_at: Option<DateTime<Utc>>,
    revoked_reason: Option<String>,
}

impl From<AccountRow> for CloudAccountRecord {
    fn from(row: AccountRow) -> Self {
        CloudAccountRecord {
            id: row.id,
            org_id: row.org_id,
            user_id: row.user_id,
            cloud_service: row.cloud_service,
            external_user_id: row.external_user_id,
            tokens: SealedTokens {
                key_id: row.key_id,
                access_token: row.access_token,
                refresh_token: row.refresh_token,
                access_expires_at: row.access_expires_at,
                refresh_expires_at: row.refresh_expires_at,
            },
            version: row.version,
            revoked_at: row.revoked_at,
            revoked_reason: row.revoked_reason,
        }
    }
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    vehicle_id: Uuid,
    account_id: Uuid,
    cloud_service: Uuid,
    cloud_vehicle_id: String,
    make: Option<String>,
}

impl From<LinkRow> for VehicleLink {
    fn from(row: LinkRow) -> Self {
        VehicleLink {
            vehicle_id: row.vehicle_id,
            account_id: row.account_id,
            cloud_service: row.cloud_service,
            cloud_vehicle_id: row.cloud_vehicle_id,
            make: row.make,
        }
    }
}

/// Writes `link` (replacing the vehicle's earlier link) inside `tx`.
async fn write_link(
    tx: &mut sqlx::Transaction<'static, super::Db>,
    org: OrgScope,
    link: &VehicleLink,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cloud_vehicle_links \
         (vehicle_id, org_id, account_id, cloud_service, cloud_vehicle_id, make, linked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (vehicle_id) DO UPDATE SET account_id = excluded.account_id, \
           cloud_service = excluded.cloud_service, cloud_vehicle_id = excluded.cloud_vehicle_id, \
           make = excluded.make, linked_at = excluded.linked_at",
    )
    .bind(link.vehicle_id)
    .bind(org.id())
    .bind(link.account_id)
    .bind(link.cloud_service)
    .bind(&link.cloud_vehicle_id)
    .bind(link.make.as_deref())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl OnboardingStore for ThisStore {
    async fn create_onboarding_session(
        &self,
        org: OrgScope,
        session: &OnboardingSessionRecord,
    ) -> Result<()> {
        // Housekeeping: sessions long past their end, so the table stays bounded.
        sqlx::query("DELETE FROM onboarding_sessions WHERE org_id = $1 AND expires_at < $2")
            .bind(org.id())
            .bind(session.created_at - KEEP_ONBOARDING)
            .execute(&self.write)
            .await?;
        // One statement: the user (and building) checks and the insert cannot be split.
        let done = sqlx::query(
            "INSERT INTO onboarding_sessions \
             (id, org_id, user_id, building_id, relink_vehicle_id, cue_id, options, success_url, \
              cancel_url, status, object_ids, created_at, updated_at, expires_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13 \
             WHERE EXISTS (SELECT 1 FROM users WHERE org_id = $2 AND id = $3 AND deleted_at IS NULL) \
               AND ($4 IS NULL OR EXISTS (SELECT 1 FROM buildings \
                    WHERE org_id = $2 AND user_id = $3 AND id = $4 AND deleted_at IS NULL))",
        )
        .bind(session.id)
        .bind(org.id())
        .bind(session.user_id)
        .bind(session.building_id)
        .bind(session.relink_vehicle_id)
        .bind(session.cue_id)
        .bind(Json(&session.options))
        .bind(&session.success_url)
        .bind(&session.cancel_url)
        .bind(session.status.as_str())
        .bind(Json(&session.object_ids))
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn get_onboarding_session(
        &self,
        org: OrgScope,
        id: Uuid,
    ) -> Result<OnboardingSessionRecord> {
        let select = format!(
            "SELECT {SESSION_COLUMNS} FROM onboarding_sessions WHERE org_id = $1 AND id = $2"
        );
        let row: Option<SessionRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    async fn find_onboarding_session(&self, id: Uuid) -> Result<OnboardingSessionRecord> {
        let select = format!("SELECT {SESSION_COLUMNS} FROM onboarding_sessions WHERE id = $1");
        let row: Option<SessionRow> = sqlx::query_as(&select)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    async fn start_authorization(
        &self,
        org: OrgScope,
        id: Uuid,
        cloud_service: Uuid,
        state_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE onboarding_sessions SET status = 'authorizing', cloud_service = $1, \
               oauth_state_hash = $2, updated_at = $3 \
             WHERE org_id = $4 AND id = $5 AND status IN ('pending', 'authorizing', 'choosing') \
               AND expires_at > $3",
        )
        .bind(cloud_service)
        .bind(state_hash)
        .bind(now)
        .bind(org.id())
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn take_authorization(
        &self,
        state_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<OnboardingSessionRecord>> {
        // One statement: of two callbacks with the same state only one gets the row.
        let update = format!(
            "UPDATE onboarding_sessions SET oauth_state_hash = NULL, updated_at = $1 \
             WHERE oauth_state_hash = $2 AND status = 'authorizing' AND expires_at > $1 \
             RETURNING {SESSION_COLUMNS}"
        );
        let row: Option<SessionRow> = sqlx::query_as(&update)
            .bind(now)
            .bind(state_hash)
            .fetch_optional(&self.write)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn link_account(
        &self,
        org: OrgScope,
        session_id: Uuid,
        account: &CloudAccountRecord,
        candidates: &[CandidateVehicle],
        now: DateTime<Utc>,
    ) -> Result<Uuid> {
        let mut tx = self.begin_write().await?;
        let existing: Option<(Uuid,)> = match &account.external_user_id {
            Some(external) => {
                let select = format!(
                    "SELECT id FROM cloud_accounts \
                     WHERE org_id = $1 AND cloud_service = $2 AND external_user_id = $3{FOR_UPDATE}"
                );
                sqlx::query_as(&select)
                    .bind(org.id())
                    .bind(account.cloud_service)
                    .bind(external)
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        let t = &account.tokens;
        let account_id = match existing {
            Some((id,)) => {
                // The same login linked again (re-link, or more cars): new tokens, not revoked.
                sqlx::query(
                    "UPDATE cloud_accounts SET user_id = $1, key_id = $2, access_token = $3, \
                       refresh_token = $4, access_expires_at = $5, refresh_expires_at = $6, \
                       version = version + 1, revoked_at = NULL, revoked_reason = NULL, updated_at = $7 \
                     WHERE org_id = $8 AND id = $9",
                )
                .bind(account.user_id)
                .bind(&t.key_id)
                .bind(&t.access_token)
                .bind(&t.refresh_token)
                .bind(t.access_expires_at)
                .bind(t.refresh_expires_at)
                .bind(now)
                .bind(org.id())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
            None => {
                sqlx::query(
                    "INSERT INTO cloud_accounts (id, org_id, user_id, cloud_service, external_user_id, \
                       key_id, access_token, refresh_token, access_expires_at, refresh_expires_at, \
                       version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11)",
                )
                .bind(account.id)
                .bind(org.id())
                .bind(account.user_id)
                .bind(account.cloud_service)
                .bind(account.external_user_id.as_deref())
                .bind(&t.key_id)
                .bind(&t.access_token)
                .bind(&t.refresh_token)
                .bind(t.access_expires_at)
                .bind(t.refresh_expires_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                account.id
            }
        };
        let done = sqlx::query(
            "UPDATE onboarding_sessions SET status = 'choosing', cloud_account_id = $1, \
               candidates = $2, updated_at = $3 \
             WHERE org_id = $4 AND id = $5 AND status = 'authorizing' AND expires_at > $3",
        )
        .bind(account_id)
        .bind(Json(candidates))
        .bind(now)
        .bind(org.id())
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(account_id)
    }

    async fn end_onboarding(
        &self,
        org: OrgScope,
        session_id: Uuid,
        end: &OnboardingEnd,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let (status, object_ids) = match end {
            OnboardingEnd::Completed { created, relinked } => {
                let ids: Vec<Uuid> = created
                    .iter()
                    .map(|(vehicle, _)| vehicle.id)
                    .chain(relinked.iter().map(|link| link.vehicle_id))
                    .collect();
                (OnboardingStatus::Completed, ids)
            }
            OnboardingEnd::Cancelled => (OnboardingStatus::Cancelled, Vec::new()),
            OnboardingEnd::Failed => (OnboardingStatus::Failed, Vec::new()),
        };
        // Claim the session first: of two concurrent posts only one ends it.
        let done = sqlx::query(
            "UPDATE onboarding_sessions SET status = $1, object_ids = $2, completed_at = $3, \
               oauth_state_hash = NULL, updated_at = $3 \
             WHERE org_id = $4 AND id = $5 \
               AND status IN ('pending', 'authorizing', 'choosing') AND expires_at > $3",
        )
        .bind(status.as_str())
        .bind(Json(&object_ids))
        .bind(now)
        .bind(org.id())
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let OnboardingEnd::Completed { created, relinked } = end {
            let mut onboarded = Vec::with_capacity(created.len());
            for (vehicle, link) in created {
                insert_vehicle(&mut *tx, org, vehicle).await?;
                write_link(&mut tx, org, link, now).await?;
                let model = &vehicle.settings.device_model;
                onboarded.push(Event::about_device(
                    "device.onboarded",
                    org.id(),
                    vehicle.id,
                    now,
                    serde_json::json!({
                        "device_type": "electric_vehicle",
                        "device_id": vehicle.id,
                        "user_id": vehicle.user_id,
                        "building_id": vehicle.building_id,
                        "onboarding_id": session_id,
                        "manufacturer": model.manufacturer,
                        "model": model.model,
                    }),
                ));
            }
            // Told in the transaction that created the cars (the outbox).
            Self::append_events_in(&mut tx, &onboarded).await?;
            for link in relinked {
                write_link(&mut tx, org, link, now).await?;
                // Read again at once: the worker finds the link restored.
                let woken = sqlx::query(
                    "UPDATE electric_vehicles SET next_cycle_at = NULL \
                     WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
                )
                .bind(org.id())
                .bind(link.vehicle_id)
                .execute(&mut *tx)
                .await?;
                if woken.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn latest_cue_session(
        &self,
        org: OrgScope,
        cue_id: Uuid,
    ) -> Result<Option<OnboardingSessionRecord>> {
        let select = format!(
            "SELECT {SESSION_COLUMNS} FROM onboarding_sessions WHERE org_id = $1 AND cue_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        let row: Option<SessionRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(cue_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn report_cue_state(
        &self,
        org: OrgScope,
        session_id: Uuid,
        report: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE onboarding_sessions SET partner_report = $1, updated_at = $2 \
             WHERE org_id = $3 AND id = $4",
        )
        .bind(report)
        .bind(now)
        .bind(org.id())
        .bind(session_id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn find_linked_vehicle(
        &self,
        org: OrgScope,
        cloud_service: Uuid,
        cloud_vehicle_id: &str,
    ) -> Result<Option<Uuid>> {
        let row: Option<(Uuid,)> = sqlx::query_as(
            "SELECT l.vehicle_id FROM cloud_vehicle_links l \
             JOIN electric_vehicles v ON v.org_id = l.org_id AND v.id = l.vehicle_id \
             WHERE l.org_id = $1 AND l.cloud_service = $2 AND l.cloud_vehicle_id = $3 \
               AND v.deleted_at IS NULL \
             ORDER BY l.linked_at DESC LIMIT 1",
        )
        .bind(org.id())
        .bind(cloud_service)
        .bind(cloud_vehicle_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    async fn vehicle_link(&self, org: OrgScope, vehicle_id: Uuid) -> Result<Option<VehicleLink>> {
        let row: Option<LinkRow> = sqlx::query_as(
            "SELECT vehicle_id, account_id, cloud_service, cloud_vehicle_id, make \
             FROM cloud_vehicle_links WHERE org_id = $1 AND vehicle_id = $2",
        )
        .bind(org.id())
        .bind(vehicle_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(Into::into))
    }
}

#[async_trait]
impl CloudLinkStore for ThisStore {
    async fn account_for_vehicle(
        &self,
        vehicle_id: Uuid,
    ) -> Result<Option<(CloudAccountRecord, VehicleLink)>> {
        #[derive(sqlx::FromRow)]
        struct Joined {
            #[sqlx(flatten)]
            account: AccountRow,
            vehicle_id: Uuid,
            cloud_vehicle_id: String,
            make: Option<String>,
        }
        let select = format!(
            "SELECT {ACCOUNT_COLUMNS}, l.vehicle_id, l.cloud_vehicle_id, l.make \
             FROM cloud_vehicle_links l \
             JOIN cloud_accounts a ON a.org_id = l.org_id AND a.id = l.account_id \
             JOIN electric_vehicles v ON v.org_id = l.org_id AND v.id = l.vehicle_id \
             WHERE l.vehicle_id = $1 AND v.deleted_at IS NULL"
        );
        let row: Option<Joined> = sqlx::query_as(&select)
            .bind(vehicle_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|row| {
            let link = VehicleLink {
                vehicle_id: row.vehicle_id,
                account_id: row.account.id,
                cloud_service: row.account.cloud_service,
                cloud_vehicle_id: row.cloud_vehicle_id,
                make: row.make,
            };
            (row.account.into(), link)
        }))
    }

    async fn account_org(&self, account_id: Uuid) -> Result<Option<Uuid>> {
        let row: Option<(Uuid,)> =
            sqlx::query_as("SELECT org_id FROM cloud_accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(org,)| org))
    }

    async fn replace_account_tokens(
        &self,
        account_id: Uuid,
        version: i64,
        tokens: &SealedTokens,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE cloud_accounts SET key_id = $1, access_token = $2, refresh_token = $3, \
               access_expires_at = $4, refresh_expires_at = $5, version = version + 1, updated_at = $6 \
             WHERE id = $7 AND version = $8",
        )
        .bind(&tokens.key_id)
        .bind(&tokens.access_token)
        .bind(&tokens.refresh_token)
        .bind(tokens.access_expires_at)
        .bind(tokens.refresh_expires_at)
        .bind(now)
        .bind(account_id)
        .bind(version)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_account(
        &self,
        account_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE cloud_accounts SET revoked_at = $1, revoked_reason = $2, updated_at = $1 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(account_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn command_receipt(
        &self,
        vehicle_id: Uuid,
        idempotency_key: &str,
    ) -> Result<Option<serde_json::Value>> {
        let row: Option<(Json<serde_json::Value>,)> = sqlx::query_as(
            "SELECT receipt FROM cloud_command_receipts WHERE vehicle_id = $1 AND idempotency_key = $2",
        )
        .bind(vehicle_id)
        .bind(idempotency_key)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(receipt,)| receipt.0))
    }

    async fn record_command_receipt(
        &self,
        vehicle_id: Uuid,
        idempotency_key: &str,
        receipt: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // Receipts are kept for the trait's 24 hours and more; older ones go as new ones come.
        sqlx::query("DELETE FROM cloud_command_receipts WHERE vehicle_id = $1 AND created_at < $2")
            .bind(vehicle_id)
            .bind(now - KEEP_ONBOARDING)
            .execute(&self.write)
            .await?;
        sqlx::query(
            "INSERT INTO cloud_command_receipts (vehicle_id, idempotency_key, receipt, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (vehicle_id, idempotency_key) DO NOTHING",
        )
        .bind(vehicle_id)
        .bind(idempotency_key)
        .bind(Json(receipt))
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn pushed_state(
        &self,
        cloud_service: Uuid,
        cloud_vehicle_id: &str,
    ) -> Result<Option<(serde_json::Value, DateTime<Utc>)>> {
        let row: Option<(Json<serde_json::Value>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT state, received_at FROM cloud_pushed_states \
             WHERE cloud_service = $1 AND cloud_vehicle_id = $2",
        )
        .bind(cloud_service)
        .bind(cloud_vehicle_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(state, at)| (state.0, at)))
    }

    async fn apply_pushed_state(
        &self,
        cloud_service: Uuid,
        event_id: &str,
        cloud_vehicle_id: &str,
        merge: Box<dyn FnOnce(Option<serde_json::Value>) -> serde_json::Value + Send>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let fresh = sqlx::query(
            "INSERT INTO cloud_webhook_events (cloud_service, event_id, received_at) \
             VALUES ($1, $2, $3) ON CONFLICT (cloud_service, event_id) DO NOTHING",
        )
        .bind(cloud_service)
        .bind(event_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if fresh.rows_affected() == 0 {
            return Ok(false);
        }
        let select = format!(
            "SELECT state FROM cloud_pushed_states \
             WHERE cloud_service = $1 AND cloud_vehicle_id = $2{FOR_UPDATE}"
        );
        let old: Option<(Json<serde_json::Value>,)> = sqlx::query_as(&select)
            .bind(cloud_service)
            .bind(cloud_vehicle_id)
            .fetch_optional(&mut *tx)
            .await?;
        let merged = merge(old.map(|(state,)| state.0));
        sqlx::query(
            "INSERT INTO cloud_pushed_states (cloud_service, cloud_vehicle_id, state, received_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (cloud_service, cloud_vehicle_id) \
             DO UPDATE SET state = excluded.state, received_at = excluded.received_at",
        )
        .bind(cloud_service)
        .bind(cloud_vehicle_id)
        .bind(Json(&merged))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE electric_vehicles SET next_cycle_at = NULL WHERE deleted_at IS NULL AND id IN \
             (SELECT vehicle_id FROM cloud_vehicle_links WHERE cloud_service = $1 AND cloud_vehicle_id = $2)",
        )
        .bind(cloud_service)
        .bind(cloud_vehicle_id)
        .execute(&mut *tx)
        .await?;
        // Spent event ids are kept long past the cloud's retries, then dropped.
        sqlx::query(
            "DELETE FROM cloud_webhook_events WHERE cloud_service = $1 AND received_at < $2",
        )
        .bind(cloud_service)
        .bind(now - KEEP_ONBOARDING)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
