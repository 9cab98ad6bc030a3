//! `voltplan serve`: the API server. On first start against an empty database it creates one
//! organisation and one API client and prints their credentials once.

use anyhow::Context;
use chrono::Duration;
use std::net::SocketAddr;
use std::sync::Arc;
use voltplan_api::{ApiConfig, AppState, PublicUrl};
use voltplan_core::{Clock, SystemClock};
use voltplan_store::{ConnectOptions, NewApiClient, OrgScope, Store};

use crate::DatabaseArgs;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VOLTPLAN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// With `--with-worker`.
    #[command(flatten)]
    pub clouds: crate::worker_cmd::CloudArgs,
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
    /// Where browsers reach this server (e.g. `https://ev.example.com`, behind a proxy): the
    /// base of links handed to drivers, such as auth_session's consent page. Default
    /// `http://<bind>`.
    #[arg(long, env = "VOLTPLAN_PUBLIC_URL")]
    pub public_url: Option<PublicUrl>,
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

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let store = open_store(&args.db, args.db_connections).await?;
    if store.count_organisations().await? == 0 {
        let b =
            create_org_and_client(store.as_ref(), "Default organisation", "default client").await?;
        println!("A new, empty database: created an organisation and an API client.\n");
        print_credentials(&b, &format!("http://{}", args.bind));
        println!();
    }
    let config = ApiConfig {
        token_lifetime: Duration::seconds(args.token_lifetime_secs),
        public_url: public_url_or_bind(args.public_url, args.bind),
        ..ApiConfig::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = AppState::new(store.clone(), clock.clone(), config);
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    tracing::info!(bind = %args.bind, database = %redact(&args.db.database_url), "serving the partner API");
    if !args.with_worker {
        voltplan_api::serve(listener, state, shutdown_signal()).await?;
        return Ok(());
    }

    // The worker, the price fetcher and the API share one sandbox, so the sandbox endpoints drive
    // the very cars the worker steers.
    let sandbox = Arc::new(voltplan_clouds::SandboxCloud::new(
        clock.clone(),
        voltplan_clouds::SandboxConfig::default(),
    )?);
    let mut state = state.with_sandbox(sandbox.clone());
    let fetcher = crate::worker_cmd::price_fetcher(&store, &clock)?.map(Arc::new);
    if let Some(fetcher) = &fetcher {
        let fetcher = fetcher.clone();
        state = state.with_price_fetch_status(Arc::new(move || {
            serde_json::to_value(fetcher.status()).unwrap_or(serde_json::Value::Null)
        }));
    }
    let worker = voltplan_worker::Worker::new(
        store,
        args.clouds.clouds(sandbox),
        clock,
        voltplan_worker::WorkerConfig::new(crate::worker_cmd::default_worker_id()),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut worker_stop = stop_rx.clone();
    let worker_task = tokio::spawn(async move {
        worker
            .run(async move {
                let _ = worker_stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    let fetch_task = fetcher.map(|fetcher| {
        let mut fetch_stop = stop_rx.clone();
        tokio::spawn(async move {
            fetcher
                .run(async move {
                    let _ = fetch_stop.wait_for(|stop| *stop).await;
                })
                .await
        })
    });
    voltplan_api::serve(listener, state, shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    worker_task.await??;
    if let Some(task) = fetch_task {
        task.await?;
    }
    Ok(())
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
