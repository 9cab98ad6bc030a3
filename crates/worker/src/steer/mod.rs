//! Steering: start or stop the car at the plan's switches, confirm by reading, retry, fall back.
//!
//! Rules (also in `docs/worker.md`, which the API description links):
//!
//! - **Desired state.** Unplugged: nothing. Fallback active: charge. No plan (e.g. capacity
//!   unknown): nothing (the car charges on its own). Otherwise charge while `now` lies in a plan
//!   interval, stop outside them. A boost, a pause and the minimum level are already in the plan.
//!   After the plan's last block, a car that reports less than the target before the deadline
//!   keeps charging until it reports the target ([`tops_up`]).
//! - **Satisfied** when the reading agrees: charging for "charge" (or the car is full), not
//!   charging for "stop". Nothing is sent then; a pending command of that kind is `confirmed`.
//! - **Idempotency key** = `{vehicle_id}:{decision}:{attempt}`, where the decision names the
//!   session, the planned switch instant and the command. It depends on neither the worker nor
//!   the lease, so a worker taking over re-derives the same key. The command is recorded
//!   (`record_command`, outcome `sent`) *before* it is sent; when the key exists already and was
//!   not a failed call, it is not sent again but awaited. A key the cloud may have consumed (it
//!   was accepted, or its fate is unknown) is never sent again: a new need takes the next attempt.
//! - **Takeover.** A cycle whose lease epoch does not follow the last one that steered (a worker
//!   stopped mid-cycle, or its finish was lost) first resolves the commands earlier leases left
//!   `sent` or `accepted`: `confirmed` when the reading shows the commanded state, else `failed`
//!   ([`LEFT_BY_EARLIER_LEASE`]); the one the runtime document awaits is left to the rules above.
//! - **Confirmation.** A command is confirmed by a reading after its expected effect
//!   (`expected_effective_at`); one still unconfirmed `confirm_grace` later counts as a failure
//!   and is re-sent with the next attempt number (a new key: the cloud swallowed the old one).
//! - **Retries.** A failed call keeps its key (the cloud did not consume it) and is retried after
//!   `retry_base × 2^(failures−1)` (at most `retry_max`) or the cloud's `retry_after`.
//! - **`steering_status`**: `ok` with no consecutive failure, `warning` after 1 to
//!   `steering_failures_for_error − 1`, `error` from `steering_failures_for_error` on, in the
//!   fallback, and when authorisation is revoked. It resets to `ok` on a confirmed command and
//!   at plug-in.
//! - **Fallback.** After `steering_failures_for_error` consecutive failures the worker stops
//!   trying to hold the car back and lets it charge (sending start if it is stopped) until unplug:
//!   a car left stopped by a broken integration is worse than a car charged at a higher price.
//! - **`actual_steering_state`** is what the last reading shows: `charging`, `not_charging` or
//!   `unplugged`.
//! - **`current_mode`**: `not_plugged_in`, `fallback`, `paused`, `boost`, `min_level`,
//!   `infeasible` (target not reachable in time: full power), `smart`, `away_from_home`,
//!   `optimization_off` or `unmanaged` (no plan could be made).
//!
//! The files: the decision (`desired.rs`: what the plan wants now, whether the reading shows
//! it, the mode), the command records and their keys (`commands.rs`), and carrying the decision
//! out (`carry.rs`). None of them imports this file.

mod carry;
mod commands;
mod desired;

pub use crate::device::{Desired, Steered};
pub use carry::{SteerContext, steer};
pub use commands::{LEFT_BY_EARLIER_LEASE, NOT_CONFIRMED, idempotency_key};
pub use desired::{desired, tops_up};
