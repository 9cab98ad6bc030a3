//! Grid groups (issue 15): CRUD and limits with every validation rule and the two-organisation
//! matrix, and a street of sandbox cars under a feeder limit with a §14a window, planned jointly
//! by the real worker — on SQLite and PostgreSQL.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use serde_json::{Value, json};
use uuid::Uuid;

fn groups_path(org: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/grid-groups")
}

fn group_path(org: Uuid, id: Uuid) -> String {
    format!("{}/{id}", groups_path(org))
}

#[tokio::test]
async fn groups_are_created_nested_limited_and_deleted() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let home = id_of(&s.create_building(&t, user, json!({"name": "Home"})).await);
        let car = id_of(&s.create_ev(&t, user, json!({})).await);

        let (status, list) = s.get(&t.token, &groups_path(t.org_id)).await;
        assert_eq!((status, list), (200, json!([])));

        let (status, feeder) = s
            .post(
                &t.token,
                &groups_path(t.org_id),
                json!({"name": "Feeder 7", "power_limit_w": 110_000}),
            )
            .await;
        assert_eq!(status, 200, "{feeder}");
        assert_eq!(feeder["parent_id"], Value::Null);
        assert_eq!(feeder["schedule"], json!([]));
        let feeder_id = id_of(&feeder);

        let (status, site) = s
            .post(
                &t.token,
                &groups_path(t.org_id),
                json!({"name": "Hauptstraße 1", "parent_id": feeder_id,
                       "building_ids": [home], "electric_vehicle_ids": [car],
                       "power_limit_w": 22_000,
                       "schedule": [{"start": "2026-11-27T03:00:00Z", "end": "2026-11-27T04:00:00Z", "power_limit_w": 4_200},
                                    {"start": "2026-11-27T01:00:00+01:00", "end": "2026-11-27T01:00:00Z", "power_limit_w": 8_400}]}),
            )
            .await;
        assert_eq!(status, 200, "{site}");
        assert_eq!(site["parent_id"], json!(feeder_id));
        assert_eq!(site["building_ids"], json!([home]));
        // Windows are stored in time order, in UTC.
        assert_eq!(site["schedule"][0]["start"], "2026-11-27T00:00:00Z");
        assert_eq!(site["schedule"][1]["power_limit_w"], 4_200);
        let site_id = id_of(&site);
        let (status, read) = s.get(&t.token, &group_path(t.org_id, site_id)).await;
        assert_eq!((status, &read), (200, &site));

        // PUT is partial.
        let (status, renamed) = s
            .put(
                &t.token,
                &group_path(t.org_id, site_id),
                json!({"name": "Hauptstraße 1–3"}),
            )
            .await;
        assert_eq!(status, 200, "{renamed}");
        assert_eq!(renamed["schedule"], site["schedule"]);
        assert_eq!(renamed["building_ids"], json!([home]));

        // The limits alone: the schedule is replaced, an absent default kept, null removes it.
        let limits = format!("{}/limits", group_path(t.org_id, site_id));
        let (status, got) = s.get(&t.token, &limits).await;
        assert_eq!(status, 200);
        assert_eq!(got["power_limit_w"], 22_000);
        let (status, set) = s
            .put(
                &t.token,
                &limits,
                json!({"schedule": [{"start": "2026-11-28T17:00:00Z", "end": "2026-11-28T19:00:00Z", "power_limit_w": 0}]}),
            )
            .await;
        assert_eq!(status, 200, "{set}");
        assert_eq!(set["power_limit_w"], 22_000);
        assert_eq!(set["schedule"].as_array().unwrap().len(), 1);
        let (status, set) = s
            .put(&t.token, &limits, json!({"power_limit_w": null}))
            .await;
        assert_eq!(status, 200, "{set}");
        assert_eq!(set["power_limit_w"], Value::Null);
        assert_eq!(set["schedule"][0]["power_limit_w"], 0);

        let (status, list) = s.get(&t.token, &groups_path(t.org_id)).await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 2);

        // Not planned yet: no joint plan.
        let (status, _) = s
            .get(
                &t.token,
                &format!("{}/joint-plan", group_path(t.org_id, feeder_id)),
            )
            .await;
        assert_eq!(status, 404);

        // A group with groups inside is not deleted.
        let (status, body) = s.delete(&t.token, &group_path(t.org_id, feeder_id)).await;
        assert_eq!(status, 409, "{body}");
        let (status, _) = s.delete(&t.token, &group_path(t.org_id, site_id)).await;
        assert_eq!(status, 204);
        let (status, _) = s.get(&t.token, &group_path(t.org_id, site_id)).await;
        assert_eq!(status, 404);
        let (status, _) = s.delete(&t.token, &group_path(t.org_id, feeder_id)).await;
        assert_eq!(status, 204);
        let (status, list) = s.get(&t.token, &groups_path(t.org_id)).await;
        assert_eq!((status, list), (200, json!([])));
        s.stop().await;
    }
}

