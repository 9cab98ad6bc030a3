//! The worker's own document about one vehicle, kept in the store's `runtime` column between
//! cycles. Partners never see it; a worker taking over a lease continues from it.

use std::collections::VecDeque;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voltplan_store::fleet::SessionData;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VehicleRuntime {
    /// When the last successful reading was taken.
    pub last_reading_at: Option<DateTime<Utc>>,
    /// The cloud's lifetime energy meter at the last reading.
    pub last_meter_kwh: Option<f64>,
    /// Grid power at the last reading, to integrate energy when the cloud has no meter.
    pub last_rate_w: Option<f64>,
    /// The battery level the car last reported, unrounded (the state shows whole percent): its
    /// grid group's joint plan starts from it.
    pub last_level_pct: Option<f64>,
    pub last_plugged_in: Option<bool>,
    pub session: Option<OpenSession>,
    pub pending: Option<PendingCommand>,
    /// Consecutive steering failures (send errors and commands not confirmed by a reading).
    pub steer_failures: u32,
    /// Consecutive read failures.
    pub read_failures: u32,
    /// No command before this instant (backoff, or a cloud's `retry_after`).
    pub retry_at: Option<DateTime<Utc>>,
    /// Steering gave up for this session: the car is left to charge.
    pub fallback: bool,
    pub plan_inputs_hash: Option<u64>,
    /// The lease epoch of the last cycle that steered. A claim whose epoch does not follow it
    /// means a cycle was lost (a worker stopped, a finish fenced off) and may have left commands
    /// unresolved.
    pub steered_epoch: Option<i64>,
    pub consumption: Consumption,
    /// The last row of the `/data` time series: when, its (plugged, charging, at home) flags, and
    /// the energy drawn since (quiet cycles write no row).
    pub last_reported_at: Option<DateTime<Utc>>,
    pub last_reported_flags: Option<(bool, bool, bool)>,
    pub unreported_energy_kwh: f64,
}

/// A charging session between plug-in and unplug, written to the store as it goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenSession {
    pub id: Uuid,
    pub plug_in_time: DateTime<Utc>,
    pub data: SessionData,
    /// Grid power at full speed when plugged in: the baseline charges at this power.
    pub baseline_power_kw: f64,
    /// Baseline cost the session's first plan computed, for `optimization_score`.
    pub planned_baseline_eur: Option<f64>,
    /// Seconds the car was seen charging, for the average power.
    pub charging_seconds: f64,
    pub last_written_at: Option<DateTime<Utc>>,
    /// What the session's verdict depends on beyond its record (absent in older documents).
    #[serde(default)]
    pub facts: SessionFlags,
}

/// What happened during a session that the verdict (`voltplan_core::session::judge`) weighs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionFlags {
    /// The deadline and target have been evaluated once (later changes are the partner's).
    pub evaluated: bool,
    /// From the session's first plan with a target: it could not be met even at full power.
    pub infeasible_at_plug_in: Option<bool>,
    pub target_changed: bool,
    pub boosted: bool,
    pub paused: bool,
    pub steering_failed: bool,
    pub cloud_unreachable: bool,
}

/// What a command was for, so a later reading can confirm it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    StartCharging,
    StopCharging,
}

impl CommandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartCharging => "start_charging",
            Self::StopCharging => "stop_charging",
        }
    }

    /// The kind a command record names (`None` for commands the worker does not send).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::StartCharging, Self::StopCharging]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCommand {
    pub idempotency_key: String,
    pub command: CommandKind,
    /// The lease-independent decision this command carries out (see `steer::desired`).
    pub decision: String,
    pub attempt: u32,
    /// `true` once a cloud accepted it; `false` after a failed call (retry with the same key).
    pub accepted: bool,
    pub issued_at: DateTime<Utc>,
    /// When the cloud expected the car to act.
    pub effective_at: DateTime<Utc>,
}

/// Grid energy per hour (last 24 h) and per UTC day (last 31 days), for `consumption_last_*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Consumption {
    pub hours: VecDeque<(DateTime<Utc>, f64)>,
    pub days: VecDeque<(NaiveDate, f64)>,
}
