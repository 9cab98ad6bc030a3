//! `GET/PUT …/electric-vehicles/{electric_vehicle_id}/charge-policy`: the weekly charge policy
//! (Podero §4.10): its default, round trip, validation, tenancy, and the plan that follows it.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use serde_json::{Value, json};
use uuid::Uuid;

fn policy_path(org: Uuid, user: Uuid, ev: Uuid) -> String {
    format!("{}/charge-policy", ev_path(org, user, ev))
}

/// The `data` of a policy with no day set, in `timezone`.
fn empty_week(timezone: &str) -> Value {
    json!({"mon": null, "tue": null, "wed": null, "thu": null, "fri": null, "sat": null,
           "sun": null, "timezone": timezone})
}

async fn ev_detail(s: &TestServer, t: &Tenant, user: Uuid, ev: Uuid) -> Value {
    let (status, body) = s.get(&t.token, &ev_path(t.org_id, user, ev)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The vehicle's `charge_policy_last_updated_at`.
async fn policy_stamp(s: &TestServer, t: &Tenant, user: Uuid, ev: Uuid) -> Option<DateTime<Utc>> {
    let detail = ev_detail(s, t, user, ev).await;
    let stamp = &detail["charge_policy_last_updated_at"];
    (!stamp.is_null()).then(|| {
        stamp
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a date-time: {detail}"))
    })
}

/// Runs the worker until the vehicle's plan has the `expected` deadline (a few rounds at most,
/// the clock a minute further each time); answers the plan's body.
async fn plan_with_deadline(
    s: &TestServer,
    worker: &voltplan_worker::Worker,
    t: &Tenant,
    plan_path: &str,
    expected: &str,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..10 {
        worker.run_once().await.unwrap();
        let (status, body) = s.get(&t.token, plan_path).await;
        assert_eq!(status, 200, "{body}");
        if body["plan"]["deadline"] == expected {
            return body;
        }
        last = body;
        s.clock.advance(Duration::minutes(1));
    }
    panic!("the plan's deadline never became {expected}: {last}");
}

#[tokio::test]
async fn a_vehicle_without_a_policy_shows_every_day_null_in_its_zones_time_zone() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = id_of(&s.create_ev(&t, user, json!({})).await);
        let (status, body) = s.get(&t.token, &policy_path(t.org_id, user, ev)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"metadata": {"electric_vehicle_id": ev, "user_id": user, "error": null},
                   "data": empty_week("Europe/Vienna")})
        );
        // The time zone is the price zone's.
        let lisbon = id_of(&s.create_ev(&t, user, json!({"price_zone": "PT"})).await);
        let (_, body) = s.get(&t.token, &policy_path(t.org_id, user, lisbon)).await;
        assert_eq!(body["data"], empty_week("Europe/Lisbon"));
        s.stop().await;
    }
}

