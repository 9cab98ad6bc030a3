//! The fake's world: accounts, cars, grants and tokens, on the fake's own clock.

use std::collections::HashMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// Access tokens live 2 hours ("Auth code exchange").
pub(crate) const ACCESS_LIFETIME: Duration = Duration::hours(2);
/// Refresh tokens live 60 days ("Token refresh").
pub(crate) const REFRESH_LIFETIME: Duration = Duration::days(60);
/// A used refresh token still works for 1 minute ("Refreshing Refresh Tokens").
pub(crate) const REFRESH_GRACE: Duration = Duration::minutes(1);
/// Authorization codes expire after 10 minutes ("Handle the response").
pub(crate) const CODE_LIFETIME: Duration = Duration::minutes(10);

/// The permissions Connect knows ("Permissions" in the Connect docs), without the `required:`
/// prefix.
pub(crate) const KNOWN_SCOPES: &[&str] = &[
    "read_vehicle_info",
    "read_vin",
    "read_battery",
    "read_charge",
    "control_charge",
    "read_location",
    "read_odometer",
    "read_engine_oil",
    "read_fuel",
    "read_tires",
    "read_security",
    "control_security",
    "read_thermometer",
    "control_navigation",
    "read_user_profile",
    "read_speedometer",
    "read_compass",
    "read_climate",
    "control_climate",
    "read_extended_vehicle_info",
    "read_service_history",
    "control_trunk",
    "read_alerts",
    "read_diagnostics",
];

/// A simulated car and its state. Build with [`FakeVehicle::new`] and struct-update syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeVehicle {
    /// Smartcar-style upper-case make, e.g. `"TESLA"`.
    pub make: String,
    pub model: String,
    pub year: i32,
    pub vin: String,
    /// State of charge, 0–100.
    pub level_percent: f64,
    pub capacity_kwh: f64,
    pub plugged_in: bool,
    pub charging: bool,
    /// Power while charging; the level rises by power × time / capacity.
    pub charge_power_kw: f64,
    /// The car's charge limit as Smartcar reports it: a fraction, 0.5–1.0.
    pub charge_limit: f64,
    pub latitude: f64,
    pub longitude: f64,
    /// Range at 100 %, for the battery endpoint's `range`.
    pub full_range_km: f64,
    /// `false`: `/location` answers `501 COMPATIBILITY:VEHICLE_NOT_CAPABLE`.
    pub has_location: bool,
    /// `false`: `/charge/limit` answers `501 COMPATIBILITY:VEHICLE_NOT_CAPABLE`.
    pub has_charge_limit: bool,
    /// `false`: `/battery/capacity` answers `501 COMPATIBILITY:VEHICLE_NOT_CAPABLE`.
    pub has_capacity: bool,
}

impl FakeVehicle {
    /// A 60 kWh, 11 kW car at 50 %, unplugged, limit 80 %, in Vienna.
    pub fn new(make: &str, model: &str, year: i32, vin: &str) -> Self {
        FakeVehicle {
            make: make.to_owned(),
            model: model.to_owned(),
            year,
            vin: vin.to_owned(),
            level_percent: 50.0,
            capacity_kwh: 60.0,
            plugged_in: false,
            charging: false,
            charge_power_kw: 11.0,
            charge_limit: 0.8,
            latitude: 48.2082,
            longitude: 16.3738,
            full_range_km: 400.0,
            has_location: true,
            has_charge_limit: true,
            has_capacity: true,
        }
    }

    pub(crate) fn at_limit(&self) -> bool {
        self.level_percent >= self.charge_limit * 100.0 - 1e-9
    }

    pub(crate) fn charge_state(&self) -> &'static str {
        if self.charging {
            "CHARGING"
        } else if self.plugged_in && self.at_limit() {
            "FULLY_CHARGED"
        } else {
            "NOT_CHARGING"
        }
    }
}

/// A command a car accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeCommand {
    pub at: DateTime<Utc>,
    pub action: FakeAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FakeAction {
    StartCharging,
    StopCharging,
    /// The fraction sent, e.g. 0.8.
    SetChargeLimit(f64),
}

#[derive(Debug)]
pub(crate) struct Account {
    pub password: String,
    pub user_id: String,
    pub vehicle_ids: Vec<String>,
    pub revoked: bool,
}

#[derive(Debug)]
pub(crate) struct VehicleRecord {
    pub user_id: String,
    pub car: FakeVehicle,
    /// When the car last produced data (`sc-data-age`, `oemUpdatedAt`).
    pub updated_at: DateTime<Utc>,
    pub commands: Vec<FakeCommand>,
    pub api_calls: usize,
    pub throttled_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub user_id: String,
    pub scopes: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct AccessToken {
    pub grant: Grant,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug)]
