//! The fetcher: each round reads what is stored, fetches the due delivery days and stores them,
//! and keeps the per-zone state that [`PriceFetcher::status`] shows.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use voltplan_core::price::find_gaps;
use voltplan_core::{Clock, PriceSlot, PriceZone};
use voltplan_prices::{EntsoeClient, EntsoeDocument, FetchError};
use voltplan_store::{Store, StoreError};

use super::config::PriceFetchConfig;
use super::schedule::{State, backoff, delivery_days, local_instant, zones_to_fetch};

/// The `source` of every price point this scheduler stores.
pub const ENTSOE_SOURCE: &str = "entsoe";

/// Never sleep less than this between rounds in [`PriceFetcher::run`], so that a due attempt that
/// keeps failing fast cannot spin.
const MIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

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
        let days = delivery_days(tz, first, tomorrow);
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
            let published_at = (day > today).then_some(publish_at);
            let due_at = self.state().due_at(zone, day, published_at);
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
            let due_at = self.state().due_at(zone, day, published_at);
            if let Some(due) = due_at {
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
