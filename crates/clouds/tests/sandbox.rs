//! The sandbox cloud driven through the `VehicleCloud` contract on a manual clock.
//!
//! Reference car: 60 kWh, 11 kW AC, 400 km WLTP, default physics (η = 0.9, taper from 80 % to
//! 20 % power at 100 %), 15 s command latency. Below the taper it gains
//! 11 kW × 0.9 / 60 kWh = 16.5 %/h, and the grid supplies ΔSoC × 60 kWh / 0.9.

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::Arc;
use uuid::Uuid;
use voltplan_clouds::{
    CloudCommand, CloudError, CloudVehicleRef, FailureProfile, FailureScope, RateLimit,
    SandboxCloud, SandboxConfig, SandboxError, SandboxInitial, VehicleCloud, VehicleSpec,
};
use voltplan_core::ManualClock;

const FULL_RATE_PERCENT_PER_HOUR: f64 = 16.5;
const CAPACITY_KWH: f64 = 60.0;
const EFFICIENCY: f64 = 0.9;
const LATENCY_S: i64 = 15;
/// The closed-form integration is exact up to floating point.
const EXACT: f64 = 1e-9;
const HOME: (f64, f64) = (48.2082, 16.3738);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 6, 18, 0, 0).unwrap()
}

fn spec() -> VehicleSpec {
    VehicleSpec::new(CAPACITY_KWH, 11.0, 400.0)
}

fn initial(level: f64, plugged_in: bool, limit: i32) -> SandboxInitial {
    SandboxInitial {
        battery_level: level,
        plugged_in,
        lat: HOME.0,
        lon: HOME.1,
        charge_limit: limit,
    }
}

struct Rig {
    clock: Arc<ManualClock>,
    cloud: SandboxCloud,
    id: Uuid,
    car: CloudVehicleRef,
}

impl Rig {
    fn new(level: f64, plugged_in: bool, limit: i32) -> Self {
        Self::with_seed(42, level, plugged_in, limit)
    }

