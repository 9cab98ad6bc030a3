//! `voltplan worker`: the monitor → plan → steer loop on its own. Several workers (on PostgreSQL)
//! share the fleet through leases.

use std::sync::Arc;
use voltplan_core::{Clock, SystemClock};
use voltplan_worker::budget::CallBudget;
use voltplan_worker::{Clouds, Worker, WorkerConfig};

use crate::DatabaseArgs;
use crate::serve::{open_store, shutdown_signal};

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Names this worker in leases and command records; must differ between running workers.
    #[arg(long, env = "VOLTPLAN_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Vehicles claimed per batch.
    #[arg(long, env = "VOLTPLAN_WORKER_BATCH", default_value_t = 512)]
    pub batch_size: i64,
    /// Vehicle cycles run at the same time.
    #[arg(long, env = "VOLTPLAN_WORKER_CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,
    #[command(flatten)]
    pub clouds: CloudArgs,
}

/// How the worker may use the vehicle clouds.
#[derive(clap::Args, Debug, Clone)]
pub struct CloudArgs {
    /// Calls (reads and commands) one worker makes to one vehicle cloud per minute at most, on
    /// average (bursts of 10 seconds' worth); cycles beyond it are deferred. 0 = no limit.
    #[arg(long, env = "VOLTPLAN_CLOUD_CALLS_PER_MINUTE", default_value_t = 600.0)]
    pub cloud_calls_per_minute: f64,
}

impl CloudArgs {
    /// The clouds a worker steers through: the sandbox, within the call budget.
    pub fn clouds(&self, sandbox: Arc<voltplan_clouds::SandboxCloud>) -> Clouds {
        let clouds = Clouds::new().with_sandbox(sandbox);
        if self.cloud_calls_per_minute > 0.0 {
            clouds.with_budget(
                voltplan_clouds::SANDBOX_CLOUD.id,
                CallBudget::per_minute(self.cloud_calls_per_minute),
            )
        } else {
            clouds
        }
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

pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let store = open_store(&args.db, (args.concurrency as u32).max(4)).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // A standalone worker simulates sandbox cars itself (they re-register from their last state);
    // the sandbox endpoints need `serve --with-worker`, which shares one simulator with the API.
    let sandbox = Arc::new(voltplan_clouds::SandboxCloud::new(
        clock.clone(),
        voltplan_clouds::SandboxConfig::default(),
    )?);
    let mut config = WorkerConfig::new(args.worker_id.unwrap_or_else(default_worker_id));
    config.batch_size = args.batch_size;
    config.concurrency = args.concurrency;
    tracing::info!(worker_id = %config.worker_id, "worker starting");
    let fetcher = price_fetcher(&store, &clock)?;
    let worker = Worker::new(store, args.clouds.clouds(sandbox), clock, config);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let fetching = async {
        if let Some(fetcher) = &fetcher {
            let mut rx = stop_rx.clone();
            fetcher
                .run(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await;
        }
    };
    let working = async {
        let result = worker.run(shutdown_signal()).await;
        let _ = stop_tx.send(true);
        result
    };
    let (result, ()) = tokio::join!(working, fetching);
    result?;
    Ok(())
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
