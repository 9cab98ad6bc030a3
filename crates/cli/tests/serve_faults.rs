//! `voltplan serve` as a process: killed with SIGKILL in the middle of a burst of writes it keeps
//! every write it acknowledged, and a database on a wrong port stops it at once with the reason.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use voltplan_test_support::{TestDatabase, backends};

/// The longest any step may take on a loaded CI machine; a step still waiting then has failed.
const DEADLINE: Duration = Duration::from_secs(60);

fn voltplan() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_voltplan"));
    command
        .env_remove("DATABASE_URL")
        .env("VOLTPLAN_LOG", "warn")
        .stdin(Stdio::null());
    command
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Serve {
    child: Child,
    base: String,
    /// Lines of stdout, read on a thread of their own.
    stdout: mpsc::Receiver<String>,
}

impl Serve {
    fn start(database_url: &str) -> Serve {
        let port = free_port();
        let mut child = voltplan()
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
        }
    }

    /// The value printed after `label` on first start (`Client id       : …`).
    fn printed(&self, label: &str) -> String {
        let give_up = Instant::now() + DEADLINE;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            let line = self
                .stdout
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("serve never printed {label:?}"));
            if let Some(rest) = line.strip_prefix(label) {
                let value = rest.trim_start_matches([' ', ':']);
                return value.split_whitespace().next().unwrap_or("").to_owned();
            }
        }
    }

    async fn wait_healthy(&mut self, http: &reqwest::Client) {
        let give_up = Instant::now() + DEADLINE;
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("serve exited with {status} before it was healthy");
            }
            assert!(
                Instant::now() < give_up,
                "serve not healthy after {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn every_acknowledged_write_survives_kill_9() {
    for backend in backends() {
        let database = TestDatabase::create(&backend, "voltplan-kill9").await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut serve = Serve::start(database.url());
        let org = serve.printed("Organisation id");
        let client_id = serve.printed("Client id");
        let secret = serve.printed("Client secret");
        serve.wait_healthy(&http).await;
        let token: Value = http
            .post(format!("{}/oauth2/token/", serve.base))
            .basic_auth(&client_id, Some(&secret))
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().unwrap().to_owned();
        let users = format!("{}/api/partners/v2.0/org/{org}/users", serve.base);

        // Sixteen writers create users until the server dies under them.
        let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..16 {
            let (http, users, token) = (http.clone(), users.clone(), token.clone());
            let (acknowledged, count) = (acknowledged.clone(), count.clone());
            writers.spawn(async move {
                for n in 0.. {
                    let email = format!("w{writer}-{n}@example.com");
                    let sent = http
                        .post(&users)
                        .bearer_auth(&token)
                        .json(&json!({"role": "user", "email": email}))
                        .send()
                        .await;
                    let Ok(response) = sent else { return };
                    if !response.status().is_success() {
                        return;
                    }
                    let Ok(body) = response.json::<Value>().await else {
                        return;
                    };
                    let id = body["id"].as_str().unwrap().to_owned();
                    acknowledged.lock().await.push((id, email));
                    count.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let give_up = Instant::now() + DEADLINE;
        while count.load(Ordering::SeqCst) < 100 {
            assert!(Instant::now() < give_up, "the burst never got going");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        serve.kill_9();
        tokio::time::timeout(DEADLINE, writers.join_all())
            .await
            .expect("writers end when the server dies");
        let acknowledged = acknowledged.lock().await.clone();

        let mut serve = Serve::start(database.url());
        serve.wait_healthy(&http).await;
        let users = format!("{}/api/partners/v2.0/org/{org}/users", serve.base);
        for (id, email) in &acknowledged {
            let r = http
                .get(format!("{users}/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                200,
                "{}: acknowledged user {id} lost",
                backend.name()
            );
            let user: Value = r.json().await.unwrap();
            assert_eq!(user["email"], email.as_str());
        }
        eprintln!(
            "{}: {} acknowledged writes, all there after kill -9",
            backend.name(),
            acknowledged.len()
        );
        serve.stop();
        database.drop_database().await;
    }
}

#[test]
fn a_database_on_a_wrong_port_stops_serve_at_once_saying_why() {
    let url = format!("postgres://postgres@127.0.0.1:{}/voltplan", free_port());
    let mut child = voltplan()
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Well below the 10 s the pool used to retry for; the deadline only stops a hang.
    let give_up = Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("serve still running with its database refusing connections");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("timed out"), "{stderr}");
}
