//! The fetcher's configuration: its ENTSO-E client from the environment, and when and how hard
//! it fetches.

use chrono::{Duration, NaiveTime};
use chrono_tz::Tz;
use voltplan_prices::{ENTSOE_API_URL, EntsoeClient, FetchError};

/// Environment variable holding the ENTSO-E security token.
pub const ENTSOE_TOKEN_ENV: &str = "ENTSOE_TOKEN";
/// Environment variable overriding the API endpoint (default [`ENTSOE_API_URL`]).
pub const ENTSOE_BASE_URL_ENV: &str = "ENTSOE_BASE_URL";

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
