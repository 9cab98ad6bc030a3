//! The command records and their idempotency keys: one key per attempt at a decision, recorded
//! (`sent`) before the command is sent, never sent again once the cloud may have consumed it; and
//! the commands an earlier lease left open.

use chrono::{DateTime, Utc};
use voltplan_store::fleet::{CommandRecord, Lease};
use voltplan_store::{FleetStore, Store, StoreError};

use super::desired::satisfied;
use crate::monitor::Observed;
use crate::runtime::CommandKind;

/// The detail of a command accepted by its cloud that no later reading confirmed.
pub const NOT_CONFIRMED: &str = "accepted but not confirmed by a later reading";
/// The detail of a command a stopped worker left unresolved that the reading after the takeover
/// does not confirm.
pub const LEFT_BY_EARLIER_LEASE: &str =
    "left unresolved by a stopped worker; not confirmed by the reading after the takeover";

/// The idempotency key of one attempt at a decision.
pub fn idempotency_key(vehicle_id: uuid::Uuid, decision: &str, attempt: u32) -> String {
    format!("{vehicle_id}:{decision}:{attempt}")
}

/// Bounds the key search of one decision (a car re-plugged many times within one plan slot).
const MAX_ATTEMPTS_PER_DECISION: u32 = 100;

/// The cloud consumed this key, or may have: it must never be sent again.
fn key_consumed(record: &CommandRecord) -> bool {
    match record.outcome.as_str() {
        "failed" => matches!(
            record.detail.as_deref(),
            Some(NOT_CONFIRMED | LEFT_BY_EARLIER_LEASE)
        ),
        _ => true,
    }
}

/// Resolves the commands earlier leases left `sent` or `accepted`, by this reading, except the
/// one the runtime document `awaited` (the usual rules apply to it). Written at once, not with
/// the finish: the key search that follows must see them resolved. Rare (only after a takeover),
/// so the extra statements cost nothing in steady cycles.
pub(super) async fn resolve_earlier_commands(
    store: &dyn Store,
    lease: &Lease,
    awaited: Option<&str>,
    observed: &Observed,
) -> Result<(), StoreError> {
    let open = store
        .unresolved_commands(lease.vehicle_id, lease.epoch)
        .await?;
    for command in open {
        let key = command.idempotency_key.as_str();
        if Some(key) == awaited {
            continue;
        }
        let shown = CommandKind::parse(&command.command).is_some_and(|c| satisfied(c, observed));
        let (outcome, detail) = if shown {
            ("confirmed", None)
        } else {
            ("failed", Some(LEFT_BY_EARLIER_LEASE))
        };
        tracing::info!(
            key,
            outcome,
            epoch = command.lease_epoch,
            "resolved a command an earlier lease left open"
        );
        store.set_command_outcome(key, outcome, detail).await?;
    }
    Ok(())
}

/// What the key search found for the next send of a decision.
pub(super) enum KeyClaim {
    /// Recorded as `sent`: send it now.
    Send { key: String, attempt: u32 },
    /// Sent before (by us, or by a worker whose lease we took over): await it, never resend.
    Await {
        key: String,
        attempt: u32,
        issued_at: DateTime<Utc>,
    },
    /// Every attempt of this decision is used up: never resend a consumed key.
    UsedUp,
}

/// Records the command of `decision` under the first key from `attempt` on that may be sent.
pub(super) async fn claim_key(
    store: &dyn Store,
    lease: &Lease,
    command: CommandKind,
    decision: &str,
    mut attempt: u32,
    now: DateTime<Utc>,
) -> Result<KeyClaim, StoreError> {
    loop {
        let key = idempotency_key(lease.vehicle_id, decision, attempt);
        let record = CommandRecord {
            idempotency_key: key.clone(),
            org_id: lease.org_id,
            vehicle_id: lease.vehicle_id,
            command: command.as_str().to_owned(),
            worker_id: lease.worker_id.clone(),
            lease_epoch: lease.epoch,
            issued_at: now,
            outcome: "sent".to_owned(),
            detail: None,
        };
        if FleetStore::record_command(store, &record).await? {
            return Ok(KeyClaim::Send { key, attempt });
        }
        match store.find_command(&key).await? {
            // That attempt worked once and the car has left that state since (a re-plug, a new
            // plan ending the same way), or it was consumed without effect: this is a new need,
            // with the next attempt's key.
            Some(existing)
                if (existing.outcome == "confirmed" || existing.outcome == "failed")
                    && key_consumed(&existing)
                    && attempt < MAX_ATTEMPTS_PER_DECISION =>
            {
                attempt += 1;
            }
            Some(existing) if existing.outcome != "failed" => {
                return Ok(KeyClaim::Await {
                    key,
                    attempt,
                    issued_at: existing.issued_at,
                });
            }
            Some(existing) if key_consumed(&existing) => return Ok(KeyClaim::UsedUp),
            // A failed call: the cloud did not consume the key, so it is sent again.
            _ => {
                store.set_command_outcome(&key, "sent", None).await?;
                return Ok(KeyClaim::Send { key, attempt });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_key_names_the_vehicle_the_decision_and_the_attempt() {
        assert_eq!(
            idempotency_key(Uuid::from_u128(1), "d", 2),
            "00000000-0000-0000-0000-000000000001:d:2"
        );
    }
}
