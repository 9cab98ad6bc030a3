//! A simulated OCPP 1.6J wallbox with a car behind it. It connects to a central system (Voltplan's
//! `/ocpp/{charge_point_id}`) over a real WebSocket with HTTP Basic credentials, boots, reports its
//! connector, starts a transaction when a car is plugged in (free vend, as home chargers are set
//! up), obeys the charging profiles it is sent, meters the energy it delivers and reports it in
//! MeterValues, and stops the transaction when the car leaves. Time (timestamps, energy) runs on
//! the injected [`Clock`], so the demo's accelerated clock accelerates the charger too; the
//! heartbeat runs on real time, like the server's idle timeout.
//!
//! The demo uses it for the wallbox part of its fleet (`voltplan demo`); it is also the charger a
//! reader can run against their own server.

pub mod physics;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration as RealDuration;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;
use voltplan_core::Clock;
use voltplan_ocpp::v16::{ChargingProfile, SetChargingProfile};
use voltplan_ocpp::{ErrorCode, Frame, Version};

pub use physics::Car;

/// How to reach the central system, and what the wallbox can do.
#[derive(Debug, Clone)]
pub struct ChargerConfig {
    /// The central system's URL without the identity, e.g. `ws://127.0.0.1:8080/ocpp`.
    pub url: String,
    pub charge_point_id: String,
    pub password: String,
    /// The wallbox's own maximum, W (11 kW: 3 × 16 A).
    pub max_power_w: f64,
    pub phases: u8,
    /// How often (clock time) the meter is reported while a car is plugged in.
    pub meter_interval: Duration,
    /// How often (real time) the physics advance.
    pub tick: RealDuration,
    /// How often (real time) a Heartbeat is sent.
    pub heartbeat: RealDuration,
}

impl ChargerConfig {
    pub fn new(
        url: impl Into<String>,
        charge_point_id: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            charge_point_id: charge_point_id.into(),
            password: password.into(),
            max_power_w: 11_040.0,
            phases: 3,
            meter_interval: Duration::minutes(5),
            tick: RealDuration::from_millis(250),
            heartbeat: RealDuration::from_secs(60),
        }
    }
}

/// What the wallbox looks like now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub connected: bool,
    pub booted: bool,
    pub car: Option<Car>,
    pub transaction_id: Option<i64>,
    pub meter_wh: f64,
    pub power_w: f64,
    /// The limit the active profile sets now, W (`None`: no profile, the wallbox's maximum).
    pub limit_w: Option<f64>,
    /// The connector status last reported.
    pub status: String,
    /// Profiles received so far.
    pub profiles_received: usize,
}

enum Driver {
    Plug(Car),
    Unplug,
}

