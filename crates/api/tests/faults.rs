//! The database failing under a running server: a lock held past the statement timeout, an
//! exhausted pool, and (PostgreSQL) the server refusing connections. Every request ends within
//! its bounds as 503 with `Retry-After`, `/healthz` says so, and the server recovers on its own.
//! Short timeouts keep each test to seconds.

mod common;

use common::*;
use serde_json::json;
use sqlx::Connection;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use voltplan_api::ApiConfig;
use voltplan_store::ConnectOptions;

/// What a request may take at most in these tests: the store's bounds below, plus slack for
/// a loaded CI machine. A request still running then is the hang this file guards against.
const DEADLINE: Duration = Duration::from_secs(20);

fn short_timeouts(mut options: ConnectOptions) -> ConnectOptions {
    options.acquire_timeout = Duration::from_millis(500);
    options.statement_timeout = Duration::from_millis(1500);
    options
}

fn config() -> ApiConfig {
    ApiConfig {
        health_timeout: Duration::from_millis(500),
        ..ApiConfig::default()
    }
}

/// `future`, failing the test if it runs past [`DEADLINE`].
async fn within_deadline<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} still running after {DEADLINE:?}"))
}

/// Asks `probe` until it answers `want`, for at most [`DEADLINE`].
async fn poll_until<F, Fut>(what: &str, want: u16, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = u16>,
{
    let give_up = tokio::time::Instant::now() + DEADLINE;
    loop {
        let got = probe().await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{what}: still {got}, not {want}, after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn healthz(s: &TestServer) -> u16 {
    s.http
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A write that needs the users table: 503 with `Retry-After` while the database is out.
async fn create_user(s: &TestServer, t: &Tenant, email: &str) -> (u16, Option<String>) {
    post_user(
        s.http.clone(),
        s.url(&users_path(t.org_id)),
        t.token.clone(),
        email.to_owned(),
    )
    .await
}

/// `create_user` on owned values, to spawn.
async fn post_user(
    http: reqwest::Client,
    url: String,
    token: String,
    email: String,
) -> (u16, Option<String>) {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({"role": "user", "email": email}))
        .send()
        .await
        .unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), retry_after)
}

fn assert_unavailable((status, retry_after): (u16, Option<String>), what: &str) {
    assert_eq!(status, 503, "{what}");
    let secs: u64 = retry_after
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .parse()
        .unwrap();
    assert!(secs >= 1, "{what}");
}

/// A second connection of the test's own that takes the users table away from the server:
/// PostgreSQL `LOCK TABLE … ACCESS EXCLUSIVE`, SQLite a write transaction (its one writer lock).
enum Lock {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Lock {
    async fn take(s: &TestServer) -> Lock {
        let url = s.database_url();
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            Lock::Postgres(c)
        } else {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE; DELETE FROM users WHERE 0")
                .execute(&mut c)
                .await
                .unwrap();
            Lock::Sqlite(c)
        }
    }

    async fn release(self) {
        match self {
            Lock::Postgres(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
            Lock::Sqlite(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_lock_held_past_the_statement_timeout_is_a_bounded_503() {
    for backend in backends() {
        let s = TestServer::start_with_connect(&backend, config(), short_timeouts).await;
        let t = s.tenant("Utility A").await;
        let lock = Lock::take(&s).await;
        let answer =
            within_deadline("a write behind the lock", create_user(&s, &t, "a@x.com")).await;
        assert_unavailable(answer, backend.name());
        lock.release().await;
        let (status, _) =
            within_deadline("a write after the lock", create_user(&s, &t, "a@x.com")).await;
        assert_eq!(
            status,
            200,
            "{}: recovered without a restart",
            backend.name()
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn an_exhausted_pool_is_a_bounded_503_and_healthz_says_so() {
    for backend in backends() {
        // PostgreSQL: two connections; SQLite: its one writer.
        let s = TestServer::start_with_connect(&backend, config(), |options| {
            let mut options = short_timeouts(options);
            options.max_connections = 2;
            options
        })
        .await;
        let t = s.tenant("Utility A").await;
        let lock = Lock::take(&s).await;
        // Writes stuck behind the lock hold every connection; the rest wait for one.
        let mut writes = JoinSet::new();
        for i in 0..8 {
            let url = s.url(&users_path(t.org_id));
            writes.spawn(post_user(
                s.http.clone(),
                url,
                t.token.clone(),
                format!("u{i}@x.com"),
            ));
        }
        // Meanwhile the health check cannot get a connection either.
        within_deadline(
            "healthz on an exhausted pool",
            poll_until("healthz on an exhausted pool", 503, || healthz(&s)),
        )
        .await;
        let answers = within_deadline("writes on an exhausted pool", writes.join_all()).await;
        assert_eq!(answers.len(), 8);
        for answer in answers {
            assert_unavailable(answer, backend.name());
        }
        lock.release().await;
        poll_until("healthz after the pool drained", 200, || healthz(&s)).await;
        let (status, _) = create_user(&s, &t, "after@x.com").await;
        assert_eq!(status, 200, "{}", backend.name());
        s.stop().await;
    }
}

/// A TCP proxy to PostgreSQL that the test can take down (connections cut, the port closed, so
/// new connections are refused) and bring back on the same port.
struct Proxy {
    port: u16,
    upstream: SocketAddr,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        Proxy {
            port,
            upstream,
            running: Some(tokio::spawn(forward(listener, upstream))),
        }
    }

    /// Cuts every connection and closes the port.
    async fn down(&mut self) {
        if let Some(task) = self.running.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn up(&mut self) {
        let address = format!("127.0.0.1:{}", self.port);
        let give_up = tokio::time::Instant::now() + DEADLINE;
        let listener = loop {
            match TcpListener::bind(&address).await {
                Ok(listener) => break listener,
                Err(e) if tokio::time::Instant::now() < give_up => {
                    eprintln!("rebinding {address}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebinding {address}: {e}"),
            }
        };
        self.running = Some(tokio::spawn(forward(listener, self.upstream)));
    }
}

/// Accepts and forwards until aborted; aborting drops the set, which cuts every connection.
async fn forward(listener: TcpListener, upstream: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            if let Ok(outbound) = TcpStream::connect(upstream).await {
                pump(inbound, outbound).await;
            }
        });
    }
}

/// Copies both ways until either side closes (tokio's `io-util` is not a feature of this
/// workspace, so by hand over `try_read`/`try_write`).
async fn pump(a: TcpStream, b: TcpStream) {
    let (a_read, a_write) = a.into_split();
    let (b_read, b_write) = b.into_split();
    tokio::select! {
        _ = copy(&a_read, &b_write) => {}
        _ = copy(&b_read, &a_write) => {}
    }
}

async fn copy(from: &tokio::net::tcp::OwnedReadHalf, to: &tokio::net::tcp::OwnedWriteHalf) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if from.readable().await.is_err() {
            return;
        }
        let n = match from.try_read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        let mut sent = 0;
        while sent < n {
            if to.writable().await.is_err() {
                return;
            }
            match to.try_write(&buffer[sent..n]) {
                Ok(k) => sent += k,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            }
        }
    }
}

#[tokio::test]
async fn postgres_refusing_connections_is_a_503_and_the_server_recovers() {
    let Some(backend) = Backend::postgres_if_configured() else {
        return;
    };
    let Backend::Postgres(admin_url) = &backend else {
        unreachable!()
    };
    let admin = url::Url::parse(admin_url).unwrap();
    let upstream: SocketAddr = format!(
        "{}:{}",
        admin.host_str().unwrap(),
        admin.port().unwrap_or(5432)
    )
    .parse()
    .expect("VOLTPLAN_TEST_POSTGRES_URL names an IP address");
    let mut proxy = Proxy::start(upstream).await;
    let port = proxy.port;
    let s = TestServer::start_with_connect(&backend, config(), |options| {
        let mut options = short_timeouts(options);
        let mut url = url::Url::parse(&options.url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(port)).unwrap();
        options.url = url.to_string();
        options
    })
    .await;
    let t = s.tenant("Utility A").await;
    assert_eq!(create_user(&s, &t, "before@x.com").await.0, 200);

    proxy.down().await;
    let health = within_deadline("healthz during the outage", healthz(&s)).await;
    assert_eq!(health, 503);
    let answer = within_deadline(
        "a write during the outage",
        create_user(&s, &t, "during@x.com"),
    )
    .await;
    assert_unavailable(answer, "refused connections");
    let r = within_deadline(
        "a token request during the outage",
        s.token_request(&t.client_id, &t.client_secret),
    )
    .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));

    proxy.up().await;
    poll_until("healthz after the outage", 200, || healthz(&s)).await;
    assert_eq!(create_user(&s, &t, "after@x.com").await.0, 200);
    s.stop().await;
    proxy.down().await;
}
