//! The day-ahead price fetch scheduler: keeps the public ENTSO-E prices of every zone in use
//! complete from `backfill_days` ago up to tomorrow.
//!
//! Each round ([`PriceFetcher::run_once`]) looks, per zone in use, for delivery days (the zone's
//! local calendar days) that the stored public prices do not cover completely, and fetches those
//! that are due, oldest first, one A44 request per day:
//!
//! - past days and today at once; tomorrow only from its publication (`publish_after`, 12:45
//!   Europe/Brussels on the zone's current local date);
//! - "not yet published" → that day again after `retry_not_published` (10 min);
//! - a retryable error (429, 5xx, network) → the zone waits with exponential backoff (1 min doubling
//!   up to 1 h), or longer when the server's `Retry-After` says so; a 429 pauses every zone;
//! - a permanent error (rejected query, unusable answer) → the zone waits `permanent_retry` (1 h);
//! - success → the slots are upserted as public prices with source `entsoe`.
//!
//! AT_HOURLY is served from AT (it is derived from AT's quarter-hours), zones without an ENTSO-E
//! series (UK, IT_PUN) are skipped. Time comes only from the injected [`Clock`]; [`PriceFetcher::run`]
//! sleeps in real time between rounds. State is kept in memory and shown by
//! [`PriceFetcher::status`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use voltplan_core::price::find_gaps;
use voltplan_core::time::local_to_utc;
use voltplan_core::zone::PriceSource;
use voltplan_core::{Clock, PriceSlot, PriceZone};
use voltplan_prices::{ENTSOE_API_URL, EntsoeClient, EntsoeDocument, FetchError, RetryAfter};
use voltplan_store::{Store, StoreError};

/// Environment variable holding the ENTSO-E security token.
pub const ENTSOE_TOKEN_ENV: &str = "ENTSOE_TOKEN";
/// Environment variable overriding the API endpoint (default [`ENTSOE_API_URL`]).
pub const ENTSOE_BASE_URL_ENV: &str = "ENTSOE_BASE_URL";
/// The `source` of every price point this scheduler stores.
pub const ENTSOE_SOURCE: &str = "entsoe";

/// Never sleep less than this between rounds in [`PriceFetcher::run`], so that a due attempt that
/// keeps failing fast cannot spin.
const MIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// An ENTSO-E client from [`ENTSOE_TOKEN_ENV`] (and [`ENTSOE_BASE_URL_ENV`], defaulting to the
/// production endpoint); `Ok(None)` when no token is set, i.e. price fetching is switched off.
pub fn entsoe_client_from_env() -> Result<Option<EntsoeClient>, FetchError> {
    let token = match std::env::var(ENTSOE_TOKEN_ENV) {
        Ok(token) if !token.trim().is_empty() => token,
        _ => return Ok(None),
    };
    let base_url = std::env::var(ENTSOE_BASE_URL_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| ENTSOE_API_URL.to_owned());
    EntsoeClient::new(base_url, token.trim()).map(Some)
}

/// When and how hard the scheduler fetches. Durations are clock time, except `poll_interval`.
#[derive(Debug, Clone)]
pub struct PriceFetchConfig {
    /// Days before today (zone-local) kept complete; missing ones are fetched on start.
    pub backfill_days: u32,
    /// Publication time of the next delivery day, in `publish_time_zone`.
    pub publish_after: NaiveTime,
    pub publish_time_zone: Tz,
    /// Next try of a day the platform says is not published yet (or delivered incomplete).
    pub retry_not_published: Duration,
    /// First backoff after a retryable error; doubles per consecutive failure up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Wait after a permanent error (bad token, rejected query, unusable answer).
    pub permanent_retry: Duration,
    /// Longest real-time sleep between rounds in [`PriceFetcher::run`].
    pub poll_interval: std::time::Duration,
}

