//! `labwright-sim-phone`: a simulated Android phone speaking real ADB over TCP. Parses
//! arguments, sets up logging, serves until SIGTERM/SIGINT.

use clap::Parser;
use labwright_core::sim::phone::PhoneConfig;
use labwright_service::{LogFormat, shutdown, telemetry};
use labwright_simulators::phone::{PhoneServerConfig, run};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "labwright-sim-phone",
    version,
    about = "A simulated Android phone (home screen, settings, a demo app) that speaks real ADB over TCP: adb connect ADDRESS"
)]
struct Args {
    /// Address to listen on (port 0 picks a free one; the log says which).
    #[arg(long, default_value = "127.0.0.1:5555")]
    listen: SocketAddr,
    /// ro.serialno.
    #[arg(long, default_value = "LWSIM0001")]
    serial: String,
    /// ro.product.model.
    #[arg(long, default_value = "Labwright Sim Phone")]
    model: String,
    /// ro.product.manufacturer.
    #[arg(long, default_value = "Labwright")]
    manufacturer: String,
    /// The phone's storage (push/pull, installs); default: a directory under the system's temp
    /// directory named after the serial.
    #[arg(long)]
    storage: Option<PathBuf>,
    /// Trusted host keys (adb_keys format: one `<base64> <comment>` line per key), re-read
    /// while running: appending a host's adbkey.pub to it accepts that host.
    #[arg(long)]
    trusted_keys: Option<PathBuf>,
    /// Accept every host key at once, as if a person always tapped "Allow" (demos and CI).
    #[arg(long)]
    auto_accept: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(match args.log_format {
        Format::Text => LogFormat::Text,
        Format::Json => LogFormat::Json,
    });
    let phone = PhoneConfig {
        serial: args.serial.clone(),
        model: args.model,
        manufacturer: args.manufacturer,
        ..PhoneConfig::default()
    };
    let storage = args.storage.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("labwright-sim-phone-{}", args.serial))
    });
    run(
        PhoneServerConfig {
            listen: args.listen,
            phone,
            storage,
            trusted_keys: args.trusted_keys,
            auto_accept: args.auto_accept,
        },
        shutdown::signal(),
    )
    .await
}
