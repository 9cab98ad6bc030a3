//! The OCPP 1.6J central system: chargers connect to `GET /ocpp/{charge_point_id}` with a
//! WebSocket (subprotocol `ocpp1.6`) and HTTP Basic credentials (OCPP Security Profile 1; over
//! TLS, built in front of Voltplan by a proxy or not, Profile 2: see `docs/ocpp.md`).
//!
//! - [`handshake`]: credentials and subprotocol are checked before the upgrade; failures are
//!   counted per address and per charge-point id and throttled like token requests.
//! - [`connection`]: one task per WebSocket: frames validated against the OCA schemas, a CALLERROR
//!   with the right code for anything wrong, one outstanding CALL per direction.
//! - [`inbound`]: what each charger message does (stored before it is answered).
//! - [`session`]: what a connection knows while it is open, and its fenced saves.
//! - [`dispatch`]: calls to chargers are rows of `ocpp_commands`, queued by any process (the
//!   worker); each replica sends those of the chargers whose WebSocket it holds.

mod connection;
mod dispatch;
pub(crate) mod handshake;
mod inbound;
mod session;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use uuid::Uuid;
use voltplan_store::ocpp::OcppCommand;

/// Timers of the central system.
#[derive(Debug, Clone)]
pub struct OcppConfig {
    /// The heartbeat interval handed to chargers in the BootNotification answer.
    pub heartbeat_interval: Duration,
    /// How long an answer to a CALL is waited for (each direction has one outstanding CALL).
    pub call_timeout: Duration,
    /// A charger silent for this long is disconnected (and shown offline): three heartbeats.
    pub idle_timeout: Duration,
    /// How often the queue of calls to chargers is read (besides being woken by a local enqueue).
    pub poll_interval: Duration,
    /// Failed handshakes allowed per address and per charge-point id within the API's
    /// `failure_window`, then 429.
    pub max_handshake_failures: u32,
}

impl Default for OcppConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(60),
            call_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(180),
            poll_interval: Duration::from_millis(500),
            max_handshake_failures: 10,
        }
    }
}

/// A call handed to the connection that holds the charger's WebSocket.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A queued row of `ocpp_commands`, already taken by this replica.
    Queued(OcppCommand),
}

/// This replica's open charger connections.
pub struct Hub {
    /// Names this process in `ocpp_commands.sent_by` and the charger document.
    pub(crate) replica: String,
    connections: Mutex<HashMap<Uuid, (u64, mpsc::Sender<Outbound>)>>,
    serial: AtomicU64,
    dispatcher_started: AtomicBool,
    /// Wakes the dispatcher when this process queued a call.
    pub(crate) wake: Notify,
}

/// Calls waiting for one connection; more wait in the table.
const CONNECTION_QUEUE: usize = 16;

impl Hub {
    pub fn new() -> Self {
        Self {
            replica: format!("{}-{}", std::process::id(), Uuid::new_v4().simple()),
            connections: Mutex::new(HashMap::new()),
            serial: AtomicU64::new(0),
            dispatcher_started: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Registers a connection for `wallbox_id`, replacing an older one of the same charger.
    fn register(&self, wallbox_id: Uuid) -> (u64, mpsc::Receiver<Outbound>) {
        let (sender, receiver) = mpsc::channel(CONNECTION_QUEUE);
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(wallbox_id, (serial, sender));
        (serial, receiver)
    }

    /// Removes the connection, unless a newer one of the same charger replaced it.
    fn deregister(&self, wallbox_id: Uuid, serial: u64) {
        let mut connections = self.lock();
        if connections
            .get(&wallbox_id)
            .is_some_and(|(s, _)| *s == serial)
        {
            connections.remove(&wallbox_id);
        }
    }

    fn sender(&self, wallbox_id: &Uuid) -> Option<mpsc::Sender<Outbound>> {
        self.lock().get(wallbox_id).map(|(_, s)| s.clone())
    }

    /// How many chargers hold a WebSocket to this replica.
    pub fn connected(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (u64, mpsc::Sender<Outbound>)>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}
