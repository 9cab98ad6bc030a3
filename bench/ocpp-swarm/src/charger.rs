//! One simulated OCPP 1.6J charger: it connects (Basic auth, subprotocol `ocpp1.6`), boots,
//! reports its connector, then sends a Heartbeat and a MeterValues every interval, at its own
//! phase of the interval so the swarm's messages are spread evenly; it answers the central
//! system's calls like a real smart charger (GetConfiguration, SetChargingProfile → Accepted).
//! Every CALL it sends is counted, and so is every answer, CALLERROR and timeout.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use chrono::{SecondsFormat, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

/// How long a charger waits for an answer (OCPP-J leaves it to the implementation; the central
/// system waits 30 s for chargers).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Handshake attempts before a charger gives up (a real one would retry forever, backing off).
const CONNECT_ATTEMPTS: u32 = 3;
/// Source addresses the swarm spreads over (127.0.0.2 …): each has its own ephemeral ports, so
/// several runs in a row never exhaust them with connections in TIME_WAIT.
const SOURCE_ADDRESSES: usize = 32;

/// What every charger of a run shares.
pub struct Plan {
    pub port: u16,
    pub password: String,
    pub chargers: usize,
    pub interval: Duration,
    /// The instant the swarm's phases count from.
    pub epoch: Instant,
}

/// The swarm's counts, summed over its chargers.
#[derive(Default)]
pub struct Counters {
    /// Handshakes that succeeded.
    pub connected: AtomicU64,
    /// Chargers whose BootNotification and StatusNotification were answered.
    pub booted: AtomicU64,
    /// Chargers that could not connect after every attempt.
    pub connect_failed: AtomicU64,
    /// Connections the server closed (or that broke) before the swarm stopped.
    pub disconnected: AtomicU64,
    /// CALLs the chargers sent.
    pub calls: AtomicU64,
    /// CALLRESULTs to them.
    pub results: AtomicU64,
    /// CALLERRORs to them.
    pub call_errors: AtomicU64,
    /// Calls with no answer within [`CALL_TIMEOUT`], or still unanswered when the connection
    /// ended.
    pub unanswered: AtomicU64,
    /// CALLs the central system sent to chargers, and of them SetChargingProfile.
    pub server_calls: AtomicU64,
    pub profiles: AtomicU64,
}

impl Counters {
    /// Every message that did not get where it should: what the benchmark wants at zero.
    pub fn dropped(&self) -> u64 {
        self.call_errors.load(Ordering::Relaxed)
            + self.unanswered.load(Ordering::Relaxed)
            + self.disconnected.load(Ordering::Relaxed)
            + self.connect_failed.load(Ordering::Relaxed)
    }
}

/// Latencies in milliseconds.
#[derive(Default)]
pub struct Samples {
    /// TCP connect + HTTP upgrade (the server's Argon2id check included), per charger.
    pub connect: Mutex<Vec<f64>>,
    /// A charger's CALL to its CALLRESULT, while `measuring`.
    pub message: Mutex<Vec<f64>>,
}

pub struct Shared {
    pub plan: Plan,
    pub counters: Counters,
    pub samples: Samples,
    pub measuring: AtomicBool,
}

fn push(samples: &Mutex<Vec<f64>>, value: f64) {
    samples
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(value);
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Small buffers: OCPP messages are a few hundred bytes, and 10,000 clients with the default
/// 128 KiB read buffer each would cost the machine the server is measured on a gigabyte.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 * 1024))
}

type Socket = WebSocketStream<TcpStream>;

async fn connect(index: usize, plan: &Plan, charge_point_id: &str) -> anyhow::Result<Socket> {
    let source = Ipv4Addr::new(127, 0, 0, 2 + (index % SOURCE_ADDRESSES) as u8);
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let stream = socket
        .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, plan.port)))
        .await?;
    stream.set_nodelay(true)?;
    let mut request =
        format!("ws://127.0.0.1:{}/ocpp/{charge_point_id}", plan.port).into_client_request()?;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{charge_point_id}:{}", plan.password));
    let headers = request.headers_mut();
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Basic {basic}"))?,
    );
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("ocpp1.6"),
    );
    let (socket, _) = client_async_with_config(request, stream, Some(config())).await?;
    Ok(socket)
}

/// The charger's identity; the benchmark creates wallboxes with these.
pub fn charge_point_id(index: usize) -> String {
    format!("swarm-{index:05}")
}

struct Pending {
    id: String,
    sent: Instant,
}

