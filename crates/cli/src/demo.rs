//! `voltplan demo`: everything in one process on a fresh SQLite database — the API, the worker and
//! a sandbox fleet of real EV models whose simulated drivers come home in the evening, plug in and
//! leave in the morning — with real day-ahead prices (SMARD 2024) mapped onto today's dates and
//! time running faster than real time.
//!
//! While it runs it prints a status line every simulated hour and a summary of each night every
//! simulated morning (`watch.rs`, arithmetic in `report.rs`), both read from the store the API
//! serves. Logs go to stderr, stamped with simulated time.

mod report;
mod wallboxes;
mod watch;

use anyhow::Context;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc};
use chrono_tz::Europe::Vienna;
use chrono_tz::Tz;
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;
use voltplan_api::{ApiConfig, AppState};
use voltplan_clouds::SANDBOX_CLOUD;
use voltplan_clouds::registry::{self, CloudsConfig};
use voltplan_clouds::{
    AcceleratedClock, SandboxCloud, SandboxConfig, SandboxInitial, VehicleSpec, embedded_catalogue,
};
use voltplan_core::account::Role;
use voltplan_core::grid::GridGroup;
use voltplan_core::vehicle::DeviceModel;
use voltplan_core::{Clock, PriceSlot, PriceZone, SystemClock};
use voltplan_store::{GridGroupRecord, OrgScope, Store, new_building, new_user, new_vehicle};
use voltplan_worker::{Worker, WorkerConfig};

use crate::runtime::DatabaseArgs;
use crate::runtime::{
    Background, create_org_and_client, open_store, public_url_or_bind, shutdown_signal,
};

/// The demo's local time: its drivers live around Vienna and Munich (the same clocks).
pub const TIME_ZONE: Tz = Vienna;

/// The demo's log filter unless `VOLTPLAN_LOG` says otherwise: warnings, the demo's own messages
/// and the worker's few (boosts taken up and ended), but not its per-command lines (`command
/// accepted`, info in `voltplan_worker::steer`). The API's and the worker's info spans stay on, so
/// a warning names its request or vehicle. `VOLTPLAN_LOG=info,sqlx=warn` shows everything.
pub const LOG_FILTER: &str =
    "warn,voltplan::demo=info,voltplan_api=info,voltplan_worker=info,voltplan_worker::steer=warn";

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    #[arg(long, env = "VOLTPLAN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Where browsers reach this server; default `http://<bind>` (see `serve --public-url`).
    #[arg(long, env = "VOLTPLAN_PUBLIC_URL")]
    pub public_url: Option<voltplan_api::PublicUrl>,
    /// The demo database file; it is deleted and recreated on every start.
    #[arg(long, default_value = "voltplan-demo.db")]
    pub database_file: String,
    /// Number of sandbox electric vehicles (one or two per driver).
    #[arg(long, default_value_t = 50)]
    pub vehicles: usize,
    /// Number of households with a sandbox wallbox: a simulated charger that speaks OCPP 1.6J to
    /// this server over a WebSocket, with a car behind it.
    #[arg(long, default_value_t = 6)]
    pub wallboxes: usize,
    /// The homes' cars share one feeder with this limit, kW: planned together, the fleet stays
    /// under it (`docs/grid-limits.md`). 0: no feeder, every car planned alone.
    #[arg(long, default_value_t = 150.0)]
    pub feeder_limit_kw: f64,
    /// How much faster than real time the simulation runs (60 = a simulated hour per real minute).
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Seed of the sandbox's random failures and of the drivers' habits.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[command(flatten)]
    pub clouds: crate::runtime::CloudArgs,
    #[command(flatten)]
    pub webhooks: crate::runtime::WebhookArgs,
}

/// SMARD 2024 quarter-hour day-ahead prices (CC BY 4.0, © Bundesnetzagentur | SMARD.de).
const SMARD_2024: &[u8] = include_bytes!(
    "../../../data/prices/smard_grosshandelspreise_2024_quarterhour_grid_multizone_de.csv.gz"
);

