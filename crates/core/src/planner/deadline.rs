//! Turning a local wall-clock deadline ("06:00 in Vienna") into the next instant.
//!
//! Definition used throughout: the deadline is the *first instant at which the zone's wall clock
//! shows the deadline time or later* ([`local_to_utc`]). For an ambiguous local time (autumn,
//! clocks go back) that is the earlier of the two instants; for a nonexistent one (spring gap) it
//! is the instant the clocks jump. Both are the conservative reading: the car is never promised
//! later than the driver meant.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::time::local_to_utc;

use super::input::DeadlineRule;

/// A resolved deadline: when, and what level must be reached by then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadline {
    pub at: DateTime<Utc>,
    pub target_pct: f64,
}

/// The next deadline strictly after `now`, or `None` when the rule has none. `tz` is the price
/// zone's time zone; a weekly policy with a time zone of its own is read in that one instead.
pub fn next_deadline(rule: &DeadlineRule, now: DateTime<Utc>, tz: Tz) -> Option<Deadline> {
    let tz = match rule {
        DeadlineRule::Weekly { tz: Some(own), .. } => *own,
        _ => tz,
    };
    let today = now.with_timezone(&tz).date_naive();
    // Eight days cover "later today" plus a full week of weekday entries.
    (0..8).find_map(|offset| {
        let date = today.checked_add_signed(Duration::days(offset))?;
        let (time, target_pct) = match rule {
            DeadlineRule::None => return None,
            DeadlineRule::Daily { at, target_pct } => (*at, *target_pct),
            DeadlineRule::Weekly { days, .. } => {
                days[date.weekday().num_days_from_monday() as usize]?
            }
        };
        let at = local_to_utc(date.and_time(time), &tz);
        (at > now).then_some(Deadline { at, target_pct })
    })
}

/// The same local wall-clock time `days` earlier (for forecasts by day-of-week/time-of-day).
pub fn same_local_time_days_before(t: DateTime<Utc>, days: i64, tz: Tz) -> Option<DateTime<Utc>> {
    let local = t.with_timezone(&tz).naive_local();
    let date: NaiveDate = local.date().checked_sub_signed(Duration::days(days))?;
    Some(local_to_utc(date.and_time(local.time()), &tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn daily(h: u32, m: u32) -> DeadlineRule {
        DeadlineRule::Daily {
            at: NaiveTime::from_hms_opt(h, m, 0).unwrap(),
            target_pct: 80.0,
        }
    }

    #[test]
    fn next_occurrence_is_today_or_tomorrow_in_local_time() {
        let tz = Tz::Europe__Berlin;
        // 20:00 UTC = 21:00 CET: 06:00 is tomorrow.
        let d = next_deadline(&daily(6, 0), utc("2024-01-10T20:00:00Z"), tz).unwrap();
        assert_eq!(d.at, utc("2024-01-11T05:00:00Z"));
        // 03:00 UTC = 04:00 CET: 06:00 is later today.
        let d = next_deadline(&daily(6, 0), utc("2024-01-10T03:00:00Z"), tz).unwrap();
        assert_eq!(d.at, utc("2024-01-10T05:00:00Z"));
        // Exactly at the deadline: the next one.
        let d = next_deadline(&daily(6, 0), utc("2024-01-10T05:00:00Z"), tz).unwrap();
        assert_eq!(d.at, utc("2024-01-11T05:00:00Z"));
    }

    #[test]
    fn dst_gap_resolves_to_the_jump_and_overlap_to_the_earlier_instant() {
        let tz = Tz::Europe__Berlin;
        // 2024-03-31 02:30 does not exist in Berlin; clocks jump at 01:00 UTC.
        let d = next_deadline(&daily(2, 30), utc("2024-03-30T22:00:00Z"), tz).unwrap();
        assert_eq!(d.at, utc("2024-03-31T01:00:00Z"));
        // 2024-10-27 02:30 happens twice: 00:30 UTC (CEST) and 01:30 UTC (CET).
        let d = next_deadline(&daily(2, 30), utc("2024-10-26T22:00:00Z"), tz).unwrap();
        assert_eq!(d.at, utc("2024-10-27T00:30:00Z"));
    }

    #[test]
    fn weekly_policy_uses_the_weekdays_entry_and_skips_empty_days() {
        let tz = Tz::Europe__Vienna;
        let mut days = [None; 7];
        // Only Friday: 07:00, 90 %.
        days[4] = Some((NaiveTime::from_hms_opt(7, 0, 0).unwrap(), 90.0));
        // 2024-01-10 is a Wednesday.
        let d = next_deadline(
            &DeadlineRule::Weekly { days, tz: None },
            utc("2024-01-10T12:00:00Z"),
            tz,
        )
        .unwrap();
        assert_eq!(d.at, utc("2024-01-12T06:00:00Z"));
        assert_eq!(d.target_pct, 90.0);
        assert_eq!(
            next_deadline(&DeadlineRule::None, utc("2024-01-10T12:00:00Z"), tz),
            None
        );
    }

    #[test]
    fn a_weekly_policys_own_time_zone_wins_over_the_zones() {
        let zone_tz = Tz::Europe__Vienna;
        let mut days = [None; 7];
        // Friday 07:00, 90 %.
        days[4] = Some((NaiveTime::from_hms_opt(7, 0, 0).unwrap(), 90.0));
        let now = utc("2024-01-10T12:00:00Z");
        let vienna = next_deadline(&DeadlineRule::Weekly { days, tz: None }, now, zone_tz).unwrap();
        let london = next_deadline(
            &DeadlineRule::Weekly {
                days,
                tz: Some(Tz::Europe__London),
            },
            now,
            zone_tz,
        )
        .unwrap();
        // 07:00 in Vienna (CET) is 06:00 UTC; 07:00 in London (GMT) is 07:00 UTC.
        assert_eq!(vienna.at, utc("2024-01-12T06:00:00Z"));
        assert_eq!(london.at, utc("2024-01-12T07:00:00Z"));
        assert_eq!(london.at - vienna.at, Duration::hours(1));
        assert_eq!(london.target_pct, 90.0);
    }

    #[test]
    fn the_weekday_is_the_policys_time_zones() {
        // 2024-01-11 23:30 UTC is Thursday 23:30 in London and already Friday 00:30 in Vienna:
        // Friday 00:45 is a quarter of an hour away in Vienna, an hour and a quarter in London.
        let mut days = [None; 7];
        days[4] = Some((NaiveTime::from_hms_opt(0, 45, 0).unwrap(), 80.0));
        let now = utc("2024-01-11T23:30:00Z");
        let vienna = next_deadline(
            &DeadlineRule::Weekly { days, tz: None },
            now,
            Tz::Europe__Vienna,
        )
        .unwrap();
        let london = next_deadline(
            &DeadlineRule::Weekly {
                days,
                tz: Some(Tz::Europe__London),
            },
            now,
            Tz::Europe__Vienna,
        )
        .unwrap();
        assert_eq!(vienna.at, utc("2024-01-11T23:45:00Z"));
        assert_eq!(london.at, utc("2024-01-12T00:45:00Z"));
    }
}
