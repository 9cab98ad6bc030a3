//! OpenAPI mirrors of core enums (core stays free of HTTP and documentation crates).
#![allow(dead_code)]

use utoipa::ToSchema;

/// A day-ahead bidding zone.
#[derive(ToSchema, serde::Serialize)]
pub enum PriceZone {
    #[serde(rename = "AT")]
    At,
    #[serde(rename = "AT_HOURLY")]
    AtHourly,
    #[serde(rename = "BE")]
    Be,
    #[serde(rename = "CH")]
    Ch,
    #[serde(rename = "EE")]
    Ee,
    #[serde(rename = "DE_LU")]
    DeLu,
    #[serde(rename = "HU")]
    Hu,
    #[serde(rename = "IT_CNOR")]
    ItCnor,
    #[serde(rename = "IT_CSUD")]
    ItCsud,
    #[serde(rename = "IT_NORD")]
    ItNord,
    #[serde(rename = "IT_PUN")]
    ItPun,
    #[serde(rename = "IT_SARD")]
    ItSard,
    #[serde(rename = "IT_SICI")]
    ItSici,
    #[serde(rename = "IT_SUD")]
    ItSud,
    #[serde(rename = "PT")]
    Pt,
    #[serde(rename = "RO")]
    Ro,
    #[serde(rename = "SE_1")]
    Se1,
    #[serde(rename = "SE_2")]
    Se2,
    #[serde(rename = "SE_3")]
    Se3,
    #[serde(rename = "SE_4")]
    Se4,
    #[serde(rename = "UK")]
    Uk,
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