const FIRST_NAMES: [&str; 10] = [
    "Anna", "Lukas", "Marie", "Jonas", "Sophie", "Felix", "Laura", "Paul", "Lena", "David",
];
const LAST_NAMES: [&str; 10] = [
    "Gruber", "Huber", "Bauer", "Wagner", "Müller", "Pichler", "Steiner", "Moser", "Mayer", "Hofer",
];
/// Homes around Vienna and Munich (the demo's two price zones).
const TOWNS: [(&str, &str, &str, f64, f64, PriceZone); 4] = [
    ("Wien", "1010", "AT", 48.2082, 16.3738, PriceZone::At),
    ("Graz", "8010", "AT", 47.0707, 15.4395, PriceZone::At),
    ("München", "80331", "DE", 48.1351, 11.5820, PriceZone::DeLu),
    ("Augsburg", "86150", "DE", 48.3705, 10.8978, PriceZone::DeLu),
];

/// A simulated driver's weekday habit.
#[derive(Debug, Clone)]
struct Habit {
    vehicle: Uuid,
    arrive: NaiveTime,
    leave: NaiveTime,
    daily_km: f64,
    /// Last local date on which the driver came home / left.
    arrived_on: Option<NaiveDate>,
    left_on: Option<NaiveDate>,
    /// After unplugging, the driver drives off this many km at this instant.
    drive_off: Option<(DateTime<Utc>, f64)>,
}

/// How long an unplugged car stays at home before it is driven away: longer than the worker's
/// poll interval, so the reading that closes the session sees the level the car left with, not
/// the level after the drive.
const DRIVE_OFF_AFTER: Duration = Duration::minutes(15);

/// A tiny deterministic generator for habits (the sandbox has its own seeded dice).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> f64 {
        // xorshift64*: good enough to spread demo habits, reproducible by seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// The demo's simulated clock, starting now at `--speed`.
pub fn simulated_clock(args: &DemoArgs) -> anyhow::Result<Arc<dyn Clock>> {
    anyhow::ensure!(
        args.speed > 0.0 && args.speed <= 10_000.0,
        "--speed must be in (0, 10000]"
    );
    Ok(Arc::new(AcceleratedClock::starting_now(
        Utc::now(),
        args.speed,
    )))
}

