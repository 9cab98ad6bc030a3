//! Credentials keep their own clock (`AppState::with_token_clock`): with the data clock running
//! ahead (as in the demo, where simulated time runs 60× faster) a token stays valid until its
//! lifetime has passed on the token clock, and expires then.

mod common;

use chrono::Duration;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::oneshot;
use voltplan_api::{ApiConfig, AppState, PublicUrl};
use voltplan_core::{Clock, ManualClock};
use voltplan_store::{ConnectOptions, NewApiClient, OrgScope, Store};
use voltplan_test_support::TestDatabase;

use common::{Backend, backends, start_of_test, status_and_json, users_path};

/// A real server whose data and token clocks are two separate manual clocks.
struct TwoClockServer {
    base: String,
    store: Arc<dyn Store>,
    data_clock: Arc<ManualClock>,
    token_clock: Arc<ManualClock>,
    http: reqwest::Client,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    database: TestDatabase,
}

impl TwoClockServer {
    async fn start(backend: &Backend, config: ApiConfig) -> Self {
        let database = TestDatabase::create(backend, "voltplan-api").await;
        let mut options = ConnectOptions::new(database.url());
        options.max_connections = 4;
        let store = voltplan_store::connect(&options).await.unwrap();
        let data_clock = Arc::new(ManualClock::new(start_of_test()));
        let token_clock = Arc::new(ManualClock::new(start_of_test()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = AppState::with_token_clock(
            store.clone(),
            data_clock.clone(),
            token_clock.clone(),
            ApiConfig {
                public_url: PublicUrl::from_bind(address),
                ..config
            },
        );
        let (shutdown, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            voltplan_api::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            base: format!("http://{address}"),
            store,
            data_clock,
            token_clock,
            http: reqwest::Client::new(),
            shutdown,
            task,
            database,
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
        drop(self.store);
        self.database.drop_database().await;
    }

    /// An organisation with an API client: `(org_id, client_id, client_secret)`.
    async fn tenant(&self) -> (uuid::Uuid, String, String) {
        let org = self
            .store
            .create_organisation("Utility", self.data_clock.now())
            .await
            .unwrap();
        let client_id = voltplan_api::generate_client_id();
        let client_secret = voltplan_api::generate_client_secret();
        self.store
            .create_api_client(
                OrgScope::new(org.id),
                &NewApiClient {
                    client_id: client_id.clone(),
                    name: "test client".into(),
                    secret_hash: voltplan_api::hash_secret(&client_secret).unwrap(),
                    created_at: self.data_clock.now(),
                },
            )
            .await
            .unwrap();
        (org.id, client_id, client_secret)
    }

    async fn token_request(&self, client_id: &str, secret: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/oauth2/token/", self.base))
            .basic_auth(client_id, Some(secret))
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap();
        status_and_json(response).await
    }

    async fn list_users(&self, token: &str, org: uuid::Uuid) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(format!("{}{}", self.base, users_path(org)))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        status_and_json(response).await
    }
}

#[tokio::test]
async fn a_token_lives_by_the_token_clock_while_the_data_clock_runs_ahead() {
    for backend in backends() {
        // No token cache: every call looks the token up and checks its expiry.
        let config = ApiConfig {
            token_lifetime: Duration::seconds(600),
            token_cache_ttl: std::time::Duration::ZERO,
            ..ApiConfig::default()
        };
        let s = TwoClockServer::start(&backend, config).await;
        let (org, client_id, secret) = s.tenant().await;
        let (status, body) = s.token_request(&client_id, &secret).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["expires_in"], 600);
        let token = body["access_token"].as_str().unwrap().to_owned();

        // Ten minutes of real time at 60×: ten simulated hours, far past the token's lifetime on
        // the data clock; the token clock has moved ten minutes less a second.
        s.data_clock.advance(Duration::hours(10));
        s.token_clock.advance(Duration::seconds(599));
        let (status, body) = s.list_users(&token, org).await;
        assert_eq!(status, 200, "valid per the token clock: {body}");

        // A second later on the token clock it has expired, whatever the data clock says.
        s.token_clock.advance(Duration::seconds(1));
        let (status, body) = s.list_users(&token, org).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["detail"], "The access token expired");

        // A new token is again valid for its lifetime on the token clock.
        let (status, body) = s.token_request(&client_id, &secret).await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        s.data_clock.advance(Duration::days(3));
        let (status, body) = s.list_users(&token, org).await;
        assert_eq!(status, 200, "{body}");
        s.stop().await;
    }
}

#[tokio::test]
async fn failed_token_requests_are_counted_on_the_token_clock() {
    for backend in backends() {
        let s = TwoClockServer::start(&backend, ApiConfig::default()).await;
        let (_, client_id, secret) = s.tenant().await;
        for _ in 0..10 {
            let (status, _) = s.token_request(&client_id, "guess").await;
            assert_eq!(status, 401);
        }
        // The data clock moving past the 60 s window does not end the block…
        s.data_clock.advance(Duration::minutes(5));
        let (status, _) = s.token_request(&client_id, "guess").await;
        assert_eq!(
            status, 429,
            "still blocked: the window is on the token clock"
        );
        // (The right secret is never refused.)
        let (status, body) = s.token_request(&client_id, &secret).await;
        assert_eq!(status, 200, "{body}");
        // …the token clock does.
        s.token_clock.advance(Duration::seconds(61));
        let (status, body) = s.token_request(&client_id, "guess").await;
        assert_eq!(status, 401, "{body}");
        s.stop().await;
    }
}
