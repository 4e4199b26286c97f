//! `terminal-gateway`: see the crate docs. Config from `--config FILE` and `LABWRIGHT_*`.

use std::path::PathBuf;

use clap::Parser;
use labwright_terminal_gateway::{Config, start};

#[derive(Parser)]
#[command(version, about = "Labwright terminal gateway")]
struct Args {
    /// TOML config file (see terminal-gateway.example.toml).
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
    let running = start(config).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping: terminals are closed with code 1001");
    running.shutdown().await;
    Ok(())
}
