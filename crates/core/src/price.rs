//! Day-ahead price slots and pure helpers on price series.
//!
//! A series is a slice of [`PriceSlot`]s in UTC. The helpers never assume a day has 24 hours or
//! 96 quarter-hours: DST days have 23/25 hours (92/100 quarter-hours) and everything here
//! iterates by instant.
//!
//! The `AT_HOURLY` zone ([`crate::zone::PriceSource::HourlyMeanOf`]) is exactly
//! `resample(at_quarter_hours, Resolution::Hour)`: each hour is the arithmetic mean of its four
//! quarter-hour prices.

use crate::zone::Resolution;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

/// One day-ahead price interval `[start, end)` in EUR/MWh (or the zone's currency per MWh).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriceSlot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub price_eur_mwh: f64,
}

/// The prices Voltplan accepts, per MWh in the zone's currency. The European markets' own
/// harmonised limits lie inside it (day-ahead −500 to +4,000 €/MWh when this was written, intraday
/// ±9,999), so no real price is refused, while a value such as `1.7e308` is: averaged into an hour
/// or multiplied by energy it would overflow to infinity.
pub const PRICE_LIMIT_EUR_MWH: f64 = 10_000.0;

/// Whether `price` is finite and within ±[`PRICE_LIMIT_EUR_MWH`].
pub fn is_plausible_price(price: f64) -> bool {
    price.is_finite() && price.abs() <= PRICE_LIMIT_EUR_MWH
}

/// A `[start, end)` range of instants, used for gaps.
pub type TimeRange = (DateTime<Utc>, DateTime<Utc>);

/// Why a price series cannot be used as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PriceSeriesError {
    #[error("slot starting {start} ends at {end}, which is not after its start")]
    EmptySlot {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("slot {start}..{end} is not on the {minutes}-minute grid")]
    Misaligned {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        minutes: i64,
    },
    #[error("slot starting {start} overlaps the slot before it (which ends at {previous_end})")]
    Overlap {
        start: DateTime<Utc>,
        previous_end: DateTime<Utc>,
    },
}

/// The length of one slot of `resolution`.
pub fn resolution_duration(resolution: Resolution) -> Duration {
    Duration::minutes(resolution.minutes())
}

fn is_on_grid(instant: DateTime<Utc>, step: Duration) -> bool {
    // `duration_trunc` only fails for steps that do not fit i64 nanoseconds; 15/60 minutes always fit.
    instant
        .duration_trunc(step)
        .is_ok_and(|truncated| truncated == instant)
}

/// Checks that every slot is exactly one `resolution` long, starts on the resolution's UTC grid
/// (:00/:15/:30/:45 for quarter-hours, :00 for hours) and that the series is strictly ascending
/// without overlaps. Gaps are allowed: see [`find_gaps`].
pub fn validate_alignment(
    slots: &[PriceSlot],
    resolution: Resolution,
) -> Result<(), PriceSeriesError> {
    let step = resolution_duration(resolution);
    let mut previous_end: Option<DateTime<Utc>> = None;
    for slot in slots {
        let aligned = slot.end - slot.start == step && is_on_grid(slot.start, step);
        check_slot(slot, aligned, resolution, &mut previous_end)?;
    }
    Ok(())
}

/// Refuses an empty slot, one that is not `aligned` to the `grid`, and one that starts before
/// the previous one ended; then remembers where this one ends.
fn check_slot(
    slot: &PriceSlot,
    aligned: bool,
    grid: Resolution,
    previous_end: &mut Option<DateTime<Utc>>,
) -> Result<(), PriceSeriesError> {
    if slot.end <= slot.start {
        return Err(PriceSeriesError::EmptySlot {
            start: slot.start,
            end: slot.end,
        });
    }
    if !aligned {
        return Err(PriceSeriesError::Misaligned {
            start: slot.start,
            end: slot.end,
            minutes: grid.minutes(),
        });
    }
    if let Some(previous_end) = *previous_end
        && slot.start < previous_end
    {
        return Err(PriceSeriesError::Overlap {
            start: slot.start,
            previous_end,
        });
    }
    *previous_end = Some(slot.end);
    Ok(())
}

