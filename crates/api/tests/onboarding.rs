//! Device onboarding (`POST/GET /device-onboarding`), its Connect pages walked by a browser-like
//! client through the sandbox's simulated cloud login, and cues (`/cues/{id}/resolve`, `/state`)
//! re-linking a revoked car; on SQLite and PostgreSQL, with the real worker reading the cars.

mod common;

use chrono::Duration;
use common::browser::{Browser, Page};
use common::*;
use serde_json::{Value, json};
use uuid::Uuid;
use voltplan_clouds::SANDBOX_CLOUD;
use voltplan_worker::Worker;

const PARTNER: &str = "https://partner.example/";
const SUCCESS: &str = "https://partner.example/onboarding/done?customer=CUST-1";
const CANCEL: &str = "https://partner.example/onboarding/cancelled?customer=CUST-1";
const ONBOARDING: &str = "/api/partners/v2.0/device-onboarding";

async fn start_onboarding(s: &TestServer, t: &Tenant, body: Value) -> Value {
    let (status, session) = s.post(&t.token, ONBOARDING, body).await;
    assert_eq!(status, 200, "{session}");
    session
}

fn body_for(user: Uuid) -> Value {
    json!({
        "language": "en",
        "price_zone_default": "DE_LU",
        "is_smart_optimization_active_default": true,
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        "user_id": user,
    })
}

