//! Outgoing webhooks on SQLite and PostgreSQL: subscriptions over HTTP (validation, tenancy,
//! secrets shown once, rotation), and events the real worker's cycles write to the outbox,
//! delivered by the real deliverer to a receiving server in the test — retried, deduplicable,
//! ordered per device, signed per Standard Webhooks (checked with the `standardwebhooks` package
//! from PyPI when `VOLTPLAN_TEST_PYTHON` names an interpreter that has it; CI always does).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Duration, Utc};
use common::*;
use serde_json::{Value, json};
use uuid::Uuid;
use voltplan_api::ApiConfig;
use voltplan_core::SystemClock;
use voltplan_store::sealed::KeyRing;
use voltplan_worker::webhooks::{Deliverer, DeliveryConfig};

fn hooks_path(org: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/webhooks")
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Captured {
    headers: BTreeMap<String, String>,
    body: String,
    answered: u16,
}

impl Captured {
    fn event(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    fn id(&self) -> &str {
        &self.headers["webhook-id"]
    }
}

/// A partner's receiver: answers 500 to the first `failures` requests, then 200.
struct Receiver {
    url: String,
    captured: Arc<Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(failures: usize) -> Receiver {
        let captured: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let seen = Arc::new(AtomicUsize::new(0));
        let log = captured.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (log, seen) = (log.clone(), seen.clone());
                async move {
                    let status = if seen.fetch_add(1, Ordering::SeqCst) < failures {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    log.lock().unwrap().push(Captured {
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                        answered: status.as_u16(),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url,
            captured,
            task,
        }
    }

    fn requests(&self) -> Vec<Captured> {
        self.captured.lock().unwrap().clone()
    }

    /// The events acknowledged (200), each once: what a receiver deduplicating by
    /// `webhook-id` keeps, in arrival order.
    fn delivered(&self) -> Vec<Captured> {
        let mut seen = std::collections::HashSet::new();
        self.requests()
            .into_iter()
            .filter(|c| c.answered == 200 && seen.insert(c.id().to_owned()))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(keys: &Arc<KeyRing>) -> ApiConfig {
    ApiConfig {
        secret_keys: keys.clone(),
        allow_http_loopback_webhooks: true,
        // The tests move the clock a day and more: the token must outlast it.
        token_lifetime: Duration::days(30),
        ..ApiConfig::default()
    }
}

fn deliverer(s: &TestServer, keys: &Arc<KeyRing>, name: &str, loopback: bool) -> Deliverer {
    let mut config = DeliveryConfig::new(name);
    config.allow_http_loopback = loopback;
    config.timeout = std::time::Duration::from_secs(5);
    Deliverer::new(s.store.clone(), s.clock.clone(), keys.clone(), config)
        .unwrap()
        // Receivers check the signed timestamp against their own (real) clock.
        .with_wire_clock(Arc::new(SystemClock))
}

async fn subscribe(s: &TestServer, t: &Tenant, body: Value) -> Value {
    let (status, created) = s.post(&t.token, &hooks_path(t.org_id), body).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Runs delivery rounds, moving the clock to the next due retry between them, until `done`
/// holds; at most `rounds` rounds.
async fn deliver_until(
    s: &TestServer,
    t: &Tenant,
    hook: Uuid,
    deliverer: &Deliverer,
    rounds: usize,
    done: impl Fn() -> bool,
) {
    for _ in 0..rounds {
        deliverer.run_once().await.unwrap();
        if done() {
            return;
        }
        let (_, pending) = s
            .get(
                &t.token,
                &format!("{}/{hook}/deliveries?status=pending", hooks_path(t.org_id)),
            )
            .await;
        let next: Option<DateTime<Utc>> = pending
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["next_attempt_at"].as_str())
            .map(|at| at.parse().unwrap())
            .filter(|next| *next > s.clock_now())
            .min();
        if let Some(next) = next {
            s.clock.set(next);
        }
    }
    let (_, log) = s
        .get(
            &t.token,
            &format!("{}/{hook}/deliveries", hooks_path(t.org_id)),
        )
        .await;
    let summary: Vec<String> = log
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "{} {} attempts {} next {} error {}",
                d["event_type"], d["status"], d["attempts"], d["next_attempt_at"], d["last_error"]
            )
        })
        .collect();
    panic!("not done after {rounds} delivery rounds: {summary:#?}");
}

/// Verifies captured requests with the Standard Webhooks reference library (PyPI
/// `standardwebhooks`), when `VOLTPLAN_TEST_PYTHON` names an interpreter that has it.
fn verify_with_reference_library(secrets: &[&str], requests: &[Captured]) {
    let Ok(python) = std::env::var("VOLTPLAN_TEST_PYTHON") else {
        eprintln!(
            "skipping the standardwebhooks check: set VOLTPLAN_TEST_PYTHON to a Python with the \
             `standardwebhooks` package (.ci/run does)"
        );
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../webhooks/tests/verify_standard_webhooks.py"
    );
    let mut input = String::new();
    for request in requests {
        let headers: HashMap<&str, &str> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .into_iter()
            .map(|h| (h, request.headers[h].as_str()))
            .collect();
        for secret in secrets {
            input.push_str(
                &json!({"secrets": [secret], "headers": headers, "body": request.body}).to_string(),
            );
            input.push('\n');
        }
    }
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("running the reference verifier");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the verifier failed");
    let verdicts = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = verdicts.lines().collect();
    assert_eq!(lines.len(), requests.len() * secrets.len(), "{verdicts}");
    assert!(lines.iter().all(|line| *line == "ok"), "{verdicts}");
}

#[tokio::test]
async fn partners_manage_subscriptions() {
    for backend in backends() {
        let keys = Arc::new(KeyRing::ephemeral());
        let s = TestServer::start_with(&backend, config(&keys)).await;
        let t = s.tenant("Utility A").await;
        let path = hooks_path(t.org_id);

        // Every invalid field is named, and nothing is written.
        let (status, error) = s
            .post(
                &t.token,
                &path,
                json!({"description": "x", "event_types": ["device.nope"], "enabled": "yes",
                       "color": "red"}),
            )
            .await;
        assert_eq!(status, 422, "{error}");
        let mut fields = invalid_fields(&error);
        fields.sort();
        assert_eq!(
            fields,
            ["color", "enabled", "event_types", "url"],
            "{error}"
        );
        for url in [
            "http://hooks.example.com/in",
            "https://10.1.2.3/in",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00::1]/in",
            "https://user:password@hooks.example.com/in",
            "ftp://hooks.example.com/in",
            "not a url",
        ] {
            let (status, error) = s.post(&t.token, &path, json!({"url": url})).await;
            assert_eq!(status, 422, "{url}: {error}");
            assert_eq!(invalid_fields(&error), ["url"], "{url}");
        }
        let (status, error) = s
            .post(
                &t.token,
                &path,
                json!({"url": "https://hooks.example.com/in", "event_types": []}),
            )
            .await;
        assert_eq!(status, 422, "{error}");
        let (_, listed) = s.get(&t.token, &path).await;
        assert_eq!(listed, json!([]));

        // Created: the secret is shown this once.
        let created = subscribe(
            &s,
            &t,
            json!({"url": "https://hooks.example.com/in", "description": "CRM"}),
        )
        .await;
        let hook = id_of(&created);
        let secret = created["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_"), "{created}");
        assert_eq!(created["event_types"], json!(["*"]));
        assert_eq!(created["enabled"], true);
        let one = format!("{path}/{hook}");
        let (status, read) = s.get(&t.token, &one).await;
        assert_eq!(status, 200);
        assert!(read.get("secret").is_none(), "{read}");
        assert!(!read.to_string().contains(secret));

        // A partial update.
        let (status, updated) = s
            .put(
                &t.token,
                &one,
                json!({"event_types": ["device.plugged_in", "device.plugged_in",
                                       "device.session_completed"], "enabled": false}),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(
            updated["event_types"],
            json!(["device.plugged_in", "device.session_completed"])
        );
        assert_eq!(updated["enabled"], false);
        assert_eq!(updated["description"], "CRM");
        let (status, _) = s.post_empty(&t.token, &format!("{one}/test")).await;
        assert_eq!(status, 409, "a disabled endpoint gets no test event");

        // Rotation: a new secret, the old one signs until the overlap ends.
        let (status, rotated) = s
            .post(
                &t.token,
                &format!("{one}/rotate-secret"),
                json!({"overlap_seconds": 3600}),
            )
            .await;
        assert_eq!(status, 200, "{rotated}");
        assert_ne!(rotated["secret"], created["secret"]);
        let (_, read) = s.get(&t.token, &one).await;
        assert_eq!(
            read["previous_secret_expires_at"],
            rotated["previous_secret_expires_at"]
        );
        let (status, _) = s
            .post(
                &t.token,
                &format!("{one}/rotate-secret"),
                json!({"overlap_seconds": -1}),
            )
            .await;
        assert_eq!(status, 422);

        // Another organisation sees none of it.
        let other = s.tenant("Utility B").await;
        let foreign = format!("{}/{hook}", hooks_path(other.org_id));
        assert_eq!(s.get(&other.token, &foreign).await.0, 404);
        assert_eq!(s.get(&other.token, &one).await.0, 404);
        assert_eq!(
            s.put(&other.token, &foreign, json!({"description": "mine"}))
                .await
                .0,
            404
        );
        assert_eq!(s.delete(&other.token, &foreign).await.0, 404);
        assert_eq!(
            s.get(&other.token, &format!("{foreign}/deliveries"))
                .await
                .0,
            404
        );
        let (_, theirs) = s.get(&other.token, &hooks_path(other.org_id)).await;
        assert_eq!(theirs, json!([]));

        // Deleted: gone.
        assert_eq!(s.delete(&t.token, &one).await.0, 204);
        assert_eq!(s.get(&t.token, &one).await.0, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn events_are_delivered_once_each_in_order_signed_and_retried() {
    for backend in backends() {
        let keys = Arc::new(KeyRing::ephemeral());
        let (s, sandbox) = TestServer::start_with_sandbox_and(&backend, config(&keys)).await;
        let worker = s.sandbox_worker(&sandbox, "webhooks-test");
        let deliverer = deliverer(&s, &keys, "deliverer-a", true);
        let receiver = Receiver::start(5).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let created = subscribe(&s, &t, json!({"url": receiver.url})).await;
        let hook = id_of(&created);
        let secret = created["secret"].as_str().unwrap().to_owned();

        // A car's life: connected, plugged in, unplugged, its link revoked and restored.
        let ev = id_of(&s.create_sandbox_ev(&t, user, "Tesla").await);
        let sandbox_ev = sandbox_ev_path(t.org_id, ev);
        worker.run_once().await.unwrap();
        for action in [
            "plug-in",
            "unplug",
            "revoke-authorization",
            "restore-authorization",
        ] {
            let (status, body) = s
                .post_empty(&t.token, &format!("{sandbox_ev}/{action}"))
                .await;
            assert_eq!(status, 200, "{action}: {body}");
            // Long enough for the car to be due again whatever it is doing.
            s.clock.advance(Duration::hours(1));
            worker.run_once().await.unwrap();
        }

        let expected_once = [
            "device.plugged_in",
            "device.unplugged",
            "device.session_completed",
            "device.action_needed",
            "device.action_resolved",
        ];
        deliver_until(&s, &t, hook, &deliverer, 40, || {
            let delivered = receiver.delivered();
            expected_once
                .iter()
                .all(|t| delivered.iter().any(|c| c.event()["type"] == *t))
        })
        .await;
        let (_, pending) = s
            .get(
                &t.token,
                &format!("{}/{hook}/deliveries?status=pending", hooks_path(t.org_id)),
            )
            .await;
        assert_eq!(pending, json!([]), "everything was delivered");

        let requests = receiver.requests();
        let delivered = receiver.delivered();
        assert!(requests.len() >= delivered.len() + 5, "five failures first");
        // Each change once (after deduplication by webhook-id).
        for event_type in expected_once {
            let count = delivered
                .iter()
                .filter(|c| c.event()["type"] == event_type)
                .count();
            assert_eq!(count, 1, "{event_type}");
        }
        // The link's loss and return are connection changes too, and plugging in made a plan.
        let count = |event_type: &str| {
            delivered
                .iter()
                .filter(|c| c.event()["type"] == event_type)
                .count()
        };
        assert!(count("device.connection_changed") >= 2, "{delivered:?}");
        assert!(count("device.plan_changed") >= 1, "{delivered:?}");
        let plan = delivered
            .iter()
            .find(|c| c.event()["type"] == "device.plan_changed")
            .unwrap()
            .event();
        assert!(plan["data"]["plan"]["explanation"].is_string(), "{plan}");
        // In the order they happened: the device's events in outbox order.
        let order: Vec<String> = delivered
            .iter()
            .map(|c| c.event()["type"].as_str().unwrap().to_owned())
            .collect();
        let position = |t: &str| order.iter().position(|o| o == t).unwrap();
        assert!(position("device.plugged_in") < position("device.unplugged"));
        assert!(position("device.unplugged") < position("device.action_needed"));
        assert!(position("device.action_needed") < position("device.action_resolved"));
        // The body names itself: id = webhook-id, and the device.
        let plugged = &delivered[position("device.plugged_in")];
        let event = plugged.event();
        assert_eq!(event["id"], plugged.id());
        assert_eq!(event["data"]["device_id"], ev.to_string());
        assert_eq!(event["data"]["device_type"], "electric_vehicle");
        assert_eq!(plugged.headers["content-type"], "application/json");
        // A retried delivery keeps its id; its log shows every attempt.
        let first = &requests[0];
        let (status, log) = s
            .get(
                &t.token,
                &format!("{}/{hook}/deliveries/{}", hooks_path(t.org_id), first.id()),
            )
            .await;
        assert_eq!(status, 200, "{log}");
        assert_eq!(log["status"], "delivered");
        assert_eq!(log["attempts"], 6, "{log}");
        let attempts = log["attempt_log"].as_array().unwrap();
        assert_eq!(attempts.len(), 6);
        assert_eq!(attempts[0]["status_code"], 500);
        assert_eq!(attempts[5]["status_code"], 200);
        assert_eq!(
            requests.iter().filter(|c| c.id() == first.id()).count(),
            6,
            "the same webhook-id on every attempt"
        );

        // Signed per Standard Webhooks, checked by somebody else's code.
        for request in &delivered {
            let signature = &request.headers["webhook-signature"];
            assert!(signature.starts_with("v1,"), "{signature}");
        }
        verify_with_reference_library(&[&secret], &delivered);

        // A replay sends the same event again, with the same id.
        let before = receiver.requests().len();
        let (status, replay) = s
            .post_empty(
                &t.token,
                &format!(
                    "{}/{hook}/deliveries/{}/retry",
                    hooks_path(t.org_id),
                    first.id()
                ),
            )
            .await;
        assert_eq!(status, 202, "{replay}");
        assert_eq!(replay["status"], "pending");
        deliver_until(&s, &t, hook, &deliverer, 3, || {
            receiver.requests().len() > before
        })
        .await;
        assert_eq!(receiver.requests().last().unwrap().id(), first.id());
        s.stop().await;
    }
}

#[tokio::test]
async fn a_dead_deliverer_loses_nothing_and_two_never_send_at_once() {
    for backend in backends() {
        let keys = Arc::new(KeyRing::ephemeral());
        let s = TestServer::start_with(&backend, config(&keys)).await;
        let receiver = Receiver::start(0).await;
        let t = s.tenant("Utility A").await;
        let hook = id_of(&subscribe(&s, &t, json!({"url": receiver.url})).await);
        let (status, test) = s
            .post_empty(&t.token, &format!("{}/{hook}/test", hooks_path(t.org_id)))
            .await;
        assert_eq!(status, 202, "{test}");

        // A deliverer leases the delivery and dies before sending or recording anything.
        let taken = s
            .store
            .claim_webhook_deliveries("dead-deliverer", s.clock_now(), Duration::minutes(2), 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        // While the lease lasts nobody else sends it.
        let alive = deliverer(&s, &keys, "deliverer-b", true);
        assert_eq!(alive.run_once().await.unwrap().claimed, 0);
        assert!(receiver.requests().is_empty());
        // Once it lapses, the delivery is sent, once.
        s.clock.advance(Duration::minutes(3));
        let stats = alive.run_once().await.unwrap();
        assert_eq!((stats.claimed, stats.delivered), (1, 1));
        let requests = receiver.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].id(), test["delivery_id"].as_str().unwrap());
        assert_eq!(requests[0].event()["type"], "webhook.test");
        // The dead deliverer's late write is refused: its lease is gone.
        assert_eq!(alive.run_once().await.unwrap().claimed, 0);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_rotated_secret_verifies_with_both_keys_during_the_overlap() {
    for backend in backends() {
        let keys = Arc::new(KeyRing::ephemeral());
        let s = TestServer::start_with(&backend, config(&keys)).await;
        let receiver = Receiver::start(0).await;
        let t = s.tenant("Utility A").await;
        let created = subscribe(&s, &t, json!({"url": receiver.url})).await;
        let hook = id_of(&created);
        let old = created["secret"].as_str().unwrap().to_owned();
        let one = format!("{}/{hook}", hooks_path(t.org_id));
        let (_, rotated) = s
            .post(
                &t.token,
                &format!("{one}/rotate-secret"),
                json!({"overlap_seconds": 3600}),
            )
            .await;
        let new = rotated["secret"].as_str().unwrap().to_owned();
        let deliverer = deliverer(&s, &keys, "deliverer", true);

        assert_eq!(s.post_empty(&t.token, &format!("{one}/test")).await.0, 202);
        deliverer.run_once().await.unwrap();
        let during = receiver.requests();
        assert_eq!(during.len(), 1);
        let signatures = &during[0].headers["webhook-signature"];
        assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
        verify_with_reference_library(&[&old, &new], &during);

        // After the overlap only the new secret signs.
        s.clock.advance(Duration::minutes(61));
        assert_eq!(s.post_empty(&t.token, &format!("{one}/test")).await.0, 202);
        deliverer.run_once().await.unwrap();
        let after = receiver.requests();
        assert_eq!(after.len(), 2);
        let signatures = &after[1].headers["webhook-signature"];
        assert_eq!(signatures.split(' ').count(), 1, "{signatures}");
        verify_with_reference_library(&[&new], &after[1..]);
        s.stop().await;
    }
}

#[tokio::test]
async fn private_addresses_are_refused_after_resolution_and_failing_endpoints_are_disabled() {
    for backend in backends() {
        let keys = Arc::new(KeyRing::ephemeral());
        let s = TestServer::start_with(&backend, config(&keys)).await;
        let t = s.tenant("Utility A").await;
        let receiver = Receiver::start(0).await;
        let watcher = subscribe(
            &s,
            &t,
            json!({"url": receiver.url, "event_types": ["webhook_endpoint.disabled"]}),
        )
        .await;
        // A name (not an address) is accepted when subscribing; it resolves to loopback, which a
        // deliverer without the loopback exception refuses before connecting.
        let port = receiver
            .url
            .split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let sneaky = subscribe(
            &s,
            &t,
            json!({"url": format!("https://localhost:{port}/hook"), "event_types": ["webhook.test"]}),
        )
        .await;
        let sneaky_id = id_of(&sneaky);
        let strict = deliverer(&s, &keys, "strict", false);
        let one = format!("{}/{sneaky_id}", hooks_path(t.org_id));
        assert_eq!(s.post_empty(&t.token, &format!("{one}/test")).await.0, 202);
        strict.run_once().await.unwrap();
        assert!(receiver.requests().is_empty(), "no connection was made");
        let (_, log) = s.get(&t.token, &format!("{one}/deliveries")).await;
        assert_eq!(log[0]["status"], "pending", "{log}");
        assert_eq!(log[0]["attempts"], 1);
        assert!(log[0]["last_status_code"].is_null());
        assert!(!log[0]["last_error"].as_str().unwrap().is_empty(), "{log}");

        // A day of nothing but failures disables the endpoint, and says so to the others.
        let mut disabled = None;
        for _ in 0..30 {
            strict.run_once().await.unwrap();
            let (_, read) = s.get(&t.token, &one).await;
            if read["enabled"] == false {
                disabled = Some(read);
                break;
            }
            let (_, pending) = s
                .get(&t.token, &format!("{one}/deliveries?status=pending"))
                .await;
            let next: DateTime<Utc> = pending[0]["next_attempt_at"]
                .as_str()
                .unwrap_or_else(|| panic!("still retrying: {pending:#}"))
                .parse()
                .unwrap();
            s.clock.set(next.max(s.clock_now()));
        }
        let read = disabled.expect("disabled after a day of failures");
        assert!(
            read["disabled_reason"].as_str().unwrap().contains("failed"),
            "{read}"
        );
        let since: DateTime<Utc> = read["failing_since"].as_str().unwrap().parse().unwrap();
        assert!(s.clock_now() - since >= Duration::hours(24), "{read}");
        assert!(receiver.requests().is_empty());
        // That last attempt, more than a day after the first, was also the delivery's last.
        let (_, log) = s.get(&t.token, &format!("{one}/deliveries")).await;
        assert_eq!(log[0]["status"], "failed", "{log}");
        assert_eq!(log[0]["attempts"], 8, "{log}");

        let loose = deliverer(&s, &keys, "loose", true);
        loose.run_once().await.unwrap();
        let told = receiver.delivered();
        assert_eq!(told.len(), 1, "{told:?}");
        let event = told[0].event();
        assert_eq!(event["type"], "webhook_endpoint.disabled");
        assert_eq!(event["data"]["webhook_id"], sneaky_id.to_string());
        assert_eq!(told[0].headers["webhook-id"], event["id"].as_str().unwrap());
        let _ = watcher;
        s.stop().await;
    }
}