/// Runs charger `index` until `stop` turns true; `permit` bounds the handshakes in flight and is
/// released once connected.
pub async fn run(
    index: usize,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let plan = &shared.plan;
    let counters = &shared.counters;
    let id = charge_point_id(index);
    let mut socket = None;
    for attempt in 1..=CONNECT_ATTEMPTS {
        let started = Instant::now();
        match timeout(CALL_TIMEOUT * 2, connect(index, plan, &id)).await {
            Ok(Ok(s)) => {
                push(&shared.samples.connect, ms(started));
                socket = Some(s);
                break;
            }
            Ok(Err(error)) => eprintln!("{id}: handshake {attempt} failed: {error}"),
            Err(_) => eprintln!("{id}: handshake {attempt} timed out"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(permit);
    let Some(mut socket) = socket else {
        counters.connect_failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    counters.connected.fetch_add(1, Ordering::Relaxed);

    let serial = format!("SN-{index:05}");
    let mut outbox: VecDeque<(&'static str, Value)> = VecDeque::from([
        (
            "BootNotification",
            json!({"chargePointVendor": "Voltplan", "chargePointModel": "Swarm",
                   "chargePointSerialNumber": serial, "firmwareVersion": "1.0"}),
        ),
        (
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Charging",
                   "timestamp": now()}),
        ),
    ]);
    // Booted once the outbox's first two calls are answered.
    let mut boot_calls_left = 2;
    // A Heartbeat at the charger's phase of the interval, its MeterValues half an interval later.
    let half = plan.interval / 2;
    let phase = plan
        .interval
        .mul_f64(index as f64 / plan.chargers.max(1) as f64);
    let mut tick = plan.epoch + phase;
    let mut heartbeat_next = true;
    while tick < Instant::now() {
        tick += half;
        heartbeat_next = !heartbeat_next;
    }
    let mut energy_wh = 10_000.0 + index as f64;
    let mut pending: Option<Pending> = None;
    let mut next_id: u64 = 0;
    let mut stopping = false;

    loop {
        if pending.is_none()
            && let Some((action, payload)) = outbox.pop_front()
        {
            next_id += 1;
            let message_id = next_id.to_string();
            let text = json!([2, message_id, action, payload]).to_string();
            if socket.send(Message::text(text)).await.is_err() {
                counters.disconnected.fetch_add(1, Ordering::Relaxed);
                return;
            }
            counters.calls.fetch_add(1, Ordering::Relaxed);
            pending = Some(Pending {
                id: message_id,
                sent: Instant::now(),
            });
            continue;
        }
        if stopping && pending.is_none() {
            let _ = timeout(Duration::from_secs(5), socket.close(None)).await;
            return;
        }
        let deadline = pending.as_ref().map(|p| p.sent + CALL_TIMEOUT);
        tokio::select! {
            message = socket.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        eprintln!("{id}: a binary frame from the central system");
                        continue;
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        if pending.is_some() {
                            counters.unanswered.fetch_add(1, Ordering::Relaxed);
                        }
                        if !stopping {
                            counters.disconnected.fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                };
                let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                match frame.get(0).and_then(Value::as_u64) {
                    Some(2) => {
                        let answer = answer_call(&frame, counters);
                        if socket.send(Message::text(answer.to_string())).await.is_err() {
                            counters.disconnected.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    Some(kind @ (3 | 4)) => {
                        let answered = frame.get(1).and_then(Value::as_str);
                        let Some(call) = pending.take_if(|p| Some(p.id.as_str()) == answered) else {
                            eprintln!("{id}: an answer to no outstanding call: {text}");
                            continue;
                        };
                        if kind == 3 {
                            counters.results.fetch_add(1, Ordering::Relaxed);
                            if shared.measuring.load(Ordering::Relaxed) {
                                push(&shared.samples.message, ms(call.sent));
                            }
                        } else {
                            counters.call_errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("{id}: CALLERROR {text}");
                        }
                        if boot_calls_left > 0 {
                            boot_calls_left -= 1;
                            if boot_calls_left == 0 {
                                counters.booted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    _ => eprintln!("{id}: not an OCPP-J frame: {text}"),
                }
            }
            () = sleep_until(tick), if !stopping => {
                tick += half;
                if heartbeat_next {
                    outbox.push_back(("Heartbeat", json!({})));
                } else {
                    // A car charging at 7.4 kW: the register grows by what a half interval holds.
                    energy_wh += 7_400.0 * plan.interval.as_secs_f64() / 3600.0;
                    outbox.push_back(("MeterValues", meter_values(energy_wh)));
                }
                heartbeat_next = !heartbeat_next;
            }
            () = sleep_until(deadline.unwrap_or(tick)), if deadline.is_some() => {
                pending = None;
                counters.unanswered.fetch_add(1, Ordering::Relaxed);
                eprintln!("{id}: no answer within {} s", CALL_TIMEOUT.as_secs());
            }
            changed = stop.changed(), if !stopping => {
                // A dropped sender stops the swarm too.
                let _ = changed;
                stopping = true;
            }
        }
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn meter_values(energy_wh: f64) -> Value {
    json!({"connectorId": 1, "meterValue": [{"timestamp": now(), "sampledValue": [
        {"value": format!("{energy_wh:.1}"), "measurand": "Energy.Active.Import.Register",
         "unit": "Wh", "context": "Sample.Periodic"},
        {"value": "7400", "measurand": "Power.Active.Import", "unit": "W",
         "context": "Sample.Periodic"},
    ]}]})
}

/// A smart charger's answer to the central system's CALL.
fn answer_call(frame: &Value, counters: &Counters) -> Value {
    counters.server_calls.fetch_add(1, Ordering::Relaxed);
    let id = frame.get(1).cloned().unwrap_or(Value::Null);
    match frame.get(2).and_then(Value::as_str) {
        Some("GetConfiguration") => {
            let key = |key: &str, readonly: bool, value: &str| json!({"key": key, "readonly": readonly, "value": value});
            json!([3, id, {"configurationKey": [
                key("SupportedFeatureProfiles", true, "Core,SmartCharging"),
                key("ChargingScheduleAllowedChargingRateUnit", true, "Current"),
                key("ChargingScheduleMaxPeriods", true, "24"),
                key("MaxChargingProfilesInstalled", true, "8"),
                key("MeterValueSampleInterval", false, "60"),
                key("MeterValuesSampledData", false, "Energy.Active.Import.Register,Power.Active.Import"),
                key("NumberOfConnectors", true, "1"),
            ]}])
        }
        Some("SetChargingProfile") => {
            counters.profiles.fetch_add(1, Ordering::Relaxed);
            json!([3, id, {"status": "Accepted"}])
        }
        other => json!([
            4,
            id,
            "NotImplemented",
            format!("{other:?} is not simulated"),
            {}
        ]),
    }
}
