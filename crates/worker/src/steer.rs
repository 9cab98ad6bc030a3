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

use chrono::{DateTime, Duration, Utc};
use voltplan_clouds::{CloudError, CloudVehicleRef, VehicleCloud};
use voltplan_core::planner::{Plan, PlanMode, Reason};
use voltplan_core::session::target_reached;
use voltplan_core::vehicle::{EvSettings, EvState, StatusLevel};
use voltplan_store::fleet::{CommandOutcome, CommandRecord, Lease};
use voltplan_store::{FleetStore, Store, StoreError};

use crate::budget::CallKind;
use crate::config::WorkerConfig;
use crate::monitor::status_for_failures;
use crate::monitor::{Observed, mark_revoked};
use crate::runtime::{CommandKind, PendingCommand, VehicleRuntime};

/// The detail of a command accepted by its cloud that no later reading confirmed.
pub const NOT_CONFIRMED: &str = "accepted but not confirmed by a later reading";
/// The detail of a command a stopped worker left unresolved that the reading after the takeover
/// does not confirm.
pub const LEFT_BY_EARLIER_LEASE: &str =
    "left unresolved by a stopped worker; not confirmed by the reading after the takeover";

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

#[derive(Debug, Default)]
pub struct Steered {
    pub commands_sent: usize,
    /// What became of commands; written with the cycle's finish (only recording a command must
    /// precede sending it).
    pub outcomes: Vec<CommandOutcome>,
}

impl Steered {
    fn note(&mut self, key: &str, outcome: &str, detail: Option<String>) {
        self.outcomes.push(CommandOutcome {
            idempotency_key: key.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        });
    }
}

pub use crate::device::Desired;

/// The plan's charging is over (or there is none left: the planner sees the level the API shows,
/// rounded) but the car reports less than the target before the deadline: keep charging until the
/// car reports the target, so a car asked for 80 % shows 80 %, not 79.8 % (79 % in its app).
pub fn tops_up(plan: &Plan, observed: &Observed, now: DateTime<Utc>) -> bool {
    let (Some(target), Some(deadline)) = (plan.target_level, plan.deadline) else {
        return false;
    };
    plan.mode == PlanMode::Smart
        && observed.plugged_in
        && now < deadline
        && plan.intervals.iter().all(|i| i.end <= now)
        && !observed.is_full()
        && observed
            .level_pct
            .is_some_and(|level| !target_reached(level, target, observed.cap_pct))
}

/// The plan's wish at `now`, as a command and its lease-independent decision id.
pub fn desired(
    plan: Option<&Plan>,
    settings: &EvSettings,
    rt: &VehicleRuntime,
    observed: &Observed,
    now: DateTime<Utc>,
) -> Desired<CommandKind> {
    if !observed.plugged_in {
        return Desired::Leave;
    }
    let session = rt
        .session
        .as_ref()
        .map_or_else(|| "none".to_owned(), |s| s.id.to_string());
    if rt.fallback {
        return Desired::Act {
            command: CommandKind::StartCharging,
            decision: format!("{session}:fallback:start"),
        };
    }
    let Some(plan) = plan else {
        return Desired::Leave;
    };
    let intervals = &plan.intervals;
    if let Some(k) = intervals
        .iter()
        .position(|i| i.start <= now && now < i.end && i.power_w > 0.0)
    {
        // The switch is where the contiguous block containing `now` began.
        let mut first = k;
        while first > 0 && intervals[first - 1].end == intervals[first].start {
            first -= 1;
        }
        let at = intervals[first].start.timestamp();
        return Desired::Act {
            command: CommandKind::StartCharging,
            decision: format!("{session}:{at}:start"),
        };
    }
    if let Some(until) = settings.pause_power_until.filter(|until| *until > now) {
        return Desired::Act {
            command: CommandKind::StopCharging,
            decision: format!("{session}:pause-{}:stop", until.timestamp()),
        };
    }
    if tops_up(plan, observed, now) {
        let at = intervals.last().map_or(0, |i| i.end.timestamp());
        return Desired::Act {
            command: CommandKind::StartCharging,
            decision: format!("{session}:topup-{at}:start"),
        };
    }
    let at = intervals
        .iter()
        .map(|i| i.end)
        .filter(|end| *end <= now)
        .max()
        .map_or_else(|| "plug_in".to_owned(), |end| end.timestamp().to_string());
    Desired::Act {
        command: CommandKind::StopCharging,
        decision: format!("{session}:{at}:stop"),
    }
}

