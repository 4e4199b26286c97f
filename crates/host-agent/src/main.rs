//! `host-agent`: parses arguments and config, sets up logging, runs until SIGTERM/SIGINT.

use std::path::PathBuf;

use clap::Parser;
use labwright_host_agent::Config;
use labwright_service::{Settings, shutdown, telemetry};

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
    telemetry::init(config.log_format);
    if args.check {
        let (host, devices) = (&config.host_name, config.devices.len());
        println!("configuration ok: host {host} with {devices} device(s)");
        return Ok(());
    }
    labwright_host_agent::run(config, shutdown::token(|| {})).await
}
