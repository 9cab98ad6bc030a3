//! The OCPP load benchmark: N simulated chargers on one `voltplan serve`, each sending a Heartbeat
//! and a MeterValues every interval while SetChargingProfile calls are pushed through the
//! `ocpp_commands` queue. Per N: the time to connect the swarm, the server's memory per
//! connection, the profiles' round trip (from the rows the server wrote), dropped messages and the
//! server's CPU. See `bench/README.md`.
//!
//! `cargo build --release -p voltplan -p voltplan-ocpp-swarm && target/release/ocpp-swarm`

mod charger;
mod profiles;
mod server;
mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Parser;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, timeout};
use uuid::Uuid;
use voltplan_core::account::Role;
use voltplan_store::{ConnectOptions, OrgScope, Store, new_user, new_wallbox};
use voltplan_test_support::TestDatabase;

use charger::{Counters, Plan, Samples, Shared};
use stats::Percentiles;

#[derive(Parser, Debug)]
#[command(about = "OCPP load benchmark: a swarm of simulated chargers on one voltplan serve")]
struct Args {
    /// The `voltplan` binary to start (`cargo build --release -p voltplan`).
    #[arg(long, default_value = "target/release/voltplan")]
    server: PathBuf,
    /// A PostgreSQL URL whose role may create databases: each run gets a fresh database there
    /// (dropped afterwards). Without it, a fresh SQLite file per run.
    #[arg(long)]
    database_url: Option<String>,
    /// The swarm sizes, one run (and one fresh server and database) each.
    #[arg(long, value_delimiter = ',', default_value = "1000,2500,5000,10000")]
    chargers: Vec<usize>,
    /// Seconds measured once the whole swarm is connected.
    #[arg(long, default_value_t = 120)]
    window_secs: u64,
    /// Connections opened per second at most while the swarm ramps up (each costs the server an
    /// Argon2id verification).
    #[arg(long, default_value_t = 200)]
    ramp_per_sec: u32,
    /// Handshakes in flight at most: when the server falls behind, the ramp waits.
    #[arg(long, default_value_t = 64)]
    handshakes_in_flight: usize,
    /// Seconds between a charger's Heartbeats (and between its MeterValues).
    #[arg(long, default_value_t = 60)]
    interval_secs: u64,
    /// SetChargingProfile calls queued per second during the window, to random chargers.
    #[arg(long, default_value_t = 20.0)]
    profiles_per_sec: f64,
    /// The CSV written (default `bench/results/ocpp-swarm-<UTC time>.csv`).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// The server's loopback port.
    #[arg(long, default_value_t = 18090)]
    port: u16,
}

/// The password every simulated charger shares: one Argon2id hash serves all wallboxes, since
/// hashing 10,000 passwords would measure Argon2, not OCPP.
const PASSWORD: &str = "swarm-password-0123456789";

/// One run's numbers.
#[derive(Debug, Default)]
struct Row {
    chargers: usize,
    load_before: f64,
    setup_secs: f64,
    connected: u64,
    connect_secs: f64,
    handshake: Percentiles,
    rss0_kib: u64,
    rss_kib: u64,
    rss_end_kib: u64,
    hwm_kib: u64,
    calls: u64,
    results: u64,
    message: Percentiles,
    charger_dropped: u64,
    profiles: profiles::Outcome,
    profiles_received: u64,
    window_secs: f64,
    server_cpu_secs: f64,
    bench_cpu_secs: f64,
    server_problems: usize,
}

impl Row {
    /// (RSS with the swarm connected − RSS before) / N.
    fn kib_per_connection(&self) -> f64 {
        (self.rss_kib as f64 - self.rss0_kib as f64) / self.chargers.max(1) as f64
    }

    fn dropped(&self) -> u64 {
        self.charger_dropped + self.profiles.dropped() as u64
    }

