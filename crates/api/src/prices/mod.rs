//! Day-ahead prices: the Podero-compatible upload (`PATCH …/trading/dayahead/prices`,
//! `upload.rs`) and the reads that are Voltplan's own extension (`GET
//! /api/partners/v2.0/prices/{price_zone}` and `…/prices/fetch-status`, `read.rs`).

pub mod read;
pub mod upload;

use chrono::{DateTime, Duration, Utc};
use voltplan_core::PriceZone;
use voltplan_core::validation::FieldError;

/// A 422 at `loc` for an unknown price zone, listing the known ones.
pub(super) fn zone_error(loc: &[&str], given: &str) -> FieldError {
    let names: Vec<&str> = PriceZone::ALL.iter().map(|z| z.as_str()).collect();
    FieldError::at(
        loc,
        "enum",
        format!(
            "Unknown price zone {given:?}; expected one of: {}",
            names.join(", ")
        ),
    )
}

/// Whether `instant` starts a slot of length `step` on the UTC grid.
pub(super) fn on_grid(instant: DateTime<Utc>, step: Duration) -> bool {
    instant.timestamp_subsec_nanos() == 0
        && instant.timestamp().rem_euclid(step.num_seconds().max(1)) == 0
}
