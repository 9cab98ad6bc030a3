//! The demo's wallbox households: each has a sandbox wallbox (`voltplan-sandbox-charger`) that
//! connects to the demo server's OCPP central system over a real WebSocket, with a car behind
//! it whose driver comes home in the evening and leaves in the morning. The worker plans and
//! steers them with charging profiles, exactly as it would a real wallbox.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;
use voltplan_clouds::VehicleSpec;
use voltplan_core::account::Role;
use voltplan_core::{Clock, PriceZone};
use voltplan_sandbox_charger::{Car, ChargerConfig, SimulatedCharger};
use voltplan_store::{OrgScope, Store, new_building, new_user, new_wallbox};

/// One household's wallbox as created in the store, before its charger runs.
pub struct Household {
    pub user_id: Uuid,
    pub wallbox_id: Uuid,
    charge_point_id: String,
    password: String,
    car: Car,
    arrive: NaiveTime,
    leave: NaiveTime,
    /// Already home (plugged in) when the demo starts.
    home_at_start: bool,
}

/// A running household: its wallbox and its driver's habit.
pub struct Running {
    charger: SimulatedCharger,
    car: Car,
    arrive: NaiveTime,
    leave: NaiveTime,
    arrived_on: Option<NaiveDate>,
    left_on: Option<NaiveDate>,
}

/// What each household draws from the demo's dice: arrival and departure (local hours) and the
/// car's level on arrival (percent).
pub struct Draw {
    pub arrive_h: f64,
    pub leave_h: f64,
    pub level_pct: f64,
}

/// Creates `count` households in `zone`'s towns with a wallbox each (its password hashed like
/// the API's), cars from `models`.
#[allow(clippy::too_many_arguments)]
pub async fn seed(
    store: &dyn Store,
    org: OrgScope,
    count: usize,
    zone: PriceZone,
    models: &[VehicleSpec],
    now: DateTime<Utc>,
    time_zone: Tz,
    mut draw: impl FnMut() -> Draw,
) -> anyhow::Result<Vec<Household>> {
    let local_now = now.with_timezone(&time_zone).time();
    let mut households = Vec::with_capacity(count);
    for i in 0..count {
        let mut user = new_user(
            org,
            format!("wallbox.household{i}@example.com"),
            Role::User,
            now,
        );
        user.profile.first_name = Some("Wallbox".to_owned());
        user.profile.last_name = Some(format!("Household {}", i + 1));
        let user = store.create_user(org, &user).await?;
        let mut home = new_building(org, user.id, now);
        home.details.name = "Home".to_owned();
        let home = store.create_building(org, &home).await?;

        let charge_point_id = format!("demo-wallbox-{:02}", i + 1);
        let password = Uuid::new_v4().simple().to_string();
        let hash = voltplan_api::auth::secret::hash_secret(&password)
            .map_err(|e| anyhow::anyhow!("hashing a wallbox password: {e}"))?;
        let mut wallbox = new_wallbox(org, user.id, charge_point_id.clone(), now);
        wallbox.building_id = Some(home.id);
        wallbox.price_zone = zone;
        wallbox.settings.is_smart_optimization_active = true;
        wallbox.settings.charge_target_min = Some([0, 10, 20][i % 3]);
        wallbox.settings.charge_deadline_at = NaiveTime::from_hms_opt([6, 7][i % 2], 0, 0);
        let spec = &models[(i * 5 + 2) % models.len()];
        let d = draw();
        let capacity = spec.battery_capacity_kwh;
        // The driver says how much a night must deliver: what the car used in a day.
        wallbox.settings.session_energy_kwh =
            Some((capacity * (80.0 - d.level_pct) / 100.0).max(5.0).round());
        let wallbox = store.create_wallbox(org, &wallbox, &hash).await?;
        let (arrive, leave) = (time_of_day(d.arrive_h), time_of_day(d.leave_h));
        households.push(Household {
            user_id: user.id,
            wallbox_id: wallbox.id,
            charge_point_id,
            password,
            car: Car {
                capacity_kwh: capacity,
                soc_pct: d.level_pct,
                max_power_w: spec.ac_max_power_kw * 1000.0,
            },
            arrive,
            leave,
            home_at_start: local_now >= arrive || local_now < leave,
        });
    }
    Ok(households)
}

fn time_of_day(hours: f64) -> NaiveTime {
    let minutes = (hours * 60.0).round() as u32;
    NaiveTime::from_hms_opt((minutes / 60) % 24, minutes % 60, 0).unwrap_or(NaiveTime::MIN)
}

/// Starts each household's wallbox against the central system at `ocpp_url`; the cars of those
/// already home are plugged in.
pub fn start(
    households: Vec<Household>,
    ocpp_url: &str,
    clock: Arc<dyn Clock>,
    time_zone: Tz,
) -> Vec<Running> {
    let today = clock.now().with_timezone(&time_zone).date_naive();
    households
        .into_iter()
        .map(|h| {
            let mut config = ChargerConfig::new(ocpp_url, h.charge_point_id, h.password);
            // Meter reports every simulated 5 minutes (the default) are a few a second at 60x.
            config.heartbeat = std::time::Duration::from_secs(60);
            let charger = SimulatedCharger::spawn(config, clock.clone());
            if h.home_at_start {
                charger.plug_in(h.car.clone());
            }
            Running {
                charger,
                car: h.car,
                arrive: h.arrive,
                leave: h.leave,
                arrived_on: h.home_at_start.then_some(today),
                left_on: (!h.home_at_start).then_some(today),
            }
        })
        .collect()
}

/// Moves the drivers: unplug in the morning, plug in (with the day's level) in the evening.
pub fn drive(running: &mut [Running], now: DateTime<Utc>, time_zone: Tz) {
    let local = now.with_timezone(&time_zone);
    let (date, time) = (local.date_naive(), local.time());
    for r in running.iter_mut() {
        let plugged = r.charger.snapshot().car.is_some();
        if plugged && time >= r.leave && time < r.arrive && r.left_on != Some(date) {
            r.left_on = Some(date);
            r.charger.unplug();
        } else if !plugged && time >= r.arrive && r.arrived_on != Some(date) {
            r.arrived_on = Some(date);
            r.charger.plug_in(r.car.clone());
        }
    }
}

/// The wallboxes as the API shows them: online, plugged in, charging and the power drawn.
pub async fn summary(
    store: &dyn Store,
    org: OrgScope,
    wallboxes: &[(Uuid, Uuid)],
) -> Result<String, voltplan_store::StoreError> {
    let (mut online, mut plugged, mut charging, mut watts) = (0, 0, 0, 0.0);
    for &(user, id) in wallboxes {
        let charger = store.get_wallbox(org, user, id, false).await?.charger;
        online += usize::from(charger.connected);
        plugged += usize::from(charger.is_plugged_in());
        if charger.is_charging() {
            charging += 1;
            watts += charger.power_w.unwrap_or(0.0);
        }
    }
    Ok(format!(
        "        wallboxes (OCPP): {online}/{} online, {plugged} plugged in, {charging} charging ({:.1} kW)",
        wallboxes.len(),
        watts / 1000.0
    ))
}
