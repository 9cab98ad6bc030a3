//! `voltplan demo`: a server on a fresh SQLite database with an organisation, an API client and
//! a fleet of drivers with real EV models, ready for curl.

use anyhow::Context;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use voltplan_api::{ApiConfig, AppState};
use voltplan_core::account::Role;
use voltplan_core::vehicle::{DeviceModel, SANDBOX_CLOUD};
use voltplan_core::{Clock, PriceZone, SystemClock};
use voltplan_store::{OrgScope, Store, new_building, new_user, new_vehicle};

use crate::DatabaseArgs;
use crate::serve::{create_org_and_client, open_store, print_credentials, shutdown_signal};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    #[arg(long, env = "VOLTPLAN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The demo database file; it is deleted and recreated on every start.
    #[arg(long, default_value = "voltplan-demo.db")]
    pub database_file: String,
    /// Number of drivers (each with one or two vehicles).
    #[arg(long, default_value_t = 30)]
    pub drivers: usize,
}

#[derive(Deserialize)]
struct EvModel {
    manufacturer: String,
    model: String,
    year: i32,
    battery_capacity_kwh: f64,
    ac_max_power_kw: f64,
}

/// Real models from open-ev-data (see data/README.md).
const EV_MODELS: &str = include_str!("../../../data/ev_models.json");

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

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
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
    let credentials =
        create_org_and_client(store.as_ref(), "Voltplan demo utility", "demo client").await?;
    let first_user = seed_fleet(
        store.as_ref(),
        OrgScope::new(credentials.org_id),
        args.drivers,
    )
    .await?;

    let base = format!("http://{}", args.bind);
    println!(
        "Voltplan demo: {} drivers with real EV models on {}",
        args.drivers, args.database_file
    );
    println!();
    print_credentials(&credentials, &base);
    println!();
    println!("List the first driver's electric vehicles:");
    println!(
        "  TOKEN=$(curl -s -X POST {base}/oauth2/token/ -u '{}:{}' -H 'Content-Type: application/json' -d '{{\"grant_type\": \"client_credentials\"}}' | sed -E 's/.*\"access_token\": *\"([^\"]+)\".*/\\1/')",
        credentials.client_id, credentials.client_secret
    );
    println!(
        "  curl -s {base}/api/partners/v2.0/org/{}/users/{first_user}/electric-vehicles -H \"Authorization: Bearer $TOKEN\"",
        credentials.org_id
    );
    println!();
    println!(
        "API docs: {base}/api/partners/v2.0/docs    Health: {base}/healthz    Metrics: {base}/metrics"
    );
    println!("Stop with Ctrl-C.");

    let state = AppState::new(store, Arc::new(SystemClock), ApiConfig::default());
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    voltplan_api::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

/// Creates `drivers` users, each with a home building and one or two sandbox vehicles.
async fn seed_fleet(
    store: &dyn Store,
    org: OrgScope,
    drivers: usize,
) -> anyhow::Result<uuid::Uuid> {
    let models: Vec<EvModel> =
        serde_json::from_str(EV_MODELS).context("reading data/ev_models.json")?;
    anyhow::ensure!(!models.is_empty(), "data/ev_models.json lists no models");
    let now = SystemClock.now();
    let mut first = None;
    for i in 0..drivers {
        let (first_name, last_name) = (FIRST_NAMES[i % 10], LAST_NAMES[(i / 10 + i) % 10]);
        let (town, zip, country, lat, lon, zone) = TOWNS[i % TOWNS.len()];
        let mut user = new_user(
            org,
            format!(
                "{}.{}{}@example.com",
                first_name.to_lowercase(),
                last_name.to_lowercase(),
                i
            ),
            Role::User,
            now,
        );
        user.external_user_id = Some(format!("CUST-{:05}", 10_000 + i));
        user.profile.first_name = Some(first_name.to_owned());
        user.profile.last_name = Some(last_name.to_owned());
        user.profile.town = Some(town.to_owned());
        user.profile.zip_code = Some(zip.to_owned());
        user.profile.country = Some(country.to_owned());
        // Spread homes over a few kilometres.
        let (dlat, dlon) = ((i as f64 * 0.0071) % 0.05, (i as f64 * 0.0113) % 0.07);
        user.profile.latitude = Some(lat + dlat);
        user.profile.longitude = Some(lon + dlon);
        user.profile.location_last_updated = Some(now);
        let user = store.create_user(org, &user).await?;
        first.get_or_insert(user.id);

        let mut home = new_building(org, user.id, now);
        home.details.name = "Home".to_owned();
        home.details.town = Some(town.to_owned());
        home.details.country = Some(country.to_owned());
        home.latitude = user.profile.latitude;
        home.longitude = user.profile.longitude;
        let home = store.create_building(org, &home).await?;

        for v in 0..(1 + usize::from(i % 4 == 0)) {
            let model = &models[(i * 7 + v * 3) % models.len()];
            let mut ev = new_vehicle(org, user.id, now);
            ev.building_id = Some(home.id);
            ev.price_zone = zone;
            ev.settings.is_smart_optimization_active = true;
            ev.settings.minimum_charge_limit = Some([80, 80, 90, 100][i % 4]);
            ev.settings.charge_deadline_at =
                chrono::NaiveTime::from_hms_opt([6, 7, 6, 8][i % 4], 0, 0);
            ev.settings.expected_max_charge_power = (model.ac_max_power_kw * 1000.0).round() as i32;
            ev.settings.battery_capacity_kwh = model.battery_capacity_kwh;
            ev.settings.external_device_id = Some(format!("VIN-DEMO-{i:04}-{v}"));
            ev.settings.device_model = DeviceModel {
                manufacturer: Some(model.manufacturer.clone()),
                model: Some(model.model.clone()),
                year: Some(model.year),
                cloud_service: Some(SANDBOX_CLOUD.id),
            };
            store.create_vehicle(org, &ev).await?;
        }
    }
    first.context("the demo needs at least one driver")
}
