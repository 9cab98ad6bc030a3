//! `GET /org/{org_id}/electric-vehicles` (Voltplan extension): the organisation's vehicles across
//! users, paged and filtered. States are written the way the worker writes them (claim, then a
//! batch finish), so the filters read what the live loop really stores.

mod common;

use chrono::Duration;
use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::vehicle::{EvState, StatusLevel};
use voltplan_store::fleet::CycleOutcome;
use voltplan_store::worst_status;

const WORKER: &str = "org-vehicles-test";

fn org_evs_path(org: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/electric-vehicles")
}

/// Writes each vehicle's state as a worker cycle does: claim every due vehicle, finish the batch
/// (PostgreSQL's bulk path included) and release the rest.
async fn set_states(s: &TestServer, states: &[(Uuid, EvState)]) {
    s.clock.advance(Duration::minutes(2));
    let now = s.clock_now();
    let claimed = s
        .store
        .claim_vehicles(WORKER, now, Duration::minutes(1), 1000)
        .await
        .unwrap();
    let outcomes: Vec<_> = states
        .iter()
        .map(|(id, state)| {
            let lease = claimed
                .iter()
                .find(|c| c.vehicle.id == *id)
                .unwrap_or_else(|| panic!("vehicle {id} was not due"))
                .lease
                .clone();
            let outcome = CycleOutcome {
                state: state.clone(),
                runtime: "{}".to_owned(),
                plan: None,
                next_cycle_at: now,
                clear_boost_for_next_session: false,
                clear_boost_request: None,
                command_outcomes: Vec::new(),
                events: Vec::new(),
                sessions: Vec::new(),
                reading: None,
                wake_grid_group: None,
            };
            (lease, outcome)
        })
        .collect();
    let written = s.store.finish_cycles(&outcomes).await.unwrap();
    assert!(written.iter().all(|w| *w), "every lease held");
    s.store.release_leases(WORKER).await.unwrap();
}

fn state(
    plugged: Option<bool>,
    charging: Option<bool>,
    (connection, monitoring, steering): (StatusLevel, StatusLevel, StatusLevel),
) -> EvState {
    EvState {
        is_plugged_in: plugged,
        is_charging: charging,
        connection_status: connection,
        monitoring_status: monitoring,
        steering_status: steering,
        ..EvState::default()
    }
}

/// A car as the test set it up, to compute what each filter must return.
#[derive(Clone)]
struct Car {
    id: Uuid,
    user: Uuid,
    zone: PriceZone,
    state: EvState,
    deleted: bool,
}

struct Fleet {
    tenant: Tenant,
    anna: Uuid,
    bert: Uuid,
    cars: Vec<Car>,
    /// The other organisation, whose cars match most filters.
    other: Tenant,
    other_cars: Vec<Uuid>,
}

async fn create_ev(s: &TestServer, t: &Tenant, user: Uuid, zone: PriceZone) -> Uuid {
    id_of(
        &s.create_ev(t, user, json!({"price_zone": zone.as_str()}))
            .await,
    )
}

/// Organisation A: anna and bert with cars in every state the filters tell apart, one deleted car
/// and one deleted user with a car. Organisation B: two cars that would match most filters.
async fn fleet(s: &TestServer) -> Fleet {
    use PriceZone::{At, DeLu};
    use StatusLevel::{Error, Ok, Unknown, Warning};
    let t = s.tenant("Utility A").await;
    let anna = s.create_user(&t, "anna@example.com").await;
    let bert = s.create_user(&t, "bert@example.com").await;
    let cara = s.create_user(&t, "cara@example.com").await;
    let reauth = EvState {
        action_needed: true,
        is_authenticated: Some(false),
        ..state(Some(false), Some(false), (Error, Unknown, Unknown))
    };
    let plan = [
        (anna, At, EvState::default(), false),
        (anna, At, state(Some(true), Some(true), (Ok, Ok, Ok)), false),
        (
            anna,
            DeLu,
            state(Some(true), Some(false), (Ok, Ok, Warning)),
            false,
        ),
        (bert, DeLu, reauth, false),
        (
            bert,
            At,
            state(None, None, (Unknown, Error, Warning)),
            false,
        ),
        (bert, At, state(Some(true), Some(true), (Ok, Ok, Ok)), false),
        // Deleted below: plugged in and charging, like the cars the filters look for.
        (anna, At, state(Some(true), Some(true), (Ok, Ok, Ok)), true),
        (
            cara,
            DeLu,
            state(Some(true), Some(false), (Error, Error, Error)),
            true,
        ),
    ];
    let mut cars = Vec::new();
    for (user, zone, state, deleted) in plan {
        let id = create_ev(s, &t, user, zone).await;
        cars.push(Car {
            id,
            user,
            zone,
            state,
            deleted,
        });
    }

    let other = s.tenant("Utility B").await;
    let olga = s.create_user(&other, "olga@example.com").await;
    let mut other_cars = Vec::new();
    for _ in 0..2 {
        other_cars.push(create_ev(s, &other, olga, At).await);
    }

    let mut states: Vec<(Uuid, EvState)> = cars.iter().map(|c| (c.id, c.state.clone())).collect();
    for id in &other_cars {
        let mut st = state(Some(true), Some(true), (Error, Error, Error));
        st.action_needed = true;
        states.push((*id, st));
    }
    set_states(s, &states).await;

    let (status, _) = s
        .delete(&t.token, &ev_path(t.org_id, anna, cars[6].id))
        .await;
    assert_eq!(status, 204);
    let (status, _) = s.delete(&t.token, &user_path(t.org_id, cara)).await;
    assert_eq!(status, 204);
    Fleet {
        tenant: t,
        anna,
        bert,
        cars,
        other,
        other_cars,
    }
}