/// Runs the demo on `clock` (from [`simulated_clock`]) until Ctrl-C.
pub async fn run(args: DemoArgs, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", args.database_file);
        if std::path::Path::new(&path).exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the old demo database {path}"))?;
        }
    }
    let db = DatabaseArgs {
        database_url: format!("sqlite:{}", args.database_file),
    };
    let store = open_store(&db, 8).await?;
    let started = clock.now();
    let clouds = registry::build(
        &CloudsConfig {
            sandbox: Some(SandboxConfig {
                seed: args.seed,
                ..SandboxConfig::default()
            }),
            smartcar: None,
        },
        clock.clone(),
        None,
    )?;
    let sandbox = clouds
        .sandbox
        .clone()
        .context("the demo's drivers need the sandbox")?;

    let label = load_prices(store.as_ref(), clock.now()).await?;
    let credentials =
        create_org_and_client(store.as_ref(), "Voltplan demo utility", "demo client").await?;
    let org = OrgScope::new(credentials.org_id);
    let mut dice = Dice(args.seed.max(1));
    let Fleet {
        vehicles,
        mut habits,
        first_user,
        your_car,
        your_car_is,
    } = seed_fleet(
        store.as_ref(),
        &sandbox,
        org,
        args.vehicles,
        clock.now(),
        &mut dice,
    )
    .await?;

    let feeder = if args.feeder_limit_kw > 0.0 {
        Some(
            seed_feeder(
                store.as_ref(),
                org,
                &vehicles,
                args.feeder_limit_kw,
                clock.now(),
            )
            .await?,
        )
    } else {
        None
    };

    let households = wallboxes::seed(
        store.as_ref(),
        org,
        args.wallboxes,
        PriceZone::DeLu,
        &embedded_catalogue().context("reading the EV catalogue")?,
        clock.now(),
        TIME_ZONE,
        || wallboxes::Draw {
            arrive_h: dice.between(17.0, 20.0),
            leave_h: dice.between(6.5, 8.5),
            level_pct: dice.between(20.0, 60.0).round(),
        },
    )
    .await?;
    let wallbox_ids: Vec<(Uuid, Uuid)> = households
        .iter()
        .map(|h| (h.user_id, h.wallbox_id))
        .collect();

    let config = ApiConfig {
        public_url: public_url_or_bind(args.public_url.clone(), args.bind),
        allow_http_loopback_webhooks: args.webhooks.webhooks_allow_http_loopback,
        ..ApiConfig::default()
    };
    let base = format!("http://{}", args.bind);
    let org_id = credentials.org_id;
    let bearer = "-H \"Authorization: Bearer $TOKEN\"";
    let ev_list =
        format!("{base}/api/partners/v2.0/org/{org_id}/users/{first_user}/electric-vehicles");
    println!(
        "Voltplan demo: {} sandbox EVs of real models; simulated time runs {}x real time, from {}.",
        args.vehicles,
        args.speed,
        report::local_minute(started, TIME_ZONE)
    );
    println!(
        "Simulated drivers come home 17:00–20:00, plug in, and leave 06:30–08:30 (Vienna time)."
    );
    println!("Prices: {label}");
    println!();
    println!("Organisation id : {org_id}");
    println!("Client id       : {}", credentials.client_id);
    println!(
        "Client secret   : {}   (shown once; stored hashed)",
        credentials.client_secret
    );
    println!();
    println!(
        "Get a token (it lasts {} hours of real time), list the first driver's cars:",
        config.token_lifetime.num_hours()
    );
    println!(
        "  TOKEN=$(curl -s -X POST {base}/oauth2/token/ -u '{}:{}' -H 'Content-Type: application/json' -d '{{\"grant_type\": \"client_credentials\"}}' | sed -E 's/.*\"access_token\": *\"([^\"]+)\".*/\\1/')",
        credentials.client_id, credentials.client_secret
    );
    println!("  curl -s {ev_list} {bearer}");
    println!(
        "Your car, a {your_car_is}, is at home and unplugged; no simulated driver touches it. Plug it in, then read its plan:"
    );
    println!(
        "  curl -s -X POST {base}/api/partners/v2.0/org/{org_id}/sandbox/electric-vehicles/{your_car}/plug-in {bearer}"
    );
    println!("  curl -s {ev_list}/{your_car}/plan {bearer}");
    if let Some(feeder) = feeder {
        println!(
            "Every home's cars share one feeder of {} kW (grid group “{FEEDER_NAME}”): they are planned together and never draw more. The joint plan, with what the cars would draw planned alone:",
            args.feeder_limit_kw
        );
        println!(
            "  curl -s {base}/api/partners/v2.0/org/{org_id}/grid-groups/{feeder}/joint-plan {bearer}"
        );
    }
    if let Some((user, _)) = wallbox_ids.first() {
        println!(
            "{} households charge through sandbox wallboxes speaking OCPP 1.6J to ws://{}/ocpp; the first one:",
            wallbox_ids.len(),
            args.bind
        );
        println!("  curl -s {base}/api/partners/v2.0/org/{org_id}/users/{user}/wallboxes {bearer}");
    }
    println!();
    println!(
        "API docs: {base}/api/partners/v2.0/docs    Health: {base}/healthz    Metrics: {base}/metrics"
    );
    println!(
        "Below: the fleet every simulated hour, each night's sessions at 09:00. Logs (stderr) carry simulated time; VOLTPLAN_LOG=info,sqlx=warn shows every command. Stop with Ctrl-C."
    );
    println!();

    let worker_config = demo_worker_config(args.speed);
    // Signed with real time: receivers check `webhook-timestamp` against their own clocks.
    let deliverer = args
        .webhooks
        .deliverer(
            &store,
            &clock,
            &config.secret_keys,
            &worker_config.worker_id,
        )?
        .with_wire_clock(Arc::new(SystemClock));
    let worker = Worker::new(
        store.clone(),
        args.clouds.clouds(&clouds),
        clock.clone(),
        worker_config,
    );
    // Tokens live on real time: simulated time would expire a 10-hour token in 10 minutes at 60x.
    let state =
        AppState::with_token_clock(store.clone(), clock.clone(), Arc::new(SystemClock), config)
            .with_clouds(clouds);
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;

    let background = Background::start(worker, deliverer, None);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let drivers_task = {
        let mut rx = stop_rx.clone();
        let (sandbox, clock) = (sandbox.clone(), clock.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => drive_habits(&sandbox, clock.now(), &mut habits, &mut dice),
                    _ = rx.wait_for(|stop| *stop) => break,
                }
            }
        })
    };
    let households_task = {
        let mut rx = stop_rx.clone();
        let mut running = wallboxes::start(
            households,
            &format!("ws://{}/ocpp", args.bind),
            clock.clone(),
            TIME_ZONE,
        );
        let clock = clock.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => wallboxes::drive(&mut running, clock.now(), TIME_ZONE),
                    _ = rx.wait_for(|stop| *stop) => break,
                }
            }
        })
    };
    let watch_task = tokio::spawn(
        watch::Watch {
            store,
            clock: clock.clone(),
            speed: args.speed,
            org,
            vehicles,
            wallboxes: wallbox_ids,
            started,
            feeder: feeder.map(|id| (id, args.feeder_limit_kw)),
        }
        .run(stop_rx.clone()),
    );
    voltplan_api::serve(listener, state, shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    let _ = tokio::join!(drivers_task, households_task, watch_task);
    background.stop().await
}

