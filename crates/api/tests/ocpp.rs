//! The OCPP 1.6J central system against a charge point somebody else wrote: The Mobility House's
//! `ocpp` package (PyPI), driven by `tests/ocpp/charger.py`, over a real WebSocket to a real
//! server on SQLite and PostgreSQL.
//!
//! Switched on by `VOLTPLAN_TEST_OCPP_PYTHON`, a Python with `ocpp` and `websockets` installed
//! (`.ci/run` makes one); without it each test says so and passes.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::wallbox::wallbox_path;
use common::{Tenant, TestServer, backends};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::{Instant, timeout_at};
use uuid::Uuid;
use voltplan_api::{ApiConfig, AppState};
use voltplan_store::ocpp::{CommandStatus, OcppCommand};
use voltplan_store::{ConnectOptions, OrgScope, Store};

const PYTHON_ENV: &str = "VOLTPLAN_TEST_OCPP_PYTHON";

fn python() -> Option<String> {
    let python = std::env::var(PYTHON_ENV).ok().filter(|p| !p.is_empty());
    if python.is_none() {
        eprintln!(
            "skipped: set {PYTHON_ENV} to a Python with the `ocpp` and `websockets` packages (.ci/run does)"
        );
    }
    python
}

/// One Python charge point and the lines it prints.
struct Charger {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Charger {
    async fn spawn(python: &str, server: &TestServer, identity: &str, password: &str) -> Charger {
        Self::spawn_at(python, &server.base, identity, password).await
    }

    /// A charge point connecting to the server at `base` (`http://host:port`).
    async fn spawn_at(python: &str, base: &str, identity: &str, password: &str) -> Charger {
        let url = format!("{}/ocpp", base.replacen("http://", "ws://", 1));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ocpp/charger.py");
        let mut child = Command::new(python)
            .args([script, &url, identity, password])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the Python charge point starts");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Charger {
            child,
            stdin,
            lines,
        }
    }

    /// A charge point that connected and booted.
    async fn booted(python: &str, server: &TestServer, identity: &str, password: &str) -> Charger {
        let mut charger = Self::spawn(python, server, identity, password).await;
        charger
            .expect("connection", |e| e["event"] == "connected")
            .await;
        let boot = charger.call("BootNotification", boot()).await;
        assert_eq!(boot["event"], "result", "{boot}");
        charger
    }

    /// The next event matching `wanted`, within 60 s (generous: a loaded CI machine starts Python
    /// slowly, and a poll ends as soon as the event is there).
    async fn expect(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        self.expect_within(what, wanted, Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no {what} from the charge point within 60 s"))
    }

    /// The next event matching `wanted` within `limit`, or `None`.
    async fn expect_within(
        &mut self,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
        limit: Duration,
    ) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let line = timeout_at(deadline, self.lines.next_line())
                .await
                .ok()?
                .expect("the charge point's output")
                .unwrap_or_else(|| panic!("the charge point ended before {what}"));
            let event: Value = serde_json::from_str(&line).expect("a JSON line");
            if wanted(&event) {
                return Some(event);
            }
        }
    }

    async fn send(&mut self, command: Value) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// A call through the `ocpp` library; its answer (`result` or `callerror` event).
    async fn call(&mut self, action: &str, payload: Value) -> Value {
        self.call_with_id(action, payload, None).await
    }

    async fn call_with_id(&mut self, action: &str, payload: Value, id: Option<&str>) -> Value {
        self.send(json!({"op": "call", "action": action, "payload": payload, "unique_id": id}))
            .await;
        self.expect(action, |e| {
            e["action"] == action && (e["event"] == "result" || e["event"] == "callerror")
        })
        .await
    }

    /// Closes the charge point; the actions of every CALL the central system sent it that were
    /// not consumed by an earlier `expect`.
    async fn close_collecting_calls(mut self) -> Vec<String> {
        self.send(json!({"op": "close"})).await;
        let mut actions = Vec::new();
        loop {
            let event = self.expect("closed", |_| true).await;
            if event["event"] == "closed" {
                let _ = self.child.wait().await;
                return actions;
            }
            if event["event"] == "received" && event["frame"][0] == 2 {
                actions.push(event["frame"][2].as_str().unwrap_or_default().to_owned());
            }
        }
    }

    /// Sends a frame as is; the central system's answer to it.
    async fn raw(&mut self, text: &str, answer_id: &str) -> Value {
        self.send(json!({"op": "raw", "text": text})).await;
        let id = answer_id.to_owned();
        self.expect("an answer", move |e| {
            e["event"] == "received" && e["frame"][1] == id.as_str()
        })
        .await["frame"]
            .clone()
    }

    async fn close(mut self) {
        self.send(json!({"op": "close"})).await;
        self.expect("closed", |e| e["event"] == "closed").await;
        let _ = self.child.wait().await;
    }
}