/// Every page of `query` (`limit` given by the caller) by offset: the ids in order, and `total`
/// as each page reported it.
async fn all_pages_by_offset(
    s: &TestServer,
    t: &Tenant,
    query: &str,
    limit: usize,
) -> (Vec<Uuid>, i64) {
    let mut ids = Vec::new();
    let mut total = None;
    loop {
        let path = format!(
            "{}?{query}&limit={limit}&offset={}",
            org_evs_path(t.org_id),
            ids.len()
        );
        let (status, page) = s.get(&t.token, &path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let page_total = page["total"].as_i64().unwrap();
        assert_eq!(
            *total.get_or_insert(page_total),
            page_total,
            "total is stable"
        );
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        ids.extend(items.iter().map(id_of));
        if items.len() < limit {
            return (ids, page_total);
        }
    }
}

async fn all_pages_by_key(
    s: &TestServer,
    t: &Tenant,
    query: &str,
    limit: usize,
) -> (Vec<Uuid>, i64) {
    let mut ids: Vec<Uuid> = Vec::new();
    loop {
        let after = ids
            .last()
            .map(|id| format!("&after={id}"))
            .unwrap_or_default();
        let path = format!("{}?{query}&limit={limit}{after}", org_evs_path(t.org_id));
        let (status, page) = s.get(&t.token, &path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let items = page["items"].as_array().unwrap();
        ids.extend(items.iter().map(id_of));
        if items.len() < limit {
            return (ids, page["total"].as_i64().unwrap());
        }
    }
}

fn sorted(ids: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn pages_cover_every_vehicle_once_as_the_per_user_list_shows_it() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let f = fleet(&s).await;
        let t = &f.tenant;
        let live = sorted(f.cars.iter().filter(|c| !c.deleted).map(|c| c.id));
        assert_eq!(live.len(), 6);

        for limit in [1, 2, 4, 6, 200] {
            let (ids, total) = all_pages_by_offset(&s, t, "", limit).await;
            assert_eq!(
                ids,
                live,
                "offset paging, limit {limit} ({})",
                backend.name()
            );
            assert_eq!(total, 6);
            let (ids, total) = all_pages_by_key(&s, t, "", limit).await;
            assert_eq!(
                ids,
                live,
                "keyset paging, limit {limit} ({})",
                backend.name()
            );
            assert_eq!(total, 6);
        }
        // Defaults: 50 per page from the start; past the end an empty page with the total.
        let (_, page) = s.get(&t.token, &org_evs_path(t.org_id)).await;
        assert_eq!(page["total"], 6);
        assert_eq!(page["items"].as_array().unwrap().len(), 6);
        assert_eq!(page.as_object().unwrap().len(), 2, "{{total, items}}");
        let (status, page) = s
            .get(&t.token, &format!("{}?offset=6", org_evs_path(t.org_id)))
            .await;
        assert_eq!(status, 200);
        assert_eq!(page, json!({"total": 6, "items": []}));

        // Each item is the per-user list's object, field for field; its user is owner.id.
        let (_, listed) = s.get(&t.token, &org_evs_path(t.org_id)).await;
        let mut per_user = BTreeMap::new();
        for user in [f.anna, f.bert] {
            let (status, list) = s.get(&t.token, &evs_path(t.org_id, user)).await;
            assert_eq!(status, 200);
            for ev in list.as_array().unwrap() {
                per_user.insert(id_of(ev), ev.clone());
            }
        }
        for item in listed["items"].as_array().unwrap() {
            assert_eq!(Some(item), per_user.get(&id_of(item)), "same object");
            let car = f.cars.iter().find(|c| c.id == id_of(item)).unwrap();
            assert_eq!(item["owner"]["id"], car.user.to_string());
        }
        assert_eq!(per_user.len(), 6);

        // Keyset pages do not shift when a car leaves the filter on an earlier page; offset
        // pages would skip one.
        let plugged = sorted(
            f.cars
                .iter()
                .filter(|c| !c.deleted && c.state.is_plugged_in == Some(true))
                .map(|c| c.id),
        );
        assert_eq!(plugged.len(), 3);
        let base = format!("{}?is_plugged_in=true&limit=1", org_evs_path(t.org_id));
        let (_, first) = s.get(&t.token, &base).await;
        assert_eq!(id_of(&first["items"][0]), plugged[0]);
        set_states(&s, &[(plugged[0], EvState::default())]).await;
        let (_, second) = s
            .get(&t.token, &format!("{base}&after={}", plugged[0]))
            .await;
        assert_eq!(id_of(&second["items"][0]), plugged[1]);
        assert_eq!(second["total"], 2);
        s.stop().await;
    }
}

#[tokio::test]
async fn each_filter_narrows_to_the_matching_vehicles() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let f = fleet(&s).await;
        let t = &f.tenant;
        type Wanted = Box<dyn Fn(&Car) -> bool>;
        let is = |level: StatusLevel| move |c: &Car| worst_status(&c.state) == level;
        let (anna, bert) = (f.anna, f.bert);
        let nobody = Uuid::now_v7();
        let cases: Vec<(String, Wanted)> = vec![
            (String::new(), Box::new(|_| true)),
            (
                "is_plugged_in=true".into(),
                Box::new(|c| c.state.is_plugged_in == Some(true)),
            ),
            (
                "is_plugged_in=false".into(),
                Box::new(|c| c.state.is_plugged_in == Some(false)),
            ),
            (
                "is_charging=true".into(),
                Box::new(|c| c.state.is_charging == Some(true)),
            ),
            (
                "is_charging=false".into(),
                Box::new(|c| c.state.is_charging == Some(false)),
            ),
            (
                "action_needed=true".into(),
                Box::new(|c| c.state.action_needed),
            ),
            (
                "action_needed=false".into(),
                Box::new(|c| !c.state.action_needed),
            ),
            (
                "price_zone=DE_LU".into(),
                Box::new(|c| c.zone == PriceZone::DeLu),
            ),
            ("price_zone=AT,DE_LU".into(), Box::new(|_| true)),
            ("price_zone=CH".into(), Box::new(|_| false)),
            (format!("user_id={bert}"), Box::new(move |c| c.user == bert)),
            (format!("user_id={nobody}"), Box::new(|_| false)),
            ("status=ok".into(), Box::new(is(StatusLevel::Ok))),
            ("status=unknown".into(), Box::new(is(StatusLevel::Unknown))),
            ("status=warning".into(), Box::new(is(StatusLevel::Warning))),
            ("status=error".into(), Box::new(is(StatusLevel::Error))),
            (
                "status=warning,error".into(),
                Box::new(move |c| is(StatusLevel::Warning)(c) || is(StatusLevel::Error)(c)),
            ),
            (
                "connection_status=error".into(),
                Box::new(|c| c.state.connection_status == StatusLevel::Error),
            ),
            (
                "monitoring_status=error&monitoring_status=unknown".into(),
                Box::new(|c| {
                    matches!(
                        c.state.monitoring_status,
                        StatusLevel::Error | StatusLevel::Unknown
                    )
                }),
            ),
            (
                "steering_status=warning".into(),
                Box::new(|c| c.state.steering_status == StatusLevel::Warning),
            ),
            (
                "is_plugged_in=true&is_charging=true&price_zone=AT".into(),
                Box::new(|c| {
                    c.state.is_plugged_in == Some(true)
                        && c.state.is_charging == Some(true)
                        && c.zone == PriceZone::At
                }),
            ),
            (
                format!("user_id={anna}&status=warning"),
                Box::new(move |c| c.user == anna && is(StatusLevel::Warning)(c)),
            ),
        ];
        for (query, wanted) in &cases {
            for include_deleted in [false, true] {
                let query = if include_deleted {
                    format!("{query}&include_deleted=true")
                } else {
                    query.clone()
                };
                let expected = sorted(
                    f.cars
                        .iter()
                        .filter(|c| include_deleted || !c.deleted)
                        .filter(|c| wanted(c))
                        .map(|c| c.id),
                );
                let (ids, total) = all_pages_by_offset(&s, t, &query, 200).await;
                assert_eq!(ids, expected, "{query} ({})", backend.name());
                assert_eq!(total, expected.len() as i64, "{query}");
            }
        }
        // Apart from those meant to match all or none, each filter tells the live cars apart.
        let live: Vec<&Car> = f.cars.iter().filter(|c| !c.deleted).collect();
        let all_or_none = [
            String::new(),
            "price_zone=AT,DE_LU".to_owned(),
            "price_zone=CH".to_owned(),
            format!("user_id={nobody}"),
        ];
        for (query, wanted) in cases.iter().filter(|(q, _)| !all_or_none.contains(q)) {
            let n = live.iter().filter(|c| wanted(c)).count();
            assert!(0 < n && n < live.len(), "{query} matches {n} cars");
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn deleted_vehicles_only_with_include_deleted() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let f = fleet(&s).await;
        let t = &f.tenant;
        let (_, page) = s.get(&t.token, &org_evs_path(t.org_id)).await;
        let listed: BTreeSet<Uuid> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect();
        for car in &f.cars {
            assert_eq!(listed.contains(&car.id), !car.deleted);
        }
        let (_, page) = s
            .get(
                &t.token,
                &format!("{}?include_deleted=true", org_evs_path(t.org_id)),
            )
            .await;
        assert_eq!(page["total"], 8);
        for item in page["items"].as_array().unwrap() {
            let car = f.cars.iter().find(|c| c.id == id_of(item)).unwrap();
            assert_eq!(item["deleted_at"].is_string(), car.deleted, "{item}");
        }
        // The deleted user's car carries its (deleted) owner.
        let cara_car = &f.cars[7];
        let item = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| id_of(i) == cara_car.id)
            .unwrap();
        assert_eq!(item["owner"]["email"], "cara@example.com");
        let (_, page) = s
            .get(
                &t.token,
                &format!("{}?include_deleted=false", org_evs_path(t.org_id)),
            )
            .await;
        assert_eq!(page["total"], 6);
        s.stop().await;
    }
}