    fn with_seed(seed: u64, level: f64, plugged_in: bool, limit: i32) -> Self {
        let clock = Arc::new(ManualClock::new(t0()));
        let config = SandboxConfig {
            seed,
            ..SandboxConfig::default()
        };
        let cloud = SandboxCloud::new(clock.clone(), config).unwrap();
        let id = Uuid::from_u128(0x0195_1111_2222_7000_8000_0000_0000_0001);
        cloud
            .add_vehicle(id, spec(), initial(level, plugged_in, limit))
            .unwrap();
        Self {
            clock,
            cloud,
            id,
            car: CloudVehicleRef::new(id),
        }
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn level(&self) -> f64 {
        self.cloud.snapshot(self.id).unwrap().battery_level_percent
    }

    fn grid_kwh(&self) -> f64 {
        self.cloud.snapshot(self.id).unwrap().grid_energy_kwh
    }
}

fn grid_kwh_for(delta_percent: f64) -> f64 {
    delta_percent / 100.0 * CAPACITY_KWH / EFFICIENCY
}

fn hours(h: f64) -> Duration {
    Duration::milliseconds((h * 3.6e6).round() as i64)
}

#[tokio::test]
async fn plugged_in_car_charges_on_its_own_until_told_to_stop() {
    let rig = Rig::new(30.0, false, 100);
    rig.cloud.plug_in(rig.id).unwrap();
    rig.advance(Duration::hours(1));

    let reading = rig.cloud.read_state(&rig.car).await.unwrap();
    assert!(reading.is_plugged_in);
    assert!(reading.is_charging, "real cars start charging at plug-in");
    assert!((reading.battery_level_percent - (30.0 + FULL_RATE_PERCENT_PER_HOUR)).abs() < EXACT);
    assert_eq!(reading.charge_rate_w, 11_000.0);
}

#[tokio::test]
async fn started_car_reaches_the_level_the_physics_predicts() {
    let rig = Rig::new(30.0, true, 100);
    // Stop the self-started charge first, so the start command is what makes it charge.
    rig.cloud.stop_charging(&rig.car, "stop-1").await.unwrap();
    rig.advance(Duration::minutes(1));
    let level_stopped = 30.0 + FULL_RATE_PERCENT_PER_HOUR * LATENCY_S as f64 / 3600.0;
    assert!((rig.level() - level_stopped).abs() < EXACT);

    let receipt = rig.cloud.start_charging(&rig.car, "start-1").await.unwrap();
    assert_eq!(receipt.command, CloudCommand::StartCharging);
    assert_eq!(
        receipt.expected_effective_at,
        Some(rig.clock_now() + Duration::seconds(LATENCY_S))
    );
    rig.advance(Duration::seconds(LATENCY_S) + Duration::hours(2));

    let reading = rig.cloud.read_state(&rig.car).await.unwrap();
    let expected = level_stopped + 2.0 * FULL_RATE_PERCENT_PER_HOUR;
    assert!((reading.battery_level_percent - expected).abs() < EXACT);
    let expected_energy = grid_kwh_for(expected - 30.0);
    assert!((reading.energy_meter_kwh.unwrap() - expected_energy).abs() < EXACT);
    assert!((rig.grid_kwh() - expected_energy).abs() < EXACT);
    assert_eq!(reading.range_km, Some(expected / 100.0 * 400.0));
    assert_eq!(reading.battery_capacity_kwh, Some(CAPACITY_KWH));
    assert_eq!(reading.charge_limit_percent, Some(100));
    assert_eq!(reading.reported_at, rig.clock_now());
}

impl Rig {
    fn clock_now(&self) -> DateTime<Utc> {
        voltplan_core::Clock::now(self.clock.as_ref())
    }
}

#[tokio::test]
async fn result_does_not_depend_on_how_often_the_car_is_read() {
    let polled = Rig::new(20.0, true, 95);
    let unpolled = Rig::new(20.0, true, 95);
    for _ in 0..(6 * 60) {
        polled.advance(Duration::minutes(1));
        polled.cloud.read_state(&polled.car).await.unwrap();
    }
    unpolled.advance(Duration::hours(6));
    assert!((polled.level() - unpolled.level()).abs() < 1e-6);
    assert!((polled.grid_kwh() - unpolled.grid_kwh()).abs() < 1e-6);
}

#[tokio::test]
async fn charging_stops_at_the_cars_own_limit() {
    let rig = Rig::new(30.0, true, 90);
    rig.advance(Duration::hours(10));

    let reading = rig.cloud.read_state(&rig.car).await.unwrap();
    assert_eq!(reading.battery_level_percent, 90.0);
    assert!(!reading.is_charging);
    assert_eq!(reading.charge_rate_w, 0.0);
    assert!((rig.grid_kwh() - grid_kwh_for(60.0)).abs() < EXACT);

    // Raising the limit lets it carry on, as a real car does.
    rig.cloud
        .set_charge_limit(&rig.car, 95, "limit-95")
        .await
        .unwrap();
    rig.advance(Duration::minutes(1));
    assert!(rig.cloud.read_state(&rig.car).await.unwrap().is_charging);
}

#[tokio::test]
async fn power_tapers_above_eighty_percent() {
    let rig = Rig::new(80.0, true, 90);
    // Power falls linearly from 11 kW at 80 % to 2.2 kW at 100 %: 0.44 kW per percent.
    let reading = rig.cloud.read_state(&rig.car).await.unwrap();
    assert_eq!(reading.charge_rate_w, 11_000.0);

    // At full power 80 → 90 % would take 10 / 16.5 h; the taper makes it slower.
    rig.advance(hours(10.0 / FULL_RATE_PERCENT_PER_HOUR));
    let level = rig.level();
    assert!(level > 85.0 && level < 89.0, "tapered level {level}");
    let reading = rig.cloud.read_state(&rig.car).await.unwrap();
    let expected_w = 11_000.0 - 440.0 * (level - 80.0);
    assert!((reading.charge_rate_w - expected_w).abs() < 1e-6);

    // Exact time to 90 %: u falls from 1 to 0.6 at k = 0.04/% × 16.5 %/h = 0.66 /h.
    let hours_to_limit = (1.0_f64 / 0.6).ln() / 0.66;
    rig.clock.set(t0() + hours(hours_to_limit - 0.01));
    assert!(rig.level() < 90.0);
    rig.clock.set(t0() + hours(hours_to_limit + 0.01));
    assert_eq!(rig.level(), 90.0);
}

#[tokio::test]
async fn stop_command_stops_energy_flow_after_the_latency() {
    let rig = Rig::new(40.0, true, 100);
    rig.cloud.stop_charging(&rig.car, "stop").await.unwrap();

    rig.advance(Duration::seconds(LATENCY_S - 5));
    let reading = rig.cloud.read_state(&rig.car).await.unwrap();
    assert!(reading.is_charging, "not yet acted on");
    assert_eq!(rig.cloud.snapshot(rig.id).unwrap().pending_commands, 1);

    rig.advance(Duration::seconds(5));
    let at_stop = rig.grid_kwh();
    assert!(
        (at_stop - grid_kwh_for(FULL_RATE_PERCENT_PER_HOUR * LATENCY_S as f64 / 3600.0)).abs()
            < EXACT
    );
    let reading = rig.cloud.read_state(&rig.car).await.unwrap();
    assert!(!reading.is_charging);
    assert!(reading.is_plugged_in);

    rig.advance(Duration::hours(3));
    assert_eq!(rig.grid_kwh(), at_stop);
}

#[tokio::test]
async fn unplugging_stops_charging_and_replugging_restarts_it() {
    let rig = Rig::new(40.0, true, 100);
    rig.advance(Duration::minutes(30));
    rig.cloud.unplug(rig.id).unwrap();
    let at_unplug = rig.grid_kwh();
    rig.advance(Duration::hours(2));
    let reading = rig.cloud.read_state(&rig.car).await.unwrap();
    assert!(!reading.is_plugged_in && !reading.is_charging);
    assert_eq!(rig.grid_kwh(), at_unplug);

    // A stop sent before unplugging does not survive the next plug-in.
    rig.cloud
        .stop_charging(&rig.car, "stop-while-away")
        .await
        .unwrap();
    rig.advance(Duration::minutes(1));
    rig.cloud.plug_in(rig.id).unwrap();
    rig.advance(Duration::minutes(1));
    assert!(rig.cloud.read_state(&rig.car).await.unwrap().is_charging);
}

#[tokio::test]
async fn driving_drains_by_the_wltp_consumption_and_moves_the_car() {
    let rig = Rig::new(80.0, false, 100);
    // 60 kWh / 400 km = 0.15 kWh/km: 100 km is 15 kWh, i.e. 25 %.
    let after = rig.cloud.drive(rig.id, 100.0).unwrap();
    assert!((after.battery_level_percent - 55.0).abs() < EXACT);
    assert!((after.range_km - 220.0).abs() < EXACT);
    assert!((after.latitude - (HOME.0 + 100.0 / 111.32)).abs() < 1e-9);
    assert_eq!(after.odometer_km, 100.0);

    let reading = rig.cloud.read_state(&rig.car).await.unwrap();
    assert!(reading.latitude.unwrap() > HOME.0 + 0.8);

    let home = rig.cloud.drive_home(rig.id).unwrap();
    assert!((home.latitude - HOME.0).abs() < 1e-9);
    assert!((home.longitude - HOME.1).abs() < 1e-9);
    // The way back is the great-circle distance, within a fraction of a percent of 100 km.
    assert!((home.battery_level_percent - 30.0).abs() < 0.2);
}

#[tokio::test]
async fn driving_stops_short_when_the_battery_runs_flat_and_needs_unplugging() {
    let rig = Rig::new(10.0, false, 100);
    let after = rig.cloud.drive(rig.id, 500.0).unwrap();
    assert_eq!(after.battery_level_percent, 0.0);
    assert!((after.odometer_km - 40.0).abs() < EXACT);

    rig.cloud.plug_in(rig.id).unwrap();
    assert_eq!(
        rig.cloud.drive(rig.id, 1.0),
        Err(SandboxError::PluggedIn(rig.id))
    );
}

#[tokio::test]
async fn repeated_idempotency_key_returns_the_first_receipt_and_acts_once() {
    let rig = Rig::new(40.0, true, 100);
    let first = rig
        .cloud
        .stop_charging(&rig.car, "lease-7-stop")
        .await
        .unwrap();
    rig.advance(Duration::seconds(5));
    let again = rig
        .cloud
        .stop_charging(&rig.car, "lease-7-stop")
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(rig.cloud.snapshot(rig.id).unwrap().pending_commands, 1);

    // Even a different command under a used key is a replay, not a new action.
    let replay = rig
        .cloud
        .start_charging(&rig.car, "lease-7-stop")
        .await
        .unwrap();
    assert_eq!(replay, first);
    rig.advance(Duration::minutes(5));
    assert!(!rig.cloud.read_state(&rig.car).await.unwrap().is_charging);
}

#[tokio::test]
async fn failed_command_does_not_consume_its_idempotency_key() {
    let rig = Rig::new(40.0, true, 100);
    let always_fail = FailureProfile {
        command_failure_rate: 1.0,
        ..FailureProfile::none()
    };
    rig.cloud
        .set_failures(FailureScope::Vehicle(rig.id), always_fail)
        .unwrap();
    let failed = rig.cloud.stop_charging(&rig.car, "k").await;
    assert!(matches!(failed, Err(CloudError::Transient(_))));
    assert_eq!(rig.cloud.snapshot(rig.id).unwrap().pending_commands, 0);

    rig.cloud.clear_vehicle_failures(rig.id).unwrap();
    let receipt = rig.cloud.stop_charging(&rig.car, "k").await.unwrap();
    assert_eq!(receipt.command, CloudCommand::StopCharging);
}

#[tokio::test]
async fn idempotency_keys_expire_after_the_ttl() {
    let rig = Rig::new(40.0, true, 100);
    let first = rig.cloud.stop_charging(&rig.car, "daily").await.unwrap();
    rig.advance(Duration::hours(25));
    let second = rig.cloud.stop_charging(&rig.car, "daily").await.unwrap();
    assert_ne!(first.command_id, second.command_id);
}

/// Outcome of a call, reduced to something comparable.
fn outcome<T>(result: &Result<T, CloudError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(CloudError::Unreachable) => "unreachable",
        Err(CloudError::Transient(_)) => "failed",
        Err(_) => "other",
    }
}

