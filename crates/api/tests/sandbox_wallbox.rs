//! The sandbox wallbox (`voltplan-sandbox-charger`: real OCPP 1.6J over a real WebSocket, a car
//! behind it) charging by the worker's plan against a real server, on SQLite and PostgreSQL: the
//! whole loop a utility runs, with no Python needed.

mod common;

use std::time::Duration;

use chrono::TimeZone;
use common::wallbox::wallbox_path;
use common::{TestServer, backends};
use serde_json::json;
use tokio::time::Instant;
use voltplan_sandbox_charger::{Car, ChargerConfig, SimulatedCharger, Snapshot};

/// Polls the simulated wallbox until `check` holds (30 s).
async fn until(
    charger: &SimulatedCharger,
    what: &str,
    check: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let snapshot = charger.snapshot();
        if check(&snapshot) {
            return snapshot;
        }
        assert!(Instant::now() < deadline, "never {what}: {snapshot:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_sandbox_wallbox_charges_in_the_cheap_hour_and_the_session_matches_its_meter() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        server.cheap_night_hour_prices().await;
        let tenant = server.tenant("Stadtwerke").await;
        let user = server.create_user(&tenant, "driver@example.com").await;
        let (wallbox, created) = server
            .create_wallbox(
                &tenant,
                user,
                json!({"price_zone": "DE_LU", "is_smart_optimization_active": true,
                       "charge_target_min": 0, "charge_deadline_at": "07:00:00",
                       "session_energy_kwh": 10.0}),
            )
            .await;
        // The driver's contract adds a flat 0.12 €/kWh (grid fee and markup, no VAT): it moves
        // no charging, and the bill is the wholesale cost plus 0.12 € per metered kWh.
        let (status, contract) = server
            .post(
                &tenant.token,
                &format!(
                    "/api/partners/v2.0/org/{}/users/{user}/energy-contracts",
                    tenant.org_id
                ),
                json!({"spot_markup_per_kwh": 0.02,
                       "tariff_components": [{"name": "grid fee", "price_per_kwh": 0.10}]}),
            )
            .await;
        assert_eq!(status, 200, "{contract}");
        let ocpp = &created["ocpp"];
        let mut config = ChargerConfig::new(
            server.base.replacen("http://", "ws://", 1) + "/ocpp",
            ocpp["charge_point_id"].as_str().unwrap(),
            ocpp["password"].as_str().unwrap(),
        );
        config.tick = Duration::from_millis(20);
        let charger = SimulatedCharger::spawn(config, server.clock.clone());
        let worker = server.wallbox_worker();
        until(&charger, "booted", |s| s.booted).await;

        charger.plug_in(Car {
            capacity_kwh: 60.0,
            soc_pct: 40.0,
            max_power_w: 11_000.0,
        });
        until(&charger, "a transaction", |s| s.transaction_id.is_some()).await;
        // The worker plans 10 kWh in the 02:00 UTC hour and sends the profile.
        let deadline = Instant::now() + Duration::from_secs(30);
        while charger.snapshot().profiles_received == 0 {
            worker.run_once().await.unwrap();
            assert!(Instant::now() < deadline, "no profile reached the wallbox");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.clock.advance(chrono::Duration::minutes(1));
        let held = until(&charger, "held at zero", |s| s.status == "SuspendedEVSE").await;
        assert_eq!(held.limit_w, Some(0.0));

        // Through the night on the simulated clock, in the wallbox's own 5-minute meter steps
        // around the cheap hour (its register is read where the energy is priced): it charges
        // in the cheap hour only.
        server.clock.set(
            chrono::Utc
                .with_ymd_and_hms(2026, 11, 27, 1, 50, 0)
                .unwrap(),
        );
        let org = voltplan_store::OrgScope::new(tenant.org_id);
        let mut charged_at_full_power = false;
        for _ in 0..16 {
            server.clock.advance(chrono::Duration::minutes(5));
            let now = server.clock_now();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let samples = server
                    .store
                    .list_meter_samples(
                        org,
                        wallbox,
                        "Energy.Active.Import.Register",
                        now,
                        now + chrono::Duration::seconds(1),
                    )
                    .await
                    .unwrap();
                if !samples.is_empty() {
                    break;
                }
                assert!(Instant::now() < deadline, "no meter reading at {now}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            charged_at_full_power |= charger.snapshot().power_w > 10_000.0;
        }
        assert!(
            charged_at_full_power,
            "it never charged at full power in the cheap hour"
        );
        server
            .clock
            .set(chrono::Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).unwrap());
        let done = until(&charger, "done", |s| s.status == "SuspendedEVSE").await;
        assert!((9_500.0..=10_600.0).contains(&done.meter_wh), "{done:?}");

        // The driver leaves; the session is the meter's energy, priced at 10 €/MWh.
        charger.unplug();
        until(&charger, "the transaction stopped", |s| {
            s.transaction_id.is_none()
        })
        .await;
        server.clock.advance(chrono::Duration::minutes(30));
        worker.run_once().await.unwrap();
        // A night later the morning's token is a new one.
        let token = server.token(&tenant.client_id, &tenant.client_secret).await;
        let (status, sessions) = server
            .get(
                &token,
                &format!(
                    "{}/sessions?from=2026-11-26&to=2026-11-28",
                    wallbox_path(tenant.org_id, user, wallbox)
                ),
            )
            .await;
        assert_eq!(status, 200, "{sessions}");
        let session = &sessions["items"][0];
        let energy = session["energy_charged_kwh"].as_f64().unwrap();
        assert!(
            (energy - (done.meter_wh / 1000.0).floor()).abs() <= 1.0,
            "{session} vs {done:?}"
        );
        // 10 €/MWh is a cent per kWh.
        let cost = session["actual_cost_eur"].as_f64().unwrap();
        assert!(
            (cost - energy * 0.01).abs() < energy * 0.001,
            "charged at the cheap price: {session}"
        );
        assert!(
            cost < energy * 0.1 * 1.2,
            "charged at the cheap price: {session}"
        );
        assert!(session["unplug_time"].is_string(), "{session}");
        assert_eq!(session["energy_contract_id"], contract["id"], "{session}");
        let customer = session["customer_cost"].as_f64().unwrap();
        assert!(
            (customer - (cost + 0.12 * energy)).abs() < 1e-6,
            "{session}"
        );
        let customer_savings = session["customer_savings"].as_f64().unwrap();
        // Charging at once at 100 €/MWh would have cost about ten times as much: the savings are
        // the organisation's too.
        let (status, savings) = server
            .get(
                &token,
                &format!(
                    "/api/partners/v2.0/org/{}/devices/savings?start_datetime=2026-11-26T00:00:00Z&end_datetime=2026-11-28T00:00:00Z",
                    tenant.org_id
                ),
            )
            .await;
        assert_eq!(status, 200, "{savings}");
        let saved = savings["total_savings"].as_f64().unwrap();
        assert!(
            saved > energy * 0.08 && saved < energy * 0.1,
            "{savings} for {energy} kWh"
        );
        assert_eq!(
            savings["electric_vehicle_savings"],
            savings["total_savings"]
        );
        // A flat surcharge moves no charging: the bill saves what the wholesale cost saves.
        assert!(
            (customer_savings - saved).abs() < 1e-3,
            "{session} {savings}"
        );
        drop(charger);
        server.stop().await;
    }
}

#[tokio::test]
async fn the_cars_level_at_plug_in_sets_what_the_session_delivers() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        server.cheap_night_hour_prices().await;
        let tenant = server.tenant("Stadtwerke").await;
        let user = server.create_user(&tenant, "driver@example.com").await;
        let home = server
            .create_building(&tenant, user, json!({"name": "Home"}))
            .await;
        // The driver's EV, at home: its cloud (here: the worker's state, written as it would)
        // says 40 % of 60 kWh, plugged in.
        let ev = server
            .create_ev(
                &tenant,
                user,
                json!({"building_id": home["id"], "battery_capacity_kwh": 60.0}),
            )
            .await;
        server
            .set_vehicle_state(
                common::id_of(&ev),
                json!({"battery_level": 40, "is_plugged_in": true, "reported_battery_capacity_kwh": 60.0,
                       "current_state_last_updated_at": "2026-11-26T11:55:00Z"}),
            )
            .await;
        // No energy set on the wallbox: 80 % by 07:00 of the car behind it.
        let (_, created) = server
            .create_wallbox(
                &tenant,
                user,
                json!({"price_zone": "DE_LU", "building_id": home["id"], "is_smart_optimization_active": true,
                       "charge_target_min": 0, "minimum_charge_limit": 80, "charge_deadline_at": "07:00:00"}),
            )
            .await;
        let ocpp = &created["ocpp"];
        let mut config = ChargerConfig::new(
            server.base.replacen("http://", "ws://", 1) + "/ocpp",
            ocpp["charge_point_id"].as_str().unwrap(),
            ocpp["password"].as_str().unwrap(),
        );
        config.tick = Duration::from_millis(20);
        let charger = SimulatedCharger::spawn(config, server.clock.clone());
        let worker = server.wallbox_worker();
        until(&charger, "booted", |s| s.booted).await;
        charger.plug_in(Car {
            capacity_kwh: 60.0,
            soc_pct: 40.0,
            max_power_w: 11_000.0,
        });
        until(&charger, "a transaction", |s| s.transaction_id.is_some()).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while charger.snapshot().profiles_received == 0 {
            worker.run_once().await.unwrap();
            assert!(Instant::now() < deadline, "no profile reached the wallbox");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Before the deadline (07:00 Berlin, 06:00 UTC) it has delivered what 40 → 80 % of 60 kWh
        // takes from the grid (24 kWh stored at 90 %: 26.7 kWh), not the 15 kWh of a wallbox
        // that knows nothing of the car. (After the deadline the profile expires and the car
        // charges on: the fail-safe.)
        server.clock.set(
            chrono::Utc
                .with_ymd_and_hms(2026, 11, 27, 5, 45, 0)
                .unwrap(),
        );
        let done = until(&charger, "done", |s| {
            s.status == "SuspendedEVSE" || s.status == "SuspendedEV"
        })
        .await;
        assert!((26_000.0..=27_500.0).contains(&done.meter_wh), "{done:?}");
        let car = done.car.unwrap();
        assert!((car.soc_pct - 80.0).abs() < 1.5, "{car:?}");
        drop(charger);
        server.stop().await;
    }
}
