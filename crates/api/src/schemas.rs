//! OpenAPI mirrors of core enums (core stays free of HTTP and documentation crates).
#![allow(dead_code)]

use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// A string schema of exactly `values`. Callers pass the table their parser reads, so the
/// document can neither list a value the server refuses nor miss one it accepts.
pub(crate) fn accepted_values<'a>(
    description: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().map(str::to_owned)))
        .description(Some(description))
        .into()
}

/// Declares a documentation-only type whose schema is [`accepted_values`] of `$values` (for
/// `value_type = …` on a parameter or field that the handler reads as text).
macro_rules! accepted_values_type {
    (#[doc = $doc:literal] $vis:vis struct $name:ident = $values:expr;) => {
        #[doc = $doc]
        #[derive(Debug)]
        $vis struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::schemas::accepted_values($doc.trim(), $values)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use accepted_values_type;

accepted_values_type! {
    /// A day-ahead bidding zone.
    pub struct PriceZone = voltplan_core::PriceZone::ALL.map(voltplan_core::PriceZone::as_str);
}

/// Health of a status dimension.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusLevel {
    Ok,
    Warning,
    Error,
    Unknown,
}

/// `available` (plugged in, not full, not charging), `requested` (accepted, not yet confirmed),
/// `ongoing`, or `unavailable` (unplugged, full or already charging).
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoostState {
    Available,
    Requested,
    Unavailable,
    Ongoing,
}

/// A wallbox's status pill (`voltplan_core::charger::Mode`): offline, faulted or unavailable →
/// `UNAVAILABLE`, charging → `CHARGING`, a car plugged in → `PLUGGED_IN`, available → `READY`, no
/// status yet → `UNKNOWN`.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WallboxMode {
    Ready,
    PluggedIn,
    Charging,
    Unavailable,
    Unknown,
}

/// A wallbox's OCPP connection: `online` (a WebSocket is open), `offline` (it was connected once),
/// `never_connected`.
#[derive(ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WallboxConnection {
    Online,
    Offline,
    NeverConnected,
}

/// The price zones' names, as every body that names a zone accepts them.
pub(crate) const ZONES: [&str; 21] = {
    let mut names = [""; 21];
    let mut i = 0;
    while i < 21 {
        names[i] = voltplan_core::PriceZone::ALL[i].as_str();
        i += 1;
    }
    names
};
