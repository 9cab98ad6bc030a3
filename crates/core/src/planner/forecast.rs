//! The planning timeline: published price slots clipped to `now`, gaps and the tail beyond the last
//! published price filled with forecast slots, and every slot split at the instants where the rules
//! change (end of a pause, the deadline) so each segment lies wholly on one side of them.
//!
//! Forecast: the mean price of the same local wall-clock time on the previous 1–7 days among the
//! prices given (day-ahead prices repeat daily shapes); without any such day, the mean of all given
//! prices; without any price at all, 0 (every slot equal, so the planner simply charges early).

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::deadline::same_local_time_days_before;
use super::input::PlanError;
use crate::price::PriceSlot;

/// Slot length used for forecasts when no published slot tells the resolution.
const DEFAULT_FORECAST_STEP_MIN: i64 = 15;
const FORECAST_LOOKBACK_DAYS: i64 = 7;

/// How a forecast price was made (reported with each forecast slot and in the explanation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForecastBasis {
    /// The mean price at the same local wall-clock time on the previous 1–7 days among the prices
    /// given.
    PreviousDays,
    /// No such day was given: the mean of all given prices (a flat line).
    MeanOfGivenPrices,
    /// No price was given at all: 0.
    NoPrices,
}

/// One piece of the timeline with a single price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub price_eur_mwh: f64,
    /// `Some` when the price is a forecast, not a published one.
    pub basis: Option<ForecastBasis>,
}

impl Segment {
    pub fn hours(&self) -> f64 {
        hours_between(self.start, self.end)
    }

    pub fn is_forecast(&self) -> bool {
        self.basis.is_some()
    }
}

pub fn hours_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_nanoseconds().map_or_else(
        || (b - a).num_milliseconds() as f64 / 3_600_000.0,
        |ns| ns as f64 / 3.6e12,
    )
}

/// Checks the published prices and returns them sorted by start.
pub fn validated_prices(prices: &[PriceSlot]) -> Result<Vec<PriceSlot>, PlanError> {
    let mut sorted: Vec<(usize, PriceSlot)> = prices.iter().copied().enumerate().collect();
    for (index, slot) in &sorted {
        if slot.end <= slot.start {
            return Err(PlanError::InvalidPrice {
                index: *index,
                start: slot.start,
                problem: "end is not after start".into(),
            });
        }
        if !slot.price_eur_mwh.is_finite() {
            return Err(PlanError::InvalidPrice {
                index: *index,
                start: slot.start,
                problem: "price is not a finite number".into(),
            });
        }
    }
    sorted.sort_by_key(|(_, s)| s.start);
    for pair in sorted.windows(2) {
        if pair[1].1.start < pair[0].1.end {
            return Err(PlanError::InvalidPrice {
                index: pair[1].0,
                start: pair[1].1.start,
                problem: format!("overlaps the slot starting {}", pair[0].1.start),
            });
        }
    }
    Ok(sorted.into_iter().map(|(_, s)| s).collect())
}

/// Builds contiguous segments covering `[now, until)`, split at each of `cuts`.
/// `prices` must come from [`validated_prices`].
pub fn build_timeline(
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    prices: &[PriceSlot],
    tz: Tz,
    cuts: &[DateTime<Utc>],
) -> Vec<Segment> {
    let step = prices
        .last()
        .map_or(Duration::minutes(DEFAULT_FORECAST_STEP_MIN), |s| {
            s.end - s.start
        });
    let forecaster = Forecaster::new(prices, tz);
    let mut segments = Vec::new();
    let mut cursor = now;
    for slot in prices.iter().filter(|s| s.end > now) {
        if cursor >= until {
            break;
        }
        if slot.start > cursor {
            push_forecast(
                &mut segments,
                &forecaster,
                cursor,
                slot.start.min(until),
                step,
            );
        }
        let start = slot.start.max(cursor);
        let end = slot.end.min(until);
        if end > start {
            segments.push(Segment {
                start,
                end,
                price_eur_mwh: slot.price_eur_mwh,
                basis: None,
            });
        }
        cursor = slot.end;
    }
    if cursor < until {
        push_forecast(&mut segments, &forecaster, cursor, until, step);
    }
    split_at(segments, cuts)
}

