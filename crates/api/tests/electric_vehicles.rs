//! The electric-vehicle endpoints against the seed page (binding) and the write rules.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The example object of the seed page, read from the spec itself so the test follows it.
fn seed_example() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/spec/seed-get-users-electric-vehicles.txt"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the seed page must be at {path}: {e}"));
    let start = text.find("[\n  {").expect("the seed's example array");
    let end = text[start..].find("\n]").expect("end of the example") + start + 2;
    let list: Value = serde_json::from_str(&text[start..end]).unwrap();
    list[0].clone()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn list_returns_exactly_the_seed_object_with_its_defaults() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let (status, created) = s.post(&t.token, &evs_path(t.org_id, user), json!({})).await;
        assert_eq!(status, 200, "{created}");

        let (status, list) = s.get(&t.token, &evs_path(t.org_id, user)).await;
        assert_eq!(status, 200);
        let ev = &list.as_array().unwrap()[0];
        let seed = seed_example();
        assert_eq!(keys(ev), keys(&seed), "field set differs from the seed");
        assert_eq!(keys(&ev["device_model"]), keys(&seed["device_model"]));
        assert_eq!(
            keys(&ev["device_model"]["device_type"]),
            keys(&seed["device_model"]["device_type"])
        );
        assert_eq!(keys(&ev["owner"]), keys(&seed["owner"]));

        // Documented defaults.
        let expected = json!({
            "charge_target_min": 50, "minimum_charge_limit": 100, "charge_deadline_at": "06:00:00",
            "expected_max_charge_power": 3600, "geo_fence_distance_m": 100.0, "price_zone": "AT",
            "boost_state": "unavailable", "actual_steering_state": "unknown", "lifecycle_state": "authenticated",
            "inverter_forced_mode_since": "0001-01-01T00:00:00Z", "external_device_id": "", "battery_capacity_kwh": "0",
            "is_pause_power_active": false, "is_authenticated": false, "is_smart_optimization_active": false,
            "is_inverter_forced_mode_enabled": false, "is_inverter_forced_mode_active": false, "is_trading_enabled": false,
            "is_charge_policy_enabled": false, "is_over_charge_allowed": false, "is_fully_charged": false,
            "is_plugged_in": false, "is_charging": false, "boost_for_next_session": false, "action_needed": false,
            "boost_feature_enabled": false, "deleted_at": null, "building": null, "pause_power_until": null,
        });
        for (k, v) in expected.as_object().unwrap() {
            assert_eq!(&ev[k], v, "default of {k}");
        }
        for status_field in ["connection_status", "monitoring_status", "steering_status"] {
            let v = ev[status_field].as_str().unwrap();
            assert!(
                ["ok", "warning", "error", "unknown"].contains(&v),
                "{status_field}={v}"
            );
        }
        assert_eq!(
            ev["device_model"]["device_type"],
            json!({"short_name": "ev", "long_name": "Electric Vehicle"})
        );
        assert_eq!(ev["owner"]["id"].as_str().unwrap(), user.to_string());
        assert_eq!(ev["owner"]["email"], "anna@example.com");
        assert_eq!(ev["owner"]["first_name"], "Anna");
        assert_eq!(ev["id"], created["id"]);
        assert!(ev["created_at"].as_str().unwrap().ends_with('Z'));
        // The list has no actions; the detail does.
        assert!(ev.get("actions").is_none());
        let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, id_of(ev))).await;
        assert_eq!(detail["actions"], json!([]));
        s.stop().await;
    }
}

