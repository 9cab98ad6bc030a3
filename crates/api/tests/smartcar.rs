//! A driver connects a real-cloud car end to end, against a fake Smartcar written from
//! Smartcar's public documentation (`voltplan_test_support::fake_smartcar`): the partner starts an
//! onboarding session, a browser-like client walks the Connect pages and Smartcar's Connect login
//! (OAuth redirects and all), the car appears under the user, the real worker reads it, plans and
//! sends stop and start through the fake, a signed webhook changes its state, the fake revokes
//! access, the car shows a `reauthenticate` action, and its cue links it again. SQLite and
//! PostgreSQL.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::browser::Browser;
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;
use voltplan_api::ApiConfig;
use voltplan_clouds::Secret;
use voltplan_clouds::registry::BuiltClouds;
use voltplan_clouds::smartcar::{SMARTCAR_CLOUD, SmartcarCloud, SmartcarConfig, SmartcarMode};
use voltplan_store::cloud_vault::{StoreVault, open_tokens};
use voltplan_store::sealed::KeyRing;
use voltplan_test_support::fake_smartcar::{FakeAction, FakeConfig, FakeSmartcar, FakeVehicle};
use voltplan_worker::{Clouds, Worker, WorkerConfig};

const PARTNER: &str = "https://partner.example/";
const SUCCESS: &str = "https://partner.example/cars/connected";
const CANCEL: &str = "https://partner.example/cars/cancelled";
const KEYS: &str = "k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const EMAIL: &str = "anna@example.com";
const PASSWORD: &str = "correct horse";

struct World {
    s: TestServer,
    fake: FakeSmartcar,
    worker: Worker,
    keys: Arc<KeyRing>,
    car: String,
}

