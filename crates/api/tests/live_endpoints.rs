//! The partner-facing endpoints of the live loop: boost, actions, plan, sessions, savings, data
//! and the sandbox driver controls. The worker's side is played by writing the store directly.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::*;
use serde_json::{Value, json};
use uuid::Uuid;
use voltplan_core::vehicle::{BoostState, EvSettings, EvState};
use voltplan_store::fleet::{CycleOutcome, ReadingRecord, SessionData, SessionRecord};
use voltplan_store::{OrgScope, new_vehicle};

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap()
}

/// An EV as the worker would have left it: written straight to the store with this state.
async fn insert_ev(s: &TestServer, t: &Tenant, user: Uuid, state: EvState) -> Uuid {
    insert_ev_with(s, t, user, EvSettings::default(), state).await
}

async fn insert_ev_with(
    s: &TestServer,
    t: &Tenant,
    user: Uuid,
    settings: EvSettings,
    state: EvState,
) -> Uuid {
    let org = OrgScope::new(t.org_id);
    let mut v = new_vehicle(org, user, s.clock_now());
    v.settings = settings;
    v.state = state;
    s.store.create_vehicle(org, &v).await.unwrap();
    v.id
}

fn plugged(level: i32) -> EvState {
    EvState {
        is_plugged_in: Some(true),
        battery_level: Some(level),
        boost_state: BoostState::Available,
        ..EvState::default()
    }
}

async fn settings_of(s: &TestServer, t: &Tenant, user: Uuid, ev: Uuid) -> EvSettings {
    s.store
        .get_vehicle(OrgScope::new(t.org_id), user, ev, false)
        .await
        .unwrap()
        .settings
}