#[tokio::test]
async fn settings_are_written_partially_and_read_back() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let building = s
            .create_building(
                &t,
                user,
                json!({"name": "Home", "latitude": 48.2, "longitude": 16.37}),
            )
            .await;
        let ev = s.create_ev(&t, user, json!({
                    "building": building["id"], "price_zone": "DE_LU", "charge_target_min": 30,
                    "minimum_charge_limit": 80, "charge_deadline_at": "07:30", "expected_max_charge_power": 11000,
                    "battery_capacity_kwh": "79.5", "is_smart_optimization_active": true, "comment": "company car",
                    "device_model": {"manufacturer": "Tesla", "model": "Model 3", "year": 2024},
                    // read-only fields are ignored
                    "battery_level": 99, "lifecycle_state": "error", "owner": {"id": "x"}
                })).await;
        assert_eq!(ev["building"], building["id"]);
        assert_eq!(ev["price_zone"], "DE_LU");
        assert_eq!(ev["charge_deadline_at"], "07:30:00");
        assert_eq!(ev["battery_capacity_kwh"], "79.5");
        assert_eq!(ev["battery_level"], Value::Null);
        assert_eq!(ev["lifecycle_state"], "authenticated");
        assert_eq!(ev["device_model"]["manufacturer"], "Tesla");
        assert_eq!(ev["device_model"]["year"], 2024);
        assert!(ev["charge_policy_last_updated_at"].is_string());
        let ev_id = id_of(&ev);

        // Partial PUT: only what is sent changes; numbers are accepted for decimals.
        let later = s.clock_now() + chrono::Duration::hours(2);
        s.clock.advance(chrono::Duration::minutes(1));
        let (status, updated) = s
            .put(
                &t.token,
                &ev_path(t.org_id, user, ev_id),
                json!({"minimum_charge_limit": 90, "battery_capacity_kwh": 60, "pause_power_until": later.to_rfc3339(), "comment": null}),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["minimum_charge_limit"], 90);
        assert_eq!(updated["battery_capacity_kwh"], "60");
        assert_eq!(updated["is_pause_power_active"], true);
        assert_eq!(updated["comment"], Value::Null);
        assert_eq!(updated["charge_target_min"], 30, "untouched fields stay");
        assert_eq!(updated["price_zone"], "DE_LU");
        assert_ne!(
            updated["charge_policy_last_updated_at"],
            ev["charge_policy_last_updated_at"]
        );
        assert_ne!(updated["updated_at"], ev["updated_at"]);

        // The pause ends by itself when its time passes, and explicitly with false.
        s.clock.advance(chrono::Duration::hours(3));
        let (_, read) = s.get(&t.token, &ev_path(t.org_id, user, ev_id)).await;
        assert_eq!(read["is_pause_power_active"], false);
        let (_, resumed) = s
            .put(
                &t.token,
                &ev_path(t.org_id, user, ev_id),
                json!({"is_pause_power_active": false}),
            )
            .await;
        assert_eq!(resumed["pause_power_until"], Value::Null);
        s.stop().await;
    }
}

