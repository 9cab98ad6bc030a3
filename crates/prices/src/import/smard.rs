//! SMARD.de (Bundesnetzagentur) market-data exports, German and English UI variants.
//!
//! ```text
//! Datum von;Datum bis;Deutschland/Luxemburg [€/MWh] Originalauflösungen;…      (German)
//! 01.01.2024 00:00;01.01.2024 01:00;0,10;…
//! Date;Time of day;Germany/Luxembourg[€/MWh];…                                  (English, 2015)
//! Jan 1, 2015;12:00 AM;-;25.02;…
//! Start date;End date;Germany/Luxembourg [€/MWh] Original resolutions;…         (English, newer)
//! Jan 1, 2024 12:00 AM;Jan 1, 2024 1:00 AM;0.10;…
//! ```
//!
//! * `;`-separated, UTF-8 with BOM; one column per zone, chosen by header, by the header's name
//!   without the unit (`Österreich`), or by Podero zone code (`AT`). Without a choice the
//!   DE-LU column is taken: SMARD is the German regulator's platform.
//! * Rows are Europe/Berlin wall-clock interval starts. The autumn hour appears twice (summer
//!   time first); the spring hour is absent. `Datum bis` is ignored: upstream has a row whose
//!   end date is wrong (2024-03-31 01:00 → `30.03.2024 02:00`); ends are start + slot length.
//! * German numbers use a decimal comma and a thousands point (`1.022,27`); `-` is missing.
//! * Quarter-hour-grid exports keep hourly zones at one value per hour, on the :00 row with `-`
//!   on the other three. Such a column becomes hourly slots; a column with a value on every
//!   quarter-hour (e.g. `Italien (Nord)`, which repeats its hourly price) stays quarter-hourly.

use super::{ImportError, ImportReport, WallClock, build_report, is_missing, line_of};
use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use voltplan_core::PriceSlot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// `Datum von;Datum bis;…`, `dd.mm.yyyy HH:MM`, decimal comma.
    German,
    /// `Date;Time of day;…`, `Jan 1, 2015` + `12:00 AM`, decimal point.
    EnglishSplit,
    /// `Start date;End date;…`, `Jan 1, 2024 12:00 AM`, decimal point.
    EnglishCombined,
}

/// Podero zone codes (and common codes for the other SMARD columns) → SMARD column names.
const ZONE_CODES: &[(&str, &[&str])] = &[
    ("DE_LU", &["Deutschland/Luxemburg", "Germany/Luxembourg"]),
    ("AT", &["Österreich", "Austria"]),
    ("BE", &["Belgien", "Belgium"]),
    ("CH", &["Schweiz", "Switzerland"]),
    ("HU", &["Ungarn", "Hungary"]),
    ("IT_NORD", &["Italien (Nord)", "Northern Italy"]),
    ("SE_4", &["Schweden 4", "Sweden 4"]),
    ("NL", &["Niederlande", "Netherlands"]),
    ("FR", &["Frankreich", "France"]),
    ("DK_1", &["Dänemark 1", "Denmark 1"]),
    ("DK_2", &["Dänemark 2", "Denmark 2"]),
    ("NO_2", &["Norwegen 2", "Norway 2"]),
    ("PL", &["Polen", "Poland"]),
    ("CZ", &["Tschechien", "Czech Republic"]),
    ("SI", &["Slowenien", "Slovenia"]),
    ("DE_AT_LU", &["DE/AT/LU", "Germany/Austria/Luxembourg"]),
];
const DEFAULT_ZONE: &str = "DE_LU";

pub(crate) fn looks_like_smard(text: &str) -> bool {
    let header = text.trim_start_matches('\u{feff}');
    ["Datum von;", "Date;Time of day;", "Start date;"]
        .iter()
        .any(|start| header.starts_with(start))
}

/// The column's name without unit and resolution suffix: `Österreich [€/MWh] Originalauflösungen` → `Österreich`.
fn column_base_name(header: &str) -> &str {
    header.split('[').next().unwrap_or(header).trim()
}

fn column_matches(header: &str, wanted: &str) -> bool {
    let wanted = wanted.trim();
    if header.eq_ignore_ascii_case(wanted)
        || column_base_name(header).to_lowercase() == wanted.to_lowercase()
    {
        return true;
    }
    ZONE_CODES.iter().any(|(code, names)| {
        code.eq_ignore_ascii_case(wanted)
            && names.iter().any(|name| column_base_name(header) == *name)
    })
}

