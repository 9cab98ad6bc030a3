//! One device's cycle: read → observe → plan → steer → wrap up (sessions, `/data`, schedule),
//! ending in the fenced write that `Worker::run_once` commits with the rest of the batch. The
//! order and the kind-independent rules live here; each step is the device kind's
//! ([`DeviceKind`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use voltplan_core::Clock;
use voltplan_core::planner::Plan;
use voltplan_store::fleet::Lease;

use crate::config::WorkerConfig;
use crate::device::{DeviceKind, Read, Steered, Step, Work};
use crate::error::WorkerError;
use crate::price_book::PriceBook;
use crate::tariff::Pricing;

/// What a cycle needs from its worker, for one kind of device.
pub(crate) struct Cycler<'a, K> {
    pub kind: &'a K,
    pub clock: &'a dyn Clock,
    pub config: &'a WorkerConfig,
}

// Derived `Clone`/`Copy` would require `K: Copy`; only references are copied.
impl<K> Clone for Cycler<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Cycler<'_, K> {}

pub(crate) struct CycleResult<O> {
    /// The fenced write that ends this device's cycle.
    pub(crate) finish: (Lease, O),
    pub(crate) commands_sent: usize,
    pub(crate) replanned: bool,
    pub(crate) deferred: bool,
}

impl<K: DeviceKind> Cycler<'_, K> {
    pub(crate) async fn cycle(
        &self,
        claimed: K::Claimed,
        book: Option<Arc<PriceBook>>,
        (pricing, contract_updated_at): (Arc<Pricing>, Option<DateTime<Utc>>),
    ) -> Result<CycleResult<K::Outcome>, WorkerError> {
        let now = self.clock.now();
        let empty_book = PriceBook::default();
        let step = Step {
            now,
            book: book.as_deref().unwrap_or(&empty_book),
            pricing: &pricing,
            contract_updated_at,
            config: self.config,
        };
        let (runtime, stored_plan) = K::documents(&claimed);
        let mut work = Work::<K> {
            state: K::state(&claimed).clone(),
            runtime: read_runtime(runtime),
            writes: K::Writes::default(),
        };
        let reading = match self.kind.read(&claimed, &work.runtime, now).await {
            Read::Reading(reading) => reading,
            Read::Unread(why) => {
                let next = self.kind.unread(&claimed, &mut work, &why, step);
                return self.finish_unread(&claimed, work, next, false, now);
            }
            Read::Deferred(retry_at) => {
                // Nothing was learnt: everything stays as it was, only the next cycle moves.
                tracing::debug!(%retry_at, "call budget spent; read deferred");
                let next = retry_at.max(now + self.config.min_interval);
                return self.finish_unread(&claimed, work, next, true, now);
            }
        };

        let observed = self.kind.observe(&claimed, &mut work, &reading, step);
        // An unreadable plan (e.g. written by an older version) is simply made again.
        let kept: Option<Plan> = stored_plan.and_then(|text| serde_json::from_str(text).ok());
        let planned = self.kind.plan(&claimed, &mut work, &observed, kept, step);
        let plan = planned.plan.as_ref();
        let desired = self.kind.desired(&claimed, &work, plan, &observed, now);
        let steered = self
            .kind
            .steer(&claimed, &mut work, desired, plan, &observed, step)
            .await?;
        let next = self
            .kind
            .wrap_up(&claimed, &mut work, plan, &observed, step);

        // A kept plan is written back as it was read, not encoded again.
        let plan_json = if planned.replanned {
            plan.map(serde_json::to_string).transpose()?
        } else {
            stored_plan.map(str::to_owned)
        };
        let mut result = self.finish(&claimed, work, plan_json, next, steered, now)?;
        result.replanned = planned.replanned;
        Ok(result)
    }

    /// The end of a cycle that got no reading: the plan stays as it was; no command, session or
    /// `/data` row.
    fn finish_unread(
        &self,
        claimed: &K::Claimed,
        work: Work<K>,
        next_cycle_at: DateTime<Utc>,
        deferred: bool,
        now: DateTime<Utc>,
    ) -> Result<CycleResult<K::Outcome>, WorkerError> {
        let plan = K::documents(claimed).1.map(str::to_owned);
        let mut result =
            self.finish(claimed, work, plan, next_cycle_at, Steered::default(), now)?;
        result.deferred = deferred;
        Ok(result)
    }

    fn finish(
        &self,
        claimed: &K::Claimed,
        work: Work<K>,
        plan_json: Option<String>,
        next_cycle_at: DateTime<Utc>,
        steered: Steered,
        now: DateTime<Utc>,
    ) -> Result<CycleResult<K::Outcome>, WorkerError> {
        let outcome = K::outcome(
            claimed,
            work,
            plan_json,
            next_cycle_at,
            steered.outcomes,
            now,
        )?;
        // Written with the rest of the batch, in one transaction (see `run_once`).
        Ok(CycleResult {
            finish: (K::lease(claimed).clone(), outcome),
            commands_sent: steered.commands_sent,
            replanned: false,
            deferred: false,
        })
    }
}

/// The stored runtime document, or a fresh one.
fn read_runtime<R: serde::de::DeserializeOwned + Default>(text: Option<&str>) -> R {
    match text.map(serde_json::from_str::<R>) {
        Some(Ok(runtime)) => runtime,
        Some(Err(error)) => {
            // Losing the runtime loses the open session's bookkeeping, not the device's safety:
            // the next readings rebuild it.
            tracing::warn!(%error, "unreadable runtime document; starting afresh");
            R::default()
        }
        None => R::default(),
    }
}