/// The idempotency key of one attempt at a decision.
pub fn idempotency_key(vehicle_id: uuid::Uuid, decision: &str, attempt: u32) -> String {
    format!("{vehicle_id}:{decision}:{attempt}")
}

/// Bounds the key search of one decision (a car re-plugged many times within one plan slot).
const MAX_ATTEMPTS_PER_DECISION: u32 = 100;

fn satisfied(command: CommandKind, observed: &Observed) -> bool {
    match command {
        CommandKind::StartCharging => observed.charging || observed.is_full(),
        CommandKind::StopCharging => !observed.charging,
    }
}

fn backoff(cfg: &WorkerConfig, failures: u32) -> Duration {
    let factor = 1i32 << failures.saturating_sub(1).min(16);
    (cfg.retry_base * factor).min(cfg.retry_max)
}

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
        result = resolve_earlier_commands(ctx, rt, observed).await;
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

/// Resolves the commands earlier leases left `sent` or `accepted`, by this reading. Written at
/// once, not with the finish: the key search that follows must see them resolved. Rare (only
/// after a takeover), so the extra statements cost nothing in steady cycles.
async fn resolve_earlier_commands(
    ctx: &SteerContext<'_>,
    rt: &VehicleRuntime,
    observed: &Observed,
) -> Result<(), StoreError> {
    let awaited = rt.pending.as_ref().map(|p| p.idempotency_key.as_str());
    let open = ctx
        .store
        .unresolved_commands(ctx.lease.vehicle_id, ctx.lease.epoch)
        .await?;
    for command in open {
        let key = command.idempotency_key.as_str();
        // The runtime document this cycle continues from awaits it: the usual rules apply.
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
        ctx.store.set_command_outcome(key, outcome, detail).await?;
    }
    Ok(())
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
    let key = loop {
        let key = idempotency_key(ctx.lease.vehicle_id, &decision, attempt);
        let record = CommandRecord {
            idempotency_key: key.clone(),
            org_id: ctx.lease.org_id,
            vehicle_id: ctx.lease.vehicle_id,
            command: command.as_str().to_owned(),
            worker_id: ctx.lease.worker_id.clone(),
            lease_epoch: ctx.lease.epoch,
            issued_at: now,
            outcome: "sent".to_owned(),
            detail: None,
        };
        if FleetStore::record_command(ctx.store, &record).await? {
            break key;
        }
        match ctx.store.find_command(&key).await? {
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
            // Sent before (by us, or by a worker whose lease we took over): await it, never resend.
            Some(existing) if existing.outcome != "failed" => {
                rt.pending = Some(PendingCommand {
                    idempotency_key: key,
                    command,
                    decision,
                    attempt,
                    accepted: true,
                    issued_at: existing.issued_at,
                    effective_at: existing
                        .issued_at
                        .max(now - cfg.confirm_grace + cfg.active_interval),
                });
                return Ok(());
            }
            // Every attempt of this decision is used up: never resend a consumed key.
            Some(existing) if key_consumed(&existing) => return Ok(()),
            // A failed call: the cloud did not consume the key, so it is sent again.
            _ => {
                ctx.store.set_command_outcome(&key, "sent", None).await?;
                break key;
            }
        }
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

fn current_mode(
    state: &EvState,
    rt: &VehicleRuntime,
    settings: &EvSettings,
    plan: Option<&Plan>,
    observed: &Observed,
    now: DateTime<Utc>,
) -> &'static str {
    if !observed.plugged_in {
        return "not_plugged_in";
    }
    if rt.fallback {
        return "fallback";
    }
    let Some(plan) = plan else {
        return "unmanaged";
    };
    match plan.mode {
        PlanMode::NotPluggedIn => "not_plugged_in",
        PlanMode::AwayFromHome => "away_from_home",
        PlanMode::SmartOptimizationOff => "optimization_off",
        _ if settings.is_pause_power_active(now) => "paused",
        _ if crate::boost::boost_active(state) => "boost",
        _ => match plan
            .intervals
            .iter()
            .find(|i| i.start <= now && now < i.end)
            .map(|i| i.reason)
        {
            Some(Reason::MinLevel) => "min_level",
            Some(Reason::Infeasible) => "infeasible",
            _ if !plan.feasible => "infeasible",
            _ => "smart",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::OpenSession;
    use crate::test_support::{plan_with, t0};
    use uuid::Uuid;

    fn observed(plugged_in: bool) -> Observed {
        Observed {
            at: t0(),
            level_pct: Some(40.0),
            plugged_in,
            charging: false,
            rate_w: 0.0,
            at_home: true,
            cap_pct: 100.0,
            energy_kwh: 0.0,
            energy_since: t0(),
        }
    }

    fn runtime_with_session(id: Uuid) -> VehicleRuntime {
        VehicleRuntime {
            session: Some(OpenSession {
                id,
                plug_in_time: t0(),
                data: Default::default(),
                baseline_power_kw: 11.0,
                planned_baseline_eur: None,
                charging_seconds: 0.0,
                last_written_at: None,
                facts: Default::default(),
            }),
            ..VehicleRuntime::default()
        }
    }

    #[test]
    fn a_car_short_of_its_target_after_the_last_block_is_topped_up_until_it_reports_it() {
        let session = Uuid::from_u128(7);
        let rt = runtime_with_session(session);
        let settings = EvSettings::default();
        // One block 00:00–01:00 to 40 %; the deadline (plan_with) is at 08:00.
        let plan = plan_with(&[(0, 60)]);
        let after = t0() + Duration::minutes(61);
        let at = |level: f64| Observed {
            level_pct: Some(level),
            ..observed(true)
        };
        assert!(tops_up(&plan, &at(39.8), after));
        assert_eq!(
            desired(Some(&plan), &settings, &rt, &at(39.8), after),
            Desired::Act {
                command: CommandKind::StartCharging,
                decision: format!(
                    "{session}:topup-{}:start",
                    (t0() + Duration::hours(1)).timestamp()
                ),
            }
        );
        // At the target as the car reports it: the block's stop.
        assert!(!tops_up(&plan, &at(40.0), after));
        assert!(matches!(
            desired(Some(&plan), &settings, &rt, &at(40.0), after),
            Desired::Act {
                command: CommandKind::StopCharging,
                ..
            }
        ));
        // Not during the block, not after the deadline, not for a full car.
        assert!(!tops_up(&plan, &at(35.0), t0() + Duration::minutes(30)));
        assert!(!tops_up(&plan, &at(39.8), t0() + Duration::hours(9)));
        let full = Observed {
            cap_pct: 40.0,
            ..at(39.8)
        };
        assert!(!tops_up(&plan, &full, after));
    }

    #[test]
    fn decisions_name_the_switch_not_the_moment_or_the_lease() {
        let session = Uuid::from_u128(7);
        let rt = runtime_with_session(session);
        let plan = plan_with(&[(0, 30), (30, 60), (120, 150)]);
        let settings = EvSettings::default();
        let at = |m: i64| t0() + Duration::minutes(m);
        let act = |m: i64| desired(Some(&plan), &settings, &rt, &observed(true), at(m));
        let start = format!("{session}:{}:start", at(0).timestamp());
        // Anywhere in the contiguous block: the same decision, hence the same key.
        assert_eq!(
            act(5),
            Desired::Act {
                command: CommandKind::StartCharging,
                decision: start.clone()
            }
        );
        assert_eq!(
            act(45),
            Desired::Act {
                command: CommandKind::StartCharging,
                decision: start
            }
        );
        let stop = format!("{session}:{}:stop", at(60).timestamp());
        assert_eq!(
            act(90),
            Desired::Act {
                command: CommandKind::StopCharging,
                decision: stop
            }
        );
        let before = format!("{session}:plug_in:stop");
        assert_eq!(
            act(-5),
            Desired::Act {
                command: CommandKind::StopCharging,
                decision: before
            }
        );
        assert_eq!(
            desired(Some(&plan), &settings, &rt, &observed(false), at(5)),
            Desired::Leave
        );
        assert_eq!(
            idempotency_key(Uuid::from_u128(1), "d", 2),
            "00000000-0000-0000-0000-000000000001:d:2"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = WorkerConfig::new("t");
        assert_eq!(backoff(&cfg, 1), Duration::seconds(30));
        assert_eq!(backoff(&cfg, 3), Duration::minutes(2));
        assert_eq!(backoff(&cfg, 30), Duration::minutes(10));
    }
}
