//! Carrying the decision out: resolve what an earlier lease left open, confirm or await the
//! pending command, send the next one (recorded first), retry with backoff, fall back to letting
//! the car charge; and the state fields steering writes.

use chrono::{DateTime, Duration, Utc};
use voltplan_clouds::{CloudError, CloudVehicleRef, VehicleCloud};
use voltplan_core::planner::Plan;
use voltplan_core::vehicle::{EvSettings, EvState, StatusLevel};
use voltplan_store::Store;
use voltplan_store::StoreError;
use voltplan_store::fleet::Lease;

use super::commands::{KeyClaim, NOT_CONFIRMED, claim_key, resolve_earlier_commands};
use super::desired::{current_mode, desired, satisfied};
use crate::budget::CallKind;
use crate::config::WorkerConfig;
use crate::device::{Desired, Steered};
use crate::monitor::status_for_failures;
use crate::monitor::{Observed, mark_revoked};
use crate::runtime::{CommandKind, PendingCommand, VehicleRuntime};

pub struct SteerContext<'a> {
    pub store: &'a dyn Store,
    pub cloud: Option<&'a dyn VehicleCloud>,
    /// For the call budget of `service`.
    pub clouds: &'a crate::clouds::Clouds,
    pub service: Option<uuid::Uuid>,
    pub reference: CloudVehicleRef,
    pub lease: &'a Lease,
    pub config: &'a WorkerConfig,
    pub now: DateTime<Utc>,
}

/// The wait after `failures` consecutive failures: doubling from `retry_base`, at most `retry_max`.
fn backoff(cfg: &WorkerConfig, failures: u32) -> Duration {
    let factor = 1i32 << failures.saturating_sub(1).min(16);
    (cfg.retry_base * factor).min(cfg.retry_max)
}

/// Carries out `desired` (see the module's rules), after resolving what an earlier lease left
/// open when this cycle took the car over.
#[allow(clippy::too_many_arguments)]
pub async fn steer(
    ctx: &SteerContext<'_>,
    state: &mut EvState,
    rt: &mut VehicleRuntime,
    settings: &EvSettings,
    desired: Desired<CommandKind>,
    plan: Option<&Plan>,
    observed: &Observed,
) -> Result<Steered, StoreError> {
    let mut steered = Steered::default();
    let taken_over = rt.steered_epoch.unwrap_or(0) + 1 != ctx.lease.epoch;
    let mut result = Ok(());
    if taken_over {
        let awaited = rt.pending.as_ref().map(|p| p.idempotency_key.as_str());
        result = resolve_earlier_commands(ctx.store, ctx.lease, awaited, observed).await;
    }
    if result.is_ok() {
        rt.steered_epoch = Some(ctx.lease.epoch);
        result = steer_inner(
            ctx,
            state,
            rt,
            settings,
            desired,
            plan,
            observed,
            &mut steered,
        )
        .await;
    }
    state.actual_steering_state = match (observed.plugged_in, observed.charging) {
        (false, _) => "unplugged",
        (true, true) => "charging",
        (true, false) => "not_charging",
    }
    .to_owned();
    if state.lifecycle_state != crate::monitor::LIFECYCLE_ERROR {
        state.steering_status = if rt.fallback {
            StatusLevel::Error
        } else {
            status_for_failures(rt.steer_failures, ctx.config.steering_failures_for_error)
        };
    }
    state.current_mode =
        Some(current_mode(state, rt, settings, plan, observed, ctx.now).to_owned());
    result.map(|()| steered)
}

