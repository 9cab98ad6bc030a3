//! What the worker needs: leases on vehicles, the end of a cycle (fenced), charging sessions,
//! commands sent to clouds and readings (the time series behind `/data`).
//!
//! A worker claims due vehicles with a time-limited lease, works outside any transaction, and
//! finishes each with an update fenced by `(lease_owner, lease_epoch)`: a worker whose lease expired
//! and was taken over cannot overwrite the new owner's work.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voltplan_core::vehicle::EvState;

use crate::{OrgScope, Result, VehicleRecord};

/// A worker's hold on one vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub vehicle_id: Uuid,
    pub org_id: Uuid,
    pub worker_id: String,
    /// Grows with every claim of this vehicle; fences writes and names commands.
    pub epoch: i64,
    pub until: DateTime<Utc>,
}

/// A vehicle claimed for one cycle, with what the worker needs to plan it.
#[derive(Debug, Clone)]
pub struct ClaimedVehicle {
    pub vehicle: VehicleRecord,
    pub lease: Lease,
    /// Centre of the geo-fence: the linked building's coordinates, else the owner's.
    pub home: Option<(f64, f64)>,
    /// The worker's own document about this vehicle (open session, pending command, …), as JSON
    /// text: the store does not know its shape.
    pub runtime: Option<String>,
    /// The current plan as JSON text.
    pub plan: Option<String>,
}

/// What a cycle wrote back.
#[derive(Debug, Clone)]
pub struct CycleOutcome {
    pub state: EvState,
    /// JSON text, like [`ClaimedVehicle::runtime`].
    pub runtime: String,
    pub plan: Option<String>,
    pub next_cycle_at: DateTime<Utc>,
    /// The armed boost fired at this plug-in: clear `boost_for_next_session`.
    pub clear_boost_for_next_session: bool,
    /// The boost request (its `boost_requested_at`) this cycle took up or refused: cleared, unless
    /// the partner asked again meanwhile (a newer request is kept for the next cycle).
    pub clear_boost_request: Option<DateTime<Utc>>,
    /// Sessions opened, updated or closed in this cycle.
    pub sessions: Vec<SessionRecord>,
    /// This cycle's row of the `/data` time series, if it said something new.
    pub reading: Option<ReadingRecord>,
    /// What became of commands (accepted, failed, confirmed). Written even when the lease was lost:
    /// they are facts about the cloud, not the vehicle's state. The record itself was written
    /// before sending (see [`FleetStore::record_command`]), so a crash leaves it `sent`, and a
    /// worker taking over awaits it rather than sending it again.
    pub command_outcomes: Vec<CommandOutcome>,
}

/// A command's new `outcome` and `detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    pub idempotency_key: String,
    pub outcome: String,
    pub detail: Option<String>,
}

impl CycleOutcome {
    /// The partner's settings must be changed (read, locked and rewritten) with this outcome.
    pub fn touches_settings(&self) -> bool {
        self.clear_boost_for_next_session || self.clear_boost_request.is_some()
    }
}

/// A charging session, plug-in to unplug, with Podero's session fields.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub vehicle_id: Uuid,
    pub plug_in_time: DateTime<Utc>,
    pub unplug_time: Option<DateTime<Utc>>,
    pub data: SessionData,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionData {
    pub inferred_session_end: Option<DateTime<Utc>>,
    pub desired_charging_start_time: Option<DateTime<Utc>>,
    pub desired_charging_end_time: Option<DateTime<Utc>>,
    pub charge_deadline: Option<DateTime<Utc>>,
    pub target_soc_pct: Option<f64>,
    pub initial_soc_pct: Option<f64>,
    pub final_soc_pct: Option<f64>,
    pub energy_charged_kwh: f64,
    pub avg_charge_power_kw: Option<f64>,
    pub peak_charge_power_kw: Option<f64>,
    pub actual_cost_eur: f64,
    /// What charging at once on plug-in would have cost for the same energy.
    pub baseline_cost_eur: f64,
    pub expected_savings_eur: Option<f64>,
    pub actual_savings_eur: Option<f64>,
    pub is_at_home: Option<bool>,
    /// `open`, `completed`, `target_missed`, `unplugged_early`, `not_at_home`, `boosted`
    /// (Podero documents only `not_at_home`; see `voltplan_core::session`).
    pub session_outcome: Option<String>,
    /// Why a target was missed (`target_missed` only), see `voltplan_core::session::MissReason`.
    pub session_outcome_reason: Option<String>,
    /// The first reading while plugged in at or above `target_soc_pct`.
    pub target_reached_at: Option<DateTime<Utc>>,
}