struct Layout {
    dialect: Dialect,
    /// (index in the record, header text)
    zone_columns: Vec<(usize, String)>,
}

fn layout_of(headers: &csv::StringRecord) -> Result<Layout, ImportError> {
    let first = headers
        .get(0)
        .unwrap_or_default()
        .trim_start_matches('\u{feff}');
    let second = headers.get(1).unwrap_or_default();
    let dialect = match (first, second) {
        ("Datum von", "Datum bis") => Dialect::German,
        ("Date", "Time of day") => Dialect::EnglishSplit,
        ("Start date", "End date") => Dialect::EnglishCombined,
        _ => {
            return Err(ImportError::UnrecognisedHeader(
                headers.iter().collect::<Vec<_>>().join(";"),
            ));
        }
    };
    let zone_columns = headers
        .iter()
        .enumerate()
        .skip(2)
        .map(|(index, name)| (index, name.to_owned()))
        .collect();
    Ok(Layout {
        dialect,
        zone_columns,
    })
}

fn local_start(
    dialect: Dialect,
    record: &csv::StringRecord,
    line: u64,
) -> Result<NaiveDateTime, ImportError> {
    let first = record.get(0).unwrap_or_default();
    let parsed = match dialect {
        Dialect::German => NaiveDateTime::parse_from_str(first, "%d.%m.%Y %H:%M"),
        Dialect::EnglishSplit => {
            let time = record.get(1).unwrap_or_default();
            NaiveDateTime::parse_from_str(&format!("{first} {time}"), "%b %d, %Y %I:%M %p")
        }
        Dialect::EnglishCombined => NaiveDateTime::parse_from_str(first, "%b %d, %Y %I:%M %p"),
    };
    parsed.map_err(|error| ImportError::Malformed {
        line,
        message: format!("cannot read the row's start time {first:?}: {error}"),
    })
}

fn parse_number(dialect: Dialect, cell: &str, line: u64) -> Result<f64, ImportError> {
    let normalised = match dialect {
        Dialect::German => cell.trim().replace('.', "").replace(',', "."),
        Dialect::EnglishSplit | Dialect::EnglishCombined => cell.trim().replace(',', ""),
    };
    normalised
        .parse::<f64>()
        .map_err(|_| ImportError::Malformed {
            line,
            message: format!("price {cell:?} is not a number"),
        })
}

/// Imports one zone column (see the module docs for how `column` is matched).
pub fn import(text: &str, column: Option<&str>) -> Result<ImportReport, ImportError> {
    let mut reports = import_selected(text, |layout| {
        let wanted = column.unwrap_or(DEFAULT_ZONE);
        let found = layout
            .zone_columns
            .iter()
            .position(|(_, header)| column_matches(header, wanted));
        match (found, column) {
            (Some(position), _) => Ok(vec![position]),
            (None, Some(wanted)) => Err(ImportError::UnknownColumn {
                wanted: wanted.to_owned(),
                available: layout.zone_columns.iter().map(|(_, h)| h.clone()).collect(),
            }),
            (None, None) => Err(ImportError::ColumnRequired {
                available: layout.zone_columns.iter().map(|(_, h)| h.clone()).collect(),
            }),
        }
    })?;
    reports.pop().ok_or(ImportError::CannotInferResolution)
}

/// Imports every zone column in one pass over the file, in header order.
pub fn import_all(text: &str) -> Result<Vec<ImportReport>, ImportError> {
    import_selected(text, |layout| Ok((0..layout.zone_columns.len()).collect()))
}

struct ColumnValues {
    header: String,
    record_index: usize,
    values: Vec<(DateTime<Utc>, f64)>,
    skipped_rows: usize,
}