    fn cpu_percent(secs: f64, window: f64) -> f64 {
        100.0 * secs / window.max(f64::EPSILON)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.server.exists(),
        "{} not found: cargo build --release -p voltplan",
        args.server.display()
    );
    let csv = args.csv.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "bench/results/ocpp-swarm-{}.csv",
            Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    let hash = voltplan_api::auth::secret::hash_secret(PASSWORD)?;
    let mut rows = Vec::new();
    for &n in &args.chargers {
        eprintln!(
            "== {n} chargers (load average {:.2})",
            server::load_average()
        );
        let row = run_one(&args, n, &hash).await?;
        print_row(&row);
        rows.push(row);
        write_csv(&csv, &rows)?;
    }
    println!();
    print_table(&rows);
    println!("\nCSV: {}", csv.display());
    Ok(())
}

async fn run_one(args: &Args, n: usize, hash: &str) -> anyhow::Result<Row> {
    let mut row = Row {
        chargers: n,
        load_before: server::load_average(),
        ..Row::default()
    };
    let database = match &args.database_url {
        Some(url) => TestDatabase::postgres(url).await,
        None => TestDatabase::sqlite("ocpp-swarm"),
    };
    let log_dir = std::env::temp_dir().join(format!("ocpp-swarm-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&log_dir)?;
    let server = server::Server::start(&args.server, database.url(), args.port, &log_dir).await?;
    let store = voltplan_store::connect(&ConnectOptions {
        max_connections: 4,
        ..ConnectOptions::new(database.url())
    })
    .await
    .context("opening the server's database")?;

    let started = Instant::now();
    let (org, wallboxes) = seed(store.as_ref(), n, hash).await?;
    row.setup_secs = started.elapsed().as_secs_f64();
    eprintln!("   {n} wallboxes created in {:.1} s", row.setup_secs);
    sleep(Duration::from_secs(1)).await;
    row.rss0_kib = server.memory()?.rss_kib;

    // The swarm ramps up.
    let shared = Arc::new(Shared {
        plan: Plan {
            port: args.port,
            password: PASSWORD.to_owned(),
            chargers: n,
            interval: Duration::from_secs(args.interval_secs),
            epoch: Instant::now(),
        },
        counters: Counters::default(),
        samples: Samples::default(),
        measuring: AtomicBool::new(false),
    });
    let (stop, stopped) = watch::channel(false);
    let ramp_start = Instant::now();
    let spawner = {
        let shared = shared.clone();
        let rate = args.ramp_per_sec.max(1);
        let in_flight = Arc::new(Semaphore::new(args.handshakes_in_flight.max(1)));
        tokio::spawn(async move {
            let mut chargers = JoinSet::new();
            let mut ticks = interval(Duration::from_secs(1) / rate);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            for index in 0..n {
                ticks.tick().await;
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                chargers.spawn(charger::run(index, shared.clone(), permit, stopped.clone()));
            }
            chargers
        })
    };
    // At least 10 handshakes a second, or the run is not worth measuring.
    let ramp_deadline = ramp_start + Duration::from_secs(60 + n as u64 / 10);
    let mut last_report = Instant::now();
    loop {
        let c = &shared.counters;
        let booted = c.booted.load(Ordering::Relaxed);
        let given_up =
            c.connect_failed.load(Ordering::Relaxed) + c.disconnected.load(Ordering::Relaxed);
        if booted + given_up >= n as u64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < ramp_deadline,
            "only {booted} of {n} chargers booted in {:.0} s; server log:\n{}",
            ramp_start.elapsed().as_secs_f64(),
            server.log_tail()
        );
        if last_report.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "   {booted} booted after {:.0} s (server RSS {} MiB)",
                ramp_start.elapsed().as_secs_f64(),
                server.memory()?.rss_kib / 1024
            );
            last_report = Instant::now();
        }
        sleep(Duration::from_millis(50)).await;
    }
    row.connect_secs = ramp_start.elapsed().as_secs_f64();
    row.connected = shared.counters.booted.load(Ordering::Relaxed);
    let mut chargers = spawner.await?;
    eprintln!(
        "   {} connected and booted in {:.1} s",
        row.connected, row.connect_secs
    );
    // The boots' GetConfiguration calls finish; then the swarm is in its steady state.
    sleep(Duration::from_secs(5)).await;
    row.rss_kib = server.memory()?.rss_kib;

    // The measured window: the swarm's messages go on, profiles are pushed.
    let server_cpu = server.cpu_secs()?;
    let bench_cpu = server::cpu_secs(std::process::id())?;
    let window_start = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    let ids = profiles::push(
        store.clone(),
        org,
        Arc::new(wallboxes),
        args.profiles_per_sec,
        window_start + Duration::from_secs(args.window_secs),
    )
    .await?;
    shared.measuring.store(false, Ordering::Relaxed);
    row.window_secs = window_start.elapsed().as_secs_f64();
    row.server_cpu_secs = server.cpu_secs()? - server_cpu;
    row.bench_cpu_secs = server::cpu_secs(std::process::id())? - bench_cpu;
    let memory = server.memory()?;
    row.rss_end_kib = memory.rss_kib;
    row.hwm_kib = memory.hwm_kib;

    // Calls still on their way get their answer (the central system waits 30 s for one).
    row.profiles = profiles::settle(
        store.as_ref(),
        org,
        &ids,
        Instant::now() + Duration::from_secs(45),
    )
    .await?;

    // The swarm hangs up: each charger waits for its outstanding call first.
    let _ = stop.send(true);
    let closing = timeout(Duration::from_secs(60), async {
        while chargers.join_next().await.is_some() {}
    })
    .await;
    if closing.is_err() {
        eprintln!("   {} chargers did not close within 60 s", chargers.len());
        chargers.abort_all();
    }
    let c = &shared.counters;
    row.calls = c.calls.load(Ordering::Relaxed);
    row.results = c.results.load(Ordering::Relaxed);
    row.charger_dropped = c.dropped();
    row.profiles_received = c.profiles.load(Ordering::Relaxed);
    row.handshake = Percentiles::of(take(&shared.samples.connect));
    row.message = Percentiles::of(take(&shared.samples.message));
    row.server_problems = server.log_problems();
    if row.server_problems > 0 {
        eprintln!(
            "   the server logged {} warnings or errors; the last ones:\n{}",
            row.server_problems,
            server.log_tail()
        );
    }
    server.stop().await;
    drop(store);
    database.drop_database().await;
    let _ = std::fs::remove_dir_all(&log_dir);
    Ok(row)
}

