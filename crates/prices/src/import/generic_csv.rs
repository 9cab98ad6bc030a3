//! Generic CSV: a header with `timestamp` and one or more price columns, e.g.
//!
//! ```text
//! timestamp,price_eur_mwh
//! 2025-10-31T00:00:00+01:00,102.81
//! ```
//!
//! Timestamps are RFC 3339 interval starts with an explicit offset (or `Z`). The slot length is
//! not written in the file; it is the smallest step between consecutive timestamps, so a file
//! must hold at least two distinct timestamps. Empty cells and `-` are skipped.

use super::{
    ImportError, ImportReport, Rows, build_report, column_names, find_column, is_missing, line_of,
    parse_price,
};
use chrono::{DateTime, Utc};

const TIMESTAMP_COLUMN: &str = "timestamp";
const DEFAULT_PRICE_COLUMN: &str = "price_eur_mwh";

pub fn import(text: &str, column: Option<&str>) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    let timestamp_index = headers
        .iter()
        .position(|header| header.eq_ignore_ascii_case(TIMESTAMP_COLUMN))
        .ok_or_else(|| {
            ImportError::UnrecognisedHeader(headers.iter().collect::<Vec<_>>().join(","))
        })?;
    let price_columns: Vec<(usize, &str)> = headers
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != timestamp_index)
        .collect();
    let (price_index, price_header) = match column {
        Some(wanted) => find_column(&price_columns, wanted)?,
        None => match price_columns.as_slice() {
            [only] => *only,
            several => several
                .iter()
                .find(|(_, name)| name.eq_ignore_ascii_case(DEFAULT_PRICE_COLUMN))
                .copied()
                .ok_or_else(|| ImportError::ColumnRequired {
                    available: column_names(&price_columns),
                })?,
        },
    };

    let mut rows = Rows::default();
    for record in reader.records() {
        let record = record?;
        let line = line_of(&record);
        let timestamp = record.get(timestamp_index).unwrap_or_default();
        if timestamp.is_empty() && record.iter().all(str::is_empty) {
            continue; // a trailing blank line is not a data row
        }
        let start = DateTime::parse_from_rfc3339(timestamp)
            .map_err(|error| ImportError::Malformed {
                line,
                message: format!("timestamp {timestamp:?} is not RFC 3339 with an offset: {error}"),
            })?
            .with_timezone(&Utc);
        let cell = record.get(price_index).unwrap_or_default();
        if is_missing(cell) {
            rows.missing(start);
        } else {
            rows.value(start, parse_price(cell, line)?);
        }
    }

    let skipped_rows = rows.skipped;
    Ok(build_report(
        price_header.to_owned(),
        rows.into_slots()?,
        skipped_rows,
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn quarter_hours_with_offsets_gaps_and_missing_values() {
        let csv = "timestamp,price_eur_mwh\n\
                   2025-10-31T00:00:00+01:00,102.81\n\
                   2025-10-31T00:15:00+01:00,89.76\n\
                   2025-10-30T23:30:00Z,-\n\
                   2025-10-31T00:45:00+01:00,-5.25\n\
                   \n";
        let report = import(csv, None).unwrap();
        let t = |h, m| Utc.with_ymd_and_hms(2025, 10, 30, h, m, 0).unwrap();
        assert_eq!(report.zone_column, "price_eur_mwh");
        assert_eq!(report.points.len(), 3);
        assert_eq!(report.points[0].start, t(23, 0));
        assert_eq!(report.points[0].end, t(23, 15));
        assert_eq!(report.points[2].price_eur_mwh, -5.25);
        assert_eq!(report.first, Some(t(23, 0)));
        assert_eq!(report.last, Some(t(23, 45)));
        assert_eq!(report.gaps, vec![(t(23, 30), t(23, 45))]);
        assert_eq!(report.skipped_rows, 1);
        assert_eq!(report.duplicates, 0);
    }

    #[test]
    fn a_row_without_a_value_stays_a_gap_and_stretches_no_neighbour() {
        let csv = "timestamp,price_eur_mwh\n\
                   2025-01-01T00:00:00Z,10\n\
                   2025-01-01T01:00:00Z,NaN\n\
                   2025-01-01T02:00:00Z,30\n";
        let report = import(csv, None).unwrap();
        let t = |h| Utc.with_ymd_and_hms(2025, 1, 1, h, 0, 0).unwrap();
        let slots: Vec<_> = report
            .points
            .iter()
            .map(|s| (s.start, s.end, s.price_eur_mwh))
            .collect();
        assert_eq!(slots, vec![(t(0), t(1), 10.0), (t(2), t(3), 30.0)]);
        assert_eq!(report.gaps, vec![(t(1), t(2))]);
        assert_eq!(report.skipped_rows, 1);
    }

    #[test]
    fn off_grid_timestamps_and_odd_slot_lengths_are_refused() {
        let off_grid = "timestamp,price_eur_mwh\n\
                        2025-01-01T00:00:00Z,10\n\
                        2025-01-01T00:07:00Z,11\n\
                        2025-01-01T01:00:00Z,12\n";
        let error = import(off_grid, None).unwrap_err();
        assert!(
            matches!(error, ImportError::OffGrid { minutes: 15, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("00:07:00"), "{error}");
        let half_hours = "timestamp,price_eur_mwh\n\
                          2025-01-01T00:00:00Z,10\n\
                          2025-01-01T00:30:00Z,11\n";
        assert!(matches!(
            import(half_hours, None),
            Err(ImportError::UnsupportedSlotLength { minutes: 30 })
        ));
        let hourly_off_the_hour = "timestamp,price_eur_mwh\n\
                                   2025-01-01T00:15:00Z,10\n\
                                   2025-01-01T01:15:00Z,11\n";
        assert!(matches!(
            import(hourly_off_the_hour, None),
            Err(ImportError::OffGrid { minutes: 60, .. })
        ));
    }

    #[test]
    fn column_is_chosen_by_name_when_there_are_several() {
        let csv = "timestamp,AT,DE_LU\n2025-01-01T00:00:00Z,1,2\n2025-01-01T01:00:00Z,3,4\n";
        assert!(matches!(
            import(csv, None),
            Err(ImportError::ColumnRequired { .. })
        ));
        let report = import(csv, Some("de_lu")).unwrap();
        assert_eq!(report.zone_column, "DE_LU");
        assert_eq!(report.points[1].price_eur_mwh, 4.0);
        assert_eq!(
            report.points[1].end - report.points[1].start,
            chrono::Duration::hours(1)
        );
        assert!(matches!(
            import(csv, Some("CH")),
            Err(ImportError::UnknownColumn { .. })
        ));
    }

    #[test]
    fn bad_rows_name_their_line() {
        let csv = "timestamp,price_eur_mwh\n2025-01-01T00:00:00Z,1\n2025-01-01 01:00,2\n";
        let error = import(csv, None).unwrap_err();
        assert!(
            matches!(error, ImportError::Malformed { line: 3, .. }),
            "{error}"
        );
        let csv = "timestamp,price_eur_mwh\n2025-01-01T00:00:00Z,1\n2025-01-01T01:00:00Z,abc\n";
        assert!(matches!(
            import(csv, None),
            Err(ImportError::Malformed { line: 3, .. })
        ));
        assert!(matches!(
            import("time,price\n", None),
            Err(ImportError::UnrecognisedHeader(_))
        ));
        let one_row = "timestamp,price_eur_mwh\n2025-01-01T00:00:00Z,1\n";
        assert!(matches!(
            import(one_row, None),
            Err(ImportError::CannotInferResolution)
        ));
    }
}