/// A call the wallbox will send; its payload is built when it is sent (a MeterValues after a
/// StartTransaction carries the transaction id the answer gave).
#[derive(Debug, Clone)]
enum Outgoing {
    Boot,
    Heartbeat,
    Status(&'static str, DateTime<Utc>),
    Start {
        meter_wh: f64,
        at: DateTime<Utc>,
    },
    Stop {
        meter_wh: f64,
        at: DateTime<Utc>,
        reason: &'static str,
    },
    Meter {
        meter_wh: f64,
        power_w: f64,
        soc: Option<f64>,
        at: DateTime<Utc>,
    },
}

struct Sim {
    snapshot: Snapshot,
    tx_profile: Option<ChargingProfile>,
    default_profile: Option<ChargingProfile>,
    last_step: Option<DateTime<Utc>>,
    last_meter_report: Option<DateTime<Utc>>,
}

/// A running simulated wallbox; dropping it stops it.
pub struct SimulatedCharger {
    sim: Arc<Mutex<Sim>>,
    driver: mpsc::UnboundedSender<Driver>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimulatedCharger {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimulatedCharger {
    /// Starts the wallbox: it connects (and reconnects, backing off) until dropped.
    pub fn spawn(config: ChargerConfig, clock: Arc<dyn Clock>) -> Self {
        let sim = Arc::new(Mutex::new(Sim {
            snapshot: Snapshot {
                status: "Available".to_owned(),
                meter_wh: 0.0,
                ..Snapshot::default()
            },
            tx_profile: None,
            default_profile: None,
            last_step: None,
            last_meter_report: None,
        }));
        let (driver, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(config, clock, sim.clone(), events));
        Self { sim, driver, task }
    }

    /// A car is plugged in: the wallbox starts a transaction.
    pub fn plug_in(&self, car: Car) {
        let _ = self.driver.send(Driver::Plug(car));
    }

    /// The car leaves: the transaction stops.
    pub fn unplug(&self) {
        let _ = self.driver.send(Driver::Unplug);
    }

    pub fn snapshot(&self) -> Snapshot {
        lock(&self.sim).snapshot.clone()
    }
}

fn lock(sim: &Mutex<Sim>) -> std::sync::MutexGuard<'_, Sim> {
    sim.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run(
    config: ChargerConfig,
    clock: Arc<dyn Clock>,
    sim: Arc<Mutex<Sim>>,
    mut events: mpsc::UnboundedReceiver<Driver>,
) {
    let mut backoff = RealDuration::from_millis(500);
    loop {
        match connect_and_serve(&config, clock.as_ref(), &sim, &mut events).await {
            Ok(()) => return,
            Err(error) => {
                tracing::debug!(charge_point_id = %config.charge_point_id, %error, "simulated wallbox disconnected; reconnecting");
            }
        }
        {
            let mut s = lock(&sim);
            s.snapshot.connected = false;
            s.snapshot.booted = false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RealDuration::from_secs(30));
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One connection: until it breaks (`Err`) or the driver handle is dropped (`Ok`).
async fn connect_and_serve(
    config: &ChargerConfig,
    clock: &dyn Clock,
    sim: &Mutex<Sim>,
    events: &mut mpsc::UnboundedReceiver<Driver>,
) -> Result<(), Error> {
    let mut request = format!("{}/{}", config.url, config.charge_point_id).into_client_request()?;
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", config.charge_point_id, config.password));
    let headers = request.headers_mut();
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Basic {credentials}"))?,
    );
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("ocpp1.6"),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    let (mut sink, mut stream) = socket.split();
    lock(sim).snapshot.connected = true;

    let mut outbox: VecDeque<Outgoing> = VecDeque::from([Outgoing::Boot]);
    {
        // After a reconnect the central system learns the connector's state again.
        let s = lock(sim);
        outbox.push_back(Outgoing::Status(
            status_name(&s.snapshot.status),
            clock.now(),
        ));
    }
    let mut pending: Option<(String, Outgoing)> = None;
    let mut tick = tokio::time::interval(config.tick);
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    heartbeat.reset();
    loop {
        if pending.is_none()
            && let Some(call) = outbox.pop_front()
        {
            let id = Uuid::new_v4().to_string();
            let (action, payload) = payload_of(&call, &lock(sim).snapshot);
            let frame = Frame::Call {
                id: id.clone(),
                action: action.to_owned(),
                payload,
            };
            sink.send(Message::Text(frame.to_text().into())).await?;
            pending = Some((id, call));
        }
        tokio::select! {
            message = stream.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => return Err("closed by the central system".into()),
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => return Err(error.into()),
                };
                match Frame::parse(&text) {
                    Ok(Frame::Call { id, action, payload }) => {
                        let reply = answer(config, clock, sim, &action, payload, &mut outbox);
                        let frame = match reply {
                            Ok(payload) => Frame::CallResult { id, payload },
                            Err((code, text)) => Frame::error(&id, code, Version::V16, text),
                        };
                        sink.send(Message::Text(frame.to_text().into())).await?;
                    }
                    Ok(Frame::CallResult { id, payload }) => {
                        if let Some((_, call)) = pending.take_if(|(p, _)| *p == id) {
                            answered(sim, &call, &payload);
                        }
                    }
                    Ok(Frame::CallError { id, code, .. }) => {
                        if let Some((_, call)) = pending.take_if(|(p, _)| *p == id) {
                            tracing::warn!(charge_point_id = %config.charge_point_id, ?call, %code, "simulated wallbox: a call was refused");
                        }
                    }
                    Err(_) => {}
                }
            }
            event = events.recv() => {
                let Some(event) = event else { return Ok(()) };
                drive(sim, clock.now(), event, &mut outbox);
            }
            _ = tick.tick() => step(config, sim, clock.now(), &mut outbox),
            _ = heartbeat.tick() => outbox.push_back(Outgoing::Heartbeat),
        }
    }
}

fn status_name(status: &str) -> &'static str {
    match status {
        "Preparing" => "Preparing",
        "Charging" => "Charging",
        "SuspendedEV" => "SuspendedEV",
        "SuspendedEVSE" => "SuspendedEVSE",
        "Finishing" => "Finishing",
        _ => "Available",
    }
}

fn payload_of(call: &Outgoing, snapshot: &Snapshot) -> (&'static str, Map<String, Value>) {
    let value = match call {
        Outgoing::Boot => (
            "BootNotification",
            json!({"chargePointVendor": "Voltplan", "chargePointModel": "Sandbox Wallbox 11",
                   "firmwareVersion": env!("CARGO_PKG_VERSION")}),
        ),
        Outgoing::Heartbeat => ("Heartbeat", json!({})),
        Outgoing::Status(status, at) => (
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": at}),
        ),
        Outgoing::Start { meter_wh, at } => (
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "HOME", "meterStart": *meter_wh as i64, "timestamp": at}),
        ),
        Outgoing::Stop {
            meter_wh,
            at,
            reason,
        } => (
            "StopTransaction",
            json!({"transactionId": snapshot.transaction_id.unwrap_or(0), "meterStop": *meter_wh as i64,
                   "timestamp": at, "reason": reason}),
        ),
        Outgoing::Meter {
            meter_wh,
            power_w,
            soc,
            at,
        } => {
            let mut sampled = vec![
                json!({"value": format!("{meter_wh:.0}"), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}),
                json!({"value": format!("{power_w:.0}"), "measurand": "Power.Active.Import", "unit": "W"}),
            ];
            if let Some(soc) = soc {
                sampled.push(
                    json!({"value": format!("{soc:.1}"), "measurand": "SoC", "unit": "Percent"}),
                );
            }
            let mut payload = json!({"connectorId": 1, "meterValue": [{"timestamp": at, "sampledValue": sampled}]});
            if let Some(id) = snapshot.transaction_id {
                payload["transactionId"] = json!(id);
            }
            ("MeterValues", payload)
        }
    };
    let (action, Value::Object(payload)) = value else {
        return (value.0, Map::new());
    };
    (action, payload)
}

