//! What an attacker's or an unlucky client's input gets back (issue 11, findings 1, 6, 7, 10 and
//! the body-format nitpicks): a clear 4xx naming the field, the same on SQLite and PostgreSQL,
//! and nothing written.

mod common;

use common::*;
use serde_json::{Value, json};

async fn raw(
    s: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = s
        .http
        .request(method, s.url(path))
        .bearer_auth(token)
        .body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    status_and_json(request.send().await.unwrap()).await
}

#[tokio::test]
async fn control_characters_are_refused_by_name_and_never_stored() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        for (field, value) in [
            ("email", "nul\u{0}@x.com"),
            ("first_name", "Anna\u{0}"),
            ("town", "Wien\u{7}"),
            ("external_user_id", "a\u{1b}[31m"),
        ] {
            let mut body = json!({"role": "user", "email": "ok@example.com"});
            body[field] = json!(value);
            let (status, body) = s.post(&t.token, &users_path(t.org_id), body).await;
            assert_eq!(status, 422, "{field} on {}: {body}", backend.name());
            assert_eq!(invalid_fields(&body), vec![field.to_owned()], "{body}");
        }
        let (_, users) = s.get(&t.token, &users_path(t.org_id)).await;
        assert_eq!(
            users,
            json!([]),
            "nothing was written on {}",
            backend.name()
        );

        // A comment may span lines; other control characters are refused there too.
        let user = s.create_user(&t, "anna@example.com").await;
        let ev = s
            .create_ev(&t, user, json!({"comment": "garage\nleft side\tcable"}))
            .await;
        let (status, body) = s
            .put(
                &t.token,
                &ev_path(t.org_id, user, id_of(&ev)),
                json!({"comment": "x\u{0}"}),
            )
            .await;
        assert_eq!(
            (status, invalid_fields(&body)),
            (422, vec!["comment".to_owned()])
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn e_mail_uniqueness_folds_case_the_same_on_every_backend() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        s.create_user(&t, "Öl@example.com").await;
        for taken in ["öl@example.com", "ÖL@EXAMPLE.COM", " öl@Example.com"] {
            let (status, body) = s
                .post(
                    &t.token,
                    &users_path(t.org_id),
                    json!({"role": "user", "email": taken}),
                )
                .await;
            assert_eq!(status, 422, "{taken} on {}: {body}", backend.name());
            assert_eq!(body["detail"][0]["type"], "unique", "{body}");
        }
        // A different address is still fine, and so is the same one in another organisation.
        s.create_user(&t, "öl2@example.com").await;
        let other = s.tenant("Utility B").await;
        s.create_user(&other, "öl@example.com").await;
        // An update into a taken address is refused like a create.
        let second = s.create_user(&t, "zweite@example.com").await;
        let (status, _) = s
            .put(
                &t.token,
                &user_path(t.org_id, second),
                json!({"email": "ÖL@example.com"}),
            )
            .await;
        assert_eq!(status, 422, "{}", backend.name());
        s.stop().await;
    }
}

#[tokio::test]
async fn deadline_with_a_leap_second_is_refused() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        for bad in ["07:00:60", "24:00", "7:00:00:00"] {
            let (status, body) = s
                .post(
                    &t.token,
                    &evs_path(t.org_id, user),
                    json!({"charge_deadline_at": bad}),
                )
                .await;
            assert_eq!(status, 422, "{bad}: {body}");
            assert_eq!(invalid_fields(&body), vec!["charge_deadline_at".to_owned()]);
        }
        let (status, ev) = s
            .post(
                &t.token,
                &evs_path(t.org_id, user),
                json!({"charge_deadline_at": "07:00:59"}),
            )
            .await;
        assert_eq!(
            (status, ev["charge_deadline_at"].clone()),
            (200, json!("07:00:59"))
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn absurd_prices_are_refused() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let path = format!(
            "/api/partners/v2.0/org/{}/trading/dayahead/prices",
            t.org_id
        );
        for price in [json!(1.7e308), json!(-1.7e308), json!(10_000.5)] {
            let body = json!({"metadata": {"price_zone": "AT"}, "data": [
                {"timestamp": "2026-11-26T23:00:00Z", "price": 10.0},
                {"timestamp": "2026-11-26T23:15:00Z", "price": price},
            ]});
            let (status, answer) = s
                .send(reqwest::Method::PATCH, &t.token, &path, Some(body), &[])
                .await;
            assert_eq!(status, 422, "{price}: {answer}");
            assert_eq!(
                answer["detail"][0]["loc"],
                json!(["body", "data", 1, "price"])
            );
        }
        // The market's own extremes are fine.
        let body = json!({"metadata": {"price_zone": "AT"}, "data": [
            {"timestamp": "2026-11-26T23:00:00Z", "price": -500.0},
            {"timestamp": "2026-11-26T23:15:00Z", "price": 4000.0},
        ]});
        let (status, answer) = s
            .send(reqwest::Method::PATCH, &t.token, &path, Some(body), &[])
            .await;
        assert_eq!(status, 200, "{answer}");
        s.stop().await;
    }
}