/// A tenant, a user and a wallbox created through the API: (tenant, user, wallbox, id, password).
async fn wallbox(server: &TestServer) -> (Tenant, Uuid, Uuid, String, String) {
    wallbox_with(server, json!({"price_zone": "DE_LU"})).await
}

/// Like [`wallbox`], created with `body`.
async fn wallbox_with(server: &TestServer, body: Value) -> (Tenant, Uuid, Uuid, String, String) {
    let tenant = server.tenant("Stadtwerke").await;
    let user = server.create_user(&tenant, "driver@example.com").await;
    let (id, created) = server.create_wallbox(&tenant, user, body).await;
    let identity = created["ocpp"]["charge_point_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let password = created["ocpp"]["password"].as_str().unwrap().to_owned();
    (tenant, user, id, identity, password)
}

fn boot() -> Value {
    json!({"chargePointVendor": "Voltplan-Test", "chargePointModel": "Wallbox 11", "chargePointSerialNumber": "SN-1"})
}

/// Polls the wallbox until `check` holds (30 s).
async fn until_wallbox(
    server: &TestServer,
    t: &Tenant,
    user: Uuid,
    wallbox: Uuid,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server
            .get(&t.token, &wallbox_path(t.org_id, user, wallbox))
            .await;
        assert_eq!(status, 200, "{body}");
        if check(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the wallbox never got there: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_charger_boots_with_its_password_and_is_refused_with_another() {
    let Some(python) = python() else { return };
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let (t, user, wallbox, identity, password) = wallbox(&server).await;
        let before = until_wallbox(&server, &t, user, wallbox, |_| true).await;
        assert_eq!(before["connection"], "never_connected");

        let mut wrong =
            Charger::spawn(&python, &server, &identity, "not-the-password-at-all").await;
        let refused = wrong.expect("refusal", |e| e["event"] == "refused").await;
        assert_eq!(refused["status"], 401);
        let mut unknown = Charger::spawn(&python, &server, "no-such-charger", &password).await;
        assert_eq!(
            unknown.expect("refusal", |e| e["event"] == "refused").await["status"],
            401
        );

        let mut charger = Charger::spawn(&python, &server, &identity, &password).await;
        let connected = charger
            .expect("connection", |e| e["event"] == "connected")
            .await;
        assert_eq!(connected["subprotocol"], "ocpp1.6");
        let boot = charger.call("BootNotification", boot()).await;
        assert_eq!(boot["event"], "result", "{boot}");
        assert_eq!(boot["payload"]["status"], "Accepted");
        assert_eq!(boot["payload"]["interval"], 60);
        // After a boot the central system asks what the charger can do.
        let asked = charger
            .expect("GetConfiguration", |e| {
                e["event"] == "received" && e["frame"][2] == "GetConfiguration"
            })
            .await;
        assert_eq!(asked["frame"][0], 2);
        let online = until_wallbox(&server, &t, user, wallbox, |w| {
            w["is_ocpp_connected"] == true
        })
        .await;
        assert_eq!(online["connection"], "online");

        charger.close().await;
        let offline =
            until_wallbox(&server, &t, user, wallbox, |w| w["connection"] == "offline").await;
        assert_eq!(offline["is_ocpp_connected"], false);
        assert_eq!(offline["mode"], "UNAVAILABLE");
        server.stop().await;
    }
}

#[tokio::test]
async fn transactions_and_meter_values_are_stored_once_however_often_they_are_sent() {
    let Some(python) = python() else { return };
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let (t, user, wallbox, identity, password) = wallbox(&server).await;
        let mut charger = Charger::booted(&python, &server, &identity, &password).await;
        let status = charger
            .call(
                "StatusNotification",
                json!({"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}),
            )
            .await;
        assert_eq!(status["event"], "result", "{status}");
        let plugged =
            until_wallbox(&server, &t, user, wallbox, |w| w["mode"] == "PLUGGED_IN").await;
        assert_eq!(plugged["is_plugged_in"], true);

        let start = json!({"connectorId": 1, "idTag": "HOME", "meterStart": 150_200, "timestamp": "2026-11-26T18:00:00Z"});
        let first = charger
            .call_with_id("StartTransaction", start.clone(), Some("start-1"))
            .await;
        assert_eq!(first["event"], "result", "{first}");
        let transaction = first["payload"]["transaction_id"].as_i64().unwrap();
        // The answer was lost: the charger sends the same message again.
        let again = charger
            .call_with_id("StartTransaction", start, Some("start-1"))
            .await;
        assert_eq!(again["payload"]["transaction_id"], transaction);

        let meter = json!({"connectorId": 1, "transactionId": transaction, "meterValue": [{
        "timestamp": "2026-11-26T18:15:00Z",
        "sampledValue": [
            {"value": "152950", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "11.0", "measurand": "Power.Active.Import", "unit": "kW"}
        ]}]});
        for _ in 0..2 {
            let answer = charger.call("MeterValues", meter.clone()).await;
            assert_eq!(answer["event"], "result", "{answer}");
        }
        let from = "2026-11-26T00:00:00Z".parse().unwrap();
        let to = "2026-11-27T00:00:00Z".parse().unwrap();
        let org = OrgScope::new(t.org_id);
        let energy = server
            .store
            .list_meter_samples(org, wallbox, "Energy.Active.Import.Register", from, to)
            .await
            .unwrap();
        assert_eq!(energy.len(), 1, "a resent MeterValues is kept once");
        assert_eq!(energy[0].value, 152_950.0);
        let power = server
            .store
            .list_meter_samples(org, wallbox, "Power.Active.Import", from, to)
            .await
            .unwrap();
        assert_eq!(power[0].value, 11_000.0, "kW read as W");

        let stop = charger
            .call(
                "StopTransaction",
                json!({"transactionId": transaction, "idTag": "HOME", "meterStop": 168_500, "timestamp": "2026-11-26T20:00:00Z", "reason": "EVDisconnected"}),
            )
            .await;
        assert_eq!(
            stop["payload"]["id_tag_info"]["status"], "Accepted",
            "{stop}"
        );
        let transactions = server
            .store
            .list_transactions(org, wallbox, from, to)
            .await
            .unwrap();
        assert_eq!(
            transactions.len(),
            1,
            "one transaction however often it started"
        );
        assert_eq!(transactions[0].meter_start_wh, 150_200);
        assert_eq!(transactions[0].meter_stop_wh, Some(168_500));
        // Another organisation's view of the wallbox has none of it.
        let other = OrgScope::new(Uuid::new_v4());
        assert!(
            server
                .store
                .list_transactions(other, wallbox, from, to)
                .await
                .unwrap()
                .is_empty()
        );
        charger.close().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_the_right_callerror_and_the_connection_lives_on() {
    let Some(python) = python() else { return };
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let (_, _, _, identity, password) = wallbox(&server).await;
        let mut charger = Charger::spawn(&python, &server, &identity, &password).await;
        charger
            .expect("connection", |e| e["event"] == "connected")
            .await;
        let cases = [
            ("this is not json", "-1", "FormationViolation"),
            (r#"[2, "a1", "Teleport", {}]"#, "a1", "NotImplemented"),
            (
                r#"[2, "a2", "SetChargingProfile", {}]"#,
                "a2",
                "NotSupported",
            ),
            (
                r#"[2, "a3", "BootNotification", {"chargePointVendor": "V"}]"#,
                "a3",
                "OccurenceConstraintViolation",
            ),
            (
                r#"[2, "a4", "BootNotification", {"chargePointVendor": 7, "chargePointModel": "M"}]"#,
                "a4",
                "TypeConstraintViolation",
            ),
            (
                r#"[2, "a5", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Dancing"}]"#,
                "a5",
                "PropertyConstraintViolation",
            ),
            (
                r#"[2, "a6", "Heartbeat", {}, "extra"]"#,
                "a6",
                "FormationViolation",
            ),
            (r#"[7, "a7", "Heartbeat", {}]"#, "a7", "ProtocolError"),
            (
                r#"[2, "a8", "Heartbeat", {"colour": "red"}]"#,
                "a8",
                "FormationViolation",
            ),
        ];
        for (text, id, code) in cases {
            let frame = charger.raw(text, id).await;
            assert_eq!(frame[0], 4, "{text} → {frame}");
            assert_eq!(frame[2], code, "{text} → {frame}");
        }
        let heartbeat = charger.call("Heartbeat", json!({})).await;
        assert_eq!(heartbeat["event"], "result", "{heartbeat}");
        charger.close().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn a_queued_call_reaches_the_charger_and_its_answer_is_recorded() {
    let Some(python) = python() else { return };
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let (t, _, wallbox, identity, password) = wallbox(&server).await;
        let mut charger = Charger::booted(&python, &server, &identity, &password).await;
        let command = profile_call(t.org_id, wallbox, server.clock_now());
        assert!(server.store.queue_ocpp_command(&command).await.unwrap());
        assert!(
            !server.store.queue_ocpp_command(&command).await.unwrap(),
            "the same call is queued once"
        );
        let received = charger
            .expect("SetChargingProfile", |e| {
                e["event"] == "received" && e["frame"][2] == "SetChargingProfile"
            })
            .await;
        assert_eq!(
            received["frame"][3]["csChargingProfiles"]["chargingSchedule"]["chargingRateUnit"],
            "A"
        );
        let stored = until_answered(
            server.store.as_ref(),
            t.org_id,
            &command.id,
            CommandStatus::Accepted,
        )
        .await;
        assert!(stored.response.unwrap().contains("Accepted"));

        // A call that breaks its schema is never sent: it fails, saying why, and the next one goes.
        let mut broken = profile_call(t.org_id, wallbox, server.clock_now());
        broken.payload = json!({"connectorId": 1}).to_string();
        assert!(server.store.queue_ocpp_command(&broken).await.unwrap());
        let failed = until_answered(
            server.store.as_ref(),
            t.org_id,
            &broken.id,
            CommandStatus::Failed,
        )
        .await;
        assert!(failed.response.unwrap().contains("csChargingProfiles"));
        let next = profile_call(t.org_id, wallbox, server.clock_now());
        assert!(server.store.queue_ocpp_command(&next).await.unwrap());
        until_answered(
            server.store.as_ref(),
            t.org_id,
            &next.id,
            CommandStatus::Accepted,
        )
        .await;
        let calls = charger.close_collecting_calls().await;
        let profiles_received = calls.iter().filter(|a| *a == "SetChargingProfile").count();
        assert_eq!(
            profiles_received, 1,
            "only the valid call after the broken one arrived"
        );
        server.stop().await;
    }
}

/// Waits (30 s) until the central system has stored what the charger can do (its answer to the
/// GetConfiguration sent after a boot).
async fn until_configured(server: &TestServer, org: OrgScope, user: Uuid, wallbox: Uuid) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = server
            .store
            .get_wallbox(org, user, wallbox, false)
            .await
            .unwrap();
        if stored.charger.smart_charging.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "GetConfiguration never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A SetChargingProfile call as the worker would queue it.
fn profile_call(org_id: Uuid, wallbox: Uuid, now: chrono::DateTime<chrono::Utc>) -> OcppCommand {
    let profile = json!({"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": now,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0}]}}});
    OcppCommand {
        id: format!("test-{}", Uuid::new_v4()),
        org_id,
        wallbox_id: wallbox,
        action: "SetChargingProfile".to_owned(),
        payload: profile.to_string(),
        created_at: now,
        expires_at: now + chrono::Duration::minutes(5),
        status: CommandStatus::Queued,
        sent_by: None,
        sent_at: None,
        answered_at: None,
        response: None,
    }
}

/// Waits (30 s) until the call's answer is recorded as `status`.
async fn until_answered(
    store: &dyn Store,
    org_id: Uuid,
    id: &str,
    status: CommandStatus,
) -> OcppCommand {
    let org = OrgScope::new(org_id);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = store.get_ocpp_command(org, id).await.unwrap().unwrap();
        if stored.status == status {
            return stored;
        }
        assert!(Instant::now() < deadline, "never {status:?}: {stored:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second `serve` on the same database, as another replica behind a load balancer.
struct Replica {
    base: String,
    store: Arc<dyn Store>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn replica_of(server: &TestServer) -> Replica {
    let store = voltplan_store::connect(&ConnectOptions::new(server.database_url()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(store.clone(), server.clock.clone(), ApiConfig::default());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        voltplan_api::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Replica {
        base,
        store,
        shutdown,
        task,
    }
}

#[tokio::test]
async fn with_two_replicas_a_call_reaches_the_charger_through_the_one_that_holds_it() {
    let Some(python) = python() else { return };
    let postgres = backends()
        .into_iter()
        .filter(|b| !matches!(b, common::Backend::Sqlite));
    for backend in postgres {
        let server = TestServer::start(&backend).await;
        let other = replica_of(&server).await;
        let (t, _, wallbox, identity, password) = wallbox(&server).await;

        // The charger holds its WebSocket to the first replica; the call is queued by the other.
        let mut charger = Charger::booted(&python, &server, &identity, &password).await;
        let call = profile_call(t.org_id, wallbox, server.clock_now());
        assert!(other.store.queue_ocpp_command(&call).await.unwrap());
        charger
            .expect("SetChargingProfile", |e| {
                e["event"] == "received" && e["frame"][2] == "SetChargingProfile"
            })
            .await;
        until_answered(
            other.store.as_ref(),
            t.org_id,
            &call.id,
            CommandStatus::Accepted,
        )
        .await;
        charger.close().await;

        // It reconnects to the other replica and carries on there: the next call goes through it.
        let mut charger = Charger::spawn_at(&python, &other.base, &identity, &password).await;
        charger
            .expect("connection", |e| e["event"] == "connected")
            .await;
        let heartbeat = charger.call("Heartbeat", json!({})).await;
        assert_eq!(heartbeat["event"], "result", "{heartbeat}");
        let call = profile_call(t.org_id, wallbox, server.clock_now());
        assert!(server.store.queue_ocpp_command(&call).await.unwrap());
        charger
            .expect("SetChargingProfile", |e| {
                e["event"] == "received" && e["frame"][2] == "SetChargingProfile"
            })
            .await;
        let answered = until_answered(
            server.store.as_ref(),
            t.org_id,
            &call.id,
            CommandStatus::Accepted,
        )
        .await;
        assert!(answered.sent_by.is_some());
        charger.close().await;
        let _ = other.shutdown.send(());
        let _ = other.task.await;
        drop(other.store);
        server.stop().await;
    }
}

/// The next SetChargingProfile the charger receives: its `csChargingProfiles`.
async fn next_profile(charger: &mut Charger) -> Value {
    charger
        .expect("SetChargingProfile", |e| {
            e["event"] == "received" && e["frame"][2] == "SetChargingProfile"
        })
        .await["frame"][3]["csChargingProfiles"]
        .clone()
}

/// Cycles the worker until the charger receives a SetChargingProfile (at most a minute): a cycle
/// that ran before the charger's StartTransaction was stored plans nothing, the next one does.
async fn profile_after_cycles(worker: &voltplan_worker::Worker, charger: &mut Charger) -> Value {
    for _ in 0..12 {
        worker.run_once().await.unwrap();
        if let Some(event) = charger
            .expect_within(
                "SetChargingProfile",
                |e| e["event"] == "received" && e["frame"][2] == "SetChargingProfile",
                Duration::from_secs(5),
            )
            .await
        {
            return event["frame"][3]["csChargingProfiles"].clone();
        }
    }
    panic!("no SetChargingProfile from the charge point within a minute of cycles")
}

/// `(startPeriod, limit)` of a profile's periods.
fn periods(profile: &Value) -> Vec<(i64, f64)> {
    profile["chargingSchedule"]["chargingSchedulePeriod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["startPeriod"].as_i64().unwrap(),
                p["limit"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Energy a schedule in amperes on three phases allows until `end` seconds, kWh.
fn scheduled_kwh(profile: &Value, end: i64) -> f64 {
    let periods = periods(profile);
    periods
        .iter()
        .enumerate()
        .map(|(i, (start, amps))| {
            let until = periods.get(i + 1).map_or(end, |p| p.0);
            amps * 230.0 * 3.0 * (until - start) as f64 / 3600.0 / 1000.0
        })
        .sum()
}

#[tokio::test]
async fn the_worker_steers_a_real_charger_by_its_plan_with_boost_and_records_the_session() {
    let Some(python) = python() else { return };
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        server.cheap_night_hour_prices().await;
        let (tenant, user, wallbox, identity, password) = wallbox_with(
            &server,
            json!({"price_zone": "DE_LU", "is_smart_optimization_active": true,
                       "charge_target_min": 0, "charge_deadline_at": "07:00:00",
                       "session_energy_kwh": 10.0}),
        )
        .await;
        let org = OrgScope::new(tenant.org_id);
        let worker = server.wallbox_worker();

        let mut charger = Charger::booted(&python, &server, &identity, &password).await;
        // The central system learns what the charger can do (GetConfiguration) before steering.
        until_configured(&server, org, user, wallbox).await;
        charger
            .call(
                "StatusNotification",
                json!({"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}),
            )
            .await;
        let started = charger
            .call(
                "StartTransaction",
                json!({"connectorId": 1, "idTag": "HOME", "meterStart": 1000, "timestamp": "2026-11-26T12:00:00Z"}),
            )
            .await;
        let transaction = started["payload"]["transaction_id"].as_i64().unwrap();

        // One cycle: the plan (10 kWh by 07:00 Berlin = 06:00 UTC, cheapest at 02:00 UTC) goes to
        // the charger as a TxProfile in amperes that expires at the deadline.
        worker.run_once().await.unwrap();
        let profile = next_profile(&mut charger).await;
        assert_eq!(profile["chargingProfilePurpose"], "TxProfile");
        assert_eq!(profile["transactionId"], transaction);
        assert_eq!(profile["validTo"], "2026-11-27T06:00:00Z");
        assert_eq!(profile["chargingSchedule"]["chargingRateUnit"], "A");
        let cheap_from = 14 * 3600; // 02:00 UTC, seconds after the 12:00 start
        let planned = periods(&profile);
        assert_eq!(planned[0], (0, 0.0), "nothing at 100 €/MWh: {planned:?}");
        for (start, limit) in &planned {
            if *limit > 0.0 {
                assert!(
                    (cheap_from..cheap_from + 3600).contains(start),
                    "charging outside the cheap hour: {planned:?}"
                );
            }
        }
        let energy = scheduled_kwh(&profile, 18 * 3600);
        assert!(
            (9.5..=10.5).contains(&energy),
            "{energy} kWh scheduled: {planned:?}"
        );

        // Later cycles with nothing new send nothing (the next profile below is the boost's);
        // once the charger's answer is recorded, steering is `ok`.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            server.clock.advance(chrono::Duration::minutes(5));
            worker.run_once().await.unwrap();
            let (_, shown) = server
                .get(&tenant.token, &wallbox_path(tenant.org_id, user, wallbox))
                .await;
            if shown["steering_status"] == "ok" {
                assert_eq!(shown["mode"], "PLUGGED_IN");
                break;
            }
            assert!(Instant::now() < deadline, "steering never ok: {shown}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Boost: within one cycle the charger is told to charge at full power now.
        let (status, _) = server
            .post_empty(
                &tenant.token,
                &format!("{}/boost", wallbox_path(tenant.org_id, user, wallbox)),
            )
            .await;
        assert_eq!(status, 204);
        worker.run_once().await.unwrap();
        let boosted = next_profile(&mut charger).await;
        assert_eq!(periods(&boosted)[0], (0, 15.9), "{boosted}");

        // The car draws 5 kWh by 12:30 and 10 kWh by 13:00, when it leaves: the session's energy
        // and cost come from the register, priced in the slots it was drawn in (100 €/MWh).
        charger
            .call(
                "MeterValues",
                json!({"connectorId": 1, "transactionId": transaction, "meterValue": [{
                    "timestamp": "2026-11-26T12:30:00Z",
                    "sampledValue": [{"value": "6000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]}),
            )
            .await;
        charger
            .call(
                "StopTransaction",
                json!({"transactionId": transaction, "meterStop": 11000, "timestamp": "2026-11-26T13:00:00Z", "reason": "EVDisconnected"}),
            )
            .await;
        charger
            .call(
                "StatusNotification",
                json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
            )
            .await;
        server.clock.advance(chrono::Duration::minutes(30));
        worker.run_once().await.unwrap();
        let (status, sessions) = server
            .get(
                &tenant.token,
                &format!(
                    "{}/sessions?from=2026-11-26&to=2026-11-27",
                    wallbox_path(tenant.org_id, user, wallbox)
                ),
            )
            .await;
        assert_eq!(status, 200, "{sessions}");
        assert_eq!(sessions["total"], 1, "{sessions}");
        let session = &sessions["items"][0];
        assert_eq!(session["unplug_time"], "2026-11-26T13:00:00Z", "{session}");
        assert!(
            (session["energy_charged_kwh"].as_f64().unwrap() - 10.0).abs() < 1e-9,
            "{session}"
        );
        assert!(
            (session["actual_cost_eur"].as_f64().unwrap() - 1.0).abs() < 1e-9,
            "{session}"
        );
        charger.close().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn pause_holds_the_charger_at_zero_and_an_offline_charger_is_shown_and_comes_back() {
    let Some(python) = python() else { return };
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        server.cheap_night_hour_prices().await;
        // Everything below charge_target_min charges at once: full power now.
        let (tenant, user, wallbox, identity, password) = wallbox_with(
            &server,
            json!({"price_zone": "DE_LU", "is_smart_optimization_active": true,
                   "charge_target_min": 100, "session_energy_kwh": 10.0}),
        )
        .await;
        let one = wallbox_path(tenant.org_id, user, wallbox);
        let worker = server.wallbox_worker();
        let mut charger = Charger::booted(&python, &server, &identity, &password).await;
        charger
            .call(
                "StartTransaction",
                json!({"connectorId": 1, "idTag": "HOME", "meterStart": 0, "timestamp": "2026-11-26T12:00:00Z"}),
            )
            .await;
        let at_once = profile_after_cycles(&worker, &mut charger).await;
        assert_eq!(periods(&at_once)[0].1, 15.9, "{at_once}");

        // Paused for two hours: within one cycle the charger is held at zero until then.
        let (status, body) = server
            .put(
                &tenant.token,
                &one,
                json!({"pause_power_until": "2026-11-26T14:00:00Z"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        worker.run_once().await.unwrap();
        let paused = periods(&next_profile(&mut charger).await);
        assert_eq!(paused[0], (0, 0.0), "{paused:?}");
        assert_eq!(
            paused[1],
            (7200, 15.9),
            "charging resumes when the pause ends: {paused:?}"
        );

        // Offline: the wallbox says so at once, and an error after a quarter of an hour.
        charger.close().await;
        until_wallbox(&server, &tenant, user, wallbox, |w| {
            w["connection"] == "offline"
        })
        .await;
        worker.run_once().await.unwrap();
        let (_, shown) = server.get(&tenant.token, &one).await;
        assert_eq!(shown["connection_status"], "warning", "{shown}");
        server.clock.advance(chrono::Duration::minutes(20));
        worker.run_once().await.unwrap();
        let (_, shown) = server.get(&tenant.token, &one).await;
        assert_eq!(shown["connection_status"], "error", "{shown}");
        assert_eq!(shown["mode"], "UNAVAILABLE");

        // Back: online again, and the next cycle says so.
        let mut charger = Charger::spawn(&python, &server, &identity, &password).await;
        charger
            .expect("connection", |e| e["event"] == "connected")
            .await;
        charger.call("Heartbeat", json!({})).await;
        until_wallbox(&server, &tenant, user, wallbox, |w| {
            w["connection"] == "online"
        })
        .await;
        worker.run_once().await.unwrap();
        let (_, shown) = server.get(&tenant.token, &one).await;
        assert_eq!(shown["connection_status"], "ok", "{shown}");
        charger.close().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn a_charger_without_smart_charging_is_left_to_charge_and_says_so() {
    let Some(python) = python() else { return };
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        server.cheap_night_hour_prices().await;
        let (tenant, user, wallbox, identity, password) = wallbox_with(
            &server,
            json!({"price_zone": "DE_LU", "is_smart_optimization_active": true,
                   "charge_target_min": 0, "session_energy_kwh": 10.0}),
        )
        .await;
        let org = OrgScope::new(tenant.org_id);
        let mut charger = Charger::spawn(&python, &server, &identity, &password).await;
        // Core only: this charger takes no charging profiles.
        charger
            .send(json!({"op": "set", "key": "SupportedFeatureProfiles", "value": "Core"}))
            .await;
        charger
            .expect("connection", |e| e["event"] == "connected")
            .await;
        charger.call("BootNotification", boot()).await;
        until_configured(&server, org, user, wallbox).await;
        charger
            .call(
                "StartTransaction",
                json!({"connectorId": 1, "idTag": "HOME", "meterStart": 0, "timestamp": "2026-11-26T12:00:00Z"}),
            )
            .await;
        charger
            .call(
                "StatusNotification",
                json!({"connectorId": 1, "errorCode": "NoError", "status": "Charging"}),
            )
            .await;
        server.wallbox_worker().run_once().await.unwrap();
        let shown = until_wallbox(&server, &tenant, user, wallbox, |w| {
            w["steering_status"] == "warning"
        })
        .await;
        assert_eq!(shown["mode"], "CHARGING", "{shown}");
        // Nothing was asked of it but its configuration: no profile, no stop.
        let calls = charger.close_collecting_calls().await;
        assert!(calls.iter().all(|a| a == "GetConfiguration"), "{calls:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_call_queued_while_the_charger_was_offline_expires_unsent() {
    let Some(python) = python() else { return };
    for backend in backends() {
        let server = TestServer::start(&backend).await;
        let (t, _, wallbox, identity, password) = wallbox(&server).await;
        // Queued for a charger that is not connected; it lives 5 minutes.
        let call = profile_call(t.org_id, wallbox, server.clock_now());
        assert!(server.store.queue_ocpp_command(&call).await.unwrap());
        server.clock.advance(chrono::Duration::minutes(6));
        // The charger comes back after the call's expiry: it is marked expired, never sent.
        let charger = Charger::booted(&python, &server, &identity, &password).await;
        let expired = until_answered(
            server.store.as_ref(),
            t.org_id,
            &call.id,
            CommandStatus::Expired,
        )
        .await;
        assert_eq!(expired.sent_at, None);
        let calls = charger.close_collecting_calls().await;
        assert!(
            !calls.iter().any(|a| a == "SetChargingProfile"),
            "{calls:?}"
        );
        server.stop().await;
    }
}
