//! File importers: turn price files into UTC [`PriceSlot`]s plus a report of what was found.
//!
//! One module per file dialect:
//!
//! | [`Format`] | dialect | module |
//! |---|---|---|
//! | `csv` | `timestamp,price_eur_mwh` (RFC 3339 with offset) | [`generic_csv`] |
//! | `csv` | Ember wholesale price export (`Country,Datetime (UTC),…`) | [`ember`] |
//! | `csv` | Energy-Charts export (two header lines, `Datum (MEZ)`) | [`energy_charts`] |
//! | `smard` (also sniffed by `csv`) | SMARD.de export, English or German UI | [`smard`] |
//! | `entsoe-xml` | ENTSO-E A44 `Publication_MarketDocument` | [`entsoe_xml`] |
//!
//! `.gz` files are recognised by their magic bytes and decompressed first, whatever the name.

pub mod ember;
pub mod energy_charts;
pub mod entsoe_xml;
pub mod generic_csv;
pub mod smard;

use crate::entsoe::EntsoeParseError;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use voltplan_core::PriceSlot;
use voltplan_core::price::{TimeRange, find_gaps};
use voltplan_core::time::{LocalInstant, resolve_local};

/// Which importer to use. `Csv` recognises its dialect (generic, Ember, Energy-Charts, SMARD)
/// from the header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Csv,
    Smard,
    EntsoeXml,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Csv, Format::Smard, Format::EntsoeXml];

    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Smard => "smard",
            Format::EntsoeXml => "entsoe-xml",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown import format {0:?} (expected csv, smard or entsoe-xml)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "csv" => Ok(Format::Csv),
            "smard" => Ok(Format::Smard),
            "entsoe-xml" | "entsoe" | "xml" => Ok(Format::EntsoeXml),
            _ => Err(UnknownFormat(value.to_owned())),
        }
    }
}

/// What one import produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// The column (or series) the prices were read from, as the file names it.
    pub zone_column: String,
    /// Ascending, one slot per start instant (later duplicates dropped).
    pub points: Vec<PriceSlot>,
    /// Start of the first point.
    pub first: Option<DateTime<Utc>>,
    /// Start of the last point.
    pub last: Option<DateTime<Utc>>,
    /// `[start, end)` ranges between the first point's start and the last point's end that no
    /// point covers.
    pub gaps: Vec<TimeRange>,
    /// Rows whose start instant had already been seen (dropped, the first one wins).
    pub duplicates: usize,
    /// Rows without a value for the column (`-`, empty).
    pub skipped_rows: usize,
    /// Upstream defects that were repaired, e.g. a wrong UTC offset.
    pub warnings: Vec<String>,
    /// The bidding zones the file itself says the prices are for (ENTSO-E XML: the EIC codes of
    /// `in_Domain.mRID`); empty when the format does not say.
    pub areas: Vec<String>,
}

impl ImportReport {
    /// Refuses a file that says it holds another zone's prices than `zone`: an ENTSO-E document
    /// for Switzerland must not be stored as Austria's.
    pub fn check_zone(&self, zone: voltplan_core::PriceZone) -> Result<(), ImportError> {
        let expected = zone.info().eic;
        match self
            .areas
            .iter()
            .find(|area| Some(area.as_str()) != expected)
        {
            None => Ok(()),
            Some(found) => Err(ImportError::WrongZone {
                zone: zone.as_str().to_owned(),
                expected: expected.unwrap_or("none").to_owned(),
                found: found.clone(),
            }),
        }
    }
}

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot decompress gzip data: {0}")]
    Gzip(std::io::Error),
    #[error("CSV error: {0}")]
    Csv(#[from] csv::Error),
    #[error("file is not UTF-8 text: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error("unrecognised header {0:?}")]
    UnrecognisedHeader(String),
    #[error("column {wanted:?} not found; available: {available:?}")]
    UnknownColumn {
        wanted: String,
        available: Vec<String>,
    },
    #[error("the file has several columns {available:?}; choose one")]
    ColumnRequired { available: Vec<String> },
    #[error("cannot infer the slot length: fewer than two distinct timestamps")]
    CannotInferResolution,
    #[error("the rows are {minutes} minutes apart: only 15-minute and hourly prices are supported")]
    UnsupportedSlotLength { minutes: i64 },
    #[error("the row starting {start} is not on the {minutes}-minute grid (UTC)")]
    OffGrid { start: DateTime<Utc>, minutes: i64 },
    #[error(transparent)]
    Entsoe(#[from] EntsoeParseError),
    #[error("ENTSO-E document holds no prices: {0}")]
    NoPublishedPrices(String),
    #[error(
        "the file holds prices for area {found}, not for {zone} (EIC {expected}); choose the zone it is for"
    )]
    WrongZone {
        zone: String,
        expected: String,
        found: String,
    },
}

