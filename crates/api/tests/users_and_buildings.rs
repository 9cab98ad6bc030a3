//! Users and buildings: CRUD, partial updates, uniqueness, soft delete with cascade.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn users_are_created_updated_partially_and_soft_deleted_with_their_devices() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let t = s.tenant("Utility A").await;
        let (status, user) = s
            .post(
                &t.token,
                &users_path(t.org_id),
                json!({"role": "user", "email": "Anna@Example.com", "external_user_id": "CUST-1", "first_name": "Anna",
                       "last_name": "Gruber", "zip_code": 10115, "country_iso2": "de", "town": "Berlin"}),
            )
            .await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["zip_code"], "10115");
        assert_eq!(user["country"], "DE");
        assert_eq!(user["location_last_updated"], Value::Null);
        let id = id_of(&user);

        // E-mails are unique per organisation, case-insensitively.
        let (status, body) = s
            .post(
                &t.token,
                &users_path(t.org_id),
                json!({"role": "staff", "email": "anna@example.COM"}),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(invalid_fields(&body), vec!["email"]);
        // …but another organisation may use the same address.
        let other = s.tenant("Utility B").await;
        let (status, _) = s
            .post(
                &other.token,
                &users_path(other.org_id),
                json!({"role": "user", "email": "anna@example.com"}),
            )
            .await;
        assert_eq!(status, 200);

        // Required fields and enums.
        let (status, body) = s
            .post(&t.token, &users_path(t.org_id), json!({"first_name": "x"}))
            .await;
        assert_eq!(status, 422);
        let mut fields = invalid_fields(&body);
        fields.sort();
        assert_eq!(fields, vec!["email", "role"]);
        let (status, body) = s
            .post(
                &t.token,
                &users_path(t.org_id),
                json!({"role": "owner", "email": "not-an-email", "latitude": 91}),
            )
            .await;
        assert_eq!(status, 422);
        let mut fields = invalid_fields(&body);
        fields.sort();
        assert_eq!(fields, vec!["email", "latitude", "role"]);

        // Partial update; coordinates stamp location_last_updated.
        s.clock.advance(chrono::Duration::minutes(5));
        let (status, updated) = s
            .put(
                &t.token,
                &user_path(t.org_id, id),
                json!({"latitude": 52.52, "longitude": 13.405, "role": "staff"}),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["first_name"], "Anna");
        assert_eq!(updated["external_user_id"], "CUST-1");
        assert_eq!(updated["role"], "staff");
        assert!(updated["location_last_updated"].is_string());
        let (_, read) = s.get(&t.token, &user_path(t.org_id, id)).await;
        assert_eq!(read, updated);

        // A user with a building and a vehicle; deleting the user deletes both.
        let building = s.create_building(&t, id, json!({"name": "Home"})).await;
        let ev = s
            .create_ev(&t, id, json!({"building_id": building["id"]}))
            .await;
        let (status, _) = s.delete(&t.token, &user_path(t.org_id, id)).await;
        assert_eq!(status, 204);
        let (status, _) = s.get(&t.token, &user_path(t.org_id, id)).await;
        assert_eq!(status, 404);
        let (_, list) = s.get(&t.token, &users_path(t.org_id)).await;
        assert!(list.as_array().unwrap().is_empty());
        let (_, list) = s
            .get(
                &t.token,
                &format!("{}?include_deleted=true", users_path(t.org_id)),
            )
            .await;
        assert!(list[0]["deleted_at"].is_string());
        let (_, ev) = s
            .get(
                &t.token,
                &format!("{}?include_deleted=true", ev_path(t.org_id, id, id_of(&ev))),
            )
            .await;
        assert!(
            ev["deleted_at"].is_string(),
            "the user's vehicle was deleted with them"
        );
        let (_, b) = s
            .get(
                &t.token,
                &format!(
                    "{}?include_deleted=true",
                    building_path(t.org_id, id, id_of(&building))
                ),
            )
            .await;
        assert!(b["deleted_at"].is_string());
        // The address is free again.
        let (status, _) = s
            .post(
                &t.token,
                &users_path(t.org_id),
                json!({"role": "user", "email": "anna@example.com"}),
            )
            .await;
        assert_eq!(status, 200);
        // Creating under a deleted user is a 404.
        let (status, _) = s.post(&t.token, &evs_path(t.org_id, id), json!({})).await;
        assert_eq!(status, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn buildings_are_crud_and_unlink_their_vehicles_when_deleted() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let (status, body) = s
            .post(
                &t.token,
                &buildings_path(t.org_id, user),
                json!({"property_type": "Flat"}),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(invalid_fields(&body), vec!["name"]);
        let b = s.create_building(&t, user, json!({"name": "Home", "property_type": "Detached", "num_occupants": 3, "photovoltaic": true, "zip_code": "1010"})).await;
        assert_eq!(b["user"].as_str().unwrap(), user.to_string());
        let path = building_path(t.org_id, user, id_of(&b));
        let (status, updated) = s
            .put(
                &t.token,
                &path,
                json!({"latitude": 48.2, "longitude": 16.37}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(updated["name"], "Home");
        assert_eq!(updated["num_occupants"], 3);
        let (status, body) = s
            .put(
                &t.token,
                &path,
                json!({"latitude": 48.2, "longitude": null}),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        let (status, body) = s
            .put(&t.token, &path, json!({"num_occupants": -1, "name": ""}))
            .await;
        assert_eq!(status, 422);
        assert_eq!(invalid_fields(&body).len(), 2);
        let (_, list) = s.get(&t.token, &buildings_path(t.org_id, user)).await;
        assert_eq!(list.as_array().unwrap().len(), 1);

        let ev = s.create_ev(&t, user, json!({"building": b["id"]})).await;
        let (status, _) = s.delete(&t.token, &path).await;
        assert_eq!(status, 204);
        let (_, ev) = s.get(&t.token, &ev_path(t.org_id, user, id_of(&ev))).await;
        assert_eq!(ev["building"], Value::Null);
        let (_, list) = s.get(&t.token, &buildings_path(t.org_id, user)).await;
        assert!(list.as_array().unwrap().is_empty());
        let (status, _) = s
            .get(&t.token, &format!("{path}?include_deleted=true"))
            .await;
        assert_eq!(status, 200);
        s.stop().await;
    }
}
