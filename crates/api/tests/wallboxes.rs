//! The wallbox endpoints: CRUD, the OCPP credentials (shown once, rotated, looked up by the
//! handshake), validation, tenancy, boost, and the sessions/savings/data of a wallbox.

mod common;

use chrono::Duration;
use common::wallbox::*;
use common::*;
use serde_json::{Value, json};
use uuid::Uuid;
use voltplan_api::auth::secret::verify_secret;

fn password_of(body: &Value) -> String {
    body["ocpp"]["password"]
        .as_str()
        .unwrap_or_else(|| panic!("no password in {body}"))
        .to_owned()
}

fn charge_point_of(body: &Value) -> String {
    body["ocpp"]["charge_point_id"].as_str().unwrap().to_owned()
}

/// The password logs in as the handshake would check it: its hash found by the charge-point id.
async fn logs_in(s: &TestServer, charge_point_id: &str, password: &str) -> bool {
    match s.store.charger_login(charge_point_id).await.unwrap() {
        Some(login) => verify_secret(password, &login.password_hash),
        None => false,
    }
}

#[tokio::test]
async fn wallboxes_are_created_read_updated_and_deleted() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let user = s.create_user(&t, "anna@example.com").await;
        let (id, created) = s.create_wallbox(&t, user, json!({})).await;

        // Defaults, the common fields as the EV shows them, and the OCPP details.
        let expected = json!({
            "charge_target_min": 50, "charge_target_max": null, "minimum_charge_limit": 100,
            "charge_deadline_at": "06:00:00", "charge_power_max_w": 11000, "price_zone": "AT",
            "is_charge_policy_enabled": false, "is_over_charge_allowed": false, "session_energy_kwh": null,
            "mode": "UNKNOWN", "connection": "never_connected", "is_ocpp_connected": false,
            "is_plugged_in": false, "is_charging": false, "charging_power_w": null, "meter_wh": null,
            "boost_state": "unavailable", "boost_for_next_session": false, "is_authenticated": false,
            "lifecycle_state": "authenticated", "external_device_id": "", "deleted_at": null,
            "building": null, "is_forecasting_enabled": false, "actions": [],
        });
        for (k, v) in expected.as_object().unwrap() {
            assert_eq!(&created[k], v, "default of {k}");
        }
        assert_eq!(
            created["device_model"]["device_type"],
            json!({"short_name": "wb", "long_name": "Wallbox"})
        );
        assert_eq!(created["owner"]["email"], "anna@example.com");
        let ocpp = &created["ocpp"];
        assert_eq!(
            ocpp["url"],
            format!("{}/ocpp", s.base.replace("http://", "ws://"))
        );
        assert_eq!(ocpp["security_profile"], 1);
        let charge_point = charge_point_of(&created);
        assert!(
            charge_point.starts_with("vp-") && charge_point.len() == 19,
            "{charge_point}"
        );
        assert!(
            charge_point[3..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let password = password_of(&created);
        assert_eq!(password.len(), 40);
        assert!(password.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(logs_in(&s, &charge_point, &password).await);
        assert!(
            !logs_in(
                &s,
                &charge_point,
                "0000000000000000000000000000000000000000"
            )
            .await
        );

        // The password is shown once: null on every read.
        let (status, read) = s.get(&t.token, &wallbox_path(t.org_id, user, id)).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["ocpp"]["password"], Value::Null);
        assert_eq!(charge_point_of(&read), charge_point);
        let (status, list) = s.get(&t.token, &wallboxes_path(t.org_id, user)).await;
        assert_eq!(status, 200);
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["id"], created["id"]);
        assert_eq!(list[0]["ocpp"]["password"], Value::Null);
        assert!(list[0].get("actions").is_none());

        // A partial update leaves the other fields as they were.
        let (_, building) = s
            .post(
                &t.token,
                &buildings_path(t.org_id, user),
                json!({"name": "Home"}),
            )
            .await;
        let (status, updated) = s
            .put(
                &t.token,
                &wallbox_path(t.org_id, user, id),
                json!({
                    "charge_power_max_w": 7000, "charge_target_max": 80, "minimum_charge_limit": 80,
                    "charge_deadline_at": "07:30", "comment": "garage", "building_id": building["id"],
                    "session_energy_kwh": 25.5, "is_forecasting_enabled": true,
                    "device_model": {"manufacturer": "go-e", "model": "Charger Gemini", "year": 2024},
                    // read-only fields are ignored
                    "is_charging": true, "mode": "CHARGING", "ocpp": {"password": "x"}
                }),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        for (k, v) in [
            ("charge_power_max_w", json!(7000)),
            ("charge_target_max", json!(80)),
            ("minimum_charge_limit", json!(80)),
            ("charge_target_min", json!(50)),
            ("charge_deadline_at", json!("07:30:00")),
            ("comment", json!("garage")),
            ("building", building["id"].clone()),
            ("session_energy_kwh", json!(25.5)),
            ("is_forecasting_enabled", json!(true)),
            ("is_charging", json!(false)),
            ("mode", json!("UNKNOWN")),
        ] {
            assert_eq!(updated[k], v, "{k}");
        }
        assert_eq!(updated["device_model"]["manufacturer"], "go-e");
        assert_eq!(updated["ocpp"]["password"], Value::Null);
        assert!(updated["charge_policy_last_updated_at"].is_string());
        let (_, read) = s.get(&t.token, &wallbox_path(t.org_id, user, id)).await;
        assert_eq!(read["charge_power_max_w"], 7000);
        let (status, cleared) = s
            .put(
                &t.token,
                &wallbox_path(t.org_id, user, id),
                json!({"session_energy_kwh": null}),
            )
            .await;
        assert_eq!(
            (status, &cleared["session_energy_kwh"]),
            (200, &Value::Null)
        );

        // A deleted wallbox is gone from the list and can no longer log in; its id is free again.
        let (status, _) = s.delete(&t.token, &wallbox_path(t.org_id, user, id)).await;
        assert_eq!(status, 204);
        let (status, _) = s.get(&t.token, &wallbox_path(t.org_id, user, id)).await;
        assert_eq!(status, 404);
        let (status, _) = s.delete(&t.token, &wallbox_path(t.org_id, user, id)).await;
        assert_eq!(status, 404);
        let (_, list) = s.get(&t.token, &wallboxes_path(t.org_id, user)).await;
        assert_eq!(list, json!([]));
        let (_, list) = s
            .get(
                &t.token,
                &format!("{}?include_deleted=true", wallboxes_path(t.org_id, user)),
            )
            .await;
        assert!(list[0]["deleted_at"].is_string());
        assert!(
            s.store
                .charger_login(&charge_point)
                .await
                .unwrap()
                .is_none()
        );
        let (_, again) = s
            .create_wallbox(&t, user, json!({"ocpp_charge_point_id": charge_point}))
            .await;
        assert!(logs_in(&s, &charge_point, &password_of(&again)).await);
        s.stop().await;
    }
}

