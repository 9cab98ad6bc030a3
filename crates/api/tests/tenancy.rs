//! Org B's token can neither see nor touch anything of org A: every read, update, delete and list
//! answers 404, and nothing changes.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn another_organisations_objects_are_404_and_unchanged() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let a = s.tenant("Utility A").await;
        let b = s.tenant("Utility B").await;
        let user = s.create_user(&a, "anna@example.com").await;
        let building = s.create_building(&a, user, json!({"name": "Home"})).await;
        let ev = s.create_ev(&a, user, json!({"comment": "A's car"})).await;
        let (building, ev) = (id_of(&building), id_of(&ev));
        let snapshot = (
            s.get(&a.token, &user_path(a.org_id, user)).await.1,
            s.get(&a.token, &building_path(a.org_id, user, building))
                .await
                .1,
            s.get(&a.token, &ev_path(a.org_id, user, ev)).await.1,
        );

        // B addresses A's objects both under A's org id and under its own.
        for org in [a.org_id, b.org_id] {
            let reads = [
                users_path(org),
                user_path(org, user),
                buildings_path(org, user),
                building_path(org, user, building),
                evs_path(org, user),
                ev_path(org, user, ev),
            ];
            for path in &reads {
                let (status, body) = s.get(&b.token, path).await;
                if org == b.org_id && path == &users_path(org) {
                    assert_eq!(status, 200);
                    assert!(body.as_array().unwrap().is_empty(), "B's own list is empty");
                    continue;
                }
                assert_eq!(status, 404, "GET {path}: {body}");
                assert_eq!(body, json!({"detail": "Not Found"}));
                let (status, _) = s
                    .get(&b.token, &format!("{path}?include_deleted=true"))
                    .await;
                assert_eq!(
                    status,
                    if org == b.org_id && path == &users_path(org) {
                        200
                    } else {
                        404
                    }
                );
            }
            for (path, body) in [
                (user_path(org, user), json!({"first_name": "B"})),
                (building_path(org, user, building), json!({"name": "B"})),
                (ev_path(org, user, ev), json!({"comment": "B was here"})),
            ] {
                let (status, _) = s.put(&b.token, &path, body).await;
                assert_eq!(status, 404, "PUT {path}");
                let (status, _) = s.delete(&b.token, &path).await;
                assert_eq!(status, 404, "DELETE {path}");
            }
            for (path, body) in [
                (
                    users_path(org),
                    json!({"role": "user", "email": "b@example.com"}),
                ),
                (buildings_path(org, user), json!({"name": "B"})),
                (evs_path(org, user), json!({})),
            ] {
                let (status, _) = s.post(&b.token, &path, body).await;
                let expected = if org == b.org_id && path == users_path(org) {
                    200
                } else {
                    404
                };
                assert_eq!(status, expected, "POST {path}");
            }
        }
        // B cannot hang its vehicle on A's building either.
        let b_user = s.create_user(&b, "bert@example.com").await;
        let (status, body) = s
            .post(
                &b.token,
                &evs_path(b.org_id, b_user),
                json!({"building": building.to_string()}),
            )
            .await;
        assert_eq!(status, 422, "{body}");

        let after = (
            s.get(&a.token, &user_path(a.org_id, user)).await.1,
            s.get(&a.token, &building_path(a.org_id, user, building))
                .await
                .1,
            s.get(&a.token, &ev_path(a.org_id, user, ev)).await.1,
        );
        assert_eq!(after, snapshot, "org B changed nothing of org A");
        let (_, a_users) = s.get(&a.token, &users_path(a.org_id)).await;
        assert_eq!(a_users.as_array().unwrap().len(), 1);
        s.stop().await;
    }
}