/// Imports one file. `column` picks the zone column (SMARD: a header or a Podero zone code such as
/// `DE_LU`; generic CSV: the price column; Ember: the country; ENTSO-E XML: the classification
/// sequence, default `1` = SDAC).
pub fn import_file(
    path: impl AsRef<Path>,
    format: Format,
    column: Option<&str>,
) -> Result<ImportReport, ImportError> {
    let bytes = read_file(path.as_ref())?;
    import_bytes(&bytes, format, column)
}

/// Imports every zone column of a file in one pass (SMARD exports have many); single-series
/// formats return one report.
pub fn import_file_all_columns(
    path: impl AsRef<Path>,
    format: Format,
) -> Result<Vec<ImportReport>, ImportError> {
    let bytes = read_file(path.as_ref())?;
    let bytes = decompress_if_gzip(&bytes)?;
    let text = text_of(&bytes)?;
    match format {
        Format::Smard => smard::import_all(text),
        Format::Csv if smard::looks_like_smard(text) => smard::import_all(text),
        _ => Ok(vec![import_bytes(&bytes, format, None)?]),
    }
}

/// Imports file contents already in memory (e.g. an upload). Gzip is detected by magic bytes.
pub fn import_bytes(
    bytes: &[u8],
    format: Format,
    column: Option<&str>,
) -> Result<ImportReport, ImportError> {
    let bytes = decompress_if_gzip(bytes)?;
    let text = text_of(&bytes)?;
    match format {
        Format::Smard => smard::import(text, column),
        Format::EntsoeXml => entsoe_xml::import(text, column),
        Format::Csv => {
            let header = text.lines().next().unwrap_or_default();
            if smard::looks_like_smard(text) {
                smard::import(text, column)
            } else if ember::looks_like_ember(header) {
                ember::import(text, column)
            } else if energy_charts::looks_like_energy_charts(header) {
                energy_charts::import(text, column)
            } else {
                generic_csv::import(text, column)
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_owned(),
        source,
    })
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: &str = "\u{feff}";

fn decompress_if_gzip(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, ImportError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut decompressed = Vec::with_capacity(bytes.len() * 6);
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut decompressed)
            .map_err(ImportError::Gzip)?;
        Ok(std::borrow::Cow::Owned(decompressed))
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

fn text_of(bytes: &[u8]) -> Result<&str, ImportError> {
    let text = std::str::from_utf8(bytes)?;
    // SMARD and Energy-Charts exports start with a BOM, which would otherwise stick to the first header.
    Ok(text.strip_prefix(UTF8_BOM).unwrap_or(text))
}

/// Sorts, drops repeated start instants and works out span and gaps.
pub(crate) fn build_report(
    zone_column: String,
    mut points: Vec<PriceSlot>,
    skipped_rows: usize,
    mut warnings: Vec<String>,
) -> ImportReport {
    // Stable sort: among equal starts the row that came first in the file stays first.
    points.sort_by_key(|slot| slot.start);
    let mut unique: Vec<PriceSlot> = Vec::with_capacity(points.len());
    let mut duplicates = 0;
    let mut conflicting = 0;
    for slot in points {
        match unique.last() {
            Some(kept) if kept.start == slot.start => {
                duplicates += 1;
                if kept.price_eur_mwh != slot.price_eur_mwh {
                    conflicting += 1;
                }
            }
            _ => unique.push(slot),
        }
    }
    if conflicting > 0 {
        warnings.push(format!(
            "{conflicting} of {duplicates} duplicate rows had a different price; the first row was kept"
        ));
    }
    let first = unique.first().map(|slot| slot.start);
    let last = unique.last().map(|slot| slot.start);
    let gaps = match (unique.first(), unique.last()) {
        (Some(first), Some(last)) => find_gaps(&unique, first.start, last.end),
        _ => Vec::new(),
    };
    ImportReport {
        zone_column,
        points: unique,
        first,
        last,
        gaps,
        duplicates,
        skipped_rows,
        warnings,
        areas: Vec::new(),
    }
}

/// The rows of one price series as a file lists them. Every row's start counts, a row without a
/// value too: it sets the slot length like the others and stays a gap, so that no neighbour's
/// price is stretched over it.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    starts: Vec<DateTime<Utc>>,
    values: Vec<(DateTime<Utc>, f64)>,
    /// Rows without a value (`-`, empty, `NaN`).
    pub(crate) skipped: usize,
}

impl Rows {
    pub(crate) fn missing(&mut self, start: DateTime<Utc>) {
        self.starts.push(start);
        self.skipped += 1;
    }

    pub(crate) fn value(&mut self, start: DateTime<Utc>, price: f64) {
        self.starts.push(start);
        self.values.push((start, price));
    }

    /// One slot per value, each as long as the file's slot length ([`slot_length`]).
    pub(crate) fn into_slots(self) -> Result<Vec<PriceSlot>, ImportError> {
        let step = slot_length(&self.starts)?;
        Ok(self
            .values
            .into_iter()
            .map(|(start, price)| PriceSlot {
                start,
                end: start + step,
                price_eur_mwh: price,
            })
            .collect())
    }
}

/// The file's slot length: the smallest positive step between consecutive distinct starts (gaps
/// only make steps larger). It must be 15 or 60 minutes, and every start on that grid in UTC, as
/// day-ahead markets publish them; anything else would make slots overlap or leave holes.
pub(crate) fn slot_length(starts: &[DateTime<Utc>]) -> Result<Duration, ImportError> {
    let mut sorted = starts.to_vec();
    sorted.sort_unstable();
    let step = sorted
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .filter(|step| *step > Duration::zero())
        .min()
        .ok_or(ImportError::CannotInferResolution)?;
    let minutes = step.num_minutes();
    if step != Duration::minutes(minutes) || !matches!(minutes, 15 | 60) {
        // Off-grid rows make odd steps: name the first such row, which is the clearer message.
        if let Some(start) = sorted.iter().find(|s| !on_grid(**s, 15)) {
            return Err(ImportError::OffGrid {
                start: *start,
                minutes: 15,
            });
        }
        return Err(ImportError::UnsupportedSlotLength { minutes });
    }
    match sorted.iter().find(|s| !on_grid(**s, minutes)) {
        Some(start) => Err(ImportError::OffGrid {
            start: *start,
            minutes,
        }),
        None => Ok(step),
    }
}

fn on_grid(instant: DateTime<Utc>, minutes: i64) -> bool {
    instant.timestamp() % (minutes * 60) == 0 && instant.timestamp_subsec_nanos() == 0
}

/// Resolves local wall-clock interval starts (as SMARD and Energy-Charts write them) to UTC.
///
/// In the autumn overlap a wall time occurs twice; files list the summer-time occurrence first,
/// so the later instant is taken once the earlier one has been passed.
#[derive(Debug)]
pub(crate) struct WallClock {
    time_zone: Tz,
    previous: Option<DateTime<Utc>>,
}

impl WallClock {
    pub(crate) fn new(time_zone: Tz) -> Self {
        Self {
            time_zone,
            previous: None,
        }
    }

    /// `None` when the wall time does not exist (inside the spring-forward gap): a file row there
    /// is an error, not a time to resolve by `voltplan_core::time::local_to_utc`'s rule.
    pub(crate) fn resolve(&mut self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let instant = match resolve_local(local, &self.time_zone) {
            LocalInstant::Unique(instant) => instant,
            LocalInstant::Repeated { earlier, later } => match self.previous {
                Some(previous) if previous >= earlier => later,
                _ => earlier,
            },
            LocalInstant::Skipped { .. } => return None,
        };
        self.previous = Some(instant);
        Some(instant)
    }

    /// Both readings of an ambiguous wall time, for callers that carry an offset to pick one.
    pub(crate) fn candidates(&self, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match resolve_local(local, &self.time_zone) {
            LocalInstant::Unique(instant) => vec![instant],
            LocalInstant::Repeated { earlier, later } => vec![earlier, later],
            LocalInstant::Skipped { .. } => Vec::new(),
        }
    }

    pub(crate) fn accept(&mut self, instant: DateTime<Utc>) {
        self.previous = Some(instant);
    }
}

/// A cell that stands for "no value" in the exports we read.
pub(crate) fn is_missing(cell: &str) -> bool {
    let cell = cell.trim();
    cell.is_empty()
        || cell == "-"
        || cell.eq_ignore_ascii_case("n/e")
        || cell.eq_ignore_ascii_case("nan")
}

pub(crate) fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, |position| position.line())
}