/// The central system's answer to one of our calls.
fn answered(sim: &Mutex<Sim>, call: &Outgoing, payload: &Value) {
    let mut s = lock(sim);
    match call {
        Outgoing::Boot => s.snapshot.booted = payload["status"] == "Accepted",
        Outgoing::Start { .. } => s.snapshot.transaction_id = payload["transactionId"].as_i64(),
        Outgoing::Stop { .. } => s.snapshot.transaction_id = None,
        _ => {}
    }
}

/// A call from the central system.
fn answer(
    config: &ChargerConfig,
    clock: &dyn Clock,
    sim: &Mutex<Sim>,
    action: &str,
    payload: Map<String, Value>,
    outbox: &mut VecDeque<Outgoing>,
) -> Result<Value, (ErrorCode, &'static str)> {
    let accepted = json!({"status": "Accepted"});
    let mut s = lock(sim);
    match action {
        "GetConfiguration" => Ok(json!({"configurationKey": [
            {"key": "SupportedFeatureProfiles", "readonly": true, "value": "Core,SmartCharging,RemoteTrigger"},
            {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": true, "value": "Current"},
            {"key": "ChargingScheduleMaxPeriods", "readonly": true, "value": "48"},
            {"key": "NumberOfConnectors", "readonly": true, "value": "1"},
            {"key": "MeterValueSampleInterval", "readonly": false,
             "value": config.meter_interval.num_seconds().to_string()},
        ]})),
        "SetChargingProfile" => {
            let request: SetChargingProfile = serde_json::from_value(Value::Object(payload))
                .map_err(|_| (ErrorCode::FormationViolation, "not a SetChargingProfile"))?;
            let profile = request.cs_charging_profiles;
            s.snapshot.profiles_received += 1;
            match profile.charging_profile_purpose.as_str() {
                "TxProfile" => s.tx_profile = Some(profile),
                "TxDefaultProfile" => s.default_profile = Some(profile),
                _ => return Ok(json!({"status": "NotSupported"})),
            }
            Ok(accepted)
        }
        "ClearChargingProfile" => {
            s.tx_profile = None;
            s.default_profile = None;
            Ok(accepted)
        }
        "RemoteStartTransaction" => {
            if s.snapshot.car.is_some() && s.snapshot.transaction_id.is_none() {
                outbox.push_back(Outgoing::Start {
                    meter_wh: s.snapshot.meter_wh,
                    at: clock.now(),
                });
                Ok(accepted)
            } else {
                Ok(json!({"status": "Rejected"}))
            }
        }
        "RemoteStopTransaction" => {
            if s.snapshot.transaction_id.is_some()
                && payload.get("transactionId").and_then(Value::as_i64) == s.snapshot.transaction_id
            {
                outbox.push_back(Outgoing::Stop {
                    meter_wh: s.snapshot.meter_wh,
                    at: clock.now(),
                    reason: "Remote",
                });
                Ok(accepted)
            } else {
                Ok(json!({"status": "Rejected"}))
            }
        }
        "ChangeConfiguration" | "ChangeAvailability" => Ok(accepted),
        "TriggerMessage" => {
            match payload.get("requestedMessage").and_then(Value::as_str) {
                Some("StatusNotification") => outbox.push_back(Outgoing::Status(
                    status_name(&s.snapshot.status),
                    clock.now(),
                )),
                Some("Heartbeat") => outbox.push_back(Outgoing::Heartbeat),
                Some("MeterValues") => s.last_meter_report = None,
                _ => return Ok(json!({"status": "NotImplemented"})),
            }
            Ok(accepted)
        }
        _ => Err((
            ErrorCode::NotSupported,
            "not supported by the sandbox wallbox",
        )),
    }
}

fn drive(sim: &Mutex<Sim>, now: DateTime<Utc>, event: Driver, outbox: &mut VecDeque<Outgoing>) {
    let mut s = lock(sim);
    match event {
        Driver::Plug(car) => {
            if s.snapshot.car.is_some() {
                return;
            }
            s.snapshot.car = Some(car);
            s.snapshot.status = "Preparing".to_owned();
            s.tx_profile = None;
            s.last_meter_report = Some(now);
            outbox.push_back(Outgoing::Status("Preparing", now));
            outbox.push_back(Outgoing::Start {
                meter_wh: s.snapshot.meter_wh,
                at: now,
            });
        }
        Driver::Unplug => {
            if s.snapshot.car.take().is_none() {
                return;
            }
            s.snapshot.power_w = 0.0;
            if s.snapshot.transaction_id.is_some()
                || outbox.iter().any(|c| matches!(c, Outgoing::Start { .. }))
            {
                outbox.push_back(Outgoing::Stop {
                    meter_wh: s.snapshot.meter_wh,
                    at: now,
                    reason: "EVDisconnected",
                });
            }
            s.tx_profile = None;
            s.snapshot.status = "Available".to_owned();
            outbox.push_back(Outgoing::Status("Available", now));
        }
    }
}

/// The longest stretch integrated at one power: a clock that jumps (a test's manual clock, a
/// stalled task) is walked through in steps, each at the limit the profile sets then.
const MAX_STEP: Duration = Duration::seconds(60);

/// Advances the physics to `now`: the car draws what the profile, the wallbox and the car allow.
fn step(
    config: &ChargerConfig,
    sim: &Mutex<Sim>,
    now: DateTime<Utc>,
    outbox: &mut VecDeque<Outgoing>,
) {
    let mut s = lock(sim);
    let since = s.last_step.replace(now).unwrap_or(now);
    if s.snapshot.car.is_none() || s.snapshot.transaction_id.is_none() || since >= now {
        return;
    }
    let (mut at, mut power, mut limit) = (since, 0.0, None);
    while at < now {
        let until = (at + MAX_STEP).min(now);
        let profile = s.tx_profile.as_ref().or(s.default_profile.as_ref());
        limit = profile.and_then(|p| physics::profile_limit_w(p, at, config.phases));
        let accepts = s.snapshot.car.as_ref().map_or(0.0, Car::accepts_w);
        power = limit
            .unwrap_or(config.max_power_w)
            .min(config.max_power_w)
            .min(accepts)
            .max(0.0);
        let hours = (until - at).num_milliseconds() as f64 / 3_600_000.0;
        if let Some(car) = s.snapshot.car.as_mut() {
            car.charge(power, hours);
        }
        s.snapshot.meter_wh += power * hours;
        at = until;
    }
    s.snapshot.power_w = power;
    s.snapshot.limit_w = limit;
    let status = if power > 0.0 {
        "Charging"
    } else if limit.is_some_and(|l| l <= 0.0) {
        "SuspendedEVSE"
    } else {
        "SuspendedEV"
    };
    if s.snapshot.status != status {
        s.snapshot.status = status.to_owned();
        outbox.push_back(Outgoing::Status(status, now));
    }
    let due = s
        .last_meter_report
        .is_none_or(|at| now - at >= config.meter_interval);
    if due {
        s.last_meter_report = Some(now);
        outbox.push_back(Outgoing::Meter {
            meter_wh: s.snapshot.meter_wh,
            power_w: power,
            soc: s.snapshot.car.as_ref().map(|c| c.soc_pct),
            at: now,
        });
    }
}
