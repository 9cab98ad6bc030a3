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
