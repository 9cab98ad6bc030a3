//! The price store against SQLite (a temp file) and, when `VOLTPLAN_TEST_POSTGRES_URL` is set,
//! PostgreSQL (a fresh database per test, dropped at the end).

use chrono::{DateTime, Duration, TimeZone, Utc};
mod common;

use common::databases;
use voltplan_core::price::find_gaps;
use voltplan_core::{PriceSlot, PriceZone};
use voltplan_store::{OrgScope, Store, StoreError, UpsertSummary, new_user, new_vehicle};

fn t(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, day, hour, minute, 0).unwrap()
}

fn series(from: DateTime<Utc>, minutes: i64, prices: &[f64]) -> Vec<PriceSlot> {
    prices
        .iter()
        .enumerate()
        .map(|(i, &price)| PriceSlot {
            start: from + Duration::minutes(minutes * i as i64),
            end: from + Duration::minutes(minutes * (i as i64 + 1)),
            price_eur_mwh: price,
        })
        .collect()
}

async fn new_org(store: &dyn Store) -> OrgScope {
    let org = store
        .create_organisation("prices test", t(1, 0, 0))
        .await
        .unwrap();
    OrgScope::new(org.id)
}

#[tokio::test]
async fn upsert_is_idempotent_and_counts_changes() {
    for db in databases().await {
        let store = db.store.as_ref();
        let day: Vec<f64> = (0..96).map(|i| f64::from(i) * 1.5 - 20.0).collect();
        let slots = series(t(10, 23, 0), 15, &day);

        let first = store
            .upsert_prices(PriceZone::DeLu, None, "entsoe", &slots, t(10, 12, 0))
            .await
            .unwrap();
        assert_eq!(
            first,
            UpsertSummary {
                received: 96,
                written: 96,
                unchanged: 0
            },
            "{}",
            db.name
        );
        let again = store
            .upsert_prices(PriceZone::DeLu, None, "entsoe", &slots, t(10, 13, 0))
            .await
            .unwrap();
        assert_eq!(again.written, 0, "{}", db.name);
        assert_eq!(again.unchanged, 96, "{}", db.name);

        let mut corrected = slots.clone();
        corrected[5].price_eur_mwh = 999.25;
        let fix = store
            .upsert_prices(
                PriceZone::DeLu,
                None,
                "file:fix.csv",
                &corrected,
                t(10, 14, 0),
            )
            .await
            .unwrap();
        // Every row changed source, one also its price.
        assert_eq!(fix.written, 96, "{}", db.name);

        let read = store
            .read_prices(PriceZone::DeLu, None, t(10, 23, 0), t(11, 23, 0))
            .await
            .unwrap();
        assert_eq!(read.len(), 96, "{}", db.name);
        let read_slots: Vec<PriceSlot> = read.iter().map(|p| p.slot()).collect();
        assert_eq!(read_slots, corrected, "{}", db.name);
        assert!(
            read.iter()
                .all(|p| p.source == "file:fix.csv" && p.org_id.is_none())
        );
        assert_eq!(read[0].received_at, t(10, 14, 0), "{}", db.name);

        // Other zones are untouched by any of this.
        let other = store
            .read_prices(PriceZone::At, None, t(10, 0, 0), t(12, 0, 0))
            .await
            .unwrap();
        assert!(other.is_empty(), "{}", db.name);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_year_of_quarter_hours_is_stored_in_chunks() {
    for db in databases().await {
        let store = db.store.as_ref();
        let prices: Vec<f64> = (0..35_136).map(|i| f64::from(i % 500) / 3.0).collect();
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let slots = series(start, 15, &prices);
        let summary = store
            .upsert_prices(PriceZone::At, None, "file:year.csv", &slots, start)
            .await
            .unwrap();
        assert_eq!(summary.written, 35_136, "{}", db.name);
        let read = store
            .read_prices(PriceZone::At, None, start, start + Duration::days(366))
            .await
            .unwrap();
        assert_eq!(read.len(), 35_136, "{}", db.name);
        assert_eq!(read.last().map(|p| p.slot()), slots.last().copied());
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_invalid_batch_writes_nothing() {
    for db in databases().await {
        let store = db.store.as_ref();
        let mut slots = series(t(3, 0, 0), 60, &[1.0, 2.0, 3.0]);
        slots[2].price_eur_mwh = f64::INFINITY;
        let result = store
            .upsert_prices(PriceZone::Ch, None, "entsoe", &slots, t(3, 0, 0))
            .await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{}", db.name);
        let duplicate = vec![slots[0], slots[0]];
        let result = store
            .upsert_prices(PriceZone::Ch, None, "entsoe", &duplicate, t(3, 0, 0))
            .await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{}", db.name);
        let read = store
            .read_prices(PriceZone::Ch, None, t(3, 0, 0), t(4, 0, 0))
            .await
            .unwrap();
        assert!(read.is_empty(), "{}", db.name);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_organisations_uploads_take_precedence_for_that_organisation_only() {
    for db in databases().await {
        let store = db.store.as_ref();
        let mine = new_org(store).await;
        let theirs = new_org(store).await;
        // Public: hourly 00:00–04:00. Mine: quarter-hours 01:00–02:00 and 02:30–02:45.
        let public = series(t(5, 0, 0), 60, &[10.0, 20.0, 30.0, 40.0]);
        store
            .upsert_prices(PriceZone::At, None, "entsoe", &public, t(4, 12, 0))
            .await
            .unwrap();
        let mut upload = series(t(5, 1, 0), 15, &[1.0, 2.0, 3.0, 4.0]);
        upload.extend(series(t(5, 2, 30), 15, &[5.0]));
        store
            .upsert_prices(PriceZone::At, Some(mine), "upload", &upload, t(4, 9, 0))
            .await
            .unwrap();

        let merged = store
            .read_prices(PriceZone::At, Some(mine), t(5, 0, 0), t(5, 4, 0))
            .await
            .unwrap();
        let spans: Vec<_> = merged
            .iter()
            .map(|p| (p.start, p.end, p.price_eur_mwh, p.source.as_str()))
            .collect();
        assert_eq!(
            spans,
            vec![
                (t(5, 0, 0), t(5, 1, 0), 10.0, "entsoe"),
                (t(5, 1, 0), t(5, 1, 15), 1.0, "upload"),
                (t(5, 1, 15), t(5, 1, 30), 2.0, "upload"),
                (t(5, 1, 30), t(5, 1, 45), 3.0, "upload"),
                (t(5, 1, 45), t(5, 2, 0), 4.0, "upload"),
                (t(5, 2, 0), t(5, 2, 30), 30.0, "entsoe"),
                (t(5, 2, 30), t(5, 2, 45), 5.0, "upload"),
                (t(5, 2, 45), t(5, 3, 0), 30.0, "entsoe"),
                (t(5, 3, 0), t(5, 4, 0), 40.0, "entsoe"),
            ],
            "{}",
            db.name
        );
        assert!(
            merged
                .iter()
                .filter(|p| p.source == "upload")
                .all(|p| p.org_id == Some(mine.id()))
        );
        assert!(find_gaps(&slots(&merged), t(5, 0, 0), t(5, 4, 0)).is_empty());

        for other in [Some(theirs), None] {
            let plain = store
                .read_prices(PriceZone::At, other, t(5, 0, 0), t(5, 4, 0))
                .await
                .unwrap();
            assert_eq!(slots(&plain), public, "{} {other:?}", db.name);
        }

        // Uploads never move the public coverage the fetch scheduler works from.
        let late_upload = series(t(6, 0, 0), 15, &[7.0]);
        store
            .upsert_prices(
                PriceZone::At,
                Some(mine),
                "upload",
                &late_upload,
                t(5, 9, 0),
            )
            .await
            .unwrap();
        assert_eq!(
            store.price_coverage(PriceZone::At).await.unwrap(),
            Some(t(5, 4, 0)),
            "{}",
            db.name
        );
        assert_eq!(store.price_coverage(PriceZone::Be).await.unwrap(), None);
        db.cleanup().await;
    }
}

fn slots(prices: &[voltplan_store::StoredPrice]) -> Vec<PriceSlot> {
    prices.iter().map(|p| p.slot()).collect()
}

#[tokio::test]
async fn windows_include_slots_that_overlap_their_edges_and_gaps_show() {
    for db in databases().await {
        let store = db.store.as_ref();
        // Hourly 00:00–06:00 with 03:00–04:00 missing.
        let mut stored = series(t(7, 0, 0), 60, &[1.0, 2.0, 3.0]);
        stored.extend(series(t(7, 4, 0), 60, &[5.0, 6.0]));
        store
            .upsert_prices(PriceZone::Ch, None, "entsoe", &stored, t(6, 12, 0))
            .await
            .unwrap();

        let window = store
            .read_prices(PriceZone::Ch, None, t(7, 1, 30), t(7, 2, 30))
            .await
            .unwrap();
        assert_eq!(
            slots(&window),
            series(t(7, 1, 0), 60, &[2.0, 3.0]),
            "{}",
            db.name
        );

        // Half-open: a window ending where a slot starts does not include it.
        let edge = store
            .read_prices(PriceZone::Ch, None, t(7, 1, 0), t(7, 2, 0))
            .await
            .unwrap();
        assert_eq!(slots(&edge), series(t(7, 1, 0), 60, &[2.0]), "{}", db.name);

        let all = store
            .read_prices(PriceZone::Ch, None, t(6, 22, 0), t(7, 7, 0))
            .await
            .unwrap();
        assert_eq!(all.len(), 5, "{}", db.name);
        assert_eq!(
            find_gaps(&slots(&all), t(6, 22, 0), t(7, 7, 0)),
            vec![
                (t(6, 22, 0), t(7, 0, 0)),
                (t(7, 3, 0), t(7, 4, 0)),
                (t(7, 6, 0), t(7, 7, 0))
            ],
            "{}",
            db.name
        );

        let inverted = store
            .read_prices(PriceZone::Ch, None, t(7, 5, 0), t(7, 1, 0))
            .await
            .unwrap();
        assert!(inverted.is_empty(), "{}", db.name);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn zones_in_use_lists_zones_of_live_vehicles_once() {
    for db in databases().await {
        let store = db.store.as_ref();
        assert!(
            store.zones_in_use().await.unwrap().is_empty(),
            "{}",
            db.name
        );
        let now = t(1, 0, 0);
        let org = new_org(store).await;
        let user = store
            .create_user(
                org,
                &new_user(
                    org,
                    "ev@example.com".into(),
                    voltplan_core::account::Role::User,
                    now,
                ),
            )
            .await
            .unwrap();
        for zone in [
            PriceZone::DeLu,
            PriceZone::At,
            PriceZone::DeLu,
            PriceZone::Se1,
        ] {
            let mut vehicle = new_vehicle(org, user.id, now);
            vehicle.price_zone = zone;
            let created = store.create_vehicle(org, &vehicle).await.unwrap();
            if zone == PriceZone::Se1 {
                store
                    .delete_vehicle(org, user.id, created.id, now)
                    .await
                    .unwrap();
            }
        }
        assert_eq!(
            store.zones_in_use().await.unwrap(),
            vec![PriceZone::At, PriceZone::DeLu],
            "{}",
            db.name
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn at_hourly_is_read_as_hourly_means_of_at_unless_stored_itself() {
    for db in databases().await {
        let store = db.store.as_ref();
        // Two full hours of AT quarter-hours and a third hour missing one quarter.
        let quarters = [10.0, 20.0, 30.0, 40.0, -4.0, 0.0, 4.0, 8.0, 1.0, 1.0, 1.0];
        store
            .upsert_prices(
                PriceZone::At,
                None,
                "entsoe",
                &series(t(3, 0, 0), 15, &quarters),
                t(2, 12, 0),
            )
            .await
            .unwrap();
        let hourly = voltplan_store::read_zone_prices(
            store,
            PriceZone::AtHourly,
            None,
            t(3, 0, 0),
            t(3, 3, 0),
        )
        .await
        .unwrap();
        let got: Vec<(DateTime<Utc>, f64)> =
            hourly.iter().map(|p| (p.start, p.price_eur_mwh)).collect();
        assert_eq!(
            got,
            vec![(t(3, 0, 0), 25.0), (t(3, 1, 0), 2.0)],
            "{}: the incomplete hour is a gap",
            db.name
        );
        assert_eq!(hourly[0].source, "hourly-mean:AT");
        assert_eq!(hourly[0].end, t(3, 1, 0));

        // Prices stored under AT_HOURLY itself win.
        store
            .upsert_prices(
                PriceZone::AtHourly,
                None,
                "file:tariff.csv",
                &series(t(3, 0, 0), 60, &[99.0]),
                t(2, 12, 0),
            )
            .await
            .unwrap();
        let own = voltplan_store::read_zone_prices(
            store,
            PriceZone::AtHourly,
            None,
            t(3, 0, 0),
            t(3, 3, 0),
        )
        .await
        .unwrap();
        assert_eq!(
            own.iter().map(|p| p.price_eur_mwh).collect::<Vec<_>>(),
            vec![99.0]
        );
        db.cleanup().await;
    }
}
