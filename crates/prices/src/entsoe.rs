//! Parser for ENTSO-E Transparency Platform day-ahead price documents (document type A44).
//!
//! The platform answers a price query with either a `Publication_MarketDocument` (prices) or an
//! `Acknowledgement_MarketDocument` (no data, or a rejected query). Domain rules applied here:
//!
//! * Periods carry their own UTC `timeInterval` and `resolution` (`PT15M` since the SDAC
//!   15-minute go-live on 2025-10-01, `PT60M` before and for non-SDAC zones such as CH), so the
//!   number of slots is derived from the interval: DST days have 92 or 100 quarter-hours.
//! * Curve type `A03` omits a position whose price equals the previous position's; the omitted
//!   positions are filled with the previous price up to the period's end.
//! * DE-LU and AT publish the SDAC auction as classification sequence 1 and the separate EXAA
//!   10:15 auction as sequence 2 in the same document. Only the SDAC sequence is taken. A series
//!   without a classification sequence (every other zone) is always taken.
//! * An acknowledgement with reason code 999 "No matching data found" means the day is not
//!   published yet (the SDAC results appear around 12:45 CET), which is not an error.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde::Deserialize;
use voltplan_core::PriceSlot;

/// The classification sequence under which ENTSO-E publishes the SDAC (EPEX/Nord Pool coupled)
/// day-ahead price for zones that also carry an EXAA price (DE-LU, AT). Sequence 2 is EXAA.
pub const SDAC_SEQUENCE: u32 = 1;

/// ENTSO-E's reason code for every rejected or empty query; the text tells them apart.
const ACK_REASON_CODE_NO_DATA: &str = "999";
const NO_MATCHING_DATA_TEXT: &str = "no matching data";

/// `contract_MarketAgreement.type` of the day-ahead market; some zones (ES) also publish
/// intraday auction prices (`A07`) in A44 answers.
const DAY_AHEAD_CONTRACT: &str = "A01";

/// What an A44 query returned.
#[derive(Debug, Clone, PartialEq)]
pub enum EntsoeDocument {
    /// Dense, ascending, non-overlapping price slots of the selected series.
    Prices(Vec<PriceSlot>),
    /// The platform has no data for the interval yet; ask again later.
    NotYetPublished { reason: String },
}

/// A document that cannot be turned into prices.
#[derive(Debug, thiserror::Error)]
pub enum EntsoeParseError {
    #[error("document is not well-formed XML: {0}")]
    Xml(#[from] quick_xml::Error),
    #[error("document does not match the A44 schema: {0}")]
    Schema(#[from] quick_xml::DeError),
    #[error("document has no root element")]
    NoRootElement,
    #[error(
        "unexpected root element <{0}>, expected Publication_MarketDocument or Acknowledgement_MarketDocument"
    )]
    UnexpectedRoot(String),
    #[error("ENTSO-E rejected the query (reason {code}): {text}")]
    Rejected { code: String, text: String },
    #[error("TimeSeries {series}: unsupported resolution {resolution:?}")]
    UnsupportedResolution { series: String, resolution: String },
    #[error("TimeSeries {series}: unsupported curve type {curve_type:?}")]
    UnsupportedCurveType { series: String, curve_type: String },
    #[error("TimeSeries {series}: invalid timestamp {value:?}")]
    InvalidTimestamp { series: String, value: String },
    #[error(
        "TimeSeries {series}: period {start}..{end} is not a whole number of {minutes}-minute slots"
    )]
    RaggedPeriod {
        series: String,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        minutes: i64,
    },
    #[error("TimeSeries {series}: point position {position} is outside 1..={slots}")]
    PositionOutOfRange {
        series: String,
        position: u32,
        slots: u32,
    },
    #[error("TimeSeries {series}: point position {position} appears twice")]
    DuplicatePosition { series: String, position: u32 },
    #[error("TimeSeries {series}: A03 curve omits position 1, so there is no price to repeat")]
    MissingFirstPosition { series: String },
    #[error(
        "two selected series disagree on the price of the slot starting {start}: {first} vs {second}"
    )]
    ConflictingSeries {
        start: DateTime<Utc>,
        first: f64,
        second: f64,
    },
}

