//! `POST …/electric-vehicles/{id}/auth_session` and its consent page `/connect/{session_id}`:
//! a revoked sandbox car is re-linked by its driver, with the real worker seeing the result.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use uuid::Uuid;
use voltplan_store::{AuthSessionOutcome, OrgScope};
use voltplan_worker::{Worker, WorkerConfig};

const SUCCESS: &str = "https://partner.example/ev/connected?customer=CUST-1";
const CANCEL: &str = "https://partner.example/ev/cancelled?customer=CUST-1";

fn auth_session_path(org: Uuid, user: Uuid, ev: Uuid) -> String {
    format!("{}/auth_session", ev_path(org, user, ev))
}

/// The real live loop on the server's store, clock and sandbox.
/// One worker round; the vehicles of these tests are due (new, or woken), so it cycles them.
async fn cycle(worker: &Worker) {
    let stats = worker.run_once().await.unwrap();
    assert!(stats.completed >= 1, "nothing was cycled: {stats:?}");
}

/// A sandbox EV created through the API.
async fn sandbox_ev(s: &TestServer, t: &Tenant, user: Uuid, manufacturer: &str) -> Uuid {
    id_of(&s.create_sandbox_ev(t, user, manufacturer).await)
}

/// A sandbox EV whose owner revoked access, as the partner sees it after a worker cycle.
async fn revoked_ev(s: &TestServer, t: &Tenant, user: Uuid, worker: &Worker) -> Uuid {
    let ev = sandbox_ev(s, t, user, "tesla").await;
    cycle(worker).await;
    let (status, _) = s
        .post_empty(
            &t.token,
            &format!("{}/revoke-authorization", sandbox_ev_path(t.org_id, ev)),
        )
        .await;
    assert_eq!(status, 200);
    cycle(worker).await;
    let detail = detail(s, t, user, ev).await;
    assert_eq!(detail["is_authenticated"], false, "{detail}");
    assert_eq!(detail["actions"][0]["code"], "reauthenticate", "{detail}");
    ev
}

async fn detail(s: &TestServer, t: &Tenant, user: Uuid, ev: Uuid) -> Value {
    let (status, detail) = s.get(&t.token, &ev_path(t.org_id, user, ev)).await;
    assert_eq!(status, 200, "{detail}");
    detail
}

/// A browser's view: no bearer token, redirects not followed.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn open_page(url: &str) -> (u16, HeaderMap, String) {
    let r = browser().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// Submits the consent form as a browser does.
