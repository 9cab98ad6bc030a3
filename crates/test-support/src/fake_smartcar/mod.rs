//! A fake Smartcar, written from Smartcar's public documentation, for tests of Voltplan's
//! Smartcar client and its Connect and webhook endpoints. One server plays Connect, the
//! authorization server and the Vehicles API (under configurable path prefixes).
//!
//! What it follows:
//! - Connect ("Redirect to Connect", "Handle the response"): `GET /oauth/authorize` checks
//!   `client_id`, `redirect_uri`, `response_type`, `scope` and `state` and shows a plain HTML
//!   login form (`method=post`); a known e-mail and password redirect to
//!   `redirect_uri?code=…&state=…` (codes are single-use and live 10 minutes), "Deny" redirects
//!   with `error=access_denied&error_description=…&state=…`.
//! - Tokens ("Auth code exchange", "Token refresh", "Refreshing Refresh Tokens"):
//!   `POST /oauth/token` with Basic client authentication and a form body; access tokens live
//!   2 h, refresh tokens 60 days; a refresh rotates both and the used refresh token keeps working
//!   for 1 minute; OAuth errors (`invalid_client`, `invalid_grant`, …) as
//!   `{error, error_description}`. A User-Agent is required, as documented.
//! - Vehicles API v2.0 ("All Vehicles", "Vehicle Attributes", "VIN", "User", "Battery Level",
//!   "Battery Capacity", "Charge Status", "Charge Limit", "Location", "Start & Stop Charge",
//!   "Batch"): fractions for levels and limits, `sc-request-id` on every answer, `sc-data-age`,
//!   `sc-fetched-at` and `sc-unit-system` on data; permissions per endpoint (`403 PERMISSION`).
//! - Errors ("API Errors" and the per-type pages): v2 bodies `{type, code, description, docURL,
//!   statusCode, requestId, resolution}` — `401 AUTHENTICATION` for a missing, unknown, expired or
//!   revoked token, `409 VEHICLE_STATE:CHARGING_PLUG_NOT_CONNECTED` for START while unplugged,
//!   `409 VEHICLE_STATE:CHARGING_IN_PROGRESS` for START while charging, `501 COMPATIBILITY`,
//!   `429 RATE_LIMIT:VEHICLE` with `retry-after` (seconds) once switched on.
//! - Webhooks ("Event Reference", "VEHICLE_STATE Event", "Payload Verification", "Callback URI
//!   Verification"): [`FakeSmartcar::send_vehicle_state`] and [`FakeSmartcar::send_verify`] POST
//!   version-4.0 payloads signed with the management token in `SC-Signature`.
//!
//! The fake has its own clock, moved only by [`FakeSmartcar::advance`]; charging cars gain
//! power × time up to their limit.

mod http;
mod model;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::oneshot;
use uuid::Uuid;

pub use model::{FakeAction, FakeCommand, FakeConfig, FakeVehicle};

use http::Shared;
use model::{Account, VehicleRecord, World};

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("cannot start the fake Smartcar: {0}")]
    Start(String),
    #[error("no account {0}")]
    UnknownAccount(String),
    #[error("no vehicle {0}")]
    UnknownVehicle(String),
    #[error("account {0} exists already")]
    DuplicateAccount(String),
    #[error("HTTP to {what} failed: {message}")]
    Http { what: &'static str, message: String },
    #[error("Connect did not redirect (status {0})")]
    NoRedirect(u16),
}

/// A receiver's answer to a webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReply {
    pub status: u16,
    pub body: String,
}

/// A receiver's answer to a VERIFY event, and whether Smartcar would accept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReply {
    pub status: u16,
    pub body: String,
    pub challenge: String,
    /// Status 200 and a JSON body whose `challenge` is the HMAC Smartcar expects.
    pub accepted: bool,
}

/// A running fake Smartcar on `127.0.0.1`. Dropping it stops the server.
pub struct FakeSmartcar {
    shared: Arc<Shared>,
    base_url: String,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for FakeSmartcar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSmartcar")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeSmartcar {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn hmac_hex(key: &str, message: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC accepts any key length; an empty signature would fail every check.
        Err(_) => String::new(),
    }
}

impl FakeSmartcar {
    /// A fake with [`FakeConfig::default`], listening on a free port.
    pub async fn start() -> Result<FakeSmartcar, FakeError> {
        Self::start_with(FakeConfig::default()).await
    }

