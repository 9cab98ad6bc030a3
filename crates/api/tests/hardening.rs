//! Issue 11's findings on the edges an attacker reaches without credentials: the metrics' label
//! space, the token limiter, client-id probing, control characters in the OAuth2 forms, the
//! bearer scheme and its challenge, and cross-site posts to the consent page.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;
use voltplan_api::ApiConfig;

/// The series of one metric in the exposition text.
fn series<'a>(metrics: &'a str, name: &str) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .collect()
}

async fn metrics(s: &TestServer) -> String {
    s.http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        for i in 0..40 {
            let method = reqwest::Method::from_bytes(format!("PROBE{i}X").as_bytes()).unwrap();
            let r = s
                .http
                .request(method, s.url("/healthz"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405);
        }
        let text = metrics(&s).await;
        let requests = series(&text, "voltplan_http_requests_total");
        assert!(
            requests
                .iter()
                .any(|line| line.contains("method=\"other\"")),
            "made-up methods are counted as `other`: {requests:#?}"
        );
        assert!(
            !text.contains("PROBE"),
            "no made-up method is a label value"
        );
        for line in &requests {
            let method = line
                .split("method=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap();
            assert!(
                [
                    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"
                ]
                .contains(&method),
                "{line}"
            );
        }
        s.stop().await;
    }
}

/// A server that believes `X-Forwarded-For` from the test's own address, so one test can
/// speak from many client addresses.
fn behind_a_proxy() -> ApiConfig {
    ApiConfig {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..ApiConfig::default()
    }
}

async fn token_from(
    s: &TestServer,
    address: &str,
    client_id: &str,
    secret: &str,
) -> reqwest::Response {
    s.http
        .post(s.url("/oauth2/token/"))
        .basic_auth(client_id, Some(secret))
        .header("x-forwarded-for", address)
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failures_never_lock_out_the_right_secret() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let other = s.tenant("Utility B").await;
        // An attacker behind the same address as both partners uses up its allowance…
        for _ in 0..10 {
            let r = s.token_request(&t.client_id, "guess").await;
            assert_eq!(r.status(), 401);
        }
        let r = s.token_request(&t.client_id, "guess").await;
        assert_eq!(r.status(), 429, "further failures are throttled");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "slow_down");
        let r = s.token_request(&other.client_id, "guess").await;
        assert_eq!(r.status(), 429, "from this address, for any client id");
        // …and still both partners get their tokens.
        for tenant in [&t, &other] {
            let r = s
                .token_request(&tenant.client_id, &tenant.client_secret)
                .await;
            assert_eq!(r.status(), 200, "a correct secret is never refused");
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn guesses_spread_over_many_addresses_are_throttled_per_client_id() {
    for backend in backends() {
        let s = TestServer::start_with(&backend, behind_a_proxy()).await;
        let t = s.tenant("Utility A").await;
        let mut statuses = Vec::new();
        for i in 0..30 {
            let address = format!("198.51.100.{}", i + 1);
            let r = token_from(&s, &address, &t.client_id, "guess").await;
            statuses.push(r.status().as_u16());
        }
        assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
        assert_eq!(statuses[10..], [429; 20], "{statuses:?}");
        // Another address and id is not affected, and the right secret still works from anywhere.
        let other = s.tenant("Utility B").await;
        let r = token_from(&s, "198.51.100.200", &other.client_id, "guess").await;
        assert_eq!(r.status(), 401);
        let r = token_from(&s, "198.51.100.7", &t.client_id, &t.client_secret).await;
        assert_eq!(r.status(), 200);
        s.stop().await;
    }
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_the_proxy_is_trusted() {
    for backend in backends() {
        // Default: no trusted proxy, so a client cannot dodge its address's limit by sending
        // a new X-Forwarded-For each time.
        let s = TestServer::start(&backend).await;
        let mut statuses = Vec::new();
        for i in 0..12 {
            let id = format!("nobody-{i}");
            let r = token_from(&s, &format!("203.0.113.{i}"), &id, "guess").await;
            statuses.push(r.status().as_u16());
        }
        assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
        assert_eq!(statuses[10..], [429; 2], "{statuses:?}");
        s.stop().await;

        // Trusted: each forwarded address has an allowance of its own.
        let s = TestServer::start_with(&backend, behind_a_proxy()).await;
        for i in 0..12 {
            let id = format!("nobody-{i}");
            let r = token_from(&s, &format!("203.0.113.{i}"), &id, "guess").await;
            assert_eq!(r.status(), 401, "attempt {i}");
        }
        s.stop().await;
    }
}

fn counter(text: &str, name: &str, label: &str) -> f64 {
    series(text, name)
        .into_iter()
        .find(|line| line.contains(label))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn an_unknown_client_id_costs_an_argon2_verification_too() {
    const VERIFICATIONS: &str = "voltplan_client_secret_verifications_total";
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let before = metrics(&s).await;
        for i in 0..3 {
            let r = s
                .token_request(&format!("no-such-client-{i}"), "guess")
                .await;
            assert_eq!(r.status(), 401);
        }
        let r = s.token_request(&t.client_id, "guess").await;
        assert_eq!(r.status(), 401);
        let after = metrics(&s).await;
        // Other tests in this process verify too: the counts only grow, by at least ours.
        let grew =
            |label| counter(&after, VERIFICATIONS, label) - counter(&before, VERIFICATIONS, label);
        assert!(
            grew("client=\"unknown\"") >= 3.0,
            "every unknown id was verified against the dummy hash:\n{after}"
        );
        assert!(grew("client=\"known\"") >= 1.0, "{after}");
        s.stop().await;
    }
}

#[tokio::test]
async fn control_characters_in_oauth_forms_are_refused_before_the_database() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let form = |body: String| {
            s.http
                .post(s.url("/oauth2/token/"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
        };
        let id = &t.client_id;
        let secret = &t.client_secret;
        for body in [
            format!("grant_type=client_credentials&client_id={id}%00&client_secret={secret}"),
            "grant_type=client_credentials&client_id=%00&client_secret=x".to_owned(),
            format!("grant_type=client_credentials&client_id={id}&client_secret={secret}%00"),
            format!("grant_type=client_credentials%00&client_id={id}&client_secret={secret}"),
            format!(
                "grant_type=client_credentials&scope=read%1Bwrite&client_id={id}&client_secret={secret}"
            ),
        ] {
            let (status, body_json) = status_and_json(form(body.clone()).await.unwrap()).await;
            assert_eq!(status, 400, "{body}: {body_json}");
            assert_eq!(body_json["error"], "invalid_request", "{body}");
        }
        // In HTTP Basic, and as JSON.
        let r = s.token_request(&format!("{id}\u{0}"), secret).await;
        assert_eq!(r.status(), 400);
        let r = s
            .http
            .post(s.url("/oauth2/token/"))
            .json(&json!({"grant_type": "client_credentials", "client_id": "a\u{0}b", "client_secret": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // Revocation too.
        let r = s
            .http
            .post(s.url("/oauth2/revoke_token/"))
            .basic_auth(format!("{id}\u{0}"), Some(secret))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // The client still works: nothing was counted against it, nothing broke.
        let r = s.token_request(id, secret).await;
        assert_eq!(r.status(), 200);
        s.stop().await;
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_a_missing_credential_has_no_error_code() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let path = users_path(t.org_id);
        for scheme in ["Bearer", "bearer", "BEARER", "bEARer"] {
            let r = s
                .http
                .get(s.url(&path))
                .header("authorization", format!("{scheme} {}", t.token))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{scheme}");
        }
        let r = s.http.get(s.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert_eq!(challenge, "Bearer realm=\"voltplan\"", "RFC 6750 §3.1");
        let r = s
            .http
            .get(s.url(&path))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        s.stop().await;
    }
}

const SUCCESS: &str = "https://partner.example/ev/connected";
const CANCEL: &str = "https://cancel.partner.example/ev/cancelled";

/// A consent page's URL and session id, for a sandbox car of a fresh tenant.
async fn consent_url(s: &TestServer) -> (String, Uuid) {
    let (t, user) = s.tenant_with_user("Utility A").await;
    let ev = s.create_sandbox_ev(&t, user, "tesla").await;
    let (status, session) = s
        .post(
            &t.token,
            &format!("{}/auth_session", ev_path(t.org_id, user, id_of(&ev))),
            json!({"success_url": SUCCESS, "cancel_url": CANCEL}),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    (
        session["authentication_url"].as_str().unwrap().to_owned(),
        session["session_id"].as_str().unwrap().parse().unwrap(),
    )
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post_decision(url: &str, form: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = browser()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_cross_site_post_to_the_consent_page_is_refused() {
    for backend in backends() {
        let (s, _sandbox) = TestServer::start_with_sandbox(&backend).await;
        let (url, session_id) = consent_url(&s).await;

        let page = browser().get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains(
                "form-action 'self' https://partner.example https://cancel.partner.example"
            ),
            "the form posts here and is redirected to the partner only: {csp}"
        );
        assert_eq!(page.headers()["referrer-policy"], "same-origin");

        for headers in [
            vec![("origin", "https://evil.example")],
            vec![("origin", "null")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://evil.example"),
            ],
        ] {
            let r = post_decision(&url, "decision=allow", &headers).await;
            assert_eq!(r.status(), 403, "{headers:?}");
            assert!(r.headers().get("location").is_none());
        }
        // A NUL in the form is not a decision, and reaches nothing.
        let r = post_decision(&url, "decision=deny%00", &[]).await;
        assert_eq!(r.status(), 400);
        let stored = s.store.get_auth_session(session_id).await.unwrap();
        assert_eq!(stored.outcome, None, "no refused post decided anything");

        // The driver's own post, as a browser sends it, is taken.
        let origin = s.base.clone();
        let r = post_decision(
            &url,
            "decision=deny",
            &[("origin", &origin), ("sec-fetch-site", "same-origin")],
        )
        .await;
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], CANCEL);
        assert!(
            s.store
                .get_auth_session(session_id)
                .await
                .unwrap()
                .outcome
                .is_some()
        );
        s.stop().await;
    }
}
