//! Energy-Charts (Fraunhofer ISE) CSV export:
//!
//! ```text
//! Datum (MEZ),Day Ahead Auktion EXAA (DE-LU)
//! ,"Preis (EUR/MWh, EUR/tCO2)"
//! 2023-01-01T00:00+01:00,75.01
//! ```
//!
//! Two header lines (series names, then units). Timestamps are Europe/Berlin wall-clock interval
//! starts written with their offset, without seconds. The wall clock is authoritative: the
//! offset only decides which of the two readings of an autumn-overlap wall time is meant. This
//! repairs a real upstream defect (rows `2023-09-29T03:00+03:00`…`04:45+03:00`, an offset
//! Berlin never has) that would otherwise collide with the two hours before and leave a gap.

use super::{
    ImportError, ImportReport, Rows, WallClock, build_report, column_names, find_column,
    is_missing, line_of, parse_price,
};
use chrono::{DateTime, FixedOffset, Utc};

const HEADER_START: &str = "Datum (MEZ)";

pub(crate) fn looks_like_energy_charts(header_line: &str) -> bool {
    header_line
        .trim_start_matches('\u{feff}')
        .starts_with(HEADER_START)
}

fn parse_offset_time(value: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M%:z")
        .or_else(|_| DateTime::parse_from_rfc3339(value))
        .ok()
}

pub fn import(text: &str, column: Option<&str>) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = records
        .next()
        .transpose()?
        .ok_or_else(|| ImportError::UnrecognisedHeader(String::new()))?;
    if !looks_like_energy_charts(header.get(0).unwrap_or_default()) {
        return Err(ImportError::UnrecognisedHeader(
            header.iter().collect::<Vec<_>>().join(","),
        ));
    }
    let series: Vec<(usize, &str)> = header.iter().enumerate().skip(1).collect();
    let (value_index, series_name) = match column {
        Some(wanted) => find_column(&series, wanted)?,
        None => match series.as_slice() {
            [only] => *only,
            _ => {
                return Err(ImportError::ColumnRequired {
                    available: column_names(&series),
                });
            }
        },
    };

    let mut wall_clock = WallClock::new(chrono_tz::Europe::Berlin);
    let mut repaired_offsets = 0;
    let mut rows = Rows::default();
    for record in records {
        let record = record?;
        let line = line_of(&record);
        let timestamp = record.get(0).unwrap_or_default();
        if timestamp.is_empty() {
            continue; // the unit line under the header
        }
        let written = parse_offset_time(timestamp).ok_or_else(|| ImportError::Malformed {
            line,
            message: format!("timestamp {timestamp:?} is not YYYY-MM-DDTHH:MM+hh:mm"),
        })?;
        let candidates = wall_clock.candidates(written.naive_local());
        let start = if let Some(matching) = candidates
            .iter()
            .find(|c| **c == written.with_timezone(&Utc))
        {
            wall_clock.accept(*matching);
            *matching
        } else {
            repaired_offsets += 1;
            wall_clock
                .resolve(written.naive_local())
                .ok_or_else(|| ImportError::Malformed {
                    line,
                    message: format!(
                        "{timestamp:?} falls into the Europe/Berlin spring-forward gap"
                    ),
                })?
        };
        let cell = record.get(value_index).unwrap_or_default();
        if is_missing(cell) {
            rows.missing(start);
        } else {
            rows.value(start, parse_price(cell, line)?);
        }
    }

    let skipped_rows = rows.skipped;
    let points = rows.into_slots()?;
    let mut warnings = Vec::new();
    if repaired_offsets > 0 {
        warnings.push(format!(
            "{repaired_offsets} rows carried a UTC offset that Europe/Berlin does not have at that wall time; the wall time was used"
        ));
    }
    Ok(build_report(
        series_name.to_owned(),
        points,
        skipped_rows,
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Format;
    use crate::import::test_support::{count_between, import_shared, price_range, utc};
    use chrono::Duration;

    #[test]
    fn exaa_2023_is_a_full_year_of_quarter_hours_with_the_wrong_offsets_repaired() {
        let report = import_shared("energy_charts_exaa_DE_LU_15min_2023.csv", Format::Csv, None);
        assert_eq!(report.zone_column, "Day Ahead Auktion EXAA (DE-LU)");
        assert_eq!(report.points.len(), 35040);
        assert_eq!(report.first, Some(utc(2022, 12, 31, 23, 0)));
        assert_eq!(report.last, Some(utc(2023, 12, 31, 22, 45)));
        assert!(report.gaps.is_empty(), "{:?}", report.gaps);
        assert_eq!(report.duplicates, 0);
        assert_eq!(report.skipped_rows, 0);
        assert_eq!(report.points[0].price_eur_mwh, 75.01);
        assert_eq!(report.points[1].price_eur_mwh, -29.95);
        assert_eq!(
            report.points[0].end - report.points[0].start,
            Duration::minutes(15)
        );
        // 2023-09-29T03:00+03:00 in the file is 03:00 CEST = 01:00Z.
        let repaired = report
            .points
            .iter()
            .find(|p| p.start == utc(2023, 9, 29, 1, 0))
            .unwrap();
        assert_eq!(repaired.price_eur_mwh, 104.0);
        assert_eq!(report.warnings.len(), 1);
        assert!(
            report.warnings[0].starts_with("8 rows"),
            "{:?}",
            report.warnings
        );
        // Local days: 2023-03-26 has 92 quarter-hours, 2023-10-29 has 100.
        assert_eq!(
            count_between(&report, utc(2023, 3, 25, 23, 0), utc(2023, 3, 26, 22, 0)),
            92
        );
        assert_eq!(
            count_between(&report, utc(2023, 10, 28, 22, 0), utc(2023, 10, 29, 23, 0)),
            100
        );
        let negatives = report
            .points
            .iter()
            .filter(|p| p.price_eur_mwh < 0.0)
            .count();
        assert_eq!(negatives, 2149);
        assert_eq!(price_range(&report), (-149.99, 800.0));
    }

    #[test]
    fn autumn_overlap_rows_follow_their_offsets() {
        let csv = "\u{feff}Datum (MEZ),Series\n,\"Preis (EUR/MWh, EUR/tCO2)\"\n\
                   2023-10-29T02:45+02:00,1\n2023-10-29T02:00+01:00,2\n2023-10-29T02:15+01:00,3\n";
        let report = import(csv.trim_start_matches('\u{feff}'), None).unwrap();
        let starts: Vec<_> = report.points.iter().map(|p| p.start).collect();
        assert_eq!(
            starts,
            vec![
                utc(2023, 10, 29, 0, 45),
                utc(2023, 10, 29, 1, 0),
                utc(2023, 10, 29, 1, 15)
            ]
        );
        assert!(report.warnings.is_empty());
    }
}
