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

use crate::runtime::DatabaseArgs;
use crate::runtime::open_store;

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
    /// For trying Voltplan out with historic files: shift every file's prices by whole weeks
    /// (weekdays stay) so that its last slot ends 2 to 9 days from now, and today and tomorrow
    /// are covered. Stored under the source `file:NAME+Nw`. Never on a production database.
    #[arg(long)]
    shift_to_now: bool,
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
    let mut parsed: Vec<(PathBuf, ImportReport, Option<i64>)> = Vec::new();
    let mut failures = 0usize;
    for path in &args.files {
        let (path_owned, format, column) = (path.clone(), args.format, column.clone());
        let report = tokio::task::spawn_blocking(move || {
            import_file(&path_owned, format, column.as_deref())
        })
        .await
        .context("the import task failed")?
        .and_then(|report| report.check_zone(args.zone).map(|()| report));
        match report {
            Ok(mut report) => {
                let mut shifted_weeks = None;
                if args.shift_to_now
                    && let Some(last) = report.points.last()
                {
                    let weeks = weeks_to_now(last.end, SystemClock.now());
                    let shift = Duration::weeks(weeks);
                    for point in &mut report.points {
                        point.start += shift;
                        point.end += shift;
                    }
                    for gap in &mut report.gaps {
                        gap.0 += shift;
                        gap.1 += shift;
                    }
                    report.first = report.first.map(|t| t + shift);
                    report.last = report.last.map(|t| t + shift);
                    shifted_weeks = Some(weeks);
                }
                parsed.push((path.clone(), report, shifted_weeks));
            }
            Err(error) => {
                failures += 1;
                eprintln!("{}: {error}", path.display());
            }
        }
    }

    let total: usize = parsed
        .iter()
        .map(|(_, report, _)| report.points.len())
        .sum();
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} points ({per_sec}, eta {eta})",
        )
        .context("progress bar template")?,
    );
    let received_at = SystemClock.now();
    for (path, report, shifted_weeks) in &parsed {
        let mut source = format!("file:{}", file_name(path));
        if let Some(weeks) = shifted_weeks {
            source.push_str(&format!("+{weeks}w"));
        }
        match store_report(
            store.as_ref(),
            args.zone,
            &source,
            report,
            received_at,
            &bar,
        )
        .await
        {
            // `suspend`, not `println`: a hidden bar (output not a terminal) drops `println` text.
            Ok(summary) => {
                let mut line = summary_line(path, args.zone, report, &summary);
                if let Some(weeks) = shifted_weeks {
                    line.push_str(&format!(
                        "\n  shifted {weeks} weeks onto today (--shift-to-now)"
                    ));
                }
                bar.suspend(|| println!("{line}"));
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
    source: &str,
    report: &ImportReport,
    received_at: DateTime<Utc>,
    bar: &ProgressBar,
) -> anyhow::Result<UpsertSummary> {
    let mut total = UpsertSummary::default();
    for batch in report.points.chunks(POINTS_PER_BATCH) {
        let summary = store
            .upsert_prices(zone, None, source, batch, received_at)
            .await
            .with_context(|| format!("storing prices from {source}"))?;
        total.received += summary.received;
        total.written += summary.written;
        total.unchanged += summary.unchanged;
        bar.inc(u64::try_from(batch.len()).unwrap_or(u64::MAX));
    }
    Ok(total)
}

/// Whole weeks to add so that a series ending at `last_end` ends 2 to 9 days after `now`.
fn weeks_to_now(last_end: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    const WEEK_SECS: i64 = 7 * 86_400;
    let behind = (now + Duration::days(2) - last_end).num_seconds();
    // The fewest whole weeks that bring the end to `now + 2 days` or later.
    (behind + WEEK_SECS - 1).div_euclid(WEEK_SECS)
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
    fn shifted_prices_end_two_to_nine_days_from_now() {
        let now: DateTime<Utc> = "2026-11-30T23:30:00Z".parse().unwrap();
        for last_end in [
            "2025-01-01T00:00:00Z",
            "2024-06-30T22:00:00Z",
            "2026-12-20T00:00:00Z",
            "2026-12-02T23:30:00Z",
        ] {
            let last_end: DateTime<Utc> = last_end.parse().unwrap();
            let end = last_end + Duration::weeks(weeks_to_now(last_end, now));
            assert!(
                end >= now + Duration::days(2) && end < now + Duration::days(9),
                "{last_end} -> {end}"
            );
            assert!(end > now + Duration::days(1), "tomorrow is covered: {end}");
        }
    }

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
