//! The fake Smartcar on its own, over HTTP: Connect's checks, the token endpoint's rules, the API's
//! documented errors and the webhook sender.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::Duration;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use voltplan_test_support::fake_smartcar::{FakeConfig, FakeSmartcar, FakeVehicle};

const EMAIL: &str = "owner@example.com";
const PASSWORD: &str = "pw";
const SCOPE: &str = "read_vehicle_info read_battery read_charge control_charge";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("fake-smartcar-tests")
        .build()
        .unwrap()
}

fn authorize_url(fake: &FakeSmartcar, overrides: &[(&str, &str)]) -> String {
    let config = fake.config();
    let mut params: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", config.client_id.clone()),
        ("redirect_uri", config.redirect_uris[0].clone()),
        ("scope", SCOPE.into()),
        ("state", "st-1".into()),
        ("mode", "test".into()),
    ];
    for (name, value) in overrides {
        params.retain(|(n, _)| n != name);
        params.push((name, (*value).to_owned()));
    }
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", fake.connect_base())).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

async fn started() -> (FakeSmartcar, String) {
    let fake = FakeSmartcar::start().await.unwrap();
    fake.add_account(EMAIL, PASSWORD).unwrap();
    let car = fake
        .add_vehicle(EMAIL, FakeVehicle::new("TESLA", "Model Y", 2023, "VIN1"))
        .unwrap();
    (fake, car)
}

