//! [`FleetStore`] in SQL both backends share, compiled once per backend like `shared/store.rs`.
//! `FOR_UPDATE_SKIP_LOCKED` lets concurrent claimers on PostgreSQL skip each other's rows (empty
//! on SQLite: one writer); each backend writes a batch's finishes its own way (`finish_batch_in`).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::types::Json;
use sqlx::{Executor, Transaction};
use uuid::Uuid;
use voltplan_core::vehicle::EvSettings;

use super::{Db, FOR_UPDATE, FOR_UPDATE_SKIP_LOCKED, ThisStore};
use crate::fleet::{
    CLAIMED_ROW_SELECT, ClaimedRow, ClaimedVehicle, CommandRecord, CycleOutcome, DeviceTable,
    FleetStore, Lease, ReadingRecord, SessionRecord, SessionRow,
};
use crate::json_text::JsonText;
use crate::{OrgScope, Result, StoreError};

/// The columns of a [`CommandRecord`], in its field order.
const COMMAND_COLUMNS: &str = "idempotency_key, org_id, vehicle_id, command, worker_id, lease_epoch, issued_at, outcome, detail";

impl ThisStore {
    /// Leases up to `limit` due, unleased devices of `table` to `worker_id` until `until`, bumping
    /// each one's `lease_epoch`: the same SQL for every kind of device. The caller reads the
    /// leased rows (`lease_owner = worker_id AND lease_until = until`) in the same transaction.
    pub(super) async fn lease_due_in(
        tx: &mut Transaction<'static, Db>,
        table: DeviceTable,
        worker_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<()> {
        let table = table.name();
        // Concurrent claimers skip each other's rows (PostgreSQL); SQLite has one writer.
        let claim = format!(
            "UPDATE {table} SET lease_owner = $1, lease_until = $2, lease_epoch = lease_epoch + 1, next_cycle_at = $2 \
             WHERE id IN (SELECT id FROM {table} \
               WHERE deleted_at IS NULL AND (next_cycle_at IS NULL OR next_cycle_at <= $3) \
               AND (lease_until IS NULL OR lease_until < $3) \
               ORDER BY next_cycle_at IS NOT NULL, next_cycle_at LIMIT $4{FOR_UPDATE_SKIP_LOCKED})"
        );
        sqlx::query(&claim)
            .bind(worker_id)
            .bind(until)
            .bind(now)
            .bind(limit)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Makes the outermost grid groups that finished cycles asked for due at once.
    pub(super) async fn wake_grid_groups_in<'a>(
        tx: &mut Transaction<'static, Db>,
        finished: impl Iterator<Item = (&'a Lease, &'a CycleOutcome)>,
    ) -> Result<()> {
        for (lease, outcome) in finished {
            if let Some(group) = outcome.wake_grid_group {
                sqlx::query(
                    "UPDATE grid_groups SET next_plan_at = NULL WHERE org_id = $1 AND id = $2",
                )
                .bind(lease.org_id)
                .bind(group)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    /// Writes a session of a `table` device (its sessions table and id column).
    pub(super) async fn upsert_session_in<'e, E>(
        executor: E,
        table: DeviceTable,
        s: &SessionRecord,
    ) -> Result<()>
    where
        E: Executor<'e, Database = Db>,
    {
        let (sessions, device) = table.sessions();
        let upsert = format!(
            "INSERT INTO {sessions} (id, org_id, {device}, plug_in_time, unplug_time, data) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET unplug_time = excluded.unplug_time, data = excluded.data"
        );
        sqlx::query(&upsert)
            .bind(s.id)
            .bind(s.org_id)
            .bind(s.vehicle_id)
            .bind(s.plug_in_time)
            .bind(s.unplug_time)
            .bind(Json(&s.data))
            .execute(executor)
            .await?;
        Ok(())
    }

    /// Appends a `/data` reading of a `table` device (a wallbox has no geo-fence column).
    pub(super) async fn append_reading_in<'e, E>(
        executor: E,
        table: DeviceTable,
        r: &ReadingRecord,
    ) -> Result<()>
    where
        E: Executor<'e, Database = Db>,
    {
        let (readings, device, _) = table.readings();
        let (home_column, home_value) = match table {
            DeviceTable::ElectricVehicles => (", is_at_home", ", $11"),
            DeviceTable::Wallboxes => ("", ""),
        };
        let insert = format!(
            "INSERT INTO {readings} \
             ({device}, org_id, at, battery_level, is_plugged_in, is_charging, power_w, energy_kwh, price_eur_mwh, \
              customer_price_per_mwh{home_column}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10{home_value}) ON CONFLICT ({device}, at) DO NOTHING"
        );
        let mut query = sqlx::query(&insert)
            .bind(r.vehicle_id)
            .bind(r.org_id)
            .bind(r.at)
            .bind(r.battery_level)
            .bind(r.is_plugged_in)
            .bind(r.is_charging)
            .bind(r.power_w)
            .bind(r.energy_kwh)
            .bind(r.price_eur_mwh)
            .bind(r.customer_price_per_mwh);
        if table == DeviceTable::ElectricVehicles {
            query = query.bind(r.is_at_home);
        }
        query.execute(executor).await?;
        Ok(())
    }

    async fn set_command_outcome_in<'e, E>(
        executor: E,
        key: &str,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<()>
    where
        E: Executor<'e, Database = Db>,
    {
        sqlx::query(
            "UPDATE vehicle_commands SET outcome = $1, detail = $2 WHERE idempotency_key = $3",
        )
        .bind(outcome)
        .bind(detail)
        .bind(key)
        .execute(executor)
        .await?;
        Ok(())
    }

    /// A leased device's settings, locked for the finish that changes them (PostgreSQL); `None`
    /// when the lease was lost. Settings are the partner's: read only when a boost flag must be
    /// cleared, so a steady cycle is a single fenced UPDATE.
    pub(super) async fn leased_settings_in<S>(
        tx: &mut Transaction<'static, Db>,
        table: DeviceTable,
        lease: &Lease,
    ) -> Result<Option<S>>
    where
        S: serde::de::DeserializeOwned + Send + Unpin + 'static,
    {
        let select = format!(
            "SELECT settings FROM {} WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3{FOR_UPDATE}",
            table.name()
        );
        let row: Option<(Json<S>,)> = sqlx::query_as(&select)
            .bind(lease.vehicle_id)
            .bind(&lease.worker_id)
            .bind(lease.epoch)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(row.map(|(Json(settings),)| settings))
    }

    /// The fenced write of a device's cycle, releasing its lease: `false` when the lease was lost.
    pub(super) async fn finish_row_in<S, St>(
        tx: &mut Transaction<'static, Db>,
        table: DeviceTable,
        lease: &Lease,
        row: FinishedRow<'_, S, St>,
    ) -> Result<bool>
    where
        S: serde::Serialize + Sync,
        St: serde::Serialize + Sync,
    {
        // A settings change during the cycle reset next_cycle_at to NULL: keep it, so the device
        // is planned again at once with the new settings.
        let update = format!(
            "UPDATE {} SET settings = COALESCE($1, settings), state = $2, runtime = $3, plan = $4, \
               next_cycle_at = CASE WHEN next_cycle_at IS NULL THEN NULL ELSE $5 END, \
               lease_owner = NULL, lease_until = NULL \
             WHERE id = $6 AND lease_owner = $7 AND lease_epoch = $8",
            table.name()
        );
        let done = sqlx::query(&update)
            .bind(row.settings.map(Json))
            .bind(JsonText(row.state))
            .bind(row.runtime)
            .bind(row.plan)
            .bind(row.next_cycle_at)
            .bind(lease.vehicle_id)
            .bind(&lease.worker_id)
            .bind(lease.epoch)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One fenced finish inside the caller's transaction.
    pub(super) async fn finish_in(
        tx: &mut Transaction<'static, Db>,
        lease: &Lease,
        outcome: &CycleOutcome,
    ) -> Result<bool> {
        for c in &outcome.command_outcomes {
            Self::set_command_outcome_in(
                &mut **tx,
                &c.idempotency_key,
                &c.outcome,
                c.detail.as_deref(),
            )
            .await?;
        }
        // Settings are the partner's: only read (and locked) when a boost flag must be
        // cleared, so a steady cycle is a single fenced UPDATE.
        let settings = if outcome.touches_settings() {
            let Some(mut settings) =
                Self::leased_settings_in::<EvSettings>(tx, DeviceTable::ElectricVehicles, lease)
                    .await?
            else {
                return Ok(false);
            };
            if outcome.clear_boost_for_next_session {
                settings.boost_for_next_session = false;
            }
            if outcome.clear_boost_request.is_some()
                && settings.boost_requested_at == outcome.clear_boost_request
            {
                settings.boost_requested_at = None;
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
        if !Self::finish_row_in(tx, DeviceTable::ElectricVehicles, lease, row).await? {
            return Ok(false);
        }
        for session in &outcome.sessions {
            Self::upsert_session_in(&mut **tx, DeviceTable::ElectricVehicles, session).await?;
        }
        if let Some(reading) = &outcome.reading {
            Self::append_reading_in(&mut **tx, DeviceTable::ElectricVehicles, reading).await?;
        }
        Self::append_events_in(tx, &outcome.events).await?;
        Ok(true)
    }
}

#[async_trait]
impl FleetStore for ThisStore {
    async fn claim_vehicles(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedVehicle>> {
        let until = now + lease_for;
        let mut tx = self.begin_write().await?;
        Self::lease_due_in(
            &mut tx,
            DeviceTable::ElectricVehicles,
            worker_id,
            now,
            until,
            limit,
        )
        .await?;
        let rows: Vec<ClaimedRow> = sqlx::query_as(&format!(
            "{CLAIMED_ROW_SELECT}WHERE v.lease_owner = $1 AND v.lease_until = $2"
        ))
        .bind(worker_id)
        .bind(until)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|r| r.into_claimed(worker_id, until))
            .collect()
    }

    async fn finish_cycle(&self, lease: &Lease, outcome: &CycleOutcome) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let written = Self::finish_in(&mut tx, lease, outcome).await?;
        if written {
            Self::wake_grid_groups_in(&mut tx, std::iter::once((lease, outcome))).await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn finish_cycles(&self, outcomes: &[(Lease, CycleOutcome)]) -> Result<Vec<bool>> {
        let mut tx = self.begin_write().await?;
        let written = Self::finish_batch_in(&mut tx, outcomes).await?;
        let finished = outcomes
            .iter()
            .zip(&written)
            .filter(|(_, w)| **w)
            .map(|((lease, outcome), _)| (lease, outcome));
        Self::wake_grid_groups_in(&mut tx, finished).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn release_leases(&self, worker_id: &str) -> Result<u64> {
        let mut released = 0;
        for table in DeviceTable::ALL {
            let release = format!(
                "UPDATE {} SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
                table.name()
            );
            let done = sqlx::query(&release)
                .bind(worker_id)
                .execute(&self.write)
                .await?;
            released += done.rows_affected();
        }
        Ok(released)
    }

    async fn vehicle_plan(
        &self,
        org: OrgScope,
        vehicle_id: Uuid,
    ) -> Result<Option<serde_json::Value>> {
        let row: Option<(Option<JsonText<serde_json::Value>>,)> = sqlx::query_as(
            "SELECT plan FROM electric_vehicles WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(org.id())
        .bind(vehicle_id)
        .fetch_optional(&self.read)
        .await?;
        let (plan,) = row.ok_or(StoreError::NotFound)?;
        Ok(plan.map(|j| j.0))
    }

    async fn upsert_session(&self, s: &SessionRecord) -> Result<()> {
        Self::upsert_session_in(&self.write, DeviceTable::ElectricVehicles, s).await
    }

    async fn list_device_sessions(
        &self,
        table: DeviceTable,
        org: OrgScope,
        device_id: Option<Uuid>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<SessionRecord>)> {
        let (sessions, device) = table.sessions();
        let filter = format!(
            "FROM {sessions} WHERE org_id = $1 AND ($2 IS NULL OR {device} = $2) \
             AND plug_in_time >= $3 AND plug_in_time < $4"
        );
        let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) {filter}"))
            .bind(org.id())
            .bind(device_id)
            .bind(from)
            .bind(to)
            .fetch_one(&self.read)
            .await?;
        let select = format!(
            "SELECT id, org_id, {device} AS vehicle_id, plug_in_time, unplug_time, data {filter} \
             ORDER BY plug_in_time DESC, id LIMIT $5 OFFSET $6"
        );
        let rows: Vec<SessionRow> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(device_id)
            .bind(from)
            .bind(to)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?;
        Ok((total, rows.into_iter().map(Into::into).collect()))
    }

    async fn record_command(&self, c: &CommandRecord) -> Result<bool> {
        let insert = format!(
            "INSERT INTO vehicle_commands ({COMMAND_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (idempotency_key) DO NOTHING"
        );
        let done = sqlx::query(&insert)
            .bind(&c.idempotency_key)
            .bind(c.org_id)
            .bind(c.vehicle_id)
            .bind(&c.command)
            .bind(&c.worker_id)
            .bind(c.lease_epoch)
            .bind(c.issued_at)
            .bind(&c.outcome)
            .bind(&c.detail)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_command_outcome(
        &self,
        key: &str,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        Self::set_command_outcome_in(&self.write, key, outcome, detail).await
    }

    async fn find_command(&self, key: &str) -> Result<Option<CommandRecord>> {
        let select =
            format!("SELECT {COMMAND_COLUMNS} FROM vehicle_commands WHERE idempotency_key = $1");
        let row: Option<CommandRecord> = sqlx::query_as(&select)
            .bind(key)
            .fetch_optional(&self.write)
            .await?;
        Ok(row)
    }

    async fn list_commands(&self, vehicle_id: Uuid) -> Result<Vec<CommandRecord>> {
        let select = format!(
            "SELECT {COMMAND_COLUMNS} FROM vehicle_commands WHERE vehicle_id = $1 \
             ORDER BY issued_at, idempotency_key"
        );
        let rows: Vec<CommandRecord> = sqlx::query_as(&select)
            .bind(vehicle_id)
            .fetch_all(&self.read)
            .await?;
        Ok(rows)
    }

    async fn unresolved_commands(
        &self,
        vehicle_id: Uuid,
        before_epoch: i64,
    ) -> Result<Vec<CommandRecord>> {
        let select = format!(
            "SELECT {COMMAND_COLUMNS} FROM vehicle_commands \
             WHERE vehicle_id = $1 AND lease_epoch < $2 AND outcome IN ('sent', 'accepted') \
             ORDER BY issued_at, idempotency_key"
        );
        // The writer: what the previous owner recorded just before it stopped.
        let rows: Vec<CommandRecord> = sqlx::query_as(&select)
            .bind(vehicle_id)
            .bind(before_epoch)
            .fetch_all(&self.write)
            .await?;
        Ok(rows)
    }

    async fn append_reading(&self, r: &ReadingRecord) -> Result<()> {
        Self::append_reading_in(&self.write, DeviceTable::ElectricVehicles, r).await
    }

    async fn list_device_readings(
        &self,
        table: DeviceTable,
        org: OrgScope,
        device_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReadingRecord>> {
        let (readings, device, is_at_home) = table.readings();
        let select = format!(
            "SELECT {device} AS vehicle_id, org_id, at, battery_level, is_plugged_in, is_charging, \
               {is_at_home} AS is_at_home, power_w, energy_kwh, price_eur_mwh, customer_price_per_mwh \
             FROM {readings} WHERE org_id = $1 AND {device} = $2 AND at >= $3 AND at < $4 ORDER BY at"
        );
        let rows: Vec<ReadingRecord> = sqlx::query_as(&select)
            .bind(org.id())
            .bind(device_id)
            .bind(from)
            .bind(to)
            .fetch_all(&self.read)
            .await?;
        Ok(rows)
    }
}

/// What the fenced finish writes on a device's row (settings only when a flag was cleared).
pub(super) struct FinishedRow<'a, S, St> {
    pub settings: Option<&'a S>,
    pub state: &'a St,
    pub runtime: &'a str,
    pub plan: Option<&'a str>,
    pub next_cycle_at: DateTime<Utc>,
}
