//! [`OcppStore`] in SQL both backends share, compiled once per backend like `shared/store.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, Transaction};
use uuid::Uuid;
use voltplan_core::charger::Charger;

use super::{Db, ThisStore};
use crate::json_text::JsonText;
use crate::ocpp::{
    ChargerLink, CommandStatus, MeterSample, OcppCommand, OcppStore, TransactionRecord,
    TransactionStart, TransactionStop,
};
use crate::{OrgScope, Result, StoreError};

const TRANSACTION_COLUMNS: &str = "id, wallbox_id, connector_id, id_tag, meter_start_wh, started_at, meter_stop_wh, stopped_at, stop_reason";
const COMMAND_COLUMNS: &str = "id, org_id, wallbox_id, action, payload, created_at, expires_at, status, sent_by, sent_at, answered_at, response";

fn transaction_from(row: &<Db as sqlx::Database>::Row) -> Result<TransactionRecord> {
    Ok(TransactionRecord {
        id: row.try_get("id")?,
        wallbox_id: row.try_get("wallbox_id")?,
        connector_id: row.try_get("connector_id")?,
        id_tag: row.try_get("id_tag")?,
        meter_start_wh: row.try_get("meter_start_wh")?,
        started_at: row.try_get("started_at")?,
        meter_stop_wh: row.try_get("meter_stop_wh")?,
        stopped_at: row.try_get("stopped_at")?,
        stop_reason: row.try_get("stop_reason")?,
    })
}

fn command_from(row: &<Db as sqlx::Database>::Row) -> Result<OcppCommand> {
    let status: String = row.try_get("status")?;
    Ok(OcppCommand {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        wallbox_id: row.try_get("wallbox_id")?,
        action: row.try_get("action")?,
        payload: row.try_get("payload")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        status: CommandStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("command status {status:?}")))?,
        sent_by: row.try_get("sent_by")?,
        sent_at: row.try_get("sent_at")?,
        answered_at: row.try_get("answered_at")?,
        response: row.try_get("response")?,
    })
}

