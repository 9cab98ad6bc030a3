//! The live loop end to end: a real store (SQLite temp file; PostgreSQL when
//! `VOLTPLAN_TEST_POSTGRES_URL` is set), the sandbox cloud, real SMARD prices and a manual clock
//! moved forward by hand. No test sleeps: time only moves when a test moves it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Duration;
use uuid::Uuid;
use voltplan_clouds::SANDBOX_CLOUD;
use voltplan_clouds::{FailureProfile, FailureScope};
use voltplan_core::vehicle::{BoostState, StatusLevel};

mod common;
use common::probe::Probe;
use common::*;

// ---- (a) the evening plug-in --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evening_plug_in_charges_only_in_planned_slots_and_reaches_target_by_six() {
    let env = Env::new(Db::sqlite().await, evening() - Duration::minutes(10)).await;
    let worker = env.worker("w1");
    let car = env.car(30.0).await;
    drain(&worker).await;
    assert_eq!(env.state(car).await.is_plugged_in, Some(false));

    env.clock.set(evening());
    env.sandbox.plug_in(car).expect("plug in");
    let plugged_at = env.now();
    let mut previous_plan = env.plan(car).await;
    let (mut outside_plan, mut idle_in_plan, mut charging_minutes) = (0, 0, 0);
    let (mut paid, mut energy_seen) = (0.0, 0.0);
    let mut meter = env.sandbox.snapshot(car).expect("snapshot").grid_energy_kwh;
    let mut level_before = env
        .sandbox
        .snapshot(car)
        .expect("snapshot")
        .battery_level_percent;
    while env.now() < morning() {
        env.tick(&worker, minute()).await;
        let now = env.now();
        let snapshot = env.sandbox.snapshot(car).expect("snapshot");
        let plan = env.plan(car).await;
        paid += (snapshot.grid_energy_kwh - meter) * price_at(now - Duration::seconds(30)) / 1000.0;
        energy_seen += snapshot.grid_energy_kwh - meter;
        meter = snapshot.grid_energy_kwh;
        // The first cycle comes up to five minutes after plug-in: the car charges on its own until then.
        let settled = now > plugged_at + Duration::minutes(6);
        if snapshot.is_charging {
            charging_minutes += 1;
            // A switch just decided takes effect after the cloud's latency.
            // After its last block, a car short of its target is topped up until it reports it.
            let topping_up = plan
                .as_ref()
                .is_some_and(|p| p.intervals.iter().all(|i| i.end <= now))
                && level_before < 80.0;
            let allowed = covers(plan.as_ref(), now)
                || covers(previous_plan.as_ref(), now - minute())
                || topping_up;
            if settled && !allowed {
                outside_plan += 1;
            }
        } else if settled
            && covers(plan.as_ref(), now)
            && covers(plan.as_ref(), now - minute())
            && snapshot.battery_level_percent < 99.0
        {
            idle_in_plan += 1;
        }
        previous_plan = plan;
        level_before = snapshot.battery_level_percent;
    }
    let snapshot = env.sandbox.snapshot(car).expect("snapshot");
    let state = env.state(car).await;
    assert!(
        snapshot.battery_level_percent >= 80.0,
        "car at {} %",
        snapshot.battery_level_percent
    );
    assert!(state.battery_level.expect("level") >= 80);
    assert_eq!(outside_plan, 0, "charged outside the planned slots");
    assert_eq!(idle_in_plan, 0, "did not charge in a planned slot");
    assert!(
        charging_minutes < 6 * 60,
        "charged only part of the night ({charging_minutes} min)"
    );

    // Cheap slots: the night's energy cost less than the evening's average price.
    let night: Vec<f64> = real_prices()
        .iter()
        .filter(|p| p.start >= evening() && p.end <= morning())
        .map(|p| p.price_eur_mwh)
        .collect();
    let mean_night = night.iter().sum::<f64>() / night.len() as f64;
    let paid_per_mwh = paid / energy_seen * 1000.0;
    assert!(
        paid_per_mwh < mean_night,
        "paid {paid_per_mwh:.1} EUR/MWh, night mean {mean_night:.1}"
    );

    assert_eq!(state.is_plugged_in, Some(true));
    assert_eq!(state.connection_status, StatusLevel::Ok);
    assert_eq!(state.monitoring_status, StatusLevel::Ok);
    assert_eq!(state.steering_status, StatusLevel::Ok);
    assert_eq!(state.is_authenticated, Some(true));
    assert!(state.battery_at_plug_in.expect("battery at plug-in") < 32.0);
    assert!(
        state.current_state_last_updated_at.expect("updated") > morning() - Duration::minutes(6)
    );
    assert!(
        state.charge_state_last_updated_at.is_some() && state.last_monitoring_executed_at.is_some()
    );
    assert_eq!(
        (state.latitude, state.longitude),
        (Some(HOME.0), Some(HOME.1))
    );
    assert!(state.optimization_score.expect("optimization score") > 0.0);
    let day = state.consumption_last_day_kwh.expect("consumption");
    assert!(
        (day - snapshot.grid_energy_kwh).abs() < 0.01,
        "consumption {day} vs grid {}",
        snapshot.grid_energy_kwh
    );
    assert_eq!(
        state.consumption_last_week_kwh,
        state.consumption_last_month_kwh
    );
    env.db.drop_database().await;
}