fn import_selected(
    text: &str,
    select: impl FnOnce(&Layout) -> Result<Vec<usize>, ImportError>,
) -> Result<Vec<ImportReport>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .flexible(true)
        .from_reader(text.as_bytes());
    let layout = layout_of(reader.headers()?)?;
    let mut columns: Vec<ColumnValues> = select(&layout)?
        .into_iter()
        .filter_map(|position| layout.zone_columns.get(position))
        .map(|(record_index, header)| ColumnValues {
            header: header.clone(),
            record_index: *record_index,
            values: Vec::new(),
            skipped_rows: 0,
        })
        .collect();

    let mut wall_clock = WallClock::new(chrono_tz::Europe::Berlin);
    let mut row_starts: [Option<DateTime<Utc>>; 2] = [None, None];
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let line = line_of(&record);
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let local = local_start(layout.dialect, &record, line)?;
        let start = wall_clock
            .resolve(local)
            .ok_or_else(|| ImportError::Malformed {
                line,
                message: format!("{local} does not exist in Europe/Berlin (spring-forward gap)"),
            })?;
        if row_starts[0].is_none() {
            row_starts[0] = Some(start);
        } else if row_starts[1].is_none() {
            row_starts[1] = Some(start);
        }
        for column in &mut columns {
            let cell = record.get(column.record_index).unwrap_or_default();
            if is_missing(cell) {
                column.skipped_rows += 1;
            } else {
                column
                    .values
                    .push((start, parse_number(layout.dialect, cell, line)?));
            }
        }
    }

    let row_step = match row_starts {
        [Some(first), Some(second)] if second > first => second - first,
        _ => return Err(ImportError::CannotInferResolution),
    };
    Ok(columns
        .into_iter()
        .map(|column| {
            // On a quarter-hour grid, a column with values only on the :00 rows is an hourly price.
            let hourly_on_finer_grid = row_step < Duration::hours(1)
                && !column.values.is_empty()
                && column.values.iter().all(|(start, _)| start.minute() == 0);
            let slot_length = if hourly_on_finer_grid {
                Duration::hours(1)
            } else {
                row_step
            };
            let points = column
                .values
                .into_iter()
                .map(|(start, price)| PriceSlot {
                    start,
                    end: start + slot_length,
                    price_eur_mwh: price,
                })
                .collect();
            build_report(column.header, points, column.skipped_rows, Vec::new())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::test_support::{count_between, import_shared, shared_price_file, utc};
    use crate::import::{Format, import_file, import_file_all_columns};
    use voltplan_core::Resolution;
    use voltplan_core::price::resample;

    fn price_at(report: &ImportReport, start: DateTime<Utc>) -> f64 {
        report
            .points
            .iter()
            .find(|p| p.start == start)
            .map(|p| p.price_eur_mwh)
            .unwrap()
    }

    fn stats(report: &ImportReport) -> (f64, f64, f64, usize) {
        let prices: Vec<f64> = report.points.iter().map(|p| p.price_eur_mwh).collect();
        let min = prices.iter().copied().fold(f64::INFINITY, f64::min);
        let max = prices.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = prices.iter().sum::<f64>() / prices.len() as f64;
        (min, mean, max, prices.iter().filter(|p| **p < 0.0).count())
    }

    const SMARD_2015: &str = "smard_day_ahead_2015_hourly_multizone.csv";
    const SMARD_2024_HOURLY: &str = "smard_grosshandelspreise_2024_hourly_multizone_de.csv";
    const SMARD_2024_QUARTER_GRID: &str =
        "smard_grosshandelspreise_2024_quarterhour_grid_multizone_de.csv.gz";

    #[test]
    fn english_2015_denmark_1_is_complete_with_23_and_25_hour_days() {
        let report = import_shared(SMARD_2015, Format::Smard, Some("DK_1"));
        assert_eq!(report.zone_column, "Denmark 1[€/MWh]");
        assert_eq!(report.points.len(), 8760);
        assert_eq!(report.first, Some(utc(2014, 12, 31, 23, 0)));
        assert_eq!(report.last, Some(utc(2015, 12, 31, 22, 0)));
        assert!(report.gaps.is_empty());
        assert_eq!(report.duplicates, 0);
        assert_eq!(report.points[0].price_eur_mwh, 25.02);
        assert_eq!(
            report.points[0].end - report.points[0].start,
            Duration::hours(1)
        );
        assert_eq!(report.points.last().map(|p| p.price_eur_mwh), Some(15.91));
        // Local 2015-03-29 has 23 hours, 2015-10-25 has 25.
        assert_eq!(
            count_between(&report, utc(2015, 3, 28, 23, 0), utc(2015, 3, 29, 22, 0)),
            23
        );
        assert_eq!(
            count_between(&report, utc(2015, 10, 24, 22, 0), utc(2015, 10, 25, 23, 0)),
            25
        );
        // The two `2:00 AM` rows of 2015-10-25: first CEST (00:00Z) 20.82, then CET (01:00Z) 20.77.
        assert_eq!(price_at(&report, utc(2015, 10, 25, 0, 0)), 20.82);
        assert_eq!(price_at(&report, utc(2015, 10, 25, 1, 0)), 20.77);
        let (min, mean, max, _) = stats(&report);
        assert_eq!((min, max), (-31.41, 99.77));
        assert!((mean - 22.90).abs() < 0.005);
    }

    #[test]
    fn english_2015_sparse_columns_report_missing_rows_and_gaps() {
        let reports =
            import_file_all_columns(shared_price_file(SMARD_2015), Format::Smard).unwrap();
        assert_eq!(reports.len(), 16);
        let by_name = |name: &str| {
            reports
                .iter()
                .find(|r| column_base_name(&r.zone_column) == name)
                .unwrap()
        };

        let de_at_lu = by_name("Germany/Austria/Luxembourg");
        assert_eq!((de_at_lu.points.len(), de_at_lu.skipped_rows), (8664, 96));
        assert_eq!(de_at_lu.first, Some(utc(2015, 1, 4, 23, 0)));

        let switzerland = by_name("Switzerland");
        assert_eq!(
            (switzerland.points.len(), switzerland.skipped_rows),
            (8736, 24)
        );
        assert_eq!(
            switzerland.gaps,
            vec![(utc(2015, 8, 30, 22, 0), utc(2015, 8, 31, 22, 0))]
        );

        let poland = by_name("Poland");
        assert_eq!((poland.points.len(), poland.skipped_rows), (6027, 2733));
        assert_eq!(poland.gaps.len(), 381);

        for empty in ["Germany/Luxembourg", "Austria", "Belgium", "Norway 2"] {
            let report = by_name(empty);
            assert_eq!(
                (report.points.len(), report.skipped_rows),
                (0, 8760),
                "{empty}"
            );
            assert_eq!(report.first, None);
        }
        // Without a column choice the DE-LU column is taken, which is empty in 2015.
        let default = import_shared(SMARD_2015, Format::Smard, None);
        assert_eq!(default.zone_column, "Germany/Luxembourg[€/MWh]");
        assert!(default.points.is_empty());
    }

    #[test]
    fn german_2024_hourly_de_lu_matches_the_verified_statistics() {
        let report = import_shared(SMARD_2024_HOURLY, Format::Smard, Some("DE_LU"));
        assert_eq!(
            report.zone_column,
            "Deutschland/Luxemburg [€/MWh] Originalauflösungen"
        );
        assert_eq!(report.points.len(), 8784);
        assert_eq!(report.first, Some(utc(2023, 12, 31, 23, 0)));
        assert_eq!(report.last, Some(utc(2024, 12, 31, 22, 0)));
        assert!(report.gaps.is_empty());
        assert_eq!((report.duplicates, report.skipped_rows), (0, 0));
        assert_eq!(report.points[0].price_eur_mwh, 0.10);
        assert_eq!(report.points[1].price_eur_mwh, 0.01);
        let (min, mean, max, negative) = stats(&report);
        assert_eq!((min, max, negative), (-135.45, 936.28, 457));
        assert!((mean - 78.51).abs() < 0.005);
        // 2024-03-31 (23 h; the 01:00 row has a wrong `Datum bis`) and 2024-10-27 (25 h).
        assert_eq!(
            count_between(&report, utc(2024, 3, 30, 23, 0), utc(2024, 3, 31, 22, 0)),
            23
        );
        assert_eq!(price_at(&report, utc(2024, 3, 31, 0, 0)), 66.71);
        assert_eq!(
            price_at(&report, utc(2024, 3, 31, 0, 0) + Duration::hours(1)),
            64.98
        );
        assert_eq!(
            count_between(&report, utc(2024, 10, 26, 22, 0), utc(2024, 10, 27, 23, 0)),
            25
        );
        assert_eq!(price_at(&report, utc(2024, 10, 27, 0, 0)), 82.23);
        assert_eq!(price_at(&report, utc(2024, 10, 27, 1, 0)), 80.43);
    }

    #[test]
    fn german_2024_thousands_separator_and_column_names() {
        let slovenia = import_shared(SMARD_2024_HOURLY, Format::Csv, Some("Slowenien"));
        // `1.022,27` on 2024-08-29 19:00 CEST.
        assert_eq!(price_at(&slovenia, utc(2024, 8, 29, 17, 0)), 1022.27);
        let austria = import_shared(SMARD_2024_HOURLY, Format::Smard, Some("AT"));
        assert_eq!(
            austria.zone_column,
            "Österreich [€/MWh] Originalauflösungen"
        );
        let (min, mean, max, negative) = stats(&austria);
        assert_eq!((min, max, negative), (-126.42, 850.0, 296));
        assert!((mean - 81.54).abs() < 0.005);
        let unknown = import_file(
            shared_price_file(SMARD_2024_HOURLY),
            Format::Smard,
            Some("SE_3"),
        )
        .unwrap_err();
        assert!(
            matches!(unknown, ImportError::UnknownColumn { ref available, .. } if available.len() == 17),
            "{unknown}"
        );
    }

    #[test]
    fn quarter_hour_grid_2024_gives_the_same_hourly_prices_and_quarter_hourly_italy() {
        let grid =
            import_file_all_columns(shared_price_file(SMARD_2024_QUARTER_GRID), Format::Smard)
                .unwrap();
        let hourly =
            import_file_all_columns(shared_price_file(SMARD_2024_HOURLY), Format::Smard).unwrap();
        assert_eq!(grid.len(), 17);
        for (grid_column, hourly_column) in grid.iter().zip(&hourly) {
            // Only the suffix differs for Italy (`Berechnete Auflösungen` in the hourly file).
            assert_eq!(
                column_base_name(&grid_column.zone_column),
                column_base_name(&hourly_column.zone_column)
            );
            if column_base_name(&grid_column.zone_column) == "DE/AT/LU" {
                assert_eq!(
                    (grid_column.points.len(), grid_column.skipped_rows),
                    (0, 35136)
                );
            } else if column_base_name(&grid_column.zone_column) == "Italien (Nord)" {
                assert_eq!(grid_column.points.len(), 35136);
                assert_eq!(
                    grid_column.points[0].end - grid_column.points[0].start,
                    Duration::minutes(15)
                );
                assert_eq!(grid_column.points[3].price_eur_mwh, 107.09);
                assert!(grid_column.gaps.is_empty());
                let hours = resample(&grid_column.points, Resolution::Hour).unwrap();
                assert_eq!(hours, hourly_column.points);
            } else {
                assert_eq!(
                    grid_column.points, hourly_column.points,
                    "{}",
                    grid_column.zone_column
                );
                assert_eq!(
                    grid_column.skipped_rows, 26352,
                    "{}",
                    grid_column.zone_column
                );
                assert!(grid_column.gaps.is_empty(), "{}", grid_column.zone_column);
            }
        }
        let de_lu = grid
            .iter()
            .find(|r| column_matches(&r.zone_column, "DE_LU"))
            .unwrap();
        assert_eq!(de_lu.points.len(), 8784);
        assert_eq!(
            count_between(de_lu, utc(2024, 10, 26, 22, 0), utc(2024, 10, 27, 23, 0)),
            25
        );
        let italy = grid
            .iter()
            .find(|r| column_matches(&r.zone_column, "IT_NORD"))
            .unwrap();
        assert_eq!(
            count_between(italy, utc(2024, 3, 30, 23, 0), utc(2024, 3, 31, 22, 0)),
            92
        );
        assert_eq!(
            count_between(italy, utc(2024, 10, 26, 22, 0), utc(2024, 10, 27, 23, 0)),
            100
        );
    }

    #[test]
    fn english_combined_dialect_from_newer_exports() {
        let text = "\u{feff}Start date;End date;Germany/Luxembourg [€/MWh] Original resolutions;Austria [€/MWh] Original resolutions\n\
                    Oct 1, 2025 12:00 AM;Oct 1, 2025 12:15 AM;1,001.5;-\n\
                    Oct 1, 2025 12:15 AM;Oct 1, 2025 12:30 AM;-2.5;7\n";
        let report = super::import(text.trim_start_matches('\u{feff}'), None).unwrap();
        assert_eq!(report.points.len(), 2);
        assert_eq!(report.points[0].start, utc(2025, 9, 30, 22, 0));
        assert_eq!(report.points[0].price_eur_mwh, 1001.5);
        assert_eq!(report.points[1].end, utc(2025, 9, 30, 22, 30));
        let austria = super::import(text.trim_start_matches('\u{feff}'), Some("austria")).unwrap();
        assert_eq!((austria.points.len(), austria.skipped_rows), (1, 1));
    }

    #[test]
    fn a_row_inside_the_spring_gap_is_rejected() {
        let text = "Datum von;Datum bis;Österreich [€/MWh] Originalauflösungen\n\
                    31.03.2024 01:00;31.03.2024 03:00;1,0\n31.03.2024 02:00;31.03.2024 03:00;2,0\n";
        assert!(matches!(
            super::import(text, Some("AT")),
            Err(ImportError::Malformed { line: 3, .. })
        ));
    }
}
