//! Calls to chargers travel through the `ocpp_commands` table, so whichever process decided on a
//! call (a worker, another replica) reaches the charger wherever its WebSocket is: every replica
//! reads the queue, takes the calls of the chargers it holds (one replica wins each, by an
//! update of its status) and hands them to their connection. Queued calls past their expiry are
//! marked expired.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{Hub, Outbound};
use crate::state::AppState;

/// Calls read from the queue per round.
const BATCH: i64 = 500;
/// How often (real time) queued calls past their expiry are marked expired. Reading and taking
/// already skip them; the mark is for the worker, whose calls live 15 minutes, so every poll
/// (a write on each replica) would be work for nothing.
const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Hub {
    /// Starts this replica's dispatcher, once (the first charger to connect starts it). It ends
    /// with the hub.
    pub(crate) fn start_dispatcher(self: &Arc<Self>, state: &AppState) {
        if self.dispatcher_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let hub = Arc::downgrade(self);
        let store = state.0.store.clone();
        let clock = state.0.clock.clone();
        let poll = state.0.config.ocpp.poll_interval;
        tokio::spawn(async move {
            let mut expired_at: Option<tokio::time::Instant> = None;
            loop {
                let Some(strong) = Weak::upgrade(&hub) else {
                    return;
                };
                let now = clock.now();
                if expired_at.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY) {
                    expired_at = Some(tokio::time::Instant::now());
                    if let Err(error) = store.expire_ocpp_commands(now).await {
                        tracing::warn!(%error, "OCPP dispatcher: expiring calls failed");
                    }
                }
                if let Err(error) = dispatch_once(&strong, store.as_ref(), now).await {
                    tracing::warn!(%error, "OCPP dispatcher: reading the queue failed");
                }
                // Holding the hub while waiting delays its drop by one poll at most.
                let _ = tokio::time::timeout(poll, strong.wake.notified()).await;
            }
        });
    }
}

async fn dispatch_once(
    hub: &Hub,
    store: &dyn voltplan_store::Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), voltplan_store::StoreError> {
    if hub.connected() == 0 {
        return Ok(());
    }
    for command in store.queued_ocpp_commands(now, BATCH).await? {
        let Some(sender) = hub.sender(&command.wallbox_id) else {
            continue;
        };
        // The connection's queue is full: leave the call queued for the next round.
        let Ok(permit) = sender.try_reserve() else {
            continue;
        };
        if !store
            .take_ocpp_command(&command.id, &hub.replica, now)
            .await?
        {
            continue;
        }
        let id = command.id.clone();
        permit.send(Outbound::Queued(command));
        tracing::debug!(command_id = %id, "OCPP: call handed to its connection");
    }
    Ok(())
}