#[derive(Debug, Deserialize)]
struct PublicationMarketDocument {
    #[serde(rename = "TimeSeries", default)]
    time_series: Vec<TimeSeries>,
}

#[derive(Debug, Deserialize)]
struct TimeSeries {
    #[serde(rename = "mRID", default)]
    m_rid: String,
    #[serde(rename = "contract_MarketAgreement.type")]
    contract_type: Option<String>,
    #[serde(rename = "classificationSequence_AttributeInstanceComponent.position")]
    classification_sequence: Option<u32>,
    #[serde(rename = "curveType")]
    curve_type: Option<String>,
    /// The bidding zone the prices are for, as an EIC code.
    #[serde(rename = "in_Domain.mRID")]
    in_domain: Option<Domain>,
    #[serde(rename = "Period", default)]
    periods: Vec<Period>,
}

#[derive(Debug, Deserialize)]
struct Domain {
    #[serde(rename = "$text")]
    eic: String,
}

#[derive(Debug, Deserialize)]
struct Period {
    #[serde(rename = "timeInterval")]
    time_interval: TimeInterval,
    resolution: String,
    #[serde(rename = "Point", default)]
    points: Vec<Point>,
}

#[derive(Debug, Deserialize)]
struct TimeInterval {
    start: String,
    end: String,
}

#[derive(Debug, Deserialize)]
struct Point {
    position: u32,
    #[serde(rename = "price.amount")]
    price: f64,
}

#[derive(Debug, Deserialize)]
struct AcknowledgementMarketDocument {
    #[serde(rename = "Reason", default)]
    reasons: Vec<Reason>,
}

#[derive(Debug, Deserialize)]
struct Reason {
    #[serde(default)]
    code: String,
    #[serde(default)]
    text: String,
}

/// The bidding zones (EIC codes, `in_Domain.mRID`) a price document's series are for, each once.
/// An acknowledgement (no data) has none.
pub fn price_areas(xml: &str) -> Result<Vec<String>, EntsoeParseError> {
    if root_element_name(xml)? != "Publication_MarketDocument" {
        return Ok(Vec::new());
    }
    let document: PublicationMarketDocument = quick_xml::de::from_str(xml)?;
    let mut areas: Vec<String> = Vec::new();
    for series in document.time_series {
        if let Some(Domain { eic }) = series.in_domain
            && !areas.contains(&eic)
        {
            areas.push(eic.trim().to_owned());
        }
    }
    Ok(areas)
}

/// Parses an A44 answer, taking the SDAC series ([`SDAC_SEQUENCE`]).
pub fn parse(xml: &str) -> Result<EntsoeDocument, EntsoeParseError> {
    parse_with_sequence(xml, SDAC_SEQUENCE)
}

/// Parses an A44 answer, taking series of classification sequence `sequence` (and every series
/// that has no sequence). Use `2` to read the EXAA auction of DE-LU/AT.
pub fn parse_with_sequence(xml: &str, sequence: u32) -> Result<EntsoeDocument, EntsoeParseError> {
    match root_element_name(xml)?.as_str() {
        "Publication_MarketDocument" => {
            let document: PublicationMarketDocument = quick_xml::de::from_str(xml)?;
            prices_of(document, sequence)
        }
        "Acknowledgement_MarketDocument" => {
            let document: AcknowledgementMarketDocument = quick_xml::de::from_str(xml)?;
            acknowledgement_outcome(document)
        }
        other => Err(EntsoeParseError::UnexpectedRoot(other.to_owned())),
    }
}

fn root_element_name(xml: &str) -> Result<String, EntsoeParseError> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event()? {
            Event::Start(element) | Event::Empty(element) => {
                let local = element.local_name();
                return Ok(local.into_inner().to_owned());
            }
            Event::Eof => return Err(EntsoeParseError::NoRootElement),
            _ => {}
        }
    }
}

