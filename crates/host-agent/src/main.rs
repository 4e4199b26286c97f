//! `host-agent`: parses arguments and config, sets up logging, runs until SIGTERM/SIGINT.

use std::path::PathBuf;

use clap::Parser;
use labwright_host_agent::Config;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "host-agent",
    version,
    about = "Labwright host agent: connects this lab host and its devices to the server"
)]
struct Args {
    /// TOML config file (see host-agent.example.toml). Environment variables LABWRIGHT_* override it.
    #[arg(long, short, env = "LABWRIGHT_CONFIG")]
    config: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    let filter =
        EnvFilter::try_from_env("LABWRIGHT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log_format == "json" {
        fmt.json().flatten_event(true).init()
    } else {
        fmt.init()
    }
    if args.check {
        println!(
            "configuration ok: host {} with {} device(s)",
            config.host_name,
            config.devices.len()
        );
        return Ok(());
    }
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        stop.cancel();
    });
    labwright_host_agent::run(config, shutdown).await
}