pub(crate) fn parse_price(cell: &str, line: u64) -> Result<f64, ImportError> {
    cell.trim()
        .parse::<f64>()
        .map_err(|_| ImportError::Malformed {
            line,
            message: format!("price {cell:?} is not a number"),
        })
}

/// The names of a file's price columns, for errors that list them.
fn column_names(columns: &[(usize, &str)]) -> Vec<String> {
    columns.iter().map(|(_, name)| (*name).to_owned()).collect()
}

/// The price column named `wanted` (case-insensitive), or an error listing the ones there are.
fn find_column<'a>(
    columns: &[(usize, &'a str)],
    wanted: &str,
) -> Result<(usize, &'a str), ImportError> {
    columns
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(wanted))
        .copied()
        .ok_or_else(|| ImportError::UnknownColumn {
            wanted: wanted.to_owned(),
            available: column_names(columns),
        })
}

#[cfg(test)]
pub(crate) mod test_support {
    use chrono::{DateTime, TimeZone, Utc};
    use std::path::PathBuf;

    use super::ImportReport;

    /// Path of a file in the shared data folder beside the repository, failing loudly (never
    /// skipping) when the folder is missing so a CI without the data cannot pass silently.
    pub(crate) fn shared_price_file(name: &str) -> PathBuf {
        let directory =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/prices");
        let path = directory.join(name);
        assert!(
            path.is_file(),
            "shared test data missing: {} does not exist (expected /work/shared/data/prices beside the repository)",
            path.display()
        );
        path
    }

