//! When a failed delivery is tried again, and when Voltplan gives up.
//!
//! The delays are the Standard Webhooks specification's example schedule (section
//! "Deliverability and reliability"): after the immediate first attempt, 5 seconds, 5 minutes,
//! 30 minutes, 2 hours, 5 hours, 10 hours, 14 hours, 20 hours and 24 hours. Each delay is scaled
//! by a random factor in [0.8, 1.2) so that endpoints that failed together (an outage) are not
//! retried together, and a receiver's `Retry-After` is honoured by never retrying sooner.
//!
//! Voltplan keeps trying while the last attempt began within [`RETRY_WINDOW`] (24 hours) of the
//! first, so a failing endpoint is tried for at least 24 hours. With the schedule above that is
//! eight attempts over about 25 to 38 hours; the spec's longer tail (20 h, 24 h) is not reached,
//! but is used if attempts come faster than scheduled.

use chrono::{DateTime, Duration, Utc};

/// How long after the first attempt a new retry may still be scheduled: a delivery is tried for
/// at least this long before it is given up.
pub const RETRY_WINDOW: Duration = Duration::hours(24);

/// The delay before attempt `n + 2` after `n + 1` attempts, unjittered, in seconds (the spec's
/// example schedule). Past the end the last delay repeats.
const SCHEDULE_SECS: [i64; 9] = [
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
];

