//! The plan step's tests: when a kept plan no longer fits the car, and the fingerprint of its
//! inputs.

use chrono::{DateTime, Utc};
use voltplan_core::planner::Plan;
use voltplan_core::vehicle::{EvSettings, EvState};

use crate::monitor::Observed;
use crate::runtime::VehicleRuntime;

/// The battery level the plan expects at `at`, interpolated within its intervals.
pub fn expected_level_at(plan: &Plan, at: DateTime<Utc>) -> f64 {
    let mut level = plan.start_battery_level;
    for interval in &plan.intervals {
        if at >= interval.end {
            level = interval.battery_level_end;
            continue;
        }
        if at > interval.start {
            let share = (at - interval.start).num_milliseconds() as f64
                / (interval.end - interval.start).num_milliseconds().max(1) as f64;
            level += (interval.battery_level_end - level) * share;
        }
        break;
    }
    level
}

/// The car is further from the plan's expected level than `threshold` percentage points.
pub(crate) fn plan_drifted(
    plan: &Plan,
    level: Option<f64>,
    now: DateTime<Utc>,
    threshold: f64,
) -> bool {
    level.is_some_and(|l| (l - expected_level_at(plan, now)).abs() > threshold)
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
    h.flag(crate::boost::boost_active(state));
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
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub(crate) fn new() -> Self {
        Self(Self::OFFSET_BASIS)
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Self::PRIME);
        }
    }

    /// Length first, so the end of one text cannot pass for the start of the next input.
    pub(crate) fn text(&mut self, text: &str) {
        self.bytes(&(text.len() as u64).to_le_bytes());
        self.bytes(text.as_bytes());
    }

    pub(crate) fn flag(&mut self, flag: bool) {
        self.bytes(&[u8::from(flag)]);
    }

    /// A tag byte tells `None` from any `Some`.
    pub(crate) fn option<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.bytes(&[0]),
            Some(value) => {
                self.bytes(&[1]);
                write(self, value);
            }
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{OpenSession, SessionFlags};
    use crate::test_support::{plan_with, t0};
    use chrono::{Duration, TimeZone};
    use uuid::Uuid;
    use voltplan_store::fleet::SessionData;

    #[test]
    fn expected_level_interpolates_within_blocks_and_holds_between_them() {
        let plan = plan_with(&[(0, 60), (120, 180)]);
        assert_eq!(expected_level_at(&plan, t0() - Duration::minutes(5)), 30.0);
        assert!((expected_level_at(&plan, t0() + Duration::minutes(30)) - 35.0).abs() < 1e-9);
        assert_eq!(expected_level_at(&plan, t0() + Duration::minutes(90)), 40.0);
        assert_eq!(expected_level_at(&plan, t0() + Duration::hours(5)), 50.0);
    }

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
        let coverage = Some(at + Duration::hours(36));
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