#[tokio::test]
async fn a_put_replaces_the_week_and_reads_back() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = id_of(&s.create_ev(&t, user, json!({})).await);
        let path = policy_path(t.org_id, user, ev);
        assert_eq!(policy_stamp(&s, &t, user, ev).await, None);

        s.clock.advance(Duration::minutes(5));
        let put_at = s.clock_now();
        let (status, put) = s
            .put(
                &t.token,
                &path,
                json!({"mon": {"charge_percentage": 80, "charge_deadline": "07:00"},
                       "fri": {"charge_percentage": 100, "charge_deadline": "06:30:15"},
                       "sun": null,
                       "timezone": "Europe/London"}),
            )
            .await;
        assert_eq!(status, 200, "{put}");
        let mut expected = empty_week("Europe/London");
        expected["mon"] = json!({"charge_percentage": 80, "charge_deadline": "07:00:00"});
        expected["fri"] = json!({"charge_percentage": 100, "charge_deadline": "06:30:15"});
        assert_eq!(
            put,
            json!({"metadata": {"electric_vehicle_id": ev, "user_id": user, "error": null},
                   "data": expected})
        );
        let (status, read) = s.get(&t.token, &path).await;
        assert_eq!(status, 200);
        assert_eq!(read, put, "GET shows what PUT answered");

        // The EV's policy stamp moved; the policy is not switched on by itself.
        assert_eq!(policy_stamp(&s, &t, user, ev).await, Some(put_at));
        let detail = ev_detail(&s, &t, user, ev).await;
        assert_eq!(detail["is_charge_policy_enabled"], false);

        // The same policy again changes nothing, the stamp included.
        s.clock.advance(Duration::minutes(5));
        let (status, again) = s.put(&t.token, &path, put["data"].clone()).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again, put);
        assert_eq!(policy_stamp(&s, &t, user, ev).await, Some(put_at));

        // A partial week replaces the whole policy: the other days are gone, and without a
        // time zone the price zone's applies again.
        s.clock.advance(Duration::minutes(5));
        let second_at = s.clock_now();
        let (status, partial) = s
            .put(
                &t.token,
                &path,
                json!({"wed": {"charge_percentage": 50, "charge_deadline": "22:15"}}),
            )
            .await;
        assert_eq!(status, 200, "{partial}");
        let mut expected = empty_week("Europe/Vienna");
        expected["wed"] = json!({"charge_percentage": 50, "charge_deadline": "22:15:00"});
        assert_eq!(partial["data"], expected);
        assert_eq!(s.get(&t.token, &path).await.1["data"], expected);
        assert_eq!(policy_stamp(&s, &t, user, ev).await, Some(second_at));

        // Enabling it through the vehicle's PUT keeps the weekly policy.
        let (status, enabled) = s
            .put(
                &t.token,
                &ev_path(t.org_id, user, ev),
                json!({"is_charge_policy_enabled": true}),
            )
            .await;
        assert_eq!(status, 200, "{enabled}");
        assert_eq!(s.get(&t.token, &path).await.1["data"], expected);

        // An empty body stores an empty week (no deadline on any day while enabled).
        let (status, cleared) = s.put(&t.token, &path, json!({})).await;
        assert_eq!(status, 200, "{cleared}");
        assert_eq!(cleared["data"], empty_week("Europe/Vienna"));
        s.stop().await;
    }
}

#[tokio::test]
async fn an_invalid_policy_is_422_naming_the_field_and_writes_nothing() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = id_of(&s.create_ev(&t, user, json!({})).await);
        let path = policy_path(t.org_id, user, ev);
        let (status, stored) = s
            .put(
                &t.token,
                &path,
                json!({"tue": {"charge_percentage": 70, "charge_deadline": "06:00"},
                       "timezone": "Europe/Berlin"}),
            )
            .await;
        assert_eq!(status, 200, "{stored}");
        let stamp = policy_stamp(&s, &t, user, ev).await;
        assert!(stamp.is_some());
        s.clock.advance(Duration::minutes(5));

        let wed = |day: Value| json!({"mon": {"charge_percentage": 90, "charge_deadline": "07:00"}, "wed": day});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                wed(json!({"charge_percentage": 101, "charge_deadline": "07:00"})),
                vec!["wed.charge_percentage"],
            ),
            (
                wed(json!({"charge_percentage": -1, "charge_deadline": "07:00"})),
                vec!["wed.charge_percentage"],
            ),
            (
                wed(json!({"charge_percentage": 80.5, "charge_deadline": "07:00"})),
                vec!["wed.charge_percentage"],
            ),
            (
                wed(json!({"charge_percentage": "80", "charge_deadline": "07:00"})),
                vec!["wed.charge_percentage"],
            ),
            (
                wed(json!({"charge_deadline": "07:00"})),
                vec!["wed.charge_percentage"],
            ),
            (
                wed(json!({"charge_percentage": null, "charge_deadline": "07:00"})),
                vec!["wed.charge_percentage"],
            ),
            (
                wed(json!({"charge_percentage": 80, "charge_deadline": "25:00"})),
                vec!["wed.charge_deadline"],
            ),
            (
                wed(json!({"charge_percentage": 80, "charge_deadline": "07:00:60"})),
                vec!["wed.charge_deadline"],
            ),
            (
                wed(json!({"charge_percentage": 80, "charge_deadline": "7am"})),
                vec!["wed.charge_deadline"],
            ),
            (
                wed(json!({"charge_percentage": 80})),
                vec!["wed.charge_deadline"],
            ),
            (
                wed(json!({"charge_percentage": 80, "charge_deadline": "07:00", "note": "x"})),
                vec!["wed.note"],
            ),
            (wed(json!(80)), vec!["wed"]),
            (json!({"timezone": "Mars/Olympus_Mons"}), vec!["timezone"]),
            (json!({"timezone": 1}), vec!["timezone"]),
            (json!({"holiday": null}), vec!["holiday"]),
            (
                json!({"metadata": {"electric_vehicle_id": ev, "user_id": user, "error": null},
                       "data": {"mon": {"charge_percentage": 90, "charge_deadline": "07:00"}}}),
                vec!["metadata", "data"],
            ),
            (
                json!({"wed": {"charge_percentage": 101}, "timezone": "Nowhere"}),
                vec!["wed.charge_percentage", "wed.charge_deadline", "timezone"],
            ),
        ];
        for (body, fields) in cases {
            let (status, answer) = s.put(&t.token, &path, body.clone()).await;
            assert_eq!(status, 422, "{body}: {answer}");
            assert_eq!(invalid_fields(&answer), fields, "{body}: {answer}");
            assert_eq!(answer["detail"][0]["loc"][0], "body");
            // Nothing was written: the old policy and its stamp stay.
            assert_eq!(s.get(&t.token, &path).await.1, stored, "after {body}");
        }
        // Not an object at all.
        let (status, answer) = s.put(&t.token, &path, json!([])).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(s.get(&t.token, &path).await.1, stored);
        assert_eq!(policy_stamp(&s, &t, user, ev).await, stamp);
        s.stop().await;
    }
}