/// The query parameters of a partner URL the browser was sent to.
fn query_of(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(url: &str, key: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// From the brand page, picks the sandbox and logs in: returns the vehicles page (or, for a
/// re-link, the redirect to the partner).
async fn sandbox_login(
    browser: &Browser,
    brand_page: &Page,
    email: &str,
) -> (Page, Option<String>) {
    assert_eq!(brand_page.status, 200, "{}", brand_page.body);
    let form = brand_page
        .form(Some(("action", "continue")))
        .set("brand", "sandbox:");
    let to_login = browser.submit(&form).await;
    assert_eq!(to_login.status, 303, "{}", to_login.body);
    let login = browser.get(&to_login.location().unwrap()).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let form = login
        .form(Some(("decision", "allow")))
        .set("email", email)
        .set("password", "anything");
    let back = browser.submit(&form).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert!(
        back.location()
            .unwrap()
            .contains("/connect/callback/sandbox?")
    );
    browser.follow(back, PARTNER).await
}

#[tokio::test]
async fn partners_create_and_read_onboarding_sessions() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let building = id_of(&s.create_building(&t, user, json!({"name": "Home"})).await);
        let mut body = body_for(user);
        body["building_id"] = json!(building);
        body["device_type"] = json!("ev");
        body["external_metadata"] = json!({"campaign": "winter"});
        let created = start_onboarding(&s, &t, body).await;
        let id = id_of(&created);
        assert_eq!(
            id.get_version_num(),
            4,
            "random: the id is the page's secret"
        );
        assert_eq!(
            created["authentication_url"],
            s.url(&format!("/connect/onboarding/{id}"))
        );
        assert_eq!(created["user"], json!(user));
        assert_eq!(created["building_id"], json!(building));
        assert_eq!(created["status"], "pending");
        assert_eq!(created["object_id"], Value::Null);
        assert_eq!(created["object_ids"], json!([]));
        assert_eq!(created["external_metadata"], json!({"campaign": "winter"}));
        // Created 2026-11-26: valid to the end of the next day.
        assert_eq!(created["expiration_date"], "2026-11-27");
        let (status, read) = s.get(&t.token, &format!("{ONBOARDING}/{id}")).await;
        assert_eq!((status, &read), (200, &created));

        // Another organisation sees nothing, and cannot onboard for this user.
        let (other, _) = s.tenant_with_user("Utility B").await;
        let (status, _) = s.get(&other.token, &format!("{ONBOARDING}/{id}")).await;
        assert_eq!(status, 404);
        let (status, _) = s.post(&other.token, ONBOARDING, body_for(user)).await;
        assert_eq!(status, 404);
        // A building of another user is as unknown.
        let bob = s.create_user(&t, "bob@example.com").await;
        let mut body = body_for(bob);
        body["building_id"] = json!(building);
        let (status, _) = s.post(&t.token, ONBOARDING, body).await;
        assert_eq!(status, 404);
        // Without a token: 401.
        let r = s
            .http
            .post(s.url(ONBOARDING))
            .json(&body_for(user))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        // Every invalid field is named.
        let (status, error) = s
            .post(
                &t.token,
                ONBOARDING,
                json!({"language": "xx", "price_zone_default": "MARS", "success_url": "/done",
                       "cancel_url": null, "device_type": "wb", "color": "red"}),
            )
            .await;
        assert_eq!(status, 422, "{error}");
        let mut fields = invalid_fields(&error);
        fields.sort();
        assert_eq!(
            fields,
            [
                "cancel_url",
                "color",
                "device_type",
                "language",
                "price_zone_default",
                "success_url",
                "user_id"
            ],
            "{error}"
        );
        // PostgreSQL's JSONB cannot hold a NUL: refused as input, not a 500.
        let mut body = body_for(user);
        body["external_metadata"] = json!({"a\0": [{"b": "c\0"}]});
        let (status, error) = s.post(&t.token, ONBOARDING, body).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(invalid_fields(&error), ["external_metadata"]);
        let (status, _) = s.get(&t.token, &format!("{ONBOARDING}/not-a-uuid")).await;
        assert_eq!(status, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_driver_connects_sandbox_cars_through_the_connect_pages() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let worker = s.sandbox_worker(&sandbox, "onboarding-test");
        let (t, user) = s.tenant_with_user("Utility A").await;
        let building = id_of(&s.create_building(&t, user, json!({"name": "Home"})).await);
        let mut body = body_for(user);
        body["building_id"] = json!(building);
        body["language"] = json!("de");
        let session = start_onboarding(&s, &t, body).await;
        let session_id = id_of(&session);

        let browser = Browser::new();
        let start = browser
            .get(session["authentication_url"].as_str().unwrap())
            .await;
        assert_eq!(start.status, 200);
        assert!(start.body.contains("<html lang=\"de\">"), "{}", start.body);
        assert!(start.body.contains("Auto verbinden"));
        let csp = start.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(
            csp.contains("form-action 'self' https://partner.example"),
            "{csp}"
        );
        assert_eq!(start.headers["cache-control"], "no-store");
        let cookie = start.headers["set-cookie"].to_str().unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(!start.body.contains("<script"), "no scripts");

        let (vehicles, left) = sandbox_login(&browser, &start, "anna@example.com").await;
        assert_eq!(left, None);
        assert_eq!(vehicles.status, 200, "{}", vehicles.body);
        let (_, read) = s.get(&t.token, &format!("{ONBOARDING}/{session_id}")).await;
        assert_eq!(read["status"], "choosing");
        let form = vehicles.form(Some(("action", "connect")));
        assert_eq!(form.options.len(), 2, "the sandbox account shares two cars");
        let done = browser.submit(&form).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let landed = done.location().unwrap();
        assert!(landed.starts_with(SUCCESS), "{landed}");
        assert_eq!(param(&landed, "customer").as_deref(), Some("CUST-1"));
        assert_eq!(
            param(&landed, "onboarding_session_id"),
            Some(session_id.to_string())
        );
        let object_ids: Vec<String> = param(&landed, "object_ids")
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        assert_eq!(object_ids.len(), 2);
        assert_eq!(param(&landed, "object_id"), Some(object_ids[0].clone()));

        let (_, read) = s.get(&t.token, &format!("{ONBOARDING}/{session_id}")).await;
        assert_eq!(read["status"], "completed", "{read}");
        assert_eq!(read["object_ids"], json!(object_ids));
        assert_eq!(read["object_id"], json!(object_ids[0]));

        // The cars are the user's, with the session's defaults and the cars' own data.
        let (_, list) = s.get(&t.token, &evs_path(t.org_id, user)).await;
        let evs = list.as_array().unwrap();
        assert_eq!(evs.len(), 2, "{list}");
        for ev in evs {
            assert!(object_ids.contains(&ev["id"].as_str().unwrap().to_owned()));
            assert_eq!(ev["price_zone"], "DE_LU");
            assert_eq!(ev["building"], json!(building));
            assert_eq!(ev["is_smart_optimization_active"], true);
            assert_eq!(ev["is_authenticated"], true);
            let model = &ev["device_model"];
            assert_eq!(model["cloud_service"], json!(SANDBOX_CLOUD.id));
            assert!(
                model["manufacturer"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
            assert!(
                model["vin"].as_str().is_some_and(|v| v.len() == 17),
                "{model}"
            );
        }
        // The worker reads them like any sandbox car.
        let stats = worker.run_once().await.unwrap();
        assert!(stats.completed >= 2, "{stats:?}");
        for id in &object_ids {
            let id: Uuid = id.parse().unwrap();
            assert!(sandbox.snapshot(id).is_ok(), "the sandbox knows {id}");
            let (_, ev) = s.get(&t.token, &ev_path(t.org_id, user, id)).await;
            assert_eq!(ev["is_authenticated"], true, "{ev}");
            assert_eq!(ev["actions"], json!([]));
        }

        // Single use: the session's pages are gone.
        let again = browser
            .get(session["authentication_url"].as_str().unwrap())
            .await;
        assert_eq!(again.status, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn forged_replayed_and_expired_walks_are_refused() {
    for backend in backends() {
        let (s, _sandbox) = TestServer::start_with_sandbox(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let session = start_onboarding(&s, &t, body_for(user)).await;
        let url = session["authentication_url"].as_str().unwrap();
        let browser = Browser::new();
        let start = browser.get(url).await;
        let form = start.form(Some(("action", "continue")));

        // Posted from another site: refused, nothing changes.
        let forged = browser.submit_from(&form, "https://evil.example").await;
        assert_eq!(forged.status, 403);
        // Without the form's token, or with one made for another browser: refused.
        let forged = browser.submit(&form.clone().unset("csrf")).await;
        assert_eq!(forged.status, 403);
        let other_browser = Browser::new();
        let _ = other_browser.get(url).await;
        let forged = other_browser.submit(&form).await;
        assert_eq!(forged.status, 403, "another browser's token");
        let (_, read) = s
            .get(&t.token, &format!("{ONBOARDING}/{}", id_of(&session)))
            .await;
        assert_eq!(read["status"], "pending");

        // A login finished in another browser (someone else's account) cannot land here.
        let to_login = browser.submit(&form).await;
        let login = browser.get(&to_login.location().unwrap()).await;
        let back = browser
            .submit(
                &login
                    .form(Some(("decision", "allow")))
                    .set("email", "a@b.example"),
            )
            .await;
        let callback = back.location().unwrap();
        let hijack = other_browser.get(&callback).await;
        assert_eq!(hijack.status, 403, "state bound to the browser");
        // The rightful browser still completes it, once; a replayed callback finds nothing.
        let first = browser.get(&callback).await;
        assert_eq!(first.status, 303, "{}", first.body);
        assert!(first.location().unwrap().ends_with("/vehicles"));
        let replay = browser.get(&callback).await;
        assert_eq!(replay.status, 404, "state is single use");

        // Cancelling sends the browser to the cancel URL with the reason.
        let vehicles = browser.get(&first.location().unwrap()).await;
        let cancelled = browser
            .submit(&vehicles.form(Some(("action", "cancel"))))
            .await;
        let landed = cancelled.location().unwrap();
        assert!(landed.starts_with(CANCEL), "{landed}");
        assert_eq!(param(&landed, "reason").as_deref(), Some("cancelled"));
        let (_, read) = s
            .get(&t.token, &format!("{ONBOARDING}/{}", id_of(&session)))
            .await;
        assert_eq!(read["status"], "cancelled");
        assert_eq!(read["object_ids"], json!([]));

        // A driver who denies access at the cloud's login: the cancel URL, access_denied.
        let session = start_onboarding(&s, &t, body_for(user)).await;
        let start = browser
            .get(session["authentication_url"].as_str().unwrap())
            .await;
        let to_login = browser
            .submit(&start.form(Some(("action", "continue"))))
            .await;
        let login = browser.get(&to_login.location().unwrap()).await;
        let back = browser
            .submit(&login.form(Some(("decision", "deny"))))
            .await;
        let (_, landed) = browser.follow(back, PARTNER).await;
        let landed = landed.unwrap();
        assert!(landed.starts_with(CANCEL), "{landed}");
        assert_eq!(param(&landed, "reason").as_deref(), Some("access_denied"));

        // A session past its end: its page is gone, and the partner reads it expired.
        let session = start_onboarding(&s, &t, body_for(user)).await;
        s.clock.advance(Duration::days(2));
        let late = browser
            .get(session["authentication_url"].as_str().unwrap())
            .await;
        assert_eq!(late.status, 404);
        // (The partner's token expired too, on the same clock.)
        let token = s.token(&t.client_id, &t.client_secret).await;
        let (_, read) = s
            .get(&token, &format!("{ONBOARDING}/{}", id_of(&session)))
            .await;
        assert_eq!(read["status"], "expired");

        // Unknown or malformed ids: the same 404 page.
        for path in [
            "/connect/onboarding/nope",
            "/connect/onboarding/00000000-0000-4000-8000-000000000000",
        ] {
            assert_eq!(browser.get(&s.url(path)).await.status, 404);
        }
        let (_, evs) = s.get(&token, &evs_path(t.org_id, user)).await;
        assert_eq!(evs, json!([]), "no car was created by any of this");
        s.stop().await;
    }
}

/// A sandbox car whose owner revoked access, after a worker cycle saw it.
async fn revoked_sandbox_car(s: &TestServer, t: &Tenant, user: Uuid, worker: &Worker) -> Uuid {
    let ev = id_of(&s.create_sandbox_ev(t, user, "tesla").await);
    worker.run_once().await.unwrap();
    let (status, _) = s
        .post_empty(
            &t.token,
            &format!("{}/revoke-authorization", sandbox_ev_path(t.org_id, ev)),
        )
        .await;
    assert_eq!(status, 200);
    worker.run_once().await.unwrap();
    ev
}

#[tokio::test]
async fn a_revoked_car_is_relinked_through_its_cue() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let worker = s.sandbox_worker(&sandbox, "onboarding-test");
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = revoked_sandbox_car(&s, &t, user, &worker).await;
        let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, ev)).await;
        assert_eq!(detail["is_authenticated"], false, "{detail}");
        let action = detail["actions"][0].clone();
        assert_eq!(action["code"], "reauthenticate");
        assert_eq!(
            action["resolution_link"]["required_parameters"],
            json!(["successUrl", "cancelUrl"])
        );
        let link = action["resolution_link"]["url"]
            .as_str()
            .unwrap()
            .to_owned();
        let cue_id = action["id"].as_str().unwrap();
        assert!(
            link.starts_with(&s.url(&format!("/api/partners/v2.0/cues/{cue_id}/resolve?secret="))),
            "{link}"
        );
        let state_url = link.replace("/resolve?", "/state?");

        // Not started yet: /state has nothing to report on.
        let (status, _) = s
            .post(
                &t.token,
                &state_url[s.base.len()..],
                json!({"state": "success"}),
            )
            .await;
        assert_eq!(status, 404);
        // A wrong secret, or another organisation's token, finds nothing.
        let (status, _) = s
            .post(
                &t.token,
                &format!("{}x", &link[s.base.len()..]),
                json!({"successUrl": SUCCESS, "cancelUrl": CANCEL}),
            )
            .await;
        assert_eq!(status, 404);
        let (other, _) = s.tenant_with_user("Utility B").await;
        let (status, _) = s
            .post(
                &other.token,
                &link[s.base.len()..],
                json!({"successUrl": SUCCESS, "cancelUrl": CANCEL}),
            )
            .await;
        assert_eq!(status, 404);
        let (status, error) = s
            .post(
                &t.token,
                &link[s.base.len()..],
                json!({"successUrl": "nope"}),
            )
            .await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(invalid_fields(&error), ["successUrl", "cancelUrl"]);

        // The secret is the capability: no bearer token is needed.
        let r = s
            .http
            .post(&link)
            .json(
                &json!({"successUrl": SUCCESS, "cancelUrl": CANCEL, "language": "de-AT",
                          "clientInfo": {"userAgent": "test"}}),
            )
            .send()
            .await
            .unwrap();
        let (status, resolved) = status_and_json(r).await;
        assert_eq!(status, 200, "{resolved}");
        let redirect = resolved["redirect_url"].as_str().unwrap();
        let browser = Browser::new();
        let start = browser.get(redirect).await;
        assert!(start.body.contains("Auto neu verbinden"), "{}", start.body);
        let (_, landed) = sandbox_login(&browser, &start, "anna@example.com").await;
        let landed = landed.expect("a re-link returns straight to the partner");
        assert!(landed.starts_with(SUCCESS), "{landed}");
        assert_eq!(param(&landed, "object_id"), Some(ev.to_string()));

        // The worker reads the car at once: linked again, the action gone.
        worker.run_once().await.unwrap();
        assert!(sandbox.snapshot(ev).unwrap().is_authorized);
        let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, ev)).await;
        assert_eq!(detail["is_authenticated"], true, "{detail}");
        assert_eq!(detail["actions"], json!([]));
        let (status, reported) = s
            .post(
                &t.token,
                &state_url[s.base.len()..],
                json!({"state": "success", "payload": {}}),
            )
            .await;
        assert_eq!(status, 200, "{reported}");
        assert_eq!(reported, json!({"action_id": cue_id}));
        let (status, error) = s
            .post(
                &t.token,
                &state_url[s.base.len()..],
                json!({"state": "maybe"}),
            )
            .await;
        assert_eq!(status, 422, "{error}");

        // An hour after the read, the secret has expired.
        s.clock.advance(Duration::minutes(61));
        let (status, _) = s
            .post(
                &t.token,
                &state_url[s.base.len()..],
                json!({"state": "success"}),
            )
            .await;
        assert_eq!(status, 404);
        s.stop().await;
    }
}