#[tokio::test]
async fn another_organisation_gets_404_and_never_sees_a_car() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let f = fleet(&s).await;
        let (a, b) = (&f.tenant, &f.other);
        for query in ["", "?include_deleted=true", "?is_plugged_in=true&limit=1"] {
            let (status, body) = s
                .get(&b.token, &format!("{}{query}", org_evs_path(a.org_id)))
                .await;
            assert_eq!(status, 404, "{query}: {body}");
            assert_eq!(body, json!({"detail": "Not Found"}));
        }
        // An invalid query on another organisation's path is still a 404, not a 422.
        let (status, _) = s
            .get(&b.token, &format!("{}?limit=0", org_evs_path(a.org_id)))
            .await;
        assert_eq!(status, 404);
        let (status, _) = s
            .get(
                &b.token,
                "/api/partners/v2.0/org/not-a-uuid/electric-vehicles",
            )
            .await;
        assert_eq!(status, 404);

        // B's own list holds B's cars only, whatever the filter names.
        let a_cars: BTreeSet<Uuid> = f.cars.iter().map(|c| c.id).collect();
        for query in [
            "include_deleted=true".to_owned(),
            format!("user_id={}", f.anna),
            "status=error&is_plugged_in=true".to_owned(),
        ] {
            let (ids, _) = all_pages_by_offset(&s, b, &query, 200).await;
            assert!(ids.iter().all(|id| !a_cars.contains(id)), "{query}");
            if query.starts_with("user_id") {
                assert!(ids.is_empty());
            } else {
                assert_eq!(ids, sorted(f.other_cars.clone()), "{query}");
            }
        }
        // And A's list holds none of B's cars, although they match.
        let (ids, _) = all_pages_by_offset(&s, a, "status=error&include_deleted=true", 200).await;
        assert!(ids.iter().all(|id| !f.other_cars.contains(id)));

        let r = s
            .http
            .get(s.url(&org_evs_path(a.org_id)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        s.stop().await;
    }
}