fn acknowledgement_outcome(
    document: AcknowledgementMarketDocument,
) -> Result<EntsoeDocument, EntsoeParseError> {
    let Some(reason) = document.reasons.into_iter().next() else {
        return Err(EntsoeParseError::Rejected {
            code: String::new(),
            text: "acknowledgement without a Reason".to_owned(),
        });
    };
    // Code 999 is used for every kind of rejection (bad token, too large a window, …); only the
    // "no matching data" text means the day simply is not there yet.
    if reason.code == ACK_REASON_CODE_NO_DATA
        && reason
            .text
            .to_ascii_lowercase()
            .contains(NO_MATCHING_DATA_TEXT)
    {
        Ok(EntsoeDocument::NotYetPublished {
            reason: reason.text,
        })
    } else {
        Err(EntsoeParseError::Rejected {
            code: reason.code,
            text: reason.text,
        })
    }
}

fn prices_of(
    document: PublicationMarketDocument,
    sequence: u32,
) -> Result<EntsoeDocument, EntsoeParseError> {
    let mut other_sequences: Vec<u32> = Vec::new();
    let mut slots: Vec<PriceSlot> = Vec::new();
    for series in &document.time_series {
        if series
            .contract_type
            .as_deref()
            .is_some_and(|contract| contract != DAY_AHEAD_CONTRACT)
        {
            continue;
        }
        if let Some(series_sequence) = series.classification_sequence
            && series_sequence != sequence
        {
            other_sequences.push(series_sequence);
            continue;
        }
        slots.extend(series_slots(series)?);
    }

    if slots.is_empty() && !other_sequences.is_empty() {
        // ENTSO-E has been seen publishing EXAA (sequence 2, known by 10:15) hours before the SDAC
        // result; taking it instead would silently ingest the wrong market's price.
        other_sequences.sort_unstable();
        other_sequences.dedup();
        return Ok(EntsoeDocument::NotYetPublished {
            reason: format!(
                "document carries only classification sequence(s) {other_sequences:?}, not sequence {sequence}"
            ),
        });
    }

    slots.sort_by_key(|slot| slot.start);
    let mut merged: Vec<PriceSlot> = Vec::with_capacity(slots.len());
    for slot in slots {
        match merged.last() {
            Some(previous) if previous.start == slot.start => {
                // Adjacent daily series may repeat a boundary slot; identical prices are harmless.
                if previous.price_eur_mwh != slot.price_eur_mwh {
                    return Err(EntsoeParseError::ConflictingSeries {
                        start: slot.start,
                        first: previous.price_eur_mwh,
                        second: slot.price_eur_mwh,
                    });
                }
            }
            _ => merged.push(slot),
        }
    }
    Ok(EntsoeDocument::Prices(merged))
}

