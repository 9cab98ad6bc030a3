//! [`WallboxFleetStore`] in SQL both backends share, compiled once per backend like
//! `shared/fleet.rs`, whose lease SQL it uses. A batch's finishes are one statement per wallbox
//! in one transaction on both backends (wallboxes are few next to EVs; PostgreSQL can get the
//! EV's `UNNEST` batching when they are not).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, Row, Transaction};
use voltplan_core::wallbox::WallboxSettings;

use super::{Db, FOR_UPDATE, ThisStore};
use crate::Result;
use crate::fleet::{DeviceTable, Lease};
use crate::json_text::JsonText;
use crate::wallbox_fleet::{ClaimedWallbox, WallboxFleetStore, WallboxOutcome};
use crate::wallboxes::{WALLBOX_COLUMNS, WallboxRecord, WallboxRow};

impl ThisStore {
    async fn finish_wallbox_in(
        tx: &mut Transaction<'static, Db>,
        lease: &Lease,
        outcome: &WallboxOutcome,
    ) -> Result<bool> {
        let touches_settings = outcome.clear_boost_for_next_session
            || outcome.clear_boost_request.is_some()
            || outcome.clear_boost_cancel.is_some();
        // The partner's settings are read (and locked) only when a boost flag must be cleared.
        let settings = if touches_settings {
            let select = format!(
                "SELECT settings FROM wallboxes WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3{FOR_UPDATE}"
            );
            let row: Option<(Json<WallboxSettings>,)> = sqlx::query_as(&select)
                .bind(lease.vehicle_id)
                .bind(&lease.worker_id)
                .bind(lease.epoch)
                .fetch_optional(&mut **tx)
                .await?;
            let Some((Json(mut settings),)) = row else {
                return Ok(false);
            };
            if outcome.clear_boost_for_next_session {
                settings.boost_for_next_session = false;
            }
            // A newer request or cancellation written meanwhile is kept for the next cycle.
            if outcome.clear_boost_request.is_some()
                && settings.boost_requested_at == outcome.clear_boost_request
            {
                settings.boost_requested_at = None;
            }
            if outcome.clear_boost_cancel.is_some()
                && settings.boost_cancelled_at == outcome.clear_boost_cancel
            {
                settings.boost_cancelled_at = None;
            }
            Some(settings)
        } else {
            None
        };
        let done = sqlx::query(
            // A settings change during the cycle reset next_cycle_at to NULL: keep it.
            "UPDATE wallboxes SET settings = COALESCE($1, settings), state = $2, runtime = $3, plan = $4, \
               next_cycle_at = CASE WHEN next_cycle_at IS NULL THEN NULL ELSE $5 END, \
               lease_owner = NULL, lease_until = NULL \
             WHERE id = $6 AND lease_owner = $7 AND lease_epoch = $8",
        )
        .bind(settings.as_ref().map(Json))
        .bind(JsonText(&outcome.state))
        .bind(&outcome.runtime)
        .bind(&outcome.plan)
        .bind(outcome.next_cycle_at)
        .bind(lease.vehicle_id)
        .bind(&lease.worker_id)
        .bind(lease.epoch)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for session in &outcome.sessions {
            Self::upsert_session_in(&mut **tx, DeviceTable::Wallboxes, session).await?;
        }
        if let Some(reading) = &outcome.reading {
            Self::append_reading_in(&mut **tx, DeviceTable::Wallboxes, reading).await?;
        }
        for call in &outcome.calls {
            Self::queue_command_in(&mut **tx, call).await?;
        }
        Ok(true)
    }
}

#[async_trait]
impl WallboxFleetStore for ThisStore {
    async fn claim_wallboxes(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedWallbox>> {
        let until = now + lease_for;
        let mut tx = self.begin_write().await?;
        Self::lease_due_in(
            &mut tx,
            DeviceTable::Wallboxes,
            worker_id,
            now,
            until,
            limit,
        )
        .await?;
        let select = format!(
            "SELECT {WALLBOX_COLUMNS}, lease_epoch, runtime, plan FROM wallboxes \
             WHERE lease_owner = $1 AND lease_until = $2 AND deleted_at IS NULL"
        );
        let rows = sqlx::query(&select)
            .bind(worker_id)
            .bind(until)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                let wallbox: WallboxRecord = WallboxRow::from_row(row)?.try_into()?;
                let lease = Lease {
                    vehicle_id: wallbox.id,
                    org_id: wallbox.org_id,
                    worker_id: worker_id.to_owned(),
                    epoch: row.try_get("lease_epoch")?,
                    until,
                };
                Ok(ClaimedWallbox {
                    wallbox,
                    lease,
                    runtime: row.try_get("runtime")?,
                    plan: row.try_get("plan")?,
                })
            })
            .collect()
    }

    async fn finish_wallbox_cycles(
        &self,
        outcomes: &[(Lease, WallboxOutcome)],
    ) -> Result<Vec<bool>> {
        let mut tx = self.begin_write().await?;
        let mut written = Vec::with_capacity(outcomes.len());
        for (lease, outcome) in outcomes {
            written.push(Self::finish_wallbox_in(&mut tx, lease, outcome).await?);
        }
        tx.commit().await?;
        Ok(written)
    }
}