#[tokio::test]
async fn boost_follows_the_podero_rules() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;

        // Plugged in and idle: 204, the request is recorded and shows as `requested`.
        let ev = insert_ev(&s, &t, user, plugged(40)).await;
        let boost = format!("{}/boost", ev_path(t.org_id, user, ev));
        let (status, body) = s.post_empty(&t.token, &boost).await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(
            settings_of(&s, &t, user, ev).await.boost_requested_at,
            Some(s.clock_now())
        );
        let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, ev)).await;
        assert_eq!(detail["boost_state"], "requested");
        // Asking again while requested is refused.
        let (status, body) = s.post_empty(&t.token, &boost).await;
        assert_eq!(
            (status, body),
            (
                409,
                json!({"state": "requested", "reason": "already_charging"})
            )
        );
        // DELETE withdraws a request the worker has not taken up, and is idempotent.
        for _ in 0..2 {
            let (status, _) = s.delete(&t.token, &boost).await;
            assert_eq!(status, 204);
        }
        assert_eq!(settings_of(&s, &t, user, ev).await.boost_requested_at, None);
        let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, ev)).await;
        assert_eq!(detail["boost_state"], "available");

        // Unplugged: arms the next session, idempotently; DELETE disarms, idempotently.
        let parked = insert_ev(&s, &t, user, EvState::default()).await;
        let parked_boost = format!("{}/boost", ev_path(t.org_id, user, parked));
        for _ in 0..2 {
            let (status, body) = s.post_empty(&t.token, &parked_boost).await;
            assert_eq!(status, 204, "{body}");
            let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, parked)).await;
            assert_eq!(detail["boost_for_next_session"], true);
            assert_eq!(detail["boost_state"], "unavailable");
        }
        assert_eq!(
            settings_of(&s, &t, user, parked).await.boost_requested_at,
            None
        );
        for _ in 0..2 {
            let (status, _) = s.delete(&t.token, &parked_boost).await;
            assert_eq!(status, 204);
            let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, parked)).await;
            assert_eq!(detail["boost_for_next_session"], false);
        }

        // Already charging, or boosting: already_charging with the current state.
        let charging = insert_ev(
            &s,
            &t,
            user,
            EvState {
                is_charging: Some(true),
                boost_state: BoostState::Unavailable,
                ..plugged(40)
            },
        )
        .await;
        let (status, body) = s
            .post_empty(
                &t.token,
                &format!("{}/boost", ev_path(t.org_id, user, charging)),
            )
            .await;
        assert_eq!(
            (status, body),
            (
                409,
                json!({"state": "unavailable", "reason": "already_charging"})
            )
        );
        let ongoing = insert_ev_with(
            &s,
            &t,
            user,
            EvSettings {
                boost_requested_at: Some(s.clock_now() - Duration::minutes(5)),
                ..EvSettings::default()
            },
            EvState {
                is_charging: Some(true),
                boost_state: BoostState::Ongoing,
                ..plugged(40)
            },
        )
        .await;
        let ongoing_boost = format!("{}/boost", ev_path(t.org_id, user, ongoing));
        let (status, body) = s.post_empty(&t.token, &ongoing_boost).await;
        assert_eq!(
            (status, body),
            (
                409,
                json!({"state": "ongoing", "reason": "already_charging"})
            )
        );
        // A live boost is not cancelled by DELETE (Podero EV semantics).
        let (status, _) = s.delete(&t.token, &ongoing_boost).await;
        assert_eq!(status, 204);
        let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, ongoing)).await;
        assert_eq!(detail["boost_state"], "ongoing");

        // Full: by the flag, or at the car's own cap.
        let full = insert_ev(
            &s,
            &t,
            user,
            EvState {
                is_fully_charged: Some(true),
                ..plugged(100)
            },
        )
        .await;
        let capped = insert_ev(
            &s,
            &t,
            user,
            EvState {
                charge_target_max: Some(80),
                ..plugged(80)
            },
        )
        .await;
        for ev in [full, capped] {
            let (status, body) = s
                .post_empty(&t.token, &format!("{}/boost", ev_path(t.org_id, user, ev)))
                .await;
            assert_eq!(
                (status, body),
                (
                    409,
                    json!({"state": "available", "reason": "fully_charged"})
                )
            );
            assert_eq!(settings_of(&s, &t, user, ev).await.boost_requested_at, None);
        }

        // Tenancy: another organisation, and an unknown vehicle, are 404.
        let other = s.tenant("Utility B").await;
        let (status, _) = s.post_empty(&other.token, &boost).await;
        assert_eq!(status, 404);
        let (status, _) = s.delete(&other.token, &boost).await;
        assert_eq!(status, 404);
        let (status, _) = s
            .post_empty(
                &t.token,
                &format!("{}/boost", ev_path(t.org_id, user, Uuid::now_v7())),
            )
            .await;
        assert_eq!(status, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_revoked_link_shows_a_reauthenticate_action() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let revoked = insert_ev(
            &s,
            &t,
            user,
            EvState {
                action_needed: true,
                is_authenticated: Some(false),
                ..EvState::default()
            },
        )
        .await;
        let (status, detail) = s.get(&t.token, &ev_path(t.org_id, user, revoked)).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["action_needed"], true);
        let actions = detail["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1, "{detail}");
        let action = &actions[0];
        assert_eq!(action["code"], "reauthenticate");
        let id: Uuid = action["id"].as_str().unwrap().parse().unwrap();
        // Podero's cue link: the action's id and a signed secret (tests/onboarding.rs follows it).
        let url = action["resolution_link"]["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!(
                "{}/api/partners/v2.0/cues/{id}/resolve?secret=",
                s.base
            )),
            "{url}"
        );
        assert_eq!(
            action["resolution_link"]["required_parameters"],
            json!(["successUrl", "cancelUrl"])
        );
        assert_eq!(id.get_version_num(), 5);
        // Stable across reads, and the list view carries no actions.
        let (_, again) = s.get(&t.token, &ev_path(t.org_id, user, revoked)).await;
        assert_eq!(again["actions"][0]["id"], action["id"]);
        let (_, list) = s.get(&t.token, &evs_path(t.org_id, user)).await;
        assert!(list[0].get("actions").is_none());

        // A healthy vehicle has none.
        let healthy = insert_ev(&s, &t, user, plugged(50)).await;
        let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, healthy)).await;
        assert_eq!(detail["actions"], json!([]));
        s.stop().await;
    }
}

