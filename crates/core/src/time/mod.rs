//! Pure time logic shared by the planner, the API, the importers and the backtest: local wall-clock
//! time to UTC (`local_to_utc`, `resolve_local`) and UTC calendar buckets (`calendar`).

pub mod calendar;

/// The weekdays as the API spells them, Monday first (charge-policy keys, tariff windows' days).
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};

/// What a local wall-clock time is in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalInstant {
    /// The usual case: one instant.
    Unique(DateTime<Utc>),
    /// The clocks went back (autumn): the wall clock showed this time twice.
    Repeated {
        earlier: DateTime<Utc>,
        later: DateTime<Utc>,
    },
    /// The clocks jumped over it (spring): `jump` is the instant of the jump, the first instant
    /// at which the wall clock shows this time or later.
    Skipped { jump: DateTime<Utc> },
}

/// Voltplan's one rule for a local time: the *first instant at which the wall clock of `tz` shows
/// `local` or later*. In an overlap (autumn) that is the earlier instant; in a gap (spring) the
/// instant the clocks jump. Both are the conservative reading for deadlines and day boundaries:
/// never later than the wall clock said.
pub fn local_to_utc<Z: TimeZone>(local: NaiveDateTime, tz: &Z) -> DateTime<Utc> {
    match resolve_local(local, tz) {
        LocalInstant::Unique(instant) => instant,
        LocalInstant::Repeated { earlier, .. } => earlier,
        LocalInstant::Skipped { jump } => jump,
    }
}

/// Every reading of `local` in `tz`, for callers with a rule of their own (files that list an
/// autumn hour twice, uploads that refuse ambiguous times).
pub fn resolve_local<Z: TimeZone>(local: NaiveDateTime, tz: &Z) -> LocalInstant {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(instant) => LocalInstant::Unique(instant.with_timezone(&Utc)),
        LocalResult::Ambiguous(one, other) => {
            let (one, other) = (one.with_timezone(&Utc), other.with_timezone(&Utc));
            LocalInstant::Repeated {
                earlier: one.min(other),
                later: one.max(other),
            }
        }
        LocalResult::None => LocalInstant::Skipped {
            jump: jump_over(local, tz),
        },
    }
}

/// The instant the clocks jump over the nonexistent `local`.
fn jump_over<Z: TimeZone>(local: NaiveDateTime, tz: &Z) -> DateTime<Utc> {
    let shows_local_or_later =
        |instant: DateTime<Utc>| instant.with_timezone(tz).naive_local() >= local;
    // A wall time before the gap, in steps of a quarter-hour (gaps are an hour or less in
    // practice; half a day is a generous bound).
    let before = (1..=48).find_map(|quarters| {
        let earlier_local = local - Duration::minutes(15 * quarters);
        tz.from_local_datetime(&earlier_local)
            .latest()
            .map(|instant| (earlier_local, instant.with_timezone(&Utc)))
    });
    let Some((before_local, mut low)) = before else {
        // No zone has such a gap; reading the wall time as UTC at least keeps the order of times.
        return local.and_utc();
    };
    // Still on the old offset, the wall clock would show `local` this much later; the clocks
    // have jumped by then. Bisect down to a second.
    let mut high = low + (local - before_local);
    if !shows_local_or_later(high) {
        return local.and_utc();
    }
    while high - low > Duration::seconds(1) {
        let middle = low + (high - low) / 2;
        if shows_local_or_later(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    // Zone transitions fall on whole seconds: the jump is the first whole second after `low`.
    DateTime::from_timestamp(low.timestamp() + 1, 0).unwrap_or(high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    const BERLIN: Tz = Tz::Europe__Berlin;

    fn wall(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn berlin_wall_clock_times_on_ordinary_and_dst_days() {
        for (local, at) in [
            ("2024-01-10T06:00:00", "2024-01-10T05:00:00Z"),
            ("2024-07-10T06:00:00", "2024-07-10T04:00:00Z"),
            // 2024-03-31: Berlin jumps from 02:00 CET to 03:00 CEST at 01:00 UTC; the skipped
            // times resolve to the jump.
            ("2024-03-31T01:59:59", "2024-03-31T00:59:59Z"),
            ("2024-03-31T02:00:00", "2024-03-31T01:00:00Z"),
            ("2024-03-31T02:30:15", "2024-03-31T01:00:00Z"),
            ("2024-03-31T02:30:00.5", "2024-03-31T01:00:00Z"),
            ("2024-03-31T02:59:59", "2024-03-31T01:00:00Z"),
            ("2024-03-31T03:00:00", "2024-03-31T01:00:00Z"),
            // 2024-10-27: 02:00–03:00 happens twice, first in CEST, then in CET; the earlier
            // instant wins.
            ("2024-10-27T02:00:00", "2024-10-27T00:00:00Z"),
            ("2024-10-27T02:30:00", "2024-10-27T00:30:00Z"),
            ("2024-10-27T03:00:00", "2024-10-27T02:00:00Z"),
        ] {
            assert_eq!(local_to_utc(wall(local), &BERLIN), utc(at), "{local}");
        }
    }

    #[test]
    fn resolving_names_every_reading() {
        assert_eq!(
            resolve_local(wall("2024-03-31T02:30:00"), &BERLIN),
            LocalInstant::Skipped {
                jump: utc("2024-03-31T01:00:00Z")
            }
        );
        assert_eq!(
            resolve_local(wall("2024-10-27T02:30:00"), &BERLIN),
            LocalInstant::Repeated {
                earlier: utc("2024-10-27T00:30:00Z"),
                later: utc("2024-10-27T01:30:00Z"),
            }
        );
        // 2024-09-08: Santiago de Chile skips midnight (00:00 to 01:00) at 04:00 UTC.
        assert_eq!(
            local_to_utc(wall("2024-09-08T00:00:00"), &Tz::America__Santiago),
            utc("2024-09-08T04:00:00Z")
        );
    }

    #[test]
    fn the_rule_is_the_first_instant_showing_the_time_or_later() {
        // Every minute of both Berlin DST days.
        for day in ["2024-03-31", "2024-10-27"] {
            let midnight = wall(&format!("{day}T00:00:00"));
            for minute in 0..24 * 60 {
                let local = midnight + Duration::minutes(minute);
                let at = local_to_utc(local, &BERLIN);
                assert!(at.with_timezone(&BERLIN).naive_local() >= local, "{local}");
                let before = (at - Duration::seconds(1)).with_timezone(&BERLIN);
                assert!(before.naive_local() < local, "{local}");
            }
        }
    }
}
