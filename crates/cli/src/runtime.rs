//! What `serve`, `worker` and `demo` share: the database, the first organisation, the clouds
//! (built from the registry), the worker with its price fetcher running in the background, and
//! shutdown. Subcommand files import from here, never from each other.

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use voltplan_api::PublicUrl;
use voltplan_clouds::registry::{self, BuiltClouds, CloudsConfig};
use voltplan_clouds::smartcar::{SmartcarConfig, SmartcarMode};
use voltplan_clouds::{SandboxConfig, Secret};
use voltplan_core::{Clock, SystemClock};
use voltplan_store::cloud_vault::StoreVault;
use voltplan_store::sealed::KeyRing;
use voltplan_store::{ConnectOptions, NewApiClient, OrgScope, Store};
use voltplan_worker::budget::CallBudget;
use voltplan_worker::price_fetch::PriceFetcher;
use voltplan_worker::webhooks::{Deliverer, DeliveryConfig};
use voltplan_worker::{Clouds, Worker};

/// Default database: a SQLite file in the working directory, created and migrated on start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:voltplan.db";

#[derive(clap::Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// `sqlite:PATH` (default `sqlite:voltplan.db`) or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// How long the server waits for the database, and for a whole request (`serve`).
#[derive(clap::Args, Clone, Debug)]
pub struct TimeoutArgs {
    /// Seconds a request may wait for a free database connection (or a new one to open) before
    /// it is answered 503 with Retry-After.
    #[arg(long, env = "VOLTPLAN_DB_ACQUIRE_TIMEOUT_SECS", default_value_t = 5.0)]
    pub db_acquire_timeout_secs: f64,
    /// Seconds a database statement may run or wait for a lock (PostgreSQL `statement_timeout`
    /// and `lock_timeout`, SQLite `busy_timeout`) before the request is answered 503.
    #[arg(
        long,
        env = "VOLTPLAN_DB_STATEMENT_TIMEOUT_SECS",
        default_value_t = 10.0
    )]
    pub db_statement_timeout_secs: f64,
    /// Seconds a whole request may take before it is answered 503 with Retry-After.
    #[arg(long, env = "VOLTPLAN_REQUEST_TIMEOUT_SECS", default_value_t = 30.0)]
    pub request_timeout_secs: f64,
    /// Seconds `/healthz` waits for the database before it answers 503.
    #[arg(long, env = "VOLTPLAN_HEALTH_TIMEOUT_SECS", default_value_t = 2.0)]
    pub health_timeout_secs: f64,
}

impl TimeoutArgs {
    pub fn db_acquire_timeout(&self) -> anyhow::Result<Duration> {
        seconds("--db-acquire-timeout-secs", self.db_acquire_timeout_secs)
    }
    pub fn db_statement_timeout(&self) -> anyhow::Result<Duration> {
        seconds(
            "--db-statement-timeout-secs",
            self.db_statement_timeout_secs,
        )
    }
    pub fn request_timeout(&self) -> anyhow::Result<Duration> {
        seconds("--request-timeout-secs", self.request_timeout_secs)
    }
    pub fn health_timeout(&self) -> anyhow::Result<Duration> {
        seconds("--health-timeout-secs", self.health_timeout_secs)
    }
}