#[tokio::test]
async fn the_plan_is_the_workers_or_null_with_a_reason() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let (_, created) = s.post(&t.token, &evs_path(t.org_id, user), json!({})).await;
        let ev = id_of(&created);
        let plan_path = format!("{}/plan", ev_path(t.org_id, user, ev));
        let (status, body) = s.get(&t.token, &plan_path).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"plan": null, "reason": "not_plugged_in", "prices": []})
        );

        let waiting = insert_ev(&s, &t, user, plugged(30)).await;
        let (_, body) = s
            .get(
                &t.token,
                &format!("{}/plan", ev_path(t.org_id, user, waiting)),
            )
            .await;
        assert_eq!(
            body,
            json!({"plan": null, "reason": "no_cycle_yet", "prices": []})
        );

        // The worker stores a plan at the end of a cycle.
        let claimed = s
            .store
            .claim_vehicles("w1", s.clock_now(), Duration::minutes(1), 10)
            .await
            .unwrap();
        let lease = claimed
            .iter()
            .find(|c| c.vehicle.id == ev)
            .unwrap()
            .lease
            .clone();
        let plan = json!({
            "intervals": [{"start": "2026-11-26T13:00:00Z", "end": "2026-11-26T14:00:00Z", "power_w": 11000.0}],
            "deadline": "2026-11-26T15:00:00Z"
        });
        // Four hourly public prices around the plan; the plan's window (13:00–15:00) holds two.
        let hour = |h: u32| Utc.with_ymd_and_hms(2026, 11, 26, h, 0, 0).unwrap();
        let slots: Vec<voltplan_core::PriceSlot> = (11..15)
            .map(|h| voltplan_core::PriceSlot {
                start: hour(h),
                end: hour(h + 1),
                price_eur_mwh: f64::from(h),
            })
            .collect();
        s.store
            .upsert_prices(
                voltplan_core::PriceZone::At,
                None,
                "entsoe",
                &slots,
                s.clock_now(),
            )
            .await
            .unwrap();
        let finished = s
            .store
            .finish_cycle(
                &lease,
                &CycleOutcome {
                    state: EvState::default(),
                    runtime: "{}".to_owned(),
                    plan: Some(plan.to_string()),
                    next_cycle_at: s.clock_now() + Duration::minutes(5),
                    clear_boost_for_next_session: false,
                    clear_boost_request: None,
                    command_outcomes: Vec::new(),
                    events: Vec::new(),
                    sessions: Vec::new(),
                    reading: None,
                    wake_grid_group: None,
                },
            )
            .await
            .unwrap();
        assert!(finished);
        let (_, body) = s.get(&t.token, &plan_path).await;
        assert_eq!(body["plan"], plan);
        assert_eq!(body["reason"], Value::Null);
        let prices: Vec<f64> = body["prices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["price_eur_mwh"].as_f64().unwrap())
            .collect();
        assert_eq!(prices, vec![13.0, 14.0]);
        assert_eq!(body["prices"][0]["source"], "entsoe");

        let other = s.tenant("Utility B").await;
        let (status, _) = s.get(&other.token, &plan_path).await;
        assert_eq!(status, 404);
        s.stop().await;
    }
}

