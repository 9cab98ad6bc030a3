//! The seam between the cycle and a kind of device (ARCHITECTURE.md, *Device kinds*).
//!
//! What the cycle ([`crate::cycle`]) needs from a device is four steps — **read** its connection,
//! **observe** the reading (state, metered energy, sessions), **plan**, **steer** — plus its
//! table's claim and fenced finish. Everything else is shared: leases and fencing, batching, the
//! price book, call budgets, the command records and their idempotency keys. The EV implements
//! it in [`crate::ev`]; a wallbox would be a second implementation, not a copy of the cycle.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use voltplan_clouds::CloudError;
use voltplan_core::PriceZone;
use voltplan_core::planner::{Plan, PlanError, PlanInput, SharedLimit};
use voltplan_store::fleet::{CommandOutcome, Lease};
use voltplan_store::{Store, StoreError};

use crate::config::WorkerConfig;
use crate::price_book::PriceBook;
use crate::tariff::{Owner, Pricing};

/// What the read step got.
pub(crate) enum Read<R> {
    Reading(R),
    /// Nothing was read; the kind folds why into the state.
    Unread(Unread),
    /// The connection's call budget is spent: not read; try again then.
    Deferred(DateTime<Utc>),
}

/// Why a device was not read.
pub(crate) enum Unread {
    /// The connection answered with an error.
    Failed(CloudError),
    /// No connection reaches the device (none configured, or an unknown one).
    NoConnection(String),
}

/// What the device should be doing now: nothing, or a command with its lease-independent
/// decision id (the idempotency key is derived from it, so a worker taking over re-derives it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired<C> {
    Leave,
    Act { command: C, decision: String },
}

/// What the steer step did.
#[derive(Debug, Default)]
pub struct Steered {
    pub commands_sent: usize,
    /// What became of commands; written with the cycle's finish (only recording a command must
    /// precede sending it).
    pub outcomes: Vec<CommandOutcome>,
}

impl Steered {
    pub(crate) fn note(&mut self, key: &str, outcome: &str, detail: Option<String>) {
        self.outcomes.push(CommandOutcome {
            idempotency_key: key.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        });
    }
}

/// The plan step's result.
pub(crate) struct Planned {
    pub plan: Option<Plan>,
    /// Made in this cycle (else the stored plan was kept and is written back as it was read).
    pub replanned: bool,
}

/// What one cycle of one device works on, handed from step to step and written at its end.
pub(crate) struct Work<K: DeviceKind + ?Sized> {
    /// The partner-visible state, as this cycle leaves it.
    pub state: K::State,
    /// The worker's own document about the device.
    pub runtime: K::Runtime,
    /// The kind's other writes of this cycle (EV: sessions, the `/data` row, boost flags).
    pub writes: K::Writes,
}

/// What every step of one cycle sees.
#[derive(Clone, Copy)]
pub(crate) struct Step<'c> {
    pub now: DateTime<Utc>,
    /// The zone's day-ahead prices.
    pub book: &'c PriceBook,
    /// The owner's contract applied to `book`, when there is one.
    pub pricing: &'c Pricing,
    /// When that contract last changed (a re-plan trigger).
    pub contract_updated_at: Option<DateTime<Utc>>,
    pub config: &'c WorkerConfig,
}

impl Step<'_> {
    /// Plans `input` on the device's prices (its owner's contract's, else the day-ahead ones).
    pub fn plan(&self, input: PlanInput) -> Result<Plan, PlanError> {
        self.plan_within(input, None)
    }

    /// Like [`Step::plan`], within the windows a grid group's joint plan left the device.
    pub fn plan_within(
        &self,
        input: PlanInput,
        shared: Option<&SharedLimit>,
    ) -> Result<Plan, PlanError> {
        self.pricing.plan(
            input,
            self.book,
            (self.now, self.config.ready_margin),
            shared,
        )
    }
}

/// One kind of device the worker steers. Static dispatch: the cycle is generic over it.
pub(crate) trait DeviceKind: Sync {
    /// The partner's settings of one device.
    type Settings;
    /// The partner-visible state the worker writes.
    type State: Clone + Send;
    /// One read of the device's connection.
    type Reading: Send;
    /// A reading folded into the state, normalised for plan, steer and schedule.
    type Observed: Send + Sync;
    /// What the steer step can ask of the device.
    type Command: Send;
    /// The worker's own document about one device, kept between cycles (JSON text in the store).
    type Runtime: Serialize + DeserializeOwned + Default + Send;
    /// The kind's writes of one cycle besides state, runtime and plan.
    type Writes: Default + Send;
    /// One device as the store's claim returns it.
    type Claimed: Send + Sync;
    /// The fenced write that ends one device's cycle.
    type Outcome: Send;

