//! The worker's own document about one vehicle, kept in the store's `runtime` column between
//! cycles. Partners never see it; a worker taking over a lease continues from it.

use std::collections::VecDeque;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voltplan_core::vehicle::{EvSettings, EvState};
use voltplan_store::fleet::SessionData;

use crate::monitor::Observed;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VehicleRuntime {
    /// When the last successful reading was taken.
    pub last_reading_at: Option<DateTime<Utc>>,
    /// The cloud's lifetime energy meter at the last reading.
    pub last_meter_kwh: Option<f64>,
    /// Grid power at the last reading, to integrate energy when the cloud has no meter.
    pub last_rate_w: Option<f64>,
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
    /// Set when the unplug reading closes the session.
    pub unplug_time: Option<DateTime<Utc>>,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCommand {
    pub idempotency_key: String,
    pub command: CommandKind,
    /// The lease-independent decision this command carries out (see `steer::decision_id`).
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

/// A fingerprint of what the plan depends on besides the battery level (drift is checked
/// separately): settings, session, place, boost, fallback and price coverage. A change re-plans.
///
/// The value is stored (`plan_inputs_hash` in the runtime document), so it must not depend on the
/// Rust release: each input is written as explicit bytes into FNV-1a, never through `std::hash`.
/// Should the value change all the same (a new input, a settings field, another encoding), each
/// car is only re-planned once, at its next cycle.
pub fn plan_inputs_hash(
    settings: &EvSettings,
    state: &EvState,
    rt: &VehicleRuntime,
    observed: &Observed,
    price_coverage_end: Option<DateTime<Utc>>,
) -> u64 {
    let mut h = Fnv1a::new();
    // Settings have floats; their JSON text is a stable, hashable form.
    h.text(&serde_json::to_string(settings).unwrap_or_default());
    h.option(rt.session.as_ref().map(|s| s.id), |h, id| {
        h.bytes(id.as_bytes())
    });
    h.flag(observed.plugged_in);
    h.flag(observed.at_home);
    h.flag(crate::boost_active(state));
    h.option(state.charge_target_max, |h, max| {
        h.bytes(&max.to_le_bytes())
    });
    h.option(state.reported_battery_capacity_kwh, |h, kwh| {
        h.bytes(&kwh.to_bits().to_le_bytes())
    });
    h.flag(rt.fallback);
    h.option(price_coverage_end, |h, end| {
        h.bytes(&end.timestamp().to_le_bytes());
        h.bytes(&end.timestamp_subsec_nanos().to_le_bytes());
    });
    // A pause ending changes nothing in the settings but everything in the plan.
    h.flag(settings.pause_power_until.is_some_and(|p| p > observed.at));
    h.finish()
}

/// FNV-1a, 64 bit: its value is fixed by the two constants below (unlike `DefaultHasher`'s,
/// which a Rust release may change).
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(Self::OFFSET_BASIS)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Self::PRIME);
        }
    }

    /// Length first, so the end of one text cannot pass for the start of the next input.
    fn text(&mut self, text: &str) {
        self.bytes(&(text.len() as u64).to_le_bytes());
        self.bytes(text.as_bytes());
    }

    fn flag(&mut self, flag: bool) {
        self.bytes(&[u8::from(flag)]);
    }

    /// A tag byte tells `None` from any `Some`.
    fn option<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.bytes(&[0]),
            Some(value) => {
                self.bytes(&[1]);
                write(self, value);
            }
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fnv1a_matches_its_published_test_vectors() {
        let hash = |text: &str| {
            let mut h = Fnv1a::new();
            h.bytes(text.as_bytes());
            h.finish()
        };
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash("foobar"), 0x8594_4171_f739_67e8);
    }

    /// The value is stored in every vehicle's runtime document: a change here means each car is
    /// re-planned once after deploy. That is harmless, but it should be a decision: update the
    /// pinned value only knowing why it moved (e.g. a new field in `EvSettings`).
    #[test]
    fn plan_inputs_hash_is_pinned() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let settings = EvSettings::default();
        let state = EvState {
            charge_target_max: Some(90),
            reported_battery_capacity_kwh: Some(77.4),
            ..EvState::default()
        };
        let rt = VehicleRuntime {
            session: Some(OpenSession {
                id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
                plug_in_time: at,
                data: SessionData::default(),
                baseline_power_kw: 11.0,
                planned_baseline_eur: None,
                charging_seconds: 0.0,
                last_written_at: None,
                facts: SessionFlags::default(),
            }),
            ..VehicleRuntime::default()
        };
        let observed = Observed {
            at,
            level_pct: Some(42.0),
            plugged_in: true,
            charging: false,
            rate_w: 0.0,
            at_home: true,
            cap_pct: 90.0,
            energy_kwh: 0.0,
            energy_since: at,
        };
        let coverage = Some(at + chrono::Duration::hours(36));
        let hash = plan_inputs_hash(&settings, &state, &rt, &observed, coverage);
        assert_eq!(
            hash, 0x01c3_c0a3_f517_e757,
            "plan_inputs_hash moved: see this test's comment"
        );

        // Each input still counts.
        let unplugged = Observed {
            plugged_in: false,
            ..observed.clone()
        };
        assert_ne!(
            plan_inputs_hash(&settings, &state, &rt, &unplugged, coverage),
            hash
        );
        assert_ne!(
            plan_inputs_hash(&settings, &state, &rt, &observed, None),
            hash
        );
    }
}