#[tokio::test]
async fn bad_input_is_a_422_naming_the_field_and_writes_nothing() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let user = s.create_user(&t, "anna@example.com").await;
        let path = wallboxes_path(t.org_id, user);
        let (status, body) = s
            .post(
                &t.token,
                &path,
                json!({
                    "charge_power_max_w": 0, "charge_target_min": 101, "ocpp_charge_point_id": "has space",
                    "session_energy_kwh": 0, "price_zone": "XX", "is_trading_enabled": null,
                    "device_model": {"year": 1800, "cloud_service": "x"}, "voltage": 230
                }),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        let mut fields = invalid_fields(&body);
        fields.sort();
        assert_eq!(
            fields,
            [
                "charge_power_max_w",
                "charge_target_min",
                "device_model.year",
                "is_trading_enabled",
                "ocpp_charge_point_id",
                "price_zone",
                "session_energy_kwh",
                "voltage",
            ]
        );
        let (status, body) = s
            .post(&t.token, &path, json!({"charge_power_max_w": 350001}))
            .await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (422, vec!["charge_power_max_w".to_owned()])
        );
        // The order of the targets, judged on the result.
        let (status, body) = s
            .post(&t.token, &path, json!({"charge_target_max": 80}))
            .await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (422, vec!["minimum_charge_limit".to_owned()])
        );
        let (status, body) = s
            .post(&t.token, &path, json!({"building": Uuid::now_v7()}))
            .await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (422, vec!["building".to_owned()])
        );
        let (_, list) = s.get(&t.token, &path).await;
        assert_eq!(list, json!([]), "nothing was written");

        // A taken charge-point id is refused, whichever organisation holds it.
        let (id, _) = s
            .create_wallbox(&t, user, json!({"ocpp_charge_point_id": "SN:0042"}))
            .await;
        let (status, body) = s
            .post(&t.token, &path, json!({"ocpp_charge_point_id": "SN:0042"}))
            .await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (422, vec!["ocpp_charge_point_id".to_owned()])
        );
        let other = s.tenant("Utility B").await;
        let other_user = s.create_user(&other, "bob@example.com").await;
        let (status, body) = s
            .post(
                &other.token,
                &wallboxes_path(other.org_id, other_user),
                json!({"ocpp_charge_point_id": "SN:0042"}),
            )
            .await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (422, vec!["ocpp_charge_point_id".to_owned()])
        );
        let (second, _) = s.create_wallbox(&t, user, json!({})).await;
        let (status, body) = s
            .put(
                &t.token,
                &wallbox_path(t.org_id, user, second),
                json!({"ocpp_charge_point_id": "SN:0042", "comment": "moved"}),
            )
            .await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (422, vec!["ocpp_charge_point_id".to_owned()])
        );
        // A refused update writes nothing.
        let (status, body) = s
            .put(
                &t.token,
                &wallbox_path(t.org_id, user, id),
                json!({"comment": "new", "charge_target_min": 90, "minimum_charge_limit": 80}),
            )
            .await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (422, vec!["charge_target_min".to_owned()])
        );
        let (_, read) = s.get(&t.token, &wallbox_path(t.org_id, user, second)).await;
        assert_eq!(read["comment"], Value::Null);
        let (_, read) = s.get(&t.token, &wallbox_path(t.org_id, user, id)).await;
        assert_eq!(
            (&read["comment"], &read["charge_target_min"]),
            (&Value::Null, &json!(50))
        );
        let (status, body) = s
            .get(
                &t.token,
                &wallbox_path(t.org_id, user, id).replace(&id.to_string(), "nope"),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        s.stop().await;
    }
}