    // ---- the store: this kind's table (lease SQL shared, see `voltplan_store::fleet::DeviceTable`)

    /// Leases up to `limit` due devices of this kind.
    async fn claim(
        &self,
        store: &dyn Store,
        worker_id: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: i64,
    ) -> Result<Vec<Self::Claimed>, StoreError>;

    /// Writes a batch's outcomes in one transaction, each fenced by its lease; `false` where the
    /// lease was lost.
    async fn finish(
        &self,
        store: &dyn Store,
        outcomes: &[(Lease, Self::Outcome)],
    ) -> Result<Vec<bool>, StoreError>;

    // ---- one claimed device

    fn lease(claimed: &Self::Claimed) -> &Lease;
    /// The (zone, organisation) whose prices the device is planned on.
    fn price_key(claimed: &Self::Claimed) -> (PriceZone, Uuid);
    /// Whose device it is and where, to find the owner's energy contract.
    fn owner(claimed: &Self::Claimed) -> Owner;
    fn settings(claimed: &Self::Claimed) -> &Self::Settings;
    fn state(claimed: &Self::Claimed) -> &Self::State;
    /// The stored runtime document and plan, as JSON text.
    fn documents(claimed: &Self::Claimed) -> (Option<&str>, Option<&str>);

    // ---- the steps, in the cycle's order

    /// **read** the device through its connection; `runtime` is the worker's document as the
    /// cycle read it (what the last cycle left: an open session, the last command).
    async fn read(
        &self,
        claimed: &Self::Claimed,
        runtime: &Self::Runtime,
        now: DateTime<Utc>,
    ) -> Read<Self::Reading>;

    /// No reading: fold why into the state; returns when to cycle next.
    fn unread(
        &self,
        claimed: &Self::Claimed,
        work: &mut Work<Self>,
        why: &Unread,
        step: Step<'_>,
    ) -> DateTime<Utc>;

    /// **observe**: the reading folded into state and runtime (metered energy, sessions opened or
    /// closed, the kind's own reactions such as a boost).
    fn observe(
        &self,
        claimed: &Self::Claimed,
        work: &mut Work<Self>,
        reading: &Self::Reading,
        step: Step<'_>,
    ) -> Self::Observed;

    /// **plan**: keep `kept` while its inputs hold, else plan again.
    fn plan(
        &self,
        claimed: &Self::Claimed,
        work: &mut Work<Self>,
        observed: &Self::Observed,
        kept: Option<Plan>,
        step: Step<'_>,
    ) -> Planned;

    /// The plan's wish now, as a command and its decision id.
    fn desired(
        &self,
        claimed: &Self::Claimed,
        work: &Work<Self>,
        plan: Option<&Plan>,
        observed: &Self::Observed,
        now: DateTime<Utc>,
    ) -> Desired<Self::Command>;

    /// **steer**: carry out `desired` (record the command, then send it; confirm, retry, fall
    /// back), and resolve commands an earlier lease left unresolved.
    async fn steer(
        &self,
        claimed: &Self::Claimed,
        work: &mut Work<Self>,
        desired: Desired<Self::Command>,
        plan: Option<&Plan>,
        observed: &Self::Observed,
        step: Step<'_>,
    ) -> Result<Steered, StoreError>;

    /// After steering: what the cycle reports (open session, `/data` row); returns when to
    /// cycle next.
    fn wrap_up(
        &self,
        claimed: &Self::Claimed,
        work: &mut Work<Self>,
        plan: Option<&Plan>,
        observed: &Self::Observed,
        step: Step<'_>,
    ) -> DateTime<Utc>;

    /// The fenced write that ends the cycle.
    fn outcome(
        claimed: &Self::Claimed,
        work: Work<Self>,
        plan_json: Option<String>,
        next_cycle_at: DateTime<Utc>,
        commands: Vec<CommandOutcome>,
        now: DateTime<Utc>,
    ) -> Result<Self::Outcome, serde_json::Error>;
}
