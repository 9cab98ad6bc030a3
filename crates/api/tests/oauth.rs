//! OAuth2 client credentials: the token endpoint, revocation and every 401.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn tokens_are_issued_for_json_and_form_bodies_podero_style() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let r = s
            .http
            .post(s.url("/oauth2/token/"))
            .basic_auth(&t.client_id, Some(&t.client_secret))
            .header("Cache-Control", "no-cache")
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store");
        let (status, body) = status_and_json(r).await;
        assert_eq!(status, 200);
        assert_eq!(body["expires_in"], 36000);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "read write");
        assert!(body["access_token"].as_str().unwrap().len() >= 30);

        let r = s
            .http
            .post(s.url("/oauth2/token/"))
            .basic_auth(&t.client_id, Some(&t.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        let (status, form) = status_and_json(r).await;
        assert_eq!(status, 200);
        assert_ne!(form["access_token"], body["access_token"]);

        // Credentials in the body (RFC 6749 §2.3.1) work too.
        let r = s
            .http
            .post(s.url("/oauth2/token/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                t.client_id, t.client_secret
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // The token works on the API.
        let (status, _) = s
            .get(
                body["access_token"].as_str().unwrap(),
                &users_path(t.org_id),
            )
            .await;
        assert_eq!(status, 200);
        s.stop().await;
    }
}

#[tokio::test]
async fn token_errors_follow_rfc_6749() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let token_request = |id: &str, secret: &str, body: Value| {
            s.http
                .post(s.url("/oauth2/token/"))
                .basic_auth(id, Some(secret))
                .json(&body)
                .send()
        };
        let r = token_request(
            &t.client_id,
            "wrong",
            json!({"grant_type": "client_credentials"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
        let r = token_request("nobody", "x", json!({"grant_type": "client_credentials"}))
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = token_request(
            &t.client_id,
            &t.client_secret,
            json!({"grant_type": "password"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "unsupported_grant_type"
        );
        let r = token_request(&t.client_id, &t.client_secret, json!({}))
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
        let r = s
            .http
            .post(s.url("/oauth2/token/"))
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "no client authentication at all");
        s.stop().await;
    }
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_but_other_addresses_and_good_clients_are_not_locked_out_forever()
 {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        for _ in 0..10 {
            let r = s.token_request(&t.client_id, "guess").await;
            assert_eq!(r.status(), 401);
        }
        let r = s.token_request(&t.client_id, "guess").await;
        assert_eq!(
            r.status(),
            429,
            "failures are throttled while the window lasts"
        );
        let retry_after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after));
        let r = s.token_request(&t.client_id, &t.client_secret).await;
        assert_eq!(r.status(), 200, "the right secret is never refused");
        s.clock.advance(chrono::Duration::seconds(61));
        let r = s.token_request(&t.client_id, "guess").await;
        assert_eq!(r.status(), 401, "the window ended");
        s.stop().await;
    }
}

#[tokio::test]
async fn every_kind_of_bad_token_is_a_401_with_www_authenticate() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let path = users_path(t.org_id);
        let check = |r: reqwest::Response, why: &str| {
            assert_eq!(r.status(), 401, "{why}");
            assert!(
                r.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer"),
                "{why}"
            );
        };
        check(s.http.get(s.url(&path)).send().await.unwrap(), "missing");
        check(
            s.http
                .get(s.url(&path))
                .header("authorization", "Token abc")
                .send()
                .await
                .unwrap(),
            "malformed scheme",
        );
        check(
            s.http
                .get(s.url(&path))
                .header("authorization", "Bearer ")
                .send()
                .await
                .unwrap(),
            "empty token",
        );
        check(
            s.http
                .get(s.url(&path))
                .bearer_auth("not-a-token")
                .send()
                .await
                .unwrap(),
            "unknown",
        );

        // Revoked through RFC 7009.
        let doomed = s.token(&t.client_id, &t.client_secret).await;
        let r = s
            .http
            .post(s.url("/oauth2/revoke_token/"))
            .basic_auth(&t.client_id, Some(&t.client_secret))
            .form(&[("token", doomed.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        check(
            s.http
                .get(s.url(&path))
                .bearer_auth(&doomed)
                .send()
                .await
                .unwrap(),
            "revoked",
        );
        // Revoking an unknown token is still 200; a bad client is 401.
        let r = s
            .http
            .post(s.url("/oauth2/revoke_token/"))
            .basic_auth(&t.client_id, Some(&t.client_secret))
            .form(&[("token", "nope")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = s
            .http
            .post(s.url("/oauth2/revoke_token/"))
            .basic_auth(&t.client_id, Some("bad"))
            .form(&[("token", t.token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let (status, _) = s.get(&t.token, &path).await;
        assert_eq!(status, 200, "a failed revocation revoked nothing");

        // Expired: the token lives 36,000 s.
        s.clock.advance(chrono::Duration::seconds(36_001));
        check(
            s.http
                .get(s.url(&path))
                .bearer_auth(&t.token)
                .send()
                .await
                .unwrap(),
            "expired",
        );

        // A revoked client loses its tokens and cannot get new ones.
        let fresh = s.token(&t.client_id, &t.client_secret).await;
        s.store
            .revoke_api_client(&t.client_id, s.clock_now())
            .await
            .unwrap();
        check(
            s.http
                .get(s.url(&path))
                .bearer_auth(&fresh)
                .send()
                .await
                .unwrap(),
            "client revoked",
        );
        let r = s.token_request(&t.client_id, &t.client_secret).await;
        assert_eq!(r.status(), 401);
        s.stop().await;
    }
}

#[tokio::test]
async fn rotating_a_secret_revokes_old_tokens_and_the_old_secret() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let new_secret = voltplan_api::generate_client_secret();
        let hash = voltplan_api::hash_secret(&new_secret).unwrap();
        s.store
            .rotate_api_client_secret(&t.client_id, &hash, s.clock_now())
            .await
            .unwrap();
        let (status, _) = s.get(&t.token, &users_path(t.org_id)).await;
        assert_eq!(status, 401);
        let r = s.token_request(&t.client_id, &t.client_secret).await;
        assert_eq!(
            r.status(),
            401,
            "the old secret (even though verified and cached before) no longer works"
        );
        let token = s.token(&t.client_id, &new_secret).await;
        let (status, _) = s.get(&token, &users_path(t.org_id)).await;
        assert_eq!(status, 200);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_used_and_cached_token_dies_at_once_when_revoked_here_and_the_cache_can_be_disabled() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let path = users_path(t.org_id);
        assert_eq!(
            s.get(&t.token, &path).await.0,
            200,
            "the token is now cached"
        );
        let r = s
            .http
            .post(s.url("/oauth2/revoke_token/"))
            .basic_auth(&t.client_id, Some(&t.client_secret))
            .form(&[("token", t.token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            s.get(&t.token, &path).await.0,
            401,
            "revocation through this server skips the cache"
        );
        s.stop().await;

        // Without the cache, a revocation made elsewhere (here: straight in the store) is immediate.
        let config = voltplan_api::ApiConfig {
            token_cache_ttl: std::time::Duration::ZERO,
            ..Default::default()
        };
        let s = TestServer::start_with(&backend, config).await;
        let t = s.tenant("Utility A").await;
        assert_eq!(s.get(&t.token, &users_path(t.org_id)).await.0, 200);
        s.store
            .revoke_api_client(&t.client_id, s.clock_now())
            .await
            .unwrap();
        assert_eq!(s.get(&t.token, &users_path(t.org_id)).await.0, 401);
        s.stop().await;
    }
}
