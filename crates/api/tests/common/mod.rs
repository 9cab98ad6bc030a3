//! A real server over HTTP against a real database, for every backend under test.
//!
//! SQLite always runs. PostgreSQL runs when `VOLTPLAN_TEST_POSTGRES_URL` names a server (CI sets
//! it); each server then gets a database of its own. Without the variable the PostgreSQL half is
//! skipped with a notice; with it, an unreachable server fails the test.
#![allow(dead_code)]

pub mod browser;
pub mod wallbox;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::oneshot;
use uuid::Uuid;
use voltplan_api::{ApiConfig, AppState};
use voltplan_core::ManualClock;
use voltplan_store::{ConnectOptions, NewApiClient, OrgScope, Store};
use voltplan_test_support::TestDatabase;
/// The backends this run covers (`backends()`): SQLite, and PostgreSQL when configured.
pub use voltplan_test_support::{Backend, backends};

pub struct Tenant {
    pub org_id: Uuid,
    pub client_id: String,
    pub client_secret: String,
    pub token: String,
}

/// Builds a server's clouds from its store, clock and base URL.
pub type MakeClouds = Box<
    dyn FnOnce(&Arc<dyn Store>, &Arc<ManualClock>, &str) -> voltplan_clouds::BuiltClouds + Send,
>;

pub struct TestServer {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    pub backend: Backend,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    database: TestDatabase,
}

pub fn start_of_test() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
        .single()
        .unwrap()
}

impl TestServer {
    pub async fn start(backend: &Backend) -> TestServer {
        Self::start_with(backend, ApiConfig::default()).await
    }

    pub async fn start_with(backend: &Backend, config: ApiConfig) -> TestServer {
        Self::boot(backend, config, false).await.0
    }

    /// Like `start_with`, with the store opened by `connect` (timeouts, pool size, a URL through
    /// a proxy) from the test database's URL and the default options.
    pub async fn start_with_connect(
        backend: &Backend,
        config: ApiConfig,
        connect: impl FnOnce(ConnectOptions) -> ConnectOptions,
    ) -> TestServer {
        Self::boot_with(backend, config, false, connect).await.0
    }

    /// A server on a fresh database of `backend`, with a sandbox simulator on the server's clock
    /// when `with_sandbox` (`AppState::with_sandbox`).
    async fn boot(
        backend: &Backend,
        config: ApiConfig,
        with_sandbox: bool,
    ) -> (TestServer, Option<Arc<voltplan_clouds::SandboxCloud>>) {
        Self::boot_with(backend, config, with_sandbox, |options| options).await
    }

    async fn boot_with(
        backend: &Backend,
        config: ApiConfig,
        with_sandbox: bool,
        connect: impl FnOnce(ConnectOptions) -> ConnectOptions,
    ) -> (TestServer, Option<Arc<voltplan_clouds::SandboxCloud>>) {
        Self::boot_full(backend, config, with_sandbox, connect, None).await
    }

    /// A server whose clouds `make_clouds` builds from its store, clock and base URL (the
    /// sandbox among them is the server's). Returns the clouds too, for a worker.
    pub async fn start_with_clouds(
        backend: &Backend,
        config: ApiConfig,
        make_clouds: MakeClouds,
    ) -> (TestServer, voltplan_clouds::BuiltClouds) {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let keep = slot.clone();
        let make: MakeClouds = Box::new(move |store, clock, base| {
            let built = make_clouds(store, clock, base);
            *keep.lock().unwrap() = Some(built.clone());
            built
        });
        let (server, _) =
            Self::boot_full(backend, config, false, |options| options, Some(make)).await;
        let built = slot.lock().unwrap().take().unwrap();
        (server, built)
    }