async fn world(backend: &Backend) -> World {
    let fake = FakeSmartcar::start_with(FakeConfig {
        start_time: start_of_test(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    fake.add_account(EMAIL, PASSWORD).unwrap();
    // Plugged in at 70 % and charging, as a car does when it is plugged in; its own cap 90 %.
    let car = fake
        .add_vehicle(
            EMAIL,
            FakeVehicle {
                level_percent: 70.0,
                plugged_in: true,
                charging: true,
                charge_limit: 0.9,
                ..FakeVehicle::new("TESLA", "Model 3", 2022, "5YJ3E1EA7KF000001")
            },
        )
        .unwrap();
    let keys = Arc::new(KeyRing::parse(KEYS).unwrap());
    let fake_config = fake.config().clone();
    let (connect, auth, api) = (fake.connect_base(), fake.auth_base(), fake.api_base());
    let vault_keys = keys.clone();
    let config = ApiConfig {
        secret_keys: keys.clone(),
        ..ApiConfig::default()
    };
    let (s, built) = TestServer::start_with_clouds(
        backend,
        config,
        Box::new(move |store, clock, base| {
            let mut smartcar = SmartcarConfig::new(
                fake_config.client_id.clone(),
                Secret::new(fake_config.client_secret.clone()),
                Secret::new(fake_config.management_token.clone()),
                format!("{base}/connect/callback/smartcar"),
            );
            smartcar.connect_base = connect;
            smartcar.auth_base = auth;
            smartcar.api_base = api;
            smartcar.mode = SmartcarMode::Test;
            let vault = Arc::new(StoreVault::new(
                store.clone(),
                vault_keys,
                SMARTCAR_CLOUD.id,
                clock.clone(),
            ));
            let cloud = SmartcarCloud::new(smartcar, vault, clock.clone()).unwrap();
            BuiltClouds::default().with_smartcar(Arc::new(cloud))
        }),
    )
    .await;
    // Registered in "Smartcar's dashboard" once the server's address is known.
    fake.register_redirect_uri(&s.url("/connect/callback/smartcar"));
    let worker = Worker::new(
        s.store.clone(),
        Clouds::new().with_built(&built),
        s.clock.clone(),
        WorkerConfig::new("smartcar-test"),
    );
    World {
        s,
        fake,
        worker,
        keys,
        car,
    }
}

fn param(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// From a Connect brand page: picks Tesla, logs in at the fake's Connect with the browser, and
/// follows the redirects back until the browser leaves for the partner (returned).
async fn connect_tesla(w: &World, browser: &Browser, start_url: &str) -> Option<String> {
    let start = browser.get(start_url).await;
    assert_eq!(start.status, 200, "{}", start.body);
    let form = start
        .form(Some(("action", "continue")))
        .set("brand", "smartcar:TESLA");
    assert!(
        form.options.iter().any(|(_, v)| v == "smartcar:TESLA"),
        "{:?}",
        form.options
    );
    let to_connect = browser.submit(&form).await;
    assert_eq!(to_connect.status, 303, "{}", to_connect.body);
    let authorize = to_connect.location().unwrap();
    assert!(authorize.starts_with(&w.fake.connect_base()), "{authorize}");
    assert_eq!(param(&authorize, "make").as_deref(), Some("TESLA"));
    assert_eq!(param(&authorize, "mode").as_deref(), Some("test"));
    let scope = param(&authorize, "scope").unwrap();
    assert!(scope.contains("control_charge"), "{scope}");
    // Smartcar's own login page, filled in by the driver.
    let login = browser.get(&authorize).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let back = browser
        .submit(
            &login
                .form(Some(("action", "allow")))
                .set("email", EMAIL)
                .set("password", PASSWORD),
        )
        .await;
    assert!(back.is_redirect(), "{}", back.body);
    assert!(
        back.location()
            .unwrap()
            .starts_with(&w.s.url("/connect/callback/smartcar?")),
        "{:?}",
        back.location()
    );
    let (page, left) = browser.follow(back, PARTNER).await;
    if left.is_some() {
        return left;
    }
    // The vehicles page: the account's one car, picked.
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Tesla Model 3 (2022)"), "{}", page.body);
    assert!(page.body.contains("5YJ3E1EA7KF000001"));
    let done = browser
        .submit(&page.form(Some(("action", "connect"))))
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    done.location()
}

fn ev_detail_path(t: &Tenant, user: Uuid, ev: Uuid) -> String {
    ev_path(t.org_id, user, ev)
}

#[tokio::test]
async fn a_smartcar_car_is_connected_steered_pushed_revoked_and_relinked() {
    for backend in backends() {
        let w = world(&backend).await;
        let s = &w.s;
        s.cheap_night_hour_prices().await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let (status, session) = s
            .post(
                &t.token,
                "/api/partners/v2.0/device-onboarding",
                json!({"language": "en", "price_zone_default": "DE_LU",
                       "is_smart_optimization_active_default": true,
                       "success_url": SUCCESS, "cancel_url": CANCEL, "user_id": user}),
            )
            .await;
        assert_eq!(status, 200, "{session}");
        let browser = Browser::new();
        let landed = connect_tesla(
            &w,
            &browser,
            session["authentication_url"].as_str().unwrap(),
        )
        .await
        .expect("back at the partner");
        assert!(landed.starts_with(SUCCESS), "{landed}");
        let ev: Uuid = param(&landed, "object_id").unwrap().parse().unwrap();

        let (_, detail) = s.get(&t.token, &ev_detail_path(&t, user, ev)).await;
        assert_eq!(detail["is_authenticated"], true, "{detail}");
        assert_eq!(detail["device_model"]["manufacturer"], "Tesla");
        assert_eq!(detail["device_model"]["model"], "Model 3");
        assert_eq!(detail["device_model"]["year"], 2022);
        assert_eq!(detail["device_model"]["vin"], "5YJ3E1EA7KF000001");
        assert_eq!(
            detail["device_model"]["cloud_service"],
            json!(SMARTCAR_CLOUD.id)
        );
        // The tokens are stored sealed: the database never holds them in clear.
        let (account, link) = s.store.account_for_vehicle(ev).await.unwrap().unwrap();
        assert_eq!(link.cloud_vehicle_id, w.car);
        assert_eq!(account.tokens.key_id, "k2");
        let tokens = open_tokens(&w.keys, &account).unwrap();
        let plain = tokens.access_token.expose().as_bytes();
        assert!(
            !account
                .tokens
                .access_token
                .windows(plain.len())
                .any(|window| window == plain)
        );

        // 80 % by 07:00; 70 % now. The night's cheap hour (02:00–03:00 UTC) is enough, so the
        // worker stops the charging the car began on plug-in, and starts it in that hour.
        let (status, body) = s
            .put(
                &t.token,
                &ev_detail_path(&t, user, ev),
                json!({"minimum_charge_limit": 80, "charge_target_min": 20,
                       "charge_deadline_at": "07:00"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        w.worker.run_once().await.unwrap();
        let (_, detail) = s.get(&t.token, &ev_detail_path(&t, user, ev)).await;
        assert_eq!(detail["battery_level"], 70, "{detail}");
        assert_eq!(detail["is_plugged_in"], true);
        let actions: Vec<FakeAction> = w
            .fake
            .commands(&w.car)
            .into_iter()
            .map(|c| c.action)
            .collect();
        assert_eq!(
            actions,
            [FakeAction::StopCharging],
            "stopped until the cheap hour"
        );
        assert!(!w.fake.vehicle(&w.car).unwrap().charging);

        let cheap = Utc.with_ymd_and_hms(2026, 11, 27, 2, 5, 0).unwrap();
        let ahead = cheap - s.clock_now();
        s.clock.advance(ahead);
        w.fake.advance(ahead);
        // The partner's token lapsed on the same clock: a new one.
        let t = Tenant {
            token: s.token(&t.client_id, &t.client_secret).await,
            ..t
        };
        w.worker.run_once().await.unwrap();
        let actions: Vec<FakeAction> = w
            .fake
            .commands(&w.car)
            .into_iter()
            .map(|c| c.action)
            .collect();
        assert_eq!(
            actions,
            [FakeAction::StopCharging, FakeAction::StartCharging],
            "started in the cheap hour (the access token, 14 h old, was refreshed first)"
        );
        assert!(w.fake.vehicle(&w.car).unwrap().charging);

        // A signed webhook: the car's new state arrives pushed, and the next read uses it
        // without calling Smartcar.
        let hook = s.url("/webhooks/smartcar");
        let verify = w.fake.send_verify(&hook).await.unwrap();
        assert!(verify.accepted, "{verify:?}");
        w.fake.advance(Duration::minutes(10));
        s.clock.advance(Duration::minutes(10));
        w.fake
            .update_vehicle(&w.car, |car| car.level_percent = 76.0)
            .unwrap();
        let event = w.fake.vehicle_state_event(&w.car).unwrap();
        let body = event.to_string();
        let reply = w.fake.send_signed(&hook, body.as_bytes()).await.unwrap();
        assert_eq!(reply.status, 204, "{reply:?}");
        let again = w.fake.send_signed(&hook, body.as_bytes()).await.unwrap();
        assert_eq!(
            again.status, 204,
            "a redelivery is acknowledged, applied once"
        );
        let forged =
            w.s.http
                .post(&hook)
                .header("SC-Signature", "00".repeat(32))
                .body(body.clone())
                .send()
                .await
                .unwrap();
        assert_eq!(forged.status(), 401, "a wrong signature is refused");
        let calls_before = w.fake.api_calls(&w.car);
        w.worker.run_once().await.unwrap();
        assert_eq!(w.fake.api_calls(&w.car), calls_before, "read from the push");
        let (_, detail) = s.get(&t.token, &ev_detail_path(&t, user, ev)).await;
        assert_eq!(detail["battery_level"], 76, "{detail}");

        // The owner withdraws access at Smartcar. Once the push is stale the worker calls
        // Smartcar, is refused, and the car needs re-authentication.
        w.fake.revoke_account(EMAIL).unwrap();
        w.fake.advance(Duration::minutes(45));
        s.clock.advance(Duration::minutes(45));
        w.worker.run_once().await.unwrap();
        let (_, detail) = s.get(&t.token, &ev_detail_path(&t, user, ev)).await;
        assert_eq!(detail["is_authenticated"], false, "{detail}");
        assert_eq!(detail["actions"][0]["code"], "reauthenticate", "{detail}");
        let link = detail["actions"][0]["resolution_link"]["url"]
            .as_str()
            .unwrap()
            .to_owned();

        // The partner resolves the cue; the driver logs in at Smartcar again and grants access.
        let (status, resolved) = s
            .post(
                &t.token,
                &link[s.base.len()..],
                json!({"successUrl": SUCCESS, "cancelUrl": CANCEL}),
            )
            .await;
        assert_eq!(status, 200, "{resolved}");
        let relinked =
            connect_tesla_again(&w, &browser, resolved["redirect_url"].as_str().unwrap()).await;
        assert!(relinked.starts_with(SUCCESS), "{relinked}");
        assert_eq!(param(&relinked, "object_id"), Some(ev.to_string()));
        w.worker.run_once().await.unwrap();
        let (_, detail) = s.get(&t.token, &ev_detail_path(&t, user, ev)).await;
        assert_eq!(detail["is_authenticated"], true, "{detail}");
        assert_eq!(detail["actions"], json!([]));
        let (_, evs) = s.get(&t.token, &evs_path(t.org_id, user)).await;
        assert_eq!(
            evs.as_array().unwrap().len(),
            1,
            "re-linked, not duplicated: {evs}"
        );
        w.s.stop().await;
    }
}

/// The re-link walk: the driver grants access again at Smartcar and logs in.
async fn connect_tesla_again(w: &World, browser: &Browser, url: &str) -> String {
    w.fake.restore_account(EMAIL).unwrap();
    connect_tesla(w, browser, url)
        .await
        .expect("back at the partner")
}

#[tokio::test]
async fn refusals_at_smartcar_reach_the_partner_as_reasons() {
    for backend in backends() {
        let w = world(&backend).await;
        let s = &w.s;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let body = json!({"language": "en", "price_zone_default": "AT",
                          "success_url": SUCCESS, "cancel_url": CANCEL, "user_id": user});
        // The driver denies access at Smartcar's login.
        let url = start_session(s, &t, body.clone()).await;
        let browser = Browser::new();
        let page = browser.get(&url).await;
        let to_connect = browser
            .submit(
                &page
                    .form(Some(("action", "continue")))
                    .set("brand", "smartcar:"),
            )
            .await;
        let authorize = to_connect.location().unwrap();
        assert_eq!(
            param(&authorize, "make"),
            None,
            "another brand: Smartcar asks"
        );
        let login = browser.get(&authorize).await;
        let back = browser.submit(&login.form(Some(("action", "deny")))).await;
        let (_, landed) = browser.follow(back, PARTNER).await;
        let landed = landed.unwrap();
        assert!(landed.starts_with(CANCEL), "{landed}");
        assert_eq!(param(&landed, "reason").as_deref(), Some("access_denied"));
        // A forged code (the state is genuine): the exchange fails, the partner hears `error`.
        let url = start_session(s, &t, body.clone()).await;
        let page = browser.get(&url).await;
        let to_connect = browser
            .submit(
                &page
                    .form(Some(("action", "continue")))
                    .set("brand", "smartcar:TESLA"),
            )
            .await;
        let state = param(&to_connect.location().unwrap(), "state").unwrap();
        let forged = browser
            .get(&format!(
                "{}?code=not-a-code&state={}",
                s.url("/connect/callback/smartcar"),
                urlencode(&state)
            ))
            .await;
        let (_, landed) = browser.follow(forged, PARTNER).await;
        let landed = landed.unwrap();
        assert!(landed.starts_with(CANCEL), "{landed}");
        assert_eq!(param(&landed, "reason").as_deref(), Some("error"));
        let (_, evs) = s.get(&t.token, &evs_path(t.org_id, user)).await;
        assert_eq!(evs, json!([]));
        w.s.stop().await;
    }
}

async fn start_session(s: &TestServer, t: &Tenant, body: Value) -> String {
    let (status, session) = s
        .post(&t.token, "/api/partners/v2.0/device-onboarding", body)
        .await;
    assert_eq!(status, 200, "{session}");
    session["authentication_url"].as_str().unwrap().to_owned()
}

fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