fn push_forecast(
    out: &mut Vec<Segment>,
    forecaster: &Forecaster<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Duration,
) {
    let step_s = step.num_seconds().max(60);
    let mut start = from;
    while start < to {
        // Align to the slot grid (in UTC; European zones' offsets are whole hours).
        let into_step = start.timestamp().rem_euclid(step_s);
        let end = (start + Duration::seconds(step_s - into_step)).min(to);
        let end = if end <= start {
            (start + Duration::seconds(step_s)).min(to)
        } else {
            end
        };
        let (price_eur_mwh, basis) = forecaster.price_at(start);
        out.push(Segment {
            start,
            end,
            price_eur_mwh,
            basis: Some(basis),
        });
        start = end;
    }
}

fn split_at(segments: Vec<Segment>, cuts: &[DateTime<Utc>]) -> Vec<Segment> {
    let mut out = Vec::with_capacity(segments.len() + cuts.len());
    for seg in segments {
        let mut inner: Vec<DateTime<Utc>> = cuts
            .iter()
            .copied()
            .filter(|c| *c > seg.start && *c < seg.end)
            .collect();
        inner.sort();
        inner.dedup();
        let mut start = seg.start;
        for cut in inner {
            out.push(Segment {
                start,
                end: cut,
                ..seg
            });
            start = cut;
        }
        out.push(Segment { start, ..seg });
    }
    out
}

struct Forecaster<'a> {
    prices: &'a [PriceSlot],
    tz: Tz,
    mean: f64,
}

impl<'a> Forecaster<'a> {
    fn new(prices: &'a [PriceSlot], tz: Tz) -> Self {
        let mean = if prices.is_empty() {
            0.0
        } else {
            prices.iter().map(|p| p.price_eur_mwh).sum::<f64>() / prices.len() as f64
        };
        Forecaster { prices, tz, mean }
    }

    fn published_at(&self, t: DateTime<Utc>) -> Option<f64> {
        let idx = self.prices.partition_point(|p| p.end <= t);
        self.prices
            .get(idx)
            .filter(|p| p.start <= t)
            .map(|p| p.price_eur_mwh)
    }

    fn price_at(&self, t: DateTime<Utc>) -> (f64, ForecastBasis) {
        let (sum, n) = (1..=FORECAST_LOOKBACK_DAYS)
            .filter_map(|d| same_local_time_days_before(t, d, self.tz))
            .filter_map(|past| self.published_at(past))
            .fold((0.0, 0u32), |(s, n), p| (s + p, n + 1));
        if n > 0 {
            (sum / f64::from(n), ForecastBasis::PreviousDays)
        } else if self.prices.is_empty() {
            (self.mean, ForecastBasis::NoPrices)
        } else {
            (self.mean, ForecastBasis::MeanOfGivenPrices)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn hourly(start: &str, prices: &[f64]) -> Vec<PriceSlot> {
        let t0 = utc(start);
        prices
            .iter()
            .enumerate()
            .map(|(i, p)| PriceSlot {
                start: t0 + Duration::hours(i as i64),
                end: t0 + Duration::hours(i as i64 + 1),
                price_eur_mwh: *p,
            })
            .collect()
    }

    #[test]
    fn clips_to_now_and_forecasts_the_tail_from_yesterday() {
        let prices: Vec<f64> = (0..24).map(f64::from).collect();
        let slots = hourly("2024-01-10T00:00:00Z", &prices);
        let now = utc("2024-01-10T22:30:00Z");
        let tl = build_timeline(now, utc("2024-01-11T02:00:00Z"), &slots, Tz::UTC, &[]);
        assert_eq!(tl[0].start, now);
        assert_eq!(tl[0].price_eur_mwh, 22.0);
        assert!(!tl[0].is_forecast());
        let tail: Vec<_> = tl.iter().filter(|s| s.is_forecast()).collect();
        assert_eq!(tail.len(), 2);
        // Same hour yesterday.
        assert_eq!(tail[0].price_eur_mwh, 0.0);
        assert_eq!(tail[1].price_eur_mwh, 1.0);
        assert_eq!(tail[0].basis, Some(ForecastBasis::PreviousDays));
    }

    #[test]
    fn splits_at_cuts_and_rejects_overlaps() {
        let slots = hourly("2024-01-10T00:00:00Z", &[1.0, 2.0]);
        let cut = utc("2024-01-10T00:20:00Z");
        let tl = build_timeline(
            utc("2024-01-10T00:00:00Z"),
            utc("2024-01-10T02:00:00Z"),
            &slots,
            Tz::UTC,
            &[cut],
        );
        assert_eq!(tl.len(), 3);
        assert_eq!(tl[0].end, cut);
        let mut bad = slots.clone();
        bad[1].start = utc("2024-01-10T00:30:00Z");
        assert!(validated_prices(&bad).is_err());
    }
}