#[tokio::test]
async fn each_class_of_invalid_field_is_a_422_naming_it_and_nothing_is_written() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let other_user = s.create_user(&t, "ben@example.com").await;
        let foreign_building = s
            .create_building(&t, other_user, json!({"name": "Ben's"}))
            .await;
        let ev = s
            .create_ev(&t, user, json!({"minimum_charge_limit": 80}))
            .await;
        let path = ev_path(t.org_id, user, id_of(&ev));

        let cases: Vec<(Value, &[&str])> = vec![
            (json!({"charge_target_min": 101}), &["charge_target_min"]),
            (
                json!({"minimum_charge_limit": -1}),
                &["minimum_charge_limit"],
            ),
            (json!({"charge_target_min": 90}), &["charge_target_min"]),
            (
                json!({"expected_max_charge_power": 0}),
                &["expected_max_charge_power"],
            ),
            (
                json!({"geo_fence_distance_m": -5}),
                &["geo_fence_distance_m"],
            ),
            (json!({"comment": "x".repeat(301)}), &["comment"]),
            (
                json!({"external_device_id": "x".repeat(256)}),
                &["external_device_id"],
            ),
            (json!({"price_zone": "DE"}), &["price_zone"]),
            (
                json!({"charge_deadline_at": "25:00"}),
                &["charge_deadline_at"],
            ),
            (
                json!({"pause_power_until": "tomorrow"}),
                &["pause_power_until"],
            ),
            (
                json!({"is_smart_optimization_active": "yes"}),
                &["is_smart_optimization_active"],
            ),
            (json!({"is_trading_enabled": null}), &["is_trading_enabled"]),
            (
                json!({"battery_capacity_kwh": "lots"}),
                &["battery_capacity_kwh"],
            ),
            (json!({"building": foreign_building["id"]}), &["building"]),
            (
                json!({"device_model": {"year": 1800, "colour": "red"}}),
                &["device_model.year", "device_model.colour"],
            ),
            (
                json!({"device_model": {"cloud_service": "00000000-0000-0000-0000-000000000000"}}),
                &["device_model.cloud_service"],
            ),
            (json!({"wheels": 4, "charge_target_min": 10}), &["wheels"]),
            (
                json!({"charge_target_min": 200, "comment": 5}),
                &["charge_target_min", "comment"],
            ),
        ];
        for (body, fields) in cases {
            let (status, error) = s.put(&t.token, &path, body.clone()).await;
            assert_eq!(status, 422, "{body} → {error}");
            let mut got = invalid_fields(&error);
            got.sort();
            let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "{body}");
            assert_eq!(error["detail"][0]["loc"][0], "body");
            assert!(
                error["detail"][0]["msg"].is_string() && error["detail"][0]["type"].is_string()
            );
        }
        let (_, after) = s.get(&t.token, &path).await;
        assert_eq!(after["minimum_charge_limit"], 80);
        assert_eq!(after["charge_target_min"], 50);
        assert_eq!(
            after["updated_at"], ev["updated_at"],
            "no failed write changed anything"
        );

        // Malformed JSON and non-object bodies.
        let r = s
            .http
            .put(s.url(&path))
            .bearer_auth(&t.token)
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(r).await;
        assert_eq!(status, 400);
        assert!(body["detail"].as_str().unwrap().contains("JSON"));
        let (status, _) = s.put(&t.token, &path, json!([1, 2])).await;
        assert_eq!(status, 422);
        // A malformed id in the path is a 422 naming it.
        let (status, body) = s
            .get(
                &t.token,
                &format!("{}/not-a-uuid", evs_path(t.org_id, user)),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["path", "electric_vehicle_id"])
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn deleted_vehicles_are_hidden_unless_asked_for() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let (_, keep) = s.post(&t.token, &evs_path(t.org_id, user), json!({})).await;
        let (_, gone) = s.post(&t.token, &evs_path(t.org_id, user), json!({})).await;
        let gone_path = ev_path(t.org_id, user, id_of(&gone));
        let (status, _) = s.delete(&t.token, &gone_path).await;
        assert_eq!(status, 204);
        let (status, _) = s.delete(&t.token, &gone_path).await;
        assert_eq!(status, 404, "deleting twice");
        let (status, _) = s.get(&t.token, &gone_path).await;
        assert_eq!(status, 404);
        let (status, _) = s.put(&t.token, &gone_path, json!({"comment": "x"})).await;
        assert_eq!(status, 404, "a deleted vehicle cannot be updated");
        let (_, list) = s.get(&t.token, &evs_path(t.org_id, user)).await;
        assert_eq!(
            list.as_array()
                .unwrap()
                .iter()
                .map(id_of)
                .collect::<Vec<_>>(),
            vec![id_of(&keep)]
        );
        let (_, all) = s
            .get(
                &t.token,
                &format!("{}?include_deleted=true", evs_path(t.org_id, user)),
            )
            .await;
        assert_eq!(all.as_array().unwrap().len(), 2);
        let (status, detail) = s
            .get(&t.token, &format!("{gone_path}?include_deleted=true"))
            .await;
        assert_eq!(status, 200);
        assert!(detail["deleted_at"].is_string());
        s.stop().await;
    }
}
