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

/// A table of devices the worker leases. The lease SQL (claim, fence, release) is the same on
/// each, with the table's name in it; the row a claim reads and a finish writes is the kind's own
/// (`claim_vehicles` / `finish_cycles` for [`DeviceTable::ElectricVehicles`]). A second kind of
/// device is a second variant, with its own claim and finish built on the shared lease SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceTable {
    ElectricVehicles,
    Wallboxes,
}

impl DeviceTable {
    /// Every leased table: released together at a worker's shutdown.
    pub const ALL: [DeviceTable; 2] = [DeviceTable::ElectricVehicles, DeviceTable::Wallboxes];

    /// The table's name, for SQL text (never user input).
    pub const fn name(self) -> &'static str {
        match self {
            DeviceTable::ElectricVehicles => "electric_vehicles",
            DeviceTable::Wallboxes => "wallboxes",
        }
    }

    /// The device's sessions: `(table, device id column)`.
    pub const fn sessions(self) -> (&'static str, &'static str) {
        match self {
            DeviceTable::ElectricVehicles => ("charging_sessions", "vehicle_id"),
            DeviceTable::Wallboxes => ("wallbox_sessions", "wallbox_id"),
        }
    }

    /// The device's `/data` readings: `(table, device id column, is_at_home expression)` (a
    /// wallbox is at home by definition and records no geo-fence).
    pub const fn readings(self) -> (&'static str, &'static str, &'static str) {
        match self {
            DeviceTable::ElectricVehicles => ("vehicle_readings", "vehicle_id", "is_at_home"),
            DeviceTable::Wallboxes => ("wallbox_readings", "wallbox_id", "CAST(NULL AS BOOLEAN)"),
        }
    }
}

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
    /// What its grid group's joint plan leaves it (JSON text, the worker's shape), when it is in
    /// one.
    pub shared_limit: Option<String>,
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
    /// Webhook events this cycle's changes cause: written to the outbox with the fenced write,
    /// so a worker that lost its lease tells nobody about changes it did not make.
    pub events: Vec<voltplan_core::events::Event>,
    /// The outermost grid group to plan again at once: what the group planned this vehicle from
    /// changed (plug-in, settings, boost).
    pub wake_grid_group: Option<Uuid>,
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
    /// The customer's side (Voltplan extension, `docs/tariffs.md`): the energy contract that
    /// priced the session from its first reading under it, and the same figures as the `*_eur`
    /// ones on the customer's price, in `customer_currency`. All null without a contract.
    pub energy_contract_id: Option<Uuid>,
    pub customer_currency: Option<String>,
    pub customer_cost: Option<f64>,
    pub customer_baseline_cost: Option<f64>,
    pub customer_savings: Option<f64>,
    pub customer_expected_savings: Option<f64>,
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
    /// The customer's price under their energy contract, per MWh in its currency (none without).
    pub customer_price_per_mwh: Option<f64>,
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
    /// EV sessions that started in `[from, to)`, newest first, with the total count.
    async fn list_sessions(
        &self,
        org: OrgScope,
        vehicle_id: Option<Uuid>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<SessionRecord>)> {
        self.list_device_sessions(
            DeviceTable::ElectricVehicles,
            org,
            vehicle_id,
            from,
            to,
            limit,
            offset,
        )
        .await
    }
    /// [`FleetStore::list_sessions`] of any kind of device (`vehicle_id` of the records holds
    /// the device's id), of one device or the whole organisation.
    #[allow(clippy::too_many_arguments)]
    async fn list_device_sessions(
        &self,
        table: DeviceTable,
        org: OrgScope,
        device_id: Option<Uuid>,
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
    /// A vehicle's commands still `sent` or `accepted` that were issued under a lease epoch before
    /// `before_epoch`: a worker that takes the vehicle over resolves them.
    async fn unresolved_commands(
        &self,
        vehicle_id: Uuid,
        before_epoch: i64,
    ) -> Result<Vec<CommandRecord>>;
    async fn list_commands(&self, vehicle_id: Uuid) -> Result<Vec<CommandRecord>>;

    async fn append_reading(&self, reading: &ReadingRecord) -> Result<()>;
    /// An EV's readings in `[from, to)`, oldest first.
    async fn list_readings(
        &self,
        org: OrgScope,
        vehicle_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReadingRecord>> {
        self.list_device_readings(DeviceTable::ElectricVehicles, org, vehicle_id, from, to)
            .await
    }
    /// [`FleetStore::list_readings`] of any kind of device (`vehicle_id` of the records holds
    /// the device's id).
    async fn list_device_readings(
        &self,
        table: DeviceTable,
        org: OrgScope,
        device_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReadingRecord>>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    /// The vehicle's own columns, mapped as every other read maps them.
    #[sqlx(flatten)]
    pub vehicle: crate::sql::VehicleRow,
    pub lease_epoch: i64,
    pub runtime: Option<String>,
    pub plan: Option<String>,
    pub shared_limit: Option<String>,
    pub building_latitude: Option<f64>,
    pub building_longitude: Option<f64>,
    pub profile: sqlx::types::Json<voltplan_core::account::UserProfile>,
}

/// The columns of a [`ClaimedRow`] and the joins that give its home, for `WHERE` clauses to
/// follow: the worker's claim and a grid group's members read vehicles alike.
pub(crate) const CLAIMED_ROW_SELECT: &str = "SELECT v.id, v.org_id, v.user_id, v.building_id, v.price_zone, v.settings, v.state, \
       v.created_at, v.updated_at, v.deleted_at, v.lease_epoch, v.runtime, v.plan, v.shared_limit, \
       b.latitude AS building_latitude, b.longitude AS building_longitude, u.profile \
     FROM electric_vehicles v \
     JOIN users u ON u.org_id = v.org_id AND u.id = v.user_id \
     LEFT JOIN buildings b ON b.org_id = v.org_id AND b.id = v.building_id AND b.deleted_at IS NULL ";

impl ClaimedRow {
    /// Centre of the geo-fence: the linked building's coordinates, else the owner's.
    pub(crate) fn home(&self) -> Option<(f64, f64)> {
        match (self.building_latitude, self.building_longitude) {
            (Some(lat), Some(lon)) => Some((lat, lon)),
            _ => self.profile.0.latitude.zip(self.profile.0.longitude),
        }
    }

    pub(crate) fn into_claimed(
        self,
        worker_id: &str,
        until: DateTime<Utc>,
    ) -> Result<ClaimedVehicle> {
        let home = self.home();
        let vehicle = VehicleRecord::try_from(self.vehicle)?;
        Ok(ClaimedVehicle {
            lease: Lease {
                vehicle_id: vehicle.id,
                org_id: vehicle.org_id,
                worker_id: worker_id.to_owned(),
                epoch: self.lease_epoch,
                until,
            },
            vehicle,
            home,
            runtime: self.runtime,
            plan: self.plan,
            shared_limit: self.shared_limit,
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