async fn failure_sequence(seed: u64) -> Vec<&'static str> {
    let rig = Rig::with_seed(seed, 50.0, true, 100);
    let flaky = FailureProfile {
        unreachable_rate: 0.3,
        command_failure_rate: 0.3,
        ..FailureProfile::none()
    };
    rig.cloud.set_failures(FailureScope::Global, flaky).unwrap();
    let mut outcomes = Vec::new();
    for i in 0..60 {
        rig.advance(Duration::minutes(1));
        outcomes.push(outcome(&rig.cloud.read_state(&rig.car).await));
        let key = format!("k{i}");
        outcomes.push(outcome(&rig.cloud.stop_charging(&rig.car, &key).await));
    }
    outcomes
}

#[tokio::test]
async fn failure_injection_is_deterministic_for_a_seed() {
    let first = failure_sequence(7).await;
    assert_eq!(first, failure_sequence(7).await);
    assert_ne!(first, failure_sequence(8).await);

    let count = |what| first.iter().filter(|o| **o == what).count();
    assert!(count("unreachable") > 10, "{first:?}");
    assert!(count("failed") > 5, "{first:?}");
    assert!(count("ok") > 30, "{first:?}");
    assert_eq!(count("other"), 0);
}

#[tokio::test]
async fn ignored_command_is_accepted_but_never_acted_on() {
    let rig = Rig::new(40.0, true, 100);
    let ignore_all = FailureProfile {
        command_ignored_rate: 1.0,
        ..FailureProfile::none()
    };
    rig.cloud
        .set_failures(FailureScope::Global, ignore_all)
        .unwrap();
    rig.cloud.stop_charging(&rig.car, "ignored").await.unwrap();
    rig.advance(Duration::minutes(10));
    assert!(rig.cloud.read_state(&rig.car).await.unwrap().is_charging);
}