#[tokio::test]
async fn every_validation_rule_names_its_field_and_writes_nothing() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let home = id_of(&s.create_building(&t, user, json!({"name": "Home"})).await);
        let car = id_of(&s.create_ev(&t, user, json!({})).await);
        let (b, bert) = s.tenant_with_user("Utility B").await;
        let their_home = id_of(&s.create_building(&b, bert, json!({"name": "Theirs"})).await);
        // A building's connection limit (Voltplan extension) is a power in watts.
        for bad in [json!(-1), json!(2_000_000_000), json!("22 kW")] {
            let (status, answer) = s
                .post(
                    &t.token,
                    &buildings_path(t.org_id, user),
                    json!({"name": "Shop", "power_limit_w": bad}),
                )
                .await;
            assert_eq!(status, 422, "{answer}");
            assert_eq!(invalid_fields(&answer), ["power_limit_w"]);
        }
        let (status, limited) = s
            .put(
                &t.token,
                &building_path(t.org_id, user, home),
                json!({"power_limit_w": 22_000}),
            )
            .await;
        assert_eq!(status, 200, "{limited}");
        assert_eq!(limited["power_limit_w"], 22_000);

        let (status, feeder) = s
            .post(
                &t.token,
                &groups_path(t.org_id),
                json!({"name": "Feeder", "building_ids": [home]}),
            )
            .await;
        assert_eq!(status, 200, "{feeder}");
        let feeder_id = id_of(&feeder);
        let (status, site) = s
            .post(
                &t.token,
                &groups_path(t.org_id),
                json!({"name": "Site", "parent_id": feeder_id}),
            )
            .await;
        assert_eq!(status, 200, "{site}");
        let site_id = id_of(&site);

        let window = |start: &str, end: &str, w: i64| json!({"start": start, "end": end, "power_limit_w": w});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({}), vec!["name"]),
            (json!({"name": "  "}), vec!["name"]),
            (json!({"name": "x".repeat(101)}), vec!["name"]),
            (
                json!({"name": "G", "power_limit_w": -1}),
                vec!["power_limit_w"],
            ),
            (
                json!({"name": "G", "power_limit_w": 2_000_000_000}),
                vec!["power_limit_w"],
            ),
            (
                json!({"name": "G", "power_limit_w": "11 kW"}),
                vec!["power_limit_w"],
            ),
            (json!({"name": "G", "colour": "red"}), vec!["colour"]),
            (json!({"name": "G", "parent_id": "nope"}), vec!["parent_id"]),
            (
                json!({"name": "G", "parent_id": Uuid::now_v7()}),
                vec!["parent_id"],
            ),
            (
                json!({"name": "G", "building_ids": "all"}),
                vec!["building_ids"],
            ),
            (
                json!({"name": "G", "building_ids": ["x"]}),
                vec!["building_ids"],
            ),
            // Listed by another group already.
            (
                json!({"name": "G", "building_ids": [home]}),
                vec!["building_ids.0"],
            ),
            // Another organisation's building, a building that does not exist.
            (
                json!({"name": "G", "building_ids": [their_home, Uuid::now_v7()]}),
                vec!["building_ids.0", "building_ids.1"],
            ),
            (
                json!({"name": "G", "electric_vehicle_ids": [car, car]}),
                vec!["electric_vehicle_ids.1"],
            ),
            (json!({"name": "G", "schedule": {}}), vec!["schedule"]),
            (
                json!({"name": "G", "schedule": [{"start": "2026-11-27T03:00:00Z"}]}),
                vec!["schedule.0.end", "schedule.0.power_limit_w"],
            ),
            (
                json!({"name": "G", "schedule": [window("2026-11-27T03:00:00Z", "2026-11-27T03:00:00Z", 1)]}),
                vec!["schedule.0.end"],
            ),
            (
                json!({"name": "G", "schedule": [window("2026-11-27T03:00:00", "2026-11-27T04:00:00Z", 1)]}),
                vec!["schedule.0.start"],
            ),
            (
                json!({"name": "G", "schedule": [window("2026-11-27T03:00:00Z", "2026-11-27T05:00:00Z", 1),
                                              window("2026-11-27T04:00:00Z", "2026-11-27T06:00:00Z", 1)]}),
                vec!["schedule.1.start"],
            ),
            (
                json!({"name": "G", "schedule": [window("2026-11-27T03:00:00Z", "2026-11-27T05:00:00Z", -5)]}),
                vec!["schedule.0.power_limit_w"],
            ),
        ];
        for (body, fields) in &cases {
            let (status, answer) = s.post(&t.token, &groups_path(t.org_id), body.clone()).await;
            assert_eq!(status, 422, "{body} → {answer}");
            assert_eq!(&invalid_fields(&answer), fields, "{body} → {answer}");
        }
        let (_, list) = s.get(&t.token, &groups_path(t.org_id)).await;
        assert_eq!(list.as_array().unwrap().len(), 2, "nothing half-written");

        // Updates: a cycle, a group inside itself; the group is unchanged after each.
        for (body, field) in [
            (json!({"parent_id": site_id}), "parent_id"),
            (json!({"parent_id": feeder_id}), "parent_id"),
            (json!({"name": null}), "name"),
        ] {
            let target = if field == "parent_id" {
                feeder_id
            } else {
                site_id
            };
            let (status, answer) = s
                .put(&t.token, &group_path(t.org_id, target), body.clone())
                .await;
            assert_eq!(status, 422, "{body} → {answer}");
            assert_eq!(invalid_fields(&answer), [field], "{answer}");
        }
        let (_, read) = s.get(&t.token, &group_path(t.org_id, feeder_id)).await;
        assert_eq!(read, feeder);
        let limits = format!("{}/limits", group_path(t.org_id, site_id));
        let (status, answer) = s
            .put(&t.token, &limits, json!({"schedule": [], "name": "x"}))
            .await;
        assert_eq!(status, 422);
        assert_eq!(invalid_fields(&answer), ["name"], "{answer}");
        let (status, answer) = s
            .put(
                &t.token,
                &limits,
                json!({"schedule": [window("2026-11-27T05:00:00Z", "2026-11-27T04:00:00Z", 10)]}),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(invalid_fields(&answer), ["schedule.0.end"], "{answer}");

        // Tenancy: another organisation's group is a 404 for every method.
        let theirs = group_path(t.org_id, site_id);
        let as_b = group_path(b.org_id, site_id);
        for path in [&theirs, &as_b] {
            let (status, _) = s.get(&b.token, path).await;
            assert_eq!(status, 404, "{path}");
            let (status, _) = s.put(&b.token, path, json!({"name": "mine"})).await;
            assert_eq!(status, 404, "{path}");
            let (status, _) = s.delete(&b.token, path).await;
            assert_eq!(status, 404, "{path}");
        }
        let (status, _) = s.get(&b.token, &format!("{as_b}/limits")).await;
        assert_eq!(status, 404);
        let (status, _) = s
            .put(
                &b.token,
                &format!("{as_b}/limits"),
                json!({"power_limit_w": 1}),
            )
            .await;
        assert_eq!(status, 404);
        let (status, list) = s.get(&b.token, &groups_path(b.org_id)).await;
        assert_eq!((status, list), (200, json!([])));
        // B cannot name A's group as parent nor A's car as a member.
        let (status, answer) = s
            .post(
                &b.token,
                &groups_path(b.org_id),
                json!({"name": "G", "parent_id": feeder_id, "electric_vehicle_ids": [car]}),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(
            invalid_fields(&answer),
            ["parent_id", "electric_vehicle_ids.0"],
            "{answer}"
        );
        let (_, read) = s.get(&t.token, &group_path(t.org_id, site_id)).await;
        assert_eq!(read, site);
        s.stop().await;
    }
}