#[tokio::test]
async fn another_organisations_or_users_vehicle_is_404_and_unchanged() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (a, a_user) = s.tenant_with_user("Utility A").await;
        let (b, b_user) = s.tenant_with_user("Utility B").await;
        let a_ev = id_of(&s.create_ev(&a, a_user, json!({})).await);
        let b_ev = id_of(&s.create_ev(&b, b_user, json!({})).await);
        let policy = json!({"thu": {"charge_percentage": 60, "charge_deadline": "08:00"}});
        for (t, user, ev) in [(&a, a_user, a_ev), (&b, b_user, b_ev)] {
            let (status, _) = s
                .put(&t.token, &policy_path(t.org_id, user, ev), policy.clone())
                .await;
            assert_eq!(status, 200);
        }
        let snapshot_a = s
            .get(&a.token, &policy_path(a.org_id, a_user, a_ev))
            .await
            .1;
        let snapshot_b = s
            .get(&b.token, &policy_path(b.org_id, b_user, b_ev))
            .await
            .1;
        let hostile = json!({"mon": {"charge_percentage": 1, "charge_deadline": "01:00"}});

        // (token, path) pairs that name a vehicle the token may not touch.
        let mut foreign: Vec<(&Tenant, String)> = Vec::new();
        for org in [a.org_id, b.org_id] {
            // B's token on A's vehicle, under A's org id and under its own.
            foreign.push((&b, policy_path(org, a_user, a_ev)));
            // A's token on B's vehicle, likewise.
            foreign.push((&a, policy_path(org, b_user, b_ev)));
        }
        // Mixed ids: one's user with the other's vehicle.
        foreign.push((&a, policy_path(a.org_id, a_user, b_ev)));
        foreign.push((&a, policy_path(a.org_id, b_user, a_ev)));
        // No such vehicle.
        foreign.push((&a, policy_path(a.org_id, a_user, Uuid::new_v4())));
        for (token, path) in &foreign {
            let (status, body) = s.get(&token.token, path).await;
            assert_eq!(status, 404, "GET {path}: {body}");
            assert_eq!(body, json!({"detail": "Not Found"}));
            let (status, body) = s.put(&token.token, path, hostile.clone()).await;
            assert_eq!(status, 404, "PUT {path}: {body}");
            // An invalid body changes nothing: still 404 (the vehicle is checked first).
            let (status, _) = s.put(&token.token, path, json!({"mon": 5})).await;
            assert_eq!(status, 404, "PUT {path} (invalid body)");
        }

        // A vehicle of another user of the same organisation.
        let a_other = s.create_user(&a, "ben@example.com").await;
        let (status, _) = s.get(&a.token, &policy_path(a.org_id, a_other, a_ev)).await;
        assert_eq!(status, 404);
        let (status, _) = s
            .put(
                &a.token,
                &policy_path(a.org_id, a_other, a_ev),
                hostile.clone(),
            )
            .await;
        assert_eq!(status, 404);

        assert_eq!(
            s.get(&a.token, &policy_path(a.org_id, a_user, a_ev))
                .await
                .1,
            snapshot_a
        );
        assert_eq!(
            s.get(&b.token, &policy_path(b.org_id, b_user, b_ev))
                .await
                .1,
            snapshot_b
        );

        // A deleted vehicle.
        let (status, _) = s.delete(&a.token, &ev_path(a.org_id, a_user, a_ev)).await;
        assert_eq!(status, 204);
        let path = policy_path(a.org_id, a_user, a_ev);
        assert_eq!(s.get(&a.token, &path).await.0, 404);
        assert_eq!(s.put(&a.token, &path, hostile.clone()).await.0, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn the_worker_plans_to_the_policys_deadline_in_its_time_zone() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let worker = s.sandbox_worker(&sandbox, "charge-policy-test");
        let (t, user) = s.tenant_with_user("Utility A").await;
        // A sandbox car in AT (Europe/Vienna) under smart charging, with the policy switched on
        // but no weekly policy yet: the daily fields apply (100 % by 06:00 Vienna).
        let ev = id_of(
            &s.create_ev(
                &t,
                user,
                json!({"device_model": {"manufacturer": "Tesla", "model": "model 3",
                                        "cloud_service": voltplan_clouds::SANDBOX_CLOUD.id},
                       "is_smart_optimization_active": true, "is_charge_policy_enabled": true}),
            )
            .await,
        );
        let (status, body) = s
            .post_empty(
                &t.token,
                &format!("{}/plug-in", sandbox_ev_path(t.org_id, ev)),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let plan_path = format!("{}/plan", ev_path(t.org_id, user, ev));

        // The test starts on Thursday 2026-11-26 12:00 UTC: tomorrow is Friday.
        // 06:00 in Vienna (CET) is 05:00 UTC.
        plan_with_deadline(&s, &worker, &t, &plan_path, "2026-11-27T05:00:00Z").await;

        // Friday 07:00 London (GMT = UTC), 90 %.
        let (status, body) = s
            .put(
                &t.token,
                &policy_path(t.org_id, user, ev),
                json!({"fri": {"charge_percentage": 90, "charge_deadline": "07:00"},
                       "timezone": "Europe/London"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let planned = plan_with_deadline(&s, &worker, &t, &plan_path, "2026-11-27T07:00:00Z").await;
        assert_eq!(planned["plan"]["target_level"], 90.0, "{planned}");

        // Without its own time zone the policy is read in the price zone's: 07:00 Vienna.
        let (status, _) = s
            .put(
                &t.token,
                &policy_path(t.org_id, user, ev),
                json!({"fri": {"charge_percentage": 90, "charge_deadline": "07:00"}}),
            )
            .await;
        assert_eq!(status, 200);
        plan_with_deadline(&s, &worker, &t, &plan_path, "2026-11-27T06:00:00Z").await;
        s.stop().await;
    }
}

#[tokio::test]
async fn the_openapi_document_uses_poderos_schema_names() {
    let s = TestServer::start(&Backend::Sqlite).await;
    let (_, doc) = s.get("", "/api/partners/v2.0/openapi.json").await;
    let path = &doc["paths"]["/api/partners/v2.0/org/{org_id}/users/{user_id}/electric-vehicles/{electric_vehicle_id}/charge-policy"];
    let schemas = &doc["components"]["schemas"];
    for method in ["get", "put"] {
        let operation = &path[method];
        assert_eq!(
            operation["tags"],
            json!(["User Electric Vehicles"]),
            "{method}"
        );
        let answer =
            &operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(
            answer, "#/components/schemas/ChargePolicyOutputSchema",
            "{method}"
        );
    }
    assert_eq!(
        path["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ChargeWeeklyPolicySchema"
    );
    assert!(
        path["put"]["description"]
            .as_str()
            .unwrap()
            .contains("not the `{metadata, data}`"),
        "{}",
        path["put"]
    );
    let output = &schemas["ChargePolicyOutputSchema"]["properties"];
    assert_eq!(
        output["metadata"]["$ref"],
        "#/components/schemas/ChargePolicyOutputMetadata"
    );
    assert_eq!(
        output["data"]["$ref"],
        "#/components/schemas/ChargeWeeklyPolicySchema"
    );
    let policy = &schemas["ChargeWeeklyPolicySchema"];
    assert_eq!(policy["additionalProperties"], false);
    assert_eq!(
        schemas["ChargeDailyPolicySchema"]["additionalProperties"],
        false
    );
    s.stop().await;
}