#[allow(clippy::too_many_arguments)]
async fn steer_inner(
    ctx: &SteerContext<'_>,
    state: &mut EvState,
    rt: &mut VehicleRuntime,
    settings: &EvSettings,
    desired_now: Desired<CommandKind>,
    plan: Option<&Plan>,
    observed: &Observed,
    steered: &mut Steered,
) -> Result<(), StoreError> {
    let cfg = ctx.config;
    let now = ctx.now;
    let Some(cloud) = ctx.cloud else {
        return Ok(());
    };
    let Desired::Act {
        mut command,
        mut decision,
    } = desired_now
    else {
        rt.pending = None;
        return Ok(());
    };
    if satisfied(command, observed) {
        if let Some(pending) = rt.pending.take()
            && pending.command == command
            && pending.accepted
        {
            steered.note(&pending.idempotency_key, "confirmed", None);
            rt.steer_failures = 0;
            rt.retry_at = None;
        }
        return Ok(());
    }
    let mut attempt = 0;
    if let Some(pending) = rt.pending.clone()
        && pending.command == command
        && pending.decision == decision
    {
        if pending.accepted {
            if now < pending.effective_at + cfg.confirm_grace {
                return Ok(());
            }
            steered.note(
                &pending.idempotency_key,
                "failed",
                Some(NOT_CONFIRMED.to_owned()),
            );
            rt.steer_failures = rt.steer_failures.saturating_add(1);
            rt.retry_at = Some(now + backoff(cfg, rt.steer_failures));
            attempt = pending.attempt + 1;
            rt.pending = None;
        } else {
            // The call failed: the cloud did not consume the key, so the retry reuses it.
            attempt = pending.attempt;
        }
    }
    if rt.steer_failures >= cfg.steering_failures_for_error && !rt.fallback {
        tracing::warn!(
            failures = rt.steer_failures,
            "steering keeps failing: letting the car charge"
        );
        rt.fallback = true;
        rt.pending = None;
        let Desired::Act {
            command: c,
            decision: d,
        } = desired(plan, settings, rt, observed, now)
        else {
            return Ok(());
        };
        (command, decision, attempt) = (c, d, 0);
        if satisfied(command, observed) {
            return Ok(());
        }
    }
    if rt.retry_at.is_some_and(|at| now < at) {
        return Ok(());
    }
    // Before recording: a command recorded as sent must be sent.
    if let Some(service) = ctx.service
        && let Err(retry_at) = ctx.clouds.take_call(service, CallKind::Command, now)
    {
        tracing::debug!(%retry_at, "cloud call budget spent; command deferred");
        rt.retry_at = Some(retry_at);
        return Ok(());
    }
    let (key, attempt) =
        match claim_key(ctx.store, ctx.lease, command, &decision, attempt, now).await? {
            KeyClaim::Send { key, attempt } => (key, attempt),
            KeyClaim::Await {
                key,
                attempt,
                issued_at,
            } => {
                rt.pending = Some(PendingCommand {
                    idempotency_key: key,
                    command,
                    decision,
                    attempt,
                    accepted: true,
                    issued_at,
                    effective_at: issued_at.max(now - cfg.confirm_grace + cfg.active_interval),
                });
                return Ok(());
            }
            KeyClaim::UsedUp => return Ok(()),
        };
    let result = match command {
        CommandKind::StartCharging => cloud.start_charging(&ctx.reference, &key).await,
        CommandKind::StopCharging => cloud.stop_charging(&ctx.reference, &key).await,
    };
    steered.commands_sent += 1;
    let mut pending = PendingCommand {
        idempotency_key: key.clone(),
        command,
        decision,
        attempt,
        accepted: false,
        issued_at: now,
        effective_at: now,
    };
    match result {
        Ok(receipt) => {
            steered.note(&key, "accepted", None);
            pending.accepted = true;
            pending.effective_at = receipt.expected_effective_at.unwrap_or(now);
            rt.retry_at = None;
            tracing::info!(command = command.as_str(), key, "command accepted");
        }
        Err(error) => {
            steered.note(&key, "failed", Some(error.to_string()));
            tracing::warn!(command = command.as_str(), key, %error, "command failed");
            match &error {
                CloudError::AuthorizationRevoked { reason } => mark_revoked(state, reason),
                CloudError::RateLimited { retry_after } => {
                    rt.steer_failures = rt.steer_failures.saturating_add(1);
                    let wait = Duration::from_std(*retry_after).unwrap_or(cfg.retry_base);
                    rt.retry_at = Some(now + wait.max(backoff(cfg, rt.steer_failures)));
                }
                CloudError::Unreachable | CloudError::Transient(_) => {
                    rt.steer_failures = rt.steer_failures.saturating_add(1);
                    rt.retry_at = Some(now + backoff(cfg, rt.steer_failures));
                }
                // Retrying cannot help: go straight to the fallback.
                CloudError::Unsupported | CloudError::UnknownVehicle => {
                    rt.steer_failures = rt.steer_failures.max(cfg.steering_failures_for_error);
                    rt.retry_at = Some(now + backoff(cfg, rt.steer_failures));
                }
            }
        }
    }
    rt.pending = Some(pending);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = WorkerConfig::new("t");
        assert_eq!(backoff(&cfg, 1), Duration::seconds(30));
        assert_eq!(backoff(&cfg, 3), Duration::minutes(2));
        assert_eq!(backoff(&cfg, 30), Duration::minutes(10));
    }
}