/// A command sent (or attempted) to a vehicle cloud. The idempotency key is unique: a worker that
/// takes over a lease finds the commands already sent for a decision and does not send them again.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CommandRecord {
    pub idempotency_key: String,
    pub org_id: Uuid,
    pub vehicle_id: Uuid,
    /// `start_charging`, `stop_charging`, `set_charge_limit`.
    pub command: String,
    pub worker_id: String,
    pub lease_epoch: i64,
    pub issued_at: DateTime<Utc>,
    /// `sent`, `accepted`, `failed`, `confirmed`.
    pub outcome: String,
    pub detail: Option<String>,
}

/// One observation of a vehicle, for the `/data` time series.
#[derive(Debug, Clone, PartialEq, Default, sqlx::FromRow)]
pub struct ReadingRecord {
    pub vehicle_id: Uuid,
    pub org_id: Uuid,
    pub at: DateTime<Utc>,
    pub battery_level: Option<f64>,
    pub is_plugged_in: Option<bool>,
    pub is_charging: Option<bool>,
    pub is_at_home: Option<bool>,
    pub power_w: Option<f64>,
    /// Grid energy drawn since the previous reading.
    pub energy_kwh: Option<f64>,
    pub price_eur_mwh: Option<f64>,
}

#[async_trait]
pub trait FleetStore: Send + Sync {
    /// Leases up to `limit` due vehicles (never-cycled first, then by `next_cycle_at`) that no
    /// live lease holds. On PostgreSQL concurrent workers skip each other's rows.
    async fn claim_vehicles(
        &self,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedVehicle>>;

    /// Writes a cycle's result and releases the lease; `false` (nothing written) when the lease
    /// was lost to another worker.
    async fn finish_cycle(&self, lease: &Lease, outcome: &CycleOutcome) -> Result<bool>;

    /// [`FleetStore::finish_cycle`] for a whole batch in one transaction (one commit instead of one
    /// per vehicle); one `bool` per outcome, `false` where the lease was lost.
    async fn finish_cycles(&self, outcomes: &[(Lease, CycleOutcome)]) -> Result<Vec<bool>>;

    /// Releases every lease a worker holds (graceful shutdown), so others need not wait for expiry.
    async fn release_leases(&self, worker_id: &str) -> Result<u64>;

    /// The current plan of a vehicle of this organisation.
    async fn vehicle_plan(
        &self,
        org: OrgScope,
        vehicle_id: Uuid,
    ) -> Result<Option<serde_json::Value>>;

    async fn upsert_session(&self, session: &SessionRecord) -> Result<()>;
    /// Sessions that started in `[from, to)`, newest first, with the total count.
    async fn list_sessions(
        &self,
        org: OrgScope,
        vehicle_id: Option<Uuid>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<SessionRecord>)>;

    /// Records a command; `false` when one with this idempotency key exists already.
    async fn record_command(&self, command: &CommandRecord) -> Result<bool>;
    async fn set_command_outcome(
        &self,
        idempotency_key: &str,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<()>;
    async fn find_command(&self, idempotency_key: &str) -> Result<Option<CommandRecord>>;
    async fn list_commands(&self, vehicle_id: Uuid) -> Result<Vec<CommandRecord>>;

    async fn append_reading(&self, reading: &ReadingRecord) -> Result<()>;
    async fn list_readings(
        &self,
        org: OrgScope,
        vehicle_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReadingRecord>>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub building_id: Option<Uuid>,
    pub price_zone: String,
    pub settings: sqlx::types::Json<voltplan_core::vehicle::EvSettings>,
    pub state: crate::json_text::JsonText<EvState>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub lease_epoch: i64,
    pub runtime: Option<String>,
    pub plan: Option<String>,
    pub building_latitude: Option<f64>,
    pub building_longitude: Option<f64>,
    pub profile: sqlx::types::Json<voltplan_core::account::UserProfile>,
}

impl ClaimedRow {
    pub(crate) fn into_claimed(
        self,
        worker_id: &str,
        until: DateTime<Utc>,
    ) -> Result<ClaimedVehicle> {
        let price_zone = self
            .price_zone
            .parse()
            .map_err(|e| crate::StoreError::Corrupt(format!("vehicle {}: {e}", self.id)))?;
        let home = match (self.building_latitude, self.building_longitude) {
            (Some(lat), Some(lon)) => Some((lat, lon)),
            _ => self.profile.0.latitude.zip(self.profile.0.longitude),
        };
        Ok(ClaimedVehicle {
            lease: Lease {
                vehicle_id: self.id,
                org_id: self.org_id,
                worker_id: worker_id.to_owned(),
                epoch: self.lease_epoch,
                until,
            },
            vehicle: VehicleRecord {
                id: self.id,
                org_id: self.org_id,
                user_id: self.user_id,
                building_id: self.building_id,
                price_zone,
                settings: self.settings.0,
                state: self.state.0,
                created_at: self.created_at,
                updated_at: self.updated_at,
                deleted_at: self.deleted_at,
            },
            home,
            runtime: self.runtime,
            plan: self.plan,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub vehicle_id: Uuid,
    pub plug_in_time: DateTime<Utc>,
    pub unplug_time: Option<DateTime<Utc>>,
    pub data: sqlx::types::Json<SessionData>,
}

impl From<SessionRow> for SessionRecord {
    fn from(r: SessionRow) -> Self {
        SessionRecord {
            id: r.id,
            org_id: r.org_id,
            vehicle_id: r.vehicle_id,
            plug_in_time: r.plug_in_time,
            unplug_time: r.unplug_time,
            data: r.data.0,
        }
    }
}

/// Names a store's sqlx database, so shared SQL can take its transactions.
pub(crate) trait Backed {
    type Db: sqlx::Database;
}

/// Implements [`FleetStore`] for a backend; `$skip_locked` is ` FOR UPDATE SKIP LOCKED` on
/// PostgreSQL (concurrent claimers skip each other's rows) and empty on SQLite (one writer).
macro_rules! fleet_store_impl {
    ($store:ty, skip_locked = $skip_locked:literal, for_update = $for_update:literal) => {
        impl $store {
            async fn upsert_session_in<'e, E>(executor: E, s: &$crate::fleet::SessionRecord) -> $crate::Result<()>
            where
                E: sqlx::Executor<'e, Database = <$store as $crate::fleet::Backed>::Db>,
            {
                sqlx::query(
                    "INSERT INTO charging_sessions (id, org_id, vehicle_id, plug_in_time, unplug_time, data) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (id) DO UPDATE SET unplug_time = excluded.unplug_time, data = excluded.data",
                )
                .bind(s.id)
                .bind(s.org_id)
                .bind(s.vehicle_id)
                .bind(s.plug_in_time)
                .bind(s.unplug_time)
                .bind(sqlx::types::Json(&s.data))
                .execute(executor)
                .await?;
                Ok(())
            }

            async fn append_reading_in<'e, E>(executor: E, r: &$crate::fleet::ReadingRecord) -> $crate::Result<()>
            where
                E: sqlx::Executor<'e, Database = <$store as $crate::fleet::Backed>::Db>,
            {
                sqlx::query(
                    "INSERT INTO vehicle_readings \
                     (vehicle_id, org_id, at, battery_level, is_plugged_in, is_charging, is_at_home, power_w, energy_kwh, price_eur_mwh) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (vehicle_id, at) DO NOTHING",
                )
                .bind(r.vehicle_id)
                .bind(r.org_id)
                .bind(r.at)
                .bind(r.battery_level)
                .bind(r.is_plugged_in)
                .bind(r.is_charging)
                .bind(r.is_at_home)
                .bind(r.power_w)
                .bind(r.energy_kwh)
                .bind(r.price_eur_mwh)
                .execute(executor)
                .await?;
                Ok(())
            }

            async fn set_command_outcome_in<'e, E>(
                executor: E,
                key: &str,
                outcome: &str,
                detail: Option<&str>,
            ) -> $crate::Result<()>
            where
                E: sqlx::Executor<'e, Database = <$store as $crate::fleet::Backed>::Db>,
            {
                sqlx::query("UPDATE vehicle_commands SET outcome = $1, detail = $2 WHERE idempotency_key = $3")
                    .bind(outcome)
                    .bind(detail)
                    .bind(key)
                    .execute(executor)
                    .await?;
                Ok(())
            }

            /// One fenced finish inside the caller's transaction.
            async fn finish_in(
                tx: &mut sqlx::Transaction<'static, <$store as $crate::fleet::Backed>::Db>,
                lease: &$crate::fleet::Lease,
                outcome: &$crate::fleet::CycleOutcome,
            ) -> $crate::Result<bool> {
                for c in &outcome.command_outcomes {
                    Self::set_command_outcome_in(&mut **tx, &c.idempotency_key, &c.outcome, c.detail.as_deref()).await?;
                }
                // Settings are the partner's: only read (and locked) when a boost flag must be
                // cleared, so a steady cycle is a single fenced UPDATE.
                let settings = if outcome.touches_settings() {
                    let row: Option<(sqlx::types::Json<voltplan_core::vehicle::EvSettings>,)> = sqlx::query_as(concat!(
                        "SELECT settings FROM electric_vehicles WHERE id = $1 AND lease_owner = $2 AND lease_epoch = $3",
                        $for_update
                    ))
                    .bind(lease.vehicle_id)
                    .bind(&lease.worker_id)
                    .bind(lease.epoch)
                    .fetch_optional(&mut **tx)
                    .await?;
                    let Some((sqlx::types::Json(mut settings),)) = row else {
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
                let done = sqlx::query(
                    // A settings change during the cycle reset next_cycle_at to NULL: keep it, so the
                    // vehicle is planned again at once with the new settings.
                    "UPDATE electric_vehicles SET settings = COALESCE($1, settings), state = $2, runtime = $3, plan = $4, \
                       next_cycle_at = CASE WHEN next_cycle_at IS NULL THEN NULL ELSE $5 END, \
                       lease_owner = NULL, lease_until = NULL \
                     WHERE id = $6 AND lease_owner = $7 AND lease_epoch = $8",
                )
                .bind(settings.as_ref().map(sqlx::types::Json))
                .bind($crate::json_text::JsonText(&outcome.state))
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
                    Self::upsert_session_in(&mut **tx, session).await?;
                }
                if let Some(reading) = &outcome.reading {
                    Self::append_reading_in(&mut **tx, reading).await?;
                }
                Ok(true)
            }
        }

        #[async_trait::async_trait]
        impl $crate::fleet::FleetStore for $store {
            async fn claim_vehicles(
                &self,
                worker_id: &str,
                now: chrono::DateTime<chrono::Utc>,
                lease_for: chrono::Duration,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::fleet::ClaimedVehicle>> {
                let until = now + lease_for;
                let mut tx = self.begin_write().await?;
                sqlx::query(concat!(
                    "UPDATE electric_vehicles SET lease_owner = $1, lease_until = $2, lease_epoch = lease_epoch + 1, next_cycle_at = $2 \
                     WHERE id IN (SELECT id FROM electric_vehicles \
                       WHERE deleted_at IS NULL AND (next_cycle_at IS NULL OR next_cycle_at <= $3) \
                       AND (lease_until IS NULL OR lease_until < $3) \
                       ORDER BY next_cycle_at IS NOT NULL, next_cycle_at LIMIT $4",
                    $skip_locked,
                    ")"
                ))
                .bind(worker_id)
                .bind(until)
                .bind(now)
                .bind(limit)
                .execute(&mut *tx)
                .await?;
                let rows: Vec<$crate::fleet::ClaimedRow> = sqlx::query_as(
                    "SELECT v.id, v.org_id, v.user_id, v.building_id, v.price_zone, v.settings, v.state, v.created_at, \
                       v.updated_at, v.deleted_at, v.lease_epoch, v.runtime, v.plan, \
                       b.latitude AS building_latitude, b.longitude AS building_longitude, u.profile \
                     FROM electric_vehicles v \
                     JOIN users u ON u.org_id = v.org_id AND u.id = v.user_id \
                     LEFT JOIN buildings b ON b.org_id = v.org_id AND b.id = v.building_id AND b.deleted_at IS NULL \
                     WHERE v.lease_owner = $1 AND v.lease_until = $2",
                )
                .bind(worker_id)
                .bind(until)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.into_iter().map(|r| r.into_claimed(worker_id, until)).collect()
            }

            async fn finish_cycle(
                &self,
                lease: &$crate::fleet::Lease,
                outcome: &$crate::fleet::CycleOutcome,
            ) -> $crate::Result<bool> {
                let mut tx = self.begin_write().await?;
                let written = Self::finish_in(&mut tx, lease, outcome).await?;
                tx.commit().await?;
                Ok(written)
            }

            async fn finish_cycles(
                &self,
                outcomes: &[($crate::fleet::Lease, $crate::fleet::CycleOutcome)],
            ) -> $crate::Result<Vec<bool>> {
                let mut tx = self.begin_write().await?;
                let written = Self::finish_batch_in(&mut tx, outcomes).await?;
                tx.commit().await?;
                Ok(written)
            }

            async fn release_leases(&self, worker_id: &str) -> $crate::Result<u64> {
                let done = sqlx::query("UPDATE electric_vehicles SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1")
                    .bind(worker_id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn vehicle_plan(
                &self,
                org: $crate::OrgScope,
                vehicle_id: uuid::Uuid,
            ) -> $crate::Result<Option<serde_json::Value>> {
                let row: Option<(Option<$crate::json_text::JsonText<serde_json::Value>>,)> = sqlx::query_as(
                    "SELECT plan FROM electric_vehicles WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
                )
                .bind(org.id())
                .bind(vehicle_id)
                .fetch_optional(&self.read)
                .await?;
                let (plan,) = row.ok_or($crate::StoreError::NotFound)?;
                Ok(plan.map(|j| j.0))
            }

            async fn upsert_session(&self, s: &$crate::fleet::SessionRecord) -> $crate::Result<()> {
                Self::upsert_session_in(&self.write, s).await
            }

            async fn list_sessions(
                &self,
                org: $crate::OrgScope,
                vehicle_id: Option<uuid::Uuid>,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
                limit: i64,
                offset: i64,
            ) -> $crate::Result<(i64, Vec<$crate::fleet::SessionRecord>)> {
                let (total,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM charging_sessions WHERE org_id = $1 AND ($2 IS NULL OR vehicle_id = $2) \
                     AND plug_in_time >= $3 AND plug_in_time < $4",
                )
                .bind(org.id())
                .bind(vehicle_id)
                .bind(from)
                .bind(to)
                .fetch_one(&self.read)
                .await?;
                let rows: Vec<$crate::fleet::SessionRow> = sqlx::query_as(
                    "SELECT id, org_id, vehicle_id, plug_in_time, unplug_time, data FROM charging_sessions \
                     WHERE org_id = $1 AND ($2 IS NULL OR vehicle_id = $2) AND plug_in_time >= $3 AND plug_in_time < $4 \
                     ORDER BY plug_in_time DESC, id LIMIT $5 OFFSET $6",
                )
                .bind(org.id())
                .bind(vehicle_id)
                .bind(from)
                .bind(to)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.read)
                .await?;
                Ok((total, rows.into_iter().map(Into::into).collect()))
            }

            async fn record_command(&self, c: &$crate::fleet::CommandRecord) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO vehicle_commands \
                     (idempotency_key, org_id, vehicle_id, command, worker_id, lease_epoch, issued_at, outcome, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (idempotency_key) DO NOTHING",
                )
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

            async fn set_command_outcome(&self, key: &str, outcome: &str, detail: Option<&str>) -> $crate::Result<()> {
                Self::set_command_outcome_in(&self.write, key, outcome, detail).await
            }

            async fn find_command(&self, key: &str) -> $crate::Result<Option<$crate::fleet::CommandRecord>> {
                let row: Option<$crate::fleet::CommandRecord> = sqlx::query_as(
                    "SELECT idempotency_key, org_id, vehicle_id, command, worker_id, lease_epoch, issued_at, outcome, detail \
                     FROM vehicle_commands WHERE idempotency_key = $1",
                )
                .bind(key)
                .fetch_optional(&self.write)
                .await?;
                Ok(row)
            }

            async fn list_commands(&self, vehicle_id: uuid::Uuid) -> $crate::Result<Vec<$crate::fleet::CommandRecord>> {
                let rows: Vec<$crate::fleet::CommandRecord> = sqlx::query_as(
                    "SELECT idempotency_key, org_id, vehicle_id, command, worker_id, lease_epoch, issued_at, outcome, detail \
                     FROM vehicle_commands WHERE vehicle_id = $1 ORDER BY issued_at, idempotency_key",
                )
                .bind(vehicle_id)
                .fetch_all(&self.read)
                .await?;
                Ok(rows)
            }

            async fn append_reading(&self, r: &$crate::fleet::ReadingRecord) -> $crate::Result<()> {
                Self::append_reading_in(&self.write, r).await
            }

            async fn list_readings(
                &self,
                org: $crate::OrgScope,
                vehicle_id: uuid::Uuid,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<$crate::fleet::ReadingRecord>> {
                let rows: Vec<$crate::fleet::ReadingRecord> = sqlx::query_as(
                    "SELECT vehicle_id, org_id, at, battery_level, is_plugged_in, is_charging, is_at_home, power_w, energy_kwh, price_eur_mwh \
                     FROM vehicle_readings WHERE org_id = $1 AND vehicle_id = $2 AND at >= $3 AND at < $4 ORDER BY at",
                )
                .bind(org.id())
                .bind(vehicle_id)
                .bind(from)
                .bind(to)
                .fetch_all(&self.read)
                .await?;
                Ok(rows)
            }
        }
    };
}

pub(crate) use fleet_store_impl;
