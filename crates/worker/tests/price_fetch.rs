//! The day-ahead price fetch scheduler against a fake ENTSO-E server (wiremock), a SQLite store in
//! a temp file and a manual clock. No test sleeps: time only moves when a test moves it, and every
//! round is one explicit `run_once`.
//!
//! The fake answers with a real A44 document covering the DE_LU deliveries 2025-10-31 and
//! 2025-11-01 (CET, UTC+1), so the clock is set around those days.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use voltplan_core::{ManualClock, PriceSlot, PriceZone};
use voltplan_prices::EntsoeClient;
use voltplan_store::{ConnectOptions, Store, connect, new_vehicle};
use voltplan_worker::price_fetch::{FetchOutcome, PriceFetchConfig, PriceFetcher};

mod common;
use wiremock::matchers::{method, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DE_LU: &str = "10Y1001A1001A82H";
/// periodStart of the delivery days (CET midnight in UTC).
const OCT_30: &str = "202510292300";
const OCT_31: &str = "202510302300";
const NOV_01: &str = "202510312300";
const NOV_02: &str = "202511012300";

fn utc(mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, mo, d, h, mi, 0).unwrap()
}

fn day(mo: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, mo, d).unwrap()
}

fn document() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/prices/entsoe_xml/entsoe_A44_DE_LU_PT15M_2025-10-31.xml"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn no_matching_data() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?>
<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
  <mRID>5d2a8c0e-5b1e-4d6f-9c1a-0f3e2b7a6d41</mRID>
  <createdDateTime>2025-10-31T11:46:02Z</createdDateTime>
  <Reason>
    <code>999</code>
    <text>No matching data found for Data item Energy Prices [12.1.D] (10Y1001A1001A82H, 10Y1001A1001A82H) and interval 2025-10-31T23:00:00.000Z/2025-11-01T23:00:00.000Z.</text>
  </Reason>
</Acknowledgement_MarketDocument>"#
        .to_owned()
}

fn xml(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/xml")
}

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    server: MockServer,
    fetcher: PriceFetcher,
}

impl Env {
    /// A store with one EV in DE_LU, a fake ENTSO-E and a fetcher keeping `backfill_days`.
    async fn new(start: DateTime<Utc>, backfill_days: u32) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("prices.db");
        let store = connect(&ConnectOptions::new(format!("sqlite:{}", path.display())))
            .await
            .expect("open SQLite");
        let (org, user) = common::org_with_user(store.as_ref(), start).await;
        let mut vehicle = new_vehicle(org, user.id, start);
        vehicle.price_zone = PriceZone::DeLu;
        store.create_vehicle(org, &vehicle).await.expect("vehicle");

        let server = MockServer::start().await;
        let client =
            EntsoeClient::new(format!("{}/api", server.uri()), "test-token").expect("client");
        let clock = Arc::new(ManualClock::new(start));
        let config = PriceFetchConfig {
            backfill_days,
            ..PriceFetchConfig::default()
        };
        let fetcher = PriceFetcher::new(store.clone(), client, clock.clone(), config);
        Env {
            _dir: dir,
            store,
            clock,
            server,
            fetcher,
        }
    }

    /// Answers the delivery day starting at `period_start` with `response` (at most `times`).
    async fn answer(&self, period_start: &str, response: ResponseTemplate, times: Option<u64>) {
        let mock = Mock::given(method("GET"))
            .and(query_param("in_Domain", DE_LU))
            .and(query_param("periodStart", period_start))
            .respond_with(response);
        let mock = match times {
            Some(n) => mock.up_to_n_times(n),
            None => mock,
        };
        mock.mount(&self.server).await;
    }

    /// Requests the fake received for the delivery day starting at `period_start`.
    async fn requests(&self, period_start: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|request| {
                request
                    .url
                    .query_pairs()
                    .any(|(key, value)| key == "periodStart" && value == period_start)
            })
            .count()
    }

    async fn stored(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<PriceSlot> {
        self.store
            .read_prices(PriceZone::DeLu, None, from, to)
            .await
            .expect("read")
            .iter()
            .map(|price| {
                assert_eq!(price.source, "entsoe");
                price.slot()
            })
            .collect()
    }

    fn de_lu_next_attempt(&self) -> Option<DateTime<Utc>> {
        let status = self.fetcher.status();
        assert_eq!(status.len(), 1, "only DE_LU is in use: {status:?}");
        status[0].next_attempt_at
    }
}