fn series_slots(series: &TimeSeries) -> Result<Vec<PriceSlot>, EntsoeParseError> {
    let id = || series.m_rid.clone();
    // A03 ("variable sized block") omits repeated prices; A01 ("sequential fixed size block")
    // lists every position, so a missing one there is a genuine gap and stays missing.
    let fill_omitted = match series.curve_type.as_deref() {
        None | Some("A01") => false,
        Some("A03") => true,
        Some(other) => {
            return Err(EntsoeParseError::UnsupportedCurveType {
                series: id(),
                curve_type: other.to_owned(),
            });
        }
    };

    let mut slots = Vec::new();
    for period in &series.periods {
        let start = parse_entsoe_time(&period.time_interval.start).ok_or_else(|| {
            EntsoeParseError::InvalidTimestamp {
                series: id(),
                value: period.time_interval.start.clone(),
            }
        })?;
        let end = parse_entsoe_time(&period.time_interval.end).ok_or_else(|| {
            EntsoeParseError::InvalidTimestamp {
                series: id(),
                value: period.time_interval.end.clone(),
            }
        })?;
        let step = parse_resolution(&period.resolution).ok_or_else(|| {
            EntsoeParseError::UnsupportedResolution {
                series: id(),
                resolution: period.resolution.clone(),
            }
        })?;
        let span = end - start;
        if span <= Duration::zero() || span.num_seconds() % step.num_seconds() != 0 {
            return Err(EntsoeParseError::RaggedPeriod {
                series: id(),
                start,
                end,
                minutes: step.num_minutes(),
            });
        }
        let slot_count = u32::try_from(span.num_seconds() / step.num_seconds()).map_err(|_| {
            EntsoeParseError::RaggedPeriod {
                series: id(),
                start,
                end,
                minutes: step.num_minutes(),
            }
        })?;

        // Index prices by position; positions are 1-based.
        let mut by_position: Vec<Option<f64>> = vec![None; slot_count as usize];
        for point in &period.points {
            if point.position == 0 || point.position > slot_count {
                return Err(EntsoeParseError::PositionOutOfRange {
                    series: id(),
                    position: point.position,
                    slots: slot_count,
                });
            }
            let cell = &mut by_position[(point.position - 1) as usize];
            if cell.is_some() {
                return Err(EntsoeParseError::DuplicatePosition {
                    series: id(),
                    position: point.position,
                });
            }
            *cell = Some(point.price);
        }

        let mut previous: Option<f64> = None;
        for (index, price) in by_position.into_iter().enumerate() {
            let price = match (price, fill_omitted) {
                (Some(price), _) => price,
                (None, true) => previous
                    .ok_or_else(|| EntsoeParseError::MissingFirstPosition { series: id() })?,
                (None, false) => continue,
            };
            previous = Some(price);
            let slot_start = start + step * index as i32;
            slots.push(PriceSlot {
                start: slot_start,
                end: slot_start + step,
                price_eur_mwh: price,
            });
        }
    }
    Ok(slots)
}

/// ENTSO-E writes instants as `2025-10-30T23:00Z` (no seconds), which is not RFC 3339.
pub(crate) fn parse_entsoe_time(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%MZ")
        .map(|naive| naive.and_utc())
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(value)
                .ok()
                .map(|instant| instant.with_timezone(&Utc))
        })
}

