//! Re-authentication sessions in the store, on SQLite and (when configured) PostgreSQL.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{databases, fleet};
use uuid::Uuid;
use voltplan_store::{AuthSessionOutcome, AuthSessionRecord, KEEP_EXPIRED, OrgScope, StoreError};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn session(vehicle_id: Uuid, org: OrgScope, created_at: DateTime<Utc>) -> AuthSessionRecord {
    AuthSessionRecord {
        id: Uuid::new_v4(),
        org_id: org.id(),
        vehicle_id,
        success_url: None,
        cancel_url: None,
        created_at,
        expires_at: created_at + Duration::days(1),
        completed_at: None,
        outcome: None,
    }
}

#[tokio::test]
async fn a_new_session_deletes_the_vehicles_sessions_long_expired_and_keeps_the_rest() {
    for db in databases().await {
        let store = db.store.as_ref();
        let (org, _, cars) = fleet(store, 2, t0()).await;
        let (car, other_car) = (cars[0], cars[1]);

        let old = session(car, org, t0());
        let old_of_other_car = session(other_car, org, t0());
        store.create_auth_session(org, &old).await.unwrap();
        store
            .create_auth_session(org, &old_of_other_car)
            .await
            .unwrap();
        assert!(
            store
                .complete_auth_session(org, old.id, AuthSessionOutcome::Success, t0())
                .await
                .unwrap()
        );

        // Ten days after it ended it is kept; once KEEP_EXPIRED has passed it goes.
        let recent = session(car, org, old.expires_at + Duration::days(10));
        store.create_auth_session(org, &recent).await.unwrap();
        assert_eq!(
            store.get_auth_session(old.id).await.unwrap().outcome,
            Some(AuthSessionOutcome::Success),
            "{}",
            db.name
        );
        let later = session(
            car,
            org,
            old.expires_at + KEEP_EXPIRED + Duration::seconds(1),
        );
        store.create_auth_session(org, &later).await.unwrap();
        assert!(
            matches!(
                store.get_auth_session(old.id).await,
                Err(StoreError::NotFound)
            ),
            "{}",
            db.name
        );
        for kept in [&recent, &later, &old_of_other_car] {
            assert_eq!(
                store.get_auth_session(kept.id).await.unwrap().id,
                kept.id,
                "{}",
                db.name
            );
        }
        db.cleanup().await;
    }
}
