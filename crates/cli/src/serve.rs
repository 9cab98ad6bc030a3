//! `voltplan serve`: the API server. On first start against an empty database it creates one
//! organisation and one API client and prints their credentials once.

use anyhow::Context;
use chrono::Duration;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use voltplan_api::{ApiConfig, AppState, PublicUrl};
use voltplan_core::{Clock, SystemClock};
use voltplan_store::ConnectOptions;

use crate::runtime::{
    Background, CloudArgs, DatabaseArgs, TimeoutArgs, WebhookArgs, build_clouds,
    create_org_and_client, default_worker_id, open_store_with, price_fetcher, print_credentials,
    public_url_or_bind, redact, shutdown_signal,
};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VOLTPLAN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// With `--with-worker`.
    #[command(flatten)]
    pub clouds: CloudArgs,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, env = "VOLTPLAN_TOKEN_LIFETIME_SECS", default_value_t = 36_000)]
    pub token_lifetime_secs: i64,
    /// Database connections (PostgreSQL) or reader connections (SQLite).
    #[arg(long, env = "VOLTPLAN_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: u32,
    /// Also run the worker (monitor, plan, steer) in this process, sharing its sandbox with the
    /// API's sandbox endpoints.
    #[arg(long, env = "VOLTPLAN_WITH_WORKER")]
    pub with_worker: bool,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// A reverse proxy (an address or a CIDR such as `10.0.0.0/8`) whose `X-Forwarded-For` is
    /// believed: the client is the right-most address in it that is not a trusted proxy.
    /// Repeat the flag, or comma-separate in the environment. Default: none (the peer address).
    #[arg(long = "trusted-proxy", env = "VOLTPLAN_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,
    /// Where browsers reach this server (e.g. `https://ev.example.com`, behind a proxy): the
    /// base of links handed to drivers, such as auth_session's consent page. Default
    /// `http://<bind>`.
    #[arg(long, env = "VOLTPLAN_PUBLIC_URL")]
    pub public_url: Option<PublicUrl>,
}

/// `10.0.0.0/8`, or a single address (`10.0.0.1`, `::1`).
fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is neither an address nor a CIDR such as 10.0.0.0/8"))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut options = ConnectOptions::new(&args.db.database_url);
    options.max_connections = args.db_connections;
    options.acquire_timeout = args.timeouts.db_acquire_timeout()?;
    options.statement_timeout = args.timeouts.db_statement_timeout()?;
    let store = open_store_with(&args.db, options).await?;
    if store.count_organisations().await? == 0 {
        let b =
            create_org_and_client(store.as_ref(), "Default organisation", "default client").await?;
        println!("A new, empty database: created an organisation and an API client.\n");
        print_credentials(&b, &format!("http://{}", args.bind));
        println!();
    }
    let keys = args.clouds.keys()?;
    let config = ApiConfig {
        token_lifetime: Duration::seconds(args.token_lifetime_secs),
        public_url: public_url_or_bind(args.public_url, args.bind),
        trusted_proxies: args.trusted_proxies,
        request_timeout: args.timeouts.request_timeout()?,
        health_timeout: args.timeouts.health_timeout()?,
        secret_keys: keys.clone(),
        allow_http_loopback_webhooks: args.webhooks.webhooks_allow_http_loopback,
        ..ApiConfig::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Without the worker the API still runs the real clouds: their Connect logins and webhooks.
    let api_clouds = build_clouds(clock.clone(), &args.clouds, &store, &keys, false)?;
    let state = AppState::new(store.clone(), clock.clone(), config).with_clouds(api_clouds);
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    tracing::info!(bind = %args.bind, database = %redact(&args.db.database_url), "serving the partner API");
    if !args.with_worker {
        voltplan_api::serve(listener, state, shutdown_signal()).await?;
        return Ok(());
    }

    // The worker, the price fetcher and the API share one set of clouds, so the sandbox endpoints
    // drive the very cars the worker steers.
    let clouds = build_clouds(clock.clone(), &args.clouds, &store, &keys, true)?;
    let mut state = state.with_clouds(clouds.clone());
    let fetcher = price_fetcher(&store, &clock)?.map(Arc::new);
    if let Some(fetcher) = &fetcher {
        let fetcher = fetcher.clone();
        state = state.with_price_fetch_status(Arc::new(move || {
            serde_json::to_value(fetcher.status()).unwrap_or(serde_json::Value::Null)
        }));
    }
    let worker_id = default_worker_id();
    let deliverer = args.webhooks.deliverer(&store, &clock, &keys, &worker_id)?;
    let worker = voltplan_worker::Worker::new(
        store,
        args.clouds.clouds(&clouds),
        clock,
        voltplan_worker::WorkerConfig::new(worker_id),
    );
    let background = Background::start(worker, deliverer, fetcher);
    voltplan_api::serve(listener, state, shutdown_signal()).await?;
    background.stop().await
}
