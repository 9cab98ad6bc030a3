//! Import throughput on a year of SMARD quarter-hour-grid data for all 17 zone columns.
//!
//! Run: `cargo bench -p voltplan-prices --bench import` (release profile; plain `Instant` timing,
//! no harness). Reads the demo copy in `data/prices/`, so it needs no shared folder.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use voltplan_core::Resolution;
use voltplan_core::price::resample;
use voltplan_prices::import::{Format, import_bytes, import_file_all_columns};

const ROUNDS: u32 = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        "../../data/prices/smard_grosshandelspreise_2024_quarterhour_grid_multizone_de.csv.gz",
    );
    let gz =
        std::fs::read(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;

    // Warm-up, and the numbers the timing is divided by.
    let reports = import_file_all_columns(&path, Format::Smard)?;
    let points: usize = reports.iter().map(|report| report.points.len()).sum();
    let cells: usize = reports
        .iter()
        .map(|report| report.points.len() + report.skipped_rows)
        .sum();
    println!(
        "file: {} ({} KiB gz), {} zone columns, {points} price points, {cells} cells",
        path.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default(),
        gz.len() / 1024,
        reports.len()
    );

    let all_columns = time(|| {
        let reports = import_file_all_columns(&path, Format::Smard)
            .map(|r| r.len())
            .unwrap_or(0);
        black_box(reports);
    });
    report(
        "all columns, one pass (gunzip + parse + report)",
        all_columns,
        points,
        cells,
    );

    // What the planner consumes: every zone as a dense quarter-hour series.
    let quarter_hour_points: usize = reports
        .iter()
        .map(|report| resample(&report.points, Resolution::QuarterHour).map_or(0, |q| q.len()))
        .sum();
    let to_quarter_hours = time(|| {
        let total: usize = import_file_all_columns(&path, Format::Smard)
            .map(|reports| {
                reports
                    .iter()
                    .map(|r| resample(&r.points, Resolution::QuarterHour).map_or(0, |q| q.len()))
                    .sum()
            })
            .unwrap_or(0);
        black_box(total);
    });
    report(
        "all columns + resample to 15-min (quarter-hour points)",
        to_quarter_hours,
        quarter_hour_points,
        cells,
    );

    let one_column = time(|| {
        let report = import_bytes(&gz, Format::Smard, Some("DE_LU"))
            .map(|r| r.points.len())
            .unwrap_or(0);
        black_box(report);
    });
    let de_lu_points = reports.first().map_or(0, |report| report.points.len());
    let rows = reports
        .first()
        .map_or(0, |report| report.points.len() + report.skipped_rows);
    report(
        "one column (DE_LU), from gz bytes",
        one_column,
        de_lu_points,
        rows,
    );
    Ok(())
}

fn time(mut run: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        run();
        best = best.min(started.elapsed());
    }
    best
}

fn report(label: &str, best: Duration, points: usize, cells: usize) {
    let seconds = best.as_secs_f64();
    println!(
        "{label}: best of {ROUNDS} {:.1} ms, {:.0} points/s, {:.0} cells/s",
        seconds * 1e3,
        points as f64 / seconds,
        cells as f64 / seconds
    );
}