#[tokio::test]
async fn backfill_on_start_stores_the_missing_past_days_only() {
    // Saturday 2025-11-01 11:00 CET: before the publication of Sunday.
    let env = Env::new(utc(11, 1, 10, 0), 2).await;
    // 2025-10-30 is already stored (from an earlier run): it must not be asked for again.
    let oct_30: Vec<PriceSlot> = (0..96)
        .map(|i| PriceSlot {
            start: utc(10, 29, 23, 0) + Duration::minutes(15 * i),
            end: utc(10, 29, 23, 15) + Duration::minutes(15 * i),
            price_eur_mwh: 50.0,
        })
        .collect();
    env.store
        .upsert_prices(PriceZone::DeLu, None, "entsoe", &oct_30, utc(10, 29, 12, 0))
        .await
        .expect("seed");
    env.answer(OCT_31, xml(200, document()), None).await;
    env.answer(NOV_01, xml(200, document()), None).await;

    let round = env.fetcher.run_once().await.expect("round");

    let days: Vec<NaiveDate> = round.attempts.iter().map(|a| a.delivery_day).collect();
    assert_eq!(days, vec![day(10, 31), day(11, 1)]);
    assert!(
        round.attempts.iter().all(|a| matches!(
            a.outcome,
            FetchOutcome::Stored {
                slots: 96,
                complete: true,
                ..
            }
        )),
        "{round:?}"
    );
    assert_eq!(env.requests(OCT_30).await, 0);
    assert_eq!(
        env.requests(NOV_02).await,
        0,
        "tomorrow is not published yet"
    );
    let stored = env.stored(utc(10, 30, 23, 0), utc(11, 1, 23, 0)).await;
    assert_eq!(stored.len(), 192);
    assert_eq!(stored[0].price_eur_mwh, 102.81);
    assert_eq!(stored[95].price_eur_mwh, 42.37);

    let status = env.fetcher.status();
    assert_eq!(status[0].zone, PriceZone::DeLu);
    assert_eq!(status[0].last_success_at, Some(utc(11, 1, 10, 0)));
    assert_eq!(status[0].covered_until, Some(utc(11, 1, 23, 0)));
    assert_eq!(status[0].missing_days, vec![day(11, 2)]);
    // Sunday becomes due at 12:45 CET.
    assert_eq!(env.de_lu_next_attempt(), Some(utc(11, 1, 11, 45)));

    // A second round asks for nothing: the days are complete now.
    env.clock.advance(Duration::minutes(30));
    let again = env.fetcher.run_once().await.expect("round");
    assert!(again.attempts.is_empty(), "{again:?}");
    assert_eq!(env.server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn tomorrow_waits_for_publication_then_retries_until_it_arrives() {
    // Friday 2025-10-31 12:00 CET; no backfill: today and tomorrow only.
    let env = Env::new(utc(10, 31, 11, 0), 0).await;
    env.answer(OCT_31, xml(200, document()), None).await;
    // Tomorrow: first "no matching data" (as HTTP 400, like the platform), then the document.
    env.answer(NOV_01, xml(400, no_matching_data()), Some(1))
        .await;
    env.answer(NOV_01, xml(200, document()), None).await;

    let round = env.fetcher.run_once().await.expect("round");
    assert_eq!(round.attempts.len(), 1, "{round:?}");
    assert_eq!(round.attempts[0].delivery_day, day(10, 31));
    assert_eq!(env.requests(NOV_01).await, 0, "not before 12:45 CET");
    assert_eq!(round.next_attempt_at, Some(utc(10, 31, 11, 45)));

    // 12:44 CET: still nothing.
    env.clock.set(utc(10, 31, 11, 44));
    assert!(env.fetcher.run_once().await.unwrap().attempts.is_empty());
    assert_eq!(env.requests(NOV_01).await, 0);

    // 12:46 CET: asked, not published yet: nothing stored, next try in 10 minutes.
    env.clock.set(utc(10, 31, 11, 46));
    let round = env.fetcher.run_once().await.expect("round");
    assert!(
        matches!(
            &round.attempts[..],
            [a] if a.delivery_day == day(11, 1)
                && matches!(&a.outcome, FetchOutcome::NotYetPublished { reason } if reason.starts_with("No matching data"))
        ),
        "{round:?}"
    );
    assert_eq!(env.requests(NOV_01).await, 1);
    assert!(
        env.stored(utc(10, 31, 23, 0), utc(11, 1, 23, 0))
            .await
            .is_empty()
    );
    assert_eq!(env.de_lu_next_attempt(), Some(utc(10, 31, 11, 56)));
    let status = env.fetcher.status();
    assert_eq!(status[0].last_attempt_at, Some(utc(10, 31, 11, 46)));
    assert_eq!(status[0].last_success_at, Some(utc(10, 31, 11, 0)));
    assert_eq!(status[0].missing_days, vec![day(11, 1)]);

    // 5 minutes later: not due yet.
    env.clock.set(utc(10, 31, 11, 51));
    assert!(env.fetcher.run_once().await.unwrap().attempts.is_empty());
    assert_eq!(env.requests(NOV_01).await, 1);

    // Late publication: the retry gets the prices.
    env.clock.set(utc(10, 31, 11, 56));
    let round = env.fetcher.run_once().await.expect("round");
    assert!(
        matches!(
            &round.attempts[..],
            [a] if matches!(a.outcome, FetchOutcome::Stored { slots: 96, complete: true, .. })
        ),
        "{round:?}"
    );
    let stored = env.stored(utc(10, 31, 23, 0), utc(11, 1, 23, 0)).await;
    assert_eq!(stored.len(), 96);
    let status = env.fetcher.status();
    assert_eq!(status[0].last_success_at, Some(utc(10, 31, 11, 56)));
    assert_eq!(status[0].last_error, None);
    assert_eq!(status[0].covered_until, Some(utc(11, 1, 23, 0)));
    assert!(status[0].missing_days.is_empty());
    // Next: the day after tomorrow, at tomorrow's publication.
    assert_eq!(status[0].next_attempt_at, Some(utc(11, 1, 11, 45)));
}

#[tokio::test]
async fn server_errors_back_off_exponentially_then_succeed() {
    // Friday 2025-10-31 14:00 CET: today and tomorrow both due.
    let env = Env::new(utc(10, 31, 13, 0), 0).await;
    let unavailable = || ResponseTemplate::new(503).set_body_string("Service Unavailable");
    env.answer(OCT_31, unavailable(), Some(2)).await;
    env.answer(OCT_31, xml(200, document()), None).await;
    env.answer(NOV_01, xml(200, document()), None).await;

    let round = env.fetcher.run_once().await.expect("round");
    assert!(
        matches!(
            &round.attempts[..],
            [a] if matches!(&a.outcome, FetchOutcome::Failed { retryable: true, retry_at, .. } if *retry_at == utc(10, 31, 13, 1))
        ),
        "the zone stops at the first error: {round:?}"
    );
    let status = env.fetcher.status();
    assert!(
        status[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("503"),
        "{status:?}"
    );
    assert_eq!(status[0].consecutive_failures, 1);
    assert_eq!(status[0].next_attempt_at, Some(utc(10, 31, 13, 1)));

    env.clock.advance(Duration::seconds(30));
    assert!(env.fetcher.run_once().await.unwrap().attempts.is_empty());

    // Second failure: 2 minutes.
    env.clock.set(utc(10, 31, 13, 1));
    let round = env.fetcher.run_once().await.expect("round");
    assert!(
        matches!(&round.attempts[..], [a] if matches!(&a.outcome, FetchOutcome::Failed { retry_at, .. } if *retry_at == utc(10, 31, 13, 3))),
        "{round:?}"
    );
    assert_eq!(env.fetcher.status()[0].consecutive_failures, 2);

    env.clock.set(utc(10, 31, 13, 2));
    assert!(env.fetcher.run_once().await.unwrap().attempts.is_empty());

    env.clock.set(utc(10, 31, 13, 3));
    let round = env.fetcher.run_once().await.expect("round");
    assert_eq!(round.attempts.len(), 2, "{round:?}");
    assert_eq!(
        env.stored(utc(10, 30, 23, 0), utc(11, 1, 23, 0))
            .await
            .len(),
        192
    );
    let status = env.fetcher.status();
    assert_eq!(status[0].consecutive_failures, 0);
    assert_eq!(status[0].last_error, None);
    assert_eq!(status[0].last_success_at, Some(utc(10, 31, 13, 3)));
    assert_eq!(env.requests(OCT_31).await, 3);
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let env = Env::new(utc(10, 31, 13, 0), 0).await;
    env.answer(
        OCT_31,
        ResponseTemplate::new(429).insert_header("Retry-After", "300"),
        Some(1),
    )
    .await;
    env.answer(OCT_31, xml(200, document()), None).await;
    env.answer(NOV_01, xml(200, document()), None).await;

    let round = env.fetcher.run_once().await.expect("round");
    assert!(
        matches!(&round.attempts[..], [a] if matches!(&a.outcome, FetchOutcome::Failed { retryable: true, retry_at, .. } if *retry_at == utc(10, 31, 13, 5))),
        "Retry-After (5 min) beats the 1-minute backoff: {round:?}"
    );
    assert_eq!(round.next_attempt_at, Some(utc(10, 31, 13, 5)));

    // After the backoff alone would have allowed it, but the server asked for 5 minutes.
    env.clock.set(utc(10, 31, 13, 1));
    assert!(env.fetcher.run_once().await.unwrap().attempts.is_empty());
    env.clock.set(utc(10, 31, 13, 4));
    assert!(env.fetcher.run_once().await.unwrap().attempts.is_empty());
    assert_eq!(env.server.received_requests().await.unwrap().len(), 1);

    env.clock.set(utc(10, 31, 13, 5));
    let round = env.fetcher.run_once().await.expect("round");
    assert_eq!(round.attempts.len(), 2, "{round:?}");
    assert_eq!(
        env.fetcher.status()[0].last_success_at,
        Some(utc(10, 31, 13, 5))
    );
}

#[tokio::test]
async fn permanent_errors_wait_an_hour() {
    let env = Env::new(utc(10, 31, 13, 0), 0).await;
    env.answer(
        OCT_31,
        xml(200, "<html>maintenance</html>".to_owned()),
        Some(1),
    )
    .await;
    env.answer(OCT_31, xml(200, document()), None).await;
    env.answer(NOV_01, xml(200, document()), None).await;

    let round = env.fetcher.run_once().await.expect("round");
    assert!(
        matches!(&round.attempts[..], [a] if matches!(&a.outcome, FetchOutcome::Failed { retryable: false, retry_at, .. } if *retry_at == utc(10, 31, 14, 0))),
        "{round:?}"
    );
    env.clock.set(utc(10, 31, 13, 59));
    assert!(env.fetcher.run_once().await.unwrap().attempts.is_empty());
    env.clock.set(utc(10, 31, 14, 0));
    assert_eq!(env.fetcher.run_once().await.unwrap().attempts.len(), 2);
}