/// Start instants that occur more than once, each reported once, ascending.
pub fn duplicate_starts(slots: &[PriceSlot]) -> Vec<DateTime<Utc>> {
    let mut starts: Vec<DateTime<Utc>> = slots.iter().map(|slot| slot.start).collect();
    starts.sort_unstable();
    let mut duplicates: Vec<DateTime<Utc>> = starts
        .windows(2)
        .filter(|pair| pair[0] == pair[1])
        .map(|pair| pair[0])
        .collect();
    duplicates.dedup();
    duplicates
}

/// The parts of `[window_start, window_end)` that no slot covers, ascending and merged.
///
/// Slots may be unsorted, overlapping or reach outside the window.
pub fn find_gaps(
    slots: &[PriceSlot],
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
) -> Vec<TimeRange> {
    let mut covered: Vec<TimeRange> = slots
        .iter()
        .filter(|slot| slot.end > window_start && slot.start < window_end && slot.end > slot.start)
        .map(|slot| (slot.start.max(window_start), slot.end.min(window_end)))
        .collect();
    covered.sort_unstable_by_key(|range| range.0);

    let mut gaps = Vec::new();
    let mut cursor = window_start;
    for (start, end) in covered {
        if start > cursor {
            gaps.push((cursor, start));
        }
        cursor = cursor.max(end);
    }
    if cursor < window_end {
        gaps.push((cursor, window_end));
    }
    gaps
}

/// Splits every slot into quarter-hours carrying the slot's price.
fn to_quarter_hours(slots: &[PriceSlot]) -> Result<Vec<PriceSlot>, PriceSeriesError> {
    let quarter = resolution_duration(Resolution::QuarterHour);
    let mut sorted = slots.to_vec();
    sorted.sort_by_key(|slot| slot.start);
    let mut quarters = Vec::with_capacity(sorted.len() * 4);
    let mut previous_end: Option<DateTime<Utc>> = None;
    for slot in &sorted {
        let length = slot.end - slot.start;
        // A slot that is not whole quarter-hours on the grid cannot be split without inventing prices.
        let aligned = is_on_grid(slot.start, quarter)
            && length.num_seconds() % quarter.num_seconds() == 0
            && length.subsec_nanos() == 0;
        check_slot(slot, aligned, Resolution::QuarterHour, &mut previous_end)?;
        let mut start = slot.start;
        while start < slot.end {
            quarters.push(PriceSlot {
                start,
                end: start + quarter,
                price_eur_mwh: slot.price_eur_mwh,
            });
            start += quarter;
        }
    }
    Ok(quarters)
}

