//! OpenAPI, docs, health, metrics, request ids, body limits and fallbacks.

mod common;

use common::*;
use serde_json::json;

/// Every route the server answers, by method and path template.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/oauth2/token/"),
    ("post", "/oauth2/revoke_token/"),
    ("get", "/api/partners/v2.0/org/{org_id}/users"),
    ("post", "/api/partners/v2.0/org/{org_id}/users"),
    ("get", "/api/partners/v2.0/org/{org_id}/users/{user_id}"),
    ("put", "/api/partners/v2.0/org/{org_id}/users/{user_id}"),
    ("delete", "/api/partners/v2.0/org/{org_id}/users/{user_id}"),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings/{building_id}",
    ),
    (
        "put",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings/{building_id}",
    ),
    (
        "delete",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/buildings/{building_id}",
    ),
    ("get", "/api/partners/v2.0/org/{org_id}/grid-groups"),
    ("post", "/api/partners/v2.0/org/{org_id}/grid-groups"),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}",
    ),
    (
        "put",
        "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}",
    ),
    (
        "delete",
        "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}/limits",
    ),
    (
        "put",
        "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}/limits",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}/joint-plan",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts/{energy_contract_id}",
    ),
    (
        "put",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts/{energy_contract_id}",
    ),
    (
        "delete",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts/{energy_contract_id}",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}",
    ),
    (
        "put",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}",
    ),
    (
        "delete",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/boost",
    ),
    (
        "delete",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/boost",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/auth_session",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/charge-policy",
    ),
    (
        "put",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/charge-policy",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/plan",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/sessions",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/savings",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/data",
    ),
    ("get", "/api/partners/v2.0/org/{org_id}/devices/savings"),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}",
    ),
    (
        "put",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}",
    ),
    (
        "delete",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/boost",
    ),
    (
        "delete",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/boost",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/ocpp-password",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/sessions",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/savings",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/users/{user_id}/wallboxes/{wallbox_id}/data",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/plug-in",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/unplug",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/drive",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/set-level",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/revoke-authorization",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{electric_vehicle_id}/restore-authorization",
    ),
    ("get", "/api/partners/v2.0/org/{org_id}/electric-vehicles"),
    ("get", "/api/partners/v2.0/prices/fetch-status"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/api/partners/v2.0/org/{org_id}/webhooks"),
    ("post", "/api/partners/v2.0/org/{org_id}/webhooks"),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}",
    ),
    (
        "put",
        "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}",
    ),
    (
        "delete",
        "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/test",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/rotate-secret",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/deliveries",
    ),
    (
        "get",
        "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/deliveries/{delivery_id}",
    ),
    (
        "post",
        "/api/partners/v2.0/org/{org_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    ),
];

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let s = TestServer::start(&Backend::Sqlite).await;
    let (status, doc) = s.get("", "/api/partners/v2.0/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing from the OpenAPI document"
        );
    }
    // And the server really answers each documented operation (nothing documented is a dead link).
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|ops| ops.as_object().unwrap().len())
        .sum();
    assert!(documented >= ROUTES.len());
    // The EV schema carries the seed's defaults.
    let ev = &doc["components"]["schemas"]["ElectricVehicleOut"]["properties"];
    assert_eq!(ev["charge_target_min"]["default"], 50);
    assert_eq!(ev["charge_deadline_at"]["default"], "06:00:00");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let r = s
        .http
        .get(s.url("/api/partners/v2.0/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("/api/partners/v2.0/docs/redoc.standalone.js"));
    assert!(
        !page.contains("cdn."),
        "the docs page loads nothing from the internet"
    );
    let r = s
        .http
        .get(s.url("/api/partners/v2.0/docs/redoc.standalone.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().len() > 100_000);
    s.stop().await;
}

#[tokio::test]
async fn health_metrics_request_ids_limits_and_fallbacks() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let (status, health) = s.get("", "/healthz").await;
        assert_eq!(status, 200);
        assert_eq!(health["status"], "ok");
        assert_eq!(
            health["database"],
            if matches!(backend, Backend::Sqlite) {
                "sqlite"
            } else {
                "postgres"
            }
        );

        // Request ids: generated, or echoed when the client sends one.
        let r = s
            .http
            .get(s.url(&users_path(t.org_id)))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap();
        assert!(!r.headers()["x-request-id"].is_empty());
        let r = s
            .http
            .get(s.url("/nowhere"))
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-request-id"], "trace-me-42");
        let (status, body) = status_and_json(r).await;
        assert_eq!((status, body), (404, json!({"detail": "Not Found"})));
        let r = s
            .http
            .patch(s.url(&users_path(t.org_id)))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);

        // Bodies over 1 MiB are refused and nothing is written.
        let big = json!({"role": "user", "email": "big@example.com", "first_name": "x".repeat(1_100_000)});
        let (status, body) = s.post(&t.token, &users_path(t.org_id), big).await;
        assert_eq!(status, 413, "{body}");
        assert!(body["detail"].is_string());
        let (_, users) = s.get(&t.token, &users_path(t.org_id)).await;
        assert!(users.as_array().unwrap().is_empty());

        // Without a price fetcher in this process the status is a 404 that says why.
        let (status, body) = s
            .get(&t.token, "/api/partners/v2.0/prices/fetch-status")
            .await;
        assert_eq!(status, 404);
        assert!(body["detail"].as_str().unwrap().contains("ENTSOE_TOKEN"));

        let r = s.http.get(s.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains("voltplan_http_requests_total"), "{text}");
        assert!(text.contains("route=\"/api/partners/v2.0/org/{org_id}/users\""));
        s.stop().await;
    }
}