pub(crate) struct RefreshToken {
    pub grant: Grant,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub(crate) struct AuthorizationCode {
    pub grant: Grant,
    pub redirect_uri: String,
    pub expires_at: DateTime<Utc>,
    pub used: bool,
}

/// Everything the fake knows, behind one lock.
#[derive(Debug)]
pub(crate) struct World {
    pub now: DateTime<Utc>,
    /// By e-mail.
    pub accounts: HashMap<String, Account>,
    pub vehicles: HashMap<String, VehicleRecord>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub codes: HashMap<String, AuthorizationCode>,
    pub token_requests: usize,
    /// Redirect URIs registered after the start (`FakeSmartcar::register_redirect_uri`).
    pub redirect_uris: Vec<String>,
}

impl World {
    pub(crate) fn new(now: DateTime<Utc>) -> Self {
        World {
            now,
            accounts: HashMap::new(),
            vehicles: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            codes: HashMap::new(),
            token_requests: 0,
            redirect_uris: Vec::new(),
        }
    }

    pub(crate) fn account_by_user(&self, user_id: &str) -> Option<&Account> {
        self.accounts.values().find(|a| a.user_id == user_id)
    }

    pub(crate) fn user_revoked(&self, user_id: &str) -> bool {
        self.account_by_user(user_id).is_none_or(|a| a.revoked)
    }

    /// A fresh token pair for a grant.
    pub(crate) fn issue_tokens(&mut self, grant: Grant) -> Value {
        let access = format!("fake-access-{}", Uuid::new_v4());
        let refresh = format!("fake-refresh-{}", Uuid::new_v4());
        self.access_tokens.insert(
            access.clone(),
            AccessToken {
                grant: grant.clone(),
                expires_at: self.now + ACCESS_LIFETIME,
            },
        );
        self.refresh_tokens.insert(
            refresh.clone(),
            RefreshToken {
                grant,
                expires_at: self.now + REFRESH_LIFETIME,
                used_at: None,
            },
        );
        json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_LIFETIME.num_seconds(),
            "refresh_token": refresh,
        })
    }

    /// Moves the clock; charging cars gain power × time, up to their limit, then stop.
    pub(crate) fn advance(&mut self, by: Duration) {
        if by <= Duration::zero() {
            return;
        }
        self.now += by;
        let hours = by.num_milliseconds() as f64 / 3_600_000.0;
        for record in self.vehicles.values_mut() {
            let car = &mut record.car;
            if !car.charging {
                continue;
            }
            let gained = car.charge_power_kw * hours / car.capacity_kwh.max(1e-9) * 100.0;
            let limit = car.charge_limit * 100.0;
            car.level_percent = (car.level_percent + gained).min(limit.max(car.level_percent));
            if car.at_limit() {
                car.charging = false;
            }
            record.updated_at = self.now;
        }
    }
}

/// Smartcar's v2 error body ("API Errors"): `type`, `code`, `description`, `docURL`,
/// `statusCode`, `requestId`, `resolution.type`.
pub(crate) fn error_body(
    kind: &str,
    code: Option<&str>,
    status: u16,
    description: &str,
    resolution: Option<&str>,
) -> Value {
    let page = kind.to_ascii_lowercase().replace('_', "-");
    json!({
        "type": kind,
        "code": code,
        "description": description,
        "docURL": format!("https://smartcar.com/docs/errors/api-errors/{page}-errors"),
        "statusCode": status,
        "requestId": Uuid::new_v4().to_string(),
        "resolution": { "type": resolution },
        "suggestedUserMessage": description,
    })
}

/// RFC 3339 with milliseconds, as Smartcar's `sc-data-age` examples.
pub(crate) fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The fake application's registration and the fake's layout.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Redirect URIs registered for the application (Connect refuses others).
    pub redirect_uris: Vec<String>,
    /// The Application Management Token: signs webhooks, keys the VERIFY challenge.
    pub management_token: String,
    /// Path prefix of Connect (`{prefix}/oauth/authorize`); default none.
    pub connect_prefix: String,
    /// Path prefix of the authorization server (`{prefix}/oauth/token`); default none.
    pub auth_prefix: String,
    /// Path prefix of the Vehicles API; default `/v2.0`.
    pub api_prefix: String,
    /// The fake clock's start; default now, to the second.
    pub start_time: DateTime<Utc>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            client_id: "fake-client-id".to_owned(),
            client_secret: "fake-client-secret".to_owned(),
            redirect_uris: vec!["http://localhost/smartcar/callback".to_owned()],
            management_token: "fake-application-management-token".to_owned(),
            connect_prefix: String::new(),
            auth_prefix: String::new(),
            api_prefix: "/v2.0".to_owned(),
            start_time: Utc::now().trunc_subsecs(0),
        }
    }
}