/// When to attempt a delivery next, or `None` to give up.
///
/// - `attempts_made`: attempts so far (0: none yet, which is due at once, at `now`).
/// - `first_attempt_at`: when the first attempt was made.
/// - `now`: when the last attempt ended (the delay counts from here, so a slow attempt does
///   not shorten the pause the receiver gets).
/// - `retry_after`: the receiver's `Retry-After`, if it sent one: the next attempt is never
///   sooner.
/// - `jitter`: a number in [0, 1) from the caller's random number generator (out-of-range
///   values are clamped); the delay is scaled by `0.8 + 0.4 * jitter`.
///
/// Gives up (`None`) when the next attempt would start more than [`RETRY_WINDOW`] plus its own
/// delay after `first_attempt_at`, that is, when the attempt just made began more than 24 hours
/// after the first: every delivery is tried for at least 24 hours. Pure: the caller brings the
/// clock and the randomness.
pub fn next_attempt_at(
    attempts_made: u32,
    first_attempt_at: DateTime<Utc>,
    now: DateTime<Utc>,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    if attempts_made == 0 {
        return Some(now);
    }
    let index = usize::try_from(attempts_made - 1)
        .unwrap_or(usize::MAX)
        .min(SCHEDULE_SECS.len() - 1);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let scaled_ms = (SCHEDULE_SECS[index] as f64 * 1000.0 * (0.8 + 0.4 * jitter)).round() as i64;
    let mut delay = Duration::milliseconds(scaled_ms);
    if let Some(retry_after) = retry_after
        && retry_after > delay
    {
        delay = retry_after;
    }
    let next = now.checked_add_signed(delay)?;
    if next.signed_duration_since(first_attempt_at) > RETRY_WINDOW + delay {
        return None;
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        "2025-03-01T12:00:00Z".parse().unwrap()
    }

    /// Every attempt's start until the schedule gives up, each attempt taking `attempt_time`.
    fn run(jitter: impl Fn(u32) -> f64, attempt_time: Duration) -> Vec<DateTime<Utc>> {
        let first = start();
        let mut starts = vec![first];
        let mut attempts = 1;
        while let Some(next) = next_attempt_at(
            attempts,
            first,
            *starts.last().unwrap() + attempt_time,
            None,
            jitter(attempts),
        ) {
            starts.push(next);
            attempts += 1;
            assert!(attempts < 100, "the schedule never gives up");
        }
        starts
    }

    #[test]
    fn unjittered_schedule_is_the_specs() {
        // jitter 0.5 scales by exactly 1.
        let starts = run(|_| 0.5, Duration::zero());
        let since: Vec<i64> = starts
            .iter()
            .map(|s| (*s - start()).num_seconds())
            .collect();
        // 00:00:00, 00:00:05, 00:05:05, 00:35:05, 02:35:05, 07:35:05, 17:35:05, 31:35:05 (spec table).
        assert_eq!(since, [0, 5, 305, 2105, 9305, 27305, 63305, 113705]);
    }

    #[test]
    fn tries_for_at_least_24_hours_and_gives_up() {
        for jitter in [0.0, 0.25, 0.5, 0.999_999] {
            for attempt_time in [Duration::zero(), Duration::seconds(30)] {
                let starts = run(|_| jitter, attempt_time);
                let last = *starts.last().unwrap();
                assert!(
                    last - start() >= RETRY_WINDOW,
                    "jitter {jitter}: tried only {:?}",
                    last - start()
                );
                // The attempt before the last began within the window, the last one after it.
                assert!(starts[starts.len() - 2] - start() <= RETRY_WINDOW);
                assert!(
                    next_attempt_at(
                        starts.len() as u32,
                        start(),
                        last + attempt_time,
                        None,
                        jitter
                    )
                    .is_none()
                );
            }
        }
        // Varying jitter per attempt (a fixed pseudo-random sequence).
        for seed in 1..50u32 {
            let starts = run(
                |n| ((n * 7919 + seed * 104_729) % 1000) as f64 / 1000.0,
                Duration::seconds(1),
            );
            assert!(*starts.last().unwrap() - start() >= RETRY_WINDOW);
        }
    }

    #[test]
    fn attempts_are_monotone_and_delays_grow() {
        let starts = run(|_| 0.5, Duration::zero());
        for pair in starts.windows(2) {
            assert!(pair[1] > pair[0]);
        }
        let delays: Vec<Duration> = starts.windows(2).map(|p| p[1] - p[0]).collect();
        for pair in delays.windows(2) {
            assert!(pair[1] >= pair[0], "{delays:?}");
        }
        // Past the spec's table the last delay repeats (attempts faster than scheduled).
        let first = start();
        let d = |n| next_attempt_at(n, first, first, None, 0.5).unwrap() - first;
        assert_eq!(d(9), Duration::hours(24));
        assert_eq!(d(50), Duration::hours(24));
        assert_eq!(d(u32::MAX), Duration::hours(24));
    }

    #[test]
    fn jitter_scales_between_80_and_120_percent() {
        let first = start();
        for attempts in 1..=9u32 {
            let at =
                |jitter| next_attempt_at(attempts, first, first, None, jitter).unwrap() - first;
            let base = Duration::seconds(SCHEDULE_SECS[attempts as usize - 1]);
            assert_eq!(at(0.0), base * 4 / 5);
            assert!(at(0.999_999) <= base * 6 / 5 && at(0.999_999) > base * 11 / 10);
            for j in [0.1, 0.3, 0.7, 0.9] {
                assert!(at(j) >= base * 4 / 5 && at(j) < base * 6 / 5);
            }
            // Out-of-range jitter is clamped, not trusted.
            assert_eq!(at(-3.0), at(0.0));
            assert_eq!(at(7.0), base * 6 / 5);
            assert_eq!(at(f64::NAN), base);
        }
    }

    #[test]
    fn retry_after_is_a_lower_bound() {
        let first = start();
        let now = first + Duration::seconds(1);
        // The schedule says ~5 s; the receiver asked for 2 minutes.
        assert_eq!(
            next_attempt_at(1, first, now, Some(Duration::minutes(2)), 0.9),
            Some(now + Duration::minutes(2))
        );
        // A shorter Retry-After than the schedule does not hasten the retry.
        assert_eq!(
            next_attempt_at(3, first, now, Some(Duration::seconds(10)), 0.5),
            Some(now + Duration::minutes(30))
        );
        // A Retry-After late in the window is still honoured, not a reason to give up...
        let late = first + Duration::hours(23);
        assert_eq!(
            next_attempt_at(6, first, late, Some(Duration::hours(24)), 0.5),
            Some(late + Duration::hours(24))
        );
        // ...but after 24 hours of trying nothing is scheduled.
        let after = first + Duration::hours(24) + Duration::seconds(1);
        assert_eq!(
            next_attempt_at(7, first, after, Some(Duration::seconds(5)), 0.5),
            None
        );
    }

    #[test]
    fn nothing_attempted_is_due_now() {
        assert_eq!(
            next_attempt_at(0, start(), start(), None, 0.3),
            Some(start())
        );
    }
}
