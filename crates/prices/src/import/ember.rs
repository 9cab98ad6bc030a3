//! Ember "European wholesale electricity price data" CSV:
//!
//! ```text
//! Country,Datetime (UTC),Datetime (Local),Price (EUR/MWhe)
//! Netherlands,2024-01-01 00:00:00,2024-01-01 01:00:00,0.01
//! ```
//!
//! `Datetime (UTC)` is the interval start and is the only timestamp used (the local column
//! repeats the same instant in the country's zone). Files may hold several countries; the
//! `column` argument of the importer picks one by name. Lines may end in CRLF.

use super::{ImportError, ImportReport, Rows, build_report, is_missing, line_of, parse_price};
use chrono::NaiveDateTime;

const HEADER_START: &str = "Country,Datetime (UTC)";
const COUNTRY: usize = 0;
const DATETIME_UTC: usize = 1;
const PRICE: usize = 3;

pub(crate) fn looks_like_ember(header_line: &str) -> bool {
    header_line
        .trim_start_matches('\u{feff}')
        .starts_with(HEADER_START)
}

pub fn import(text: &str, country: Option<&str>) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    if !looks_like_ember(&headers.iter().collect::<Vec<_>>().join(",")) || headers.len() <= PRICE {
        return Err(ImportError::UnrecognisedHeader(
            headers.iter().collect::<Vec<_>>().join(","),
        ));
    }

    let mut countries_seen: Vec<String> = Vec::new();
    let mut rows = Rows::default();
    for record in reader.records() {
        let record = record?;
        let line = line_of(&record);
        let row_country = record.get(COUNTRY).unwrap_or_default();
        if !countries_seen.iter().any(|seen| seen == row_country) {
            countries_seen.push(row_country.to_owned());
        }
        if country.is_some_and(|wanted| !wanted.eq_ignore_ascii_case(row_country)) {
            continue;
        }
        let timestamp = record.get(DATETIME_UTC).unwrap_or_default();
        let price = record.get(PRICE).unwrap_or_default();
        if timestamp.is_empty() {
            rows.skipped += 1;
            continue;
        }
        let start = NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%d %H:%M:%S")
            .map_err(|error| ImportError::Malformed {
                line,
                message: format!(
                    "Datetime (UTC) {timestamp:?} is not YYYY-MM-DD HH:MM:SS: {error}"
                ),
            })?
            .and_utc();
        if is_missing(price) {
            rows.missing(start);
        } else {
            rows.value(start, parse_price(price, line)?);
        }
    }

    let zone_column = match country {
        Some(wanted) => countries_seen
            .iter()
            .find(|seen| seen.eq_ignore_ascii_case(wanted))
            .cloned()
            .ok_or_else(|| ImportError::UnknownColumn {
                wanted: wanted.to_owned(),
                available: countries_seen.clone(),
            })?,
        None => match countries_seen.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(ImportError::ColumnRequired {
                    available: countries_seen,
                });
            }
        },
    };

    let skipped_rows = rows.skipped;
    Ok(build_report(
        zone_column,
        rows.into_slots()?,
        skipped_rows,
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Format;
    use crate::import::test_support::{import_shared, price_range};
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    #[test]
    fn ember_nl_2015_2022_gz_is_eight_gapless_years() {
        let report = import_shared("ember_NL_hourly_2015-2022.csv.gz", Format::Csv, None);
        assert_eq!(report.zone_column, "Netherlands");
        assert_eq!(report.points.len(), 70128);
        assert_eq!(report.first, Some(utc(2015, 1, 1, 0)));
        assert_eq!(report.last, Some(utc(2022, 12, 31, 23)));
        assert!(report.gaps.is_empty());
        assert_eq!(report.duplicates, 0);
        assert_eq!(report.points[0].price_eur_mwh, 34.94);
        assert_eq!(
            report.points[0].end - report.points[0].start,
            Duration::hours(1)
        );
        assert_eq!(price_range(&report), (-222.36, 871.0));
    }

    #[test]
    fn ember_nl_2024_has_the_one_upstream_gap() {
        let report = import_shared(
            "ember_NL_hourly_2024-2025-01-07.csv",
            Format::Csv,
            Some("netherlands"),
        );
        assert_eq!(report.points.len(), 8951);
        assert_eq!(report.first, Some(utc(2024, 1, 1, 0)));
        assert_eq!(report.last, Some(utc(2025, 1, 7, 23)));
        assert_eq!(
            report.gaps,
            vec![(utc(2024, 12, 30, 23), utc(2024, 12, 31, 0))]
        );
        assert_eq!(report.points[0].price_eur_mwh, 0.01);
        assert_eq!(report.points.last().map(|p| p.price_eur_mwh), Some(66.19));
    }

    #[test]
    fn ember_nl_2024_agrees_with_smard_niederlande_hour_by_hour() {
        // Two independent publications of the same SDAC auction.
        let ember = import_shared("ember_NL_hourly_2024-2025-01-07.csv", Format::Csv, None);
        let smard = import_shared(
            "smard_grosshandelspreise_2024_hourly_multizone_de.csv",
            Format::Smard,
            Some("Niederlande"),
        );
        let mut compared = 0;
        for slot in &smard.points {
            if let Ok(index) = ember.points.binary_search_by_key(&slot.start, |p| p.start) {
                assert!(
                    (ember.points[index].price_eur_mwh - slot.price_eur_mwh).abs() < 0.005,
                    "{}: ember {} vs smard {}",
                    slot.start,
                    ember.points[index].price_eur_mwh,
                    slot.price_eur_mwh
                );
                compared += 1;
            }
        }
        // SMARD 2024 starts 2023-12-31T23:00Z, one hour before Ember; Ember misses 2024-12-30T23:00Z.
        assert_eq!(compared, 8784 - 2);
    }

    #[test]
    fn several_countries_need_a_choice() {
        let csv = "Country,Datetime (UTC),Datetime (Local),Price (EUR/MWhe)\r\n\
                   Austria,2024-01-01 00:00:00,2024-01-01 01:00:00,1.0\r\n\
                   Belgium,2024-01-01 00:00:00,2024-01-01 01:00:00,2.0\r\n\
                   Belgium,2024-01-01 01:00:00,2024-01-01 02:00:00,3.0\r\n";
        assert!(matches!(
            import(csv, None),
            Err(ImportError::ColumnRequired { .. })
        ));
        let report = import(csv, Some("Belgium")).unwrap();
        assert_eq!(report.points.len(), 2);
        assert!(matches!(
            import(csv, Some("France")),
            Err(ImportError::UnknownColumn { .. })
        ));
    }
}