/// The worker's durations are simulated time: a lease must outlast a batch's real duration even
/// when simulated time runs `speed` times faster.
fn demo_worker_config(speed: f64) -> WorkerConfig {
    let mut config = WorkerConfig::new("demo-worker");
    config.lease_for = Duration::seconds((30.0 * speed).max(120.0) as i64);
    // An idle worker looks again within 15 simulated seconds: cars in a grid group start and stop
    // at their windows' edges, which half a real second (5 simulated minutes at 600x) would miss.
    config.idle_wait = std::time::Duration::from_secs_f64((15.0 / speed.max(1.0)).clamp(0.01, 0.5));
    config
}

/// Loads two months of real 2024 prices for AT and DE_LU, shifted by whole weeks so that they
/// cover the week before today to seven weeks after it with the same weekdays. Returns a label.
async fn load_prices(store: &dyn Store, now: DateTime<Utc>) -> anyhow::Result<String> {
    let today = now.with_timezone(&TIME_ZONE).date_naive();
    // The same calendar week in 2024, at least a week from the file's ends.
    let mut source_start = NaiveDate::from_ymd_opt(2024, today.month(), today.day().min(28))
        .context("a 2024 date")?
        - Duration::days(7);
    let latest = NaiveDate::from_ymd_opt(2024, 10, 25).context("a 2024 date")?;
    if source_start > latest {
        source_start = latest;
    }
    let earliest = NaiveDate::from_ymd_opt(2024, 1, 2).context("a 2024 date")?;
    if source_start < earliest {
        source_start = earliest;
    }
    // Align weekdays: shift by a whole number of weeks.
    let target_start = today - Duration::days(7);
    let weeks = (target_start - source_start).num_days().div_euclid(7);
    let shift = Duration::weeks(weeks);
    let source_end = source_start + Duration::days(63);
    let (from, to) = (midnight(source_start), midnight(source_end));
    for (zone, column) in [(PriceZone::At, "AT"), (PriceZone::DeLu, "DE_LU")] {
        let report = voltplan_prices::import::import_bytes(
            SMARD_2024,
            voltplan_prices::import::Format::Smard,
            Some(column),
        )
        .with_context(|| format!("reading the embedded SMARD prices for {zone}"))?;
        let slots: Vec<PriceSlot> = report
            .points
            .iter()
            .filter(|p| p.start >= from && p.start < to)
            .map(|p| PriceSlot {
                start: p.start + shift,
                end: p.end + shift,
                price_eur_mwh: p.price_eur_mwh,
            })
            .collect();
        store
            .upsert_prices(zone, None, "file:smard-2024-mapped", &slots, now)
            .await?;
    }
    Ok(format!(
        "real SMARD day-ahead prices of {} – {} (AT, DE_LU) mapped onto {} – {} (shifted {} weeks; CC BY 4.0, Bundesnetzagentur | SMARD.de)",
        source_start,
        source_end,
        source_start + shift,
        source_end + shift,
        weeks
    ))
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    voltplan_core::time::local_to_utc(date.and_time(NaiveTime::MIN), &Vienna)
}

/// The seeded fleet.
struct Fleet {
    /// Every vehicle, yours first.
    vehicles: Vec<Uuid>,
    /// The simulated drivers' habits (every car but yours).
    habits: Vec<Habit>,
    /// The first driver, who owns your car.
    first_user: Uuid,
    /// A car no simulated driver moves: at home, unplugged, for the printed plug-in curl.
    your_car: Uuid,
    /// `Tesla Model 3 at 43 %, 80 % by 06:00`.
    your_car_is: String,
}

const FEEDER_NAME: &str = "Demo feeder";

