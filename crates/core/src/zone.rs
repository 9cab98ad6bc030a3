//! Day-ahead bidding zones ("price zones") as Podero names them, and what Voltplan knows about each.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A price zone, spelt exactly as in the Podero Partner API v2.0 `PriceZone` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// The native length of one price slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resolution {
    #[serde(rename = "15MIN")]
    QuarterHour,
    #[serde(rename = "1HOUR")]
    Hour,
}

impl Resolution {
    pub const fn minutes(self) -> i64 {
        match self {
            Resolution::QuarterHour => 15,
            Resolution::Hour => 60,
        }
    }
}

/// Where a zone's prices come from when no partner uploaded its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceSource {
    /// ENTSO-E Transparency Platform, document type A44, for this EIC area.
    Entsoe { eic: &'static str },
    /// Derived from another zone (hourly means of its quarter-hour prices).
    HourlyMeanOf(PriceZone),
    /// No public day-ahead series on ENTSO-E: prices come from partner uploads or imported files.
    UploadOrFile,
}

/// What Voltplan knows about one price zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneInfo {
    pub zone: PriceZone,
    pub name: &'static str,
    /// ENTSO-E EIC area code, where one exists (IT_PUN and UK have none on the platform).
    pub eic: Option<&'static str>,
    pub time_zone: Tz,
    pub currency: &'static str,
    pub resolution: Resolution,
    pub source: PriceSource,
}

impl PriceZone {
    pub const ALL: [PriceZone; 21] = [
        PriceZone::At,
        PriceZone::AtHourly,
        PriceZone::Be,
        PriceZone::Ch,
        PriceZone::Ee,
        PriceZone::DeLu,
        PriceZone::Hu,
        PriceZone::ItCnor,
        PriceZone::ItCsud,
        PriceZone::ItNord,
        PriceZone::ItPun,
        PriceZone::ItSard,
        PriceZone::ItSici,
        PriceZone::ItSud,
        PriceZone::Pt,
        PriceZone::Ro,
        PriceZone::Se1,
        PriceZone::Se2,
        PriceZone::Se3,
        PriceZone::Se4,
        PriceZone::Uk,
    ];