    pub async fn start_with(config: FakeConfig) -> Result<FakeSmartcar, FakeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| FakeError::Start(e.to_string()))?;
        let address = listener
            .local_addr()
            .map_err(|e| FakeError::Start(e.to_string()))?;
        let shared = Arc::new(Shared {
            world: std::sync::Mutex::new(World::new(config.start_time)),
            config,
        });
        let app = http::router(shared.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(15))
            .user_agent("fake-smartcar")
            .build()
            .map_err(|e| FakeError::Start(e.to_string()))?;
        Ok(FakeSmartcar {
            shared,
            base_url: format!("http://{address}"),
            http,
            shutdown: Some(shutdown),
        })
    }

    pub fn config(&self) -> &FakeConfig {
        &self.shared.config
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Where Connect lives (the client's `connect_base`).
    pub fn connect_base(&self) -> String {
        format!("{}{}", self.base_url, self.config().connect_prefix)
    }

    /// Where the token endpoint lives (the client's `auth_base`).
    pub fn auth_base(&self) -> String {
        format!("{}{}", self.base_url, self.config().auth_prefix)
    }

    /// The Vehicles API root (the client's `api_base`).
    pub fn api_base(&self) -> String {
        format!("{}{}", self.base_url, self.config().api_prefix)
    }

    /// Registers one more redirect URI for the application, as in Smartcar's dashboard (a test
    /// learns its server's address after the fake started).
    pub fn register_redirect_uri(&self, uri: &str) {
        self.shared.world().redirect_uris.push(uri.to_owned());
    }

    /// The fake's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.world().now
    }

    /// Moves the fake's clock; charging cars charge meanwhile.
    pub fn advance(&self, by: Duration) {
        self.shared.world().advance(by);
    }

    /// A connected-services account; returns its Smartcar user id.
    pub fn add_account(&self, email: &str, password: &str) -> Result<String, FakeError> {
        let mut world = self.shared.world();
        if world.accounts.contains_key(email) {
            return Err(FakeError::DuplicateAccount(email.to_owned()));
        }
        let user_id = Uuid::new_v4().to_string();
        world.accounts.insert(
            email.to_owned(),
            Account {
                password: password.to_owned(),
                user_id: user_id.clone(),
                vehicle_ids: Vec::new(),
                revoked: false,
            },
        );
        Ok(user_id)
    }

    /// A car in an account; returns its Smartcar vehicle id.
    pub fn add_vehicle(&self, email: &str, car: FakeVehicle) -> Result<String, FakeError> {
        let mut world = self.shared.world();
        let now = world.now;
        let account = world
            .accounts
            .get_mut(email)
            .ok_or_else(|| FakeError::UnknownAccount(email.to_owned()))?;
        let id = Uuid::new_v4().to_string();
        account.vehicle_ids.push(id.clone());
        let user_id = account.user_id.clone();
        world.vehicles.insert(
            id.clone(),
            VehicleRecord {
                user_id,
                car,
                updated_at: now,
                commands: Vec::new(),
                api_calls: 0,
                throttled_until: None,
            },
        );
        Ok(id)
    }

    /// Changes a car (plug it in, set its level, …); its data is then "now".
    pub fn update_vehicle(
        &self,
        vehicle_id: &str,
        change: impl FnOnce(&mut FakeVehicle),
    ) -> Result<(), FakeError> {
        let mut world = self.shared.world();
        let now = world.now;
        let record = world
            .vehicles
            .get_mut(vehicle_id)
            .ok_or_else(|| FakeError::UnknownVehicle(vehicle_id.to_owned()))?;
        change(&mut record.car);
        record.updated_at = now;
        Ok(())
    }

    /// The car as the fake holds it now.
    pub fn vehicle(&self, vehicle_id: &str) -> Option<FakeVehicle> {
        self.shared
            .world()
            .vehicles
            .get(vehicle_id)
            .map(|r| r.car.clone())
    }

    /// The owner withdraws access: every token of the account dies, refreshes get
    /// `invalid_grant`.
    pub fn revoke_account(&self, email: &str) -> Result<(), FakeError> {
        let mut world = self.shared.world();
        let account = world
            .accounts
            .get_mut(email)
            .ok_or_else(|| FakeError::UnknownAccount(email.to_owned()))?;
        account.revoked = true;
        Ok(())
    }

    /// The driver grants access again (as a new Connect login after a revocation does): the
    /// account logs in again, and the tokens issued before the revocation stay dead.
    pub fn restore_account(&self, email: &str) -> Result<(), FakeError> {
        let mut world = self.shared.world();
        let user_id = world
            .accounts
            .get(email)
            .map(|a| a.user_id.clone())
            .ok_or_else(|| FakeError::UnknownAccount(email.to_owned()))?;
        world
            .access_tokens
            .retain(|_, t| t.grant.user_id != user_id);
        world
            .refresh_tokens
            .retain(|_, t| t.grant.user_id != user_id);
        if let Some(account) = world.accounts.get_mut(email) {
            account.revoked = false;
        }
        Ok(())
    }

    /// Ends every access token of the account now (refresh tokens stay valid), so the next call
    /// gets `401` while the client still thinks its token good.
    pub fn expire_access_tokens(&self, email: &str) -> Result<(), FakeError> {
        let mut world = self.shared.world();
        let user_id = world
            .accounts
            .get(email)
            .map(|a| a.user_id.clone())
            .ok_or_else(|| FakeError::UnknownAccount(email.to_owned()))?;
        let now = world.now;
        for token in world.access_tokens.values_mut() {
            if token.grant.user_id == user_id {
                token.expires_at = now;
            }
        }
        Ok(())
    }

    /// Switches on the per-vehicle throttle: every call for `duration` (fake time) gets
    /// `429 RATE_LIMIT:VEHICLE` with the remaining seconds in `retry-after`.
    pub fn throttle_vehicle(&self, vehicle_id: &str, duration: Duration) -> Result<(), FakeError> {
        let mut world = self.shared.world();
        let until = world.now + duration;
        let record = world
            .vehicles
            .get_mut(vehicle_id)
            .ok_or_else(|| FakeError::UnknownVehicle(vehicle_id.to_owned()))?;
        record.throttled_until = Some(until);
        Ok(())
    }

    /// The commands the car accepted, oldest first.
    pub fn commands(&self, vehicle_id: &str) -> Vec<FakeCommand> {
        self.shared
            .world()
            .vehicles
            .get(vehicle_id)
            .map(|r| r.commands.clone())
            .unwrap_or_default()
    }

    /// Requests that named this car (any status, a batch counting once).
    pub fn api_calls(&self, vehicle_id: &str) -> usize {
        self.shared
            .world()
            .vehicles
            .get(vehicle_id)
            .map_or(0, |r| r.api_calls)
    }

    /// Requests to the token endpoint (any grant, any outcome).
    pub fn token_requests(&self) -> usize {
        self.shared.world().token_requests
    }

    /// Plays the driver in Connect over HTTP: opens `authorize_url` (must show the login form),
    /// then submits e-mail and password with "Allow" (or "Deny"). Returns the `Location` Connect
    /// redirected to.
    pub async fn log_in(
        &self,
        authorize_url: &str,
        email: &str,
        password: &str,
        allow: bool,
    ) -> Result<String, FakeError> {
        let http_error = |what: &'static str| {
            move |e: reqwest::Error| FakeError::Http {
                what,
                message: e.to_string(),
            }
        };
        let page = self
            .http
            .get(authorize_url)
            .send()
            .await
            .map_err(http_error("Connect"))?;
        if page.status().as_u16() != 200 {
            return Err(FakeError::NoRedirect(page.status().as_u16()));
        }
        let parsed = url::Url::parse(authorize_url).map_err(|e| FakeError::Http {
            what: "Connect",
            message: e.to_string(),
        })?;
        let mut form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        form.push(("email".into(), email.into()));
        form.push(("password".into(), password.into()));
        form.push(("action".into(), if allow { "allow" } else { "deny" }.into()));
        let submit_url = format!(
            "{}://{}{}",
            parsed.scheme(),
            parsed.authority(),
            parsed.path()
        );
        let answer = self
            .http
            .post(submit_url)
            .form(&form)
            .send()
            .await
            .map_err(http_error("Connect"))?;
        answer
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned)
            .ok_or(FakeError::NoRedirect(answer.status().as_u16()))
    }

    /// The `SC-Signature` Smartcar would send with `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        hmac_hex(&self.config().management_token, body)
    }

    /// POSTs `body` to `url` signed like Smartcar (`SC-Signature`), for duplicates, reordering
    /// or hand-made events.
    pub async fn send_signed(&self, url: &str, body: &[u8]) -> Result<WebhookReply, FakeError> {
        let signature = self.sign(body);
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("SC-Signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| FakeError::Http {
                what: "the webhook receiver",
                message: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Ok(WebhookReply { status, body })
    }

    /// The VEHICLE_STATE event (version 4.0) for the car as it is now.
    pub fn vehicle_state_event(&self, vehicle_id: &str) -> Result<Value, FakeError> {
        let world = self.shared.world();
        let record = world
            .vehicles
            .get(vehicle_id)
            .ok_or_else(|| FakeError::UnknownVehicle(vehicle_id.to_owned()))?;
        let car = &record.car;
        let retrieved = world.now.timestamp_millis();
        let oem = record.updated_at.timestamp_millis();
        const VOLTS: f64 = 230.0;
        let amps = if car.charging {
            car.charge_power_kw * 1000.0 / VOLTS
        } else {
            0.0
        };
        let limit_percent = (car.charge_limit * 100.0).round();
        let ok = |code: &str, name: &str, group: &str, body: Value| {
            json!({
                "code": code, "name": name, "group": group, "body": body,
                "status": { "value": "SUCCESS" },
                "meta": { "retrievedAt": retrieved, "oemUpdatedAt": oem },
            })
        };
        let mut signals = vec![
            ok(
                "tractionbattery-stateofcharge",
                "StateOfCharge",
                "TractionBattery",
                json!({ "unit": "percent", "value": car.level_percent }),
            ),
            ok(
                "charge-ischargingcableconnected",
                "IsChargingCableConnected",
                "Charge",
                json!({ "value": car.plugged_in }),
            ),
            ok(
                "charge-ischarging",
                "IsCharging",
                "Charge",
                json!({ "value": car.charging }),
            ),
            ok(
                "charge-amperage",
                "Amperage",
                "Charge",
                json!({ "unit": "amps", "value": amps }),
            ),
            ok(
                "charge-voltage",
                "Voltage",
                "Charge",
                json!({ "unit": "volts", "value": VOLTS }),
            ),
            ok(
                "charge-chargelimits",
                "ChargeLimits",
                "Charge",
                json!({
                    "values": [ { "type": "global", "limit": limit_percent, "condition": null } ],
                    "activeLimit": if car.plugged_in { json!(limit_percent) } else { Value::Null },
                    "unit": "percent",
                }),
            ),
            ok(
                "tractionbattery-nominalcapacity",
                "NominalCapacity",
                "TractionBattery",
                json!({ "source": "SMARTCAR", "capacity": car.capacity_kwh, "unit": "kWhr" }),
            ),
            ok(
                "tractionbattery-range",
                "Range",
                "TractionBattery",
                json!({ "unit": "kilometers",
                        "value": car.full_range_km * car.level_percent / 100.0 }),
            ),
        ];
        signals.push(if car.has_location {
            ok(
                "location-preciselocation",
                "PreciseLocation",
                "Location",
                json!({ "latitude": car.latitude, "longitude": car.longitude }),
            )
        } else {
            json!({
                "code": "location-preciselocation", "name": "PreciseLocation", "group": "Location",
                "status": { "value": "ERROR",
                            "error": { "type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE" } },
            })
        });
        let signal_count = signals.len();
        Ok(json!({
            "eventId": Uuid::new_v4().to_string(),
            "eventType": "VEHICLE_STATE",
            "data": {
                "user": { "id": record.user_id },
                "vehicle": { "id": vehicle_id, "make": car.make, "model": car.model,
                             "year": car.year },
                "signals": signals,
            },
            "triggers": [ { "type": "SIGNAL_UPDATED",
                            "signal": { "code": "tractionbattery-stateofcharge",
                                        "name": "StateOfCharge", "group": "TractionBattery" } } ],
            "meta": {
                "version": "4.0",
                "deliveryId": Uuid::new_v4().to_string(),
                "deliveredAt": retrieved,
                "webhookId": "00000000-0000-4000-8000-00000000fa4e",
                "webhookName": "Fake Smartcar webhook",
                "signalCount": signal_count,
                "mode": "TEST",
            },
        }))
    }

    /// Delivers the car's current state to a webhook receiver, signed.
    pub async fn send_vehicle_state(
        &self,
        url: &str,
        vehicle_id: &str,
    ) -> Result<WebhookReply, FakeError> {
        let event = self.vehicle_state_event(vehicle_id)?;
        self.send_signed(url, event.to_string().as_bytes()).await
    }

    /// Sends a VERIFY event with a fresh challenge and checks the receiver's answer like
    /// Smartcar: 200 and `{"challenge": hex(HMAC-SHA256(AMT, challenge))}`.
    pub async fn send_verify(&self, url: &str) -> Result<VerifyReply, FakeError> {
        let challenge = Uuid::new_v4().simple().to_string();
        let event = json!({
            "eventId": Uuid::new_v4().to_string(),
            "eventType": "VERIFY",
            "data": { "challenge": challenge },
            "meta": {
                "version": "4.0",
                "webhookId": "00000000-0000-4000-8000-00000000fa4e",
                "webhookName": "Fake Smartcar webhook",
                "deliveryId": Uuid::new_v4().to_string(),
                "deliveredAt": model::iso(self.now()),
            },
        });
        let reply = self.send_signed(url, event.to_string().as_bytes()).await?;
        let expected = hmac_hex(&self.config().management_token, challenge.as_bytes());
        let answered = serde_json::from_str::<Value>(&reply.body)
            .ok()
            .and_then(|body| {
                body.get("challenge")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        Ok(VerifyReply {
            accepted: reply.status == 200 && answered.as_deref() == Some(expected.as_str()),
            status: reply.status,
            body: reply.body,
            challenge,
        })
    }
}