/// One grid group over the homes of `vehicles` with a limit of `limit_kw`; returns its id.
async fn seed_feeder(
    store: &dyn Store,
    org: OrgScope,
    vehicles: &[Uuid],
    limit_kw: f64,
    now: DateTime<Utc>,
) -> anyhow::Result<Uuid> {
    let mut homes = Vec::new();
    for &id in vehicles {
        let vehicle = store.get_vehicle_in_org(org, id).await?;
        if let Some(home) = vehicle.building_id
            && !homes.contains(&home)
        {
            homes.push(home);
        }
    }
    let group = GridGroupRecord {
        id: Uuid::now_v7(),
        org_id: org.id(),
        group: GridGroup {
            name: FEEDER_NAME.to_owned(),
            parent_id: None,
            building_ids: homes,
            electric_vehicle_ids: Vec::new(),
            power_limit_w: Some((limit_kw * 1000.0).round() as i64),
            schedule: Vec::new(),
        },
        created_at: now,
        updated_at: now,
        deleted_at: None,
        joint_plan: None,
    };
    anyhow::ensure!(
        group.group.validate().is_empty(),
        "--feeder-limit-kw {limit_kw} is not a limit in watts from 0 to 1 GW"
    );
    Ok(store.create_grid_group(org, &group).await?.id)
}

/// Creates drivers with a home and one or two sandbox vehicles each, registered in the sandbox.
/// The first car is yours: it starts at home, unplugged, and only you move it.
async fn seed_fleet(
    store: &dyn Store,
    sandbox: &SandboxCloud,
    org: OrgScope,
    vehicles: usize,
    now: DateTime<Utc>,
    dice: &mut Dice,
) -> anyhow::Result<Fleet> {
    let models: Vec<VehicleSpec> = embedded_catalogue().context("reading the EV catalogue")?;
    anyhow::ensure!(
        !models.is_empty() && vehicles > 0,
        "the demo needs at least one vehicle and model"
    );
    let local = now.with_timezone(&TIME_ZONE);
    let (today, local_now) = (local.date_naive(), local.time());
    let mut habits = Vec::new();
    let mut ids = Vec::new();
    let mut yours = None;
    let mut i = 0;
    while ids.len() < vehicles {
        let (first_name, last_name) = (FIRST_NAMES[i % 10], LAST_NAMES[(i / 10 + i) % 10]);
        let (town, zip, country, lat, lon, zone) = TOWNS[i % TOWNS.len()];
        let email = format!(
            "{}.{}{}@example.com",
            first_name.to_lowercase(),
            last_name.to_lowercase(),
            i
        );
        let mut user = new_user(org, email, Role::User, now);
        user.external_user_id = Some(format!("CUST-{:05}", 10_000 + i));
        user.profile.first_name = Some(first_name.to_owned());
        user.profile.last_name = Some(last_name.to_owned());
        user.profile.town = Some(town.to_owned());
        user.profile.zip_code = Some(zip.to_owned());
        user.profile.country = Some(country.to_owned());
        // Spread homes over a few kilometres.
        let (home_lat, home_lon) = (
            lat + (i as f64 * 0.0071) % 0.05,
            lon + (i as f64 * 0.0113) % 0.07,
        );
        user.profile.latitude = Some(home_lat);
        user.profile.longitude = Some(home_lon);
        user.profile.location_last_updated = Some(now);
        let user = store.create_user(org, &user).await?;

        let mut home = new_building(org, user.id, now);
        home.details.name = "Home".to_owned();
        home.details.town = Some(town.to_owned());
        home.details.country = Some(country.to_owned());
        home.latitude = Some(home_lat);
        home.longitude = Some(home_lon);
        let home = store.create_building(org, &home).await?;

        let cars = if i % 4 == 0 { 2 } else { 1 }.min(vehicles - ids.len());
        for v in 0..cars {
            let spec = models[(i * 7 + v * 3) % models.len()].clone();
            let mut ev = new_vehicle(org, user.id, now);
            ev.building_id = Some(home.id);
            ev.price_zone = zone;
            ev.settings.is_smart_optimization_active = true;
            ev.settings.is_over_charge_allowed = Some(i % 3 == 0);
            ev.settings.minimum_charge_limit = Some([80, 80, 90, 100][i % 4]);
            ev.settings.charge_target_min = Some([20, 30, 30, 40][i % 4]);
            ev.settings.charge_deadline_at = NaiveTime::from_hms_opt([6, 7, 6, 8][i % 4], 0, 0);
            ev.settings.expected_max_charge_power = (spec.ac_max_power_kw * 1000.0).round() as i32;
            ev.settings.battery_capacity_kwh = spec.battery_capacity_kwh;
            ev.settings.external_device_id = Some(format!("VIN-DEMO-{i:04}-{v}"));
            ev.settings.device_model = DeviceModel {
                manufacturer: Some(spec.manufacturer.clone()),
                model: Some(spec.model.clone()),
                year: spec.year,
                cloud_service: Some(SANDBOX_CLOUD.id),
                vin: None,
            };
            ev.state.is_authenticated = Some(true);
            let arrive = time_of_day(dice.between(17.0, 20.0));
            let leave = time_of_day(dice.between(6.5, 8.5));
            // Drivers whose evening has begun (or whose morning has not) start at home, plugged in;
            // what they did today already counts as done, so they leave a car you plug in alone.
            let evening = local_now >= arrive;
            let at_home = evening || local_now < leave;
            let is_yours = ids.is_empty();
            let battery_level = dice.between(25.0, 70.0).round();
            let ev = store.create_vehicle(org, &ev).await?;
            let described = format!(
                "{} {} at {battery_level} %, {} % by {}",
                spec.manufacturer,
                spec.model,
                ev.settings.minimum_charge_limit.unwrap_or(100),
                ev.settings
                    .charge_deadline_at
                    .map_or_else(|| "–".to_owned(), |t| t.format("%H:%M").to_string())
            );
            sandbox.add_vehicle(
                ev.id,
                spec,
                SandboxInitial {
                    battery_level,
                    plugged_in: at_home && !is_yours,
                    lat: home_lat,
                    lon: home_lon,
                    charge_limit: 100,
                },
            )?;
            ids.push(ev.id);
            let daily_km = dice.between(15.0, 90.0);
            if is_yours {
                yours = Some((user.id, ev.id, described));
                continue;
            }
            habits.push(Habit {
                vehicle: ev.id,
                arrive,
                leave,
                daily_km,
                arrived_on: evening.then_some(today),
                left_on: (!at_home).then_some(today),
                drive_off: None,
            });
        }
        i += 1;
    }
    let (first_user, your_car, your_car_is) = yours.context("no vehicle was created")?;
    Ok(Fleet {
        vehicles: ids,
        habits,
        first_user,
        your_car,
        your_car_is,
    })
}

