//! What every handler can reach.

use chrono::Duration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use voltplan_clouds::{BuiltClouds, SandboxCloud, VehicleCloud};
use voltplan_core::Clock;
use voltplan_store::Store;
use voltplan_store::sealed::KeyRing;

use crate::auth::limiter::FailureLimiter;
use crate::auth::token_cache::TokenCache;
use crate::public_url::PublicUrl;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Lifetime of issued access tokens (Podero: 36,000 s).
    pub token_lifetime: Duration,
    /// Failed token requests allowed per client address, and per client id, within
    /// `failure_window`; beyond it failures are answered 429. A correct secret is never refused.
    pub max_token_failures: u32,
    pub failure_window: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed. Empty (the default): the peer
    /// address is the client's, and the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The longest a request may take before it is answered 503 with `Retry-After`.
    pub request_timeout: std::time::Duration,
    /// The longest `/healthz` waits for the database before it answers 503.
    pub health_timeout: std::time::Duration,
    /// How long (real time) a verified bearer token is trusted without a database lookup; bounds
    /// how long a token revoked on another replica keeps working. Zero disables the cache.
    pub token_cache_ttl: std::time::Duration,
    /// Where browsers reach this server; links handed to drivers start with it.
    pub public_url: PublicUrl,
    /// The OCPP central system's timers and handshake limits.
    pub ocpp: crate::ocpp::OcppConfig,
    /// Seals cloud tokens and signs cue secrets and the Connect pages' tokens
    /// (`VOLTPLAN_SECRET_KEYS`; a random key for this process when none is configured).
    pub secret_keys: Arc<KeyRing>,
    /// Webhook URLs may be plain `http` to a loopback address (tests, a receiver on the same
    /// host); otherwise only `https` to public addresses.
    pub allow_http_loopback_webhooks: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::seconds(36_000),
            max_token_failures: 10,
            failure_window: Duration::seconds(60),
            trusted_proxies: Vec::new(),
            request_timeout: std::time::Duration::from_secs(30),
            health_timeout: std::time::Duration::from_secs(2),
            token_cache_ttl: std::time::Duration::from_secs(2),
            public_url: PublicUrl::default(),
            ocpp: crate::ocpp::OcppConfig::default(),
            secret_keys: Arc::new(KeyRing::ephemeral()),
            allow_http_loopback_webhooks: false,
        }
    }
}

/// The shared state, and the vehicle clouds this server runs (the sandbox simulator, when it runs
/// one). The clouds sit beside `Inner` (not in it) so `with_clouds` can be called on a state built
/// by `new`.
#[derive(Clone)]
pub struct AppState(
    pub(crate) Arc<Inner>,
    pub(crate) BuiltClouds,
    pub(crate) Option<StatusSource>,
);

/// Reports the state of a background task running in this process (e.g. the price fetcher), as
/// JSON. A closure keeps the API independent of the worker crate.
pub type StatusSource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The clock of credentials: access-token issue, expiry and revocation, and the window of
    /// failed token requests. The same as `clock` unless the server runs on simulated time (the
    /// demo), where a token must last its lifetime in real time.
    pub token_clock: Arc<dyn Clock>,
    pub config: ApiConfig,
    pub token_failures: FailureLimiter,
    pub tokens: TokenCache,
    /// client id → (stored PHC hash, SHA-256 of the secret that verified against it). Lets a
    /// client fetch tokens without paying Argon2 each time; keyed on the stored hash, so a
    /// rotation or a replica's different view can never accept an old secret.
    pub verified_secrets: Mutex<HashMap<String, (String, Vec<u8>)>>,
    /// This replica's charger connections (the OCPP central system).
    pub ocpp: Arc<crate::ocpp::Hub>,
    /// Failed OCPP handshakes, per address and per charge-point id.
    pub ocpp_failures: FailureLimiter,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: ApiConfig) -> Self {
        Self::with_token_clock(store, clock.clone(), clock, config)
    }

    /// Like [`AppState::new`], with a separate clock for credentials (`token_clock`): tokens are
    /// issued, expire and are revoked on it, and failed token requests are counted on it, while
    /// everything else (the data, the plans, the sandbox) keeps to `clock`. The demo runs `clock`
    /// faster than real time and gives tokens the system clock, so a token lasts its lifetime.
    pub fn with_token_clock(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        token_clock: Arc<dyn Clock>,
        config: ApiConfig,
    ) -> Self {
        let token_failures = FailureLimiter::new(config.max_token_failures, config.failure_window);
        let tokens = TokenCache::new(config.token_cache_ttl);
        let ocpp_failures =
            FailureLimiter::new(config.ocpp.max_handshake_failures, config.failure_window);
        Self(
            Arc::new(Inner {
                store,
                clock,
                token_clock,
                config,
                token_failures,
                tokens,
                verified_secrets: Mutex::new(HashMap::new()),
                ocpp: Arc::new(crate::ocpp::Hub::new()),
                ocpp_failures,
            }),
            BuiltClouds::default(),
            None,
        )
    }

    /// The clouds this process runs (`voltplan_clouds::registry::build`): consent-page re-links
    /// go to them, and a simulator among them serves the sandbox endpoints.
    pub fn with_clouds(mut self, clouds: BuiltClouds) -> Self {
        self.1 = clouds;
        self
    }

    /// Only the sandbox simulator (tests, the demo).
    pub fn with_sandbox(self, sandbox: Arc<SandboxCloud>) -> Self {
        self.with_clouds(BuiltClouds::with_sandbox(sandbox))
    }

    /// The keys that seal cloud tokens and sign short-lived capabilities.
    pub fn keys(&self) -> &KeyRing {
        &self.0.config.secret_keys
    }

    /// Smartcar, when this server is configured for it.
    pub fn smartcar(&self) -> Option<&voltplan_clouds::smartcar::SmartcarCloud> {
        self.1.smartcar.as_deref()
    }

    /// The cloud of a service id, if this server runs it.
    pub fn cloud(&self, service_id: uuid::Uuid) -> Option<&Arc<dyn VehicleCloud>> {
        self.1.cloud(service_id)
    }

    /// Publishes the price fetcher's state at `GET /api/partners/v2.0/prices/fetch-status`.
    pub fn with_price_fetch_status(mut self, status: StatusSource) -> Self {
        self.2 = Some(status);
        self
    }

    pub fn price_fetch_status(&self) -> Option<serde_json::Value> {
        self.2.as_ref().map(|status| status())
    }

    pub fn sandbox(&self) -> Option<&SandboxCloud> {
        self.1.sandbox.as_deref()
    }

    pub fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.clock.now()
    }

    /// Now on the credentials' clock (see [`AppState::with_token_clock`]).
    pub fn token_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.token_clock.now()
    }

    pub fn public_url(&self) -> &PublicUrl {
        &self.0.config.public_url
    }
}
