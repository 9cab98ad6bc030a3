//! `voltplan worker`: the monitor → plan → steer loop on its own. Several workers (on PostgreSQL)
//! share the fleet through leases.

use std::sync::Arc;
use voltplan_core::{Clock, SystemClock};
use voltplan_worker::{Worker, WorkerConfig};

use crate::runtime::DatabaseArgs;
use crate::runtime::{
    Background, CloudArgs, WebhookArgs, build_clouds, default_worker_id, open_store, price_fetcher,
    shutdown_signal,
};

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
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let store = open_store(&args.db, (args.concurrency as u32).max(4)).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // A standalone worker simulates sandbox cars itself (they re-register from their last state);
    // the sandbox endpoints need `serve --with-worker`, which shares one simulator with the API.
    let keys = args.clouds.keys()?;
    let clouds = build_clouds(clock.clone(), &args.clouds, &store, &keys, true)?;
    let mut config = WorkerConfig::new(args.worker_id.unwrap_or_else(default_worker_id));
    config.batch_size = args.batch_size;
    config.concurrency = args.concurrency;
    tracing::info!(worker_id = %config.worker_id, "worker starting");
    let fetcher = price_fetcher(&store, &clock)?.map(Arc::new);
    let deliverer = args
        .webhooks
        .deliverer(&store, &clock, &keys, &config.worker_id)?;
    let worker = Worker::new(store, args.clouds.clouds(&clouds), clock, config);
    let background = Background::start(worker, deliverer, fetcher);
    shutdown_signal().await;
    background.stop().await
}
