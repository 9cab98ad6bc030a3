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
//! series (UK, IT_PUN) are skipped. Time comes only from the injected [`Clock`](voltplan_core::Clock); [`PriceFetcher::run`]
//! sleeps in real time between rounds. State is kept in memory and shown by
//! [`PriceFetcher::status`].
//!
//! The files: configuration (`config.rs`), when to fetch what (`schedule.rs`), the fetch-and-store
//! round (`fetcher.rs`). None of them imports this file.

mod config;
mod fetcher;
mod schedule;

pub use config::{ENTSOE_BASE_URL_ENV, ENTSOE_TOKEN_ENV, PriceFetchConfig, entsoe_client_from_env};
pub use fetcher::{
    ENTSOE_SOURCE, FetchAttempt, FetchOutcome, FetchRound, PriceFetchError, PriceFetcher,
    ZoneFetchStatus,
};
pub use schedule::zones_to_fetch;
