//! `build-worker`: see the crate docs. Config from `--config FILE` and `LABWRIGHT_*`.

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use labwright_build_worker::{Config, engine::Engine, worker::Worker};
use labwright_core::retry::Backoff;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "Labwright build worker")]
struct Args {
    /// TOML config file (see build-worker.example.toml).
    #[arg(long, env = "LABWRIGHT_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LABWRIGHT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if config.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            tracing::info!("stopping: jobs in flight go back to the queue");
            shutdown.cancel();
        });
    }
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    let engine = loop {
        match Engine::connect(&config.docker_host, &config.namespace).await {
            Ok(e) => break e,
            Err(e) => {
                let delay = backoff.next_delay();
                if backoff.worth_logging() {
                    tracing::warn!(error = %e, "cannot reach the Docker engine; retrying");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    tracing::info!(worker = %config.worker_name, "build worker started");
    Worker::new(config, engine).run(shutdown).await;
    Ok(())
}