    /// A UTC instant to the minute.
    pub(crate) fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// A file of the shared data folder, imported (it must import).
    pub(crate) fn import_shared(
        name: &str,
        format: super::Format,
        column: Option<&str>,
    ) -> ImportReport {
        super::import_file(shared_price_file(name), format, column).unwrap()
    }

    /// The lowest and the highest price of `report`.
    pub(crate) fn price_range(report: &ImportReport) -> (f64, f64) {
        let prices = report.points.iter().map(|p| p.price_eur_mwh);
        (
            prices.clone().fold(f64::INFINITY, f64::min),
            prices.fold(f64::NEG_INFINITY, f64::max),
        )
    }

    /// How many of `report`'s points start in `[from, to)`.
    pub(crate) fn count_between(
        report: &ImportReport,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> usize {
        report
            .points
            .iter()
            .filter(|p| p.start >= from && p.start < to)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_parses_from_cli_spellings() {
        assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
        assert_eq!("SMARD".parse::<Format>(), Ok(Format::Smard));
        assert_eq!("entsoe-xml".parse::<Format>(), Ok(Format::EntsoeXml));
        assert_eq!("entsoe_xml".parse::<Format>(), Ok(Format::EntsoeXml));
        assert!("json".parse::<Format>().is_err());
        for format in Format::ALL {
            assert_eq!(format.to_string().parse::<Format>(), Ok(format));
        }
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        use std::io::Write;
        let csv = "timestamp,price_eur_mwh\n2025-01-01T00:00:00Z,1.5\n2025-01-01T01:00:00+01:00,2.5\n2025-01-01T01:00:00Z,3.5\n";
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(csv.as_bytes()).unwrap();
        let gz = encoder.finish().unwrap();
        let report = import_bytes(&gz, Format::Csv, None).unwrap();
        assert_eq!(report.points.len(), 2);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.points[0].price_eur_mwh, 1.5);
        assert_eq!(report.warnings.len(), 1);
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let error = import_file("/nonexistent/prices.csv", Format::Csv, None).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/prices.csv"),
            "{error}"
        );
    }
}