fn take(samples: &std::sync::Mutex<Vec<f64>>) -> Vec<f64> {
    std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()))
}

/// An organisation, a user and `n` wallboxes (`swarm-00000` …) sharing one password hash.
async fn seed(store: &dyn Store, n: usize, hash: &str) -> anyhow::Result<(OrgScope, Vec<Uuid>)> {
    let now = Utc::now();
    let org = OrgScope::new(store.create_organisation("OCPP swarm", now).await?.id);
    let user = store
        .create_user(
            org,
            &new_user(org, "swarm@example.com".to_owned(), Role::User, now),
        )
        .await?;
    let mut ids = Vec::with_capacity(n);
    for index in 0..n {
        let wallbox = new_wallbox(org, user.id, charger::charge_point_id(index), now);
        ids.push(store.create_wallbox(org, &wallbox, hash).await?.id);
    }
    Ok((org, ids))
}

const HEADER: &str = "| N | connected | connect s | handshake p50/p99 ms | RSS₀ MiB | RSS_N MiB | VmHWM MiB | KiB/conn | charger msgs sent/answered | msg p50/p99 ms | profiles | queue→sent p50/p99 ms | round trip p50/p95/p99/max ms | failed/expired | dropped | server CPU | bench CPU |";

fn table_line(r: &Row) -> String {
    let p = &r.profiles;
    format!(
        "| {} | {} | {:.0} | {:.0} / {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {} / {} | {:.1} / {:.1} | {} | {:.0} / {:.0} | {:.1} / {:.1} / {:.1} / {:.1} | {} / {} | {} | {:.0} % | {:.0} % |",
        r.chargers,
        r.connected,
        r.connect_secs,
        r.handshake.p50,
        r.handshake.p99,
        r.rss0_kib as f64 / 1024.0,
        r.rss_kib as f64 / 1024.0,
        r.hwm_kib as f64 / 1024.0,
        r.kib_per_connection(),
        r.calls,
        r.results,
        r.message.p50,
        r.message.p99,
        p.queued,
        p.queue_to_sent.p50,
        p.queue_to_sent.p99,
        p.round_trip.p50,
        p.round_trip.p95,
        p.round_trip.p99,
        p.round_trip.max,
        p.failed,
        p.expired,
        r.dropped(),
        Row::cpu_percent(r.server_cpu_secs, r.window_secs),
        Row::cpu_percent(r.bench_cpu_secs, r.window_secs),
    )
}

