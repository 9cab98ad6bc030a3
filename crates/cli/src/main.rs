//! `voltplan`: one binary for the API server, the admin tasks, the planner and the demo.

mod admin;
mod backtest;
mod demo;
mod logging;
mod plan_cmd;
mod prices_cmd;
mod runtime;
mod serve;
mod worker_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "voltplan",
    version,
    about = "Open smart charging for energy utilities (Podero Partner API v2.0 compatible)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the partner API server.
    Serve(serve::ServeArgs),
    /// Run the worker: monitor, plan and steer the fleet.
    Worker(worker_cmd::WorkerArgs),
    /// Manage organisations and API clients.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Start a server on a fresh SQLite database with an organisation, a client and a fleet.
    Demo(demo::DemoArgs),
    /// Import day-ahead prices from files.
    #[command(subcommand)]
    Prices(prices_cmd::PricesCommand),
    /// Plan one vehicle: reads a JSON request on stdin, writes the plan as JSON on stdout.
    Plan(plan_cmd::PlanArgs),
    /// Replay real charging sessions against real day-ahead prices and report savings.
    Backtest(backtest::BacktestArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Pure computations: no runtime, nothing but the result on stdout. The demo sets up its logs
    // on its own clock.
    let command = match cli.command {
        Command::Plan(args) => return plan_cmd::run(args),
        Command::Backtest(args) => return backtest::run(args),
        Command::Demo(args) => {
            // Simulated time from the first instant; the demo's logs are stamped with it.
            let clock = demo::simulated_clock(&args)?;
            logging::init(logging::LogSetup {
                default_filter: demo::LOG_FILTER,
                clock: Some((clock.clone(), demo::TIME_ZONE)),
            });
            return runtime()?.block_on(demo::run(args, clock));
        }
        other => other,
    };
    logging::init(logging::LogSetup::default());
    runtime()?.block_on(async move {
        match command {
            Command::Serve(args) => serve::run(args).await,
            Command::Worker(args) => worker_cmd::run(args).await,
            Command::Admin(cmd) => admin::run(cmd).await,
            Command::Prices(cmd) => prices_cmd::run(cmd).await,
            Command::Plan(_) | Command::Backtest(_) | Command::Demo(_) => Ok(()),
        }
    })
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
