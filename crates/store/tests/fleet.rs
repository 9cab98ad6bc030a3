//! The fleet store's batch finish: every backend writes the same thing whether a vehicle takes
//! the bulk path (PostgreSQL's `UNNEST` statements) or the per-row one, and fences lost leases.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{databases, fleet};
use uuid::Uuid;
use voltplan_store::Store;
use voltplan_store::fleet::{
    ClaimedVehicle, CommandOutcome, CommandRecord, CycleOutcome, ReadingRecord, SessionData,
    SessionRecord,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 18, 0, 0).unwrap()
}

async fn claim_all(store: &dyn Store, worker: &str, now: DateTime<Utc>) -> Vec<ClaimedVehicle> {
    let mut claimed = store
        .claim_vehicles(worker, now, Duration::minutes(2), 100)
        .await
        .unwrap();
    claimed.sort_by_key(|c| c.vehicle.id);
    claimed
}

fn outcome(c: &ClaimedVehicle, level: i32) -> CycleOutcome {
    let mut state = c.vehicle.state.clone();
    state.battery_level = Some(level);
    CycleOutcome {
        state,
        runtime: serde_json::json!({"level": level}).to_string(),
        plan: Some(serde_json::json!({"mode": "smart", "level": level}).to_string()),
        next_cycle_at: t0() + Duration::minutes(5),
        clear_boost_for_next_session: false,
        clear_boost_request: None,
        sessions: vec![SessionRecord {
            id: Uuid::now_v7(),
            org_id: c.vehicle.org_id,
            vehicle_id: c.vehicle.id,
            plug_in_time: t0(),
            unplug_time: None,
            data: SessionData {
                energy_charged_kwh: f64::from(level),
                ..SessionData::default()
            },
        }],
        reading: Some(ReadingRecord {
            vehicle_id: c.vehicle.id,
            org_id: c.vehicle.org_id,
            at: t0(),
            battery_level: Some(f64::from(level)),
            is_plugged_in: Some(true),
            is_charging: Some(level % 2 == 0),
            is_at_home: None,
            power_w: Some(11_000.0),
            energy_kwh: Some(0.5),
            price_eur_mwh: Some(-3.5),
            customer_price_per_mwh: Some(210.0),
        }),
        command_outcomes: Vec::new(),
        events: Vec::new(),
        wake_grid_group: None,
    }
}

async fn record_command(store: &dyn Store, c: &ClaimedVehicle, key: &str) {
    let recorded = store
        .record_command(&CommandRecord {
            idempotency_key: key.to_owned(),
            org_id: c.vehicle.org_id,
            vehicle_id: c.vehicle.id,
            command: "stop_charging".into(),
            worker_id: c.lease.worker_id.clone(),
            lease_epoch: c.lease.epoch,
            issued_at: t0(),
            outcome: "sent".into(),
            detail: None,
        })
        .await
        .unwrap();
    assert!(recorded);
}

