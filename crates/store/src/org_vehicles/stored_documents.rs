//! The filters against documents as they may be stored: written by an older version (members
//! absent), with unknown values (`null`), or converted from `jsonb` (PostgreSQL's 0005, with spaces).

use super::*;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Store, new_user, new_vehicle};
use voltplan_core::account::Role;
use voltplan_test_support::{Backend, TestDatabase, backends};

#[async_trait]
trait RawState {
    async fn set_state(&self, id: Uuid, document: &str);
}

#[async_trait]
impl RawState for SqliteStore {
    async fn set_state(&self, id: Uuid, document: &str) {
        sqlx::query("UPDATE electric_vehicles SET state = $1 WHERE id = $2")
            .bind(document)
            .bind(id)
            .execute(&self.write)
            .await
            .unwrap();
    }
}

#[async_trait]
impl RawState for PgStore {
    async fn set_state(&self, id: Uuid, document: &str) {
        sqlx::query("UPDATE electric_vehicles SET state = $1 WHERE id = $2")
            .bind(document)
            .bind(id)
            .execute(&self.write)
            .await
            .unwrap();
    }
}

async fn ids<S: Store>(store: &S, org: OrgScope, filter: OrgVehicleFilter) -> Vec<Uuid> {
    let paging = OrgVehiclePaging {
        limit: 50,
        offset: 0,
        after: None,
    };
    let page = store.list_org_vehicles(org, &filter, paging).await.unwrap();
    assert_eq!(page.total, page.items.len() as i64);
    let ids: Vec<Uuid> = page.items.into_iter().map(|i| i.vehicle.id).collect();
    assert!(ids.is_sorted(), "in id order");
    ids
}

async fn absent_and_null_members_read_as_the_api_shows_them<S: Store + RawState>(store: &S) {
    let now = chrono::Utc::now();
    let org = OrgScope::new(store.create_organisation("o", now).await.unwrap().id);
    let user = store
        .create_user(org, &new_user(org, "d@example.com".into(), Role::User, now))
        .await
        .unwrap();
    let mut cars = Vec::new();
    for _ in 0..3 {
        let v = store
            .create_vehicle(org, &new_vehicle(org, user.id, now))
            .await
            .unwrap();
        cars.push(v.id);
    }
    cars.sort();
    // Named in id order, so the expected lists below are in the order of a page.
    let (empty, unknown, spaced) = (cars[0], cars[1], cars[2]);
    store.set_state(empty, "{}").await;
    let null_plug = serde_json::to_string(&EvState {
        is_plugged_in: None,
        connection_status: StatusLevel::Ok,
        monitoring_status: StatusLevel::Ok,
        steering_status: StatusLevel::Ok,
        ..EvState::default()
    })
    .unwrap();
    store.set_state(unknown, &null_plug).await;
    store
        .set_state(
            spaced,
            r#"{"is_plugged_in": true, "connection_status": "error", "action_needed": true}"#,
        )
        .await;

    // Each reads back as the API shows it.
    let all = store
        .list_org_vehicles(
            org,
            &OrgVehicleFilter::default(),
            OrgVehiclePaging {
                limit: 10,
                offset: 0,
                after: None,
            },
        )
        .await
        .unwrap();
    let state = |id: Uuid| {
        all.items
            .iter()
            .find(|i| i.vehicle.id == id)
            .unwrap()
            .vehicle
            .state
            .clone()
    };
    assert_eq!(state(empty).is_plugged_in, Some(false));
    assert_eq!(state(unknown).is_plugged_in, None);
    assert_eq!(worst_status(&state(spaced)), StatusLevel::Error);

    let f = OrgVehicleFilter::default;
    let plugged = |v| OrgVehicleFilter {
        is_plugged_in: Some(v),
        ..f()
    };
    assert_eq!(ids(store, org, plugged(false)).await, vec![empty]);
    assert_eq!(ids(store, org, plugged(true)).await, vec![spaced]);
    let action = |v| OrgVehicleFilter {
        action_needed: Some(v),
        ..f()
    };
    assert_eq!(ids(store, org, action(true)).await, vec![spaced]);
    assert_eq!(ids(store, org, action(false)).await, vec![empty, unknown]);
    let status = |l: &[StatusLevel]| OrgVehicleFilter {
        status: l.to_vec(),
        ..f()
    };
    assert_eq!(
        ids(store, org, status(&[StatusLevel::Ok])).await,
        vec![unknown]
    );
    assert_eq!(
        ids(store, org, status(&[StatusLevel::Unknown])).await,
        vec![empty]
    );
    assert_eq!(
        ids(store, org, status(&[StatusLevel::Error])).await,
        vec![spaced]
    );
    let connection = OrgVehicleFilter {
        connection_status: vec![StatusLevel::Unknown, StatusLevel::Ok],
        ..f()
    };
    assert_eq!(ids(store, org, connection).await, vec![empty, unknown]);
    // Three members: PostgreSQL parses each document once (jsonb) and must read the same.
    let three = OrgVehicleFilter {
        is_plugged_in: Some(false),
        action_needed: Some(false),
        connection_status: vec![StatusLevel::Unknown],
        ..f()
    };
    assert_eq!(ids(store, org, three).await, vec![empty]);
    let three = OrgVehicleFilter {
        is_charging: Some(false),
        action_needed: Some(false),
        connection_status: vec![StatusLevel::Ok],
        ..f()
    };
    assert_eq!(ids(store, org, three).await, vec![unknown]);
}

fn two_connections() -> crate::ConnectOptions {
    let mut options = crate::ConnectOptions::new("");
    options.max_connections = 2;
    options
}

#[tokio::test]
async fn absent_and_null_members_on_every_backend() {
    for backend in backends() {
        let database = TestDatabase::create(&backend, "voltplan-store-orglist").await;
        match &backend {
            Backend::Sqlite => {
                let path = database.url().trim_start_matches("sqlite:");
                let store = SqliteStore::connect(path, &two_connections())
                    .await
                    .unwrap();
                absent_and_null_members_read_as_the_api_shows_them(&store).await;
                store.read.close().await;
                store.write.close().await;
            }
            Backend::Postgres(_) => {
                let store = PgStore::connect(database.url(), &two_connections())
                    .await
                    .unwrap();
                absent_and_null_members_read_as_the_api_shows_them(&store).await;
                store.write.close().await;
            }
        }
        database.drop_database().await;
    }
}
