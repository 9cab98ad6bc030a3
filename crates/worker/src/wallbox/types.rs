//! The wallbox kind's types: what a cycle reads, observes, asks and keeps.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voltplan_core::charger::Charger;
use voltplan_ocpp::profile::Unit;
use voltplan_store::Store;
use voltplan_store::fleet::{ReadingRecord, SessionRecord};
use voltplan_store::ocpp::{CommandStatus, OcppCommand, TransactionRecord};

/// Wallboxes, steered through the OCPP call queue.
pub(crate) struct Wallboxes<'a> {
    pub store: &'a dyn Store,
}

/// What the read step got: the charger as its central system last stored it, its transactions.
pub(crate) struct WallboxReading {
    pub(super) charger: Charger,
    /// Started within [`HISTORY`], oldest first, and any still open.
    pub(super) transactions: Vec<TransactionRecord>,
    /// What became of the last call queued (`None`: none, or not yet answered).
    pub(super) last_call: Option<CommandStatus>,
    /// The energy register (Wh) as sampled since the followed session was last costed.
    pub(super) meter: Vec<(DateTime<Utc>, f64)>,
    /// The car on the cable, when its battery is known (see [`CarLevel`]).
    pub(super) car: Option<CarLevel>,
}

/// The battery of the car plugged into the wallbox, when Voltplan knows it: an EV of the same
/// user at the same building whose cloud reports it plugged in with a level. Read when a session
/// opens, it sets the session's need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CarLevel {
    pub(super) level_pct: f64,
    pub(super) capacity_kwh: f64,
    /// The cap the car's own app enforces.
    pub(super) charge_target_max_pct: Option<f64>,
}

/// The reading, normalised for plan, steer and schedule.
pub(crate) struct WallboxObserved {
    pub(super) at: DateTime<Utc>,
    pub(super) connected: bool,
    pub(super) plugged_in: bool,
    pub(super) charging: bool,
    pub(super) open: Option<TransactionRecord>,
    /// Delivered in the open transaction, kWh.
    pub(super) delivered_kwh: f64,
    /// The session's energy target, kWh, and where it came from.
    pub(super) need_kwh: f64,
    pub(super) need_source: &'static str,
    /// What the car on the cable needs, when its level is known: a session opening now keeps it.
    pub(super) car_need_kwh: Option<f64>,
    pub(super) smart_charging: Option<bool>,
    pub(super) unit: Unit,
}

impl WallboxObserved {
    /// The share of the need delivered, percent (the planner's "battery level").
    pub(super) fn level_pct(&self) -> f64 {
        (self.delivered_kwh / self.need_kwh * 100.0).clamp(0.0, 100.0)
    }
}

/// A call to the charger and the decision it carries out (`fingerprint`: the same decision
/// is queued once).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WallboxCommand {
    pub(super) action: &'static str,
    pub(super) payload: String,
    pub(super) fingerprint: String,
}

/// The worker's own document about a wallbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WallboxRuntime {
    pub plan_inputs_hash: Option<u64>,
    /// The open session: the transaction it follows.
    pub session: Option<WallboxSession>,
    /// The decision last queued (its fingerprint) and its call's id.
    pub sent_decision: Option<String>,
    pub last_call_id: Option<String>,
    /// Failed attempts at the current decision (a new attempt gets a new call id).
    pub attempt: u32,
    /// The meter at the last `/data` row.
    pub reported_meter_wh: Option<f64>,
    pub reported_at: Option<DateTime<Utc>>,
}

/// A wallbox cycle's writes besides state, runtime and plan.
#[derive(Default)]
pub(crate) struct WallboxWrites {
    pub(super) sessions: Vec<SessionRecord>,
    pub(super) reading: Option<ReadingRecord>,
    pub(super) calls: Vec<OcppCommand>,
    pub(super) clear_boost_for_next_session: bool,
    pub(super) clear_boost_request: Option<DateTime<Utc>>,
    pub(super) clear_boost_cancel: Option<DateTime<Utc>>,
}

/// The session a wallbox is in: the OCPP transaction it follows and its costing so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WallboxSession {
    pub id: Uuid,
    pub transaction_id: i64,
    pub plug_in: DateTime<Utc>,
    pub meter_start_wh: f64,
    /// The register reading the session's cost is brought up to, and when it was read.
    pub costed_at: DateTime<Utc>,
    pub costed_meter_wh: f64,
    /// The energy up to `costed_meter_wh`, priced in the slots it was drawn in.
    pub cost_eur: f64,
    pub peak_power_kw: Option<f64>,
    /// The energy this session must deliver, when the car's level at plug-in said so.
    pub need_kwh: Option<f64>,
    pub deadline: Option<DateTime<Utc>>,
    pub expected_savings_eur: Option<f64>,
    /// The same energy on the customer's price, from the first costing under a contract.
    #[serde(default)]
    pub customer: Option<CustomerCosting>,
    #[serde(default)]
    pub customer_expected_savings: Option<f64>,
}

/// A session's cost on the customer's price (`crate::tariff`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerCosting {
    pub contract_id: Uuid,
    pub currency: String,
    pub cost: f64,
}