#[tokio::test]
async fn a_batch_writes_every_held_vehicle_and_nothing_of_a_lost_lease_but_its_commands() {
    for db in databases().await {
        let store = db.store.as_ref();
        let (org, _, ids) = fleet(store, 3, t0()).await;
        let claimed = claim_all(store, "w1", t0()).await;
        assert_eq!(claimed.len(), 3, "{}", db.name);

        let mut batch = Vec::new();
        for (k, c) in claimed.iter().enumerate() {
            let key = format!("{}:k", c.vehicle.id);
            record_command(store, c, &key).await;
            let mut out = outcome(c, 40 + k as i32);
            out.command_outcomes.push(CommandOutcome {
                idempotency_key: key,
                outcome: "accepted".into(),
                detail: Some(format!("car {k}")),
            });
            let mut lease = c.lease.clone();
            if k == 2 {
                // Another worker has claimed it since: an older epoch.
                lease.epoch -= 1;
            }
            batch.push((lease, out));
        }
        let written = store.finish_cycles(&batch).await.unwrap();
        assert_eq!(written, vec![true, true, false], "{}", db.name);

        for (k, c) in claimed.iter().enumerate() {
            let v = store.get_vehicle_in_org(org, c.vehicle.id).await.unwrap();
            let (_, sessions) = store
                .list_sessions(
                    org,
                    Some(c.vehicle.id),
                    t0(),
                    t0() + Duration::days(1),
                    10,
                    0,
                )
                .await
                .unwrap();
            let readings = store
                .list_readings(org, c.vehicle.id, t0(), t0() + Duration::days(1))
                .await
                .unwrap();
            let command = store
                .find_command(&format!("{}:k", c.vehicle.id))
                .await
                .unwrap()
                .unwrap();
            // The cloud's answer is a fact whoever holds the lease now.
            assert_eq!(command.outcome, "accepted", "{}", db.name);
            assert_eq!(command.detail, Some(format!("car {k}")), "{}", db.name);
            let plan = store.vehicle_plan(org, c.vehicle.id).await.unwrap();
            if k < 2 {
                let level = 40 + k as i32;
                assert_eq!(v.state.battery_level, Some(level), "{}", db.name);
                assert_eq!(plan.unwrap()["level"], level, "{}", db.name);
                assert_eq!(sessions.len(), 1, "{}", db.name);
                assert_eq!(sessions[0], batch[k].1.sessions[0], "{}", db.name);
                assert_eq!(
                    readings,
                    vec![batch[k].1.reading.clone().unwrap()],
                    "{}",
                    db.name
                );
            } else {
                assert_eq!(v.state.battery_level, None, "{}", db.name);
                assert_eq!(plan, None, "{}", db.name);
                assert!(sessions.is_empty(), "{}", db.name);
                assert!(readings.is_empty(), "{}", db.name);
            }
        }
        // The two finished vehicles are released and due at next_cycle_at; the lost one still
        // belongs to its lease.
        assert!(
            store
                .claim_vehicles("w2", t0() + Duration::minutes(1), Duration::minutes(2), 10)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            db.name
        );
        let later = claim_all(store, "w2", t0() + Duration::minutes(6)).await;
        assert_eq!(later.len(), 3, "{}", db.name);
        assert_eq!(
            later.iter().map(|c| c.vehicle.id).collect::<Vec<_>>(),
            {
                let mut ids = ids.clone();
                ids.sort();
                ids
            },
            "{}",
            db.name
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_boost_request_renewed_during_a_cycle_survives_it() {
    for db in databases().await {
        let store = db.store.as_ref();
        let (org, user, ids) = fleet(store, 2, t0()).await;
        let first = t0() - Duration::minutes(1);
        for id in &ids {
            store
                .update_vehicle(
                    org,
                    user,
                    *id,
                    Box::new(move |v| {
                        v.settings.boost_requested_at = Some(first);
                        Ok(())
                    }),
                )
                .await
                .unwrap();
        }
        let claimed = claim_all(store, "w1", t0()).await;
        // The partner asks again for the first car while the cycle that takes up `first` runs.
        let renewed = t0() + Duration::seconds(10);
        store
            .update_vehicle(
                org,
                user,
                claimed[0].vehicle.id,
                Box::new(move |v| {
                    v.settings.boost_requested_at = Some(renewed);
                    Ok(())
                }),
            )
            .await
            .unwrap();
        let batch: Vec<_> = claimed
            .iter()
            .map(|c| {
                let mut out = outcome(c, 50);
                out.clear_boost_request = Some(first);
                (c.lease.clone(), out)
            })
            .collect();
        assert_eq!(
            store.finish_cycles(&batch).await.unwrap(),
            vec![true, true],
            "{}",
            db.name
        );
        let renewed_car = store
            .get_vehicle_in_org(org, claimed[0].vehicle.id)
            .await
            .unwrap();
        let taken_car = store
            .get_vehicle_in_org(org, claimed[1].vehicle.id)
            .await
            .unwrap();
        assert_eq!(
            renewed_car.settings.boost_requested_at,
            Some(renewed),
            "{}",
            db.name
        );
        assert_eq!(taken_car.settings.boost_requested_at, None, "{}", db.name);
        assert_eq!(taken_car.state.battery_level, Some(50), "{}", db.name);
        // The renewed request made its car due at once; the other waits for its next cycle.
        let due = store
            .claim_vehicles("w2", t0() + Duration::seconds(20), Duration::minutes(2), 10)
            .await
            .unwrap();
        assert_eq!(
            due.iter().map(|c| c.vehicle.id).collect::<Vec<_>>(),
            vec![claimed[0].vehicle.id],
            "{}",
            db.name
        );
        db.cleanup().await;
    }
}