async fn add_session(
    s: &TestServer,
    t: &Tenant,
    ev: Uuid,
    plug_in: DateTime<Utc>,
    (baseline, actual, kwh): (f64, f64, f64),
) -> Uuid {
    let id = Uuid::now_v7();
    s.store
        .upsert_session(&SessionRecord {
            id,
            org_id: t.org_id,
            vehicle_id: ev,
            plug_in_time: plug_in,
            unplug_time: Some(plug_in + Duration::hours(8)),
            data: SessionData {
                energy_charged_kwh: kwh,
                baseline_cost_eur: baseline,
                actual_cost_eur: actual,
                actual_savings_eur: Some(baseline - actual),
                avg_charge_power_kw: Some(11.0),
                is_at_home: Some(true),
                session_outcome: Some("completed".into()),
                initial_soc_pct: Some(30.0),
                final_soc_pct: Some(80.0),
                ..SessionData::default()
            },
        })
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn sessions_are_paginated_and_validated() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = insert_ev(&s, &t, user, EvState::default()).await;
        let first = add_session(&s, &t, ev, at(2026, 11, 1, 0, 0), (5.0, 3.0, 20.0)).await;
        add_session(&s, &t, ev, at(2026, 11, 10, 18, 0), (5.0, 3.0, 20.0)).await;
        let last = add_session(&s, &t, ev, at(2026, 11, 20, 23, 59), (5.0, 3.0, 20.0)).await;
        add_session(&s, &t, ev, at(2026, 11, 21, 0, 0), (5.0, 3.0, 20.0)).await;
        let base = format!("{}/sessions", ev_path(t.org_id, user, ev));

        // Both days inclusive (UTC): the 1st at 00:00 and the 20th at 23:59 are in, the 21st not.
        let (status, page) = s
            .get(&t.token, &format!("{base}?from=2026-11-01&to=2026-11-20"))
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 3);
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["id"], last.to_string(), "newest first");
        assert_eq!(items[2]["id"], first.to_string());
        let keys: Vec<&str> = items[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for k in [
            "id",
            "plug_in_time",
            "unplug_time",
            "inferred_session_end",
            "desired_charging_start_time",
            "desired_charging_end_time",
            "charge_deadline",
            "target_soc_pct",
            "initial_soc_pct",
            "final_soc_pct",
            "energy_charged_kwh",
            "avg_charge_power_kw",
            "peak_charge_power_kw",
            "actual_cost_eur",
            "expected_savings_eur",
            "actual_savings_eur",
            "is_at_home",
            "session_outcome",
            // Voltplan's extensions.
            "session_outcome_reason",
            "target_reached_at",
            "energy_contract_id",
            "customer_currency",
            "customer_cost",
            "customer_baseline_cost",
            "customer_savings",
            "customer_expected_savings",
        ] {
            assert!(keys.contains(&k), "session field {k} missing");
        }
        assert_eq!(keys.len(), 26, "no internal fields leak: {keys:?}");
        assert_eq!(items[0]["actual_savings_eur"], 2.0);

        let (_, page) = s
            .get(
                &t.token,
                &format!("{base}?from=2026-11-01&to=2026-11-30&limit=2"),
            )
            .await;
        assert_eq!(page["total"], 4);
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let (_, page) = s
            .get(
                &t.token,
                &format!("{base}?from=2026-11-01&to=2026-11-30&limit=2&offset=3"),
            )
            .await;
        assert_eq!(page["total"], 4);
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["items"][0]["id"], first.to_string());

        for (query, field) in [
            ("from=2026-11-01&to=2026-11-30&limit=0", "limit"),
            ("from=2026-11-01&to=2026-11-30&limit=201", "limit"),
            ("from=2026-11-01&to=2026-11-30&limit=ten", "limit"),
            ("from=2026-11-01&to=2026-11-30&offset=-1", "offset"),
            ("to=2026-11-30", "from"),
            ("from=2026-11-01", "to"),
            ("from=01.11.2026&to=2026-11-30", "from"),
            ("from=2026-11-30&to=2026-11-01", "to"),
        ] {
            let (status, body) = s.get(&t.token, &format!("{base}?{query}")).await;
            assert_eq!(status, 422, "{query}: {body}");
            assert_eq!(invalid_fields(&body), vec![field.to_owned()], "{query}");
        }
        let (_, page) = s
            .get(
                &t.token,
                &format!("{base}?from=2026-11-01&to=2026-11-30&limit=200"),
            )
            .await;
        assert_eq!(page["total"], 4);

        let other = s.tenant("Utility B").await;
        let (status, _) = s
            .get(
                &other.token,
                &format!("{base}?from=2026-11-01&to=2026-11-30"),
            )
            .await;
        assert_eq!(status, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn savings_are_summed_per_utc_bucket_and_per_organisation() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = insert_ev(&s, &t, user, EvState::default()).await;
        let ev2 = insert_ev(&s, &t, user, EvState::default()).await;
        add_session(&s, &t, ev, at(2026, 11, 2, 18, 0), (10.0, 6.0, 40.0)).await;
        add_session(&s, &t, ev, at(2026, 11, 30, 23, 30), (5.0, 4.0, 20.0)).await;
        add_session(&s, &t, ev, at(2026, 12, 1, 0, 0), (2.0, 1.5, 10.0)).await;
        add_session(&s, &t, ev2, at(2026, 11, 5, 18, 0), (3.0, 2.0, 10.0)).await;
        let base = format!("{}/savings", ev_path(t.org_id, user, ev));

        // Default resolution 1MONTH; buckets clipped to the requested days.
        let (status, body) = s
            .get(&t.token, &format!("{base}?from=2026-11-01&to=2026-12-15"))
            .await;
        assert_eq!(status, 200, "{body}");
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        let nov = &data[0];
        assert_eq!(nov["resolution"], "1MONTH");
        assert_eq!(
            nov["period"],
            json!({"start_period": "2026-11-01T00:00:00Z", "end_period": "2026-12-01T00:00:00Z"})
        );
        assert_eq!(nov["savings"], json!({"total": 5.0, "percentage": 33.33}));
        assert_eq!(nov["consumption"], json!({"total": 60.0}));
        assert_eq!(
            nov["electric_vehicle"],
            json!({"estimated_consumption_wh": 60000.0, "charge_session_count": 2, "average_charge_power_w": 11000.0})
        );
        assert_eq!(
            data[1]["period"],
            json!({"start_period": "2026-12-01T00:00:00Z", "end_period": "2026-12-16T00:00:00Z"})
        );
        assert_eq!(data[1]["savings"]["total"], 0.5);
        assert_eq!(body["metadata"]["units"]["savings.total"], "EUR");
        assert_eq!(
            body["metadata"]["units"]["electric_vehicle.estimated_consumption_wh"],
            "Wh"
        );
        assert_eq!(body["metadata"]["error"], Value::Null);

        // Weekly buckets start on Monday 00:00 UTC; empty buckets are zeros.
        let (_, body) = s
            .get(
                &t.token,
                &format!("{base}?from=2026-11-01&to=2026-11-30&resolution=1WEEK"),
            )
            .await;
        let data = body["data"].as_array().unwrap();
        assert_eq!(data[0]["period"]["start_period"], "2026-11-01T00:00:00Z");
        assert_eq!(data[1]["period"]["start_period"], "2026-11-02T00:00:00Z");
        assert_eq!(data[1]["savings"]["total"], 4.0);
        assert_eq!(data[2]["electric_vehicle"]["charge_session_count"], 0);
        assert_eq!(data[2]["savings"]["percentage"], Value::Null);
        assert_eq!(data.last().unwrap()["savings"]["total"], 1.0);

        for (query, field) in [
            (
                "from=2026-11-01&to=2026-11-30&resolution=15MIN",
                "resolution",
            ),
            ("to=2026-11-30", "from"),
        ] {
            let (status, body) = s.get(&t.token, &format!("{base}?{query}")).await;
            assert_eq!(status, 422, "{query}: {body}");
            assert_eq!(invalid_fields(&body), vec![field.to_owned()]);
        }

        // Organisation-wide: both vehicles, in [start, end).
        let org_savings = format!("/api/partners/v2.0/org/{}/devices/savings", t.org_id);
        let (status, body) = s
            .get(
                &t.token,
                &format!(
                    "{org_savings}?start_datetime=2026-11-01T00:00:00Z&end_datetime=2026-12-01T00:00:00Z"
                ),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"total_savings": 6.0, "heat_pump_savings": 0.0, "electric_vehicle_savings": 6.0, "inverter_savings": 0.0})
        );
        let (status, body) = s
            .get(
                &t.token,
                &format!("{org_savings}?start_datetime=2026-11-01T00:00:00Z"),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(invalid_fields(&body), vec!["end_datetime".to_owned()]);
        let other = s.tenant("Utility B").await;
        let (status, body) = s
            .get(
                &other.token,
                &format!(
                    "/api/partners/v2.0/org/{}/devices/savings?start_datetime=2026-11-01T00:00:00Z&end_datetime=2026-12-01T00:00:00Z",
                    other.org_id
                ),
            )
            .await;
        assert_eq!((status, &body["total_savings"]), (200, &json!(0.0)));
        s.stop().await;
    }
}