#[tokio::test]
async fn unreachable_car_keeps_living_its_life() {
    let rig = Rig::new(40.0, true, 100);
    let offline = FailureProfile {
        unreachable_rate: 1.0,
        ..FailureProfile::none()
    };
    rig.cloud
        .set_failures(FailureScope::Vehicle(rig.id), offline)
        .unwrap();
    assert_eq!(
        rig.cloud.read_state(&rig.car).await,
        Err(CloudError::Unreachable)
    );
    assert_eq!(
        rig.cloud.start_charging(&rig.car, "x").await,
        Err(CloudError::Unreachable)
    );
    rig.advance(Duration::hours(1));
    assert!((rig.level() - (40.0 + FULL_RATE_PERCENT_PER_HOUR)).abs() < EXACT);
}

#[tokio::test]
async fn revoked_authorisation_fails_every_call_but_the_car_still_charges() {
    let rig = Rig::new(40.0, true, 100);
    rig.cloud.revoke_authorization(rig.id).unwrap();

    let read = rig.cloud.read_state(&rig.car).await;
    assert!(matches!(read, Err(CloudError::AuthorizationRevoked { .. })));
    let stop = rig.cloud.stop_charging(&rig.car, "stop").await;
    assert!(matches!(stop, Err(CloudError::AuthorizationRevoked { .. })));
    assert!(!stop.unwrap_err().is_retryable());

    rig.advance(Duration::hours(1));
    assert!(rig.cloud.snapshot(rig.id).unwrap().is_charging);

    rig.cloud.restore_authorization(rig.id).unwrap();
    assert!(rig.cloud.read_state(&rig.car).await.is_ok());
}

