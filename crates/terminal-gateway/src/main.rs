//! `terminal-gateway`: see the crate docs. Config from `--config FILE` and `LABWRIGHT_*`.

use std::path::PathBuf;

use clap::Parser;
use labwright_service::{Settings, ready, shutdown, telemetry};
use labwright_terminal_gateway::{Config, engine::Engine, start_with};

#[derive(Parser)]
#[command(version, about = "Labwright terminal gateway")]
struct Args {
    /// TOML config file (see terminal-gateway.example.toml). Environment variables LABWRIGHT_* override it.
    #[arg(long, env = "LABWRIGHT_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    telemetry::init(config.log_format);
    let stop = shutdown::token(|| tracing::info!("stopping: terminals are closed with code 1001"));
    let connect = || Engine::connect(&config.docker_host, config.managed_label());
    let Some(engine) =
        ready::until_ready("Docker engine", &stop, ready::start_backoff(), connect).await
    else {
        return Ok(());
    };
    let running = start_with(config, engine).await?;
    stop.cancelled().await;
    running.shutdown().await;
    Ok(())
}
