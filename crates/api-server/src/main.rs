//! `api-server`: parses arguments and config, sets up logging, runs the server until SIGTERM/SIGINT.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use labwright_api_server::{Config, db, keys};
use labwright_service::{shutdown, telemetry};

#[derive(Parser)]
#[command(
    name = "api-server",
    version,
    about = "Labwright API server (REST + gRPC host link)"
)]
struct Args {
    /// TOML config file (see api-server.example.toml). Environment variables LABWRIGHT_* override it.
    #[arg(long, short, env = "LABWRIGHT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create a tenant and print its first admin key (operators only: talks to the database directly).
    CreateTenant {
        #[arg(long)]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    telemetry::init(config.log_format);
    match args.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let server = labwright_api_server::start(config).await?;
            let token = server.shutdown_token();
            tokio::select! {
                _ = shutdown::signal() => {}
                _ = token.cancelled() => {}
            }
            server.shutdown().await;
        }
        Command::Migrate => db::migrate(&config.database_url).await?,
        Command::CreateTenant { name } => {
            db::migrate(&config.database_url).await?;
            // No publisher runs here: the keys service's wake-ups go nowhere (creating a tenant
            // queues no event).
            let broker = labwright_api_server::events::Broker::new(
                config.amqp_url.clone(),
                labwright_wire::bus::Names::new(&config.namespace, &config.events_exchange),
            );
            let keys = keys::Keys::new(
                keys::db::KeyStore::new(db::pool(&config.database_url, 2)),
                keys::Throttle::from_config(&config),
                broker,
            );
            let (tenant, key) = keys.create_tenant(&name).await?;
            println!(
                "tenant {name} ({tenant}) created; its admin key (shown once):\n{}",
                key.secret
            );
        }
    }
    Ok(())
}