#[tokio::test]
async fn another_organisations_wallboxes_are_not_found() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let a = s.tenant("Utility A").await;
        let b = s.tenant("Utility B").await;
        let anna = s.create_user(&a, "anna@example.com").await;
        let bob = s.create_user(&b, "bob@example.com").await;
        let (id, _) = s.create_wallbox(&a, anna, json!({})).await;
        let day = "from=2026-11-01&to=2026-11-30";
        let data = "from_datetime=2026-11-01T00:00:00Z&to_datetime=2026-11-02T00:00:00Z";
        // B's token on A's paths, B's paths with A's ids, and A's wallbox under another user.
        let other_user = s.create_user(&a, "carl@example.com").await;
        for (token, org, user) in [
            (&b.token, a.org_id, anna),
            (&b.token, b.org_id, anna),
            (&b.token, b.org_id, bob),
            (&a.token, a.org_id, other_user),
        ] {
            let one = wallbox_path(org, user, id);
            for (method, path) in [
                (reqwest::Method::GET, one.clone()),
                (reqwest::Method::PUT, one.clone()),
                (reqwest::Method::DELETE, one.clone()),
                (reqwest::Method::POST, format!("{one}/boost")),
                (reqwest::Method::DELETE, format!("{one}/boost")),
                (reqwest::Method::POST, format!("{one}/ocpp-password")),
                (reqwest::Method::GET, format!("{one}/sessions?{day}")),
                (
                    reqwest::Method::GET,
                    format!("{one}/savings?{day}&resolution=1DAY"),
                ),
                (reqwest::Method::GET, format!("{one}/data?{data}")),
            ] {
                let body = (method == reqwest::Method::PUT).then(|| json!({"comment": "x"}));
                let (status, answer) = s.send(method.clone(), token, &path, body, &[]).await;
                assert_eq!(status, 404, "{method} {path}: {answer}");
            }
        }
        let (status, _) = s
            .post(&b.token, &wallboxes_path(a.org_id, anna), json!({}))
            .await;
        assert_eq!(status, 404);
        let (_, read) = s.get(&a.token, &wallbox_path(a.org_id, anna, id)).await;
        assert_eq!(read["comment"], Value::Null, "nothing changed");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_rotated_password_replaces_the_old_one() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let user = s.create_user(&t, "anna@example.com").await;
        let (id, created) = s.create_wallbox(&t, user, json!({})).await;
        let charge_point = charge_point_of(&created);
        let old = password_of(&created);
        let (status, rotated) = s
            .post_empty(
                &t.token,
                &format!("{}/ocpp-password", wallbox_path(t.org_id, user, id)),
            )
            .await;
        assert_eq!(status, 200, "{rotated}");
        let new = password_of(&rotated);
        assert_ne!(new, old);
        assert_eq!(charge_point_of(&rotated), charge_point);
        assert!(logs_in(&s, &charge_point, &new).await);
        assert!(!logs_in(&s, &charge_point, &old).await);
        let (_, read) = s.get(&t.token, &wallbox_path(t.org_id, user, id)).await;
        assert_eq!(read["ocpp"]["password"], Value::Null);
        s.stop().await;
    }
}