/// Resamples a series to `to`.
///
/// * To quarter-hours: every slot is repeated over its quarter-hours (an hourly price holds for
///   each of its four quarters).
/// * To hours: each UTC hour is the arithmetic mean of its four quarter-hour prices. An hour that
///   the input covers only partly is left out rather than averaged over fewer quarters, so that a
///   missing quarter shows up in [`find_gaps`] instead of as a silently biased price.
///
/// Input may be unsorted, mixed resolutions are fine; it must be on the 15-minute grid and free of
/// overlaps (deduplicate first). Output is ascending.
pub fn resample(slots: &[PriceSlot], to: Resolution) -> Result<Vec<PriceSlot>, PriceSeriesError> {
    let quarters = to_quarter_hours(slots)?;
    match to {
        Resolution::QuarterHour => Ok(quarters),
        Resolution::Hour => {
            let hour = resolution_duration(Resolution::Hour);
            let mut hours = Vec::with_capacity(quarters.len() / 4 + 1);
            let mut index = 0;
            while index < quarters.len() {
                let hour_start = quarters[index].start.duration_trunc(hour).map_err(|_| {
                    PriceSeriesError::Misaligned {
                        start: quarters[index].start,
                        end: quarters[index].end,
                        minutes: Resolution::Hour.minutes(),
                    }
                })?;
                let hour_end = hour_start + hour;
                let in_hour = quarters[index..]
                    .iter()
                    .take_while(|quarter| quarter.start < hour_end)
                    .count();
                // Sorted, non-overlapping quarters inside one hour: four of them cover it completely.
                if in_hour == 4 {
                    let sum: f64 = quarters[index..index + 4]
                        .iter()
                        .map(|q| q.price_eur_mwh)
                        .sum();
                    hours.push(PriceSlot {
                        start: hour_start,
                        end: hour_end,
                        price_eur_mwh: sum / 4.0,
                    });
                }
                index += in_hour;
            }
            Ok(hours)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 10, 31, hour, minute, 0).unwrap()
    }

    fn slot(start: DateTime<Utc>, minutes: i64, price: f64) -> PriceSlot {
        PriceSlot {
            start,
            end: start + Duration::minutes(minutes),
            price_eur_mwh: price,
        }
    }

    fn quarter_series(from: DateTime<Utc>, prices: &[f64]) -> Vec<PriceSlot> {
        prices
            .iter()
            .enumerate()
            .map(|(i, &p)| slot(from + Duration::minutes(15 * i as i64), 15, p))
            .collect()
    }

    #[test]
    fn hourly_from_quarter_hours_is_the_mean_of_the_four_quarters() {
        // The first two hours of the real DE_LU SDAC series for 2025-10-31 (ENTSO-E A44, sequence 1).
        let quarters = quarter_series(
            at(0, 0),
            &[102.81, 89.76, 81.66, 76.73, 87.49, 82.05, 80.0, 78.0],
        );
        let hours = resample(&quarters, Resolution::Hour).unwrap();
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[0].start, at(0, 0));
        assert_eq!(hours[0].end, at(1, 0));
        assert!((hours[0].price_eur_mwh - 87.74).abs() < 1e-9);
        assert!((hours[1].price_eur_mwh - 81.885).abs() < 1e-9);
    }

    #[test]
    fn at_hourly_keeps_negative_prices_in_the_mean() {
        let quarters = quarter_series(at(12, 0), &[-10.0, -20.0, 5.0, 1.0]);
        let hours = resample(&quarters, Resolution::Hour).unwrap();
        assert_eq!(hours, vec![slot(at(12, 0), 60, -6.0)]);
    }

    #[test]
    fn partly_covered_hours_are_left_out_not_averaged() {
        let mut quarters = quarter_series(at(0, 0), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        quarters.remove(5); // 01:15 missing
        let hours = resample(&quarters, Resolution::Hour).unwrap();
        assert_eq!(hours, vec![slot(at(0, 0), 60, 2.5)]);
        assert_eq!(
            find_gaps(&hours, at(0, 0), at(2, 0)),
            vec![(at(1, 0), at(2, 0))]
        );
    }

    #[test]
    fn quarter_hours_from_hourly_repeat_the_price() {
        let hourly = vec![slot(at(1, 0), 60, 55.5), slot(at(0, 0), 60, 42.0)];
        let quarters = resample(&hourly, Resolution::QuarterHour).unwrap();
        assert_eq!(quarters.len(), 8);
        assert_eq!(quarters[0], slot(at(0, 0), 15, 42.0));
        assert_eq!(quarters[3], slot(at(0, 45), 15, 42.0));
        assert_eq!(quarters[4], slot(at(1, 0), 15, 55.5));
        assert_eq!(quarters[7].end, at(2, 0));
        // And back again: the mean of a repeated price is the price.
        assert_eq!(
            resample(&quarters, Resolution::Hour).unwrap(),
            vec![slot(at(0, 0), 60, 42.0), slot(at(1, 0), 60, 55.5)]
        );
    }

    #[test]
    fn resample_rejects_off_grid_and_overlapping_input() {
        let off_grid = vec![slot(at(0, 5), 15, 1.0)];
        assert!(matches!(
            resample(&off_grid, Resolution::Hour),
            Err(PriceSeriesError::Misaligned { minutes: 15, .. })
        ));
        let overlapping = vec![slot(at(0, 0), 60, 1.0), slot(at(0, 30), 15, 2.0)];
        assert_eq!(
            resample(&overlapping, Resolution::QuarterHour),
            Err(PriceSeriesError::Overlap {
                start: at(0, 30),
                previous_end: at(1, 0)
            })
        );
    }

    #[test]
    fn a_dst_day_of_quarter_hours_resamples_to_25_hours() {
        // 2025-10-26 Europe/Berlin: local midnight to midnight is 2025-10-25T22:00Z..10-26T23:00Z.
        let day_start = Utc.with_ymd_and_hms(2025, 10, 25, 22, 0, 0).unwrap();
        let prices: Vec<f64> = (0..100).map(f64::from).collect();
        let quarters = quarter_series(day_start, &prices);
        let hours = resample(&quarters, Resolution::Hour).unwrap();
        assert_eq!(hours.len(), 25);
        assert_eq!(
            hours[24].end,
            Utc.with_ymd_and_hms(2025, 10, 26, 23, 0, 0).unwrap()
        );
        assert!((hours[24].price_eur_mwh - 97.5).abs() < 1e-9);
    }

    #[test]
    fn gaps_are_reported_as_half_open_ranges_inside_the_window() {
        let slots = vec![
            slot(at(1, 0), 60, 1.0),
            slot(at(3, 0), 15, 1.0),
            slot(at(2, 45), 15, 1.0), // unsorted on purpose
        ];
        assert_eq!(
            find_gaps(&slots, at(0, 0), at(4, 0)),
            vec![
                (at(0, 0), at(1, 0)),
                (at(2, 0), at(2, 45)),
                (at(3, 15), at(4, 0))
            ]
        );
        assert_eq!(find_gaps(&slots, at(1, 0), at(2, 0)), vec![]);
        assert_eq!(
            find_gaps(&[], at(1, 0), at(2, 0)),
            vec![(at(1, 0), at(2, 0))]
        );
    }

    #[test]
    fn duplicates_are_reported_once_per_start() {
        let slots = vec![
            slot(at(0, 0), 15, 1.0),
            slot(at(0, 15), 15, 1.0),
            slot(at(0, 0), 15, 2.0),
            slot(at(0, 0), 15, 3.0),
        ];
        assert_eq!(duplicate_starts(&slots), vec![at(0, 0)]);
        assert!(duplicate_starts(&slots[..2]).is_empty());
    }

    #[test]
    fn alignment_checks_length_grid_and_order() {
        let good = quarter_series(at(0, 0), &[1.0, 2.0]);
        assert_eq!(validate_alignment(&good, Resolution::QuarterHour), Ok(()));
        assert!(matches!(
            validate_alignment(&good, Resolution::Hour),
            Err(PriceSeriesError::Misaligned { minutes: 60, .. })
        ));
        let shifted = vec![slot(at(0, 7), 15, 1.0)];
        assert!(matches!(
            validate_alignment(&shifted, Resolution::QuarterHour),
            Err(PriceSeriesError::Misaligned { .. })
        ));
        let backwards = vec![good[1], good[0]];
        assert_eq!(
            validate_alignment(&backwards, Resolution::QuarterHour),
            Err(PriceSeriesError::Overlap {
                start: at(0, 0),
                previous_end: at(0, 30)
            })
        );
        let empty = vec![PriceSlot {
            start: at(1, 0),
            end: at(1, 0),
            price_eur_mwh: 0.0,
        }];
        assert!(matches!(
            validate_alignment(&empty, Resolution::QuarterHour),
            Err(PriceSeriesError::EmptySlot { .. })
        ));
    }
}