#[tokio::test]
async fn bad_parameters_are_422_naming_the_parameter() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let uuid = Uuid::now_v7();
        let cases: Vec<(String, Vec<&str>)> = vec![
            ("limit=0".into(), vec!["limit"]),
            ("limit=201".into(), vec!["limit"]),
            ("limit=ten".into(), vec!["limit"]),
            ("offset=-1".into(), vec!["offset"]),
            ("offset=1.5".into(), vec!["offset"]),
            ("after=42".into(), vec!["after"]),
            (format!("offset=0&after={uuid}"), vec!["after"]),
            ("user_id=anna".into(), vec!["user_id"]),
            ("price_zone=XX".into(), vec!["price_zone"]),
            ("price_zone=at".into(), vec!["price_zone"]),
            ("status=red".into(), vec!["status"]),
            ("status=ok,".into(), vec!["status"]),
            ("status=".into(), vec!["status"]),
            ("connection_status=bad".into(), vec!["connection_status"]),
            ("monitoring_status=OK".into(), vec!["monitoring_status"]),
            ("steering_status=none".into(), vec!["steering_status"]),
            ("action_needed=maybe".into(), vec!["action_needed"]),
            ("is_plugged_in=".into(), vec!["is_plugged_in"]),
            ("is_charging=yes".into(), vec!["is_charging"]),
            ("include_deleted=2".into(), vec!["include_deleted"]),
            (
                "is_charging=true&is_charging=false".into(),
                vec!["is_charging"],
            ),
            ("is_pluged_in=true".into(), vec!["is_pluged_in"]),
            (
                "limit=0&status=red&plugged=true".into(),
                vec!["plugged", "limit", "status"],
            ),
        ];
        for (query, fields) in cases {
            let (status, body) = s
                .get(&t.token, &format!("{}?{query}", org_evs_path(t.org_id)))
                .await;
            assert_eq!(status, 422, "{query}: {body}");
            assert_eq!(invalid_fields(&body), fields, "{query}: {body}");
            assert_eq!(body["detail"][0]["loc"][0], "query");
            assert!(body["detail"][0]["msg"].is_string());
        }
        // Accepted spellings.
        for query in [
            "limit=200&offset=0",
            "is_plugged_in=TRUE&is_charging=0&action_needed=1",
            "status=ok&status=error,unknown&price_zone=AT_HOURLY,DE_LU",
        ] {
            let (status, body) = s
                .get(&t.token, &format!("{}?{query}", org_evs_path(t.org_id)))
                .await;
            assert_eq!(status, 200, "{query}: {body}");
        }
        s.stop().await;
    }
}

