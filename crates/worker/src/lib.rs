//! Voltplan's worker: the live loop that makes plugged-in cars charge in the cheap slots.
//!
//! Every cycle of one vehicle runs, in this order (see `docs/worker.md` for the rules):
//!
//! 1. **read** the car through its cloud ([`Clouds`]); an unknown sandbox car is registered;
//! 2. **monitor** ([`monitor`]): the reading becomes `EvState` fields, metered energy, consumption
//!    and a row of the `/data` time series;
//! 3. **session** ([`session`]): plug-in opens a charging session, unplug closes it;
//! 4. **boost** ([`boost`]): a requested or armed boost is taken up, a running one is ended;
//! 5. **plan**: re-planned when its inputs changed or the car drifted away from it;
//! 6. **steer** ([`steer`]): start or stop at planned switches, confirmed by a later reading,
//!    retried with backoff, falling back to letting the car charge when steering keeps failing;
//! 7. **schedule** ([`schedule`]): the next cycle, adaptive and never after the next switch.
//!
//! Many workers share a fleet through leases ([`voltplan_store::FleetStore::claim_vehicles`]); a
//! cycle's writes are fenced by the lease epoch, and every command carries an idempotency key
//! derived from the decision (not the lease), so a worker taking over never sends a command twice.
//!
//! A cycle's changes become webhook events in its fenced write (`events.rs`); the [`webhooks`]
//! deliverer sends them.

mod batch;
pub mod boost;
pub mod budget;
mod clouds;
mod config;
mod cycle;
mod device;
mod error;
mod ev;
mod events;
pub mod grid;
pub mod monitor;
pub mod price_book;
pub mod price_fetch;
pub mod recompute;
pub mod replan;
pub mod runtime;
pub mod schedule;
pub mod session;
pub mod steer;
pub mod tariff;
#[cfg(test)]
pub(crate) mod test_support;
pub mod wallbox;
pub mod webhooks;

pub use batch::{CycleStats, Worker};
pub use clouds::Clouds;
pub use config::WorkerConfig;
pub use error::WorkerError;
pub use price_book::PriceBook;
pub use replan::expected_level_at;
