//! Fault test: a worker stopped abruptly with commands in flight, and the worker that takes its
//! leases over. Real store (SQLite always, PostgreSQL when `VOLTPLAN_TEST_POSTGRES_URL` is set),
//! the sandbox cloud, a manual clock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Duration;
use uuid::Uuid;
use voltplan_store::fleet::CommandRecord;

mod common;
use common::probe::Probe;
use common::*;

/// How long the test waits for the stopped worker to reach its commands (real time).
const REACH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_left_in_flight_by_a_stopped_worker_are_resolved_and_never_sent_twice() {
    for (name, db) in Db::all().await {
        let env = Env::new(db, evening()).await;
        // Plugged in on an expensive evening: each car charges on its own and needs a stop.
        let mut cars = Vec::new();
        for k in 0..6 {
            let car = env.car(40.0 + f64::from(k)).await;
            env.sandbox.plug_in(car).expect("plug in");
            cars.push(car);
        }
        // Worker A is stopped mid-command: half its stops reached their car, half did not.
        let undelivered: HashSet<Uuid> = cars.iter().take(3).copied().collect();
        let delivered: Vec<Uuid> = cars.iter().skip(3).copied().collect();
        let stalled = Probe::hanging_before(&env, true, undelivered.clone());
        let a = Arc::new(env.worker_with("worker-a", stalled.clouds()));
        let run = tokio::spawn({
            let a = a.clone();
            async move { a.run_once().await }
        });
        while stalled.commands.load(Ordering::SeqCst) < cars.len() {
            tokio::time::timeout(REACH_DEADLINE, stalled.reached.notified())
                .await
                .unwrap_or_else(|_| panic!("{name}: worker A reaches every car's command"));
        }
        run.abort();
        let _ = run.await;
        drop(a);

        let left_open = commands_of(&env, &cars).await;
        assert_eq!(left_open.len(), cars.len(), "{name}: one command per car");
        for command in &left_open {
            assert_eq!(command.outcome, "sent", "{name}: recorded before sending");
            let received = received_keys(&env, command.vehicle_id);
            let expected = usize::from(!undelivered.contains(&command.vehicle_id));
            assert_eq!(
                received.get(&command.idempotency_key).copied().unwrap_or(0),
                expected,
                "{name}: what reached the sandbox"
            );
        }

        // Past A's lease, worker B takes the cars over.
        let b = env.worker("worker-b");
        env.tick(&b, Duration::minutes(3)).await;
        for command in &left_open {
            let now = find(&env, &command.idempotency_key).await;
            if undelivered.contains(&command.vehicle_id) {
                assert_eq!(now.outcome, "failed", "{name}: never reached the car");
                assert_eq!(
                    now.detail.as_deref(),
                    Some(voltplan_worker::steer::LEFT_BY_EARLIER_LEASE),
                    "{name}"
                );
            } else {
                assert_eq!(now.outcome, "confirmed", "{name}: the car stopped");
            }
        }
        // B stops the cars A never reached, with keys of its own; a few cycles later every car
        // is held back and nothing is left open.
        for _ in 0..3 {
            env.tick(&b, minute()).await;
        }
        for car in &cars {
            assert!(
                !env.sandbox.snapshot(*car).expect("snapshot").is_charging,
                "{name}: {car} waits for the night"
            );
        }
        let after = commands_of(&env, &cars).await;
        for command in &after {
            assert!(
                command.lease_epoch > 1 || !matches!(command.outcome.as_str(), "sent" | "accepted"),
                "{name}: {} left {}",
                command.idempotency_key,
                command.outcome
            );
        }
        assert!(
            after.iter().any(|c| c.worker_id == "worker-b"),
            "{name}: B stopped the cars A never reached"
        );
        // The sandbox's own record: no key reached it twice, A's undelivered keys never.
        for car in &cars {
            for (key, times) in received_keys(&env, *car) {
                assert_eq!(times, 1, "{name}: {key} reached the sandbox {times} times");
            }
        }
        for command in left_open
            .iter()
            .filter(|c| undelivered.contains(&c.vehicle_id))
        {
            assert!(
                !received_keys(&env, command.vehicle_id).contains_key(&command.idempotency_key),
                "{name}: an undelivered key was sent after the takeover"
            );
        }
        assert!(
            delivered
                .iter()
                .all(|car| received_keys(&env, *car).len() == 1)
        );
        env.db.drop_database().await;
    }
}

async fn find(env: &Env, key: &str) -> CommandRecord {
    env.store()
        .find_command(key)
        .await
        .expect("find command")
        .expect("recorded")
}

/// How often each idempotency key reached the sandbox for this car.
fn received_keys(env: &Env, car: Uuid) -> HashMap<String, usize> {
    let mut keys = HashMap::new();
    for received in env.sandbox.received_commands(car).expect("sandbox car") {
        *keys.entry(received.idempotency_key).or_default() += 1;
    }
    keys
}
