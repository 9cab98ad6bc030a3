//! Day-ahead price upload (`PATCH …/trading/dayahead/prices`) and read (`GET …/prices/{zone}`)
//! over HTTP, on SQLite and (with `VOLTPLAN_TEST_POSTGRES_URL`) PostgreSQL.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{TestServer, backends, status_and_json};
use serde_json::{Value, json};
use uuid::Uuid;
use voltplan_core::{PriceSlot, PriceZone};

/// The test clock stands at 2026-11-26 12:00Z; the next Berlin delivery day starts at 23:00Z.
fn tomorrow() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 23, 0, 0).unwrap()
}

fn stamp(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn points(from: DateTime<Utc>, minutes: i64, prices: &[f64]) -> Vec<Value> {
    prices
        .iter()
        .enumerate()
        .map(|(i, price)| {
            json!({
                "timestamp": stamp(from + Duration::minutes(minutes * i as i64)),
                "price": price
            })
        })
        .collect()
}

fn upload(zone: &str, data: Vec<Value>) -> Value {
    json!({"metadata": {"price_zone": zone, "timezone_override": null}, "data": data})
}

fn prices_path(org: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/trading/dayahead/prices")
}

fn read_path(zone: &str, from: DateTime<Utc>, to: DateTime<Utc>, extra: &str) -> String {
    format!(
        "/api/partners/v2.0/prices/{zone}?from={}&to={}{extra}",
        stamp(from),
        stamp(to)
    )
}

async fn patch(server: &TestServer, token: &str, org: Uuid, body: &Value) -> (u16, Value) {
    let response = server
        .http
        .patch(server.url(&prices_path(org)))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

/// The `loc`s and `type`s of a 422 body.
fn problems(body: &Value) -> Vec<(Value, String)> {
    body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("no detail list in {body}"))
        .iter()
        .map(|d| {
            (
                d["loc"].clone(),
                d["type"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn has(body: &Value, loc: Value, kind: &str) -> bool {
    problems(body).iter().any(|(l, k)| *l == loc && k == kind)
}

fn instant(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("not a date-time: {value}"))
        .with_timezone(&Utc)
}

/// `(start, price, source)` of every point of a read.
fn read_points(body: &Value) -> Vec<(DateTime<Utc>, f64, String)> {
    body["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points in {body}"))
        .iter()
        .map(|p| {
            (
                instant(&p["start"]),
                p["price_eur_mwh"].as_f64().unwrap(),
                p["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn upload_validation_names_the_field_and_the_index() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let t = server.tenant("validation").await;
        let day = tomorrow();

        let (status, body) = patch(&server, &t.token, t.org_id, &json!({"extra": 1})).await;
        assert_eq!(status, 422, "{body}");
        assert!(has(&body, json!(["body", "metadata"]), "missing"), "{body}");
        assert!(has(&body, json!(["body", "data"]), "missing"), "{body}");
        assert!(
            has(&body, json!(["body", "extra"]), "extra_forbidden"),
            "{body}"
        );

        let (status, body) = patch(&server, &t.token, t.org_id, &upload("XX", vec![])).await;
        assert_eq!(status, 422);
        assert!(
            has(&body, json!(["body", "metadata", "price_zone"]), "enum"),
            "{body}"
        );

        let bad_tz = json!({"metadata": {"price_zone": "AT", "timezone_override": "Mars/Olympus"},
                            "data": points(day, 15, &[1.0])});
        let (status, body) = patch(&server, &t.token, t.org_id, &bad_tz).await;
        assert_eq!(status, 422);
        assert!(
            has(
                &body,
                json!(["body", "metadata", "timezone_override"]),
                "value_error"
            ),
            "{body}"
        );

        // 23:00, 23:20 (off the quarter-hour grid).
        let mut misaligned = points(day, 15, &[1.0, 2.0]);
        misaligned[1]["timestamp"] = json!(stamp(day + Duration::minutes(20)));
        let (status, body) = patch(&server, &t.token, t.org_id, &upload("DE_LU", misaligned)).await;
        assert_eq!(status, 422);
        assert_eq!(
            problems(&body),
            vec![(json!(["body", "data", 1, "timestamp"]), "alignment".into())]
        );

        // 23:00, 23:15, 23:45: 23:30 is missing.
        let mut gap = points(day, 15, &[1.0, 2.0, 3.0]);
        gap[2]["timestamp"] = json!(stamp(day + Duration::minutes(45)));
        let (status, body) = patch(&server, &t.token, t.org_id, &upload("DE_LU", gap)).await;
        assert_eq!(status, 422);
        assert_eq!(
            problems(&body),
            vec![(json!(["body", "data", 2, "timestamp"]), "gap".into())]
        );

        let mut backwards = points(day, 15, &[1.0, 2.0]);
        backwards.swap(0, 1);
        let (status, body) = patch(&server, &t.token, t.org_id, &upload("DE_LU", backwards)).await;
        assert_eq!(status, 422);
        assert_eq!(
            problems(&body),
            vec![(
                json!(["body", "data", 1, "timestamp"]),
                "chronological".into()
            )]
        );

        // Every item problem is reported at once.
        let mut items = points(day, 15, &[1.0, 2.0, 3.0, 4.0]);
        items[0]["price"] = json!("12.5");
        items[1].as_object_mut().unwrap().remove("price");
        items[2]["note"] = json!("x");
        items[3]["timestamp"] = json!("tomorrow");
        let (status, body) = patch(&server, &t.token, t.org_id, &upload("AT", items)).await;
        assert_eq!(status, 422);
        assert_eq!(
            problems(&body),
            vec![
                (json!(["body", "data", 0, "price"]), "float_type".into()),
                (json!(["body", "data", 1, "price"]), "missing".into()),
                (json!(["body", "data", 2, "note"]), "extra_forbidden".into()),
                (
                    json!(["body", "data", 3, "timestamp"]),
                    "datetime_parsing".into()
                ),
            ]
        );

        // CH clears hourly: quarter-hours are off its grid.
        let (status, body) = patch(
            &server,
            &t.token,
            t.org_id,
            &upload("CH", points(day, 15, &[1.0, 2.0])),
        )
        .await;
        assert_eq!(status, 422);
        assert_eq!(
            problems(&body),
            vec![(json!(["body", "data", 1, "timestamp"]), "alignment".into())]
        );

        // None of the refused uploads stored anything.
        for zone in ["DE_LU", "AT", "CH"] {
            let (status, body) = server
                .get(
                    &t.token,
                    &read_path(zone, day, day + Duration::hours(2), ""),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert!(read_points(&body).is_empty(), "{zone}: {body}");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn upload_states_follow_what_was_stored() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let t = server.tenant("states").await;
        let now = server.clock_now();
        let day = tomorrow();

        let (status, body) = patch(&server, &t.token, t.org_id, &upload("AT", vec![])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "empty");
        assert_eq!(body["next_load_curve_calculation"], Value::Null);

        let prices: Vec<f64> = (0..96).map(|i| f64::from(i) - 30.5).collect();
        let full_day = upload("AT", points(day, 15, &prices));
        let (status, body) = patch(&server, &t.token, t.org_id, &full_day).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "success");
        assert_eq!(body["error"], Value::Null);
        assert_eq!(instant(&body["next_load_curve_calculation"]), now);

        let (_, body) = patch(&server, &t.token, t.org_id, &full_day).await;
        assert_eq!(body["state"], "existing", "{body}");

        let mut changed = prices.clone();
        changed[10] = 500.0;
        let (_, body) = patch(
            &server,
            &t.token,
            t.org_id,
            &upload("AT", points(day, 15, &changed)),
        )
        .await;
        assert_eq!(body["state"], "success", "{body}");

        let (_, body) = server
            .get(&t.token, &read_path("AT", day, day + Duration::days(1), ""))
            .await;
        let read = read_points(&body);
        assert_eq!(read.len(), 96, "{body}");
        assert_eq!(
            read[10],
            (day + Duration::minutes(150), 500.0, "upload".into())
        );
        assert_eq!(read[0].1, -30.5);

        // Today's delivery day (from 2026-11-25 23:00Z) has begun: late, nothing stored.
        let today = day - Duration::days(1);
        let (status, body) = patch(
            &server,
            &t.token,
            t.org_id,
            &upload("AT", points(today + Duration::hours(20), 15, &[1.0, 2.0])),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "late");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        let (_, body) = server.get(&t.token, &read_path("AT", today, day, "")).await;
        assert!(read_points(&body).is_empty(), "{body}");

        // Timestamps without an offset are wall-clock time in the override's time zone.
        let london = json!({
            "metadata": {"price_zone": "UK", "timezone_override": "Europe/London"},
            "data": [{"timestamp": "2026-11-27T00:00:00", "price": 80.0},
                     {"timestamp": "2026-11-27T01:00:00", "price": 81.0}]
        });
        let (_, body) = patch(&server, &t.token, t.org_id, &london).await;
        assert_eq!(body["state"], "success", "{body}");
        let (_, body) = server
            .get(
                &t.token,
                &read_path("UK", day, day + Duration::hours(3), ""),
            )
            .await;
        assert_eq!(body["currency"], "GBP");
        assert_eq!(body["resolution"], "1HOUR");
        assert_eq!(
            read_points(&body),
            vec![
                (day + Duration::hours(1), 80.0, "upload".into()),
                (day + Duration::hours(2), 81.0, "upload".into()),
            ]
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn uploads_take_precedence_for_the_uploading_organisation_only() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let a = server.tenant("a").await;
        let b = server.tenant("b").await;
        let day = tomorrow();
        let public: Vec<PriceSlot> = (0..8)
            .map(|i| PriceSlot {
                start: day + Duration::minutes(15 * i),
                end: day + Duration::minutes(15 * (i + 1)),
                price_eur_mwh: 100.0,
            })
            .collect();
        server
            .store
            .upsert_prices(PriceZone::DeLu, None, "entsoe", &public, server.clock_now())
            .await
            .unwrap();

        let (_, body) = patch(
            &server,
            &a.token,
            a.org_id,
            &upload("DE_LU", points(day + Duration::hours(1), 15, &[50.0; 4])),
        )
        .await;
        assert_eq!(body["state"], "success", "{body}");

        let window = read_path("DE_LU", day, day + Duration::hours(2), "");
        let (_, body) = server.get(&a.token, &window).await;
        let read = read_points(&body);
        assert_eq!(read.len(), 8, "{body}");
        assert!(
            read[..4]
                .iter()
                .all(|(_, p, s)| *p == 100.0 && s == "entsoe")
        );
        assert!(
            read[4..]
                .iter()
                .all(|(_, p, s)| *p == 50.0 && s == "upload")
        );
        assert_eq!(body["gaps"], json!([]));

        let (_, body) = server.get(&b.token, &window).await;
        assert!(
            read_points(&body)
                .iter()
                .all(|(_, p, s)| *p == 100.0 && s == "entsoe"),
            "{body}"
        );

        // Hourly: the mean of the quarter-hours, `mixed` when an hour combines sources.
        patch(
            &server,
            &a.token,
            a.org_id,
            &upload("DE_LU", points(day, 15, &[0.0])),
        )
        .await;
        let hourly = read_path("DE_LU", day, day + Duration::hours(2), "&resolution=1HOUR");
        let (_, body) = server.get(&a.token, &hourly).await;
        assert_eq!(
            read_points(&body),
            vec![
                (day, 75.0, "mixed".into()),
                (day + Duration::hours(1), 50.0, "upload".into()),
            ]
        );

        // Another organisation cannot upload into A's scope.
        let (status, _) = patch(
            &server,
            &b.token,
            a.org_id,
            &upload("DE_LU", points(day, 15, &[1.0])),
        )
        .await;
        assert_eq!(status, 404);
        server.stop().await;
    }
}

#[tokio::test]
async fn the_read_endpoint_checks_zone_window_and_resolution() {
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let t = server.tenant("reads").await;
        let day = tomorrow();

        let response = server
            .http
            .get(server.url(&read_path("AT", day, day + Duration::hours(1), "")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);

        let (status, body) = server
            .get(
                &t.token,
                &read_path("XX", day, day + Duration::hours(1), ""),
            )
            .await;
        assert_eq!(status, 422);
        assert!(has(&body, json!(["path", "price_zone"]), "enum"), "{body}");
        assert!(body["detail"][0]["msg"].as_str().unwrap().contains("XX"));

        let (status, body) = server
            .get(
                &t.token,
                &read_path("AT", day, day + Duration::days(32), ""),
            )
            .await;
        assert_eq!(status, 422);
        assert!(has(&body, json!(["query", "to"]), "value_error"), "{body}");

        let (status, body) = server.get(&t.token, &read_path("AT", day, day, "")).await;
        assert_eq!(status, 422);
        assert!(has(&body, json!(["query", "to"]), "value_error"), "{body}");

        let (status, body) = server
            .get(
                &t.token,
                "/api/partners/v2.0/prices/AT?to=2026-11-27T00:00:00Z",
            )
            .await;
        assert_eq!(status, 422);
        assert!(has(&body, json!(["query", "from"]), "missing"), "{body}");

        let (status, body) = server
            .get(
                &t.token,
                &read_path("AT", day, day + Duration::hours(1), "&resolution=5MIN"),
            )
            .await;
        assert_eq!(status, 422);
        assert!(has(&body, json!(["query", "resolution"]), "enum"), "{body}");

        let (status, body) = server
            .get(
                &t.token,
                &read_path("AT", day, day + Duration::days(31), ""),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["zone"], "AT");
        assert_eq!(body["resolution"], "15MIN");
        assert_eq!(body["currency"], "EUR");
        assert_eq!(
            body["gaps"],
            json!([{"start": stamp(day), "end": stamp(day + Duration::days(31))}])
        );
        server.stop().await;
    }
}