async fn code(fake: &FakeSmartcar) -> String {
    let location = fake
        .log_in(&authorize_url(fake, &[]), EMAIL, PASSWORD, true)
        .await
        .unwrap();
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

async fn token(fake: &FakeSmartcar, form: &[(&str, &str)]) -> (u16, Value) {
    let config = fake.config();
    let response = client()
        .post(format!("{}/oauth/token", fake.auth_base()))
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .form(form)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn tokens(fake: &FakeSmartcar) -> (String, String) {
    let code = code(fake).await;
    let redirect = fake.config().redirect_uris[0].clone();
    let (status, body) = token(
        fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn connect_checks_its_parameters_and_shows_a_post_form() {
    let (fake, _) = started().await;
    let page = client()
        .get(authorize_url(&fake, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("method=\"post\""));
    assert!(html.contains("name=\"password\""));

    for bad in [
        ("client_id", "someone-else"),
        ("redirect_uri", "https://evil.example/cb"),
        ("response_type", "token"),
        ("scope", ""),
        ("scope", "read_everything"),
        ("state", ""),
    ] {
        let status = client()
            .get(authorize_url(&fake, &[bad]))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 400, "{bad:?}");
    }

    // A wrong password shows the form again; no redirect.
    assert!(matches!(
        fake.log_in(&authorize_url(&fake, &[]), EMAIL, "wrong", true)
            .await,
        Err(voltplan_test_support::fake_smartcar::FakeError::NoRedirect(
            401
        ))
    ));
}

#[tokio::test]
async fn codes_are_single_use_and_expire_after_ten_minutes() {
    let (fake, _) = started().await;
    let redirect = fake.config().redirect_uris[0].clone();
    let first = code(&fake).await;
    let exchange = |code: String| {
        let redirect = redirect.clone();
        let fake = &fake;
        async move {
            token(
                fake,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &redirect),
                ],
            )
            .await
        }
    };
    assert_eq!(exchange(first.clone()).await.0, 200);
    let (status, body) = exchange(first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let late = code(&fake).await;
    fake.advance(Duration::minutes(10));
    assert_eq!(exchange(late).await.1["error"], "invalid_grant");

    // Wrong client secret.
    let response = client()
        .post(format!("{}/oauth/token", fake.auth_base()))
        .basic_auth(&fake.config().client_id, Some("nope"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
}

#[tokio::test]
async fn a_used_refresh_token_works_for_one_more_minute() {
    let (fake, _) = started().await;
    let (_, refresh) = tokens(&fake).await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, rotated) = token(&fake, &form).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["refresh_token"].as_str(), Some(refresh.as_str()));
    fake.advance(Duration::seconds(59));
    assert_eq!(token(&fake, &form).await.0, 200);
    fake.advance(Duration::seconds(2));
    assert_eq!(token(&fake, &form).await.1["error"], "invalid_grant");

    // A revoked account's refresh tokens all die.
    let new_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    fake.revoke_account(EMAIL).unwrap();
    let (status, body) = token(
        &fake,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &new_refresh),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

async fn api(
    fake: &FakeSmartcar,
    access: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = client().request(method, format!("{}{path}", fake.api_base()));
    if let Some(access) = access {
        request = request.bearer_auth(access);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_api_answers_with_documented_bodies_headers_and_errors() {
    let (fake, car) = started().await;
    let (access, _) = tokens(&fake).await;

    let battery = api(
        &fake,
        Some(&access),
        reqwest::Method::GET,
        &format!("/vehicles/{car}/battery"),
        None,
    )
    .await;
    assert_eq!(battery.status(), 200);
    assert!(battery.headers().contains_key("sc-request-id"));
    assert!(battery.headers().contains_key("sc-data-age"));
    assert_eq!(
        battery.json::<Value>().await.unwrap()["percentRemaining"],
        0.5
    );

    let missing_token = api(
        &fake,
        None,
        reqwest::Method::GET,
        &format!("/vehicles/{car}/charge"),
        None,
    )
    .await;
    assert_eq!(missing_token.status(), 401);
    assert_eq!(
        missing_token.json::<Value>().await.unwrap()["type"],
        "AUTHENTICATION"
    );

    // Not granted read_location.
    let location = api(
        &fake,
        Some(&access),
        reqwest::Method::GET,
        &format!("/vehicles/{car}/location"),
        None,
    )
    .await;
    assert_eq!(location.status(), 403);

    let start = api(
        &fake,
        Some(&access),
        reqwest::Method::POST,
        &format!("/vehicles/{car}/charge"),
        Some(json!({ "action": "START" })),
    )
    .await;
    assert_eq!(start.status(), 409);
    let body: Value = start.json().await.unwrap();
    assert_eq!(
        (body["type"].as_str(), body["code"].as_str()),
        (Some("VEHICLE_STATE"), Some("CHARGING_PLUG_NOT_CONNECTED"))
    );
    assert!(fake.commands(&car).is_empty());

    let limit = api(
        &fake,
        Some(&access),
        reqwest::Method::POST,
        &format!("/vehicles/{car}/charge/limit"),
        Some(json!({ "limit": 0.3 })),
    )
    .await;
    assert_eq!(limit.status(), 400);

    fake.throttle_vehicle(&car, Duration::seconds(30)).unwrap();
    let throttled = api(
        &fake,
        Some(&access),
        reqwest::Method::GET,
        &format!("/vehicles/{car}/charge"),
        None,
    )
    .await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "30");
    assert_eq!(throttled.json::<Value>().await.unwrap()["code"], "VEHICLE");

    // Access tokens die after two hours.
    fake.advance(Duration::hours(2));
    let expired = api(&fake, Some(&access), reqwest::Method::GET, "/user", None).await;
    assert_eq!(expired.status(), 401);
    // battery, charge (401), location (403), START, limit, throttled: /user names no car.
    assert_eq!(fake.api_calls(&car), 6);
}

#[tokio::test]
async fn charging_follows_the_fakes_clock_up_to_the_limit() {
    let (fake, car) = started().await;
    fake.update_vehicle(&car, |car| {
        car.plugged_in = true;
        car.level_percent = 70.0;
    })
    .unwrap();
    let (access, _) = tokens(&fake).await;
    let start = api(
        &fake,
        Some(&access),
        reqwest::Method::POST,
        &format!("/vehicles/{car}/charge"),
        Some(json!({ "action": "START" })),
    )
    .await;
    assert_eq!(start.status(), 200);
    // 11 kW on 60 kWh: +9.17 % in 30 min, then capped at the 80 % limit.
    fake.advance(Duration::minutes(30));
    let level = fake.vehicle(&car).unwrap().level_percent;
    assert!((level - 79.1667).abs() < 1e-3, "{level}");
    fake.advance(Duration::minutes(30));
    let car_now = fake.vehicle(&car).unwrap();
    assert_eq!(car_now.level_percent, 80.0);
    assert!(!car_now.charging);
    let charge: Value = api(
        &fake,
        Some(&access),
        reqwest::Method::GET,
        &format!("/vehicles/{car}/charge"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(charge["state"], "FULLY_CHARGED");
}

/// A receiver written here from the docs (not from the fake): it checks `SC-Signature` with its
/// own HMAC and answers VERIFY.
async fn receiver(management_token: String) -> String {
    let app = Router::new().route(
        "/webhooks/smartcar",
        post(move |headers: HeaderMap, body: Bytes| {
            let key = management_token.clone();
            async move {
                let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
                mac.update(&body);
                let expected = hex::encode(mac.finalize().into_bytes());
                let signature = headers
                    .get("sc-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if signature != expected {
                    return (axum::http::StatusCode::UNAUTHORIZED, String::new());
                }
                let event: Value = serde_json::from_slice(&body).unwrap();
                if event["eventType"] == "VERIFY" {
                    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
                    mac.update(event["data"]["challenge"].as_str().unwrap().as_bytes());
                    let answer = hex::encode(mac.finalize().into_bytes());
                    return (
                        axum::http::StatusCode::OK,
                        json!({ "challenge": answer }).to_string(),
                    );
                }
                (
                    axum::http::StatusCode::OK,
                    event["data"]["vehicle"]["id"].to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/webhooks/smartcar")
}

#[tokio::test]
async fn webhooks_are_signed_with_the_management_token() {
    let fake = FakeSmartcar::start_with(FakeConfig {
        management_token: "amt-for-this-test".to_owned(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    fake.add_account(EMAIL, PASSWORD).unwrap();
    let car = fake
        .add_vehicle(EMAIL, FakeVehicle::new("TESLA", "Model Y", 2023, "VIN1"))
        .unwrap();
    let url = receiver("amt-for-this-test".to_owned()).await;

    let verify = fake.send_verify(&url).await.unwrap();
    assert!(verify.accepted, "{verify:?}");

    let reply = fake.send_vehicle_state(&url, &car).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, format!("\"{car}\""));

    let event = fake.vehicle_state_event(&car).unwrap();
    let codes: HashMap<&str, &Value> = event["data"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["code"].as_str().unwrap(), &s["body"]))
        .collect();
    assert_eq!(codes["tractionbattery-stateofcharge"]["value"], 50.0);
    assert_eq!(codes["charge-ischargingcableconnected"]["value"], false);

    // A receiver with another key refuses.
    let other = receiver("another-key".to_owned()).await;
    assert_eq!(
        fake.send_vehicle_state(&other, &car).await.unwrap().status,
        401
    );
    assert!(!fake.send_verify(&other).await.unwrap().accepted);
}