impl ThisStore {
    /// Queues a call unless one with its id exists (`false` then); only for a wallbox of the
    /// call's organisation.
    pub(super) async fn queue_command_in<'e, E>(executor: E, c: &OcppCommand) -> Result<bool>
    where
        E: sqlx::Executor<'e, Database = Db>,
    {
        let done = sqlx::query(&format!(
            "INSERT INTO ocpp_commands ({COMMAND_COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
             WHERE EXISTS (SELECT 1 FROM wallboxes WHERE org_id = $2 AND id = $3) \
             ON CONFLICT (id) DO NOTHING"
        ))
        .bind(&c.id)
        .bind(c.org_id)
        .bind(c.wallbox_id)
        .bind(&c.action)
        .bind(&c.payload)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.status.as_str())
        .bind(&c.sent_by)
        .bind(c.sent_at)
        .bind(c.answered_at)
        .bind(&c.response)
        .execute(executor)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn save_charger_in(
        tx: &mut Transaction<'static, Db>,
        link: &ChargerLink,
        charger: &Charger,
        wake: bool,
    ) -> Result<bool> {
        // `wake` makes the wallbox due for the worker at once (NULL: as soon as possible).
        let done = sqlx::query(
            "UPDATE wallboxes SET charger = $1, \
               next_cycle_at = CASE WHEN $5 THEN NULL ELSE next_cycle_at END \
             WHERE org_id = $2 AND id = $3 AND ocpp_epoch = $4",
        )
        .bind(JsonText(charger))
        .bind(link.org.id())
        .bind(link.wallbox_id)
        .bind(link.epoch)
        .bind(wake)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_samples_in(
        tx: &mut Transaction<'static, Db>,
        link: &ChargerLink,
        samples: &[MeterSample],
    ) -> Result<()> {
        for s in samples {
            sqlx::query(
                "INSERT INTO ocpp_meter_values \
                 (wallbox_id, org_id, connector_id, at, measurand, phase, transaction_id, value, unit) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (wallbox_id, connector_id, at, measurand, phase) DO NOTHING",
            )
            .bind(link.wallbox_id)
            .bind(link.org.id())
            .bind(s.connector_id)
            .bind(s.at)
            .bind(&s.measurand)
            .bind(&s.phase)
            .bind(s.transaction_id)
            .bind(s.value)
            .bind(&s.unit)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl OcppStore for ThisStore {
    async fn open_charger_link(
        &self,
        org: OrgScope,
        wallbox_id: Uuid,
    ) -> Result<(ChargerLink, Charger)> {
        let row: Option<(i64, Option<JsonText<Charger>>)> = sqlx::query_as(
            "UPDATE wallboxes SET ocpp_epoch = ocpp_epoch + 1 \
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ocpp_epoch, charger",
        )
        .bind(org.id())
        .bind(wallbox_id)
        .fetch_optional(&self.write)
        .await?;
        let (epoch, charger) = row.ok_or(StoreError::NotFound)?;
        let link = ChargerLink {
            org,
            wallbox_id,
            epoch,
        };
        Ok((link, charger.map(|c| c.0).unwrap_or_default()))
    }

    async fn save_charger(
        &self,
        link: &ChargerLink,
        charger: &Charger,
        wake: bool,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let saved = Self::save_charger_in(&mut tx, link, charger, wake).await?;
        tx.commit().await?;
        Ok(saved)
    }

    async fn start_transaction(
        &self,
        link: &ChargerLink,
        start: &TransactionStart,
        charger: &Charger,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO ocpp_transactions \
             (org_id, wallbox_id, connector_id, id_tag, meter_start_wh, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (wallbox_id, connector_id, started_at) DO NOTHING",
        )
        .bind(link.org.id())
        .bind(link.wallbox_id)
        .bind(start.connector_id)
        .bind(&start.id_tag)
        .bind(start.meter_start_wh)
        .bind(start.started_at)
        .execute(&mut *tx)
        .await?;
        let (id,): (i64,) = sqlx::query_as(
            "SELECT id FROM ocpp_transactions \
             WHERE wallbox_id = $1 AND connector_id = $2 AND started_at = $3",
        )
        .bind(link.wallbox_id)
        .bind(start.connector_id)
        .bind(start.started_at)
        .fetch_one(&mut *tx)
        .await?;
        let mut charger = charger.clone();
        charger.transaction_id = Some(id);
        Self::save_charger_in(&mut tx, link, &charger, true).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn stop_transaction(
        &self,
        link: &ChargerLink,
        stop: &TransactionStop,
        samples: &[MeterSample],
        charger: &Charger,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let known = sqlx::query(
            "UPDATE ocpp_transactions SET meter_stop_wh = $1, stopped_at = $2, stop_reason = $3 \
             WHERE org_id = $4 AND wallbox_id = $5 AND id = $6",
        )
        .bind(stop.meter_stop_wh)
        .bind(stop.stopped_at)
        .bind(&stop.reason)
        .bind(link.org.id())
        .bind(link.wallbox_id)
        .bind(stop.transaction_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        Self::insert_samples_in(&mut tx, link, samples).await?;
        Self::save_charger_in(&mut tx, link, charger, true).await?;
        tx.commit().await?;
        Ok(known)
    }

    async fn record_meter_values(
        &self,
        link: &ChargerLink,
        samples: &[MeterSample],
        charger: &Charger,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::insert_samples_in(&mut tx, link, samples).await?;
        Self::save_charger_in(&mut tx, link, charger, false).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_transactions(
        &self,
        org: OrgScope,
        wallbox_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TransactionRecord>> {
        let sql = format!(
            "SELECT {TRANSACTION_COLUMNS} FROM ocpp_transactions \
             WHERE org_id = $1 AND wallbox_id = $2 \
             AND ((started_at >= $3 AND started_at < $4) OR stopped_at IS NULL) \
             ORDER BY started_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(org.id())
            .bind(wallbox_id)
            .bind(from)
            .bind(to)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(transaction_from).collect()
    }

    async fn list_meter_samples(
        &self,
        org: OrgScope,
        wallbox_id: Uuid,
        measurand: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MeterSample>> {
        let rows = sqlx::query(
            "SELECT connector_id, at, measurand, phase, transaction_id, value, unit \
             FROM ocpp_meter_values \
             WHERE org_id = $1 AND wallbox_id = $2 AND measurand = $3 AND at >= $4 AND at < $5 \
             ORDER BY at, connector_id, phase",
        )
        .bind(org.id())
        .bind(wallbox_id)
        .bind(measurand)
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MeterSample {
                    connector_id: row.try_get("connector_id")?,
                    at: row.try_get("at")?,
                    measurand: row.try_get("measurand")?,
                    phase: row.try_get("phase")?,
                    transaction_id: row.try_get("transaction_id")?,
                    value: row.try_get("value")?,
                    unit: row.try_get("unit")?,
                })
            })
            .collect()
    }

    async fn queue_ocpp_command(&self, c: &OcppCommand) -> Result<bool> {
        Self::queue_command_in(&self.write, c).await
    }

    async fn queued_ocpp_commands(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OcppCommand>> {
        let rows = sqlx::query(&format!(
            "SELECT {COMMAND_COLUMNS} FROM ocpp_commands \
             WHERE status = 'queued' AND expires_at > $1 ORDER BY created_at, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(command_from).collect()
    }

    async fn take_ocpp_command(&self, id: &str, replica: &str, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE ocpp_commands SET status = 'sent', sent_by = $1, sent_at = $2 \
             WHERE id = $3 AND status = 'queued' AND expires_at > $2",
        )
        .bind(replica)
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn answer_ocpp_command(
        &self,
        id: &str,
        status: CommandStatus,
        response: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE ocpp_commands SET status = $1, response = $2, answered_at = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(response)
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn expire_ocpp_commands(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE ocpp_commands SET status = 'expired', answered_at = $1 \
             WHERE status = 'queued' AND expires_at <= $1",
        )
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    async fn get_ocpp_command(&self, org: OrgScope, id: &str) -> Result<Option<OcppCommand>> {
        let row = sqlx::query(&format!(
            "SELECT {COMMAND_COLUMNS} FROM ocpp_commands WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.id())
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(command_from).transpose()
    }
}