fn time_of_day(hours: f64) -> NaiveTime {
    let minutes = (hours * 60.0).round() as u32;
    NaiveTime::from_hms_opt((minutes / 60) % 24, minutes % 60, 0).unwrap_or(NaiveTime::MIN)
}

/// Moves the simulated drivers: leave in the morning (unplug, and drive off a little later), come
/// home in the evening (drive home, plug in). Errors of single cars are logged and skipped.
fn drive_habits(sandbox: &SandboxCloud, now: DateTime<Utc>, habits: &mut [Habit], dice: &mut Dice) {
    let local = now.with_timezone(&TIME_ZONE);
    let (date, time) = (local.date_naive(), local.time());
    for habit in habits.iter_mut() {
        let Ok(car) = sandbox.snapshot(habit.vehicle) else {
            continue;
        };
        let result = if let Some((at, km)) = habit.drive_off
            && now >= at
        {
            habit.drive_off = None;
            if car.plugged_in {
                continue; // plugged in again meanwhile (through the API): stays at home
            }
            sandbox.drive(habit.vehicle, km)
        } else if time >= habit.leave
            && time < habit.arrive
            && habit.left_on != Some(date)
            && car.plugged_in
        {
            habit.left_on = Some(date);
            let km = habit.daily_km * dice.between(0.6, 1.4);
            habit.drive_off = Some((now + DRIVE_OFF_AFTER, km));
            sandbox.unplug(habit.vehicle)
        } else if time >= habit.arrive && habit.arrived_on != Some(date) && !car.plugged_in {
            habit.arrived_on = Some(date);
            sandbox
                .drive_home(habit.vehicle)
                .and_then(|_| sandbox.plug_in(habit.vehicle))
        } else {
            continue;
        };
        if let Err(e) = result {
            tracing::warn!(vehicle = %habit.vehicle, error = %e, hour = time.hour(), "a simulated driver could not act");
        }
    }
}
