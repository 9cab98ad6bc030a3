//! [`WallboxFleetStore`] in SQL both backends share, compiled once per backend like
//! `shared/fleet.rs`, whose lease SQL it uses. A batch's finishes are one statement per wallbox
//! in one transaction on both backends (wallboxes are few next to EVs; PostgreSQL can get the
//! EV's `UNNEST` batching when they are not).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::{FromRow, Row, Transaction};
use voltplan_core::wallbox::WallboxSettings;

use super::shared_fleet::FinishedRow;
use super::{Db, ThisStore};
use crate::Result;
use crate::fleet::{DeviceTable, Lease};
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
        let settings = if touches_settings {
            let Some(mut settings) =
                Self::leased_settings_in::<WallboxSettings>(tx, DeviceTable::Wallboxes, lease)
                    .await?
            else {
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
        let row = FinishedRow {
            settings: settings.as_ref(),
            state: &outcome.state,
            runtime: &outcome.runtime,
            plan: outcome.plan.as_deref(),
            next_cycle_at: outcome.next_cycle_at,
        };
        if !Self::finish_row_in(tx, DeviceTable::Wallboxes, lease, row).await? {
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
        Self::append_events_in(tx, &outcome.events).await?;
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
