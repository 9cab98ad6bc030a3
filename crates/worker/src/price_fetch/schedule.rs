//! When to fetch what: the zones to fetch, the delivery days and their UTC windows, the
//! per-zone and per-day waits (publication, not yet published, backoff, rate limit).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use voltplan_core::PriceZone;
use voltplan_core::time::local_to_utc;
use voltplan_core::zone::PriceSource;
use voltplan_prices::RetryAfter;

use super::config::PriceFetchConfig;

#[derive(Debug, Default)]
pub(super) struct ZoneState {
    pub(super) last_success_at: Option<DateTime<Utc>>,
    pub(super) last_attempt_at: Option<DateTime<Utc>>,
    pub(super) next_attempt_at: Option<DateTime<Utc>>,
    pub(super) last_error: Option<String>,
    pub(super) covered_until: Option<DateTime<Utc>>,
    pub(super) consecutive_failures: u32,
    /// The zone waits until then after an error.
    pub(super) blocked_until: Option<DateTime<Utc>>,
    /// Per delivery day: not before then (not yet published, incomplete).
    pub(super) day_not_before: BTreeMap<NaiveDate, DateTime<Utc>>,
    pub(super) missing_days: Vec<NaiveDate>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) zones: HashMap<PriceZone, ZoneState>,
    /// After a 429 every zone waits (the rate limit is per token, not per zone).
    pub(super) rate_limited_until: Option<DateTime<Utc>>,
}

impl State {
    /// When `day` of `zone` may next be fetched; `None` = now. `published_at` is the publication
    /// instant for a future day.
    pub(super) fn due_at(
        &self,
        zone: PriceZone,
        day: NaiveDate,
        published_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let zone_state = self.zones.get(&zone);
        [
            published_at,
            self.rate_limited_until,
            zone_state.and_then(|s| s.blocked_until),
            zone_state.and_then(|s| s.day_not_before.get(&day).copied()),
        ]
        .into_iter()
        .flatten()
        .max()
    }
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
pub(super) fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
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

/// The delivery days from `first` to `last` (inclusive), each with its `[start, end)` in UTC.
pub(super) fn delivery_days(
    tz: Tz,
    first: NaiveDate,
    last: NaiveDate,
) -> Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> {
    first
        .iter_days()
        .take_while(|day| *day <= last)
        .map(|day| {
            let (start, end) = day_window(tz, day);
            (day, start, end)
        })
        .collect()
}

/// Backoff after `failures` consecutive retryable failures (1-based), honouring `Retry-After`.
pub(super) fn backoff(
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