impl Default for PriceFetchConfig {
    fn default() -> Self {
        Self {
            backfill_days: 7,
            publish_after: NaiveTime::from_hms_opt(12, 45, 0).unwrap_or(NaiveTime::MIN),
            publish_time_zone: Tz::Europe__Brussels,
            retry_not_published: Duration::minutes(10),
            retry_base: Duration::minutes(1),
            retry_max: Duration::hours(1),
            permanent_retry: Duration::hours(1),
            poll_interval: std::time::Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PriceFetchError {
    #[error("price store: {0}")]
    Store(#[from] StoreError),
}

/// What one attempt for one delivery day gave.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FetchOutcome {
    /// Prices stored; `complete` is false when they do not cover the whole day (tried again
    /// after `retry_not_published`).
    Stored {
        slots: usize,
        written: usize,
        complete: bool,
    },
    NotYetPublished {
        reason: String,
    },
    Failed {
        error: String,
        retryable: bool,
        retry_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchAttempt {
    pub zone: PriceZone,
    pub delivery_day: NaiveDate,
    pub outcome: FetchOutcome,
}

/// What one [`PriceFetcher::run_once`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchRound {
    pub at: DateTime<Utc>,
    pub attempts: Vec<FetchAttempt>,
    /// The earliest instant at which any zone has something to fetch.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The visible state of one fetched zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneFetchStatus {
    pub zone: PriceZone,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// End of the last stored public slot.
    pub covered_until: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    /// Delivery days (zone-local) still missing after the last round.
    pub missing_days: Vec<NaiveDate>,
}

#[derive(Debug, Default)]
struct ZoneState {
    last_success_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    covered_until: Option<DateTime<Utc>>,
    consecutive_failures: u32,
    /// The zone waits until then after an error.
    blocked_until: Option<DateTime<Utc>>,
    /// Per delivery day: not before then (not yet published, incomplete).
    day_not_before: BTreeMap<NaiveDate, DateTime<Utc>>,
    missing_days: Vec<NaiveDate>,
}

#[derive(Debug, Default)]
struct State {
    zones: HashMap<PriceZone, ZoneState>,
    /// After a 429 every zone waits (the rate limit is per token, not per zone).
    rate_limited_until: Option<DateTime<Utc>>,
}

/// The zones to fetch for the zones in use, each with its EIC: AT_HOURLY becomes AT, zones
/// without an ENTSO-E series are left out.
pub fn zones_to_fetch(in_use: &[PriceZone]) -> Vec<(PriceZone, &'static str)> {
    let mut zones = BTreeSet::new();
    for &zone in in_use {
        let source_zone = match zone.info().source {
            PriceSource::HourlyMeanOf(base) => base,
            PriceSource::Entsoe { .. } => zone,
            PriceSource::UploadOrFile => continue,
        };
        if let PriceSource::Entsoe { eic } = source_zone.info().source {
            zones.insert((source_zone, eic));
        }
    }
    zones.into_iter().collect()
}

/// The first instant the wall clock of `tz` shows `time` on `date` (a gap: when the clocks jump).
fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    local_to_utc(date.and_time(time), &tz)
}

/// `[start, end)` in UTC of the delivery day `date` in `tz`.
fn day_window(tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date.succ_opt().unwrap_or(date);
    (
        local_instant(tz, date, NaiveTime::MIN),
        local_instant(tz, next, NaiveTime::MIN),
    )
}

/// Backoff after `failures` consecutive retryable failures (1-based), honouring `Retry-After`.
fn backoff(
    config: &PriceFetchConfig,
    failures: u32,
    retry_after: Option<RetryAfter>,
    now: DateTime<Utc>,
) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let delay = config
        .retry_base
        .checked_mul(1 << exponent)
        .unwrap_or(config.retry_max)
        .min(config.retry_max);
    let asked = match retry_after {
        Some(RetryAfter::Seconds(seconds)) => Duration::seconds(
            i64::try_from(seconds)
                .unwrap_or(i64::MAX / 1_000)
                .min(86_400),
        ),
        Some(RetryAfter::At(at)) => (at - now).min(Duration::days(1)),
        None => Duration::zero(),
    };
    delay.max(asked)
}

/// Keeps the public ENTSO-E prices of the zones in use complete.
pub struct PriceFetcher {
    store: Arc<dyn Store>,
    client: EntsoeClient,
    clock: Arc<dyn Clock>,
    config: PriceFetchConfig,
    state: Mutex<State>,
}

impl PriceFetcher {
    pub fn new(
        store: Arc<dyn Store>,
        client: EntsoeClient,
        clock: Arc<dyn Clock>,
        config: PriceFetchConfig,
    ) -> Self {
        Self {
            store,
            client,
            clock,
            config,
            state: Mutex::new(State::default()),
        }
    }

    pub fn config(&self) -> &PriceFetchConfig {
        &self.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements; a panic elsewhere does not corrupt it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Per fetched zone, ascending: last success, next attempt, last error, coverage.
    pub fn status(&self) -> Vec<ZoneFetchStatus> {
        let state = self.state();
        let mut zones: Vec<ZoneFetchStatus> = state
            .zones
            .iter()
            .map(|(&zone, s)| ZoneFetchStatus {
                zone,
                last_success_at: s.last_success_at,
                last_attempt_at: s.last_attempt_at,
                next_attempt_at: s.next_attempt_at,
                last_error: s.last_error.clone(),
                covered_until: s.covered_until,
                consecutive_failures: s.consecutive_failures,
                missing_days: s.missing_days.clone(),
            })
            .collect();
        zones.sort_by_key(|status| status.zone);
        zones
    }

    /// One round: every zone in use, every missing delivery day that is due.
    pub async fn run_once(&self) -> Result<FetchRound, PriceFetchError> {
        let now = self.clock.now();
        let zones = zones_to_fetch(&self.store.zones_in_use().await?);
        {
            let mut state = self.state();
            state
                .zones
                .retain(|zone, _| zones.iter().any(|(z, _)| z == zone));
        }
        let mut round = FetchRound {
            at: now,
            attempts: Vec::new(),
            next_attempt_at: None,
        };
        for (zone, eic) in zones {
            let next = self.zone_round(zone, eic, now, &mut round.attempts).await?;
            round.next_attempt_at = match (round.next_attempt_at, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(round)
    }

    async fn zone_round(
        &self,
        zone: PriceZone,
        eic: &'static str,
        now: DateTime<Utc>,
        attempts: &mut Vec<FetchAttempt>,
    ) -> Result<Option<DateTime<Utc>>, PriceFetchError> {
        let tz = zone.time_zone();
        let today = now.with_timezone(&tz).date_naive();
        let tomorrow = today.succ_opt().unwrap_or(today);
        let first = today - Duration::days(i64::from(self.config.backfill_days));
        let days: Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> = first
            .iter_days()
            .take_while(|day| *day <= tomorrow)
            .map(|day| {
                let (start, end) = day_window(tz, day);
                (day, start, end)
            })
            .collect();
        let (Some(&(_, from, _)), Some(&(_, _, to))) = (days.first(), days.last()) else {
            return Ok(None);
        };
        let stored: Vec<PriceSlot> = self
            .store
            .read_prices(zone, None, from, to)
            .await?
            .iter()
            .map(|price| price.slot())
            .collect();
        let missing: Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> = days
            .into_iter()
            .filter(|&(_, start, end)| !find_gaps(&stored, start, end).is_empty())
            .collect();
        let publish_at = local_instant(
            self.config.publish_time_zone,
            today,
            self.config.publish_after,
        );

        let mut still_missing = Vec::new();
        let mut next_attempt: Option<DateTime<Utc>> = None;
        for (day, start, end) in missing {
            let due_at = self.due_at(zone, day, (day > today).then_some(publish_at));
            if due_at.is_none_or(|due| due <= now) {
                let outcome = self.attempt(zone, eic, day, start, end, now).await?;
                let done = matches!(outcome, FetchOutcome::Stored { complete: true, .. });
                attempts.push(FetchAttempt {
                    zone,
                    delivery_day: day,
                    outcome,
                });
                if done {
                    continue;
                }
            }
            still_missing.push(day);
            if let Some(due) = self.due_at(zone, day, (day > today).then_some(publish_at)) {
                next_attempt = Some(next_attempt.map_or(due, |next| next.min(due)));
            }
        }
        // Nothing missing: the day after tomorrow becomes due at tomorrow's publication.
        let next_attempt = next_attempt.or_else(|| {
            Some(local_instant(
                self.config.publish_time_zone,
                tomorrow,
                self.config.publish_after,
            ))
        });
        let covered_until = self.store.price_coverage(zone).await?;

        let mut state = self.state();
        let zone_state = state.zones.entry(zone).or_default();
        zone_state
            .day_not_before
            .retain(|day, _| still_missing.contains(day));
        zone_state.missing_days = still_missing;
        zone_state.next_attempt_at = next_attempt;
        zone_state.covered_until = covered_until;
        Ok(next_attempt)
    }

    /// When `day` of `zone` may next be fetched; `None` = now. `published_at` is the publication
    /// instant for a future day.
    fn due_at(
        &self,
        zone: PriceZone,
        day: NaiveDate,
        published_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let state = self.state();
        let zone_state = state.zones.get(&zone);
        [
            published_at,
            state.rate_limited_until,
            zone_state.and_then(|s| s.blocked_until),
            zone_state.and_then(|s| s.day_not_before.get(&day).copied()),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    async fn attempt(
        &self,
        zone: PriceZone,
        eic: &str,
        day: NaiveDate,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<FetchOutcome, PriceFetchError> {
        let fetched = self.client.fetch_day(eic, start, end).await;
        let outcome = match fetched {
            Ok(EntsoeDocument::Prices(slots)) if !slots.is_empty() => {
                let summary = self
                    .store
                    .upsert_prices(zone, None, ENTSOE_SOURCE, &slots, now)
                    .await?;
                let complete = find_gaps(&slots, start, end).is_empty();
                let mut state = self.state();
                let zone_state = state.zones.entry(zone).or_default();
                zone_state.last_success_at = Some(now);
                zone_state.last_error = None;
                zone_state.consecutive_failures = 0;
                zone_state.blocked_until = None;
                if complete {
                    zone_state.day_not_before.remove(&day);
                } else {
                    zone_state
                        .day_not_before
                        .insert(day, now + self.config.retry_not_published);
                }
                FetchOutcome::Stored {
                    slots: slots.len(),
                    written: summary.written,
                    complete,
                }
            }
            Ok(EntsoeDocument::Prices(_)) => self.not_published(zone, day, now, "empty document"),
            Ok(EntsoeDocument::NotYetPublished { reason }) => {
                self.not_published(zone, day, now, &reason)
            }
            Err(error) => {
                let retryable = error.is_retryable();
                let mut state = self.state();
                let zone_state = state.zones.entry(zone).or_default();
                zone_state.consecutive_failures = zone_state.consecutive_failures.saturating_add(1);
                let wait = if retryable {
                    backoff(
                        &self.config,
                        zone_state.consecutive_failures,
                        error.retry_after(),
                        now,
                    )
                } else {
                    self.config.permanent_retry
                };
                let retry_at = now + wait;
                zone_state.blocked_until = Some(retry_at);
                zone_state.last_error = Some(error.to_string());
                if matches!(error, FetchError::Status { status: 429, .. }) {
                    state.rate_limited_until = Some(retry_at);
                }
                FetchOutcome::Failed {
                    error: error.to_string(),
                    retryable,
                    retry_at,
                }
            }
        };
        if let Some(zone_state) = self.state().zones.get_mut(&zone) {
            zone_state.last_attempt_at = Some(now);
        }
        match &outcome {
            FetchOutcome::Stored {
                slots,
                written,
                complete,
            } => tracing::info!(%zone, %day, slots, written, complete, "day-ahead prices stored"),
            FetchOutcome::NotYetPublished { reason } => {
                tracing::info!(%zone, %day, reason, "day-ahead prices not yet published");
            }
            FetchOutcome::Failed {
                error,
                retryable,
                retry_at,
            } => {
                tracing::warn!(%zone, %day, error, retryable, %retry_at, "day-ahead price fetch failed")
            }
        }
        Ok(outcome)
    }

    fn not_published(
        &self,
        zone: PriceZone,
        day: NaiveDate,
        now: DateTime<Utc>,
        reason: &str,
    ) -> FetchOutcome {
        let mut state = self.state();
        let zone_state = state.zones.entry(zone).or_default();
        // The platform answered properly: not a failure.
        zone_state.consecutive_failures = 0;
        zone_state.blocked_until = None;
        zone_state
            .day_not_before
            .insert(day, now + self.config.retry_not_published);
        FetchOutcome::NotYetPublished {
            reason: reason.to_owned(),
        }
    }

    /// Runs rounds until `shutdown` resolves, sleeping (real time) until the earliest next attempt,
    /// at most `poll_interval`. A failing round (store unreachable) is logged and retried.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = tokio::select! {
                () = &mut shutdown => break,
                result = self.run_once() => match result {
                    Ok(round) => round
                        .next_attempt_at
                        .and_then(|next| (next - self.clock.now()).to_std().ok())
                        .unwrap_or(MIN_WAIT)
                        .min(self.config.poll_interval),
                    Err(error) => {
                        tracing::warn!(%error, "price fetch round failed");
                        self.config.poll_interval
                    }
                },
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait.max(MIN_WAIT)) => {}
            }
        }
        tracing::info!("price fetcher stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn zones_map_at_hourly_to_at_and_skip_zones_without_a_series() {
        let zones = zones_to_fetch(&[
            PriceZone::AtHourly,
            PriceZone::At,
            PriceZone::Uk,
            PriceZone::ItPun,
            PriceZone::DeLu,
        ]);
        assert_eq!(
            zones,
            vec![
                (PriceZone::At, "10YAT-APG------L"),
                (PriceZone::DeLu, "10Y1001A1001A82H")
            ]
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let config = PriceFetchConfig::default();
        let now = Utc.with_ymd_and_hms(2025, 10, 31, 12, 0, 0).unwrap();
        assert_eq!(backoff(&config, 1, None, now), Duration::minutes(1));
        assert_eq!(backoff(&config, 3, None, now), Duration::minutes(4));
        assert_eq!(backoff(&config, 40, None, now), Duration::hours(1));
        assert_eq!(
            backoff(&config, 1, Some(RetryAfter::Seconds(300)), now),
            Duration::minutes(5)
        );
        assert_eq!(
            backoff(
                &config,
                1,
                Some(RetryAfter::At(now + Duration::minutes(7))),
                now
            ),
            Duration::minutes(7)
        );
    }

    #[test]
    fn delivery_days_follow_local_midnight_across_dst() {
        let tz = Tz::Europe__Berlin;
        let (start, end) = day_window(tz, NaiveDate::from_ymd_opt(2025, 10, 26).unwrap());
        assert_eq!(start, Utc.with_ymd_and_hms(2025, 10, 25, 22, 0, 0).unwrap());
        assert_eq!(end - start, Duration::hours(25));
    }
}