async fn submit(url: &str, form: &str) -> (u16, HeaderMap, String) {
    let r = browser()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn location(headers: &HeaderMap) -> &str {
    headers["location"].to_str().unwrap()
}

/// Starts a session and returns (authentication_url, session_id).
async fn start_session(
    s: &TestServer,
    t: &Tenant,
    user: Uuid,
    ev: Uuid,
    body: Value,
) -> (String, Uuid) {
    let (status, session) = s
        .post(&t.token, &auth_session_path(t.org_id, user, ev), body)
        .await;
    assert_eq!(status, 200, "{session}");
    (
        session["authentication_url"].as_str().unwrap().to_owned(),
        session["session_id"].as_str().unwrap().parse().unwrap(),
    )
}

#[tokio::test]
async fn auth_session_answers_a_consent_url_for_a_sandbox_vehicle() {
    for backend in backends() {
        let (s, _sandbox) = TestServer::start_with_sandbox(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = sandbox_ev(&s, &t, user, "tesla").await;

        let (status, body) = s
            .post(
                &t.token,
                &auth_session_path(t.org_id, user, ev),
                json!({"success_url": SUCCESS, "cancel_url": CANCEL}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["authentication_url", "device_id", "session_id"],
            "{body}"
        );
        assert_eq!(body["device_id"], json!(ev));
        let session_id: Uuid = body["session_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(session_id.get_version_num(), 4, "random, not time-ordered");
        // Absolute, on this server's configured public URL.
        assert_eq!(
            body["authentication_url"],
            json!(format!("{}/connect/{session_id}", s.base))
        );

        // Stored with its org, URLs and the end of the next UTC day (the test starts on
        // 2026-11-26 at 12:00).
        let stored = s.store.get_auth_session(session_id).await.unwrap();
        assert_eq!(stored.org_id, t.org_id);
        assert_eq!(stored.vehicle_id, ev);
        assert_eq!(stored.success_url.as_deref(), Some(SUCCESS));
        assert_eq!(stored.cancel_url.as_deref(), Some(CANCEL));
        assert_eq!(stored.created_at, s.clock_now());
        assert_eq!(
            stored.expires_at,
            Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap()
        );
        assert_eq!((stored.completed_at, stored.outcome), (None, None));

        // Both URLs are optional and nullable; each call is a new session.
        for body in [
            json!({}),
            json!({"success_url": null, "cancel_url": null}),
            json!({"success_url": SUCCESS}),
        ] {
            let (status, again) = s
                .post(&t.token, &auth_session_path(t.org_id, user, ev), body)
                .await;
            assert_eq!(status, 200, "{again}");
            assert_ne!(again["session_id"], json!(session_id));
        }
        let (status, _) = s
            .post_empty(&t.token, &auth_session_path(t.org_id, user, ev))
            .await;
        assert_eq!(status, 200, "no body at all");
        // A URL is stored in its normalised form (always a valid Location header).
        let (_, id) = start_session(
            &s,
            &t,
            user,
            ev,
            json!({"success_url": "HTTPS://Partner.Example/fertig/ä"}),
        )
        .await;
        assert_eq!(
            s.store
                .get_auth_session(id)
                .await
                .unwrap()
                .success_url
                .as_deref(),
            Some("https://partner.example/fertig/%C3%A4")
        );

        // Documented for partners; the consent page is not partner API.
        let (_, doc) = s.get("", "/api/partners/v2.0/openapi.json").await;
        let op = &doc["paths"]["/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/auth_session"]
            ["post"];
        assert!(op["responses"]["409"].is_object(), "{op}");
        assert!(
            op["description"]
                .as_str()
                .unwrap()
                .contains("/connect/{session_id}")
        );
        assert!(
            doc["paths"]
                .as_object()
                .unwrap()
                .keys()
                .all(|p| !p.starts_with("/connect")),
            "the consent page stays out of the partner document"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn auth_session_is_scoped_and_checks_its_urls() {
    for backend in backends() {
        let (s, _sandbox) = TestServer::start_with_sandbox(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = sandbox_ev(&s, &t, user, "tesla").await;
        let path = auth_session_path(t.org_id, user, ev);

        // Another organisation: neither its own org path nor ours reaches the vehicle.
        let other = s.tenant("Utility B").await;
        let other_user = s.create_user(&other, "ben@example.com").await;
        for foreign in [
            auth_session_path(other.org_id, other_user, ev),
            auth_session_path(other.org_id, user, ev),
            path.clone(),
        ] {
            let (status, body) = s.post(&other.token, &foreign, json!({})).await;
            assert_eq!((status, body), (404, json!({"detail": "Not Found"})));
        }
        // Unknown vehicle, or another user of the same organisation.
        let (status, _) = s
            .post(
                &t.token,
                &auth_session_path(t.org_id, user, Uuid::now_v7()),
                json!({}),
            )
            .await;
        assert_eq!(status, 404);
        let (status, _) = s
            .post(
                &t.token,
                &auth_session_path(t.org_id, other_user, ev),
                json!({}),
            )
            .await;
        assert_eq!(status, 404);
        // No token.
        let r = s
            .http
            .post(s.url(&path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);

        // URLs must be absolute http(s) URLs; every invalid field is named.
        let cases = [
            (json!({"success_url": "/ev/connected"}), vec!["success_url"]),
            (
                json!({"cancel_url": "javascript:alert(1)"}),
                vec!["cancel_url"],
            ),
            (
                json!({"success_url": "partner.example/ok", "cancel_url": "ftp://partner.example/x"}),
                vec!["success_url", "cancel_url"],
            ),
            (json!({"success_url": 42}), vec!["success_url"]),
            (
                json!({"success_url": format!("https://partner.example/{}", "a".repeat(8000))}),
                vec!["success_url"],
            ),
            (json!({"successUrl": SUCCESS}), vec!["successUrl"]),
        ];
        for (body, fields) in cases {
            let (status, answer) = s.post(&t.token, &path, body.clone()).await;
            assert_eq!(status, 422, "{body} → {answer}");
            assert_eq!(invalid_fields(&answer), fields, "{answer}");
            assert_eq!(answer["detail"][0]["loc"][0], "body");
        }
        let (status, answer) = s
            .post(&t.token, &path, json!({"success_url": "/relative"}))
            .await;
        assert_eq!(status, 422);
        assert_eq!(answer["detail"][0]["type"], "url_parsing");

        // A deleted vehicle is gone.
        let (status, _) = s.delete(&t.token, &ev_path(t.org_id, user, ev)).await;
        assert_eq!(status, 204);
        let (status, _) = s.post(&t.token, &path, json!({})).await;
        assert_eq!(status, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn only_sandbox_vehicles_on_a_sandbox_server_can_be_relinked() {
    for backend in backends() {
        // A vehicle of no (or another) cloud service: 409 saying why.
        let (s, _sandbox) = TestServer::start_with_sandbox(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let (_, plain) = s.post(&t.token, &evs_path(t.org_id, user), json!({})).await;
        let plain = id_of(&plain);
        let (status, body) = s
            .post(
                &t.token,
                &auth_session_path(t.org_id, user, plain),
                json!({"success_url": SUCCESS}),
            )
            .await;
        assert_eq!(status, 409, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("does not support re-authentication through this server"),
            "{detail}"
        );
        // Validation still comes first.
        let (status, _) = s
            .post(
                &t.token,
                &auth_session_path(t.org_id, user, plain),
                json!({"success_url": "/x"}),
            )
            .await;
        assert_eq!(status, 422);
        s.stop().await;

        // A sandbox vehicle on a server without the sandbox.
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = sandbox_ev(&s, &t, user, "tesla").await;
        let (status, body) = s
            .post(&t.token, &auth_session_path(t.org_id, user, ev), json!({}))
            .await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("without the sandbox")
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn allowing_on_the_consent_page_relinks_a_revoked_car() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let worker = s.sandbox_worker(&sandbox, "auth-session-test");
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = revoked_ev(&s, &t, user, &worker).await;
        assert!(!sandbox.snapshot(ev).unwrap().is_authorized);

        // The older flow, beside the action's cue link (tests/onboarding.rs): auth_session.
        assert_eq!(
            detail(&s, &t, user, ev).await["actions"][0]["code"],
            "reauthenticate"
        );
        let (url, session_id) = start_session(
            &s,
            &t,
            user,
            ev,
            json!({"success_url": SUCCESS, "cancel_url": CANCEL}),
        )
        .await;

        // The driver's browser opens the consent page: no token needed.
        let (status, headers, html) = open_page(&url).await;
        assert_eq!(status, 200, "{html}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert!(html.contains("<form method=\"post\""), "{html}");
        assert!(html.contains("name=\"decision\" value=\"allow\""), "{html}");
        assert!(html.contains("name=\"decision\" value=\"deny\""), "{html}");
        assert!(html.contains("tesla model 3"), "names the vehicle: {html}");
        assert!(
            !html.contains("<script") && !html.contains("src="),
            "{html}"
        );

        // Allow: back to the partner, the car's authorisation restored, the session completed.
        let (status, headers, _) = submit(&url, "decision=allow").await;
        assert_eq!(status, 303);
        assert_eq!(location(&headers), SUCCESS);
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert!(sandbox.snapshot(ev).unwrap().is_authorized);
        let stored = s.store.get_auth_session(session_id).await.unwrap();
        assert_eq!(stored.outcome, Some(AuthSessionOutcome::Success));
        assert_eq!(stored.completed_at, Some(s.clock_now()));

        // The vehicle was woken: the very next worker round reads it, and the action is gone.
        cycle(&worker).await;
        let after = detail(&s, &t, user, ev).await;
        assert_eq!(after["actions"], json!([]), "{after}");
        assert_eq!(after["is_authenticated"], true);
        assert_eq!(after["action_needed"], false);
        assert_eq!(after["lifecycle_state"], "authenticated");
        assert_eq!(after["connection_status"], "ok");

        // The session was used: a second decision does nothing, and the page is gone.
        sandbox.revoke_authorization(ev).unwrap();
        for form in ["decision=allow", "decision=deny"] {
            let (status, headers, html) = submit(&url, form).await;
            assert_eq!(status, 404, "{html}");
            assert!(headers.get("location").is_none());
            assert!(html.contains("Link not found"), "{html}");
        }
        assert!(
            !sandbox.snapshot(ev).unwrap().is_authorized,
            "the second allow did not act"
        );
        assert_eq!(
            s.store.get_auth_session(session_id).await.unwrap().outcome,
            Some(AuthSessionOutcome::Success)
        );
        let (status, _, html) = open_page(&url).await;
        assert_eq!(status, 404);
        assert!(html.contains("<!doctype html>"), "an HTML page: {html}");
        s.stop().await;
    }
}

#[tokio::test]
async fn denying_leaves_the_link_revoked() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let worker = s.sandbox_worker(&sandbox, "auth-session-test");
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = revoked_ev(&s, &t, user, &worker).await;
        let (url, session_id) = start_session(
            &s,
            &t,
            user,
            ev,
            json!({"success_url": SUCCESS, "cancel_url": CANCEL}),
        )
        .await;

        let (status, headers, _) = submit(&url, "decision=deny").await;
        assert_eq!(status, 303);
        assert_eq!(location(&headers), CANCEL);
        assert!(!sandbox.snapshot(ev).unwrap().is_authorized);
        assert_eq!(
            s.store.get_auth_session(session_id).await.unwrap().outcome,
            Some(AuthSessionOutcome::Cancelled)
        );
        // Its next poll finds the car still revoked: the action stays.
        s.clock.advance(WorkerConfig::new("x").revoked_interval);
        cycle(&worker).await;
        let after = detail(&s, &t, user, ev).await;
        assert_eq!(after["is_authenticated"], false, "{after}");
        assert_eq!(after["actions"][0]["code"], "reauthenticate");
        // Used once: allowing afterwards does nothing.
        let (status, _, _) = submit(&url, "decision=allow").await;
        assert_eq!(status, 404);
        assert!(!sandbox.snapshot(ev).unwrap().is_authorized);

        // Without URLs, the page itself says what happened.
        let (url, _) = start_session(&s, &t, user, ev, json!({"cancel_url": null})).await;
        let (status, headers, html) = submit(&url, "decision=deny").await;
        assert_eq!(status, 200);
        assert!(headers.get("location").is_none());
        assert!(html.contains("Nothing was changed"), "{html}");
        let (url, _) = start_session(&s, &t, user, ev, json!({})).await;
        let (status, _, html) = submit(&url, "decision=allow").await;
        assert_eq!(status, 200);
        assert!(html.contains("You can close this window"), "{html}");
        assert!(sandbox.snapshot(ev).unwrap().is_authorized);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_session_expires_at_the_end_of_the_next_day() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let worker = s.sandbox_worker(&sandbox, "auth-session-test");
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = revoked_ev(&s, &t, user, &worker).await;
        let (url, _) = start_session(&s, &t, user, ev, json!({"success_url": SUCCESS})).await;

        // Created 2026-11-26 12:00 UTC: still valid in the last second of the 27th…
        let end = Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap();
        s.clock.set(end - Duration::seconds(1));
        let (status, _, _) = open_page(&url).await;
        assert_eq!(status, 200);
        // …and gone from midnight on: the page is a 404 and a decision does nothing.
        s.clock.set(end);
        let (status, _, html) = open_page(&url).await;
        assert_eq!(status, 404);
        assert!(html.contains("expired"), "{html}");
        let (status, headers, _) = submit(&url, "decision=allow").await;
        assert_eq!(status, 404);
        assert!(headers.get("location").is_none());
        assert!(!sandbox.snapshot(ev).unwrap().is_authorized);
        s.stop().await;
    }
}

#[tokio::test]
async fn the_consent_page_escapes_names_and_refuses_what_it_does_not_know() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = sandbox_ev(&s, &t, user, "<script>alert('x')</script>").await;
        let (url, session_id) =
            start_session(&s, &t, user, ev, json!({"success_url": SUCCESS})).await;
        let (status, _, html) = open_page(&url).await;
        assert_eq!(status, 200);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; model 3"),
            "{html}"
        );

        // Unknown or malformed session ids.
        for bad in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
            let (status, _, html) = open_page(&s.url(&format!("/connect/{bad}"))).await;
            assert_eq!(status, 404);
            assert!(html.contains("Link not found"));
            let (status, _, _) = submit(&s.url(&format!("/connect/{bad}")), "decision=allow").await;
            assert_eq!(status, 404);
        }

        // A form without a valid decision changes nothing; the session stays usable.
        for form in ["", "decision=maybe", "choice=allow"] {
            let (status, headers, _) = submit(&url, form).await;
            assert_eq!(status, 400, "{form:?}");
            assert!(headers.get("location").is_none());
        }
        assert!(
            s.store
                .get_auth_session(session_id)
                .await
                .unwrap()
                .completed_at
                .is_none()
        );

        // A vehicle deleted after the session was created takes its page with it.
        let (status, _) = s.delete(&t.token, &ev_path(t.org_id, user, ev)).await;
        assert_eq!(status, 204);
        let (status, _, _) = open_page(&url).await;
        assert_eq!(status, 404);
        sandbox.revoke_authorization(ev).unwrap();
        let (status, _, _) = submit(&url, "decision=allow").await;
        assert_eq!(status, 404);
        assert!(!sandbox.snapshot(ev).unwrap().is_authorized);
        assert!(
            s.store
                .get_vehicle_in_org(OrgScope::new(t.org_id), ev)
                .await
                .is_err()
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn a_session_is_decided_once_even_when_raced() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = sandbox_ev(&s, &t, user, "tesla").await;
        sandbox.revoke_authorization(ev).unwrap();
        let (url, session_id) = start_session(
            &s,
            &t,
            user,
            ev,
            json!({"success_url": SUCCESS, "cancel_url": CANCEL}),
        )
        .await;

        // Several tabs submit at once: exactly one decision is taken, and it is the one recorded.
        let tabs: Vec<_> = ["decision=allow", "decision=deny"]
            .repeat(4)
            .into_iter()
            .map(|form| {
                let url = url.clone();
                tokio::spawn(async move { submit(&url, form).await })
            })
            .collect();
        let mut answers = Vec::new();
        for tab in tabs {
            answers.push(tab.await.unwrap());
        }
        let winners: Vec<&str> = answers
            .iter()
            .filter(|(status, _, _)| *status == 303)
            .map(|(_, headers, _)| location(headers))
            .collect();
        assert_eq!(winners.len(), 1, "{answers:?}");
        assert!(
            answers
                .iter()
                .all(|(status, _, _)| [303, 404].contains(status))
        );
        let stored = s.store.get_auth_session(session_id).await.unwrap();
        let expected = if winners[0] == SUCCESS {
            AuthSessionOutcome::Success
        } else {
            AuthSessionOutcome::Cancelled
        };
        assert_eq!(stored.outcome, Some(expected));
        assert_eq!(
            sandbox.snapshot(ev).unwrap().is_authorized,
            expected == AuthSessionOutcome::Success
        );

        // The store's guard on its own: a completed session cannot be completed again.
        let (_, other) = start_session(&s, &t, user, ev, json!({})).await;
        let org = OrgScope::new(t.org_id);
        let now = s.clock_now();
        let complete = |outcome| s.store.complete_auth_session(org, other, outcome, now);
        assert!(complete(AuthSessionOutcome::Cancelled).await.unwrap());
        assert!(!complete(AuthSessionOutcome::Success).await.unwrap());
        // Nor can another organisation complete a session.
        let (_, third) = start_session(&s, &t, user, ev, json!({})).await;
        let foreign = OrgScope::new(s.tenant("Utility B").await.org_id);
        assert!(
            !s.store
                .complete_auth_session(foreign, third, AuthSessionOutcome::Success, now)
                .await
                .unwrap()
        );
        assert!(
            s.store
                .get_auth_session(third)
                .await
                .unwrap()
                .completed_at
                .is_none()
        );
        s.stop().await;
    }
}
