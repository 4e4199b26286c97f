//! `build-worker`: see the crate docs. Config from `--config FILE` and `LABWRIGHT_*`.

use std::path::PathBuf;

use clap::Parser;
use labwright_build_worker::{Config, engine::Engine, worker::Worker};
use labwright_service::{Settings, ready, shutdown, telemetry};

#[derive(Parser)]
#[command(version, about = "Labwright build worker")]
struct Args {
    /// TOML config file (see build-worker.example.toml). Environment variables LABWRIGHT_* override it.
    #[arg(long, env = "LABWRIGHT_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    telemetry::init(config.log_format);
    let shutdown =
        shutdown::token(|| tracing::info!("stopping: jobs in flight go back to the queue"));
    let connect = || Engine::connect(&config.docker_host, &config.namespace);
    let Some(engine) =
        ready::until_ready("Docker engine", &shutdown, ready::start_backoff(), connect).await
    else {
        return Ok(());
    };
    tracing::info!(worker = %config.worker_name, "build worker started");
    Worker::new(config, engine).run(shutdown).await;
    Ok(())
}