    /// The wire name, e.g. `"DE_LU"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PriceZone::At => "AT",
            PriceZone::AtHourly => "AT_HOURLY",
            PriceZone::Be => "BE",
            PriceZone::Ch => "CH",
            PriceZone::Ee => "EE",
            PriceZone::DeLu => "DE_LU",
            PriceZone::Hu => "HU",
            PriceZone::ItCnor => "IT_CNOR",
            PriceZone::ItCsud => "IT_CSUD",
            PriceZone::ItNord => "IT_NORD",
            PriceZone::ItPun => "IT_PUN",
            PriceZone::ItSard => "IT_SARD",
            PriceZone::ItSici => "IT_SICI",
            PriceZone::ItSud => "IT_SUD",
            PriceZone::Pt => "PT",
            PriceZone::Ro => "RO",
            PriceZone::Se1 => "SE_1",
            PriceZone::Se2 => "SE_2",
            PriceZone::Se3 => "SE_3",
            PriceZone::Se4 => "SE_4",
            PriceZone::Uk => "UK",
        }
    }

    pub fn info(self) -> ZoneInfo {
        use PriceZone::*;
        use Resolution::*;
        let (name, eic, time_zone, currency, resolution): (_, Option<&'static str>, Tz, _, _) =
            match self {
                At => (
                    "Austria",
                    Some("10YAT-APG------L"),
                    Tz::Europe__Vienna,
                    "EUR",
                    QuarterHour,
                ),
                AtHourly => (
                    "Austria (hourly)",
                    Some("10YAT-APG------L"),
                    Tz::Europe__Vienna,
                    "EUR",
                    Hour,
                ),
                Be => (
                    "Belgium",
                    Some("10YBE----------2"),
                    Tz::Europe__Brussels,
                    "EUR",
                    QuarterHour,
                ),
                // Switzerland is not coupled to SDAC; its day-ahead auction clears hourly.
                Ch => (
                    "Switzerland",
                    Some("10YCH-SWISSGRIDZ"),
                    Tz::Europe__Zurich,
                    "EUR",
                    Hour,
                ),
                Ee => (
                    "Estonia",
                    Some("10Y1001A1001A39I"),
                    Tz::Europe__Tallinn,
                    "EUR",
                    QuarterHour,
                ),
                DeLu => (
                    "Germany-Luxembourg",
                    Some("10Y1001A1001A82H"),
                    Tz::Europe__Berlin,
                    "EUR",
                    QuarterHour,
                ),
                Hu => (
                    "Hungary",
                    Some("10YHU-MAVIR----U"),
                    Tz::Europe__Budapest,
                    "EUR",
                    QuarterHour,
                ),
                ItCnor => (
                    "Italy Centre-North",
                    Some("10Y1001A1001A70O"),
                    Tz::Europe__Rome,
                    "EUR",
                    QuarterHour,
                ),
                ItCsud => (
                    "Italy Centre-South",
                    Some("10Y1001A1001A71M"),
                    Tz::Europe__Rome,
                    "EUR",
                    QuarterHour,
                ),
                ItNord => (
                    "Italy North",
                    Some("10Y1001A1001A73I"),
                    Tz::Europe__Rome,
                    "EUR",
                    QuarterHour,
                ),
                // PUN is Italy's national single purchase price, published by GME, not ENTSO-E.
                ItPun => ("Italy PUN", None, Tz::Europe__Rome, "EUR", Hour),
                ItSard => (
                    "Italy Sardinia",
                    Some("10Y1001A1001A74G"),
                    Tz::Europe__Rome,
                    "EUR",
                    QuarterHour,
                ),
                ItSici => (
                    "Italy Sicily",
                    Some("10Y1001A1001A75E"),
                    Tz::Europe__Rome,
                    "EUR",
                    QuarterHour,
                ),
                ItSud => (
                    "Italy South",
                    Some("10Y1001A1001A788"),
                    Tz::Europe__Rome,
                    "EUR",
                    QuarterHour,
                ),
                Pt => (
                    "Portugal",
                    Some("10YPT-REN------W"),
                    Tz::Europe__Lisbon,
                    "EUR",
                    QuarterHour,
                ),
                Ro => (
                    "Romania",
                    Some("10YRO-TEL------P"),
                    Tz::Europe__Bucharest,
                    "EUR",
                    QuarterHour,
                ),
                Se1 => (
                    "Sweden SE1",
                    Some("10Y1001A1001A44P"),
                    Tz::Europe__Stockholm,
                    "EUR",
                    QuarterHour,
                ),
                Se2 => (
                    "Sweden SE2",
                    Some("10Y1001A1001A45N"),
                    Tz::Europe__Stockholm,
                    "EUR",
                    QuarterHour,
                ),
                Se3 => (
                    "Sweden SE3",
                    Some("10Y1001A1001A46L"),
                    Tz::Europe__Stockholm,
                    "EUR",
                    QuarterHour,
                ),
                Se4 => (
                    "Sweden SE4",
                    Some("10Y1001A1001A47J"),
                    Tz::Europe__Stockholm,
                    "EUR",
                    QuarterHour,
                ),
                // Great Britain left the ENTSO-E platform's day-ahead data after Brexit.
                Uk => ("United Kingdom", None, Tz::Europe__London, "GBP", Hour),
            };
        let source = match (self, eic) {
            (AtHourly, _) => PriceSource::HourlyMeanOf(At),
            (_, Some(eic)) => PriceSource::Entsoe { eic },
            (_, None) => PriceSource::UploadOrFile,
        };
        ZoneInfo {
            zone: self,
            name,
            eic,
            time_zone,
            currency,
            resolution,
            source,
        }
    }

    pub fn time_zone(self) -> Tz {
        self.info().time_zone
    }
}

impl fmt::Display for PriceZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown price zone {0:?}")]
pub struct UnknownPriceZone(pub String);

impl FromStr for PriceZone {
    type Err = UnknownPriceZone;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PriceZone::ALL
            .into_iter()
            .find(|z| z.as_str() == s)
            .ok_or_else(|| UnknownPriceZone(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_serde_and_from_str() {
        for zone in PriceZone::ALL {
            let json = serde_json_like(zone);
            assert_eq!(json, format!("\"{}\"", zone.as_str()));
            assert_eq!(zone.as_str().parse::<PriceZone>(), Ok(zone));
        }
        assert!("DE".parse::<PriceZone>().is_err());
    }

    fn serde_json_like(zone: PriceZone) -> String {
        // core has no serde_json dependency; the Display form is the serde form by construction.
        format!("\"{zone}\"")
    }

    #[test]
    fn zones_without_entsoe_series_take_uploads() {
        assert_eq!(PriceZone::Uk.info().source, PriceSource::UploadOrFile);
        assert_eq!(PriceZone::ItPun.info().source, PriceSource::UploadOrFile);
        assert_eq!(
            PriceZone::AtHourly.info().source,
            PriceSource::HourlyMeanOf(PriceZone::At)
        );
        assert_eq!(
            PriceZone::DeLu.info().source,
            PriceSource::Entsoe {
                eic: "10Y1001A1001A82H"
            }
        );
    }
}