#[tokio::test]
async fn boost_follows_the_connector() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let user = s.create_user(&t, "anna@example.com").await;
        let (id, _) = s.create_wallbox(&t, user, json!({})).await;
        let one = wallbox_path(t.org_id, user, id);
        let boost = format!("{one}/boost");

        // No car: armed for the next session, idempotently; DELETE disarms, idempotently.
        for _ in 0..2 {
            let (status, body) = s.post_empty(&t.token, &boost).await;
            assert_eq!(status, 204, "{body}");
        }
        let (_, read) = s.get(&t.token, &one).await;
        assert_eq!(read["boost_for_next_session"], true);
        for _ in 0..2 {
            let (status, _) = s.delete(&t.token, &boost).await;
            assert_eq!(status, 204);
        }
        let (_, read) = s.get(&t.token, &one).await;
        assert_eq!(read["boost_for_next_session"], false);

        // Plugged in and held at 0 A: requested until the worker takes it up; asking again is a 409.
        s.set_charger(id, charger("SuspendedEVSE")).await;
        let (_, read) = s.get(&t.token, &one).await;
        assert_eq!(
            (
                &read["mode"],
                &read["connection"],
                &read["is_ocpp_connected"],
                &read["is_plugged_in"]
            ),
            (
                &json!("PLUGGED_IN"),
                &json!("online"),
                &json!(true),
                &json!(true)
            )
        );
        assert_eq!(read["is_authenticated"], true);
        let (status, _) = s.post_empty(&t.token, &boost).await;
        assert_eq!(status, 204);
        let (_, read) = s.get(&t.token, &one).await;
        assert_eq!(read["boost_state"], "requested");
        let (status, body) = s.post_empty(&t.token, &boost).await;
        assert_eq!(
            (status, body),
            (
                409,
                json!({"state": "requested", "reason": "already_charging"})
            )
        );
        let (status, _) = s.delete(&t.token, &boost).await;
        assert_eq!(status, 204);
        let (_, read) = s.get(&t.token, &one).await;
        assert_eq!(read["boost_state"], "unavailable");

        // Charging already: 409, and nothing is armed.
        s.set_charger(id, charger("Charging")).await;
        let (status, body) = s.post_empty(&t.token, &boost).await;
        assert_eq!(
            (status, body),
            (
                409,
                json!({"state": "unavailable", "reason": "already_charging"})
            )
        );
        let (_, read) = s.get(&t.token, &one).await;
        assert_eq!(
            (
                &read["mode"],
                &read["is_charging"],
                &read["charging_power_w"],
                &read["meter_wh"]
            ),
            (
                &json!("CHARGING"),
                &json!(true),
                &json!(7200.0),
                &json!(12345.0)
            )
        );
        assert_eq!(read["boost_for_next_session"], false);
        s.stop().await;
    }
}

