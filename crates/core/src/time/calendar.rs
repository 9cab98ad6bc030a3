//! Calendar buckets aligned in **UTC**: days start at 00:00 UTC, weeks on Monday, quarters in
//! January, April, July and October. The statistics endpoints (savings, `/data`) use UTC because
//! Podero does not say which zone it uses, and UTC is the one every client can reproduce.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc};

/// A bucket size, by its Podero name (`15MIN` … `1YEAR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    QuarterHour,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// A bucket's `[start, end)`.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// 00:00 UTC of `date`.
pub fn utc_midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

/// `[from 00:00 UTC, to + 1 day 00:00 UTC)`: both days inclusive; `None` past the last date.
pub fn whole_days(from: NaiveDate, to: NaiveDate) -> Option<Span> {
    Some((utc_midnight(from), utc_midnight(to.succ_opt()?)))
}

impl Bucket {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "15MIN" => Bucket::QuarterHour,
            "1HOUR" => Bucket::Hour,
            "1DAY" => Bucket::Day,
            "1WEEK" => Bucket::Week,
            "1MONTH" => Bucket::Month,
            "1QUARTER" => Bucket::Quarter,
            "1YEAR" => Bucket::Year,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Bucket::QuarterHour => "15MIN",
            Bucket::Hour => "1HOUR",
            Bucket::Day => "1DAY",
            Bucket::Week => "1WEEK",
            Bucket::Month => "1MONTH",
            Bucket::Quarter => "1QUARTER",
            Bucket::Year => "1YEAR",
        }
    }

    /// Start of the bucket containing `t`.
    pub fn floor(self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let date = t.date_naive();
        Some(match self {
            Bucket::QuarterHour | Bucket::Hour => {
                let step = if self == Bucket::Hour { 3600 } else { 900 };
                let secs = t.timestamp().div_euclid(step) * step;
                DateTime::from_timestamp(secs, 0)?
            }
            Bucket::Day => utc_midnight(date),
            Bucket::Week => utc_midnight(
                date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            ),
            Bucket::Month => utc_midnight(NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?),
            Bucket::Quarter => {
                let month = (date.month0() / 3) * 3 + 1;
                utc_midnight(NaiveDate::from_ymd_opt(date.year(), month, 1)?)
            }
            Bucket::Year => utc_midnight(NaiveDate::from_ymd_opt(date.year(), 1, 1)?),
        })
    }

    /// Start of the bucket after the one starting at `start`.
    pub fn next(self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Bucket::QuarterHour => start.checked_add_signed(Duration::minutes(15)),
            Bucket::Hour => start.checked_add_signed(Duration::hours(1)),
            Bucket::Day => start.checked_add_signed(Duration::days(1)),
            Bucket::Week => start.checked_add_signed(Duration::weeks(1)),
            Bucket::Month => start.checked_add_months(Months::new(1)),
            Bucket::Quarter => start.checked_add_months(Months::new(3)),
            Bucket::Year => start.checked_add_months(Months::new(12)),
        }
    }

    /// The buckets covering `[from, to)`, each clipped to the range; `None` past `max` buckets.
    pub fn split(self, from: DateTime<Utc>, to: DateTime<Utc>, max: i64) -> Option<Vec<Span>> {
        let mut out = Vec::new();
        let mut start = self.floor(from)?;
        while start < to {
            let end = self.next(start)?;
            out.push((start.max(from), end.min(to)));
            if out.len() as i64 > max {
                return None;
            }
            start = end;
        }
        Some(out)
    }
}

/// Index of the bucket containing `t` (buckets sorted and contiguous).
pub fn bucket_of(buckets: &[Span], t: DateTime<Utc>) -> Option<usize> {
    let i = buckets.partition_point(|(_, end)| *end <= t);
    buckets.get(i).filter(|(start, _)| *start <= t).map(|_| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn buckets_are_aligned_in_utc_and_clipped_to_the_range() {
        let b = Bucket::Month
            .split(t("2026-01-15T00:00:00Z"), t("2026-03-02T00:00:00Z"), 100)
            .unwrap();
        assert_eq!(
            b,
            vec![
                (t("2026-01-15T00:00:00Z"), t("2026-02-01T00:00:00Z")),
                (t("2026-02-01T00:00:00Z"), t("2026-03-01T00:00:00Z")),
                (t("2026-03-01T00:00:00Z"), t("2026-03-02T00:00:00Z")),
            ]
        );
        // 2026-11-26 is a Thursday: its week starts on Monday the 23rd.
        assert_eq!(
            Bucket::Week.floor(t("2026-11-26T12:00:00Z")),
            Some(t("2026-11-23T00:00:00Z"))
        );
        assert_eq!(
            Bucket::Quarter.floor(t("2026-11-26T12:00:00Z")),
            Some(t("2026-10-01T00:00:00Z"))
        );
        assert_eq!(
            Bucket::QuarterHour.floor(t("2026-11-26T12:44:59Z")),
            Some(t("2026-11-26T12:30:00Z"))
        );
        assert!(
            Bucket::QuarterHour
                .split(t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"), 95)
                .is_none()
        );
        assert_eq!(bucket_of(&b, t("2026-02-01T00:00:00Z")), Some(1));
        assert_eq!(bucket_of(&b, t("2026-03-02T00:00:00Z")), None);
    }

    #[test]
    fn days_are_utc_days_whatever_the_clocks_do() {
        // The Berlin DST days are 24 hours long in UTC buckets.
        let b = Bucket::Day
            .split(t("2026-03-28T00:00:00Z"), t("2026-03-31T00:00:00Z"), 10)
            .unwrap();
        assert!(b.iter().all(|(s, e)| *e - *s == Duration::days(1)));
        let hours = Bucket::Hour
            .split(t("2026-10-25T00:00:00Z"), t("2026-10-26T00:00:00Z"), 100)
            .unwrap();
        assert_eq!(hours.len(), 24);
        let from = NaiveDate::from_ymd_opt(2026, 2, 27).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
        assert_eq!(
            whole_days(from, to),
            Some((t("2026-02-27T00:00:00Z"), t("2026-03-01T00:00:00Z")))
        );
    }

    #[test]
    fn year_and_quarter_buckets_follow_month_lengths() {
        let b = Bucket::Quarter
            .split(t("2025-12-15T00:00:00Z"), t("2026-07-02T00:00:00Z"), 10)
            .unwrap();
        let starts: Vec<_> = b.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            starts,
            vec![
                t("2025-12-15T00:00:00Z"),
                t("2026-01-01T00:00:00Z"),
                t("2026-04-01T00:00:00Z"),
                t("2026-07-01T00:00:00Z"),
            ]
        );
        assert_eq!(
            Bucket::Year.next(t("2024-01-01T00:00:00Z")),
            Some(t("2025-01-01T00:00:00Z"))
        );
        for name in [
            "15MIN", "1HOUR", "1DAY", "1WEEK", "1MONTH", "1QUARTER", "1YEAR",
        ] {
            assert_eq!(Bucket::parse(name).map(Bucket::name), Some(name));
        }
        assert_eq!(Bucket::parse("1day"), None);
    }
}