#[tokio::test]
async fn rate_limit_yields_retry_after_and_recovers_in_simulated_time() {
    let rig = Rig::new(40.0, true, 100);
    let quota = FailureProfile {
        rate_limit: Some(RateLimit {
            burst: 3,
            refill_every: std::time::Duration::from_secs(60),
        }),
        ..FailureProfile::none()
    };
    rig.cloud
        .set_failures(FailureScope::Vehicle(rig.id), quota)
        .unwrap();
    for _ in 0..3 {
        rig.cloud.read_state(&rig.car).await.unwrap();
    }
    rig.advance(Duration::seconds(20));
    let limited = rig.cloud.stop_charging(&rig.car, "s").await;
    assert_eq!(
        limited,
        Err(CloudError::RateLimited {
            retry_after: std::time::Duration::from_secs(40)
        })
    );
    assert!(limited.unwrap_err().is_retryable());

    rig.advance(Duration::seconds(40));
    assert!(rig.cloud.stop_charging(&rig.car, "s").await.is_ok());
}

#[tokio::test]
async fn set_charge_limit_acts_after_latency_and_is_clamped() {
    let rig = Rig::new(40.0, false, 100);
    let receipt = rig
        .cloud
        .set_charge_limit(&rig.car, 30, "low")
        .await
        .unwrap();
    assert_eq!(
        receipt.command,
        CloudCommand::SetChargeLimit { percent: 50 }
    );
    assert_eq!(
        rig.cloud
            .read_state(&rig.car)
            .await
            .unwrap()
            .charge_limit_percent,
        Some(100)
    );
    rig.advance(Duration::seconds(LATENCY_S));
    assert_eq!(
        rig.cloud
            .read_state(&rig.car)
            .await
            .unwrap()
            .charge_limit_percent,
        Some(50)
    );
}

#[tokio::test]
async fn set_charge_limit_is_unsupported_on_models_that_cannot() {
    let clock = Arc::new(ManualClock::new(t0()));
    let cloud = SandboxCloud::new(clock, SandboxConfig::default()).unwrap();
    let id = Uuid::from_u128(9);
    let spec = VehicleSpec {
        supports_set_charge_limit: false,
        ..spec()
    };
    cloud
        .add_vehicle(id, spec, initial(50.0, false, 80))
        .unwrap();
    let result = cloud
        .set_charge_limit(&CloudVehicleRef::new(id), 90, "k")
        .await;
    assert_eq!(result, Err(CloudError::Unsupported));
}

#[tokio::test]
async fn unknown_vehicles_are_reported_as_such() {
    let rig = Rig::new(40.0, false, 100);
    let stranger = CloudVehicleRef::new(Uuid::from_u128(12345));
    assert_eq!(
        rig.cloud.read_state(&stranger).await,
        Err(CloudError::UnknownVehicle)
    );
    assert_eq!(
        rig.cloud.plug_in(stranger.vehicle_id),
        Err(SandboxError::UnknownVehicle(stranger.vehicle_id))
    );
    assert_eq!(
        rig.cloud
            .add_vehicle(rig.id, spec(), initial(1.0, false, 80))
            .map(|_| ()),
        Err(SandboxError::AlreadyExists(rig.id))
    );
}

#[tokio::test]
async fn works_as_a_shared_trait_object() {
    let rig = Rig::new(40.0, true, 100);
    let id = rig.id;
    let car = rig.car.clone();
    let cloud: Arc<dyn VehicleCloud> = Arc::new(rig.cloud);
    let handle = tokio::spawn({
        let cloud = cloud.clone();
        let car = car.clone();
        async move { cloud.read_state(&car).await }
    });
    assert!(handle.await.unwrap().unwrap().is_charging);
    assert_eq!(car.vehicle_id, id);
}

#[test]
fn driver_controls_reject_nonsense() {
    let rig = Rig::new(40.0, false, 100);
    assert!(matches!(
        rig.cloud.set_level(rig.id, 120.0),
        Err(SandboxError::Invalid(_))
    ));
    assert!(matches!(
        rig.cloud.set_location(rig.id, 95.0, 0.0),
        Err(SandboxError::Invalid(_))
    ));
    assert!(matches!(
        rig.cloud.drive(rig.id, -3.0),
        Err(SandboxError::Invalid(_))
    ));
    let bad = FailureProfile {
        command_failure_rate: f64::NAN,
        ..FailureProfile::none()
    };
    assert!(matches!(
        rig.cloud.set_failures(FailureScope::Global, bad),
        Err(SandboxError::Invalid(_))
    ));
    let moved = rig.cloud.set_location(rig.id, 47.0, 15.0).unwrap();
    assert_eq!((moved.latitude, moved.longitude), (47.0, 15.0));
    assert_eq!(
        rig.cloud
            .set_level(rig.id, 12.5)
            .unwrap()
            .battery_level_percent,
        12.5
    );
}