fn print_row(r: &Row) {
    eprintln!("{HEADER}\n{}", table_line(r));
}

fn print_table(rows: &[Row]) {
    println!("{HEADER}");
    println!("|{}", "---|".repeat(HEADER.matches('|').count() - 1));
    for r in rows {
        println!("{}", table_line(r));
    }
    println!(
        "CPU: % of one core over the window (2 cores = 200 %). dropped: charger CALLs without a \
         CALLRESULT (errors, timeouts, broken connections, failed handshakes) + profiles not accepted."
    );
}

/// The CSV's columns: names and values side by side, so they cannot drift apart.
fn csv_columns(r: &Row) -> Vec<(&'static str, String)> {
    let p = &r.profiles;
    let ms = |v: f64| format!("{v:.2}");
    vec![
        ("chargers", r.chargers.to_string()),
        ("load_before", ms(r.load_before)),
        ("setup_s", format!("{:.1}", r.setup_secs)),
        ("connected", r.connected.to_string()),
        ("connect_s", format!("{:.1}", r.connect_secs)),
        ("handshake_p50_ms", ms(r.handshake.p50)),
        ("handshake_p99_ms", ms(r.handshake.p99)),
        ("rss0_kib", r.rss0_kib.to_string()),
        ("rss_n_kib", r.rss_kib.to_string()),
        ("rss_end_kib", r.rss_end_kib.to_string()),
        ("vmhwm_kib", r.hwm_kib.to_string()),
        ("kib_per_connection", ms(r.kib_per_connection())),
        ("calls", r.calls.to_string()),
        ("results", r.results.to_string()),
        ("message_p50_ms", ms(r.message.p50)),
        ("message_p99_ms", ms(r.message.p99)),
        ("charger_dropped", r.charger_dropped.to_string()),
        ("profiles_queued", p.queued.to_string()),
        ("profiles_accepted", p.accepted.to_string()),
        ("profiles_rejected", p.rejected.to_string()),
        ("profiles_failed", p.failed.to_string()),
        ("profiles_expired", p.expired.to_string()),
        ("profiles_unresolved", p.unresolved.to_string()),
        ("profiles_received", r.profiles_received.to_string()),
        ("queue_to_sent_p50_ms", ms(p.queue_to_sent.p50)),
        ("queue_to_sent_p99_ms", ms(p.queue_to_sent.p99)),
        ("round_trip_p50_ms", ms(p.round_trip.p50)),
        ("round_trip_p95_ms", ms(p.round_trip.p95)),
        ("round_trip_p99_ms", ms(p.round_trip.p99)),
        ("round_trip_max_ms", ms(p.round_trip.max)),
        ("dropped", r.dropped().to_string()),
        ("window_s", format!("{:.1}", r.window_secs)),
        ("server_cpu_s", format!("{:.1}", r.server_cpu_secs)),
        ("bench_cpu_s", format!("{:.1}", r.bench_cpu_secs)),
        ("server_warnings", r.server_problems.to_string()),
    ]
}

fn write_csv(path: &PathBuf, rows: &[Row]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    for (i, r) in rows.iter().enumerate() {
        let columns = csv_columns(r);
        if i == 0 {
            let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
            writeln!(file, "{}", names.join(","))?;
        }
        let values: Vec<String> = columns.into_iter().map(|(_, value)| value).collect();
        writeln!(file, "{}", values.join(","))?;
    }
    Ok(())
}