/// The ISO 8601 durations ENTSO-E uses for market time units: `PT15M`, `PT30M`, `PT60M`, `PT1H`.
fn parse_resolution(value: &str) -> Option<Duration> {
    let rest = value.trim().strip_prefix("PT")?;
    let (number, unit_minutes) = if let Some(minutes) = rest.strip_suffix('M') {
        (minutes, 1)
    } else {
        (rest.strip_suffix('H')?, 60)
    };
    let count: i64 = number.parse().ok()?;
    (count > 0).then(|| Duration::minutes(count * unit_minutes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn shared_xml(name: &str) -> String {
        let path = format!(
            "{}/../../../shared/data/prices/entsoe_xml/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("shared test data missing: cannot read {path}: {error} (expected the /work/shared/data checkout beside the repo)")
        })
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn prices(document: EntsoeDocument) -> Vec<PriceSlot> {
        match document {
            EntsoeDocument::Prices(slots) => slots,
            other => panic!("expected prices, got {other:?}"),
        }
    }

    fn price_at(slots: &[PriceSlot], start: DateTime<Utc>) -> f64 {
        slots
            .iter()
            .find(|slot| slot.start == start)
            .map(|slot| slot.price_eur_mwh)
            .unwrap()
    }

    fn mean(slots: &[PriceSlot]) -> f64 {
        slots.iter().map(|slot| slot.price_eur_mwh).sum::<f64>() / slots.len() as f64
    }

    #[test]
    fn de_lu_pt15m_takes_the_sdac_sequence_and_fills_a03_gaps() {
        let slots = prices(parse(&shared_xml("entsoe_A44_DE_LU_PT15M_2025-10-31.xml")).unwrap());
        // Two delivery days of 96 quarter-hours each, from the sequence-1 (SDAC) series mRID 2 and 4.
        assert_eq!(slots.len(), 192);
        assert_eq!(slots[0].start, utc(2025, 10, 30, 23, 0));
        assert_eq!(slots[0].end, utc(2025, 10, 30, 23, 15));
        assert_eq!(slots[0].price_eur_mwh, 102.81);
        assert_eq!(slots[95].price_eur_mwh, 42.37);
        assert_eq!(slots[96].start, utc(2025, 10, 31, 23, 0));
        assert_eq!(slots[96].price_eur_mwh, 63.5);
        assert_eq!(slots[191].end, utc(2025, 11, 1, 23, 0));
        assert_eq!(slots[191].price_eur_mwh, 70.19);
        // mRID 4 omits position 45 (A03): it repeats position 44.
        let position_44 = utc(2025, 10, 31, 23, 0) + Duration::minutes(15 * 43);
        let position_45 = position_44 + Duration::minutes(15);
        assert_eq!(price_at(&slots, position_45), price_at(&slots, position_44));
        // Means over the filled days match the shared README's verified statistics.
        assert!((mean(&slots[..96]) - 93.24).abs() < 0.005);
        assert!((mean(&slots[96..]) - 47.63).abs() < 0.005);
        assert_eq!(
            voltplan_core::price::validate_alignment(
                &slots,
                voltplan_core::Resolution::QuarterHour
            ),
            Ok(())
        );
    }

    #[test]
    fn exaa_sequence_two_is_readable_on_request_with_its_omitted_positions_filled() {
        let xml = shared_xml("entsoe_A44_DE_LU_PT15M_2025-10-31.xml");
        let slots = prices(parse_with_sequence(&xml, 2).unwrap());
        assert_eq!(slots.len(), 192);
        assert_eq!(slots[0].price_eur_mwh, 91.45);
        assert_eq!(slots[95].price_eur_mwh, 77.41);
        assert_eq!(slots[96].price_eur_mwh, 72.64);
        assert_eq!(slots[191].price_eur_mwh, 69.92);
        // mRID 1 omits positions 20 and 72; mRID 3 omits 16, 19, 22, 75, 88.
        for (day_offset, omitted) in [
            (0, 20),
            (0, 72),
            (96, 16),
            (96, 19),
            (96, 22),
            (96, 75),
            (96, 88),
        ] {
            let index = day_offset + omitted - 1;
            assert_eq!(
                slots[index].price_eur_mwh,
                slots[index - 1].price_eur_mwh,
                "position {omitted}"
            );
        }
        assert!((mean(&slots[..96]) - 92.04).abs() < 0.005);
        assert!((mean(&slots[96..]) - 56.34).abs() < 0.005);
    }

    #[test]
    fn ch_pt60m_has_two_days_of_24_hours_without_a_sequence() {
        let slots = prices(parse(&shared_xml("entsoe_A44_CH_PT60M_2025-11-26.xml")).unwrap());
        assert_eq!(slots.len(), 48);
        assert_eq!(slots[0].start, utc(2025, 11, 25, 23, 0));
        assert_eq!(slots[0].end, utc(2025, 11, 26, 0, 0));
        assert_eq!(slots[0].price_eur_mwh, 104.06);
        assert_eq!(slots[23].price_eur_mwh, 109.62);
        assert_eq!(slots[24].price_eur_mwh, 110.63);
        assert_eq!(slots[47].end, utc(2025, 11, 27, 23, 0));
        assert_eq!(slots[47].price_eur_mwh, 111.8);
        assert!((mean(&slots[..24]) - 171.42).abs() < 0.005);
        assert!((mean(&slots[24..]) - 122.01).abs() < 0.005);
    }

    fn synthetic(
        start: &str,
        end: &str,
        resolution: &str,
        curve: &str,
        points: &[(u32, f64)],
    ) -> String {
        let points: String = points
            .iter()
            .map(|(position, price)| {
                format!("<Point><position>{position}</position><price.amount>{price}</price.amount></Point>")
            })
            .collect();
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<Publication_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3">
  <type>A44</type>
  <TimeSeries><mRID>1</mRID><contract_MarketAgreement.type>A01</contract_MarketAgreement.type>
    <curveType>{curve}</curveType>
    <Period><timeInterval><start>{start}</start><end>{end}</end></timeInterval>
      <resolution>{resolution}</resolution>{points}</Period>
  </TimeSeries>
</Publication_MarketDocument>"#
        )
    }

    #[test]
    fn spring_dst_day_has_92_quarter_hours_and_autumn_100() {
        // Europe/Berlin 2026-03-29 is 23 h long: 2026-03-28T23:00Z..03-29T22:00Z.
        let spring = synthetic(
            "2026-03-28T23:00Z",
            "2026-03-29T22:00Z",
            "PT15M",
            "A03",
            &[(1, 10.0), (92, 20.0)],
        );
        let slots = prices(parse(&spring).unwrap());
        assert_eq!(slots.len(), 92);
        assert_eq!(slots[90].price_eur_mwh, 10.0);
        assert_eq!(slots[91].price_eur_mwh, 20.0);
        // 2026-10-25 is 25 h long: 2026-10-24T22:00Z..10-25T23:00Z.
        let autumn = synthetic(
            "2026-10-24T22:00Z",
            "2026-10-25T23:00Z",
            "PT15M",
            "A03",
            &[(1, -5.5)],
        );
        let slots = prices(parse(&autumn).unwrap());
        assert_eq!(slots.len(), 100);
        assert!(slots.iter().all(|slot| slot.price_eur_mwh == -5.5));
        assert_eq!(slots[99].end, utc(2026, 10, 25, 23, 0));
    }

    #[test]
    fn a01_curves_keep_missing_positions_as_gaps() {
        let xml = synthetic(
            "2026-01-01T00:00Z",
            "2026-01-01T01:00Z",
            "PT15M",
            "A01",
            &[(1, 1.0), (3, 3.0)],
        );
        let slots = prices(parse(&xml).unwrap());
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[1].start, utc(2026, 1, 1, 0, 30));
    }

    #[test]
    fn a_document_with_only_the_exaa_sequence_means_sdac_not_yet_published() {
        let xml = synthetic("2026-01-01T00:00Z", "2026-01-01T01:00Z", "PT15M", "A03", &[(1, 30.0)]).replace(
            "<curveType>",
            "<classificationSequence_AttributeInstanceComponent.position>2</classificationSequence_AttributeInstanceComponent.position><curveType>",
        );
        match parse(&xml).unwrap() {
            EntsoeDocument::NotYetPublished { reason } => {
                assert!(reason.contains("[2]"), "{reason}")
            }
            other => panic!("expected NotYetPublished, got {other:?}"),
        }
        assert_eq!(prices(parse_with_sequence(&xml, 2).unwrap()).len(), 4);
    }

    #[test]
    fn intraday_contract_series_are_ignored() {
        let xml = synthetic(
            "2026-01-01T00:00Z",
            "2026-01-01T01:00Z",
            "PT15M",
            "A03",
            &[(1, 30.0)],
        )
        .replace(
            "<contract_MarketAgreement.type>A01<",
            "<contract_MarketAgreement.type>A07<",
        );
        assert_eq!(parse(&xml).unwrap(), EntsoeDocument::Prices(vec![]));
    }

    #[test]
    fn no_matching_data_acknowledgement_is_not_yet_published() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
  <mRID>2a6f1e8b-4e0b-4b1c-9a5e-1d2f3c4b5a69</mRID>
  <createdDateTime>2025-11-26T10:02:11Z</createdDateTime>
  <sender_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450</sender_MarketParticipant.mRID>
  <received_MarketDocument.createdDateTime>2025-11-26T10:02:11Z</received_MarketDocument.createdDateTime>
  <Reason>
    <code>999</code>
    <text>No matching data found for Data item Energy Prices [12.1.D] (10Y1001A1001A82H, 10Y1001A1001A82H) and interval 2025-11-26T23:00:00.000Z/2025-11-27T23:00:00.000Z.</text>
  </Reason>
</Acknowledgement_MarketDocument>"#;
        match parse(xml).unwrap() {
            EntsoeDocument::NotYetPublished { reason } => {
                assert!(reason.starts_with("No matching data found"))
            }
            other => panic!("expected NotYetPublished, got {other:?}"),
        }
    }

    #[test]
    fn other_acknowledgements_are_errors() {
        let xml = r#"<Acknowledgement_MarketDocument><Reason><code>999</code><text>Unauthorized. Missing or invalid security token</text></Reason></Acknowledgement_MarketDocument>"#;
        assert!(
            matches!(parse(xml), Err(EntsoeParseError::Rejected { code, .. }) if code == "999")
        );
    }

    #[test]
    fn malformed_documents_give_typed_errors() {
        assert!(
            matches!(parse("<html><body>502</body></html>"), Err(EntsoeParseError::UnexpectedRoot(root)) if root == "html")
        );
        assert!(matches!(parse(""), Err(EntsoeParseError::NoRootElement)));
        let missing_first = synthetic(
            "2026-01-01T00:00Z",
            "2026-01-01T01:00Z",
            "PT15M",
            "A03",
            &[(2, 1.0)],
        );
        assert!(matches!(
            parse(&missing_first),
            Err(EntsoeParseError::MissingFirstPosition { .. })
        ));
        let out_of_range = synthetic(
            "2026-01-01T00:00Z",
            "2026-01-01T01:00Z",
            "PT15M",
            "A03",
            &[(1, 1.0), (5, 1.0)],
        );
        assert!(matches!(
            parse(&out_of_range),
            Err(EntsoeParseError::PositionOutOfRange {
                position: 5,
                slots: 4,
                ..
            })
        ));
        let ragged = synthetic(
            "2026-01-01T00:00Z",
            "2026-01-01T01:10Z",
            "PT15M",
            "A03",
            &[(1, 1.0)],
        );
        assert!(matches!(
            parse(&ragged),
            Err(EntsoeParseError::RaggedPeriod { .. })
        ));
        let weird_resolution = synthetic(
            "2026-01-01T00:00Z",
            "2026-01-01T01:00Z",
            "P1Y",
            "A03",
            &[(1, 1.0)],
        );
        assert!(matches!(
            parse(&weird_resolution),
            Err(EntsoeParseError::UnsupportedResolution { .. })
        ));
        let bad_price = synthetic(
            "2026-01-01T00:00Z",
            "2026-01-01T01:00Z",
            "PT60M",
            "A03",
            &[],
        )
        .replace(
            "</resolution>",
            "</resolution><Point><position>1</position><price.amount>n/a</price.amount></Point>",
        );
        assert!(matches!(
            parse(&bad_price),
            Err(EntsoeParseError::Schema(_))
        ));
        let duplicate = synthetic(
            "2026-01-01T00:00Z",
            "2026-01-01T01:00Z",
            "PT60M",
            "A03",
            &[(1, 1.0), (1, 2.0)],
        );
        assert!(matches!(
            parse(&duplicate),
            Err(EntsoeParseError::DuplicatePosition { position: 1, .. })
        ));
    }

    #[test]
    fn entsoe_time_and_resolution_forms() {
        assert_eq!(
            parse_entsoe_time("2025-10-30T23:00Z"),
            Some(utc(2025, 10, 30, 23, 0))
        );
        assert_eq!(
            parse_entsoe_time("2025-10-30T23:00:00Z"),
            Some(utc(2025, 10, 30, 23, 0))
        );
        assert_eq!(parse_resolution("PT15M"), Some(Duration::minutes(15)));
        assert_eq!(parse_resolution("PT60M"), Some(Duration::minutes(60)));
        assert_eq!(parse_resolution("PT1H"), Some(Duration::minutes(60)));
        assert_eq!(parse_resolution("PT0M"), None);
        assert_eq!(parse_resolution("P1D"), None);
    }
}