// ---- (b) minimum level, boost, pause, unplug --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_whose_inputs_hold_is_kept_and_written_back_unchanged() {
    let env = Env::new(Db::sqlite().await, evening()).await;
    let worker = env.worker("w1");
    let car = env.car(30.0).await;
    env.sandbox.plug_in(car).expect("plug in");
    let first = worker.run_once().await.expect("run_once");
    assert_eq!((first.completed, first.replanned), (1, 1));
    let plan = env.plan(car).await.expect("planned at plug-in");
    // Stopped, waiting for the night's cheap slots: nothing the plan depends on changes.
    let mut replanned = 0;
    for _ in 0..30 {
        env.clock.advance(minute());
        let stats = worker.run_once().await.expect("run_once");
        replanned += stats.replanned;
    }
    assert_eq!(replanned, 0, "the evening's cycles keep the plug-in plan");
    assert_eq!(env.plan(car).await, Some(plan));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_charge_target_min_charges_at_once() {
    let env = Env::new(Db::sqlite().await, evening()).await;
    let worker = env.worker("w1");
    let car = env.car(8.0).await;
    env.sandbox.plug_in(car).expect("plug in");
    drain(&worker).await;
    assert_eq!(
        env.state(car).await.current_mode.as_deref(),
        Some("min_level")
    );
    // Evening prices are the day's highest, yet the car charges until it has its 20 %.
    loop {
        env.tick(&worker, minute()).await;
        let snapshot = env.sandbox.snapshot(car).expect("snapshot");
        if snapshot.battery_level_percent >= 20.0 {
            break;
        }
        assert!(
            snapshot.is_charging,
            "charging below the minimum at {}",
            env.now()
        );
        assert!(
            env.now() < evening() + Duration::hours(2),
            "minimum reached in time"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boost_starts_within_one_cycle_and_ends_when_full() {
    let env = Env::new(Db::sqlite().await, evening()).await;
    let worker = env.worker("w1");
    let car = env.car(60.0).await;
    env.sandbox.set_charge_limit_in_car(car, 85).expect("limit");
    env.sandbox.plug_in(car).expect("plug in");
    drain(&worker).await;
    env.tick(&worker, minute()).await;
    assert!(
        !env.sandbox.snapshot(car).expect("snapshot").is_charging,
        "smart charging holds the car in the evening"
    );
    assert_eq!(env.state(car).await.boost_state, BoostState::Available);

    let asked = env.now();
    env.change_settings(car, move |s| s.boost_requested_at = Some(asked))
        .await;
    env.tick(&worker, Duration::seconds(10)).await;
    let state = env.state(car).await;
    assert_eq!(state.boost_state, BoostState::Requested);
    assert_eq!(state.last_boost_triggered_at, Some(env.now()));
    assert_eq!(
        env.vehicle(car).await.settings.boost_requested_at,
        None,
        "request taken up"
    );
    env.tick(&worker, minute()).await;
    assert!(
        env.sandbox.snapshot(car).expect("snapshot").is_charging,
        "boost charges within one cycle"
    );
    assert_eq!(env.state(car).await.boost_state, BoostState::Ongoing);
    assert_eq!(env.state(car).await.current_mode.as_deref(), Some("boost"));

    while env.state(car).await.boost_state == BoostState::Ongoing {
        env.tick(&worker, minute()).await;
        assert!(env.now() < asked + Duration::hours(4), "boost ends");
    }
    let state = env.state(car).await;
    assert!(
        env.sandbox
            .snapshot(car)
            .expect("snapshot")
            .battery_level_percent
            >= 84.5
    );
    assert_eq!(state.last_boost_end_reason.as_deref(), Some("completed"));
    assert!(state.last_boost_ended_at.expect("ended") > asked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn armed_boost_fires_at_the_next_plug_in_and_is_cleared() {
    let env = Env::new(Db::sqlite().await, evening()).await;
    let worker = env.worker("w1");
    let car = env.car(40.0).await;
    drain(&worker).await;
    env.change_settings(car, |s| s.boost_for_next_session = true)
        .await;
    env.tick(&worker, minute()).await;
    assert!(
        env.vehicle(car).await.settings.boost_for_next_session,
        "armed until a plug-in"
    );
    assert_eq!(env.state(car).await.boost_state, BoostState::Unavailable);

    env.sandbox.plug_in(car).expect("plug in");
    env.tick(&worker, Duration::minutes(5)).await;
    let record = env.vehicle(car).await;
    assert_eq!(record.state.boost_state, BoostState::Requested);
    assert!(
        !record.settings.boost_for_next_session,
        "cleared once fired"
    );
    for _ in 0..10 {
        env.tick(&worker, minute()).await;
        assert!(
            env.sandbox.snapshot(car).expect("snapshot").is_charging,
            "boost keeps the car charging"
        );
    }
    assert_eq!(env.state(car).await.boost_state, BoostState::Ongoing);
    env.sandbox.unplug(car).expect("unplug");
    env.tick(&worker, minute()).await;
    let state = env.state(car).await;
    assert_eq!(state.boost_state, BoostState::Unavailable);
    assert_eq!(state.last_boost_end_reason.as_deref(), Some("unplugged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_charging_and_the_plan_resumes_after_it() {
    // 01:00 in Berlin: cheap night hours, so the plan charges now.
    let start = evening() + Duration::hours(7);
    let env = Env::new(Db::sqlite().await, start).await;
    let worker = env.worker("w1");
    let car = env.car(20.0).await;
    env.sandbox.plug_in(car).expect("plug in");
    drain(&worker).await;
    // Find a moment the plan charges.
    while !env.sandbox.snapshot(car).expect("snapshot").is_charging
        || !covers(env.plan(car).await.as_ref(), env.now())
    {
        env.tick(&worker, minute()).await;
        assert!(
            env.now() < start + Duration::hours(3),
            "the night plan charges"
        );
    }
    let until = env.now() + Duration::minutes(30);
    env.change_settings(car, move |s| s.pause_power_until = Some(until))
        .await;
    env.tick(&worker, Duration::seconds(5)).await;
    assert_eq!(env.state(car).await.current_mode.as_deref(), Some("paused"));
    env.tick(&worker, minute()).await;
    while env.now() < until {
        assert!(
            !env.sandbox.snapshot(car).expect("snapshot").is_charging,
            "paused at {}",
            env.now()
        );
        env.tick(&worker, minute()).await;
    }
    let mut resumed = false;
    while env.now() < morning() {
        env.tick(&worker, minute()).await;
        resumed |= env.sandbox.snapshot(car).expect("snapshot").is_charging;
    }
    assert!(resumed, "the plan charges again after the pause");
    assert!(
        env.sandbox
            .snapshot(car)
            .expect("snapshot")
            .battery_level_percent
            >= 80.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugging_mid_plan_closes_the_session_with_its_energy_and_cost() {
    let env = Env::new(Db::sqlite().await, evening() - Duration::minutes(1)).await;
    let worker = env.worker("w1");
    let car = env.car(30.0).await;
    drain(&worker).await;
    env.clock.set(evening());
    env.sandbox.plug_in(car).expect("plug in");
    let start_meter = env.sandbox.snapshot(car).expect("snapshot").grid_energy_kwh;
    let mut meter = start_meter;
    let mut cost = 0.0;
    let unplug_at = evening() + Duration::hours(10);
    while env.now() < unplug_at {
        env.tick(&worker, minute()).await;
        let m = env.sandbox.snapshot(car).expect("snapshot").grid_energy_kwh;
        cost += (m - meter) * price_at(env.now() - Duration::seconds(30)) / 1000.0;
        meter = m;
    }
    env.sandbox.unplug(car).expect("unplug");
    let energy = env.sandbox.snapshot(car).expect("snapshot").grid_energy_kwh - start_meter;
    env.tick(&worker, Duration::minutes(5)).await;

    let (total, sessions) = {
        env.store()
            .list_sessions(
                env.org,
                Some(car),
                evening() - Duration::days(1),
                morning(),
                10,
                0,
            )
            .await
            .expect("sessions")
    };
    assert_eq!(total, 1);
    let session = &sessions[0];
    assert!(session.unplug_time.is_some());
    assert!(energy > 5.0, "the car charged before unplugging");
    assert!(
        (session.data.energy_charged_kwh - energy).abs() < 1e-6,
        "{} vs {energy}",
        session.data.energy_charged_kwh
    );
    assert!(
        (session.data.actual_cost_eur - cost).abs() <= 0.02 * cost,
        "{} vs {cost}",
        session.data.actual_cost_eur
    );
    assert!(
        session.data.baseline_cost_eur > session.data.actual_cost_eur,
        "smart charging saved money"
    );
    assert_eq!(
        session.data.session_outcome.as_deref(),
        Some("unplugged_early")
    );
    // The car charged on its own from plug-in until the first cycle saw it.
    let initial = session.data.initial_soc_pct.expect("initial level");
    assert!((30.0..32.0).contains(&initial), "initial level {initial}");
    let state = env.state(car).await;
    assert_eq!(state.is_plugged_in, Some(false));
    assert_eq!(state.actual_steering_state, "unplugged");
    assert_eq!(state.current_mode.as_deref(), Some("not_plugged_in"));
}

// ---- (c) failures, fallback, revocation ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_commands_warn_then_error_and_the_fallback_lets_the_car_charge() {
    let env = Env::new(Db::sqlite().await, evening()).await;
    let worker = env.worker("w1");
    let car = env.car(30.0).await;
    let broken = FailureProfile {
        command_failure_rate: 1.0,
        ..FailureProfile::none()
    };
    env.sandbox
        .set_failures(FailureScope::Vehicle(car), broken)
        .expect("failures");
    env.sandbox.plug_in(car).expect("plug in");
    drain(&worker).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        env.tick(&worker, minute()).await;
        let state = env.state(car).await;
        if statuses.last() != Some(&state.steering_status) {
            statuses.push(state.steering_status);
        }
    }
    assert_eq!(
        statuses,
        vec![StatusLevel::Warning, StatusLevel::Error],
        "steering status went warning → error"
    );
    let state = env.state(car).await;
    assert_eq!(state.current_mode.as_deref(), Some("fallback"));
    assert!(
        env.sandbox.snapshot(car).expect("snapshot").is_charging,
        "the fallback lets the car charge"
    );
    let commands = { env.store().list_commands(car).await.expect("commands") };
    // Retries of a failed call reuse its key (the cloud did not consume it).
    assert!(
        !commands.is_empty() && commands.iter().all(|c| c.outcome == "failed"),
        "{commands:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_authorisation_needs_action_until_restored() {
    let env = Env::new(Db::sqlite().await, evening()).await;
    let worker = env.worker("w1");
    let car = env.car(50.0).await;
    drain(&worker).await;
    assert_eq!(env.state(car).await.is_authenticated, Some(true));
    env.sandbox.revoke_authorization(car).expect("revoke");
    env.tick(&worker, Duration::minutes(5)).await;
    let state = env.state(car).await;
    assert_eq!(state.is_authenticated, Some(false));
    assert_eq!(state.lifecycle_state, "error");
    assert!(
        state
            .lifecycle_error
            .expect("lifecycle error")
            .contains("revoked")
    );
    assert!(state.action_needed);
    assert_eq!(state.connection_status, StatusLevel::Error);

    env.sandbox.restore_authorization(car).expect("restore");
    env.tick(&worker, Duration::minutes(15)).await;
    let state = env.state(car).await;
    assert_eq!(state.is_authenticated, Some(true));
    assert_eq!(state.lifecycle_state, "authenticated");
    assert!(!state.action_needed && state.lifecycle_error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_sandbox_car_is_registered_from_its_record() {
    let env = Env::new(Db::sqlite().await, evening()).await;
    let worker = env.worker("w1");
    let car = env.car(50.0).await;
    env.sandbox.remove_vehicle(car).expect("forget the car");
    drain(&worker).await;
    let snapshot = env.sandbox.snapshot(car).expect("registered");
    assert!(!snapshot.plugged_in);
    assert_eq!(snapshot.spec.battery_capacity_kwh, 60.0);
    assert_eq!(env.state(car).await.connection_status, StatusLevel::Ok);
}

// ---- (d) two workers, takeover --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_a_thousand_cars_and_take_over_a_killed_ones() {
    let db = match Db::postgres().await {
        Some(pg) => pg,
        None => Db::sqlite().await,
    };
    let env = Env::new(db, evening() - Duration::minutes(10)).await;
    let mut cars = Vec::new();
    for k in 0..1000 {
        cars.push(env.car(25.0 + f64::from(k % 40)).await);
    }
    let a = env.worker("worker-a");
    let b = env.worker("worker-b");
    tokio::join!(drain(&a), drain(&b));
    env.clock.set(evening());
    for car in &cars {
        env.sandbox.plug_in(*car).expect("plug in");
    }
    for _ in 0..20 {
        env.clock.advance(minute());
        tokio::join!(drain(&a), drain(&b));
    }
    let held_back = cars
        .iter()
        .filter(|c| !env.sandbox.snapshot(**c).expect("snapshot").is_charging)
        .count();
    assert!(
        held_back > 500,
        "most cars wait for cheaper slots ({held_back} stopped)"
    );

    // Worker C is killed while its commands are in flight: they reached the cars, their outcome
    // was never written, and C's leases stay until they expire.
    let hanging = Probe::new(&env, true);
    let c = Arc::new(env.worker_with("worker-c", hanging.clouds()));
    // Replug a few cars: they charge on their own again and need a stop.
    let replugged: Vec<Uuid> = cars.iter().take(40).copied().collect();
    for car in &replugged {
        env.sandbox.unplug(*car).expect("unplug");
    }
    env.clock.advance(Duration::minutes(6));
    tokio::join!(drain(&a), drain(&b));
    for car in &replugged {
        env.sandbox.plug_in(*car).expect("plug in");
        // As the sandbox endpoints (and a cloud's webhook) do: the car is due at once, so worker
        // C's batch holds the replugged cars whatever order the others are due in.
        env.store().wake_vehicle(env.org, *car).await.expect("wake");
    }
    env.clock.advance(Duration::minutes(6));
    let killed = tokio::spawn({
        let c = c.clone();
        async move { c.run_once().await }
    });
    let wanted = 8;
    while hanging.commands.load(Ordering::SeqCst) < wanted {
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            hanging.reached.notified(),
        )
        .await
        .expect("worker C sends commands");
    }
    killed.abort();
    let _ = killed.await;
    drop(c);
    let in_flight: Vec<String> = hanging
        .per_key
        .lock()
        .expect("lock")
        .keys()
        .cloned()
        .collect();

    // The survivors use their own probe, to see what they send.
    let probe = Probe::new(&env, false);
    let clouds = probe.clouds();
    let a = env.worker_with("worker-a", clouds.clone());
    let b = env.worker_with("worker-b", clouds);
    tokio::join!(drain(&a), drain(&b));
    let leased_by_c: HashSet<Uuid> = {
        let commands = commands_of(&env, &cars).await;
        commands
            .iter()
            .filter(|c| c.worker_id == "worker-c")
            .map(|c| c.vehicle_id)
            .collect()
    };
    assert!(!leased_by_c.is_empty());
    // Past the lease, the survivors take C's cars over and re-derive the same decisions.
    for _ in 0..5 {
        env.clock.advance(minute());
        tokio::join!(drain(&a), drain(&b));
    }
    for key in &in_flight {
        assert_eq!(
            probe.per_key.lock().expect("lock").get(key),
            None,
            "{key} was sent again after the takeover"
        );
    }
    for car in &leased_by_c {
        let state = env.state(*car).await;
        assert!(
            state.last_monitoring_executed_at.expect("monitored")
                > env.now() - Duration::minutes(5),
            "taken over"
        );
        assert!(
            !env.sandbox.snapshot(*car).expect("snapshot").is_charging,
            "the killed worker's stop held"
        );
    }

    let commands = commands_of(&env, &cars).await;
    let mut owners: HashMap<(Uuid, i64), HashSet<String>> = HashMap::new();
    let mut keys = HashSet::new();
    for command in &commands {
        owners
            .entry((command.vehicle_id, command.lease_epoch))
            .or_default()
            .insert(command.worker_id.clone());
        assert!(
            keys.insert(command.idempotency_key.clone()),
            "duplicate key {}",
            command.idempotency_key
        );
    }
    assert!(
        owners.values().all(|workers| workers.len() == 1),
        "a car was commanded by two workers in one epoch"
    );
    let by_worker: HashSet<&str> = commands.iter().map(|c| c.worker_id.as_str()).collect();
    assert!(
        by_worker.contains("worker-a") && by_worker.contains("worker-b"),
        "both workers steered"
    );
    // No sandbox key acted twice: every key reached the cloud once at most.
    assert!(
        probe
            .per_key
            .lock()
            .expect("lock")
            .values()
            .all(|n| *n == 1)
    );
    env.db.drop_database().await;
}

// ---- the call budget --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_call_budget_is_never_exceeded_and_every_car_is_still_steered() {
    let env = Env::new(Db::sqlite().await, evening()).await;
    let log = Probe::new(&env, false);
    let budget = voltplan_worker::budget::CallBudget::per_minute(30.0);
    let worker = env.worker_with(
        "budgeted",
        log.clouds().with_budget(SANDBOX_CLOUD.id, budget),
    );
    // 80 cars plug in at once and start charging on their own: each needs a read and a stop,
    // far more than 30 calls a minute allow at first.
    let mut cars = Vec::new();
    for k in 0..80 {
        let car = env.car(35.0 + f64::from(k % 20)).await;
        env.sandbox.plug_in(car).expect("plug in");
        cars.push(car);
    }
    let mut deferred = 0;
    for _ in 0..(40 * 6) {
        loop {
            let stats = worker.run_once().await.expect("run_once");
            assert_eq!(stats.failed, 0);
            deferred += stats.deferred;
            if stats.claimed == 0 {
                break;
            }
        }
        env.clock.advance(Duration::seconds(10));
    }
    assert!(deferred > 80, "the budget deferred cycles: {deferred}");

    // In every minute-long window: at most the burst plus a minute's worth.
    let calls = log.calls.lock().expect("lock").clone();
    let limit = (budget.burst + budget.calls_per_minute).floor() as usize;
    for (k, (start, _)) in calls.iter().enumerate() {
        let in_window = calls[k..]
            .iter()
            .take_while(|(at, _)| *at < *start + minute())
            .count();
        assert!(
            in_window <= limit,
            "{in_window} calls in the minute from {start} (limit {limit})"
        );
    }
    // …and yet within 40 minutes every car was read, planned and stopped for the cheaper night.
    for car in &cars {
        let state = env.state(*car).await;
        assert!(
            state.last_monitoring_executed_at.is_some(),
            "{car} was read"
        );
        assert!(env.plan(*car).await.is_some(), "{car} has a plan");
        assert!(
            !env.sandbox.snapshot(*car).expect("snapshot").is_charging,
            "{car} waits for the cheap night slots"
        );
    }
    let stops = calls.iter().filter(|(_, kind)| *kind == "stop").count();
    assert!(stops >= 80, "every car got its stop: {stops}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evening_scenario_holds_on_every_backend() {
    for (name, db) in Db::all().await {
        let env = Env::new(db, evening()).await;
        let worker = env.worker("w1");
        let car = env.car(30.0).await;
        env.sandbox.plug_in(car).expect("plug in");
        while env.now() < morning() {
            env.tick(&worker, Duration::minutes(1)).await;
        }
        let level = env
            .sandbox
            .snapshot(car)
            .expect("snapshot")
            .battery_level_percent;
        assert!(level >= 80.0, "{name}: car at {level} %");
        assert_eq!(
            env.state(car).await.steering_status,
            StatusLevel::Ok,
            "{name}"
        );
        env.db.drop_database().await;
    }
}