#[tokio::test]
async fn bodies_must_be_declared_json_and_name_each_key_once() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let users = users_path(t.org_id);
        let body = r#"{"role": "user", "email": "a@example.com"}"#;
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let (status, answer) = raw(
                &s,
                &t.token,
                reqwest::Method::POST,
                &users,
                content_type,
                body,
            )
            .await;
            assert_eq!(status, 415, "{content_type:?}: {answer}");
            assert!(
                answer["detail"]
                    .as_str()
                    .unwrap()
                    .contains("application/json")
            );
        }
        for content_type in [
            "application/json; charset=utf-8",
            "application/merge-patch+json",
        ] {
            let (status, answer) = raw(
                &s,
                &t.token,
                reqwest::Method::POST,
                &users,
                Some(content_type),
                &body.replace("a@", &format!("{}@", content_type.len())),
            )
            .await;
            assert_eq!(status, 200, "{content_type}: {answer}");
        }
        // A missing body where one is required is a 422 saying so.
        let (status, answer) = raw(
            &s,
            &t.token,
            reqwest::Method::POST,
            &users,
            Some("application/json"),
            "",
        )
        .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["detail"][0]["loc"], json!(["body"]));
        // The same key twice is refused by name, at any depth, rather than the last one winning.
        let twice = r#"{"role": "user", "email": "b@example.com", "email": "c@example.com"}"#;
        let (status, answer) = raw(
            &s,
            &t.token,
            reqwest::Method::POST,
            &users,
            Some("application/json"),
            twice,
        )
        .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(
            answer["detail"],
            json!([{"loc": ["body", "email"], "msg": "This key is given more than once", "type": "duplicate_key"}])
        );
        let user = s.create_user(&t, "anna@example.com").await;
        let nested = r#"{"device_model": {"model": "A", "model": "B"}}"#;
        let (status, answer) = raw(
            &s,
            &t.token,
            reqwest::Method::POST,
            &evs_path(t.org_id, user),
            Some("application/json"),
            nested,
        )
        .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(
            answer["detail"][0]["loc"],
            json!(["body", "device_model", "model"])
        );
        let (_, listed) = s.get(&t.token, &users).await;
        assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
        s.stop().await;
    }
}

#[tokio::test]
async fn the_openapi_document_says_what_the_server_does() {
    let s = TestServer::start(&Backend::Sqlite).await;
    let (_, doc) = s.get("", "/api/partners/v2.0/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = &operation["responses"];
            let secured = operation["security"].to_string().contains("bearer");
            if secured {
                assert!(responses["401"].is_object(), "{method} {path}: 401");
            }
            if operation["requestBody"].is_object() {
                for status in ["400", "413", "415", "422"] {
                    assert!(responses[status].is_object(), "{method} {path}: {status}");
                }
            }
            let has_params = operation["parameters"]
                .as_array()
                .is_some_and(|p| !p.is_empty());
            if has_params {
                assert!(responses["422"].is_object(), "{method} {path}: 422");
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    for write in [
        "UserWrite",
        "UserCreate",
        "BuildingWrite",
        "BuildingCreate",
        "ElectricVehicleWrite",
    ] {
        assert_eq!(schemas[write]["additionalProperties"], false, "{write}");
    }
    assert_eq!(schemas["UserCreate"]["required"], json!(["role", "email"]));
    assert_eq!(schemas["BuildingCreate"]["required"], json!(["name"]));
    let deadline = &schemas["ElectricVehicleOut"]["properties"]["charge_deadline_at"];
    assert!(
        deadline.get("format").is_none(),
        "no `format: time` (it requires an offset): {deadline}"
    );
    let zone = &paths["/api/partners/v2.0/prices/{price_zone}"]["get"]["parameters"][0];
    assert!(zone["schema"].to_string().contains("PriceZone"), "{zone}");
    // Creates link to what they created, for generated clients and stateful fuzzers.
    let links =
        &paths["/api/partners/v2.0/org/{org_id}/users"]["post"]["responses"]["200"]["links"];
    assert_eq!(
        links["get_user"]["parameters"]["user_id"],
        "$response.body#/id"
    );
    s.stop().await;
}