    async fn boot_full(
        backend: &Backend,
        config: ApiConfig,
        with_sandbox: bool,
        connect: impl FnOnce(ConnectOptions) -> ConnectOptions,
        make_clouds: Option<MakeClouds>,
    ) -> (TestServer, Option<Arc<voltplan_clouds::SandboxCloud>>) {
        let database = TestDatabase::create(backend, "voltplan-api").await;
        let mut options = ConnectOptions::new(database.url());
        options.max_connections = 4;
        let store = voltplan_store::connect(&connect(options)).await.unwrap();
        let clock = Arc::new(ManualClock::new(start_of_test()));
        // Bound first, so links the server hands out (auth_session) point at this very server.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = ApiConfig {
            public_url: voltplan_api::PublicUrl::from_bind(listener.local_addr().unwrap()),
            ..config
        };
        let mut state = AppState::new(store.clone(), clock.clone(), config);
        let sandbox = with_sandbox.then(|| {
            Arc::new(
                voltplan_clouds::SandboxCloud::new(
                    clock.clone(),
                    voltplan_clouds::SandboxConfig::default(),
                )
                .unwrap(),
            )
        });
        if let Some(sandbox) = &sandbox {
            state = state.with_sandbox(sandbox.clone());
        }
        if let Some(make_clouds) = make_clouds {
            state = state.with_clouds(make_clouds(&store, &clock, &base));
        }
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            voltplan_api::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let server = TestServer {
            base,
            store,
            clock,
            http: reqwest::Client::new(),
            backend: backend.clone(),
            shutdown: Some(tx),
            task: Some(task),
            database,
        };
        (server, sandbox)
    }

    /// Stops the server and drops its test database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        drop(self.store);
        self.database.drop_database().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The URL of this server's test database (for a second connection of the test's own).
    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    /// A new organisation with an API client and a fresh token obtained over HTTP.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let org = self
            .store
            .create_organisation(name, self.clock_now())
            .await
            .unwrap();
        let (client_id, client_secret) = self.client_for(org.id).await;
        let token = self.token(&client_id, &client_secret).await;
        Tenant {
            org_id: org.id,
            client_id,
            client_secret,
            token,
        }
    }

    pub async fn client_for(&self, org_id: Uuid) -> (String, String) {
        let client_id = voltplan_api::generate_client_id();
        let client_secret = voltplan_api::generate_client_secret();
        self.store
            .create_api_client(
                OrgScope::new(org_id),
                &NewApiClient {
                    client_id: client_id.clone(),
                    name: "test client".into(),
                    secret_hash: voltplan_api::hash_secret(&client_secret).unwrap(),
                    created_at: self.clock_now(),
                },
            )
            .await
            .unwrap();
        (client_id, client_secret)
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use voltplan_core::Clock;
        self.clock.now()
    }

    /// `POST /oauth2/token/` the Podero way: HTTP Basic and a JSON body.
    pub async fn token_request(&self, client_id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(self.url("/oauth2/token/"))
            .basic_auth(client_id, Some(secret))
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap()
    }

    pub async fn token(&self, client_id: &str, secret: &str) -> String {
        let response = self.token_request(client_id, secret).await;
        assert_eq!(response.status(), 200, "token request failed");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// One authenticated request; `body`, when given, is sent as JSON.
    pub async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        status_and_json(request.send().await.unwrap()).await
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, token, path, None, &[])
            .await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, token, path, Some(body), &[])
            .await
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, token, path, Some(body), &[])
            .await
    }

    pub async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, token, path, None, &[])
            .await
    }

    /// Creates a user through the API and returns its id.
    pub async fn create_user(&self, t: &Tenant, email: &str) -> Uuid {
        let (status, body) = self
            .post(
                &t.token,
                &users_path(t.org_id),
                json!({"role": "user", "email": email, "first_name": "Anna"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }
}

pub async fn status_and_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

pub fn users_path(org: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/users")
}

pub fn user_path(org: Uuid, user: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/users/{user}")
}

pub fn evs_path(org: Uuid, user: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/users/{user}/electric-vehicles")
}

pub fn ev_path(org: Uuid, user: Uuid, ev: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/users/{user}/electric-vehicles/{ev}")
}

pub fn buildings_path(org: Uuid, user: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/users/{user}/buildings")
}

pub fn building_path(org: Uuid, user: Uuid, building: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/users/{user}/buildings/{building}")
}

pub fn id_of(body: &Value) -> Uuid {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {body}"))
        .parse()
        .unwrap()
}

/// The field (`loc[1]`) of each validation error in a 422 body.
pub fn invalid_fields(body: &Value) -> Vec<String> {
    body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("not a validation body: {body}"))
        .iter()
        .map(|e| {
            e["loc"].as_array().unwrap()[1..]
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| p.to_string())
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

impl TestServer {
    /// Like `start`, with a sandbox simulator on the server's clock (`AppState::with_sandbox`).
    pub async fn start_with_sandbox(
        backend: &Backend,
    ) -> (TestServer, Arc<voltplan_clouds::SandboxCloud>) {
        Self::start_with_sandbox_and(backend, ApiConfig::default()).await
    }

    /// Like `start_with_sandbox`, with `config`.
    pub async fn start_with_sandbox_and(
        backend: &Backend,
        config: ApiConfig,
    ) -> (TestServer, Arc<voltplan_clouds::SandboxCloud>) {
        let (server, sandbox) = Self::boot(backend, config, true).await;
        let sandbox = sandbox.expect("boot made a sandbox");
        (server, sandbox)
    }

    /// A worker on this server's store and clock that reaches the cars through `sandbox`.
    pub fn sandbox_worker(
        &self,
        sandbox: &Arc<voltplan_clouds::SandboxCloud>,
        worker_id: &str,
    ) -> voltplan_worker::Worker {
        voltplan_worker::Worker::new(
            self.store.clone(),
            voltplan_worker::Clouds::new().with_sandbox(sandbox.clone()),
            self.clock.clone(),
            voltplan_worker::WorkerConfig::new(worker_id),
        )
    }

    /// A POST without a body (boost, sandbox driver actions).
    pub async fn post_empty(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::POST, token, path, None, &[])
            .await
    }

    /// A GET with extra headers (`fill-missing`).
    pub async fn get_with_headers(
        &self,
        token: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.send(reqwest::Method::GET, token, path, None, headers)
            .await
    }
}

impl TestServer {
    /// A user (`anna@example.com`) of a new organisation, both created over HTTP.
    pub async fn tenant_with_user(&self, name: &str) -> (Tenant, Uuid) {
        let t = self.tenant(name).await;
        let user = self.create_user(&t, "anna@example.com").await;
        (t, user)
    }

    /// Creates an EV of `user` from `body` through the API and returns the created object.
    pub async fn create_ev(&self, t: &Tenant, user: Uuid, body: Value) -> Value {
        let (status, created) = self.post(&t.token, &evs_path(t.org_id, user), body).await;
        assert_eq!(status, 200, "{created}");
        created
    }

    /// Creates a building of `user` from `body` through the API and returns the created object.
    pub async fn create_building(&self, t: &Tenant, user: Uuid, body: Value) -> Value {
        let (status, created) = self
            .post(&t.token, &buildings_path(t.org_id, user), body)
            .await;
        assert_eq!(status, 200, "{created}");
        created
    }

    /// Creates a sandbox EV (a `model 3` of `manufacturer`) of `user` through the API and returns
    /// the created object. On a server with the sandbox it is connected at once.
    pub async fn create_sandbox_ev(&self, t: &Tenant, user: Uuid, manufacturer: &str) -> Value {
        let cloud_service = voltplan_clouds::SANDBOX_CLOUD.id;
        self.create_ev(
            t,
            user,
            json!({"device_model": {"manufacturer": manufacturer, "model": "model 3",
                   "cloud_service": cloud_service}}),
        )
        .await
    }
}

pub fn sandbox_ev_path(org: Uuid, ev: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/sandbox/electric-vehicles/{ev}")
}