/// A positive, finite number of seconds as a duration.
fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
        anyhow::bail!("{flag} must be a number of seconds above 0 and at most 86400, not {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

/// The configured public URL, else `http://<bind>`, with a warning when that cannot be browsed.
pub fn public_url_or_bind(public_url: Option<PublicUrl>, bind: SocketAddr) -> PublicUrl {
    public_url.unwrap_or_else(|| {
        if bind.ip().is_unspecified() {
            tracing::warn!(%bind, "listening on all interfaces without --public-url: links handed to drivers (auth_session) name an address browsers cannot open; set --public-url");
        }
        PublicUrl::from_bind(bind)
    })
}

/// Credentials created for a fresh installation.
pub struct Bootstrap {
    pub org_id: uuid::Uuid,
    pub client_id: String,
    pub client_secret: String,
}

/// Creates an organisation and an API client, returning the secret (shown once, stored hashed).
pub async fn create_org_and_client(
    store: &dyn Store,
    org_name: &str,
    client_name: &str,
) -> anyhow::Result<Bootstrap> {
    let now = SystemClock.now();
    let org = store.create_organisation(org_name, now).await?;
    let (client_id, client_secret) =
        create_client(store, OrgScope::new(org.id), client_name).await?;
    Ok(Bootstrap {
        org_id: org.id,
        client_id,
        client_secret,
    })
}

pub async fn create_client(
    store: &dyn Store,
    org: OrgScope,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let client_id = voltplan_api::generate_client_id();
    let client_secret = voltplan_api::generate_client_secret();
    let secret_hash = voltplan_api::hash_secret(&client_secret)?;
    store
        .create_api_client(
            org,
            &NewApiClient {
                client_id: client_id.clone(),
                name: name.to_owned(),
                secret_hash,
                created_at: SystemClock.now(),
            },
        )
        .await?;
    Ok((client_id, client_secret))
}

pub fn print_credentials(b: &Bootstrap, base_url: &str) {
    println!("Organisation id : {}", b.org_id);
    println!("Client id       : {}", b.client_id);
    println!(
        "Client secret   : {}   (shown once; stored hashed)",
        b.client_secret
    );
    println!();
    println!("Get a token:");
    println!(
        "  curl -s -X POST {base_url}/oauth2/token/ -u '{}:{}' -H 'Content-Type: application/json' -d '{{\"grant_type\": \"client_credentials\"}}'",
        b.client_id, b.client_secret
    );
}

pub async fn open_store(db: &DatabaseArgs, connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    let mut options = ConnectOptions::new(&db.database_url);
    options.max_connections = connections;
    open_store_with(db, options).await
}

/// Like [`open_store`], with every connect option given (`options.url` is replaced by `db`'s).
pub async fn open_store_with(
    db: &DatabaseArgs,
    mut options: ConnectOptions,
) -> anyhow::Result<Arc<dyn Store>> {
    options.url = db.database_url.clone();
    voltplan_store::connect(&options)
        .await
        .with_context(|| format!("opening the database {}", redact(&db.database_url)))
}

/// Hides a password in a database URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

/// How the worker may use the vehicle clouds.
#[derive(clap::Args, Debug, Clone)]
pub struct CloudArgs {
    /// Calls (reads and commands) one worker makes to one vehicle cloud per minute at most, on
    /// average (bursts of 10 seconds' worth); cycles beyond it are deferred. 0 = no limit.
    #[arg(long, env = "VOLTPLAN_CLOUD_CALLS_PER_MINUTE", default_value_t = 600.0)]
    pub cloud_calls_per_minute: f64,
    /// Keys that seal cloud tokens at rest and sign cue links, `id:base64` (32 bytes each,
    /// `openssl rand -base64 32`), comma-separated; the first seals, the others only open.
    /// Required with Smartcar; without it a random key lives as long as the process.
    #[arg(long, env = "VOLTPLAN_SECRET_KEYS", hide_env_values = true)]
    pub secret_keys: Option<String>,
    /// Smartcar application's client id (README, "Connecting real cars").
    #[arg(long, env = "SMARTCAR_CLIENT_ID")]
    pub smartcar_client_id: Option<String>,
    #[arg(long, env = "SMARTCAR_CLIENT_SECRET", hide_env_values = true)]
    pub smartcar_client_secret: Option<String>,
    /// The application management token: the key of Smartcar's webhook signatures.
    #[arg(long, env = "SMARTCAR_MANAGEMENT_TOKEN", hide_env_values = true)]
    pub smartcar_management_token: Option<String>,
    /// The redirect URI registered at Smartcar: `<public URL>/connect/callback/smartcar`.
    #[arg(long, env = "SMARTCAR_REDIRECT_URI")]
    pub smartcar_redirect_uri: Option<String>,
    /// `live`, `simulated` or `test`.
    #[arg(long, env = "SMARTCAR_MODE", default_value = "live")]
    pub smartcar_mode: String,
    /// Connect's country flag (e.g. `DE`); European simulated logins need it.
    #[arg(long, env = "SMARTCAR_COUNTRY")]
    pub smartcar_country: Option<String>,
    /// Base URLs (for a proxy or a test double).
    #[arg(long, env = "SMARTCAR_CONNECT_URL")]
    pub smartcar_connect_url: Option<String>,
    #[arg(long, env = "SMARTCAR_AUTH_URL")]
    pub smartcar_auth_url: Option<String>,
    #[arg(long, env = "SMARTCAR_API_URL")]
    pub smartcar_api_url: Option<String>,
}

impl CloudArgs {
    /// The configured keys; a random one for this process when none are.
    pub fn keys(&self) -> anyhow::Result<Arc<KeyRing>> {
        match self.secret_keys.as_deref() {
            Some(spec) => Ok(Arc::new(
                KeyRing::parse(spec).context("reading VOLTPLAN_SECRET_KEYS")?,
            )),
            None => {
                if self.smartcar_client_id.is_some() {
                    anyhow::bail!(
                        "Smartcar needs VOLTPLAN_SECRET_KEYS: its tokens are sealed with it and must \
                         open again after a restart (README, \"Connecting real cars\")"
                    );
                }
                Ok(Arc::new(KeyRing::ephemeral()))
            }
        }
    }

    /// Smartcar's configuration, when a client id is set.
    pub fn smartcar(&self) -> anyhow::Result<Option<SmartcarConfig>> {
        let Some(client_id) = self.smartcar_client_id.clone() else {
            return Ok(None);
        };
        let need = |value: &Option<String>, name: &str| {
            value
                .clone()
                .with_context(|| format!("SMARTCAR_CLIENT_ID is set, so {name} is needed too"))
        };
        let mut config = SmartcarConfig::new(
            client_id,
            Secret::new(need(
                &self.smartcar_client_secret,
                "SMARTCAR_CLIENT_SECRET",
            )?),
            Secret::new(need(
                &self.smartcar_management_token,
                "SMARTCAR_MANAGEMENT_TOKEN",
            )?),
            need(&self.smartcar_redirect_uri, "SMARTCAR_REDIRECT_URI")?,
        );
        config.mode = match self.smartcar_mode.as_str() {
            "live" => SmartcarMode::Live,
            "simulated" => SmartcarMode::Simulated,
            "test" => SmartcarMode::Test,
            other => anyhow::bail!("SMARTCAR_MODE {other:?}: expected live, simulated or test"),
        };
        config.country = self.smartcar_country.clone();
        if let Some(url) = &self.smartcar_connect_url {
            config.connect_base = url.clone();
        }
        if let Some(url) = &self.smartcar_auth_url {
            config.auth_base = url.clone();
        }
        if let Some(url) = &self.smartcar_api_url {
            config.api_base = url.clone();
        }
        Ok(Some(config))
    }

    /// The clouds a worker steers through, each within the call budget.
    pub fn clouds(&self, built: &BuiltClouds) -> Clouds {
        let mut clouds = Clouds::new().with_built(built);
        if self.cloud_calls_per_minute > 0.0 {
            for (service, _) in &built.clouds {
                clouds = clouds.with_budget(
                    *service,
                    CallBudget::per_minute(self.cloud_calls_per_minute),
                );
            }
        }
        clouds
    }
}

/// `hostname-pid`: unique per process on a host, readable in the database.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// The ENTSO-E day-ahead fetcher, when `ENTSOE_TOKEN` is set (it runs beside every worker; ENTSO-E
/// answers repeated requests for a published day the same, and the store upsert is idempotent).
pub fn price_fetcher(
    store: &Arc<dyn voltplan_store::Store>,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Option<voltplan_worker::price_fetch::PriceFetcher>> {
    use voltplan_worker::price_fetch::{PriceFetchConfig, PriceFetcher, entsoe_client_from_env};
    match entsoe_client_from_env()? {
        Some(client) => {
            tracing::info!("fetching day-ahead prices from ENTSO-E for the zones in use");
            Ok(Some(PriceFetcher::new(
                store.clone(),
                client,
                clock.clone(),
                PriceFetchConfig::default(),
            )))
        }
        None => {
            tracing::info!(
                "ENTSOE_TOKEN is not set: day-ahead prices come only from uploads and imports"
            );
            Ok(None)
        }
    }
}

/// The clouds this process runs on `clock`: the sandbox simulator when `with_sandbox`, and
/// Smartcar when it is configured (`CloudArgs`), with its tokens in `store` sealed by `keys`.
pub fn build_clouds(
    clock: Arc<dyn Clock>,
    args: &CloudArgs,
    store: &Arc<dyn Store>,
    keys: &Arc<KeyRing>,
    with_sandbox: bool,
) -> anyhow::Result<BuiltClouds> {
    let config = CloudsConfig {
        sandbox: with_sandbox.then(SandboxConfig::default),
        smartcar: args.smartcar()?,
    };
    let vaults = |service| -> Arc<dyn voltplan_clouds::TokenVault> {
        Arc::new(StoreVault::new(
            store.clone(),
            keys.clone(),
            service,
            clock.clone(),
        ))
    };
    registry::build(&config, clock.clone(), Some(&vaults)).context("starting the vehicle clouds")
}

/// How the worker delivers webhooks (`docs/webhooks.md`).
#[derive(clap::Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Accept webhook URLs in plain `http` to a loopback address (a receiver on this host, tests).
    /// Without it only `https` URLs to public addresses are accepted and called.
    #[arg(long, env = "VOLTPLAN_WEBHOOKS_ALLOW_HTTP_LOOPBACK")]
    pub webhooks_allow_http_loopback: bool,
    /// One delivery attempt's time limit, seconds.
    #[arg(long, env = "VOLTPLAN_WEBHOOK_TIMEOUT", default_value_t = 10.0)]
    pub webhook_timeout: f64,
    /// Delivery attempts in flight at once, per worker.
    #[arg(long, env = "VOLTPLAN_WEBHOOK_CONCURRENCY", default_value_t = 64)]
    pub webhook_concurrency: usize,
}

impl WebhookArgs {
    /// The deliverer of a worker named `worker_id`.
    pub fn deliverer(
        &self,
        store: &Arc<dyn Store>,
        clock: &Arc<dyn Clock>,
        keys: &Arc<KeyRing>,
        worker_id: &str,
    ) -> anyhow::Result<Deliverer> {
        let mut config = DeliveryConfig::new(worker_id);
        config.allow_http_loopback = self.webhooks_allow_http_loopback;
        config.timeout = seconds("--webhook-timeout", self.webhook_timeout)?;
        config.concurrency = self.webhook_concurrency.max(1);
        Deliverer::new(store.clone(), clock.clone(), keys.clone(), config)
            .context("building the webhook client")
    }
}

/// The worker, the webhook deliverer and the price fetcher, running until [`Background::stop`].
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    worker: tokio::task::JoinHandle<Result<(), voltplan_worker::WorkerError>>,
    others: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Starts `worker`, `deliverer` and, when there is one, `fetcher` on the runtime.
    pub fn start(
        worker: Worker,
        deliverer: Deliverer,
        fetcher: Option<Arc<PriceFetcher>>,
    ) -> Background {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut worker_stop = stopped.clone();
        let mut deliver_stop = stopped.clone();
        let delivering = tokio::spawn(async move {
            deliverer
                .run(async move {
                    let _ = deliver_stop.wait_for(|stop| *stop).await;
                })
                .await
        });
        let worker = tokio::spawn(async move {
            worker
                .run(async move {
                    let _ = worker_stop.wait_for(|stop| *stop).await;
                })
                .await
        });
        let fetcher = fetcher.map(|fetcher| {
            let mut fetch_stop = stopped;
            tokio::spawn(async move {
                fetcher
                    .run(async move {
                        let _ = fetch_stop.wait_for(|stop| *stop).await;
                    })
                    .await
            })
        });
        Background {
            stop,
            worker,
            others: std::iter::once(delivering).chain(fetcher).collect(),
        }
    }

    /// Stops them all and waits for them (the worker releases its leases).
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.worker.await??;
        for task in self.others {
            task.await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite:voltplan.db"), "sqlite:voltplan.db");
    }
}
