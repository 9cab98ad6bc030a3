//! Wallbox fixtures: paths, a created wallbox, and what only other writers set (the central
//! system's `charger` document, the worker's sessions and readings), written with SQL.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

use super::{Backend, Tenant, TestServer, id_of};

pub fn wallboxes_path(org: Uuid, user: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/users/{user}/wallboxes")
}

pub fn wallbox_path(org: Uuid, user: Uuid, wallbox: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/users/{user}/wallboxes/{wallbox}")
}

/// Runs `$body` with `$c`, a connection of the test's own to the server's database.
macro_rules! with_connection {
    ($s:expr, |$c:ident| $body:expr) => {
        match &$s.backend {
            Backend::Sqlite => {
                let mut $c = sqlx::SqliteConnection::connect($s.database_url())
                    .await
                    .unwrap();
                $body;
            }
            Backend::Postgres(_) => {
                let mut $c = sqlx::PgConnection::connect($s.database_url())
                    .await
                    .unwrap();
                $body;
            }
        }
    };
}

impl TestServer {
    /// Creates a wallbox through the API (201) and returns its id and the answer.
    pub async fn create_wallbox(&self, t: &Tenant, user: Uuid, body: Value) -> (Uuid, Value) {
        let (status, created) = self
            .post(&t.token, &wallboxes_path(t.org_id, user), body)
            .await;
        assert_eq!(status, 201, "{created}");
        (id_of(&created), created)
    }

    /// Hourly DE_LU prices over the test's day and the next: 100 €/MWh, but 10 €/MWh from 02:00
    /// to 03:00 UTC on 27 November.
    pub async fn cheap_night_hour_prices(&self) {
        let day = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 26, 0, 0, 0).unwrap();
        let slots: Vec<voltplan_core::PriceSlot> = (0..48)
            .map(|h| voltplan_core::PriceSlot {
                start: day + chrono::Duration::hours(h),
                end: day + chrono::Duration::hours(h + 1),
                price_eur_mwh: if h == 26 { 10.0 } else { 100.0 },
            })
            .collect();
        self.store
            .upsert_prices(
                voltplan_core::PriceZone::DeLu,
                None,
                "entsoe",
                &slots,
                self.clock_now(),
            )
            .await
            .unwrap();
    }

    /// The real live loop (no vehicle cloud) on this server's store and clock.
    pub fn wallbox_worker(&self) -> voltplan_worker::Worker {
        voltplan_worker::Worker::new(
            self.store.clone(),
            voltplan_worker::Clouds::new(),
            self.clock.clone(),
            voltplan_worker::WorkerConfig::new("wallbox-test"),
        )
    }

    /// Writes an EV's state document as the worker would (from its cloud's reading).
    pub async fn set_vehicle_state(&self, vehicle: Uuid, state: Value) {
        let text = state.to_string();
        with_connection!(self, |c| sqlx::query(
            "UPDATE electric_vehicles SET state = $1 WHERE id = $2"
        )
        .bind(&text)
        .bind(vehicle)
        .execute(&mut c)
        .await
        .unwrap());
    }

    /// Writes the wallbox's `charger` document as the central system would.
    pub async fn set_charger(&self, wallbox: Uuid, charger: Value) {
        let text = charger.to_string();
        with_connection!(self, |c| sqlx::query(
            "UPDATE wallboxes SET charger = $1 WHERE id = $2"
        )
        .bind(&text)
        .bind(wallbox)
        .execute(&mut c)
        .await
        .unwrap());
    }

    /// Records a closed session of `wallbox` as the worker would.
    pub async fn add_wallbox_session(
        &self,
        org: Uuid,
        wallbox: Uuid,
        plug_in: DateTime<Utc>,
        data: Value,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let unplug = plug_in + chrono::Duration::hours(8);
        with_connection!(self, |c| {
            sqlx::query(
            "INSERT INTO wallbox_sessions (id, org_id, wallbox_id, plug_in_time, unplug_time, data) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(id)
        .bind(org)
        .bind(wallbox)
        .bind(plug_in)
        .bind(unplug)
        .bind(sqlx::types::Json(&data))
        .execute(&mut c)
        .await
        .unwrap()
        });
        id
    }

    /// Records one `/data` reading of `wallbox` as the worker would.
    pub async fn add_wallbox_reading(
        &self,
        org: Uuid,
        wallbox: Uuid,
        at: DateTime<Utc>,
        power_w: f64,
        energy_kwh: f64,
    ) {
        with_connection!(self, |c| {
            sqlx::query(
            "INSERT INTO wallbox_readings (wallbox_id, org_id, at, is_plugged_in, is_charging, power_w, energy_kwh, price_eur_mwh) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(wallbox)
        .bind(org)
        .bind(at)
        .bind(true)
        .bind(power_w > 0.0)
        .bind(power_w)
        .bind(energy_kwh)
        .bind(80.0)
        .execute(&mut c)
        .await
        .unwrap()
        });
    }
}

/// A charger online with its connector in `status` (OCPP 1.6 `StatusNotification.status`).
pub fn charger(status: &str) -> Value {
    json!({
        "connected": true,
        "connected_at": "2026-11-26T11:00:00Z",
        "connector_status": status,
        "power_w": if status == "Charging" { 7200.0 } else { 0.0 },
        "meter_wh": 12345.0,
    })
}