#[tokio::test]
async fn data_is_bucketed_from_readings_and_fill_missing_fills_the_range() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = insert_ev(&s, &t, user, EvState::default()).await;
        let reading = |minute: u32, level: f64, charging: bool, price: f64| ReadingRecord {
            vehicle_id: ev,
            org_id: t.org_id,
            at: at(2026, 11, 26, 12, minute),
            battery_level: Some(level),
            is_plugged_in: Some(true),
            is_charging: Some(charging),
            is_at_home: Some(true),
            power_w: Some(if charging { 11_000.0 } else { 0.0 }),
            energy_kwh: Some(if charging { 0.5 } else { 0.0 }),
            price_eur_mwh: Some(price),
            customer_price_per_mwh: None,
        };
        for r in [
            reading(0, 40.0, false, 100.0),
            reading(5, 41.0, true, 110.0),
            reading(35, 45.0, true, 90.0),
        ] {
            s.store.append_reading(&r).await.unwrap();
        }
        let base = format!("{}/data", ev_path(t.org_id, user, ev));
        let range = "from_datetime=2026-11-26T12:00:00Z&to_datetime=2026-11-26T13:00:00Z";

        let (status, body) = s.get(&t.token, &format!("{base}?{range}")).await;
        assert_eq!(status, 200, "{body}");
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 2, "only buckets with data: {body}");
        assert_eq!(
            data[0],
            json!({
                "time": "2026-11-26T12:00:00Z", "price": 105.0, "battery_level": 41.0,
                "is_charging": true, "is_plugged_in": true, "is_at_optimized_location": true,
                "estimated_consumption": 500.0, "unoptimized_consumption": null,
            })
        );
        assert_eq!(data[1]["time"], "2026-11-26T12:30:00Z");
        assert_eq!(body["metadata"]["units"]["estimated_consumption"], "Wh");

        // fill-missing: every quarter of the hour, nulls where nothing was read.
        let (status, body) = s
            .get_with_headers(
                &t.token,
                &format!("{base}?{range}"),
                &[("fill-missing", "true")],
            )
            .await;
        assert_eq!(status, 200);
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 4);
        assert_eq!(data[1]["time"], "2026-11-26T12:15:00Z");
        assert_eq!(data[1]["battery_level"], Value::Null);
        assert_eq!(data[1]["is_charging"], Value::Null);

        // Keywords pick the fields; hourly buckets.
        let (_, body) = s
            .get(
                &t.token,
                &format!("{base}?{range}&resolution=1HOUR&keywords=price,battery_level"),
            )
            .await;
        assert_eq!(
            body["data"],
            json!([{"time": "2026-11-26T12:00:00Z", "price": 100.0, "battery_level": 45.0}])
        );

        // No data: 400 without fill-missing; the whole range of nulls with it.
        let empty = "from_datetime=2026-11-27T00:00:00Z&to_datetime=2026-11-27T01:00:00Z";
        let (status, body) = s.get(&t.token, &format!("{base}?{empty}")).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("fill-missing"));
        let (status, body) = s
            .get_with_headers(
                &t.token,
                &format!("{base}?{empty}&resolution=1HOUR"),
                &[("fill-missing", "true")],
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["data"].as_array().unwrap().len(), 1);
        assert_eq!(body["data"][0]["price"], Value::Null);

        for (query, field) in [
            (format!("{range}&keywords=price,colour"), "keywords"),
            (format!("{range}&resolution=1YEAR"), "resolution"),
            (
                "to_datetime=2026-11-26T13:00:00Z".to_owned(),
                "from_datetime",
            ),
            (
                "from_datetime=2026-11-26T13:00:00Z&to_datetime=2026-11-26T12:00:00Z".to_owned(),
                "to_datetime",
            ),
            (
                "from_datetime=2026-01-01T00:00:00Z&to_datetime=2026-12-01T00:00:00Z".to_owned(),
                "resolution",
            ),
        ] {
            let (status, body) = s.get(&t.token, &format!("{base}?{query}")).await;
            assert_eq!(status, 422, "{query}: {body}");
            assert_eq!(invalid_fields(&body), vec![field.to_owned()], "{query}");
        }
        let (status, body) = s
            .get_with_headers(
                &t.token,
                &format!("{base}?{range}"),
                &[("fill-missing", "maybe")],
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(invalid_fields(&body), vec!["fill-missing".to_owned()]);

        let other = s.tenant("Utility B").await;
        let (status, _) = s.get(&other.token, &format!("{base}?{range}")).await;
        assert_eq!(status, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn sandbox_evs_are_connected_at_creation_and_driven_through_the_api() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let created = s.create_sandbox_ev(&t, user, "tesla").await;
        assert_eq!(created["is_authenticated"], true);
        assert_eq!(created["connection_status"], "ok");
        let ev = id_of(&created);
        let snapshot = sandbox.snapshot(ev).unwrap();
        assert_eq!(
            snapshot.spec.battery_capacity_kwh, 57.0,
            "from the catalogue"
        );
        assert!(!snapshot.plugged_in);
        assert_eq!(snapshot.battery_level_percent, 50.0);

        let base = sandbox_ev_path(t.org_id, ev);
        let (status, body) = s.get(&t.token, &base).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["plugged_in"], false);
        assert_eq!(body["is_authorized"], true);

        // A worker cycles the car, which is then not due for minutes…
        let claimed = s
            .store
            .claim_vehicles("w1", s.clock_now(), Duration::minutes(1), 10)
            .await
            .unwrap();
        let lease = claimed
            .into_iter()
            .find(|c| c.vehicle.id == ev)
            .unwrap()
            .lease;
        let outcome = CycleOutcome {
            state: EvState::default(),
            runtime: "{}".to_owned(),
            plan: None,
            next_cycle_at: s.clock_now() + Duration::minutes(5),
            clear_boost_for_next_session: false,
            clear_boost_request: None,
            command_outcomes: Vec::new(),
            events: Vec::new(),
            sessions: Vec::new(),
            reading: None,
            wake_grid_group: None,
        };
        assert!(s.store.finish_cycle(&lease, &outcome).await.unwrap());
        assert!(
            s.store
                .claim_vehicles("w1", s.clock_now(), Duration::minutes(1), 10)
                .await
                .unwrap()
                .is_empty()
        );

        let (status, body) = s.post_empty(&t.token, &format!("{base}/plug-in")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["plugged_in"], true);
        assert!(sandbox.snapshot(ev).unwrap().plugged_in);
        // …until a driver action wakes it: the worker sees the plug-in in its next round.
        let due = s
            .store
            .claim_vehicles("w1", s.clock_now(), Duration::minutes(1), 10)
            .await
            .unwrap();
        assert_eq!(
            due.iter().map(|c| c.vehicle.id).collect::<Vec<_>>(),
            vec![ev]
        );
        let lease = due.into_iter().next().unwrap().lease;
        assert!(s.store.finish_cycle(&lease, &outcome).await.unwrap());
        // Driving while plugged in is a conflict.
        let (status, body) = s
            .post(&t.token, &format!("{base}/drive"), json!({"km": 10}))
            .await;
        assert_eq!(status, 409, "{body}");
        let (status, _) = s.post_empty(&t.token, &format!("{base}/unplug")).await;
        assert_eq!(status, 200);
        let (status, body) = s
            .post(&t.token, &format!("{base}/drive"), json!({"km": 10}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(sandbox.snapshot(ev).unwrap().odometer_km, 10.0);
        let (status, body) = s.post(&t.token, &format!("{base}/drive"), json!({})).await;
        assert_eq!(status, 422);
        assert_eq!(invalid_fields(&body), vec!["km".to_owned()]);

        let (status, body) = s
            .post(
                &t.token,
                &format!("{base}/set-level"),
                json!({"battery_level": 80}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(sandbox.snapshot(ev).unwrap().battery_level_percent, 80.0);
        let (status, body) = s
            .post(
                &t.token,
                &format!("{base}/set-level"),
                json!({"battery_level": 150}),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(invalid_fields(&body), vec!["battery_level".to_owned()]);

        let (status, _) = s
            .post_empty(&t.token, &format!("{base}/revoke-authorization"))
            .await;
        assert_eq!(status, 200);
        assert!(!sandbox.snapshot(ev).unwrap().is_authorized);
        let (status, _) = s
            .post_empty(&t.token, &format!("{base}/restore-authorization"))
            .await;
        assert_eq!(status, 200);
        assert!(sandbox.snapshot(ev).unwrap().is_authorized);

        // Another organisation's vehicle: 404, and the car is untouched.
        let other = s.tenant("Utility B").await;
        let (status, _) = s
            .post_empty(
                &other.token,
                &format!("{}/plug-in", sandbox_ev_path(other.org_id, ev)),
            )
            .await;
        assert_eq!(status, 404);
        assert!(!sandbox.snapshot(ev).unwrap().plugged_in);

        // A vehicle of another cloud (here: none) is not simulated: 404.
        let (_, plain) = s.post(&t.token, &evs_path(t.org_id, user), json!({})).await;
        let plain = id_of(&plain);
        assert!(!plain_is_authenticated(&s, &t, user, plain).await);
        let (status, body) = s
            .post_empty(
                &t.token,
                &format!("{}/plug-in", sandbox_ev_path(t.org_id, plain)),
            )
            .await;
        assert_eq!(status, 404);
        assert!(body["detail"].as_str().unwrap().contains("sandbox"));
        s.stop().await;

        // A server without a sandbox says so.
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let created = s.create_sandbox_ev(&t, user, "tesla").await;
        assert_eq!(created["is_authenticated"], false);
        let (status, body) = s
            .get(&t.token, &sandbox_ev_path(t.org_id, id_of(&created)))
            .await;
        assert_eq!(status, 404);
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("without the sandbox")
        );
        s.stop().await;
    }
}

async fn plain_is_authenticated(s: &TestServer, t: &Tenant, user: Uuid, ev: Uuid) -> bool {
    let (_, detail) = s.get(&t.token, &ev_path(t.org_id, user, ev)).await;
    detail["is_authenticated"].as_bool().unwrap()
}