#[tokio::test]
async fn the_route_is_documented_with_every_parameter_it_accepts() {
    let s = TestServer::start(&Backend::Sqlite).await;
    let t = s.tenant("Utility A").await;
    let (status, doc) = s.get("", "/api/partners/v2.0/openapi.json").await;
    assert_eq!(status, 200);
    let op = &doc["paths"]["/api/partners/v2.0/org/{org_id}/electric-vehicles"]["get"];
    assert!(op.is_object(), "the route is in the OpenAPI document");
    let description = op["description"].as_str().unwrap();
    for word in ["Paging", "after", "Filters", "include_deleted", "422"] {
        assert!(description.contains(word), "description mentions {word}");
    }
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/OrgVehiclePageOut"
    );
    let page = &doc["components"]["schemas"]["OrgVehiclePageOut"]["properties"];
    assert_eq!(
        page["items"]["items"]["$ref"],
        "#/components/schemas/ElectricVehicleOut"
    );
    let params: Vec<&Value> = op["parameters"].as_array().unwrap().iter().collect();
    let names: BTreeSet<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let valid: BTreeMap<&str, String> = [
        ("limit", "10".to_owned()),
        ("offset", "0".to_owned()),
        ("after", Uuid::nil().to_string()),
        ("user_id", Uuid::nil().to_string()),
        ("price_zone", "AT".to_owned()),
        ("status", "ok".to_owned()),
        ("connection_status", "ok".to_owned()),
        ("monitoring_status", "ok".to_owned()),
        ("steering_status", "ok".to_owned()),
        ("action_needed", "true".to_owned()),
        ("is_plugged_in", "true".to_owned()),
        ("is_charging", "true".to_owned()),
        ("include_deleted", "true".to_owned()),
    ]
    .into_iter()
    .collect();
    let mut expected: BTreeSet<&str> = valid.keys().copied().collect();
    expected.insert("org_id");
    assert_eq!(names, expected, "documented parameters");
    // Every documented query parameter is accepted (no drift between the document and the parser).
    for (name, value) in &valid {
        let (status, body) = s
            .get(
                &t.token,
                &format!("{}?{name}={value}", org_evs_path(t.org_id)),
            )
            .await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    s.stop().await;
}
