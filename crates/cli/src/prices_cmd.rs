//! `voltplan prices import`: load price files (SMARD, generic CSV, ENTSO-E XML) into the store as
//! public prices of one zone.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use voltplan_core::price::resolution_duration;
use voltplan_core::{Clock, PriceZone, SystemClock};
use voltplan_prices::{Format, ImportReport, import_file};
use voltplan_store::{Store, UpsertSummary};

use crate::DatabaseArgs;
use crate::serve::open_store;

/// Points per store call. Each call is its own transaction, so the progress bar moves during a
/// long file; re-running an interrupted import is safe because the upsert is idempotent.
const POINTS_PER_BATCH: usize = 8_784;

#[derive(Subcommand)]
pub enum PricesCommand {
    /// Import price files as public prices of a zone (idempotent: re-importing changes nothing).
    Import(ImportArgs),
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Price zone the prices belong to, e.g. `DE_LU`.
    #[arg(long)]
    zone: PriceZone,
    /// `csv` (dialect recognised by the header), `smard` or `entsoe-xml`.
    #[arg(long)]
    format: Format,
    /// Column or series to read. SMARD files default to the zone's column; a generic CSV with
    /// several price columns needs it.
    #[arg(long)]
    column: Option<String>,
    #[command(flatten)]
    db: DatabaseArgs,
    /// Files to import; `.gz` is recognised by its content.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(cmd: PricesCommand) -> anyhow::Result<()> {
    match cmd {
        PricesCommand::Import(args) => import(args).await,
    }
}

/// The column to read when none was given. A SMARD export holds many zones and its importer
/// defaults to DE_LU, which would store German prices under another zone without a word.
fn default_column(format: Format, zone: PriceZone, column: Option<String>) -> Option<String> {
    match (column, format) {
        (Some(column), _) => Some(column),
        (None, Format::Smard) => Some(zone.as_str().to_owned()),
        (None, _) => None,
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let store = open_store(&args.db, 2).await?;
    let column = default_column(args.format, args.zone, args.column);

    // Parse everything first (a year of a zone takes milliseconds) so the bar knows its length.
    let mut parsed: Vec<(PathBuf, ImportReport)> = Vec::new();
    let mut failures = 0usize;
    for path in &args.files {
        let (path_owned, format, column) = (path.clone(), args.format, column.clone());
        let report = tokio::task::spawn_blocking(move || {
            import_file(&path_owned, format, column.as_deref())
        })
        .await
        .context("the import task failed")?;
        match report {
            Ok(report) => parsed.push((path.clone(), report)),
            Err(error) => {
                failures += 1;
                eprintln!("{}: {error}", path.display());
            }
        }
    }

    let total: usize = parsed.iter().map(|(_, report)| report.points.len()).sum();
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} points ({per_sec}, eta {eta})",
        )
        .context("progress bar template")?,
    );
    let received_at = SystemClock.now();
    for (path, report) in &parsed {
        match store_report(store.as_ref(), args.zone, path, report, received_at, &bar).await {
            // `suspend`, not `println`: a hidden bar (output not a terminal) drops `println` text.
            Ok(summary) => {
                bar.suspend(|| println!("{}", summary_line(path, args.zone, report, &summary)));
            }
            Err(error) => {
                failures += 1;
                bar.suspend(|| eprintln!("{}: {error:#}", path.display()));
            }
        }
    }
    bar.finish_and_clear();
    if failures > 0 {
        anyhow::bail!("{failures} of {} files failed", args.files.len());
    }
    Ok(())
}

async fn store_report(
    store: &dyn Store,
    zone: PriceZone,
    path: &Path,
    report: &ImportReport,
    received_at: DateTime<Utc>,
    bar: &ProgressBar,
) -> anyhow::Result<UpsertSummary> {
    let source = format!("file:{}", file_name(path));
    let mut total = UpsertSummary::default();
    for batch in report.points.chunks(POINTS_PER_BATCH) {
        let summary = store
            .upsert_prices(zone, None, &source, batch, received_at)
            .await
            .with_context(|| format!("storing prices of {}", path.display()))?;
        total.received += summary.received;
        total.written += summary.written;
        total.unchanged += summary.unchanged;
        bar.inc(u64::try_from(batch.len()).unwrap_or(u64::MAX));
    }
    Ok(total)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

fn summary_line(
    path: &Path,
    zone: PriceZone,
    report: &ImportReport,
    summary: &UpsertSummary,
) -> String {
    let span = match (report.points.first(), report.points.last()) {
        (Some(first), Some(last)) => {
            format!("{} .. {}", first.start.to_rfc3339(), last.end.to_rfc3339())
        }
        _ => "no points".to_owned(),
    };
    let missing: Duration = report.gaps.iter().map(|(start, end)| *end - *start).sum();
    let native = resolution_duration(zone.info().resolution);
    // Historic files can be coarser than the zone's resolution today (15-minute SDAC started
    // 2025-10-01); the API resamples on read, so this is information, not an error.
    let off_resolution = report
        .points
        .iter()
        .filter(|slot| slot.end - slot.start != native)
        .count();
    let mut line = format!(
        "{}: column {:?}, {} points, {span}, {} gaps ({} h missing), {} duplicates, {} skipped rows; stored {} new or changed, {} unchanged",
        path.display(),
        report.zone_column,
        report.points.len(),
        report.gaps.len(),
        missing.num_minutes() as f64 / 60.0,
        report.duplicates,
        report.skipped_rows,
        summary.written,
        summary.unchanged,
    );
    if off_resolution > 0 {
        line.push_str(&format!(
            "; {off_resolution} points are not {}-minute slots (stored as they are)",
            native.num_minutes()
        ));
    }
    for warning in &report.warnings {
        line.push_str(&format!("\n  warning: {warning}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smard_files_default_to_the_zones_column() {
        assert_eq!(
            default_column(Format::Smard, PriceZone::At, None).as_deref(),
            Some("AT")
        );
        assert_eq!(
            default_column(Format::Smard, PriceZone::At, Some("Österreich".into())).as_deref(),
            Some("Österreich")
        );
        assert_eq!(default_column(Format::Csv, PriceZone::At, None), None);
    }
}