/// Fleet power the sandbox measures, W.
fn fleet_power_w(sandbox: &voltplan_clouds::SandboxCloud, cars: &[Uuid]) -> f64 {
    cars.iter()
        .map(|id| sandbox.snapshot(*id).unwrap().charge_rate_w)
        .sum()
}

/// A street of 40 sandbox cars (four sites of 33 kW with ten cars each, the first behind a
/// house connection of 22 kW) under one feeder: 110 kW, 44 kW in a §14a window over the night's
/// cheapest hour. Every 30 s of simulated time the real worker runs,
/// then, once the cars' command latency (15 s in the sandbox) has passed, the test reads every
/// car's true power from the simulator: neither the street nor a site ever draws more than the limit in force.
/// Midway a new window (33 kW, from now) is set through the API and holds after one worker loop.
/// Every car reaches its 80 % by 06:00.
#[tokio::test]
async fn a_street_stays_under_its_feeder_limit_and_every_car_is_ready() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let evening = Utc.with_ymd_and_hms(2026, 11, 26, 22, 0, 0).unwrap();
        s.clock.set(evening);
        s.cheap_night_hour_prices().await;
        let (t, user) = s.tenant_with_user("Stadtwerke").await;
        let cheap = (
            Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 27, 3, 0, 0).unwrap(),
        );
        let (status, feeder) = s
            .post(
                &t.token,
                &groups_path(t.org_id),
                json!({"name": "Feeder Lindenallee", "power_limit_w": 110_000,
                       "schedule": [{"start": cheap.0, "end": cheap.1, "power_limit_w": 44_000}]}),
            )
            .await;
        assert_eq!(status, 200, "{feeder}");
        let feeder_id = id_of(&feeder);
        let mut cars = Vec::new();
        for site in 0..4 {
            // The first house's own connection is smaller than its site's share: 22 kW.
            let limit = if site == 0 {
                json!(22_000)
            } else {
                json!(null)
            };
            let building = id_of(
                &s.create_building(
                    &t,
                    user,
                    json!({"name": format!("Lindenallee {site}"), "power_limit_w": limit}),
                )
                .await,
            );
            let (status, body) = s
                .post(
                    &t.token,
                    &groups_path(t.org_id),
                    json!({"name": format!("Site {site}"), "parent_id": feeder_id,
                           "building_ids": [building], "power_limit_w": 33_000}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            for _ in 0..10 {
                let car = id_of(
                    &s.create_ev(
                        &t,
                        user,
                        json!({"price_zone": "DE_LU", "is_smart_optimization_active": true,
                               "minimum_charge_limit": 80, "charge_deadline_at": "06:00",
                               "building_id": building, "expected_max_charge_power": 11000,
                               "device_model": {"manufacturer": "tesla", "model": "model 3",
                                                "cloud_service": voltplan_clouds::SANDBOX_CLOUD.id}}),
                    )
                    .await,
                );
                let sandbox_path = sandbox_ev_path(t.org_id, car);
                let (status, _) = s
                    .post(
                        &t.token,
                        &format!("{sandbox_path}/set-level"),
                        json!({"battery_level": 60}),
                    )
                    .await;
                assert_eq!(status, 200);
                let (status, _) = s
                    .post_empty(&t.token, &format!("{sandbox_path}/plug-in"))
                    .await;
                assert_eq!(status, 200);
                cars.push(car);
            }
        }
        let worker = s.sandbox_worker(&sandbox, "street");
        let step = Duration::seconds(30);
        let latency = Duration::seconds(20);
        let dimmed_from = Utc.with_ymd_and_hms(2026, 11, 26, 23, 0, 0).unwrap();
        let dimmed = (dimmed_from, dimmed_from + Duration::hours(1), 33_000.0);
        let ready_at = Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).unwrap();
        let mut now = evening;
        let (mut peak_cheap, mut peak_overall, mut energy_cheap_kwh) = (0.0f64, 0.0f64, 0.0);
        while now < ready_at {
            if now == dimmed.0 {
                // The operator dims the feeder from now on: it holds after one worker loop.
                let token = s.token(&t.client_id, &t.client_secret).await;
                let (status, body) = s
                    .put(
                        &token,
                        &format!("{}/limits", group_path(t.org_id, feeder_id)),
                        json!({"schedule": [
                            {"start": dimmed.0, "end": dimmed.1, "power_limit_w": dimmed.2},
                            {"start": cheap.0, "end": cheap.1, "power_limit_w": 44_000}]}),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
            }
            worker.run_once().await.unwrap();
            s.clock.set(now + latency);
            let power_kw = fleet_power_w(&sandbox, &cars) / 1000.0;
            for (site, cars) in cars.chunks(10).enumerate() {
                let site_kw = fleet_power_w(&sandbox, cars) / 1000.0;
                let site_limit = if site == 0 { 22.0 } else { 33.0 };
                assert!(
                    site_kw <= site_limit + 1e-6,
                    "{backend:?} at {} site {site} draws {site_kw:.1} kW, limit {site_limit} kW",
                    now + latency
                );
            }
            let limit_kw = if now >= cheap.0 && now < cheap.1 {
                44.0
            } else if now >= dimmed.0 && now < dimmed.1 {
                dimmed.2 / 1000.0
            } else {
                110.0
            };
            assert!(
                power_kw <= limit_kw + 1e-6,
                "{backend:?} at {} the street draws {power_kw:.1} kW, limit {limit_kw} kW",
                now + latency
            );
            peak_overall = peak_overall.max(power_kw);
            if now >= cheap.0 && now < cheap.1 {
                peak_cheap = peak_cheap.max(power_kw);
                energy_cheap_kwh += power_kw * step.num_seconds() as f64 / 3600.0;
            }
            now += step;
            s.clock.set(now);
        }
        // The cheap hour is used up to its limit, not beyond (alone, all 40 cars would pile in).
        assert!(peak_cheap > 40.0, "cheap hour peak {peak_cheap:.1} kW");
        assert!(
            energy_cheap_kwh > 35.0,
            "{energy_cheap_kwh:.1} kWh in the cheap hour"
        );
        for car in &cars {
            let level = sandbox.snapshot(*car).unwrap().battery_level_percent;
            assert!(
                level >= 79.5,
                "{backend:?}: car {car} at {level:.1} % by 06:00"
            );
        }
        // The joint plan is there to inspect.
        let token = s.token(&t.client_id, &t.client_secret).await;
        let (status, plan) = s
            .get(
                &token,
                &format!("{}/joint-plan", group_path(t.org_id, feeder_id)),
            )
            .await;
        assert_eq!(status, 200, "{plan}");
        assert_eq!(plan["electric_vehicles"].as_array().unwrap().len(), 40);
        // The feeder, four sites and the first house's connection.
        let limits = plan["groups"].as_array().unwrap();
        assert_eq!(limits.len(), 6, "{plan}");
        assert_eq!(limits[5]["slots"][0]["limit_kw"], 22.0, "{}", limits[5]);
        assert!(limits[5]["building_id"].is_string());
        eprintln!(
            "{backend:?}: street peak {peak_overall:.1} kW, cheap-hour peak {peak_cheap:.1} kW, {energy_cheap_kwh:.1} kWh in the cheap hour"
        );
        s.stop().await;
    }
}