#[tokio::test]
async fn deleting_a_user_deletes_their_wallboxes() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let user = s.create_user(&t, "anna@example.com").await;
        let (id, created) = s.create_wallbox(&t, user, json!({})).await;
        let (_, building) = s
            .post(
                &t.token,
                &buildings_path(t.org_id, user),
                json!({"name": "Home"}),
            )
            .await;
        let (status, _) = s
            .put(
                &t.token,
                &wallbox_path(t.org_id, user, id),
                json!({"building": building["id"]}),
            )
            .await;
        assert_eq!(status, 200);
        // Deleting the building detaches the wallbox, as it does an EV.
        let (status, _) = s
            .delete(&t.token, &building_path(t.org_id, user, id_of(&building)))
            .await;
        assert_eq!(status, 204);
        let (_, read) = s.get(&t.token, &wallbox_path(t.org_id, user, id)).await;
        assert_eq!(read["building"], Value::Null);

        let (status, _) = s.delete(&t.token, &user_path(t.org_id, user)).await;
        assert_eq!(status, 204);
        let (status, _) = s.get(&t.token, &wallboxes_path(t.org_id, user)).await;
        assert_eq!(status, 404, "the user is gone");
        let (status, list) = s
            .get(
                &t.token,
                &format!("{}?include_deleted=true", wallboxes_path(t.org_id, user)),
            )
            .await;
        assert_eq!(status, 200);
        assert!(list[0]["deleted_at"].is_string(), "{list}");
        assert!(
            s.store
                .charger_login(&charge_point_of(&created))
                .await
                .unwrap()
                .is_none()
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn sessions_savings_and_data_of_a_wallbox() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let user = s.create_user(&t, "anna@example.com").await;
        let (id, _) = s.create_wallbox(&t, user, json!({})).await;
        let (other, _) = s.create_wallbox(&t, user, json!({})).await;
        let one = wallbox_path(t.org_id, user, id);
        let plug_in = start_of_test() - Duration::days(1);
        let session = s
            .add_wallbox_session(
                t.org_id,
                id,
                plug_in,
                json!({"energy_charged_kwh": 20.0, "actual_cost_eur": 2.0, "baseline_cost_eur": 3.0,
                       "session_outcome": "completed"}),
            )
            .await;
        s.add_wallbox_session(t.org_id, other, plug_in, json!({"energy_charged_kwh": 5.0}))
            .await;
        s.add_wallbox_reading(t.org_id, id, plug_in, 7200.0, 1.8)
            .await;
        s.add_wallbox_reading(t.org_id, id, plug_in + Duration::minutes(15), 0.0, 0.0)
            .await;

        let (status, page) = s
            .get(
                &t.token,
                &format!("{one}/sessions?from=2026-11-25&to=2026-11-26"),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 1);
        assert_eq!(page["items"][0]["id"], session.to_string());
        assert_eq!(page["items"][0]["energy_charged_kwh"], 20.0);
        assert_eq!(page["items"][0]["session_outcome"], "completed");

        let (status, savings) = s
            .get(
                &t.token,
                &format!("{one}/savings?from=2026-11-25&to=2026-11-26&resolution=1DAY"),
            )
            .await;
        assert_eq!(status, 200, "{savings}");
        assert_eq!(savings["metadata"]["query"]["wallbox_id"], id.to_string());
        assert_eq!(savings["data"][0]["savings"]["total"], 1.0);
        assert_eq!(savings["data"][0]["consumption"]["total"], 20.0);
        assert_eq!(savings["data"][1]["savings"]["total"], 0.0);

        let (status, data) = s
            .get(
                &t.token,
                &format!(
                    "{one}/data?from_datetime=2026-11-25T00:00:00Z&to_datetime=2026-11-26T00:00:00Z\
                     &resolution=1HOUR&keywords=is_charging,estimated_consumption,is_at_optimized_location"
                ),
            )
            .await;
        assert_eq!(status, 200, "{data}");
        let rows = data["data"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{data}");
        assert_eq!(rows[0]["is_charging"], true);
        assert_eq!(rows[0]["estimated_consumption"], 1800.0);
        assert_eq!(rows[0]["is_at_optimized_location"], Value::Null);
        // The other wallbox has a session but no readings.
        let other_data = format!(
            "{}/data?from_datetime=2026-11-25T00:00:00Z&to_datetime=2026-11-26T00:00:00Z",
            wallbox_path(t.org_id, user, other)
        );
        let (status, _) = s.get(&t.token, &other_data).await;
        assert_eq!(status, 400);
        let (status, body) = s
            .get(
                &t.token,
                &format!("{one}/sessions?from=2026-11-26&to=2026-11-25"),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        s.stop().await;
    }
}
